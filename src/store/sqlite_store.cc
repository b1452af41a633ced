#include "store/sqlite_store.h"

#include <mutex>
#include <regex>
#include <vector>

#include "api/events.h"
#include "store/sqlite_db.h"

namespace nightshift::store {
namespace {

// Versioned migrations: entry i brings the schema from version i to i + 1. Never edit an
// entry that has shipped; append a new one.
const std::vector<std::string>& Migrations() {
  static const auto* migrations = new std::vector<std::string>{
      R"sql(
CREATE TABLE repositories (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  name        TEXT NOT NULL,
  url         TEXT NOT NULL,
  created_ms  INTEGER NOT NULL,
  deleted_ms  INTEGER
);
CREATE UNIQUE INDEX repositories_live_name ON repositories(name) WHERE deleted_ms IS NULL;

CREATE TABLE runs (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  repo_id          INTEGER NOT NULL REFERENCES repositories(id),
  ref              TEXT NOT NULL,
  recipe           TEXT NOT NULL,
  state            TEXT NOT NULL,
  attempt          INTEGER NOT NULL DEFAULT 0,
  max_attempts     INTEGER NOT NULL,
  timeout_seconds  INTEGER NOT NULL,
  lease_owner      TEXT,
  lease_expires_ms INTEGER,
  exit_code        INTEGER,
  reason           TEXT NOT NULL DEFAULT '',
  commit_sha       TEXT NOT NULL DEFAULT '',
  created_ms       INTEGER NOT NULL,
  started_ms       INTEGER NOT NULL DEFAULT 0,
  finished_ms      INTEGER NOT NULL DEFAULT 0,
  updated_ms       INTEGER NOT NULL,
  last_event_seq   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_by_state ON runs(state, id);
CREATE INDEX runs_by_repo ON runs(repo_id, id);
CREATE INDEX runs_by_lease ON runs(lease_expires_ms) WHERE lease_owner IS NOT NULL;

CREATE TABLE run_attempts (
  run_id      INTEGER NOT NULL REFERENCES runs(id),
  number      INTEGER NOT NULL,
  runner      TEXT NOT NULL,
  started_ms  INTEGER NOT NULL,
  ended_ms    INTEGER NOT NULL DEFAULT 0,
  outcome     TEXT NOT NULL DEFAULT '',
  reason      TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (run_id, number)
) WITHOUT ROWID;

CREATE TABLE run_events (
  run_id  INTEGER NOT NULL REFERENCES runs(id),
  seq     INTEGER NOT NULL,
  ts_ms   INTEGER NOT NULL,
  kind    TEXT NOT NULL,
  data    TEXT NOT NULL,
  PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
)sql",
      // 2: what a run does — "recipe" (run `recipe` in the sandbox) or "prebuild" (build the
      // repository's environment snapshot at `ref`; no agent).
      R"sql(
ALTER TABLE runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'recipe';
)sql",
      // 3: the built-in agent's task and model (kind "agent").
      R"sql(
ALTER TABLE runs ADD COLUMN task TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN model TEXT NOT NULL DEFAULT '';
)sql",
      // 4: change requests (the built-in forge) and the runs that follow up on them.
      R"sql(
ALTER TABLE runs ADD COLUMN change_request_id INTEGER NOT NULL DEFAULT 0;
CREATE TABLE change_requests (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id       INTEGER NOT NULL REFERENCES runs(id),
  repo_id      INTEGER NOT NULL REFERENCES repositories(id),
  branch       TEXT NOT NULL,
  base_branch  TEXT NOT NULL,
  base_commit  TEXT NOT NULL,
  head_commit  TEXT NOT NULL,
  title        TEXT NOT NULL,
  body         TEXT NOT NULL,
  state        TEXT NOT NULL,
  review       TEXT NOT NULL,
  diff         TEXT NOT NULL,
  remote_url   TEXT NOT NULL DEFAULT '',
  created_ms   INTEGER NOT NULL,
  updated_ms   INTEGER NOT NULL
);
CREATE INDEX change_requests_by_repo ON change_requests(repo_id, id);
CREATE TABLE cr_comments (
  id                 INTEGER PRIMARY KEY AUTOINCREMENT,
  change_request_id  INTEGER NOT NULL REFERENCES change_requests(id),
  author             TEXT NOT NULL,
  body               TEXT NOT NULL,
  created_ms         INTEGER NOT NULL
);
CREATE INDEX cr_comments_by_cr ON cr_comments(change_request_id, id);
)sql",
      // 5: the hosted forge's id of a change request's counterpart.
      R"sql(
ALTER TABLE change_requests ADD COLUMN remote_id TEXT NOT NULL DEFAULT '';
)sql",
      // 6: who submitted a run (a principal: the admin token, a change request's commenter).
      R"sql(
ALTER TABLE runs ADD COLUMN requested_by TEXT NOT NULL DEFAULT '';
)sql",
      // 7: triggers — what arrived (webhooks, slash commands, schedules' fires) and what came of
      // it, schedules' last due times, concurrency keys; runs' idempotency keys, what started
      // them and the files the platform gives them.
      R"sql(
ALTER TABLE runs ADD COLUMN idempotency_key TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN trigger TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN context TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX runs_by_key ON runs(idempotency_key) WHERE idempotency_key != '';
CREATE INDEX runs_by_requester ON runs(requested_by, created_ms);
CREATE TABLE incoming_events (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  source        TEXT NOT NULL,
  delivery      TEXT NOT NULL,
  type          TEXT NOT NULL,
  body          BLOB NOT NULL,
  received_ms   INTEGER NOT NULL,
  state         TEXT NOT NULL,
  outcome       TEXT NOT NULL DEFAULT '',
  processed_ms  INTEGER NOT NULL DEFAULT 0,
  replays       INTEGER NOT NULL DEFAULT 0,
  redeliveries  INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX incoming_by_delivery ON incoming_events(source, delivery);
CREATE INDEX incoming_pending ON incoming_events(id) WHERE state = 'pending';
CREATE TABLE schedule_dues (
  key     TEXT PRIMARY KEY,
  due_ms  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE trigger_keys (
  key               TEXT PRIMARY KEY,
  run_id            INTEGER NOT NULL,
  waiting_event_id  INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX trigger_keys_waiting ON trigger_keys(waiting_event_id) WHERE waiting_event_id != 0;
)sql",
      // 8: identities — users (passwords as Argon2id hashes) and API tokens (as SHA-256 hashes).
      R"sql(
CREATE TABLE users (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  name           TEXT NOT NULL UNIQUE,
  password_hash  TEXT NOT NULL,
  scopes         TEXT NOT NULL,
  created_ms     INTEGER NOT NULL,
  disabled_ms    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE api_tokens (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  name        TEXT NOT NULL,
  owner       TEXT NOT NULL,
  hash        TEXT NOT NULL UNIQUE,
  scopes      TEXT NOT NULL,
  created_ms  INTEGER NOT NULL,
  expires_ms  INTEGER NOT NULL DEFAULT 0,
  revoked_ms  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX api_tokens_by_owner ON api_tokens(owner);
)sql",
      // 9: the audit log and its signed checkpoints.
      R"sql(
CREATE TABLE audit_log (
  seq        INTEGER PRIMARY KEY,
  time_ms    INTEGER NOT NULL,
  actor      TEXT NOT NULL,
  action     TEXT NOT NULL,
  resource   TEXT NOT NULL,
  decision   TEXT NOT NULL,
  run_id     INTEGER NOT NULL,
  detail     TEXT NOT NULL,
  prev_hash  TEXT NOT NULL,
  hash       TEXT NOT NULL
);
CREATE TABLE audit_checkpoints (
  seq        INTEGER PRIMARY KEY,
  hash       TEXT NOT NULL,
  signature  TEXT NOT NULL,
  time_ms    INTEGER NOT NULL
);
)sql",
      // 10: secrets, sealed (the key is never in the database).
      R"sql(
CREATE TABLE secrets (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  name        TEXT NOT NULL,
  repo        TEXT NOT NULL,
  agent       TEXT NOT NULL,
  sealed      TEXT NOT NULL,
  created_by  TEXT NOT NULL,
  created_ms  INTEGER NOT NULL,
  updated_ms  INTEGER NOT NULL,
  UNIQUE(name, repo, agent)
);
)sql",
      // 11: pauses, the kill switch.
      R"sql(
CREATE TABLE pauses (
  scope       TEXT NOT NULL,
  name        TEXT NOT NULL,
  created_by  TEXT NOT NULL,
  created_ms  INTEGER NOT NULL,
  PRIMARY KEY(scope, name)
) WITHOUT ROWID;
)sql",
      // 12: budgets read runs by when they started and ended.
      R"sql(
CREATE INDEX runs_by_created ON runs(created_ms);
CREATE INDEX runs_by_finished ON runs(finished_ms) WHERE finished_ms > 0;
)sql",

  };
  return *migrations;
}

// Every row `s` gives, each read by `read`.
template <typename T, typename Read>
StatusOr<std::vector<T>> ReadRows(Statement& s, Read read) {
  std::vector<T> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return out;
    out.push_back(read(s));
  }
}

constexpr char kRunColumns[] =
    "r.id, r.repo_id, p.name, r.ref, r.recipe, r.state, r.attempt, r.max_attempts, "
    "r.timeout_seconds, r.lease_owner, r.lease_expires_ms, r.exit_code, r.reason, "
    "r.commit_sha, r.created_ms, r.started_ms, r.finished_ms, r.updated_ms, r.last_event_seq, "
    "r.kind, r.task, r.model, r.change_request_id, r.requested_by, r.idempotency_key, r.trigger, "
    "r.context";
constexpr char kRunFrom[] = " FROM runs r JOIN repositories p ON p.id = r.repo_id ";

