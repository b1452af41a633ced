#include "server/trigger_service.h"

#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <chrono>

#include "core/log.h"
#include "forge/builtin.h"
#include "triggers/github.h"
#include "triggers/gitlab.h"
#include "triggers/slack.h"

namespace nightshift::server {
namespace {

using triggers::TriggerEvent;

constexpr std::string_view kKeySeparator = " | ";

// Events processed, and their runs queued, together: a larger batch spreads the store's commit
// over more runs, but no run of a batch is queued before its last event is processed.
constexpr int32_t kBatchSize = 32;

// A repository URL as a comparable text: no scheme, user, ".git" or trailing "/", the host in
// lower case, scp-like "host:path" as "host/path".
std::string NormalizeUrl(std::string_view url) {
  std::string text(url);
  bool has_host = false;
  if (size_t scheme = text.find("://"); scheme != std::string::npos) {
    text.erase(0, scheme + 3);
    has_host = text.rfind("file", 0) != 0 && url.rfind("file:", 0) != 0;
  } else if (size_t colon = text.find(':');
             colon != std::string::npos && text.find('/') > colon && !text.starts_with("/")) {
    text[colon] = '/';  // git@github.com:acme/app.git
    has_host = true;
  }
  if (has_host) {
    if (size_t at = text.find('@'); at != std::string::npos && at < text.find('/')) {
      text.erase(0, at + 1);
    }
  }
  while (text.ends_with("/")) text.pop_back();
  if (text.ends_with(".git")) text.resize(text.size() - 4);
  const size_t host_end = has_host ? text.find('/') : 0;
  for (size_t i = 0; i < std::min(host_end, text.size()); ++i) {
    text[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[i])));
  }
  if (!has_host) text.insert(0, "/");  // a local path: no host
  return text;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string Field(const TriggerEvent& event, const char* name) {
  auto it = event.fields.find(name);
  return it == event.fields.end() ? "" : it->second;
}

triggers::Seconds SecondsOf(int64_t ms) {
  return triggers::Seconds{
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::milliseconds(ms))};
}

// A schedule's key in the store: a changed expression or zone is a new schedule.
std::string ScheduleKey(const triggers::AgentSpec& agent, size_t index) {
  const triggers::ScheduleSpec& spec = *agent.triggers[index].schedule;
  return StrCat(agent.name, "#", index, " ", spec.cron, " ", spec.timezone);
}

// The trigger of `agent` that `event` is for: the one a schedule's fire names, or the first
// that matches a webhook's event; nullptr for none.
const triggers::TriggerSpec* TriggerFor(const triggers::AgentSpec& agent,
                                        const TriggerEvent& event) {
  if (event.source == "schedule") {
    if (Field(event, "agent") != agent.name) return nullptr;
    for (size_t i = 0; i < agent.triggers.size(); ++i) {
      if (std::to_string(i) == Field(event, "trigger") && agent.triggers[i].schedule) {
        return &agent.triggers[i];
      }
    }
    return nullptr;
  }
  for (const triggers::TriggerSpec& candidate : agent.triggers) {
    if (triggers::Matches(candidate, event)) return &candidate;
  }
  return nullptr;
}

Json Entry(std::string_view result, std::string_view reason = {}) {
  Json entry{{"result", result}};
  if (!reason.empty()) entry["reason"] = reason;
  return entry;
}

// What started a run, for people: on the run and in its change request's body.
std::string DescribeTrigger(const store::IncomingEvent& stored, const TriggerEvent& event) {
  std::string text = StrCat(event.source, " ", event.type);
  if (std::string workflow = Field(event, "workflow"); !workflow.empty()) {
    text += StrCat(" \"", workflow, "\"");
  }
  if (std::string branch = Field(event, "branch"); !branch.empty()) text += StrCat(" on ", branch);
  for (const char* state : {"conclusion", "status"}) {
    if (std::string value = Field(event, state); !value.empty()) {
      text += StrCat(" (", value, ")");
      break;
    }
  }
  if (std::string due = Field(event, "due"); !due.empty()) text += StrCat(" due ", due);
  for (const char* url : {"run_url", "url"}) {
    if (std::string value = Field(event, url); !value.empty()) {
      text += StrCat(": ", value);
      break;
    }
  }
  return StrCat(text, " (event ", stored.id, ")");
}

}  // namespace

