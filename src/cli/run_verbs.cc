// nightshift run, prebuild, runs, show, logs, cancel

#include <algorithm>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "cli/event_printer.h"
#include "cli/output.h"
#include "cli/verbs.h"

namespace nightshift::cli {
namespace {

constexpr size_t kRecipeColumnWidth = 40;
constexpr int64_t kMaxRunsPageSize = 500;  // the API's limit on `limit`

const char* const kStates[] = {"queued", "preparing", "running",   "succeeded",
                               "failed", "cancelled", "timed_out", "blocked_by_policy"};

// Streams a run's events to the terminal until it ends; the final state.
StatusOr<std::string> Follow(api::ApiClient& api, int64_t run_id, bool json) {
  EventPrinter printer(json, /*live=*/true);
  return api.StreamEvents(run_id, 0, [&](const api::Event& event) { return printer.Print(event); });
}

// --- run and prebuild ---

struct RunArgs {
  api::RunRequest request;
  bool follow = false;
  bool json = false;
};

// Queues the run; with `follow`, streams it and returns 0 only if it succeeded.
StatusOr<int> StartRun(api::ApiClient& api, const RunArgs& args) {
  ASSIGN_OR_RETURN(api::Run run, api.CreateRun(args.request));
  if (run.id <= 0) {
    return InternalError("the server's answer has no run id: " + Dump(api::ToJson(run)));
  }
  if (args.json) {
    std::cout << Dump(api::ToJson(run), args.follow ? -1 : 2) << '\n';
  } else {
    (args.follow ? std::cerr : std::cout) << "run " << run.id << " " << Or(run.state) << '\n';
  }
  if (!args.follow) return 0;

  ASSIGN_OR_RETURN(std::string state, Follow(api, run.id, args.json));
  if (state == "succeeded") return 0;
  // Why it did not succeed is on the run; the end event names only the state.
  std::string why;
  if (auto final_run = api.GetRun(run.id); final_run.ok()) {
    why = final_run->reason;
    if (why.empty() && final_run->exit_code) why = StrCat("exit code ", *final_run->exit_code);
  }
  std::cout.flush();
  std::cerr << "run " << run.id << " " << state << (why.empty() ? "" : ": ") << OneLine(why)
            << '\n';
  return 1;
}

// --- runs ---

struct RunsArgs {
  std::string repo;
  std::string state;
  int64_t limit = 0;  // 0: the server's page size
  bool json = false;
};

// Newest first; a --limit over the server's page size is fetched page by page.
StatusOr<int> ListRuns(api::ApiClient& api, const RunsArgs& args) {
  std::vector<api::Run> runs;
  std::optional<int64_t> before;
  for (;;) {
    api::ApiClient::RunFilter filter{.repo = args.repo, .state = args.state, .before = before};
    if (args.limit > 0) {
      filter.limit =
          std::min<int64_t>(args.limit - static_cast<int64_t>(runs.size()), kMaxRunsPageSize);
    }
    ASSIGN_OR_RETURN(api::RunList page, api.ListRuns(filter));
    std::move(page.runs.begin(), page.runs.end(), std::back_inserter(runs));
    // Without --limit, one page (the server's default size) is the answer.
    const std::optional<int64_t> next = page.next_before;
    if (args.limit == 0 || !next || page.runs.empty() ||
        static_cast<int64_t>(runs.size()) >= args.limit || (before && *next >= *before)) {
      break;
    }
    before = next;
  }

  if (args.json) {
    Json list = Json::array();
    for (const api::Run& run : runs) list.push_back(api::ToJson(run));
    std::cout << Dump(list, 2) << '\n';
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const api::Run& run : runs) {
    rows.push_back({std::to_string(run.id), OneLine(Or(run.repo)), Or(run.state),
                    OneLine(Or(run.ref, "HEAD")), LocalTime(run.created_at),
                    OneLine(Or(run.recipe), kRecipeColumnWidth)});
  }
  PrintTable({"ID", "REPO", "STATE", "REF", "CREATED", "RECIPE"}, rows);
  return 0;
}

// --- show, logs, cancel ---

struct RunRef {
  std::string id_text;  // checked by RunIdValidator
  bool json = false;
  bool follow = false;  // logs only