Run ReadRun(const Statement& s) {
  Run r;
  r.id = s.Int(0);
  r.repo_id = s.Int(1);
  r.repo = s.Text(2);
  r.ref = s.Text(3);
  r.recipe = s.Text(4);
  r.state = ParseRunState(s.Text(5)).value_or(RunState::kFailed);
  r.attempt = static_cast<int32_t>(s.Int(6));
  r.max_attempts = static_cast<int32_t>(s.Int(7));
  r.timeout_seconds = static_cast<int32_t>(s.Int(8));
  r.lease_owner = s.Text(9);
  r.lease_expires_ms = s.Int(10);
  if (!s.IsNull(11)) r.exit_code = static_cast<int32_t>(s.Int(11));
  r.reason = s.Text(12);
  r.commit = s.Text(13);
  r.created_ms = s.Int(14);
  r.started_ms = s.Int(15);
  r.finished_ms = s.Int(16);
  r.updated_ms = s.Int(17);
  r.last_event_seq = s.Int(18);
  r.kind = ParseRunKind(s.Text(19)).value_or(RunKind::kRecipe);
  r.task = s.Text(20);
  r.model = s.Text(21);
  r.change_request_id = s.Int(22);
  r.requested_by = s.Text(23);
  r.idempotency_key = s.Text(24);
  r.trigger = s.Text(25);
  if (std::string context = s.Text(26); !context.empty()) {
    // Written by CreateRun from a map of strings.
    Json json = Json::parse(context, nullptr, /*allow_exceptions=*/false);
    if (json.is_object()) {
      for (const auto& [path, text] : json.items()) {
        if (text.is_string()) r.context[path] = text.get<std::string>();
      }
    }
  }
  return r;
}

Repository ReadRepository(const Statement& s) {
  return Repository{.id = s.Int(0), .name = s.Text(1), .url = s.Text(2), .created_ms = s.Int(3)};
}

// The run's "state" event (api/events.h), written in the transaction that changes the state.
NewEvent StateEventOf(const api::StateEvent& event) {
  api::EventRecord record = event;
  return NewEvent{std::string(record.kind()), record.Serialize()};
}

NewEvent StateEventOf(RunState from, RunState to, const std::string& reason, int32_t attempt,
                      std::optional<int32_t> exit_code) {
  return StateEventOf(
      api::StateEvent{.from = std::string(RunStateName(from)),
                      .to = std::string(RunStateName(to)),
                      .attempt = attempt,
                      .reason = reason.empty() ? std::nullopt : std::optional<std::string>(reason),
                      .exit_code = exit_code});
}

class SqliteStore final : public Store {
 public:
  SqliteStore(std::string path, const Clock& clock, SqliteOptions options,
              std::unique_ptr<SqliteDb> writer)
      : path_(std::move(path)), clock_(clock), options_(options), writer_(std::move(writer)) {}

  Status Migrate();

  StatusOr<Repository> AddRepository(const std::string& name, const std::string& url) override;
  StatusOr<std::vector<Repository>> ListRepositories() override;
  StatusOr<Repository> GetRepository(const std::string& name) override;
  Status RemoveRepository(const std::string& name) override;
  StatusOr<Run> CreateRun(const RunSpec& spec) override;
  StatusOr<std::vector<StatusOr<Run>>> CreateRuns(const std::vector<RunSpec>& specs) override;
  StatusOr<Run> GetRun(int64_t id) override;
  StatusOr<Run> GetRunByKey(const std::string& idempotency_key) override;
  StatusOr<RunCounts> CountRuns(const std::string& requested_by, int64_t since_ms) override;
  StatusOr<std::vector<Run>> ListRuns(const RunFilter& filter) override;
  StatusOr<Usage> GetUsage(const UsageFilter& filter) override;
  StatusOr<std::vector<RunAttempt>> ListAttempts(int64_t run_id) override;
  StatusOr<std::optional<Run>> LeaseRun(const std::string& owner, int64_t ttl_ms) override;
  StatusOr<Run> Heartbeat(int64_t run_id, const Lease& lease, int64_t ttl_ms) override;
  StatusOr<Run> TransitionRun(int64_t run_id, const Lease& lease, const Transition& t) override;
  StatusOr<Run> CancelRun(int64_t run_id, const std::string& reason) override;
  StatusOr<std::vector<Run>> ExpireLeases(const std::string& owner) override;
  StatusOr<int64_t> AppendEvents(int64_t run_id, const std::vector<NewEvent>& events) override;
  StatusOr<std::vector<RunEvent>> ListEvents(int64_t run_id, int64_t after_seq,
                                             int32_t limit) override;
  StatusOr<ChangeRequest> CreateChangeRequest(const ChangeRequest& cr) override;
  StatusOr<ChangeRequest> GetChangeRequest(int64_t id) override;
  StatusOr<std::vector<ChangeRequest>> ListChangeRequests(const std::string& repo,
                                                          std::optional<CrState> state) override;
  StatusOr<ChangeRequest> UpdateChangeRequest(const ChangeRequest& cr,
                                              CrState expected_state) override;
  StatusOr<CrComment> AddCrComment(int64_t change_request_id, const std::string& author,
                                   const std::string& body) override;
  StatusOr<std::vector<CrComment>> ListCrComments(int64_t change_request_id) override;
  StatusOr<IncomingEvent> AddIncoming(const IncomingEvent& event) override;
  StatusOr<IncomingEvent> GetIncoming(int64_t id) override;
  StatusOr<std::vector<IncomingEvent>> ListIncoming(const IncomingFilter& filter) override;
  Status FinishIncoming(const std::vector<Outcome>& outcomes) override;
  Status UpdateIncomingOutcome(int64_t id, const std::string& outcome) override;
  StatusOr<IncomingEvent> ReplayIncoming(int64_t id) override;
  StatusOr<int64_t> ScheduleLastDue(const std::string& key) override;
  Status RecordScheduleDue(const std::string& key, int64_t due_ms,
                           const std::optional<IncomingEvent>& fire) override;
  StatusOr<std::optional<TriggerKey>> GetTriggerKey(const std::string& key) override;
  Status PutTriggerKey(const TriggerKey& key) override;
  StatusOr<std::vector<TriggerKey>> ListWaitingTriggerKeys() override;
  StatusOr<User> AddUser(const User& user) override;
  StatusOr<User> GetUser(const std::string& name) override;
  StatusOr<std::vector<User>> ListUsers() override;
  StatusOr<User> DisableUser(const std::string& name) override;
  StatusOr<ApiToken> AddToken(const ApiToken& token) override;
  StatusOr<ApiToken> GetTokenByHash(const std::string& hash) override;
  StatusOr<std::vector<ApiToken>> ListTokens(const std::optional<std::string>& owner) override;
  StatusOr<ApiToken> RevokeToken(int64_t id) override;
  Status AppendAudit(const std::vector<AuditRecord>& records,
                     const std::optional<AuditCheckpoint>& checkpoint) override;
  StatusOr<std::vector<AuditRecord>> ListAudit(int64_t after_seq, int32_t limit) override;
  StatusOr<std::optional<AuditRecord>> LastAudit() override;
  StatusOr<std::vector<AuditRecord>> SearchAudit(const std::string& actor, int64_t run_id,
                                                 int64_t since_ms, int32_t limit) override;
  StatusOr<std::vector<AuditCheckpoint>> ListAuditCheckpoints() override;
  StatusOr<Secret> PutSecret(const Secret& secret) override;
  StatusOr<std::vector<Secret>> ListSecrets() override;
  Status DeleteSecret(const std::string& name, const std::string& repo,
                      const std::string& agent) override;
  StatusOr<Pause> AddPause(const Pause& pause) override;
  Status RemovePause(const std::string& scope, const std::string& name) override;
  StatusOr<std::vector<Pause>> ListPauses() override;
  void SetObserver(RunObserver* observer) override { observer_ = observer; }

 private:
  // A reader connection borrowed from the pool for the duration of one call.
  class Reader {
   public:
    Reader(SqliteStore& store, std::unique_ptr<SqliteDb> db) : store_(store), db_(std::move(db)) {}
    ~Reader() {
      std::lock_guard lock(store_.readers_mu_);
      store_.readers_.push_back(std::move(db_));
    }
    SqliteDb& db() { return *db_; }

   private:
    SqliteStore& store_;
    std::unique_ptr<SqliteDb> db_;
  };

  StatusOr<std::unique_ptr<Reader>> AcquireReader();
  void Notify(int64_t run_id) {
    if (observer_ != nullptr) observer_->OnRunChanged(run_id);
  }

  // Helpers that run inside an open write transaction on writer_.
  StatusOr<Run> LoadRunLocked(SqliteDb& db, int64_t id);
  // Inserts a pending incoming event; AlreadyExists for a stored (source, delivery).
  StatusOr<IncomingEvent> AddIncomingLocked(const IncomingEvent& event, int64_t now);
  StatusOr<int64_t> AppendEventsLocked(int64_t run_id, const std::vector<NewEvent>& events,
                                       int64_t now);
  Status CloseAttemptLocked(const Run& run, std::string_view outcome, const std::string& reason,
                            int64_t now);

  const std::string path_;
  const Clock& clock_;
  const SqliteOptions options_;
  RunObserver* observer_ = nullptr;

  std::mutex write_mu_;
  std::unique_ptr<SqliteDb> writer_;  // GUARDED_BY(write_mu_)

  std::mutex readers_mu_;
  std::vector<std::unique_ptr<SqliteDb>> readers_;  // GUARDED_BY(readers_mu_)
};