StatusOr<std::optional<TriggerEvent>> ReadStoredEvent(const store::IncomingEvent& stored,
                                                      const triggers::TriggersConfig& config) {
  using Result = std::optional<TriggerEvent>;
  if (stored.source == "github") {
    return triggers::ParseGitHubEvent(stored.type, stored.delivery, stored.body);
  }
  if (stored.source == "gitlab") {
    return triggers::ParseGitLabEvent(stored.type, stored.delivery, stored.body);
  }
  if (stored.source == "slack") {
    httplib::Params form;
    httplib::detail::parse_query_text(stored.body, form);
    ASSIGN_OR_RETURN(TriggerEvent event, triggers::ParseSlackCommand(form));
    event.delivery = stored.delivery;
    return Result(std::move(event));
  }
  if (stored.source.starts_with("generic:")) {
    const std::string name = stored.source.substr(8);
    auto hook = config.webhooks.generic.find(name);
    if (hook == config.webhooks.generic.end()) {
      return NotFoundError(StrCat("generic hook '", name, "' is no longer configured"));
    }
    ASSIGN_OR_RETURN(TriggerEvent event,
                     triggers::ParseGenericEvent(name, hook->second, stored.delivery, stored.body));
    return Result(std::move(event));
  }
  if (stored.source == "schedule") {
    ASSIGN_OR_RETURN(Json body, triggers::ParseBody("schedule", stored.body));
    TriggerEvent event{.source = "schedule", .type = "schedule", .delivery = stored.delivery};
    for (const char* key : {"agent", "due", "cron", "timezone", "branch"}) {
      event.fields[key] = triggers::TextAt(body, StrCat("/", key).c_str());
    }
    event.fields["trigger"] = triggers::TextAt(body, "/trigger");
    event.fields["repository"] = "";
    const std::string& branch = event.fields["branch"];
    event.item = branch.empty() ? StrCat("schedule:", event.fields["agent"]) : "branch:" + branch;
    return Result(std::move(event));
  }
  return InvalidArgumentError(StrCat("unknown event source '", stored.source, "'"));
}

TriggerService::TriggerService(store::Store& store, RunService& runs, TriggerOptions options,
                               const Clock& clock)
    : store_(store), runs_(runs), options_(std::move(options)), clock_(clock) {}

TriggerService::~TriggerService() { Stop(); }

TriggerService::AgentSet TriggerService::Agents() const {
  AgentSet set;
  for (const triggers::AgentSpec& agent : options_.config.agents) set.agents.push_back(&agent);
  if (options_.repository_agents) set.held = options_.repository_agents();
  if (set.held) {
    for (const auto& [repository, file] : *set.held) {
      for (const triggers::AgentSpec& agent : file.agents) set.agents.push_back(&agent);
    }
  }
  return set;
}

const triggers::AgentSpec* TriggerService::AgentSet::Find(std::string_view name) const {
  for (const triggers::AgentSpec* agent : agents) {
    if (agent->name == name) return agent;
  }
  return nullptr;
}

void TriggerService::Start() {
  std::lock_guard lock(mu_);
  if (worker_.joinable()) return;
  stopping_ = false;
  worker_ = std::thread([this] { WorkerLoop(); });
}

void TriggerService::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  processed_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void TriggerService::WorkerLoop() {
  for (;;) {
    ProcessDue();
    std::unique_lock lock(mu_);
    wake_.wait_for(lock, std::chrono::milliseconds(options_.tick_ms),
                   [&] { return stopping_ || pending_; });
    if (stopping_) return;
    pending_ = false;
  }
}

StatusOr<store::IncomingEvent> TriggerService::Accept(const store::IncomingEvent& event) {
  ASSIGN_OR_RETURN(store::IncomingEvent stored, store_.AddIncoming(event));
  if (stored.redeliveries > 0) {
    return AlreadyExistsError(StrCat(event.source, " delivery ", event.delivery,
                                     " is a redelivery of event ", stored.id));
  }
  {
    std::lock_guard lock(mu_);
    pending_ = true;
  }
  wake_.notify_one();
  return stored;
}

StatusOr<store::IncomingEvent> TriggerService::AcceptIgnored(const store::IncomingEvent& event,
                                                             const std::string& reason) {
  ASSIGN_OR_RETURN(store::IncomingEvent stored, store_.AddIncoming(event));
  if (stored.state == store::IncomingState::kPending && stored.redeliveries == 0) {
    const std::string outcome = Json::array({Entry("ignored", reason)}).dump();
    RETURN_IF_ERROR(store_.FinishIncoming({{stored.id, outcome}}));
    stored.state = store::IncomingState::kDone;
    stored.outcome = outcome;
  }
  return stored;
}

