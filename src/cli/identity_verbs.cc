// nightshift login USER, user add|list|disable, token create|list|revoke, audit [--json],
// audit export|verify|key (docs/governance.md).
// Passwords are read from standard input (one line), never from the command line, where `ps`
// and the shell's history would show them.

#include <iostream>
#include <string>
#include <vector>

#include "cli/output.h"
#include "cli/verbs.h"
#include "triggers/cron.h"

namespace nightshift::cli {
namespace {

struct IdentityArgs {
  std::string name;
  std::vector<std::string> scopes;
  int64_t expires_in = 0;  // seconds; 0: never
  int64_t ttl = 0;         // login: seconds; 0: the server's default
  std::string id_text;
  bool json = false;
  // audit
  std::string actor;
  int64_t run = 0;
  std::string since;  // RFC 3339
  int64_t limit = 50;
};

// One line of standard input, without its line ending. InvalidArgument when there is none.
StatusOr<std::string> ReadPassword() {
  std::string line;
  if (!std::getline(std::cin, line) || line.empty()) {
    return InvalidArgumentError("no password on standard input (one line)");
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

std::string Time(const Json& value) { return value.is_string() ? value.get<std::string>() : "-"; }

std::string Scopes(const Json& scopes) {
  std::string out;
  if (!scopes.is_array()) return out;
  for (const Json& s : scopes) out += StrCat(out.empty() ? "" : ",", s.get<std::string>());
  return out;
}

StatusOr<int> Login(api::ApiClient& api, const IdentityArgs& args) {
  ASSIGN_OR_RETURN(std::string password, ReadPassword());
  Json body{{"user", args.name}, {"password", password}};
  if (args.ttl > 0) body["ttl_seconds"] = args.ttl;
  ASSIGN_OR_RETURN(Json made, api.Post("/api/v1/login", body));
  // The token alone on standard output: `export NIGHTSHIFT_TOKEN=$(nightshift login alice)`.
  std::cout << made.value("token", "") << '\n';
  std::cerr << "session token for " << args.name << ", scopes " << Scopes(made["scopes"])
            << ", expires " << Time(made["expires_at"]) << '\n';
  return 0;
}

StatusOr<int> AddUser(api::ApiClient& api, const IdentityArgs& args) {
  ASSIGN_OR_RETURN(std::string password, ReadPassword());
  ASSIGN_OR_RETURN(Json user, api.Post("/api/v1/users", Json{{"name", args.name},
                                                             {"password", password},
                                                             {"scopes", args.scopes}}));
  std::cout << "added user " << user.value("name", "") << " (" << Scopes(user["scopes"]) << ")\n";
  return 0;
}

StatusOr<int> ListUsers(api::ApiClient& api, const IdentityArgs& args) {
  ASSIGN_OR_RETURN(Json list, api.Get("/api/v1/users"));
  if (args.json) {
    std::cout << Dump(list, 2) << '\n';
    return 0;
  }
  if (list["users"].empty()) std::cout << "no users\n";
  for (const Json& u : list["users"]) {
    std::cout << u.value("name", "") << "  " << Scopes(u["scopes"])
              << (u["disabled_at"].is_string() ? "  (disabled)" : "") << '\n';
  }
  return 0;
}

StatusOr<int> DisableUser(api::ApiClient& api, const IdentityArgs& args) {
  ASSIGN_OR_RETURN(Json user, api.Post(StrCat("/api/v1/users/", args.name, "/disable"), Json()));
  std::cout << "disabled user " << user.value("name", "") << '\n';
  return 0;
}

StatusOr<int> CreateToken(api::ApiClient& api, const IdentityArgs& args) {
  Json body{{"name", args.name}, {"scopes", args.scopes}};
  if (args.expires_in > 0) body["expires_in_seconds"] = args.expires_in;
  ASSIGN_OR_RETURN(Json made, api.Post("/api/v1/tokens", body));
  std::cout << made.value("token", "") << '\n';
  std::cerr << "token " << made.value("id", int64_t{0}) << " (" << args.name << "), scopes "
            << Scopes(made["scopes"]) << ", expires " << Time(made["expires_at"])
            << ": shown once, stored only hashed\n";
  return 0;
}

StatusOr<int> ListTokens(api::ApiClient& api, const IdentityArgs& args) {
  ASSIGN_OR_RETURN(Json list, api.Get("/api/v1/tokens"));
  if (args.json) {
    std::cout << Dump(list, 2) << '\n';
    return 0;
  }
  if (list["tokens"].empty()) std::cout << "no tokens\n";
  for (const Json& t : list["tokens"]) {
    std::cout << t.value("id", int64_t{0}) << "  " << OneLine(t.value("name", ""), 40) << "  "
              << (t.value("owner", "").empty() ? "-" : t.value("owner", "")) << "  "
              << Scopes(t["scopes"]) << "  expires " << Time(t["expires_at"])
              << (t["revoked_at"].is_string() ? "  (revoked)" : "") << '\n';
  }
  return 0;
}

StatusOr<int> RevokeToken(api::ApiClient& api, const IdentityArgs& args) {
  ASSIGN_OR_RETURN(Json token, api.Delete(StrCat("/api/v1/tokens/", args.id_text)));
  std::cout << "revoked token " << token.value("id", int64_t{0}) << '\n';
  return 0;
}

StatusOr<int> ListAudit(api::ApiClient& api, const IdentityArgs& args) {
  std::string query = StrCat("/api/v1/audit?limit=", args.limit);
  if (!args.actor.empty()) query += "&actor=" + api::UrlEncode(args.actor);
  if (args.run > 0) query += StrCat("&run=", args.run);
  if (!args.since.empty()) {
    ASSIGN_OR_RETURN(triggers::Seconds since, triggers::ParseRfc3339(args.since));
    query += StrCat("&since_ms=", since.time_since_epoch().count() * 1000);
  }
  ASSIGN_OR_RETURN(Json list, api.Get(query));
  if (args.json) {
    std::cout << Dump(list, 2) << '\n';
    return 0;
  }
  if (list["records"].empty()) std::cout << "no records\n";
  for (const Json& r : list["records"]) {
    std::cout << r.value("seq", int64_t{0}) << "  "
              << UtcTime(api::Timestamp{r.value("time_ms", int64_t{0})}) << "  "
              << OneLine(r.value("actor", ""), 40) << "  " << r.value("decision", "") << "  "
              << OneLine(r.value("action", ""), 80);
    const std::string resource = r.value("resource", "");
    if (!resource.empty() && r.value("action", "").find(resource) == std::string::npos) {
      std::cout << "  " << OneLine(resource, 80);  // an API record's is its path, shown already
    }
    if (r.value("run_id", int64_t{0}) != 0) std::cout << "  run " << r["run_id"];
    const Json& detail = r["detail"];
    if (detail.is_object() && detail.contains("rules") && detail["rules"].is_array() &&
        !detail["rules"].empty()) {
      std::string rules;
      for (const Json& id : detail["rules"]) {
        if (id.is_string()) rules += (rules.empty() ? "" : ",") + id.get<std::string>();
      }
      std::cout << "  rules " << OneLine(rules, 120);
    }
    if (detail.is_object() && detail.contains("error")) {
      std::cout << "  (" << OneLine(detail["error"].get<std::string>(), 80) << ")";
    }
    std::cout << '\n';
  }
  return 0;
}

StatusOr<int> ExportAudit(api::ApiClient& api, const IdentityArgs&) {
  int64_t after = 0;
  for (;;) {
    ASSIGN_OR_RETURN(Json page, api.Get(StrCat("/api/v1/audit?after=", after, "&limit=10000")));
    if (page["records"].empty()) return 0;
    for (const Json& r : page["records"]) {
      std::cout << r.dump(-1, ' ', false, Json::error_handler_t::replace) << '\n';
      after = r.value("seq", after);
    }
  }
}

StatusOr<int> VerifyAudit(api::ApiClient& api, const IdentityArgs& args) {
  ASSIGN_OR_RETURN(Json v, api.Get("/api/v1/audit/verify"));
  if (args.json) {
    std::cout << Dump(v, 2) << '\n';
  } else if (v.value("ok", false)) {
    std::cout << "audit log intact: " << v.value("records", int64_t{0}) << " records, "
              << v.value("checkpoints", int64_t{0}) << " signed checkpoints\n";
  } else {
    std::cout << "audit log BROKEN at record " << v.value("first_bad_seq", int64_t{0}) << ": "
              << v.value("reason", "") << '\n';
  }
  return v.value("ok", false) ? 0 : 1;
}

StatusOr<int> AuditKey(api::ApiClient& api, const IdentityArgs&) {
  ASSIGN_OR_RETURN(Json key, api.Get("/api/v1/audit/key"));
  std::cout << key.value("public_key", "") << '\n';
  return 0;
}

}  // namespace

void AddIdentityVerbs(CommandLine& cli) {
  auto& args = cli.Own<IdentityArgs>();
  const std::string scope_help =
      "runs:read, runs:write, repos:admin, crs:review, crs:merge, policies:admin, "
      "secrets:admin, audit:read or admin (repeat, or separate with commas)";

  CLI::App* login = cli.app().add_subcommand(
      "login", "sign in as a user (password on standard input); prints a session token");
  login->add_option("USER", args.name, "user name")->required();
  login->add_option("--ttl", args.ttl, "the session's lifetime in seconds (default 12 hours)");
  cli.OnServer(login, [&args](api::ApiClient& api) { return Login(api, args); });

  CLI::App* user = cli.app().add_subcommand("user", "users: add, list, disable (scope admin)");
  user->require_subcommand(1);
  CLI::App* add = user->add_subcommand("add", "add a user (password on standard input)");
  add->add_option("NAME", args.name, "user name")->required();
  add->add_option("--scope", args.scopes, scope_help)->required()->delimiter(',');
  cli.OnServer(add, [&args](api::ApiClient& api) { return AddUser(api, args); });
  CLI::App* list_users = user->add_subcommand("list", "every user and their scopes");
  list_users->add_flag("--json", args.json, "print JSON");
  cli.OnServer(list_users, [&args](api::ApiClient& api) { return ListUsers(api, args); });
  CLI::App* disable = user->add_subcommand("disable", "disable a user: their tokens stop at once");
  disable->add_option("NAME", args.name, "user name")->required();
  cli.OnServer(disable, [&args](api::ApiClient& api) { return DisableUser(api, args); });

  CLI::App* token = cli.app().add_subcommand("token", "API tokens: create, list, revoke");
  token->require_subcommand(1);
  CLI::App* create = token->add_subcommand(
      "create", "make a token with some of your scopes; prints its secret, once");
  create->add_option("NAME", args.name, "its label")->required();
  create->add_option("--scope", args.scopes, scope_help)->required()->delimiter(',');
  create->add_option("--expires-in", args.expires_in, "its lifetime in seconds (default: never)")
      ->check(CLI::PositiveNumber);
  cli.OnServer(create, [&args](api::ApiClient& api) { return CreateToken(api, args); });
  CLI::App* list_tokens = token->add_subcommand("list", "your tokens (an admin: every token)");
  list_tokens->add_flag("--json", args.json, "print JSON");
  cli.OnServer(list_tokens, [&args](api::ApiClient& api) { return ListTokens(api, args); });
  CLI::App* revoke = token->add_subcommand("revoke", "revoke a token: refused from now on");
  revoke->add_option("ID", args.id_text, "token id")->required()->check(RunIdValidator());
  cli.OnServer(revoke, [&args](api::ApiClient& api) { return RevokeToken(api, args); });

  CLI::App* audit = cli.app().add_subcommand(
      "audit", "the audit log, newest first (scope audit:read): export, verify, key");
  audit->add_option("--actor", args.actor, "only this actor (\"user:alice\", \"admin\")");
  audit->add_option("--run", args.run, "only records about this run");
  audit->add_option("--since", args.since, "only records from this time on (RFC 3339)");
  audit->add_option("-n,--limit", args.limit, "how many (default 50)")->check(CLI::Range(1, 10000));
  audit->add_flag("--json", args.json, "print JSON");
  CLI::App* audit_export =
      audit->add_subcommand("export", "every record, oldest first, as JSON lines");
  CLI::App* verify = audit->add_subcommand(
      "verify", "check every record's hash and every checkpoint's signature; exit 1 if broken");
  verify->add_flag("--json", args.json, "print JSON");
  CLI::App* key = audit->add_subcommand("key", "the public key that checkpoints verify against");
  // The subcommands first: the first parsed verb runs, and `audit` is parsed too.
  cli.OnServer(audit_export, [&args](api::ApiClient& api) { return ExportAudit(api, args); });
  cli.OnServer(verify, [&args](api::ApiClient& api) { return VerifyAudit(api, args); });
  cli.OnServer(key, [&args](api::ApiClient& api) { return AuditKey(api, args); });
  cli.OnServer(audit, [&args](api::ApiClient& api) { return ListAudit(api, args); });
}

}  // namespace nightshift::cli