Status SqliteStore::Migrate() {
  std::lock_guard lock(write_mu_);
  SqliteDb& db = *writer_;
  RETURN_IF_ERROR(
      db.ExecScript(StrCat("PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA synchronous=",
                           options_.synchronous_full ? "FULL" : "NORMAL",
                           "; CREATE TABLE IF NOT EXISTS schema_migrations ("
                           "version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL);")));
  WriteTransaction txn(db);
  RETURN_IF_ERROR(txn.Begin());
  int64_t current = 0;
  {
    ASSIGN_OR_RETURN(Statement s,
                     db.Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"));
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (row) current = s.Int(0);
  }
  const auto& migrations = Migrations();
  if (current > static_cast<int64_t>(migrations.size())) {
    return FailedPreconditionError(StrCat("database ", path_, " has schema version ", current,
                                          ", newer than this build's ", migrations.size()));
  }
  for (size_t v = static_cast<size_t>(current); v < migrations.size(); ++v) {
    RETURN_IF_ERROR(db.ExecScript(migrations[v]));
    ASSIGN_OR_RETURN(Statement s,
                     db.Prepare("INSERT INTO schema_migrations(version, applied_ms) VALUES(?, ?)"));
    RETURN_IF_ERROR(s.Bind(1, static_cast<int64_t>(v + 1)).Bind(2, clock_.NowMs()).Exec());
  }
  return txn.Commit();
}

StatusOr<std::unique_ptr<SqliteStore::Reader>> SqliteStore::AcquireReader() {
  std::unique_ptr<SqliteDb> db;
  {
    std::lock_guard lock(readers_mu_);
    if (!readers_.empty()) {
      db = std::move(readers_.back());
      readers_.pop_back();
    }
  }
  if (!db) {
    ASSIGN_OR_RETURN(db, SqliteDb::Open(path_, /*read_only=*/true, options_.busy_timeout_ms));
  }
  return std::make_unique<Reader>(*this, std::move(db));
}

StatusOr<Repository> SqliteStore::AddRepository(const std::string& name, const std::string& url) {
  int64_t now = clock_.NowMs();
  std::lock_guard lock(write_mu_);
  ASSIGN_OR_RETURN(
      Statement s,
      writer_->Prepare("INSERT INTO repositories(name, url, created_ms) VALUES(?, ?, ?) "
                       "RETURNING id, name, url, created_ms"));
  s.Bind(1, name).Bind(2, url).Bind(3, now);
  auto row = s.Step();
  if (!row.ok()) {
    if (IsAlreadyExists(row.status())) {
      return AlreadyExistsError(StrCat("repository '", name, "' already exists"));
    }
    return row.status();
  }
  return ReadRepository(s);
}

StatusOr<std::vector<Repository>> SqliteStore::ListRepositories() {
  ASSIGN_OR_RETURN(auto reader, AcquireReader());
  ASSIGN_OR_RETURN(Statement s,
                   reader->db().Prepare("SELECT id, name, url, created_ms FROM repositories "
                                        "WHERE deleted_ms IS NULL ORDER BY name"));
  return ReadRows<Repository>(s, ReadRepository);
}

StatusOr<Repository> SqliteStore::GetRepository(const std::string& name) {
  ASSIGN_OR_RETURN(auto reader, AcquireReader());
  ASSIGN_OR_RETURN(Statement s,
                   reader->db().Prepare("SELECT id, name, url, created_ms FROM repositories "
                                        "WHERE name = ? AND deleted_ms IS NULL"));
  s.Bind(1, name);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return NotFoundError(StrCat("unknown repository '", name, "'"));
  return ReadRepository(s);
}

Status SqliteStore::RemoveRepository(const std::string& name) {
  int64_t now = clock_.NowMs();
  std::lock_guard lock(write_mu_);
  WriteTransaction txn(*writer_);
  RETURN_IF_ERROR(txn.Begin());
  int64_t repo_id = 0;
  {
    ASSIGN_OR_RETURN(
        Statement s,
        writer_->Prepare("SELECT id FROM repositories WHERE name = ? AND deleted_ms IS NULL"));
    ASSIGN_OR_RETURN(bool row, s.Bind(1, name).Step());
    if (!row) return NotFoundError(StrCat("unknown repository '", name, "'"));
    repo_id = s.Int(0);
  }
  {
    ASSIGN_OR_RETURN(Statement s,
                     writer_->Prepare("SELECT COUNT(*) FROM runs WHERE repo_id = ? AND state IN "
                                      "('queued', 'preparing', 'running')"));
    ASSIGN_OR_RETURN(bool row, s.Bind(1, repo_id).Step());
    if (row && s.Int(0) > 0) {
      return FailedPreconditionError(StrCat("repository '", name, "' has ", s.Int(0),
                                            " unfinished run(s); cancel them first"));
    }
  }
  ASSIGN_OR_RETURN(Statement s,
                   writer_->Prepare("UPDATE repositories SET deleted_ms = ? WHERE id = ?"));
  RETURN_IF_ERROR(s.Bind(1, now).Bind(2, repo_id).Exec());
  return txn.Commit();
}

StatusOr<Run> SqliteStore::LoadRunLocked(SqliteDb& db, int64_t id) {
  ASSIGN_OR_RETURN(Statement s,
                   db.Prepare(StrCat("SELECT ", kRunColumns, kRunFrom, "WHERE r.id = ?")));
  ASSIGN_OR_RETURN(bool row, s.Bind(1, id).Step());
  if (!row) return NotFoundError(StrCat("unknown run ", id));
  return ReadRun(s);
}

StatusOr<int64_t> SqliteStore::AppendEventsLocked(int64_t run_id,
                                                  const std::vector<NewEvent>& events,
                                                  int64_t now) {
  int64_t seq = 0;
  {
    ASSIGN_OR_RETURN(Statement s,
                     writer_->Prepare("UPDATE runs SET last_event_seq = last_event_seq + ? "
                                      "WHERE id = ? RETURNING last_event_seq"));
    ASSIGN_OR_RETURN(bool row,
                     s.Bind(1, static_cast<int64_t>(events.size())).Bind(2, run_id).Step());
    if (!row) return NotFoundError(StrCat("unknown run ", run_id));
    seq = s.Int(0) - static_cast<int64_t>(events.size());
  }
  ASSIGN_OR_RETURN(Statement s,
                   writer_->Prepare("INSERT INTO run_events(run_id, seq, ts_ms, kind, data) "
                                    "VALUES(?, ?, ?, ?, ?)"));
  for (const NewEvent& e : events) {
    RETURN_IF_ERROR(s.Bind(1, run_id)
                        .Bind(2, ++seq)
                        .Bind(3, e.ts_ms > 0 ? e.ts_ms : now)
                        .Bind(4, e.kind)
                        .Bind(5, e.data)
                        .Exec());
  }
  return seq;
}

Status SqliteStore::CloseAttemptLocked(const Run& run, std::string_view outcome,
                                       const std::string& reason, int64_t now) {
  ASSIGN_OR_RETURN(Statement s,
                   writer_->Prepare("UPDATE run_attempts SET ended_ms = ?, outcome = ?, reason = ? "
                                    "WHERE run_id = ? AND number = ? AND ended_ms = 0"));
  return s.Bind(1, now)
      .Bind(2, outcome)
      .Bind(3, reason)
      .Bind(4, run.id)
      .Bind(5, int64_t{run.attempt})
      .Exec();
}

StatusOr<Run> SqliteStore::CreateRun(const RunSpec& spec) {
  ASSIGN_OR_RETURN(std::vector<StatusOr<Run>> runs, CreateRuns({spec}));
  return std::move(runs.front());
}

StatusOr<std::vector<StatusOr<Run>>> SqliteStore::CreateRuns(const std::vector<RunSpec>& specs) {
  int64_t now = clock_.NowMs();
  std::vector<StatusOr<Run>> runs;
  runs.reserve(specs.size());
  {
    std::lock_guard lock(write_mu_);
    WriteTransaction txn(*writer_);
    RETURN_IF_ERROR(txn.Begin());
    for (const RunSpec& spec : specs) {
      int64_t id = 0;
      {
        ASSIGN_OR_RETURN(
            Statement s,
            writer_->Prepare("INSERT INTO runs(repo_id, ref, recipe, state, max_attempts, "
                             "timeout_seconds, created_ms, updated_ms, kind, task, model, "
                             "change_request_id, requested_by, idempotency_key, trigger, context) "
                             "SELECT id, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM "
                             "repositories WHERE name = ? AND deleted_ms IS NULL RETURNING id"));
        s.Bind(1, spec.ref)
            .Bind(2, spec.recipe)
            .Bind(3, int64_t{spec.max_attempts})
            .Bind(4, int64_t{spec.timeout_seconds})
            .Bind(5, now)
            .Bind(6, now)
            .Bind(7, std::string(RunKindName(spec.kind)))
            .Bind(8, spec.task)
            .Bind(9, spec.model)
            .Bind(10, spec.change_request_id)
            .Bind(11, spec.requested_by)
            .Bind(12, spec.idempotency_key)
            .Bind(13, spec.trigger)
            .Bind(14, spec.context.empty()
                          ? std::string()
                          : Json(spec.context).dump(-1, ' ', false, Json::error_handler_t::replace))
            .Bind(15, spec.repo);
        // A refused insert is undone alone (SQLite aborts the statement, not the transaction).
        auto stepped = s.Step();
        if (!stepped.ok() && IsAlreadyExists(stepped.status())) {
          runs.push_back(AlreadyExistsError(
              StrCat("a run with idempotency key '", spec.idempotency_key, "' exists")));
          continue;
        }
        ASSIGN_OR_RETURN(bool row, std::move(stepped));
        if (!row) {
          runs.push_back(NotFoundError(StrCat("unknown repository '", spec.repo, "'")));
          continue;
        }
        id = s.Int(0);
      }
      RETURN_IF_ERROR(
          AppendEventsLocked(id, {StateEventOf({.to = "queued", .attempt = 0})}, now).status());
      if (!spec.concurrency_key.empty()) {
        ASSIGN_OR_RETURN(Statement s, writer_->Prepare("INSERT INTO trigger_keys(key, run_id) "
                                                       "VALUES(?, ?) ON CONFLICT(key) DO UPDATE "
                                                       "SET run_id = excluded.run_id, "
                                                       "waiting_event_id = 0"));
        RETURN_IF_ERROR(s.Bind(1, spec.concurrency_key).Bind(2, id).Exec());
      }
      ASSIGN_OR_RETURN(Run run, LoadRunLocked(*writer_, id));
      runs.push_back(std::move(run));
    }
    RETURN_IF_ERROR(txn.Commit());
  }
  for (const StatusOr<Run>& run : runs) {
    if (run.ok()) Notify(run->id);
  }
  return runs;
}

StatusOr<Run> SqliteStore::GetRun(int64_t id) {
  ASSIGN_OR_RETURN(auto reader, AcquireReader());
  return LoadRunLocked(reader->db(), id);
}

StatusOr<Run> SqliteStore::GetRunByKey(const std::string& idempotency_key) {
  if (idempotency_key.empty()) return InvalidArgumentError("empty idempotency key");
  ASSIGN_OR_RETURN(auto reader, AcquireReader());
  ASSIGN_OR_RETURN(Statement s, reader->db().Prepare(StrCat("SELECT ", kRunColumns, kRunFrom,
                                                            "WHERE r.idempotency_key = ? AND "
                                                            "r.idempotency_key != ''")));
  ASSIGN_OR_RETURN(bool row, s.Bind(1, idempotency_key).Step());
  if (!row) return NotFoundError(StrCat("no run has idempotency key '", idempotency_key, "'"));
  return ReadRun(s);
}

StatusOr<RunCounts> SqliteStore::CountRuns(const std::string& requested_by, int64_t since_ms) {
  ASSIGN_OR_RETURN(auto reader, AcquireReader());
  ASSIGN_OR_RETURN(
      Statement s,
      reader->db().Prepare("SELECT COALESCE(SUM(created_ms >= ?), 0), COALESCE(SUM(state IN "
                           "('queued', 'preparing', 'running')), 0) FROM runs WHERE "
                           "requested_by = ?"));
  ASSIGN_OR_RETURN(bool row, s.Bind(1, since_ms).Bind(2, requested_by).Step());
  if (!row) return RunCounts{};
  return RunCounts{.since = s.Int(0), .unfinished = s.Int(1)};
}

StatusOr<std::vector<Run>> SqliteStore::ListRuns(const RunFilter& filter) {
  std::string sql = StrCat("SELECT ", kRunColumns, kRunFrom, "WHERE 1=1");
  if (!filter.repo.empty()) sql += " AND p.name = ?";
  if (filter.state) sql += " AND r.state = ?";
  if (filter.before_id > 0) sql += " AND r.id < ?";
  sql += " ORDER BY r.id DESC LIMIT ?";
  ASSIGN_OR_RETURN(auto reader, AcquireReader());
  ASSIGN_OR_RETURN(Statement s, reader->db().Prepare(sql));
  int i = 0;
  if (!filter.repo.empty()) s.Bind(++i, filter.repo);
  if (filter.state) s.Bind(++i, RunStateName(*filter.state));
  if (filter.before_id > 0) s.Bind(++i, filter.before_id);
  s.Bind(++i, int64_t{filter.limit});
  return ReadRows<Run>(s, ReadRun);
}

StatusOr<std::vector<RunAttempt>> SqliteStore::ListAttempts(int64_t run_id) {
  ASSIGN_OR_RETURN(auto reader, AcquireReader());
  ASSIGN_OR_RETURN(Statement s, reader->db().Prepare(
                                    "SELECT run_id, number, runner, started_ms, ended_ms, outcome, "
                                    "reason FROM run_attempts WHERE run_id = ? ORDER BY number"));
  s.Bind(1, run_id);
  std::vector<RunAttempt> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(RunAttempt{.run_id = s.Int(0),
                             .number = static_cast<int32_t>(s.Int(1)),
                             .runner = s.Text(2),
                             .started_ms = s.Int(3),
                             .ended_ms = s.Int(4),
                             .outcome = s.Text(5),
                             .reason = s.Text(6)});
  }
  return out;
}