StatusOr<store::IncomingEvent> TriggerService::WaitProcessed(int64_t id, int64_t timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    ASSIGN_OR_RETURN(store::IncomingEvent event, store_.GetIncoming(id));
    if (event.state == store::IncomingState::kDone) return event;
    std::unique_lock lock(mu_);
    if (stopping_ || std::chrono::steady_clock::now() >= deadline) return event;
    processed_.wait_until(
        lock, std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(50)));
  }
}

StatusOr<store::IncomingEvent> TriggerService::Replay(int64_t id) {
  ASSIGN_OR_RETURN(store::IncomingEvent event, store_.ReplayIncoming(id));
  {
    std::lock_guard lock(mu_);
    pending_ = true;
  }
  wake_.notify_one();
  return event;
}

bool TriggerService::Stopping() {
  std::lock_guard lock(mu_);
  return stopping_;
}

void TriggerService::ProcessDue() {
  std::lock_guard process(process_mu_);
  FireSchedules();
  for (;;) {
    auto pending = store_.ListIncoming(
        {.state = store::IncomingState::kPending, .before_id = 0, .limit = kBatchSize});
    if (!pending.ok()) {
      log::Get("triggers")->error("cannot list pending events: {}", pending.status().message());
      break;
    }
    if (pending->empty()) break;
    Batch batch;
    std::vector<Json> results;
    for (const store::IncomingEvent& event : *pending) {
      if (Stopping()) break;
      results.push_back(Process(event, batch));
      Failpoint("processed");
    }
    // The batch's runs in one transaction, then its outcomes in another: a crash between the
    // two processes the batch again and finds its runs (idempotency keys).
    Flush(batch, results);
    std::vector<store::Store::Outcome> outcomes;
    for (size_t i = 0; i < results.size(); ++i) {
      outcomes.push_back(
          {(*pending)[i].id, results[i].dump(-1, ' ', false, Json::error_handler_t::replace)});
    }
    if (Status st = store_.FinishIncoming(outcomes); !st.ok()) {
      log::Get("triggers")
          ->error("cannot record what came of {} events: {}", outcomes.size(), st.message());
      break;
    }
    processed_.notify_all();
    if (Stopping()) return;
  }
  StartWaiting();
}

void TriggerService::FireSchedules() {
  const int64_t now_ms = clock_.NowMs();
  const triggers::Seconds now = SecondsOf(now_ms);
  const AgentSet set = Agents();
  for (const triggers::AgentSpec* each : set.agents) {
    const triggers::AgentSpec& agent = *each;
    for (size_t i = 0; i < agent.triggers.size(); ++i) {
      const triggers::TriggerSpec& trigger = agent.triggers[i];
      if (!trigger.schedule || !trigger.schedule->schedule) continue;
      const triggers::ScheduleSpec& spec = *trigger.schedule;
      const std::string key = ScheduleKey(agent, i);
      auto last_ms = store_.ScheduleLastDue(key);
      if (!last_ms.ok()) {
        log::Get("triggers")->error("schedule {}: {}", key, last_ms.status().message());
        continue;
      }
      if (*last_ms == 0) {  // new: due times from now on
        if (Status st = store_.RecordScheduleDue(key, now_ms, std::nullopt); !st.ok()) {
          log::Get("triggers")->error("schedule {}: {}", key, st.message());
        }
        continue;
      }
      const triggers::Owed owed =
          triggers::OwedAt(*spec.schedule, SecondsOf(*last_ms), now, spec.misfire);
      if (!owed.fire) continue;
      const std::string due = spec.schedule->Format(*owed.fire);
      const Json body{
          {"agent", agent.name}, {"trigger", static_cast<int64_t>(i)}, {"due", due},
          {"cron", spec.cron},   {"timezone", spec.timezone},          {"branch", spec.branch}};
      const int64_t due_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(owed.fire->time_since_epoch())
              .count();
      Status st = store_.RecordScheduleDue(key, due_ms,
                                           store::IncomingEvent{.source = "schedule",
                                                                .delivery = StrCat(key, " @ ", due),
                                                                .type = "schedule",
                                                                .body = body.dump()});
      if (!st.ok()) {
        log::Get("triggers")->error("schedule {}: {}", key, st.message());
        continue;
      }
      Failpoint("fired");
    }
  }
}