  int64_t id() const { return ParseId(id_text).value_or(0); }
};

StatusOr<int> ShowRun(api::ApiClient& api, const RunRef& args) {
  ASSIGN_OR_RETURN(api::Run run, api.GetRun(args.id()));
  if (args.json) {
    std::cout << Dump(api::ToJson(run), 2) << '\n';
    return 0;
  }
  auto row = [](std::string_view key, const std::string& value) {
    std::cout << "  " << key << std::string(11 - std::min<size_t>(key.size(), 10), ' ') << value
              << '\n';
  };
  std::cout << "run " << run.id << '\n';
  row("repo", OneLine(Or(run.repo)));
  row("ref", OneLine(Or(run.ref, "HEAD")));
  row("commit", Or(run.commit));
  row("kind", Or(run.kind));
  if (!run.recipe.empty()) row("recipe", OneLine(run.recipe));
  if (!run.task.empty()) row("task", OneLine(run.task));
  if (!run.model.empty()) row("model", OneLine(run.model));
  row("requester", OneLine(Or(run.requested_by)));
  row("state", Or(run.state));
  row("attempt", StrCat(run.attempt, "/", run.max_attempts));
  row("exit code", run.exit_code ? std::to_string(*run.exit_code) : "-");
  row("reason", OneLine(Or(run.reason)));
  row("timeout", StrCat(run.timeout_seconds, " s"));
  row("created", LocalTime(run.created_at));
  row("started", LocalTime(run.started_at));
  row("finished", LocalTime(run.finished_at));
  if (run.lease) {
    row("lease",
        StrCat(OneLine(Or(run.lease->owner)), " until ", LocalTime(run.lease->expires_at)));
  }
  if (run.attempts && !run.attempts->empty()) {
    std::cout << "attempts\n";
    std::vector<std::vector<std::string>> rows;
    for (const api::RunAttempt& attempt : *run.attempts) {
      rows.push_back({StrCat("  #", attempt.number), OneLine(Or(attempt.runner)),
                      LocalTime(attempt.started_at), LocalTime(attempt.ended_at),
                      Or(attempt.outcome, "running"), OneLine(attempt.reason)});
    }
    PrintTable({"  #", "RUNNER", "STARTED", "ENDED", "OUTCOME", "REASON"}, rows);
  }
  return 0;
}

StatusOr<int> PrintLogs(api::ApiClient& api, const RunRef& args) {
  if (args.follow) {
    RETURN_IF_ERROR(Follow(api, args.id(), args.json).status());
    return 0;
  }
  EventPrinter printer(args.json, /*live=*/false);
  int64_t after = 0;
  for (;;) {
    ASSIGN_OR_RETURN(std::vector<api::Event> events, api.ListEvents(args.id(), after));
    int64_t last = after;
    for (const api::Event& event : events) {
      if (event.seq <= last) continue;  // out of order or repeated: skip, never loop
      RETURN_IF_ERROR(printer.Print(event));
      last = event.seq;
    }
    if (last == after) return 0;  // an empty page: everything was read
    after = last;
  }
}

StatusOr<int> CancelRun(api::ApiClient& api, const RunRef& args) {
  ASSIGN_OR_RETURN(api::Run run, api.CancelRun(args.id()));
  if (args.json) {
    std::cout << Dump(api::ToJson(run), 2) << '\n';
  } else {
    std::cout << "run " << args.id() << " " << Or(run.state, "cancelled") << '\n';
  }
  return 0;
}

// The RUN argument of show, logs and cancel.
void AddRunId(CLI::App* command, RunRef& args) {
  command->add_option("RUN", args.id_text, "run id")->required()->check(RunIdValidator());
}

}  // namespace

void AddRunVerb(CommandLine& cli) {
  auto& args = cli.Own<RunArgs>();
  api::RunRequest& request = args.request;
  CLI::App* run = cli.app().add_subcommand(
      "run", "start a run in a repository: a recipe (a command) or the agent on a task");
  run->add_option("--repo", request.repo, "repository name")->type_name("NAME")->required();
  CLI::Option* recipe =
      run->add_option("--recipe", request.recipe, "shell command to run in the checkout")
          ->type_name("CMD");
  CLI::Option* task = run->add_option("--task", request.task, "what the built-in agent should do")
                          ->type_name("TEXT");
  recipe->excludes(task);
  run->add_option("--model", request.model, "model for --task [default: default]")
      ->type_name("NAME")
      ->needs(task);
  run->add_option("--ref", request.ref, "branch, tag or commit [default: HEAD]")->type_name("REF");
  run->add_option("--timeout", request.timeout_seconds, "seconds before the run times out [3600]")
      ->type_name("SECONDS")
      ->check(CLI::Range(1, 86400));
  run->add_option("--max-attempts", request.max_attempts, "attempts if runners are lost [3]")
      ->type_name("N")
      ->check(CLI::Range(1, 10));
  run->add_flag("-f,--follow", args.follow, "stream the run's output; exit 0 only if it succeeds");
  run->add_flag("--json", args.json,
                "print the run as JSON (with --follow: then one JSON event per line)");
  cli.OnServer(
      run, [&args](api::ApiClient& api) { return StartRun(api, args); },
      [&request] {
        if (request.recipe.empty() && request.task.empty()) {
          return InvalidArgumentError("run needs --recipe CMD or --task TEXT");
        }
        return OkStatus();
      });
}

void AddPrebuildVerb(CommandLine& cli) {
  auto& args = cli.Own<RunArgs>({.request = {.kind = "prebuild"}});
  bool& detach = cli.Own<bool>();
  CLI::App* prebuild = cli.app().add_subcommand(
      "prebuild",
      "build a repository's environment snapshot (its setup commands, run once) ahead of runs");
  prebuild->add_option("REPO", args.request.repo, "repository name")->required();
  prebuild->add_option("--ref", args.request.ref, "branch, tag or commit [default: HEAD]")
      ->type_name("REF");
  prebuild->add_flag("--detach", detach, "start it and return; do not stream it");
  prebuild->add_flag("--json", args.json, "print the run (and its events) as JSON");
  cli.OnServer(prebuild, [&args, &detach](api::ApiClient& api) {
    args.follow = !detach;
    return StartRun(api, args);
  });
}

void AddRunsVerb(CommandLine& cli) {
  auto& args = cli.Own<RunsArgs>();
  CLI::App* runs = cli.app().add_subcommand("runs", "list runs, newest first");
  runs->add_option("--repo", args.repo, "only runs of this repository")->type_name("NAME");
  runs->add_option("--state", args.state, "only runs in this state")
      ->type_name("STATE")
      ->check(CLI::IsMember(std::vector<std::string>(std::begin(kStates), std::end(kStates))));
  runs->add_option("--limit", args.limit, "at most this many runs [default: the server's, 50]")
      ->type_name("N")
      ->check(CLI::Range(int64_t{1}, int64_t{1000000}));
  runs->add_flag("--json", args.json, "print a JSON array");
  cli.OnServer(runs, [&args](api::ApiClient& api) { return ListRuns(api, args); });
}

void AddShowVerb(CommandLine& cli) {
  auto& args = cli.Own<RunRef>();
  CLI::App* show = cli.app().add_subcommand("show", "show a run");
  AddRunId(show, args);
  show->add_flag("--json", args.json, "print the run as JSON");
  cli.OnServer(show, [&args](api::ApiClient& api) { return ShowRun(api, args); });
}

void AddLogsVerb(CommandLine& cli) {
  auto& args = cli.Own<RunRef>();
  CLI::App* logs = cli.app().add_subcommand("logs", "print a run's output and events");
  AddRunId(logs, args);
  logs->add_flag("-f,--follow", args.follow, "stream until the run ends");
  logs->add_flag("--json", args.json, "print one JSON event per line");
  cli.OnServer(logs, [&args](api::ApiClient& api) { return PrintLogs(api, args); });
}

void AddCancelVerb(CommandLine& cli) {
  auto& args = cli.Own<RunRef>();
  CLI::App* cancel = cli.app().add_subcommand("cancel", "cancel a run");
  AddRunId(cancel, args);
  cancel->add_flag("--json", args.json, "print the run as JSON");
  cli.OnServer(cancel, [&args](api::ApiClient& api) { return CancelRun(api, args); });
}

namespace {

struct PauseArgs {
  bool all = false;
  std::string repo;
  std::string agent;
  bool list = false;
  bool json = false;
};

// The scope the flags name: exactly one of --all, --repo, --agent.
StatusOr<Json> PauseScope(const PauseArgs& args) {
  const int given = (args.all ? 1 : 0) + (args.repo.empty() ? 0 : 1) + (args.agent.empty() ? 0 : 1);
  if (given != 1) return InvalidArgumentError("name one of --all, --repo NAME, --agent NAME");
  if (args.all) return Json{{"scope", "all"}, {"name", ""}};
  if (!args.repo.empty()) return Json{{"scope", "repo"}, {"name", args.repo}};
  return Json{{"scope", "agent"}, {"name", args.agent}};
}

std::string ScopeText(const Json& pause) {
  const std::string scope = pause.value("scope", "");
  return scope == "all" ? "everything"
                        : StrCat(scope == "repo" ? "repository " : "agent ",
                                 OneLine(pause.value("name", ""), 200));
}

StatusOr<int> PauseRuns(api::ApiClient& api, const PauseArgs& args) {
  if (args.list) {
    ASSIGN_OR_RETURN(Json list, api.Get("/api/v1/pauses"));
    if (args.json) {
      std::cout << Dump(list, 2) << '\n';
      return 0;
    }
    if (list["pauses"].empty()) std::cout << "nothing is paused\n";
    for (const Json& p : list["pauses"]) {
      std::cout << ScopeText(p) << "  paused by " << OneLine(p.value("created_by", ""), 80) << "  "
                << UtcTime(api::Timestamp{p.value("created_ms", int64_t{0})}) << '\n';
    }
    return 0;
  }
  ASSIGN_OR_RETURN(Json scope, PauseScope(args));
  ASSIGN_OR_RETURN(Json paused, api.Post("/api/v1/pauses", scope));
  if (args.json) {
    std::cout << Dump(paused, 2) << '\n';
    return 0;
  }
  const size_t n = paused["cancelled"].size();
  std::cout << "paused " << ScopeText(paused) << ": no run starts there until 'nightshift resume'; "
            << n << (n == 1 ? " run" : " runs") << " cancelled\n";
  return 0;
}

StatusOr<int> ResumeRuns(api::ApiClient& api, const PauseArgs& args) {
  ASSIGN_OR_RETURN(Json scope, PauseScope(args));
  ASSIGN_OR_RETURN(Json resumed, api.Post("/api/v1/resume", scope));
  if (args.json) {
    std::cout << Dump(resumed, 2) << '\n';
  } else {
    std::cout << "resumed " << ScopeText(resumed) << '\n';
  }
  return 0;
}

}  // namespace

void AddPauseVerbs(CommandLine& cli) {
  auto& args = cli.Own<PauseArgs>();
  auto scope = [&args](CLI::App* cmd) {
    cmd->add_flag("--all", args.all, "every run");
    cmd->add_option("--repo", args.repo, "one repository's runs")->type_name("NAME");
    cmd->add_option("--agent", args.agent,
                    "one agent's runs (a trigger's or schedule's; adhoc: runs started by hand)")
        ->type_name("NAME");
    cmd->add_flag("--json", args.json, "print JSON");
  };
  CLI::App* pause = cli.app().add_subcommand(
      "pause",
      "the kill switch: no run starts in the scope, and those queued or running stop now "
      "(policies:admin); --list shows what is paused");
  scope(pause);
  pause->add_flag("--list", args.list, "list what is paused");
  cli.OnServer(pause, [&args](api::ApiClient& api) { return PauseRuns(api, args); });
  CLI::App* resume = cli.app().add_subcommand("resume", "lift a pause (the same scope)");
  scope(resume);
  cli.OnServer(resume, [&args](api::ApiClient& api) { return ResumeRuns(api, args); });
}

}  // namespace nightshift::cli