StatusOr<std::optional<Run>> SqliteStore::LeaseRun(const std::string& owner, int64_t ttl_ms) {
  int64_t now = clock_.NowMs();
  Run run;
  {
    std::lock_guard lock(write_mu_);
    WriteTransaction txn(*writer_);
    RETURN_IF_ERROR(txn.Begin());
    int64_t id = 0;
    {
      ASSIGN_OR_RETURN(
          Statement s,
          writer_->Prepare("UPDATE runs SET state = 'preparing', attempt = attempt + 1, "
                           "lease_owner = ?, lease_expires_ms = ?, updated_ms = ?, "
                           "started_ms = CASE WHEN started_ms = 0 THEN ? ELSE started_ms END "
                           "WHERE id = (SELECT id FROM runs WHERE state = 'queued' ORDER BY id "
                           "LIMIT 1) AND state = 'queued' RETURNING id"));
      ASSIGN_OR_RETURN(bool row,
                       s.Bind(1, owner).Bind(2, now + ttl_ms).Bind(3, now).Bind(4, now).Step());
      if (!row) return std::optional<Run>();
      id = s.Int(0);
    }
    ASSIGN_OR_RETURN(run, LoadRunLocked(*writer_, id));
    {
      ASSIGN_OR_RETURN(
          Statement s,
          writer_->Prepare("INSERT INTO run_attempts(run_id, number, runner, started_ms) "
                           "VALUES(?, ?, ?, ?)"));
      RETURN_IF_ERROR(
          s.Bind(1, id).Bind(2, int64_t{run.attempt}).Bind(3, owner).Bind(4, now).Exec());
    }
    NewEvent leased = StateEventOf(
        {.from = "queued", .to = "preparing", .attempt = run.attempt, .runner = owner});
    ASSIGN_OR_RETURN(run.last_event_seq, AppendEventsLocked(id, {leased}, now));
    RETURN_IF_ERROR(txn.Commit());
  }
  Notify(run.id);
  return std::optional<Run>(std::move(run));
}

StatusOr<Run> SqliteStore::Heartbeat(int64_t run_id, const Lease& lease, int64_t ttl_ms) {
  int64_t now = clock_.NowMs();
  std::lock_guard lock(write_mu_);
  {
    ASSIGN_OR_RETURN(Statement s,
                     writer_->Prepare("UPDATE runs SET lease_expires_ms = ? WHERE id = ? AND "
                                      "lease_owner = ? AND attempt = ? AND "
                                      "state IN ('preparing', 'running') RETURNING id"));
    ASSIGN_OR_RETURN(bool row, s.Bind(1, now + ttl_ms)
                                   .Bind(2, run_id)
                                   .Bind(3, lease.owner)
                                   .Bind(4, int64_t{lease.attempt})
                                   .Step());
    if (!row) {
      return FailedPreconditionError(StrCat("run ", run_id, " is no longer leased by ", lease.owner,
                                            " (attempt ", lease.attempt, ")"));
    }
  }
  return LoadRunLocked(*writer_, run_id);
}

StatusOr<Run> SqliteStore::TransitionRun(int64_t run_id, const Lease& lease, const Transition& t) {
  int64_t now = clock_.NowMs();
  bool terminal = IsTerminal(t.to);
  Run run;
  {
    std::lock_guard lock(write_mu_);
    WriteTransaction txn(*writer_);
    RETURN_IF_ERROR(txn.Begin());
    {
      ASSIGN_OR_RETURN(
          Statement s,
          writer_->Prepare("UPDATE runs SET state = ?3, updated_ms = ?4, "
                           "exit_code = COALESCE(?5, exit_code), "
                           "reason = CASE WHEN ?6 = '' THEN reason ELSE ?6 END, "
                           "commit_sha = CASE WHEN ?7 = '' THEN commit_sha ELSE ?7 END, "
                           "finished_ms = CASE WHEN ?8 THEN ?4 ELSE finished_ms END, "
                           "lease_owner = CASE WHEN ?8 THEN NULL ELSE lease_owner END, "
                           "lease_expires_ms = CASE WHEN ?8 THEN NULL ELSE lease_expires_ms END "
                           "WHERE id = ?1 AND state = ?2 AND lease_owner = ?9 AND attempt = ?10 "
                           "RETURNING id"));
      s.Bind(1, run_id).Bind(2, RunStateName(t.from)).Bind(3, RunStateName(t.to)).Bind(4, now);
      s.Bind(5, t.exit_code ? std::optional<int64_t>(*t.exit_code) : std::nullopt);
      s.Bind(6, t.reason).Bind(7, t.commit).Bind(8, int64_t{terminal}).Bind(9, lease.owner);
      s.Bind(10, int64_t{lease.attempt});
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) {
        auto current = LoadRunLocked(*writer_, run_id);
        if (!current.ok()) return current.status();
        return FailedPreconditionError(
            StrCat("run ", run_id, " cannot go ", RunStateName(t.from), " -> ", RunStateName(t.to),
                   ": it is ", RunStateName(current->state),
                   current->lease_owner == lease.owner && current->attempt == lease.attempt
                       ? ""
                       : " and not leased by this runner"));
      }
    }
    ASSIGN_OR_RETURN(run, LoadRunLocked(*writer_, run_id));
    if (terminal) RETURN_IF_ERROR(CloseAttemptLocked(run, RunStateName(t.to), t.reason, now));
    ASSIGN_OR_RETURN(
        run.last_event_seq,
        AppendEventsLocked(run_id, {StateEventOf(t.from, t.to, t.reason, run.attempt, t.exit_code)},
                           now));
    RETURN_IF_ERROR(txn.Commit());
  }
  Notify(run_id);
  return run;
}

