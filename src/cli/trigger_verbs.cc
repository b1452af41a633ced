// nightshift events [--json] [-n N], events replay ID, schedule list, agents [--json],
// agents refresh REPO

#include <iostream>
#include <string>

#include "cli/output.h"
#include "cli/verbs.h"

namespace nightshift::cli {
namespace {

struct EventsArgs {
  bool json = false;
  int64_t limit = 20;
};

struct ReplayArgs {
  std::string id_text;
  bool json = false;
};

struct ScheduleArgs {
  bool json = false;
};

struct AgentsArgs {
  bool json = false;
  std::string repository;  // agents refresh
};

// One outcome entry in words: "started run 12 (ci-fixer on app)".
std::string Describe(const Json& entry) {
  if (!entry.is_object()) return "?";
  std::string text = entry.value("result", "?");
  if (entry.contains("run_id") && entry["run_id"].is_number_integer()) {
    text += StrCat(" run ", entry["run_id"].get<int64_t>());
  }
  if (entry.contains("agent") && entry["agent"].is_string()) {
    text += StrCat(" (", entry["agent"].get<std::string>(),
                   entry.contains("repository") && entry["repository"].is_string()
                       ? StrCat(" on ", entry["repository"].get<std::string>())
                       : "",
                   ")");
  }
  if (entry.contains("reason") && entry["reason"].is_string()) {
    text += StrCat(": ", entry["reason"].get<std::string>());
  }
  return OneLine(text, 160);
}

void PrintEvent(const api::IncomingEvent& event) {
  std::cout << event.id << "  " << UtcTime(event.received_at) << "  " << Or(event.source) << " "
            << Or(event.type) << "  " << OneLine(Or(event.delivery), 40);
  if (event.redeliveries > 0)
    std::cout << "  (redelivered " << event.redeliveries << "x: duplicate)";
  if (event.replays > 0) std::cout << "  (replayed " << event.replays << "x)";
  std::cout << '\n';
  if (event.state == "pending") {
    std::cout << "    pending\n";
    return;
  }
  if (!event.outcome.is_array()) return;
  for (const Json& entry : event.outcome) std::cout << "    " << Describe(entry) << '\n';
}

StatusOr<int> ListEvents(api::ApiClient& api, const EventsArgs& args) {
  ASSIGN_OR_RETURN(api::IncomingEventList list, api.ListIncoming(args.limit, std::nullopt));
  if (args.json) {
    std::cout << Dump(api::ToJson(list), 2) << '\n';
    return 0;
  }
  if (list.events.empty()) {
    std::cout << "no events\n";
    return 0;
  }
  for (const api::IncomingEvent& event : list.events) PrintEvent(event);
  return 0;
}

StatusOr<int> ReplayEvent(api::ApiClient& api, const ReplayArgs& args) {
  ASSIGN_OR_RETURN(api::IncomingEvent event, api.ReplayIncoming(ParseId(args.id_text).value_or(0)));
  if (args.json) {
    std::cout << Dump(api::ToJson(event), 2) << '\n';
    return 0;
  }
  PrintEvent(event);
  return 0;
}

StatusOr<int> ListSchedules(api::ApiClient& api, const ScheduleArgs& args) {
  ASSIGN_OR_RETURN(api::ScheduleList list, api.ListSchedules());
  if (args.json) {
    std::cout << Dump(api::ToJson(list), 2) << '\n';
    return 0;
  }
  if (list.schedules.empty()) {
    std::cout << "no schedules\n";
    return 0;
  }
  for (const api::ScheduleEntry& s : list.schedules) {
    std::cout << Or(s.agent) << "  \"" << Or(s.cron) << "\" " << Or(s.timezone) << "  next "
              << Or(s.next_due) << "  (misfire " << Or(s.misfire) << ")\n";
  }
  return 0;
}

// Prints the agents and each repository file's errors; 1 when a file could not be used.
int PrintAgents(const api::AgentList& list, bool json) {
  bool failed = false;
  for (const api::AgentFileEntry& file : list.files) failed = failed || !file.errors.empty();
  if (json) {
    std::cout << Dump(api::ToJson(list), 2) << '\n';
    return failed ? 1 : 0;
  }
  if (list.agents.empty()) std::cout << "no agents\n";
  for (const api::AgentEntry& agent : list.agents) {
    std::cout << Or(agent.name) << "  " << Or(agent.runs);
    if (!agent.model.empty()) std::cout << " (" << agent.model << ")";
    if (agent.origin == "repository") {
      std::cout << "  from " << Or(agent.repository) << " @ " << agent.commit.substr(0, 12);
    } else {
      std::string globs;
      for (const std::string& glob : agent.repositories)
        globs += StrCat(globs.empty() ? "" : " ", glob);
      std::cout << "  on " << Or(globs);
    }
    std::cout << "  overlap " << Or(agent.overlap) << '\n';
    for (const std::string& trigger : agent.triggers)
      std::cout << "    " << OneLine(trigger, 120) << '\n';
  }
  for (const api::AgentFileEntry& file : list.files) {
    if (file.errors.empty()) continue;
    std::cout << file.repository << ": .nightshift/agents.yml at "
              << Or(file.failed_commit).substr(0, 12) << " cannot be used; its agents stay "
              << (file.commit.empty() ? std::string("none")
                                      : "those of " + file.commit.substr(0, 12))
              << '\n';
    for (const std::string& error : file.errors) std::cout << "    " << OneLine(error, 200) << '\n';
  }
  return failed ? 1 : 0;
}

StatusOr<int> ListAgents(api::ApiClient& api, const AgentsArgs& args) {
  ASSIGN_OR_RETURN(api::AgentList list, api.ListAgents());
  return PrintAgents(list, args.json);
}

StatusOr<int> RefreshAgents(api::ApiClient& api, const AgentsArgs& args) {
  ASSIGN_OR_RETURN(api::AgentList list, api.RefreshAgents(args.repository));
  return PrintAgents(list, args.json);
}

}  // namespace

void AddTriggerVerbs(CommandLine& cli) {
  auto& events_args = cli.Own<EventsArgs>();
  CLI::App* events = cli.app().add_subcommand(
      "events", "what arrived for the triggers (webhooks, schedules) and what it started");
  events->add_flag("--json", events_args.json, "print JSON");
  events->add_option("-n,--limit", events_args.limit, "how many, newest first (default 20)")
      ->check(CLI::Range(1, 500));
  auto& replay_args = cli.Own<ReplayArgs>();
  CLI::App* replay = events->add_subcommand("replay", "process a stored event again, on purpose");
  replay->add_flag("--json", replay_args.json, "print JSON");
  replay->add_option("ID", replay_args.id_text, "event id")->required()->check(RunIdValidator());
  // The subcommand first: the first parsed verb runs, and `events` is parsed too.
  cli.OnServer(replay,
               [&replay_args](api::ApiClient& api) { return ReplayEvent(api, replay_args); });
  cli.OnServer(events,
               [&events_args](api::ApiClient& api) { return ListEvents(api, events_args); });

  CLI::App* schedule = cli.app().add_subcommand("schedule", "schedules: list");
  schedule->require_subcommand(1);
  auto& schedule_args = cli.Own<ScheduleArgs>();
  CLI::App* list = schedule->add_subcommand("list", "each schedule and its next fire time");
  list->add_flag("--json", schedule_args.json, "print JSON");
  cli.OnServer(list,
               [&schedule_args](api::ApiClient& api) { return ListSchedules(api, schedule_args); });

  auto& agents_args = cli.Own<AgentsArgs>();
  CLI::App* agents = cli.app().add_subcommand(
      "agents", "the agents in force: the config's and repositories' own (.nightshift/agents.yml)");
  agents->add_flag("--json", agents_args.json, "print JSON");
  CLI::App* refresh = agents->add_subcommand(
      "refresh", "fetch a repository and read its .nightshift/agents.yml again now");
  refresh->add_flag("--json", agents_args.json, "print JSON");
  refresh->add_option("REPO", agents_args.repository, "registered repository name")->required();
  cli.OnServer(refresh,
               [&agents_args](api::ApiClient& api) { return RefreshAgents(api, agents_args); });
  cli.OnServer(agents,
               [&agents_args](api::ApiClient& api) { return ListAgents(api, agents_args); });
}

}  // namespace nightshift::cli
