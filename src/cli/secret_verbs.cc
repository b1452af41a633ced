// nightshift secret set|list|rm (docs/governance.md#secrets). A value is read from standard
// input, never from the command line (where `ps` and the shell's history would show it), and is
// never printed again: listing shows names and scopes only.

#include <iostream>
#include <iterator>
#include <string>

#include "cli/output.h"
#include "cli/verbs.h"

namespace nightshift::cli {
namespace {

struct SecretArgs {
  std::string name;
  std::string repo;
  std::string agent;
  bool json = false;
};

std::string Scope(const Json& secret) {
  const std::string repo = secret.value("repo", "");
  const std::string agent = secret.value("agent", "");
  return StrCat(repo.empty() ? "every repository" : "repository " + repo, ", ",
                agent.empty() ? "every agent" : "agent " + agent);
}

StatusOr<int> SetSecret(api::ApiClient& api, const SecretArgs& args) {
  // All of standard input, without one final line ending: `printf %s "$TOKEN" | …` and
  // `echo "$TOKEN" | …` store the same value; a multi-line value (a key file) stays whole.
  std::string value((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  if (value.ends_with("\r\n")) {
    value.resize(value.size() - 2);
  } else if (value.ends_with('\n')) {
    value.pop_back();
  }
  if (value.empty()) return InvalidArgumentError("no value on standard input");
  ASSIGN_OR_RETURN(Json stored, api.Post("/api/v1/secrets", Json{{"name", args.name},
                                                                 {"value", value},
                                                                 {"repo", args.repo},
                                                                 {"agent", args.agent}}));
  if (args.json) {
    std::cout << Dump(stored, 2) << '\n';
  } else {
    std::cout << "secret " << stored.value("name", "") << " set for " << Scope(stored) << '\n';
  }
  return 0;
}

StatusOr<int> ListSecrets(api::ApiClient& api, const SecretArgs& args) {
  ASSIGN_OR_RETURN(Json list, api.Get("/api/v1/secrets"));
  if (args.json) {
    std::cout << Dump(list, 2) << '\n';
    return 0;
  }
  if (list["secrets"].empty()) std::cout << "no secrets\n";
  for (const Json& s : list["secrets"]) {
    std::cout << OneLine(s.value("name", ""), 128) << "  " << OneLine(Scope(s), 200) << "  set by "
              << OneLine(s.value("created_by", ""), 80) << "  "
              << UtcTime(api::Timestamp{s.value("updated_ms", int64_t{0})}) << '\n';
  }
  return 0;
}

StatusOr<int> RemoveSecret(api::ApiClient& api, const SecretArgs& args) {
  ASSIGN_OR_RETURN(Json removed, api.Delete(StrCat("/api/v1/secrets/", api::UrlEncode(args.name),
                                                   "?repo=", api::UrlEncode(args.repo),
                                                   "&agent=", api::UrlEncode(args.agent))));
  if (args.json) {
    std::cout << Dump(removed, 2) << '\n';
  } else {
    std::cout << "secret " << args.name << " removed\n";
  }
  return 0;
}

}  // namespace

void AddSecretVerbs(CommandLine& cli) {
  auto& args = cli.Own<SecretArgs>();
  CLI::App* secret = cli.app().add_subcommand(
      "secret", "secrets given to runs as environment variables: set, list, rm (secrets:admin)");
  secret->require_subcommand(1);
  auto scope = [&args](CLI::App* cmd) {
    cmd->add_option("--repo", args.repo, "only for this repository [default: every one]")
        ->type_name("NAME");
    cmd->add_option("--agent", args.agent,
                    "only for this agent (a trigger's or schedule's; adhoc: runs started by "
                    "hand) [default: every one]")
        ->type_name("NAME");
    cmd->add_flag("--json", args.json, "print JSON");
  };
  CLI::App* set = secret->add_subcommand(
      "set", "set NAME to the value on standard input (sealed; never shown again)");
  set->add_option("NAME", args.name, "the environment variable runs get it as")->required();
  scope(set);
  cli.OnServer(set, [&args](api::ApiClient& api) { return SetSecret(api, args); });
  CLI::App* list = secret->add_subcommand("list", "every secret's name and scope, no values");
  list->add_flag("--json", args.json, "print JSON");
  cli.OnServer(list, [&args](api::ApiClient& api) { return ListSecrets(api, args); });
  CLI::App* rm = secret->add_subcommand("rm", "remove a secret (NAME and its scope)");
  rm->add_option("NAME", args.name, "the secret")->required();
  scope(rm);
  cli.OnServer(rm, [&args](api::ApiClient& api) { return RemoveSecret(api, args); });
}

}  // namespace nightshift::cli
