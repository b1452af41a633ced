#pragma once

// The records the store keeps. Plain values; no behaviour beyond naming.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace nightshift::store {

// queued → preparing → running → succeeded | failed | cancelled | timed_out |
// blocked_by_policy (the run's changes broke the review policy: nothing was pushed).
// A lease expiry may put a preparing/running run back to queued (bounded attempts).
enum class RunState {
  kQueued,
  kPreparing,
  kRunning,
  kSucceeded,
  kFailed,
  kCancelled,
  kTimedOut,
  kBlockedByPolicy
};

std::string_view RunStateName(RunState state);
std::optional<RunState> ParseRunState(std::string_view name);
bool IsTerminal(RunState state);

// What a run does: "recipe" runs its shell command in the sandbox; "agent": the built-in agent
// works on its task with its model; "prebuild": builds the environment's snapshot, nothing else.
enum class RunKind { kRecipe, kAgent, kPrebuild };
std::string_view RunKindName(RunKind kind);
std::optional<RunKind> ParseRunKind(std::string_view name);

// A change request is open until a person merges or closes it; its review is pending until a
// person approves it (and again after new commits).
enum class CrState { kOpen, kMerged, kClosed };
std::string_view CrStateName(CrState state);
std::optional<CrState> ParseCrState(std::string_view name);
enum class CrReview { kPending, kApproved };
std::string_view CrReviewName(CrReview review);
std::optional<CrReview> ParseCrReview(std::string_view name);

struct Repository {
  int64_t id = 0;
  std::string name;  // unique among live repositories: [A-Za-z0-9._-]{1,100}
  std::string url;   // file://, https://, ssh://, git@host:path, or an absolute local path
  int64_t created_ms = 0;
};

struct RunSpec {
  std::string repo;    // repository name
  std::string ref;     // branch, tag or sha; empty = the repository's HEAD
  std::string recipe;  // shell command run in the checkout
  RunKind kind = RunKind::kRecipe;
  std::string task;               // agent: what to do
  std::string model;              // agent: the configured model's name (empty: the default)
  int64_t change_request_id = 0;  // a follow-up run: it updates this change request
  int32_t timeout_seconds = 3600;
  int32_t max_attempts = 3;
  std::string requested_by;  // the principal that submitted it ("admin", "comment:alice")
  // Set by a submitter that may submit the same thing twice (a trigger after a crash): a second
  // run with the same key is refused (AlreadyExists) and the first one stands.
  std::string idempotency_key;
  std::string trigger;  // what started it, for people ("github workflow_run CI on main: URL")
  // A trigger's concurrency key: recorded as the key's run (TriggerKey) with the run.
  std::string concurrency_key;
  // Files the platform puts into the run's workspace, by path relative to the checkout (e.g.
  // ".nightshift/context/ci.log"); never part of what the run delivers.
  std::map<std::string, std::string> context;
};

struct Run {
  int64_t id = 0;
  int64_t repo_id = 0;
  std::string repo;
  std::string ref;
  std::string recipe;
  RunKind kind = RunKind::kRecipe;
  std::string task;
  std::string model;
  int64_t change_request_id = 0;
  RunState state = RunState::kQueued;
  int32_t attempt = 0;  // attempts started so far
  int32_t max_attempts = 3;
  int32_t timeout_seconds = 3600;
  std::string lease_owner;  // empty when not leased
  int64_t lease_expires_ms = 0;
  std::optional<int32_t> exit_code;
  std::string reason;  // why it ended (or was requeued) in words
  std::string commit;  // resolved commit sha, once checked out
  int64_t created_ms = 0;
  int64_t started_ms = 0;   // first lease
  int64_t finished_ms = 0;  // terminal state reached
  int64_t updated_ms = 0;
  int64_t last_event_seq = 0;
  std::string requested_by;
  std::string idempotency_key;
  std::string trigger;
  std::map<std::string, std::string> context;
};

// A change request of the built-in forge: a run's work on its own branch, waiting for people.
struct ChangeRequest {
  int64_t id = 0;
  int64_t run_id = 0;  // the run that opened it (follow-ups update it)
  int64_t repo_id = 0;
  std::string repo;
  std::string branch;       // nightshift/<agent>/<run-id>
  std::string base_branch;  // what it merges into
  std::string base_commit;  // the commit the work started from
  std::string head_commit;  // the branch's tip
  std::string title;
  std::string body;
  CrState state = CrState::kOpen;
  CrReview review = CrReview::kPending;
  std::string diff;
  std::string remote_url;  // the pull/merge request on GitHub or GitLab, if any
  std::string remote_id;   // its number (GitHub) or iid (GitLab)
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
};

struct CrComment {
  int64_t id = 0;
  int64_t change_request_id = 0;
  std::string author;
  std::string body;
  int64_t created_ms = 0;
};

struct RunAttempt {
  int64_t run_id = 0;
  int32_t number = 0;
  std::string runner;
  int64_t started_ms = 0;
  int64_t ended_ms = 0;  // 0 while in progress
  std::string outcome;   // a terminal state name, "requeued", or empty while in progress
  std::string reason;
};

