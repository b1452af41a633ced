#pragma once

// The triggers' half of the control plane (docs/triggers.md): what arrives — webhook
// deliveries, Slack's slash commands, schedules' due times — is stored first (the ledger,
// store::IncomingEvent), then one worker thread processes it: it reads the stored bytes as an
// event, applies the loop guard, matches agents and repositories, coalesces by concurrency
// key, applies the limits, and submits runs through RunService with the trigger as the
// principal. What became of each event is recorded with it.
//
// Exactly once: a delivery is stored once per (source, delivery id); a schedule's due time is
// recorded in the same transaction as its fire; every run a trigger submits carries an
// idempotency key made of the event and the agent, so processing an event again after a crash
// finds the run it already started instead of starting another.

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/json.h"
#include "core/status.h"
#include "server/run_service.h"
#include "store/store.h"
#include "triggers/agents.h"
#include "triggers/webhook_event.h"

namespace nightshift::server {

struct TriggerOptions {
  triggers::TriggersConfig config;
  triggers::OwnIdentity own;
  // Each registered repository's name on its forge ("acme/app"), from its forge link, when it
  // has one; otherwise it is taken from the path of its URL.
  std::map<std::string, std::string> forge_names;
  // Files a run gets because of its event: a CI failure's failed jobs' logs
  // (".nightshift/context/ci.log"). Called on the worker thread; may be unset.
  std::function<StatusOr<std::map<std::string, std::string>>(const store::Repository& repo,
                                                             const triggers::TriggerEvent& event)>
      context;
  // The repositories' own agents in force (RepositoryAgents::Current); unset: none.
  std::function<std::shared_ptr<const triggers::RepositoryAgentsMap>()> repository_agents;
  // A push to a registered repository arrived: its own agents may have changed.
  std::function<void(const std::string& repository)> repository_pushed;
  // Called at named points of processing, so tests can kill the process there ("fired",
  // "submitted"); unset in production.
  std::function<void(std::string_view point)> failpoint;
  int64_t tick_ms = 500;  // how often schedules and queued keys are looked at
};

// One schedule, as `nightshift schedule list` shows it.
struct ScheduleInfo {
  std::string agent;
  std::string cron;
  std::string timezone;
  std::string misfire;
  std::string last_due;  // RFC 3339 in its zone; empty when it never fired
  std::string next_due;
};

class TriggerService {
 public:
  TriggerService(store::Store& store, RunService& runs, TriggerOptions options, const Clock& clock);
  ~TriggerService();

  // Starts the worker: it first processes what a previous process left pending.
  void Start();
  void Stop();

  // Stores `event` (a webhook delivery as received) and wakes the worker. AlreadyExists, with
  // the stored event's id in the message, for a delivery stored before (it counts the
  // redelivery).
  StatusOr<store::IncomingEvent> Accept(const store::IncomingEvent& event);
  // Stores an event that starts nothing (an unknown type, a ping) as done with `reason`.
  StatusOr<store::IncomingEvent> AcceptIgnored(const store::IncomingEvent& event,
                                               const std::string& reason);
  // The event once processed, waiting up to `timeout_ms` (Slack wants its answer in 3 s).
  StatusOr<store::IncomingEvent> WaitProcessed(int64_t id, int64_t timeout_ms);
  // Processes a stored event again, on purpose (`nightshift events replay ID`).
  StatusOr<store::IncomingEvent> Replay(int64_t id);

  std::vector<ScheduleInfo> Schedules();

  const triggers::TriggersConfig& config() const { return options_.config; }
  store::Store& store() { return store_; }

  // Processes everything due now on the calling thread (pending events, schedules, waiting
  // keys); what the worker does each tick. For tests that drive time with a FakeClock.
  void ProcessDue();

 private:
  // The agents in force for one pass: the server config's, then the repositories' own (whose
  // snapshot `held` keeps alive while the pass uses them).
  struct AgentSet {
    std::shared_ptr<const triggers::RepositoryAgentsMap> held;
    std::vector<const triggers::AgentSpec*> agents;
    const triggers::AgentSpec* Find(std::string_view name) const;
  };
  AgentSet Agents() const;

  struct Target {
    const triggers::AgentSpec* agent;
    const triggers::TriggerSpec* trigger;
    store::Repository repo;
  };

  void WorkerLoop();
  bool Stopping();
  void FireSchedules();
  void StartWaiting();
  // The runs a batch of events starts: submitted together once the batch is processed, in one
  // store transaction (Flush). Until then each stands as a queued run of its concurrency key, so
  // a later event of the batch with the same key is coalesced into it, and counts towards its
  // agent's limits. Outcome entries name a pending run by its index ("pending", or
  // "pending_into" for one coalesced into it) until Flush writes the run's id in.
  struct Batch {
    struct Pending {
      SubmitRequest request;
      Principal principal;
    };
    std::vector<Pending> pending;
    std::map<std::string, size_t> keys;        // concurrency key → its pending run
    std::map<std::string, int64_t> per_agent;  // pending runs by agent name
    std::optional<std::vector<store::Repository>> repositories;  // read once a batch
  };
  // Submits the batch's runs and completes `outcomes` (arrays of entries) with their ids.
  void Flush(Batch& batch, std::vector<Json>& outcomes);

  Json Process(const store::IncomingEvent& stored, Batch& batch);
  // What one agent does with the event on one repository: an outcome entry.
  Json Dispatch(const store::IncomingEvent& stored, const triggers::TriggerEvent& event,
                const Target& target, Batch& batch);
  Json Start(const store::IncomingEvent& stored, const triggers::TriggerEvent& event,
             const Target& target, const std::string& key, Batch& batch);
  std::optional<Json> FollowUp(const triggers::TriggerEvent& event,
                               const std::vector<store::Repository>& repos);
  std::vector<store::Repository> RepositoriesOf(const triggers::TriggerEvent& event,
                                                const std::vector<store::Repository>& all) const;
  std::string ForgeName(const store::Repository& repo) const;
  void Failpoint(std::string_view point) const {
    if (options_.failpoint) options_.failpoint(point);
  }

  store::Store& store_;
  RunService& runs_;
  const TriggerOptions options_;
  const Clock& clock_;

  std::mutex mu_;
  std::condition_variable wake_;       // the worker: something arrived, or stop
  std::condition_variable processed_;  // waiters of WaitProcessed
  bool stopping_ = false;
  bool pending_ = false;
  std::thread worker_;
  std::mutex process_mu_;  // one processor at a time (the worker, or a test's ProcessDue)
};

// The event stored for `stored` read back as a TriggerEvent: a webhook's body through its
// source's parser, a schedule's fire from the JSON the scheduler wrote. nullopt for one that
// starts nothing (an action no agent can want).
StatusOr<std::optional<triggers::TriggerEvent>> ReadStoredEvent(
    const store::IncomingEvent& stored, const triggers::TriggersConfig& config);

}  // namespace nightshift::server