StatusOr<Run> SqliteStore::CancelRun(int64_t run_id, const std::string& reason) {
  int64_t now = clock_.NowMs();
  Run run;
  {
    std::lock_guard lock(write_mu_);
    WriteTransaction txn(*writer_);
    RETURN_IF_ERROR(txn.Begin());
    ASSIGN_OR_RETURN(Run before, LoadRunLocked(*writer_, run_id));
    if (IsTerminal(before.state)) {
      return FailedPreconditionError(
          StrCat("run ", run_id, " already ", RunStateName(before.state)));
    }
    {
      ASSIGN_OR_RETURN(Statement s,
                       writer_->Prepare("UPDATE runs SET state = 'cancelled', reason = ?, "
                                        "updated_ms = ?, finished_ms = ?, lease_owner = NULL, "
                                        "lease_expires_ms = NULL WHERE id = ? AND state = ?"));
      RETURN_IF_ERROR(s.Bind(1, reason)
                          .Bind(2, now)
                          .Bind(3, now)
                          .Bind(4, run_id)
                          .Bind(5, RunStateName(before.state))
                          .Exec());
    }
    if (before.attempt > 0 && !before.lease_owner.empty()) {
      RETURN_IF_ERROR(CloseAttemptLocked(before, "cancelled", reason, now));
    }
    ASSIGN_OR_RETURN(run, LoadRunLocked(*writer_, run_id));
    ASSIGN_OR_RETURN(run.last_event_seq,
                     AppendEventsLocked(run_id,
                                        {StateEventOf(before.state, RunState::kCancelled, reason,
                                                      run.attempt, std::nullopt)},
                                        now));
    RETURN_IF_ERROR(txn.Commit());
  }
  Notify(run_id);
  return run;
}

StatusOr<std::vector<Run>> SqliteStore::ExpireLeases(const std::string& owner) {
  int64_t now = clock_.NowMs();
  std::vector<Run> changed;
  {
    std::lock_guard lock(write_mu_);
    WriteTransaction txn(*writer_);
    RETURN_IF_ERROR(txn.Begin());
    std::vector<int64_t> ids;
    {
      ASSIGN_OR_RETURN(Statement s,
                       writer_->Prepare("SELECT id FROM runs WHERE lease_owner IS NOT NULL AND "
                                        "(lease_expires_ms < ? OR lease_owner = ?) ORDER BY id"));
      s.Bind(1, now).Bind(2, owner);
      for (;;) {
        ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        ids.push_back(s.Int(0));
      }
    }
    for (int64_t id : ids) {
      ASSIGN_OR_RETURN(Run before, LoadRunLocked(*writer_, id));
      bool requeue = before.attempt < before.max_attempts;
      std::string reason =
          requeue ? StrCat("runner ", before.lease_owner, " lost its lease (attempt ",
                           before.attempt, " of ", before.max_attempts, "); requeued")
                  : StrCat("runner ", before.lease_owner, " lost its lease on the last of ",
                           before.max_attempts, " attempts");
      RETURN_IF_ERROR(CloseAttemptLocked(before, requeue ? "requeued" : "failed", reason, now));
      {
        ASSIGN_OR_RETURN(
            Statement s,
            writer_->Prepare("UPDATE runs SET state = ?, reason = ?, updated_ms = ?, "
                             "finished_ms = ?, lease_owner = NULL, lease_expires_ms = NULL "
                             "WHERE id = ?"));
        RETURN_IF_ERROR(s.Bind(1, requeue ? "queued" : "failed")
                            .Bind(2, reason)
                            .Bind(3, now)
                            .Bind(4, requeue ? 0 : now)
                            .Bind(5, id)
                            .Exec());
      }
      RunState to = requeue ? RunState::kQueued : RunState::kFailed;
      RETURN_IF_ERROR(
          AppendEventsLocked(
              id, {StateEventOf(before.state, to, reason, before.attempt, std::nullopt)}, now)
              .status());
      ASSIGN_OR_RETURN(Run after, LoadRunLocked(*writer_, id));
      changed.push_back(std::move(after));
    }
    RETURN_IF_ERROR(txn.Commit());
  }
  for (const Run& r : changed) Notify(r.id);
  return changed;
}

StatusOr<int64_t> SqliteStore::AppendEvents(int64_t run_id, const std::vector<NewEvent>& events) {
  if (events.empty()) {
    ASSIGN_OR_RETURN(Run run, GetRun(run_id));
    return run.last_event_seq;
  }
  int64_t now = clock_.NowMs();
  int64_t seq = 0;
  {
    std::lock_guard lock(write_mu_);
    WriteTransaction txn(*writer_);
    RETURN_IF_ERROR(txn.Begin());
    ASSIGN_OR_RETURN(seq, AppendEventsLocked(run_id, events, now));
    RETURN_IF_ERROR(txn.Commit());
  }
  Notify(run_id);
  return seq;
}

StatusOr<std::vector<RunEvent>> SqliteStore::ListEvents(int64_t run_id, int64_t after_seq,
                                                        int32_t limit) {
  ASSIGN_OR_RETURN(auto reader, AcquireReader());
  ASSIGN_OR_RETURN(Statement s,
                   reader->db().Prepare("SELECT run_id, seq, ts_ms, kind, data FROM run_events "
                                        "WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?"));
  s.Bind(1, run_id).Bind(2, after_seq).Bind(3, int64_t{limit});
  std::vector<RunEvent> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(RunEvent{.run_id = s.Int(0),
                           .seq = s.Int(1),
                           .ts_ms = s.Int(2),
                           .kind = s.Text(3),
                           .data = s.Text(4)});
  }
  return out;
}

}  // namespace

int SqliteSchemaVersion() { return static_cast<int>(Migrations().size()); }

StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::filesystem::path& path,
                                                 const Clock& clock, const SqliteOptions& options) {
  ASSIGN_OR_RETURN(auto writer,
                   SqliteDb::Open(path.string(), /*read_only=*/false, options.busy_timeout_ms));
  auto store = std::make_unique<SqliteStore>(path.string(), clock, options, std::move(writer));
  RETURN_IF_ERROR(store->Migrate());
  return std::unique_ptr<Store>(std::move(store));
}

namespace {
constexpr char kCrColumns[] =
    "c.id, c.run_id, c.repo_id, p.name, c.branch, c.base_branch, c.base_commit, c.head_commit, "
    "c.title, c.body, c.state, c.review, c.diff, c.remote_url, c.created_ms, c.updated_ms, "
    "c.remote_id";
constexpr char kCrFrom[] = " FROM change_requests c JOIN repositories p ON p.id = c.repo_id ";

ChangeRequest ReadChangeRequest(const Statement& s) {
  return ChangeRequest{.id = s.Int(0),
                       .run_id = s.Int(1),
                       .repo_id = s.Int(2),
                       .repo = s.Text(3),
                       .branch = s.Text(4),
                       .base_branch = s.Text(5),
                       .base_commit = s.Text(6),
                       .head_commit = s.Text(7),
                       .title = s.Text(8),
                       .body = s.Text(9),
                       .state = ParseCrState(s.Text(10)).value_or(CrState::kClosed),
                       .review = ParseCrReview(s.Text(11)).value_or(CrReview::kPending),
                       .diff = s.Text(12),
                       .remote_url = s.Text(13),
                       .remote_id = s.Text(16),
                       .created_ms = s.Int(14),
                       .updated_ms = s.Int(15)};
}
}  // namespace

StatusOr<ChangeRequest> SqliteStore::CreateChangeRequest(const ChangeRequest& cr) {
  const int64_t now = clock_.NowMs();
  int64_t id = 0;
  {
    std::lock_guard lock(write_mu_);
    ASSIGN_OR_RETURN(
        Statement s,
        writer_->Prepare("INSERT INTO change_requests(run_id, repo_id, branch, base_branch, "
                         "base_commit, head_commit, title, body, state, review, diff, remote_url, "
                         "created_ms, updated_ms) VALUES(?, ?, ?, ?, ?, ?, ?, ?, 'open', "
                         "'pending', ?, ?, ?, ?) RETURNING id"));
    s.Bind(1, cr.run_id)
        .Bind(2, cr.repo_id)
        .Bind(3, cr.branch)
        .Bind(4, cr.base_branch)
        .Bind(5, cr.base_commit)
        .Bind(6, cr.head_commit)
        .Bind(7, cr.title)
        .Bind(8, cr.body)
        .Bind(9, cr.diff)
        .Bind(10, cr.remote_url)
        .Bind(11, now)
        .Bind(12, now);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return InternalError("change request insert returned nothing");
    id = s.Int(0);
  }
  return GetChangeRequest(id);
}

StatusOr<ChangeRequest> SqliteStore::GetChangeRequest(int64_t id) {
  ASSIGN_OR_RETURN(auto reader, AcquireReader());
  ASSIGN_OR_RETURN(Statement s,
                   reader->db().Prepare(StrCat("SELECT ", kCrColumns, kCrFrom, "WHERE c.id = ?")));
  s.Bind(1, id);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return NotFoundError(StrCat("no change request ", id));
  return ReadChangeRequest(s);
}

StatusOr<std::vector<ChangeRequest>> SqliteStore::ListChangeRequests(const std::string& repo,
                                                                     std::optional<CrState> state) {
  std::string sql = StrCat("SELECT ", kCrColumns, kCrFrom, "WHERE 1=1");
  if (!repo.empty()) sql += " AND p.name = ?";
  if (state) sql += " AND c.state = ?";
  sql += " ORDER BY c.id DESC LIMIT 500";
  ASSIGN_OR_RETURN(auto reader, AcquireReader());
  ASSIGN_OR_RETURN(Statement s, reader->db().Prepare(sql));
  int index = 1;
  if (!repo.empty()) s.Bind(index++, repo);
  if (state) s.Bind(index++, std::string(CrStateName(*state)));
  return ReadRows<ChangeRequest>(s, ReadChangeRequest);
}