// Something that arrived for the triggers — a webhook delivery, a slash command, a schedule's
// due time — stored before it is acted on, and what came of it.
enum class IncomingState { kPending, kDone };
std::string_view IncomingStateName(IncomingState state);
std::optional<IncomingState> ParseIncomingState(std::string_view name);

struct IncomingEvent {
  int64_t id = 0;
  std::string source;    // "github", "gitlab", "slack", "generic:sentry", "schedule"
  std::string delivery;  // the source's id of it: (source, delivery) is unique
  std::string type;      // the source's event type ("workflow_run", "Pipeline Hook", …)
  std::string body;      // as received (bytes; hostile)
  int64_t received_ms = 0;
  IncomingState state = IncomingState::kPending;
  std::string outcome;  // a JSON array of what became of it, once done
  int64_t processed_ms = 0;
  int32_t replays = 0;       // times processed again on purpose
  int32_t redeliveries = 0;  // times the source sent it again (each refused as a duplicate)
};

struct IncomingFilter {
  std::optional<IncomingState> state;
  int64_t before_id = 0;
  int32_t limit = 50;  // newest first (pending: oldest first)
};

// The run a concurrency key (an agent's, rendered over an event) last started, and the event
// waiting for it to end (overlap "queue").
struct TriggerKey {
  std::string key;
  int64_t run_id = 0;
  int64_t waiting_event_id = 0;
};

// A person who signs in (docs/governance.md): the password only as its Argon2id hash, and the
// scopes they are granted.
struct User {
  int64_t id = 0;
  std::string name;
  std::string password_hash;  // libsodium's crypto_pwhash_str encoding
  std::string scopes;         // space-separated
  int64_t created_ms = 0;
  int64_t disabled_ms = 0;  // 0: enabled
};

// An API token: only the SHA-256 of its secret is stored; it acts for its owner with at most
// the owner's scopes.
struct ApiToken {
  int64_t id = 0;
  std::string name;    // its label ("ci", "laptop")
  std::string owner;   // the user it acts for; "" for one made with the admin token
  std::string hash;    // hex SHA-256 of the secret
  std::string scopes;  // space-separated
  int64_t created_ms = 0;
  int64_t expires_ms = 0;  // 0: never
  int64_t revoked_ms = 0;  // 0: in force
};

// One record of the audit log (docs/governance.md): who did what to what, and what was decided.
// Each record carries the hash of the one before, so that none can be changed, removed or
// reordered unnoticed (policy::AuditLog computes and checks them).
struct AuditRecord {
  int64_t seq = 0;  // 1, 2, 3…
  int64_t time_ms = 0;
  std::string actor;     // "admin", "user:alice", "token:ci", "anonymous"
  std::string action;    // "POST /api/v1/runs", "login"
  std::string resource;  // what it acted on ("/api/v1/runs/12", "user:alice")
  std::string decision;  // "allow", "deny", "error"
  int64_t run_id = 0;
  std::string detail;     // a JSON object's text
  std::string prev_hash;  // the previous record's hash ("" for the first)
  std::string hash;       // hex SHA-256 over prev_hash and this record's canonical encoding
};

// A signed statement of the log's head at a point: Ed25519 over its seq and hash.
struct AuditCheckpoint {
  int64_t seq = 0;
  std::string hash;
  std::string signature;  // hex
  int64_t time_ms = 0;
};

// Who holds a run: a runner name and the attempt it leased. The same runner may lease the same
// run again after losing it (a new attempt); the attempt tells the two leases apart.
struct Lease {
  std::string owner;
  int32_t attempt = 0;
};

// One entry of a run's append-only log. `seq` is 1, 2, 3… per run, without gaps.
struct RunEvent {
  int64_t run_id = 0;
  int64_t seq = 0;
  int64_t ts_ms = 0;
  std::string kind;  // "log" (a line of output), "state" (a transition), or a structured kind
  std::string data;  // a JSON object, serialized
};

// An event to append; the store assigns run_id, seq and ts.
// A secret (docs/governance.md): its value only as ciphertext, sealed by policy/secrets.h with a
// key the store never holds. Scoped to one repository and one agent, or to all ("").
struct Secret {
  int64_t id = 0;
  std::string name;        // the environment variable a run gets it as
  std::string repo;        // "": every repository
  std::string agent;       // "": every agent
  std::string sealed;      // nonce and ciphertext, hex
  std::string created_by;  // "user:alice"
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
};

// A kill switch in force (docs/governance.md): no run starts within its scope, and the runs in
// it were cancelled when it was set.
struct Pause {
  std::string scope;  // "all", "repo" or "agent"
  std::string name;   // the repository or agent; "" for all
  std::string created_by;
  int64_t created_ms = 0;
};

struct NewEvent {
  std::string kind;
  std::string data;   // a JSON object, serialized
  int64_t ts_ms = 0;  // when it happened (a batching writer appends later); 0: at the append
};

}  // namespace nightshift::store
