#pragma once

// The Store: every durable fact of the platform goes through this interface. Nothing
// engine-specific leaks through it; the embedded SQLite store and a PostgreSQL store are
// interchangeable behind it.
//
// Thread safety: every method may be called from any thread concurrently.
// Errors: NotFound (unknown id/name), AlreadyExists, InvalidArgument (bad input),
// FailedPrecondition (a guarded transition whose guard did not hold — the run is not in the
// expected state or the caller does not own the lease), Unavailable/Internal (the engine).

#include <memory>
#include <optional>
#include <vector>

#include "core/status.h"
#include "store/model.h"

namespace nightshift::store {

struct RunFilter {
  std::string repo;               // empty = all repositories
  std::optional<RunState> state;  // unset = all states
  int64_t before_id = 0;          // pagination cursor: only runs with id < before_id (0 = none)
  int32_t limit = 50;             // newest first
};

// The runs of a scope, for budgets (policy/budgets.h).
struct UsageFilter {
  std::string repo;   // "": every repository
  std::string agent;  // "": every agent; "adhoc": runs no trigger or schedule started
  int64_t hour_since_ms = 0;
  int64_t day_since_ms = 0;
};
struct Usage {
  int64_t unfinished = 0;         // queued, preparing or running
  int64_t unfinished_agents = 0;  // … of kind agent: each reserves its cost budget
  int64_t started = 0;            // created since hour_since_ms
  double spent_usd = 0;           // model cost of agent runs finished since day_since_ms
};

struct RunCounts {
  int64_t since = 0;
  int64_t unfinished = 0;
};

// What a runner reports when it moves a run forward.
struct Transition {
  RunState from;
  RunState to;
  std::optional<int32_t> exit_code;
  std::string reason;
  std::string commit;  // recorded when non-empty
};

// Notified after a commit that changed a run (state or events). Called on the committing
// thread, outside any store lock; must be quick and must not call back into the store.
class RunObserver {
 public:
  virtual ~RunObserver() = default;
  virtual void OnRunChanged(int64_t run_id) = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // Repositories.
  virtual StatusOr<Repository> AddRepository(const std::string& name, const std::string& url) = 0;
  virtual StatusOr<std::vector<Repository>> ListRepositories() = 0;
  virtual StatusOr<Repository> GetRepository(const std::string& name) = 0;
  // FailedPrecondition while the repository has unfinished runs. Past runs stay readable.
  virtual Status RemoveRepository(const std::string& name) = 0;

  // Runs. CreateRun stores the run as queued together with its first "state" event.
  // AlreadyExists when spec.idempotency_key is set and a run has it (GetRunByKey finds it).
  // With spec.concurrency_key set, the run becomes that key's run (no event waiting on it).
  virtual StatusOr<Run> CreateRun(const RunSpec& spec) = 0;
  // Several runs in one transaction (a trigger's batch of events): each spec's result, as
  // CreateRun's; one that is refused (AlreadyExists, NotFound) does not keep the others from
  // being created. An error of the whole (the disk) is returned instead, and none is created.
  virtual StatusOr<std::vector<StatusOr<Run>>> CreateRuns(const std::vector<RunSpec>& specs) = 0;
  virtual StatusOr<Run> GetRun(int64_t id) = 0;
  virtual StatusOr<Run> GetRunByKey(const std::string& idempotency_key) = 0;
  // Runs `requested_by` submitted since `since_ms`, and those of its runs not yet finished.
  virtual StatusOr<RunCounts> CountRuns(const std::string& requested_by, int64_t since_ms) = 0;
  virtual StatusOr<std::vector<Run>> ListRuns(const RunFilter& filter) = 0;
  virtual StatusOr<Usage> GetUsage(const UsageFilter& filter) = 0;
  virtual StatusOr<std::vector<RunAttempt>> ListAttempts(int64_t run_id) = 0;