std::string TriggerService::ForgeName(const store::Repository& repo) const {
  if (auto it = options_.forge_names.find(repo.name); it != options_.forge_names.end()) {
    return it->second;
  }
  std::string url = NormalizeUrl(repo.url);
  const size_t slash = url.find('/');
  return slash == std::string::npos ? url : url.substr(slash + 1);
}

std::vector<store::Repository> TriggerService::RepositoriesOf(
    const TriggerEvent& event, const std::vector<store::Repository>& all) const {
  if (event.repository.empty()) return all;
  std::vector<std::string> urls;
  for (const std::string& url : event.repository_urls) {
    if (!url.empty()) urls.push_back(NormalizeUrl(url));
  }
  std::vector<store::Repository> out;
  for (const store::Repository& repo : all) {
    const std::string url = NormalizeUrl(repo.url);
    if (EqualsIgnoreCase(ForgeName(repo), event.repository) ||
        std::find(urls.begin(), urls.end(), url) != urls.end()) {
      out.push_back(repo);
    }
  }
  return out;
}

std::optional<Json> TriggerService::FollowUp(const TriggerEvent& event,
                                             const std::vector<store::Repository>& repos) {
  // A reviewer's `/nightshift …` on one of the platform's change requests, on the forge.
  const bool on_change_request =
      (event.source == "github" && event.type == "issue_comment" &&
       !Field(event, "pull_request_url").empty()) ||
      (event.source == "github" && event.type == "pull_request_review_comment") ||
      (event.source == "gitlab" && event.type == "note" &&
       Field(event, "noteable_type") == "MergeRequest");
  if (!on_change_request) return std::nullopt;
  const std::string body = Field(event, "comment.body");
  if (!forge::FollowUpInstruction(body)) return std::nullopt;
  const std::string number = Field(event, "number");
  for (const store::Repository& repo : repos) {
    auto crs = store_.ListChangeRequests(repo.name, store::CrState::kOpen);
    if (!crs.ok()) return Entry("error", crs.status().message());
    for (const store::ChangeRequest& cr : *crs) {
      if (cr.remote_id.empty() || cr.remote_id != number) continue;
      const std::string author = Field(event, "comment.author");
      auto commented = runs_.Comment(cr.id, body, Principal{.kind = event.source, .name = author});
      if (!commented.ok()) return Entry("error", commented.status().message());
      Json entry = Entry("follow_up");
      entry["change_request_id"] = cr.id;
      if (commented->second) entry["run_id"] = commented->second->id;
      return entry;
    }
  }
  return std::nullopt;  // not one of ours: agents may still want it
}

void TriggerService::Flush(Batch& batch, std::vector<Json>& outcomes) {
  if (batch.pending.empty()) return;
  std::vector<std::pair<SubmitRequest, Principal>> requests;
  for (const Batch::Pending& p : batch.pending) requests.emplace_back(p.request, p.principal);
  std::vector<StatusOr<store::Run>> runs = runs_.SubmitMany(requests);
  for (size_t i = 0; i < runs.size(); ++i) {
    if (runs[i].ok() || runs[i].status().code() != StatusCode::kAlreadyExists) continue;
    // Started already, by a process that died before it recorded so: that run stands.
    const SubmitRequest& request = batch.pending[i].request;
    runs[i] = store_.GetRunByKey(request.idempotency_key);
    if (runs[i].ok())
      (void)store_.PutTriggerKey({.key = request.concurrency_key, .run_id = runs[i]->id});
  }
  for (Json& outcome : outcomes) {
    for (Json& entry : outcome) {
      for (const char* field : {"pending", "pending_into"}) {
        if (!entry.contains(field)) continue;
        const size_t index = entry[field].get<size_t>();
        entry.erase(field);
        const StatusOr<store::Run>& run = runs.at(index);
        if (!run.ok()) {
          entry["result"] = "error";
          entry["reason"] =
              std::string(field) == "pending"
                  ? run.status().message()
                  : StrCat("the run it was coalesced into was refused: ", run.status().message());
          continue;
        }
        entry["run_id"] = run->id;
        if (std::string(field) == "pending_into") {
          entry["reason"] = StrCat("into run ", run->id, ", not started yet");
        }
      }
    }
  }
  batch = Batch{};
  Failpoint("submitted");
}

