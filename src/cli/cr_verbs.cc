// nightshift cr list|show|diff|comment|approve|merge|close

#include <iostream>
#include <string>
#include <string_view>

#include "cli/output.h"
#include "cli/verbs.h"

namespace nightshift::cli {
namespace {

struct CrListArgs {
  std::string repo;
  std::string state;
  bool json = false;
};

struct CrArgs {
  std::string id_text;  // checked by RunIdValidator
  std::string body;     // comment only
  bool json = false;

  int64_t id() const { return ParseId(id_text).value_or(0); }
};

StatusOr<int> ListChangeRequests(api::ApiClient& api, const CrListArgs& args) {
  ASSIGN_OR_RETURN(std::vector<api::ChangeRequest> list,
                   api.ListChangeRequests(args.repo, args.state));
  if (args.json) {
    Json out = Json::array();
    for (const auto& cr : list) out.push_back(api::ToJson(cr));
    std::cout << Dump(out, 2) << '\n';
    return 0;
  }
  if (list.empty()) {
    std::cout << "no change requests\n";
    return 0;
  }
  for (const api::ChangeRequest& cr : list) {
    std::cout << cr.id << "  " << Or(cr.state) << "/" << Or(cr.review) << "  " << Or(cr.repo)
              << "  " << Or(cr.branch) << " -> " << Or(cr.base_branch) << "  "
              << OneLine(Or(cr.title), 60) << '\n';
  }
  return 0;
}

// Prints `cr` as JSON; true if --json asked for that.
bool PrintedAsJson(const CrArgs& args, const Json& cr) {
  if (args.json) std::cout << Dump(cr, 2) << '\n';
  return args.json;
}

StatusOr<int> ShowChangeRequest(api::ApiClient& api, const CrArgs& args) {
  ASSIGN_OR_RETURN(api::ChangeRequest cr, api.GetChangeRequest(args.id()));
  if (PrintedAsJson(args, api::ToJson(cr))) return 0;
  std::cout << "change request " << cr.id << ": " << Or(cr.title) << "\n  state   " << Or(cr.state)
            << " (review " << Or(cr.review) << ")\n  repo    " << Or(cr.repo) << "\n  branch  "
            << Or(cr.branch) << " -> " << Or(cr.base_branch) << "\n  head    " << Or(cr.head_commit)
            << "\n  run     " << cr.run_id << "\n\n"
            << Or(cr.body) << '\n';
  for (const api::Comment& c : cr.comments.value_or(std::vector<api::Comment>{})) {
    std::cout << "\n"
              << Or(c.author) << " (" << UtcTime(c.created_at) << "): " << Or(c.body) << '\n';
  }
  return 0;
}

StatusOr<int> DiffChangeRequest(api::ApiClient& api, const CrArgs& args) {
  ASSIGN_OR_RETURN(api::ChangeRequest cr, api.GetChangeRequest(args.id()));
  if (PrintedAsJson(args, api::ToJson(cr))) return 0;
  std::cout << cr.diff.value_or("");
  return 0;
}

StatusOr<int> CommentOnChangeRequest(api::ApiClient& api, const CrArgs& args) {
  ASSIGN_OR_RETURN(api::PostedComment comment,
                   api.CommentOnChangeRequest(args.id(), {.body = args.body}));
  if (PrintedAsJson(args, api::ToJson(comment))) return 0;
  std::cout << "comment " << comment.id << " added";
  if (comment.follow_up_run) std::cout << "; follow-up run " << *comment.follow_up_run << " queued";
  std::cout << '\n';
  return 0;
}

// approve, merge, close
StatusOr<int> ActOnChangeRequest(api::ApiClient& api, const CrArgs& args, std::string_view action) {
  ASSIGN_OR_RETURN(api::ChangeRequest cr, api.ActOnChangeRequest(args.id(), action));
  if (PrintedAsJson(args, api::ToJson(cr))) return 0;
  std::cout << "change request " << cr.id << " " << Or(cr.state) << " (" << Or(cr.review) << ")\n";
  return 0;
}

// `cr NAME CR [--json]`, parsed into `args`, which runs `verb`.
template <typename Verb>
CLI::App* AddCrVerb(CommandLine& cli, CLI::App* cr, const char* name, CrArgs& args, Verb verb) {
  CLI::App* command = cr->add_subcommand(name, StrCat(name, " change requests"));
  command->add_flag("--json", args.json, "print JSON");
  command->add_option("CR", args.id_text, "change request id")->required()->check(RunIdValidator());
  cli.OnServer(command, [&args, verb](api::ApiClient& api) { return verb(api, args); });
  return command;
}

}  // namespace

void AddChangeRequestVerbs(CommandLine& cli) {
  CLI::App* cr = cli.app().add_subcommand(
      "cr", "change requests: list, show, diff, comment, approve, merge, close");
  cr->require_subcommand(1);

  auto& list_args = cli.Own<CrListArgs>();
  CLI::App* list = cr->add_subcommand("list", "list change requests");
  list->add_flag("--json", list_args.json, "print JSON");
  list->add_option("--repo", list_args.repo, "only this repository")->type_name("NAME");
  list->add_option("--state", list_args.state, "open, merged or closed")
      ->check(CLI::IsMember({"open", "merged", "closed"}));
  cli.OnServer(list,
               [&list_args](api::ApiClient& api) { return ListChangeRequests(api, list_args); });

  AddCrVerb(cli, cr, "show", cli.Own<CrArgs>(), ShowChangeRequest);
  AddCrVerb(cli, cr, "diff", cli.Own<CrArgs>(), DiffChangeRequest);
  auto& comment_args = cli.Own<CrArgs>();
  AddCrVerb(cli, cr, "comment", comment_args, CommentOnChangeRequest)
      ->add_option("TEXT", comment_args.body,
                   "the comment; \"/nightshift <instruction>\" starts a follow-up run")
      ->required();
  for (const char* action : {"approve", "merge", "close"}) {
    AddCrVerb(cli, cr, action, cli.Own<CrArgs>(),
              [action](api::ApiClient& api, const CrArgs& args) {
                return ActOnChangeRequest(api, args, action);
              });
  }
}

}  // namespace nightshift::cli