StatusOr<ChangeRequest> SqliteStore::UpdateChangeRequest(const ChangeRequest& cr,
                                                         CrState expected_state) {
  {
    std::lock_guard lock(write_mu_);
    ASSIGN_OR_RETURN(Statement s,
                     writer_->Prepare("UPDATE change_requests SET head_commit = ?, diff = ?, "
                                      "title = ?, body = ?, state = ?, review = ?, remote_url = ?, "
                                      "remote_id = ?, updated_ms = ? WHERE id = ? AND state = ? "
                                      "RETURNING id"));
    s.Bind(1, cr.head_commit)
        .Bind(2, cr.diff)
        .Bind(3, cr.title)
        .Bind(4, cr.body)
        .Bind(5, std::string(CrStateName(cr.state)))
        .Bind(6, std::string(CrReviewName(cr.review)))
        .Bind(7, cr.remote_url)
        .Bind(8, cr.remote_id)
        .Bind(9, clock_.NowMs())
        .Bind(10, cr.id)
        .Bind(11, std::string(CrStateName(expected_state)));
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) {
      return FailedPreconditionError(
          StrCat("change request ", cr.id, " is no longer ", CrStateName(expected_state)));
    }
  }
  return GetChangeRequest(cr.id);
}

StatusOr<CrComment> SqliteStore::AddCrComment(int64_t change_request_id, const std::string& author,
                                              const std::string& body) {
  const int64_t now = clock_.NowMs();
  std::lock_guard lock(write_mu_);
  ASSIGN_OR_RETURN(Statement s,
                   writer_->Prepare("INSERT INTO cr_comments(change_request_id, author, body, "
                                    "created_ms) SELECT id, ?, ?, ? FROM change_requests WHERE "
                                    "id = ? RETURNING id"));
  s.Bind(1, author).Bind(2, body).Bind(3, now).Bind(4, change_request_id);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return NotFoundError(StrCat("no change request ", change_request_id));
  return CrComment{.id = s.Int(0),
                   .change_request_id = change_request_id,
                   .author = author,
                   .body = body,
                   .created_ms = now};
}

StatusOr<std::vector<CrComment>> SqliteStore::ListCrComments(int64_t change_request_id) {
  ASSIGN_OR_RETURN(auto reader, AcquireReader());
  ASSIGN_OR_RETURN(Statement s, reader->db().Prepare(
                                    "SELECT id, change_request_id, author, body, created_ms "
                                    "FROM cr_comments WHERE change_request_id = ? ORDER BY id"));
  s.Bind(1, change_request_id);
  std::vector<CrComment> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(CrComment{.id = s.Int(0),
                            .change_request_id = s.Int(1),
                            .author = s.Text(2),
                            .body = s.Text(3),
                            .created_ms = s.Int(4)});
  }
  return out;
}

namespace {

constexpr char kIncomingColumns[] =
    "id, source, delivery, type, body, received_ms, state, outcome, processed_ms, replays, "
    "redeliveries";

IncomingEvent ReadIncoming(const Statement& s) {
  return IncomingEvent{
      .id = s.Int(0),
      .source = s.Text(1),
      .delivery = s.Text(2),
      .type = s.Text(3),
      .body = s.Text(4),
      .received_ms = s.Int(5),
      .state = ParseIncomingState(s.Text(6)).value_or(IncomingState::kDone),
      .outcome = s.Text(7),
      .processed_ms = s.Int(8),
      .replays = static_cast<int32_t>(s.Int(9)),
      .redeliveries = static_cast<int32_t>(s.Int(10)),
  };
}

}  // namespace

StatusOr<IncomingEvent> SqliteStore::AddIncomingLocked(const IncomingEvent& event, int64_t now) {
  // A redelivery leaves the stored event as it is but for its count.
  ASSIGN_OR_RETURN(Statement s, writer_->Prepare(StrCat(
                                    "INSERT INTO incoming_events(source, delivery, type, body, "
                                    "received_ms, state) VALUES(?, ?, ?, ?, ?, 'pending') "
                                    "ON CONFLICT(source, delivery) DO UPDATE SET redeliveries = "
                                    "redeliveries + 1 RETURNING ",
                                    kIncomingColumns)));
  s.Bind(1, event.source).Bind(2, event.delivery).Bind(3, event.type).Bind(4, event.body);
  s.Bind(5, now);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return InternalError("insert of an incoming event returned nothing");
  return ReadIncoming(s);
}

StatusOr<IncomingEvent> SqliteStore::AddIncoming(const IncomingEvent& event) {
  if (event.source.empty() || event.delivery.empty()) {
    return InvalidArgumentError("an incoming event needs a source and a delivery id");
  }
  const int64_t now = clock_.NowMs();
  std::lock_guard lock(write_mu_);
  return AddIncomingLocked(event, now);
}

StatusOr<IncomingEvent> SqliteStore::GetIncoming(int64_t id) {
  ASSIGN_OR_RETURN(auto reader, AcquireReader());
  ASSIGN_OR_RETURN(Statement s, reader->db().Prepare(StrCat("SELECT ", kIncomingColumns,
                                                            " FROM incoming_events WHERE id = ?")));
  ASSIGN_OR_RETURN(bool row, s.Bind(1, id).Step());
  if (!row) return NotFoundError(StrCat("unknown event ", id));
  return ReadIncoming(s);
}

StatusOr<std::vector<IncomingEvent>> SqliteStore::ListIncoming(const IncomingFilter& filter) {
  const bool pending = filter.state == IncomingState::kPending;
  std::string sql = StrCat("SELECT ", kIncomingColumns, " FROM incoming_events WHERE 1=1");
  // The state as a literal: SQLite uses the partial index of pending events only for a WHERE
  // clause that names 'pending' itself.
  if (filter.state) sql += StrCat(" AND state = '", IncomingStateName(*filter.state), "'");
  if (filter.before_id > 0) sql += " AND id < ?";
  sql += pending ? " ORDER BY id ASC LIMIT ?" : " ORDER BY id DESC LIMIT ?";
  ASSIGN_OR_RETURN(auto reader, AcquireReader());
  ASSIGN_OR_RETURN(Statement s, reader->db().Prepare(sql));
  int i = 0;
  if (filter.before_id > 0) s.Bind(++i, filter.before_id);
  s.Bind(++i, int64_t{filter.limit});
  return ReadRows<IncomingEvent>(s, ReadIncoming);
}

Status SqliteStore::FinishIncoming(const std::vector<Outcome>& outcomes) {
  const int64_t now = clock_.NowMs();
  std::lock_guard lock(write_mu_);
  WriteTransaction txn(*writer_);
  RETURN_IF_ERROR(txn.Begin());
  ASSIGN_OR_RETURN(Statement s, writer_->Prepare("UPDATE incoming_events SET state = 'done', "
                                                 "outcome = ?, processed_ms = ? WHERE id = ? AND "
                                                 "state = 'pending' RETURNING id"));
  for (const Outcome& o : outcomes) {
    ASSIGN_OR_RETURN(bool row, s.Bind(1, o.outcome).Bind(2, now).Bind(3, o.event_id).Step());
    if (!row) return FailedPreconditionError(StrCat("event ", o.event_id, " is not pending"));
    RETURN_IF_ERROR(s.Exec());  // to the end of the statement, and reset for the next
  }
  return txn.Commit();
}

Status SqliteStore::UpdateIncomingOutcome(int64_t id, const std::string& outcome) {
  std::lock_guard lock(write_mu_);
  ASSIGN_OR_RETURN(Statement s, writer_->Prepare("UPDATE incoming_events SET outcome = ? WHERE "
                                                 "id = ? AND state = 'done' RETURNING id"));
  ASSIGN_OR_RETURN(bool row, s.Bind(1, outcome).Bind(2, id).Step());
  if (!row) return FailedPreconditionError(StrCat("event ", id, " is not done"));
  return s.Exec();
}

StatusOr<IncomingEvent> SqliteStore::ReplayIncoming(int64_t id) {
  std::lock_guard lock(write_mu_);
  ASSIGN_OR_RETURN(Statement s, writer_->Prepare(StrCat(
                                    "UPDATE incoming_events SET state = 'pending', replays = "
                                    "replays + 1 WHERE id = ? AND state = 'done' RETURNING ",
                                    kIncomingColumns)));
  ASSIGN_OR_RETURN(bool row, s.Bind(1, id).Step());
  if (row) return ReadIncoming(s);
  ASSIGN_OR_RETURN(Statement exists,
                   writer_->Prepare("SELECT 1 FROM incoming_events WHERE id = ?"));
  ASSIGN_OR_RETURN(bool found, exists.Bind(1, id).Step());
  if (!found) return NotFoundError(StrCat("unknown event ", id));
  return FailedPreconditionError(StrCat("event ", id, " is still being processed"));
}

StatusOr<int64_t> SqliteStore::ScheduleLastDue(const std::string& key) {
  ASSIGN_OR_RETURN(auto reader, AcquireReader());
  ASSIGN_OR_RETURN(Statement s,
                   reader->db().Prepare("SELECT due_ms FROM schedule_dues WHERE key = ?"));
  ASSIGN_OR_RETURN(bool row, s.Bind(1, key).Step());
  return row ? s.Int(0) : 0;
}