  // Leases the oldest queued run for `owner` until now + ttl: state → preparing, attempt + 1,
  // a new RunAttempt. nullopt when nothing is queued. Two callers never lease the same run.
  virtual StatusOr<std::optional<Run>> LeaseRun(const std::string& owner, int64_t ttl_ms) = 0;

  // Extends the lease. FailedPrecondition when `lease` is no longer held (expired and
  // requeued, cancelled, finished); the runner must then stop working on the run.
  virtual StatusOr<Run> Heartbeat(int64_t run_id, const Lease& lease, int64_t ttl_ms) = 0;

  // One guarded transaction: state == t.from and `lease` still held, else FailedPrecondition.
  // Appends the "state" event. A terminal `to` releases the lease and closes the attempt.
  virtual StatusOr<Run> TransitionRun(int64_t run_id, const Lease& lease, const Transition& t) = 0;

  // Cancels a run that has not finished, whoever holds it: the lease is revoked, so the
  // runner's next heartbeat or transition fails and it stops the process.
  // FailedPrecondition when the run already finished.
  virtual StatusOr<Run> CancelRun(int64_t run_id, const std::string& reason) = 0;

  // Runs whose lease expired: requeued while attempts remain, failed otherwise. With `owner`
  // set, every lease that owner holds counts as expired, whatever its deadline: a runner that
  // restarts under the same name (and holds the data-dir lock) recovers its runs at once.
  // Returns the runs as they are afterwards.
  virtual StatusOr<std::vector<Run>> ExpireLeases(const std::string& owner = "") = 0;

  // Appends events to a run's log, in order, in one transaction; returns the last seq.
  virtual StatusOr<int64_t> AppendEvents(int64_t run_id, const std::vector<NewEvent>& events) = 0;
  // Events with seq > after_seq, oldest first, at most `limit`.
  virtual StatusOr<std::vector<RunEvent>> ListEvents(int64_t run_id, int64_t after_seq,
                                                     int32_t limit) = 0;

  // Change requests (the built-in forge). Create assigns id and times.
  virtual StatusOr<ChangeRequest> CreateChangeRequest(const ChangeRequest& cr) = 0;
  virtual StatusOr<ChangeRequest> GetChangeRequest(int64_t id) = 0;
  // Newest first; empty filters match all.
  virtual StatusOr<std::vector<ChangeRequest>> ListChangeRequests(const std::string& repo,
                                                                  std::optional<CrState> state) = 0;
  // Writes head_commit, diff, title, body, state, review and remote_url of `cr`, only if the
  // stored state is still `expected_state` (FailedPrecondition otherwise).
  virtual StatusOr<ChangeRequest> UpdateChangeRequest(const ChangeRequest& cr,
                                                      CrState expected_state) = 0;
  virtual StatusOr<CrComment> AddCrComment(int64_t change_request_id, const std::string& author,
                                           const std::string& body) = 0;
  virtual StatusOr<std::vector<CrComment>> ListCrComments(int64_t change_request_id) = 0;

  // What arrived for the triggers (docs/triggers.md). AddIncoming stores `event` as pending
  // (id, received_ms and state are assigned) and returns it; when (source, delivery) is stored
  // already, it only counts the redelivery and returns the stored event (redeliveries >= 1).
  virtual StatusOr<IncomingEvent> AddIncoming(const IncomingEvent& event) = 0;
  virtual StatusOr<IncomingEvent> GetIncoming(int64_t id) = 0;
  virtual StatusOr<std::vector<IncomingEvent>> ListIncoming(const IncomingFilter& filter) = 0;
  // Records what became of pending events (each a JSON array) and marks them done, in one
  // transaction; FailedPrecondition, and nothing changes, when one is not pending.
  struct Outcome {
    int64_t event_id = 0;
    std::string outcome;
  };
  virtual Status FinishIncoming(const std::vector<Outcome>& outcomes) = 0;
  // Rewrites what became of a done event (a run it waited for has started since);
  // FailedPrecondition when it is still pending.
  virtual Status UpdateIncomingOutcome(int64_t id, const std::string& outcome) = 0;
  // Marks a done event pending again, to be processed once more (replays + 1);
  // FailedPrecondition when it is still pending.
  virtual StatusOr<IncomingEvent> ReplayIncoming(int64_t id) = 0;

