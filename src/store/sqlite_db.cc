#include "store/sqlite_db.h"

namespace nightshift::store {

Statement::~Statement() {
  if (stmt_ == nullptr) return;
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

Statement& Statement::Bind(int index, int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
  return *this;
}

Statement& Statement::Bind(int index, std::string_view value) {
  sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
  return *this;
}

Statement& Statement::Bind(int index, std::optional<int64_t> value) {
  return value ? Bind(index, *value) : BindNull(index);
}

Statement& Statement::BindNull(int index) {
  sqlite3_bind_null(stmt_, index);
  return *this;
}

StatusOr<bool> Statement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return db_->Error("step");
}

Status Statement::Exec() {
  for (;;) {
    ASSIGN_OR_RETURN(bool row, Step());
    if (!row) {
      sqlite3_reset(stmt_);  // ready to be bound and run again
      return OkStatus();
    }
  }
}

std::string Statement::Text(int column) const {
  const auto* p = sqlite3_column_text(stmt_, column);
  if (p == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(p),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
}

StatusOr<std::unique_ptr<SqliteDb>> SqliteDb::Open(const std::string& path, bool read_only,
                                                   int busy_timeout_ms) {
  sqlite3* db = nullptr;
  int flags = SQLITE_OPEN_NOMUTEX |
              (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return UnavailableError(StrCat("open database ", path, ": ", msg));
  }
  std::unique_ptr<SqliteDb> out(new SqliteDb(db));
  sqlite3_busy_timeout(db, busy_timeout_ms);
  sqlite3_extended_result_codes(db, 1);
  return out;
}

SqliteDb::~SqliteDb() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  sqlite3_close(db_);
}

Status SqliteDb::ExecScript(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return InternalError(StrCat("sqlite: ", msg));
  }
  return OkStatus();
}

StatusOr<Statement> SqliteDb::Prepare(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                           SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK) {
      return Error(StrCat("prepare '", sql.substr(0, 60), "'"));
    }
    it = cache_.emplace(sql, stmt).first;
  }
  return Statement(*this, it->second);
}

Status SqliteDb::Error(std::string_view operation) const {
  int code = sqlite3_extended_errcode(db_);
  std::string msg = StrCat("sqlite ", operation, ": ", sqlite3_errmsg(db_));
  switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return UnavailableError(msg);
    case SQLITE_CONSTRAINT:
      return AlreadyExistsError(msg);
    case SQLITE_FULL:
    case SQLITE_IOERR:
      return ResourceExhaustedError(msg);
    default:
      return InternalError(msg);
  }
}

WriteTransaction::~WriteTransaction() {
  if (open_) (void)db_.ExecScript("ROLLBACK");
}

Status WriteTransaction::Begin() {
  ASSIGN_OR_RETURN(Statement begin, db_.Prepare("BEGIN IMMEDIATE"));
  RETURN_IF_ERROR(begin.Exec());
  open_ = true;
  return OkStatus();
}

Status WriteTransaction::Commit() {
  ASSIGN_OR_RETURN(Statement commit, db_.Prepare("COMMIT"));
  RETURN_IF_ERROR(commit.Exec());
  open_ = false;
  return OkStatus();
}

}  // namespace nightshift::store