Status SqliteStore::RecordScheduleDue(const std::string& key, int64_t due_ms,
                                      const std::optional<IncomingEvent>& fire) {
  const int64_t now = clock_.NowMs();
  std::lock_guard lock(write_mu_);
  WriteTransaction txn(*writer_);
  RETURN_IF_ERROR(txn.Begin());
  {
    ASSIGN_OR_RETURN(Statement s, writer_->Prepare("INSERT INTO schedule_dues(key, due_ms) "
                                                   "VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET "
                                                   "due_ms = MAX(due_ms, excluded.due_ms)"));
    RETURN_IF_ERROR(s.Bind(1, key).Bind(2, due_ms).Exec());
  }
  if (fire) RETURN_IF_ERROR(AddIncomingLocked(*fire, now).status());
  return txn.Commit();
}

StatusOr<std::optional<TriggerKey>> SqliteStore::GetTriggerKey(const std::string& key) {
  ASSIGN_OR_RETURN(auto reader, AcquireReader());
  ASSIGN_OR_RETURN(Statement s, reader->db().Prepare("SELECT key, run_id, waiting_event_id FROM "
                                                     "trigger_keys WHERE key = ?"));
  ASSIGN_OR_RETURN(bool row, s.Bind(1, key).Step());
  if (!row) return std::optional<TriggerKey>();
  return std::optional<TriggerKey>(
      TriggerKey{.key = s.Text(0), .run_id = s.Int(1), .waiting_event_id = s.Int(2)});
}

Status SqliteStore::PutTriggerKey(const TriggerKey& key) {
  std::lock_guard lock(write_mu_);
  ASSIGN_OR_RETURN(
      Statement s,
      writer_->Prepare("INSERT INTO trigger_keys(key, run_id, waiting_event_id) "
                       "VALUES(?, ?, ?) ON CONFLICT(key) DO UPDATE SET run_id = "
                       "excluded.run_id, waiting_event_id = excluded.waiting_event_id"));
  return s.Bind(1, key.key).Bind(2, key.run_id).Bind(3, key.waiting_event_id).Exec();
}

StatusOr<std::vector<TriggerKey>> SqliteStore::ListWaitingTriggerKeys() {
  ASSIGN_OR_RETURN(auto reader, AcquireReader());
  ASSIGN_OR_RETURN(Statement s, reader->db().Prepare("SELECT key, run_id, waiting_event_id FROM "
                                                     "trigger_keys WHERE waiting_event_id != 0 "
                                                     "ORDER BY waiting_event_id"));
  std::vector<TriggerKey> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(TriggerKey{.key = s.Text(0), .run_id = s.Int(1), .waiting_event_id = s.Int(2)});
  }
  return out;
}

namespace {
constexpr char kUserColumns[] =
    "SELECT id, name, password_hash, scopes, created_ms, disabled_ms FROM users ";
constexpr char kTokenColumns[] =
    "SELECT id, name, owner, hash, scopes, created_ms, expires_ms, revoked_ms FROM api_tokens ";

User ReadUser(const Statement& s) {
  return User{.id = s.Int(0),
              .name = s.Text(1),
              .password_hash = s.Text(2),
              .scopes = s.Text(3),
              .created_ms = s.Int(4),
              .disabled_ms = s.Int(5)};
}

ApiToken ReadToken(const Statement& s) {
  return ApiToken{.id = s.Int(0),
                  .name = s.Text(1),
                  .owner = s.Text(2),
                  .hash = s.Text(3),
                  .scopes = s.Text(4),
                  .created_ms = s.Int(5),
                  .expires_ms = s.Int(6),
                  .revoked_ms = s.Int(7)};
}
}  // namespace

StatusOr<User> SqliteStore::AddUser(const User& user) {
  std::lock_guard lock(write_mu_);
  ASSIGN_OR_RETURN(Statement s,
                   writer_->Prepare("INSERT INTO users(name, password_hash, scopes, created_ms) "
                                    "VALUES(?, ?, ?, ?) RETURNING id, name, password_hash, "
                                    "scopes, created_ms, disabled_ms"));
  auto row = s.Bind(1, user.name)
                 .Bind(2, user.password_hash)
                 .Bind(3, user.scopes)
                 .Bind(4, clock_.NowMs())
                 .Step();
  if (!row.ok() && IsAlreadyExists(row.status())) {
    return AlreadyExistsError(StrCat("user '", user.name, "' exists"));
  }
  RETURN_IF_ERROR(row.status());
  return ReadUser(s);
}

StatusOr<User> SqliteStore::GetUser(const std::string& name) {
  ASSIGN_OR_RETURN(auto reader, AcquireReader());
  ASSIGN_OR_RETURN(Statement s, reader->db().Prepare(StrCat(kUserColumns, "WHERE name = ?")));
  ASSIGN_OR_RETURN(bool row, s.Bind(1, name).Step());
  if (!row) return NotFoundError(StrCat("no user '", name, "'"));
  return ReadUser(s);
}

StatusOr<std::vector<User>> SqliteStore::ListUsers() {
  ASSIGN_OR_RETURN(auto reader, AcquireReader());
  ASSIGN_OR_RETURN(Statement s, reader->db().Prepare(StrCat(kUserColumns, "ORDER BY name")));
  return ReadRows<User>(s, ReadUser);
}

StatusOr<User> SqliteStore::DisableUser(const std::string& name) {
  {
    std::lock_guard lock(write_mu_);
    ASSIGN_OR_RETURN(Statement s,
                     writer_->Prepare("UPDATE users SET disabled_ms = ? WHERE name = ? AND "
                                      "disabled_ms = 0"));
    RETURN_IF_ERROR(s.Bind(1, clock_.NowMs()).Bind(2, name).Exec());
  }
  return GetUser(name);
}

StatusOr<ApiToken> SqliteStore::AddToken(const ApiToken& token) {
  std::lock_guard lock(write_mu_);
  ASSIGN_OR_RETURN(Statement s,
                   writer_->Prepare("INSERT INTO api_tokens(name, owner, hash, scopes, created_ms, "
                                    "expires_ms) VALUES(?, ?, ?, ?, ?, ?) RETURNING id, name, "
                                    "owner, hash, scopes, created_ms, expires_ms, revoked_ms"));
  auto row = s.Bind(1, token.name)
                 .Bind(2, token.owner)
                 .Bind(3, token.hash)
                 .Bind(4, token.scopes)
                 .Bind(5, clock_.NowMs())
                 .Bind(6, token.expires_ms)
                 .Step();
  if (!row.ok() && IsAlreadyExists(row.status())) return AlreadyExistsError("token exists");
  RETURN_IF_ERROR(row.status());
  return ReadToken(s);
}

StatusOr<ApiToken> SqliteStore::GetTokenByHash(const std::string& hash) {
  ASSIGN_OR_RETURN(auto reader, AcquireReader());
  ASSIGN_OR_RETURN(Statement s, reader->db().Prepare(StrCat(kTokenColumns, "WHERE hash = ?")));
  ASSIGN_OR_RETURN(bool row, s.Bind(1, hash).Step());
  if (!row) return NotFoundError("no such token");
  return ReadToken(s);
}

StatusOr<std::vector<ApiToken>> SqliteStore::ListTokens(const std::optional<std::string>& owner) {
  ASSIGN_OR_RETURN(auto reader, AcquireReader());
  ASSIGN_OR_RETURN(
      Statement s,
      reader->db().Prepare(StrCat(kTokenColumns, owner ? "WHERE owner = ? " : "", "ORDER BY id")));
  if (owner) s.Bind(1, *owner);
  return ReadRows<ApiToken>(s, ReadToken);
}

StatusOr<ApiToken> SqliteStore::RevokeToken(int64_t id) {
  std::lock_guard lock(write_mu_);
  {
    ASSIGN_OR_RETURN(Statement s, writer_->Prepare("UPDATE api_tokens SET revoked_ms = ? WHERE "
                                                   "id = ? AND revoked_ms = 0"));
    RETURN_IF_ERROR(s.Bind(1, clock_.NowMs()).Bind(2, id).Exec());
  }
  ASSIGN_OR_RETURN(Statement s, writer_->Prepare(StrCat(kTokenColumns, "WHERE id = ?")));
  ASSIGN_OR_RETURN(bool row, s.Bind(1, id).Step());
  if (!row) return NotFoundError(StrCat("no token ", id));
  return ReadToken(s);
}

namespace {
constexpr char kAuditColumns[] =
    "SELECT seq, time_ms, actor, action, resource, decision, run_id, detail, prev_hash, hash "
    "FROM audit_log ";

AuditRecord ReadAudit(const Statement& s) {
  return AuditRecord{.seq = s.Int(0),
                     .time_ms = s.Int(1),
                     .actor = s.Text(2),
                     .action = s.Text(3),
                     .resource = s.Text(4),
                     .decision = s.Text(5),
                     .run_id = s.Int(6),
                     .detail = s.Text(7),
                     .prev_hash = s.Text(8),
                     .hash = s.Text(9)};
}
}  // namespace