  // Schedules: the last due time each one (by key) was fired for, 0 for one never seen.
  virtual StatusOr<int64_t> ScheduleLastDue(const std::string& key) = 0;
  // Sets the schedule's last due time and, when `fire` is set, stores it as an incoming event,
  // in one transaction: a fire is stored exactly when its due time is recorded (one whose
  // (source, delivery) is stored already is counted as a redelivery).
  virtual Status RecordScheduleDue(const std::string& key, int64_t due_ms,
                                   const std::optional<IncomingEvent>& fire) = 0;

  // Concurrency keys: the run each last started, and the event waiting on it.
  virtual StatusOr<std::optional<TriggerKey>> GetTriggerKey(const std::string& key) = 0;
  virtual Status PutTriggerKey(const TriggerKey& key) = 0;
  // Keys with a waiting event, oldest first.
  virtual StatusOr<std::vector<TriggerKey>> ListWaitingTriggerKeys() = 0;

  // Identities (docs/governance.md). AddUser: AlreadyExists for a name taken. DisableUser:
  // NotFound for an unknown one. AddToken: AlreadyExists when the hash is (it never is: the
  // secrets are random). RevokeToken: NotFound for an unknown id.
  virtual StatusOr<User> AddUser(const User& user) = 0;
  virtual StatusOr<User> GetUser(const std::string& name) = 0;
  virtual StatusOr<std::vector<User>> ListUsers() = 0;
  virtual StatusOr<User> DisableUser(const std::string& name) = 0;
  virtual StatusOr<ApiToken> AddToken(const ApiToken& token) = 0;
  virtual StatusOr<ApiToken> GetTokenByHash(const std::string& hash) = 0;
  // Every token, or only those of `owner`.
  virtual StatusOr<std::vector<ApiToken>> ListTokens(const std::optional<std::string>& owner) = 0;
  virtual StatusOr<ApiToken> RevokeToken(int64_t id) = 0;

  // The audit log: records appended in one transaction, in seq order (the caller numbers and
  // chains them); read back in seq order after `after_seq`, at most `limit`.
  virtual Status AppendAudit(const std::vector<AuditRecord>& records,
                             const std::optional<AuditCheckpoint>& checkpoint) = 0;
  virtual StatusOr<std::vector<AuditRecord>> ListAudit(int64_t after_seq, int32_t limit) = 0;
  virtual StatusOr<std::optional<AuditRecord>> LastAudit() = 0;
  // Newest first: by actor (""=any), run (0=any), from `since_ms` on, at most `limit`.
  virtual StatusOr<std::vector<AuditRecord>> SearchAudit(const std::string& actor, int64_t run_id,
                                                         int64_t since_ms, int32_t limit) = 0;
  virtual StatusOr<std::vector<AuditCheckpoint>> ListAuditCheckpoints() = 0;

  // Secrets: one per name, repository and agent. PutSecret adds or replaces (keeping
  // created_ms); DeleteSecret: NotFound when there is none. Listed by name, repository, agent.
  virtual StatusOr<Secret> PutSecret(const Secret& secret) = 0;
  virtual StatusOr<std::vector<Secret>> ListSecrets() = 0;
  virtual Status DeleteSecret(const std::string& name, const std::string& repo,
                              const std::string& agent) = 0;

  // Pauses: AddPause keeps the first of the same scope and name; RemovePause: NotFound when
  // there is none.
  virtual StatusOr<Pause> AddPause(const Pause& pause) = 0;
  virtual Status RemovePause(const std::string& scope, const std::string& name) = 0;
  virtual StatusOr<std::vector<Pause>> ListPauses() = 0;

  // At most one observer; set before concurrent use. Not owned.
  virtual void SetObserver(RunObserver* observer) = 0;
};

}  // namespace nightshift::store