Json TriggerService::Process(const store::IncomingEvent& stored, Batch& batch) {
  auto parsed = ReadStoredEvent(stored, options_.config);
  if (!parsed.ok()) return Json::array({Entry("ignored", parsed.status().message())});
  if (!*parsed) return Json::array({Entry("ignored", "its action starts nothing")});
  const TriggerEvent& event = **parsed;
  if (auto guard = triggers::LoopGuard(event, options_.own)) {
    return Json::array({Entry("loop_guard", *guard)});
  }
  if (!batch.repositories) {  // once a batch
    auto all = store_.ListRepositories();
    if (!all.ok()) return Json::array({Entry("error", all.status().message())});
    batch.repositories = *std::move(all);
  }
  const std::vector<store::Repository> repos = RepositoriesOf(event, *batch.repositories);
  if (!event.repository.empty() && repos.empty()) {
    return Json::array({Entry("no_matching_repository",
                              StrCat("no registered repository is ", event.repository))});
  }
  if (event.source == "slack" && event.repository.empty()) {
    return Json::array({Entry("ignored", "usage: /nightshift TASK in OWNER/NAME")});
  }
  if (event.type == "push" && options_.repository_pushed) {
    for (const store::Repository& repo : repos) options_.repository_pushed(repo.name);
  }
  if (auto follow_up = FollowUp(event, repos)) return Json::array({*follow_up});

  Json outcome = Json::array();
  const AgentSet set = Agents();
  for (const triggers::AgentSpec* agent : set.agents) {
    const triggers::TriggerSpec* trigger = TriggerFor(*agent, event);
    if (trigger == nullptr) continue;
    for (const store::Repository& repo : repos) {
      if (!triggers::AgentRunsOn(*agent, repo.name, ForgeName(repo))) continue;
      outcome.push_back(Dispatch(stored, event, Target{agent, trigger, repo}, batch));
    }
  }
  if (outcome.empty()) outcome.push_back(Entry("no_matching_agent"));
  return outcome;
}

Json TriggerService::Dispatch(const store::IncomingEvent& stored, const TriggerEvent& event,
                              const Target& target, Batch& batch) {
  TriggerEvent ev = event;
  if (ev.repository.empty()) ev.fields["repository"] = ForgeName(target.repo);
  std::string rendered_key = ev.item.empty() ? StrCat("event:", stored.id) : ev.item;
  if (target.trigger->key) {
    auto key = target.trigger->key->Render(ev.fields, triggers::Quoting::kNone);
    if (!key.ok()) return Entry("error", key.status().message());
    rendered_key = *key;
  }
  const std::string key =
      StrCat(target.agent->name, kKeySeparator, target.repo.name, kKeySeparator, rendered_key);
  Json entry;
  entry["agent"] = target.agent->name;
  entry["repository"] = target.repo.name;
  auto with = [&](Json result) {
    result.update(entry);
    return result;
  };
  if (auto pending = batch.keys.find(key); pending != batch.keys.end()) {
    Json result = Entry("coalesced");  // into a run of this batch: queued, as far as it knows
    result["pending_into"] = pending->second;
    return with(result);
  }
  auto existing = store_.GetTriggerKey(key);
  if (!existing.ok()) return with(Entry("error", existing.status().message()));
  if (*existing) {
    auto run = store_.GetRun((*existing)->run_id);
    if (run.ok() &&
        run->idempotency_key.starts_with(StrCat("event:", stored.id, "#", stored.replays, ":"))) {
      // Processed before (a crash, a replay of an unfinished one): the run it started stands.
      Json started = with(Entry("started"));
      started["run_id"] = run->id;
      return started;
    }
    if (run.ok() && !store::IsTerminal(run->state)) {
      Json result;
      if (run->state == store::RunState::kQueued) {
        result = Entry("coalesced", StrCat("into run ", run->id, ", not started yet"));
      } else if (target.agent->overlap == triggers::Overlap::kSkip) {
        result = Entry("skipped", StrCat("run ", run->id, " is still running (overlap: skip)"));
      } else if (target.agent->overlap == triggers::Overlap::kQueue) {
        if ((*existing)->waiting_event_id != 0 && (*existing)->waiting_event_id != stored.id) {
          result = Entry("coalesced", StrCat("into event ", (*existing)->waiting_event_id,
                                             ", waiting for run ", run->id));
        } else {
          store::TriggerKey waiting = **existing;
          waiting.waiting_event_id = stored.id;
          if (Status st = store_.PutTriggerKey(waiting); !st.ok()) {
            return with(Entry("error", st.message()));
          }
          result = Entry("queued", StrCat("starts when run ", run->id, " ends (overlap: queue)"));
        }
      } else {
        auto cancelled =
            runs_.Cancel(run->id, Principal{.kind = "trigger", .name = target.agent->name});
        if (!cancelled.ok() && cancelled.status().code() != StatusCode::kFailedPrecondition) {
          return with(Entry("error", cancelled.status().message()));
        }
        Json started = Start(stored, ev, target, key, batch);
        started["cancelled_run_id"] = run->id;
        return with(started);
      }
      result["run_id"] = run->id;
      return with(result);
    }
  }
  return with(Start(stored, ev, target, key, batch));
}

