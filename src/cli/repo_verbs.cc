// nightshift repo add|list|remove

#include <filesystem>
#include <iostream>
#include <string>
#include <system_error>

#include "cli/output.h"
#include "cli/verbs.h"

namespace nightshift::cli {
namespace {

// A relative path to an existing local directory or file is made absolute, since the server
// resolves paths from its own working directory; URLs and everything else go as they are.
std::string ResolveRepositoryUrl(const std::string& arg) {
  if (arg.empty() || arg.front() == '/' || arg.find("://") != std::string::npos) return arg;
  std::error_code error;
  if (!std::filesystem::exists(arg, error)) return arg;
  auto absolute = std::filesystem::absolute(arg, error);
  if (error) return arg;
  std::string path = absolute.lexically_normal().string();
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

struct RepoAddArgs {
  std::string name;
  std::string url;
  bool json = false;
};

StatusOr<int> RepoAdd(api::ApiClient& api, const RepoAddArgs& args) {
  ASSIGN_OR_RETURN(api::Repository repository,
                   api.AddRepository({.name = args.name, .url = ResolveRepositoryUrl(args.url)}));
  if (args.json) {
    std::cout << Dump(api::ToJson(repository), 2) << '\n';
  } else {
    std::cout << "repository " << Or(repository.name) << " added (" << Or(repository.url) << ")\n";
  }
  return 0;
}

StatusOr<int> RepoList(api::ApiClient& api, bool json) {
  ASSIGN_OR_RETURN(std::vector<api::Repository> repositories, api.ListRepositories());
  if (json) {
    Json list = Json::array();
    for (const auto& repository : repositories) list.push_back(api::ToJson(repository));
    std::cout << Dump(list, 2) << '\n';
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& repository : repositories) {
    rows.push_back({OneLine(Or(repository.name)), OneLine(Or(repository.url)),
                    LocalTime(repository.created_at)});
  }
  PrintTable({"NAME", "URL", "CREATED"}, rows);
  return 0;
}

StatusOr<int> RepoRemove(api::ApiClient& api, const std::string& name) {
  RETURN_IF_ERROR(api.RemoveRepository(name));
  std::cout << "repository " << name << " removed\n";
  return 0;
}

}  // namespace

void AddRepoVerbs(CommandLine& cli) {
  CLI::App* repo = cli.app().add_subcommand("repo", "manage repositories");
  repo->require_subcommand(1);

  auto& add_args = cli.Own<RepoAddArgs>();
  CLI::App* add = repo->add_subcommand("add", "register a repository");
  add->add_option("NAME", add_args.name, "repository name ([A-Za-z0-9._-], 1-100)")->required();
  add->add_option("URL", add_args.url,
                  "git URL, or a path on the server's machine (a relative path that exists here "
                  "is made absolute)")
      ->required();
  add->add_flag("--json", add_args.json, "print the repository as JSON");
  cli.OnServer(add, [&add_args](api::ApiClient& api) { return RepoAdd(api, add_args); });

  bool& list_json = cli.Own<bool>();
  CLI::App* list = repo->add_subcommand("list", "list repositories");
  list->add_flag("--json", list_json, "print a JSON array");
  cli.OnServer(list, [&list_json](api::ApiClient& api) { return RepoList(api, list_json); });

  std::string& remove_name = cli.Own<std::string>();
  CLI::App* remove = repo->add_subcommand("remove", "remove a repository");
  remove->add_option("NAME", remove_name, "repository name")->required();
  cli.OnServer(remove,
               [&remove_name](api::ApiClient& api) { return RepoRemove(api, remove_name); });
}

}  // namespace nightshift::cli