Status SqliteStore::AppendAudit(const std::vector<AuditRecord>& records,
                                const std::optional<AuditCheckpoint>& checkpoint) {
  std::lock_guard lock(write_mu_);
  WriteTransaction txn(*writer_);
  RETURN_IF_ERROR(txn.Begin());
  for (const AuditRecord& r : records) {
    ASSIGN_OR_RETURN(Statement s,
                     writer_->Prepare("INSERT INTO audit_log(seq, time_ms, actor, action, "
                                      "resource, decision, run_id, detail, prev_hash, hash) "
                                      "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    RETURN_IF_ERROR(s.Bind(1, r.seq)
                        .Bind(2, r.time_ms)
                        .Bind(3, r.actor)
                        .Bind(4, r.action)
                        .Bind(5, r.resource)
                        .Bind(6, r.decision)
                        .Bind(7, r.run_id)
                        .Bind(8, r.detail)
                        .Bind(9, r.prev_hash)
                        .Bind(10, r.hash)
                        .Exec());
  }
  if (checkpoint) {
    ASSIGN_OR_RETURN(Statement s, writer_->Prepare("INSERT INTO audit_checkpoints(seq, hash, "
                                                   "signature, time_ms) VALUES(?, ?, ?, ?)"));
    RETURN_IF_ERROR(s.Bind(1, checkpoint->seq)
                        .Bind(2, checkpoint->hash)
                        .Bind(3, checkpoint->signature)
                        .Bind(4, checkpoint->time_ms)
                        .Exec());
  }
  return txn.Commit();
}

StatusOr<std::vector<AuditRecord>> SqliteStore::ListAudit(int64_t after_seq, int32_t limit) {
  ASSIGN_OR_RETURN(auto reader, AcquireReader());
  ASSIGN_OR_RETURN(Statement s, reader->db().Prepare(
                                    StrCat(kAuditColumns, "WHERE seq > ? ORDER BY seq LIMIT ?")));
  s.Bind(1, after_seq).Bind(2, int64_t{limit});
  return ReadRows<AuditRecord>(s, ReadAudit);
}

StatusOr<std::optional<AuditRecord>> SqliteStore::LastAudit() {
  ASSIGN_OR_RETURN(auto reader, AcquireReader());
  ASSIGN_OR_RETURN(Statement s,
                   reader->db().Prepare(StrCat(kAuditColumns, "ORDER BY seq DESC LIMIT 1")));
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<AuditRecord>();
  return std::optional<AuditRecord>(ReadAudit(s));
}

StatusOr<std::vector<AuditRecord>> SqliteStore::SearchAudit(const std::string& actor,
                                                            int64_t run_id, int64_t since_ms,
                                                            int32_t limit) {
  ASSIGN_OR_RETURN(auto reader, AcquireReader());
  ASSIGN_OR_RETURN(Statement s,
                   reader->db().Prepare(StrCat(kAuditColumns,
                                               "WHERE (? = '' OR actor = ?) AND (? = 0 OR run_id "
                                               "= ?) AND time_ms >= ? ORDER BY seq DESC LIMIT ?")));
  s.Bind(1, actor)
      .Bind(2, actor)
      .Bind(3, run_id)
      .Bind(4, run_id)
      .Bind(5, since_ms)
      .Bind(6, int64_t{limit});
  return ReadRows<AuditRecord>(s, ReadAudit);
}

StatusOr<std::vector<AuditCheckpoint>> SqliteStore::ListAuditCheckpoints() {
  ASSIGN_OR_RETURN(auto reader, AcquireReader());
  ASSIGN_OR_RETURN(Statement s, reader->db().Prepare("SELECT seq, hash, signature, time_ms FROM "
                                                     "audit_checkpoints ORDER BY seq"));
  std::vector<AuditCheckpoint> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(AuditCheckpoint{
        .seq = s.Int(0), .hash = s.Text(1), .signature = s.Text(2), .time_ms = s.Int(3)});
  }
  return out;
}

namespace {

constexpr char kSecretColumns[] =
    "SELECT id, name, repo, agent, sealed, created_by, created_ms, updated_ms FROM secrets ";

Secret ReadSecret(const Statement& s) {
  return Secret{.id = s.Int(0),
                .name = s.Text(1),
                .repo = s.Text(2),
                .agent = s.Text(3),
                .sealed = s.Text(4),
                .created_by = s.Text(5),
                .created_ms = s.Int(6),
                .updated_ms = s.Int(7)};
}

}  // namespace

StatusOr<Secret> SqliteStore::PutSecret(const Secret& secret) {
  std::lock_guard lock(write_mu_);
  const int64_t now = clock_.NowMs();
  ASSIGN_OR_RETURN(
      Statement s,
      writer_->Prepare("INSERT INTO secrets(name, repo, agent, sealed, created_by, created_ms, "
                       "updated_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?6) "
                       "ON CONFLICT(name, repo, agent) DO UPDATE SET sealed = excluded.sealed, "
                       "created_by = excluded.created_by, updated_ms = excluded.updated_ms "
                       "RETURNING id, name, repo, agent, sealed, created_by, created_ms, "
                       "updated_ms"));
  ASSIGN_OR_RETURN(bool row, s.Bind(1, secret.name)
                                 .Bind(2, secret.repo)
                                 .Bind(3, secret.agent)
                                 .Bind(4, secret.sealed)
                                 .Bind(5, secret.created_by)
                                 .Bind(6, now)
                                 .Step());
  if (!row) return InternalError("the secret was not stored");
  return ReadSecret(s);
}

StatusOr<std::vector<Secret>> SqliteStore::ListSecrets() {
  ASSIGN_OR_RETURN(auto reader, AcquireReader());
  ASSIGN_OR_RETURN(Statement s,
                   reader->db().Prepare(StrCat(kSecretColumns, "ORDER BY name, repo, agent")));
  return ReadRows<Secret>(s, ReadSecret);
}

Status SqliteStore::DeleteSecret(const std::string& name, const std::string& repo,
                                 const std::string& agent) {
  std::lock_guard lock(write_mu_);
  ASSIGN_OR_RETURN(Statement s,
                   writer_->Prepare("DELETE FROM secrets WHERE name = ? AND repo = ? AND agent = ? "
                                    "RETURNING id"));
  ASSIGN_OR_RETURN(bool row, s.Bind(1, name).Bind(2, repo).Bind(3, agent).Step());
  if (!row) {
    return NotFoundError(StrCat("no secret '", name, "'", repo.empty() ? "" : " for repository ",
                                repo, agent.empty() ? "" : " for agent ", agent));
  }
  return OkStatus();
}

StatusOr<Pause> SqliteStore::AddPause(const Pause& pause) {
  {
    std::lock_guard lock(write_mu_);
    ASSIGN_OR_RETURN(Statement s, writer_->Prepare("INSERT INTO pauses(scope, name, created_by, "
                                                   "created_ms) VALUES(?, ?, ?, ?) "
                                                   "ON CONFLICT(scope, name) DO NOTHING"));
    RETURN_IF_ERROR(s.Bind(1, pause.scope)
                        .Bind(2, pause.name)
                        .Bind(3, pause.created_by)
                        .Bind(4, clock_.NowMs())
                        .Exec());
  }
  ASSIGN_OR_RETURN(std::vector<Pause> all, ListPauses());
  for (auto& p : all) {
    if (p.scope == pause.scope && p.name == pause.name) return p;
  }
  return InternalError("the pause was not stored");
}

Status SqliteStore::RemovePause(const std::string& scope, const std::string& name) {
  std::lock_guard lock(write_mu_);
  ASSIGN_OR_RETURN(Statement s, writer_->Prepare("DELETE FROM pauses WHERE scope = ? AND name = ? "
                                                 "RETURNING scope"));
  ASSIGN_OR_RETURN(bool row, s.Bind(1, scope).Bind(2, name).Step());
  if (!row) return NotFoundError(StrCat("nothing is paused for ", scope, " ", name));
  return OkStatus();
}

StatusOr<std::vector<Pause>> SqliteStore::ListPauses() {
  ASSIGN_OR_RETURN(auto reader, AcquireReader());
  ASSIGN_OR_RETURN(Statement s,
                   reader->db().Prepare("SELECT scope, name, created_by, created_ms FROM pauses "
                                        "ORDER BY created_ms, scope, name"));
  return ReadRows<Pause>(s, [](const Statement& r) {
    return Pause{
        .scope = r.Text(0), .name = r.Text(1), .created_by = r.Text(2), .created_ms = r.Int(3)};
  });
}

StatusOr<Usage> SqliteStore::GetUsage(const UsageFilter& f) {
  ASSIGN_OR_RETURN(auto reader, AcquireReader());
  // ?1 repository, ?2 agent: the scope, as every query below narrows to it.
  constexpr char kScope[] =
      "(?1 = '' OR r.repo_id IN (SELECT id FROM repositories WHERE name = ?1)) AND "
      "(?2 = '' OR (?2 = 'adhoc' AND r.requested_by NOT LIKE 'trigger:%' AND "
      "r.requested_by NOT LIKE 'schedule:%') OR r.requested_by IN ('trigger:' || ?2, "
      "'schedule:' || ?2))";
  Usage usage;
  {
    ASSIGN_OR_RETURN(Statement s, reader->db().Prepare(StrCat(
                                      "SELECT COUNT(*), COALESCE(SUM(r.kind = 'agent'), 0) FROM "
                                      "runs r WHERE r.state IN ('queued', 'preparing', 'running') "
                                      "AND ",
                                      kScope)));
    ASSIGN_OR_RETURN(bool row, s.Bind(1, f.repo).Bind(2, f.agent).Step());
    if (row) usage.unfinished = s.Int(0), usage.unfinished_agents = s.Int(1);
  }
  {
    ASSIGN_OR_RETURN(Statement s,
                     reader->db().Prepare(StrCat(
                         "SELECT COUNT(*) FROM runs r WHERE r.created_ms >= ?3 AND ", kScope)));
    ASSIGN_OR_RETURN(bool row, s.Bind(1, f.repo).Bind(2, f.agent).Bind(3, f.hour_since_ms).Step());
    if (row) usage.started = s.Int(0);
  }
  {
    ASSIGN_OR_RETURN(
        Statement s,
        reader->db().Prepare(StrCat(
            "SELECT COALESCE(SUM(json_extract(e.data, '$.cost_usd')), 0) FROM runs r JOIN "
            "run_events e ON e.run_id = r.id AND e.kind = 'agent_end' WHERE r.finished_ms >= ?3 "
            "AND r.finished_ms > 0 AND r.kind = 'agent' AND ",
            kScope)));
    ASSIGN_OR_RETURN(bool row, s.Bind(1, f.repo).Bind(2, f.agent).Bind(3, f.day_since_ms).Step());
    if (row) usage.spent_usd = s.Double(0);
  }
  return usage;
}

}  // namespace nightshift::store