Json TriggerService::Start(const store::IncomingEvent& stored, const TriggerEvent& event,
                           const Target& target, const std::string& key, Batch& batch) {
  const triggers::AgentSpec& agent = *target.agent;
  const Principal principal{.kind = event.source == "schedule" ? "schedule" : "trigger",
                            .name = agent.name};
  const std::string idempotency_key =
      StrCat("event:", stored.id, "#", stored.replays, ":", agent.name, ":", target.repo.name);
  auto remember = [&](const store::Run& run) {
    Json entry = Entry("started");
    entry["run_id"] = run.id;
    return entry;
  };
  // Started already, by a process that died before it recorded so.
  if (auto run = store_.GetRunByKey(idempotency_key); run.ok()) {
    (void)store_.PutTriggerKey({.key = key, .run_id = run->id});
    return remember(*run);
  }

  if (agent.runs_per_hour > 0 || agent.max_concurrent > 0) {
    int64_t since = batch.per_agent[agent.name];  // this batch's runs: new, unfinished
    int64_t unfinished = since;
    for (const char* kind : {"trigger", "schedule"}) {
      auto counts = store_.CountRuns(Principal{.kind = kind, .name = agent.name}.Describe(),
                                     clock_.NowMs() - 3'600'000);
      if (!counts.ok()) return Entry("error", counts.status().message());
      since += counts->since;
      unfinished += counts->unfinished;
    }
    if (agent.runs_per_hour > 0 && since >= agent.runs_per_hour) {
      return Entry("rate_limited", StrCat(since, " runs in the last hour (limits.runs_per_hour: ",
                                          agent.runs_per_hour, ")"));
    }
    if (agent.max_concurrent > 0 && unfinished >= agent.max_concurrent) {
      return Entry("rate_limited", StrCat(unfinished, " runs unfinished (limits.max_concurrent: ",
                                          agent.max_concurrent, ")"));
    }
  }
  SubmitRequest request{.repo = target.repo.name,
                        .model = agent.model,
                        .timeout_seconds = agent.timeout_seconds,
                        .idempotency_key = idempotency_key,
                        .trigger = DescribeTrigger(stored, event),
                        .concurrency_key = key};
  request.ref = Field(event, "branch");  // a schedule's `branch:`, the event's branch, or HEAD
  if (target.trigger->task) {
    auto task = target.trigger->task->Render(event.fields, triggers::Quoting::kNone);
    if (!task.ok()) return Entry("error", task.status().message());
    request.task = *task;
  } else if (target.trigger->recipe) {
    auto recipe = target.trigger->recipe->Render(event.fields, triggers::Quoting::kShell);
    if (!recipe.ok()) return Entry("error", recipe.status().message());
    request.recipe = *recipe;
  }
  if (options_.context) {
    auto context = options_.context(target.repo, event);
    if (context.ok()) {
      request.context = *std::move(context);
    } else {
      log::Get("triggers")
          ->warn("event {}: no context for the run: {}", stored.id, context.status().message());
    }
  }
  if (!request.task.empty() && !request.context.empty()) {
    std::string files;
    for (const auto& [path, text] : request.context)
      files += StrCat(files.empty() ? "" : ", ", path);
    request.task += StrCat("\n\n(The platform put this event's context in ", files, ".)");
  }
  const size_t index = batch.pending.size();
  batch.pending.push_back({std::move(request), principal});
  batch.keys[key] = index;
  ++batch.per_agent[agent.name];
  Json entry = Entry("started");
  entry["pending"] = index;
  return entry;
}

void TriggerService::StartWaiting() {
  auto waiting = store_.ListWaitingTriggerKeys();
  if (!waiting.ok() || waiting->empty()) return;
  const AgentSet set = Agents();
  for (const store::TriggerKey& key : *waiting) {
    auto run = store_.GetRun(key.run_id);
    if (run.ok() && !store::IsTerminal(run->state)) continue;
    // "agent | repository | key": find what the event would start for that agent there.
    const size_t first = key.key.find(kKeySeparator);
    const size_t second = key.key.find(kKeySeparator, first + kKeySeparator.size());
    if (first == std::string::npos || second == std::string::npos) continue;
    const std::string agent_name = key.key.substr(0, first);
    const std::string repo_name =
        key.key.substr(first + kKeySeparator.size(), second - first - kKeySeparator.size());
    auto stored = store_.GetIncoming(key.waiting_event_id);
    auto repo = store_.GetRepository(repo_name);
    store::TriggerKey cleared = key;
    cleared.waiting_event_id = 0;
    if (!stored.ok() || !repo.ok()) {
      (void)store_.PutTriggerKey(cleared);
      continue;
    }
    auto parsed = ReadStoredEvent(*stored, options_.config);
    const triggers::AgentSpec* agent = set.Find(agent_name);
    const triggers::TriggerSpec* trigger =
        agent != nullptr && parsed.ok() && *parsed ? TriggerFor(*agent, **parsed) : nullptr;
    if (trigger == nullptr) {
      (void)store_.PutTriggerKey(cleared);
      continue;
    }
    TriggerEvent event = **parsed;
    if (event.repository.empty()) event.fields["repository"] = ForgeName(*repo);
    Batch batch;
    std::vector<Json> one = {
        Json::array({Start(*stored, event, Target{agent, trigger, *repo}, key.key, batch)})};
    Flush(batch, one);
    Json started = one[0][0];
    // Started, the key's run is the new one and nothing waits (CreateRun recorded so).
    if (!started.contains("run_id")) (void)store_.PutTriggerKey(cleared);
    // The event's outcome said "queued": now it names the run.
    Json outcome = Json::parse(stored->outcome, nullptr, /*allow_exceptions=*/false);
    if (outcome.is_array()) {
      for (Json& entry : outcome) {
        if (entry.is_object() && entry.value("result", "") == "queued" &&
            entry.value("agent", "") == agent->name &&
            entry.value("repository", "") == repo->name) {
          const int64_t after = entry.value("run_id", int64_t{0});
          entry = started;
          entry["agent"] = agent->name;
          entry["repository"] = repo->name;
          if (!entry.contains("reason")) {
            entry["reason"] = StrCat("after run ", after, " ended (overlap: queue)");
          }
        }
      }
      (void)store_.UpdateIncomingOutcome(
          stored->id, outcome.dump(-1, ' ', false, Json::error_handler_t::replace));
    }
    log::Get("triggers")->info("event {} for {}: {}", stored->id, key.key, started.dump());
  }
}

std::vector<ScheduleInfo> TriggerService::Schedules() {
  const triggers::Seconds now = SecondsOf(clock_.NowMs());
  std::vector<ScheduleInfo> out;
  const AgentSet set = Agents();
  for (const triggers::AgentSpec* each : set.agents) {
    const triggers::AgentSpec& agent = *each;
    for (size_t i = 0; i < agent.triggers.size(); ++i) {
      const auto& trigger = agent.triggers[i];
      if (!trigger.schedule || !trigger.schedule->schedule) continue;
      const triggers::ScheduleSpec& spec = *trigger.schedule;
      ScheduleInfo info{.agent = agent.name,
                        .cron = spec.cron,
                        .timezone = spec.timezone,
                        .misfire = spec.misfire == triggers::Misfire::kSkip ? "skip" : "run_once"};
      auto last_ms = store_.ScheduleLastDue(ScheduleKey(agent, i));
      if (last_ms.ok() && *last_ms > 0) info.last_due = spec.schedule->Format(SecondsOf(*last_ms));
      if (auto next = spec.schedule->Next(now)) info.next_due = spec.schedule->Format(*next);
      out.push_back(std::move(info));
    }
  }
  return out;
}

}  // namespace nightshift::server
