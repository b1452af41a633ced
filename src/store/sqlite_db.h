#pragma once

// A thin RAII layer over the SQLite C API: a connection with a prepared-statement cache and a
// statement cursor that resets itself. Internal to the store part.

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace nightshift::store {

class SqliteDb;

// A cached prepared statement in use. Binding is 1-based as in SQLite. Resets and clears its
// bindings on destruction so the cache can hand it out again.
class Statement {
 public:
  Statement(SqliteDb& db, sqlite3_stmt* stmt) : db_(&db), stmt_(stmt) {}
  Statement(Statement&& other) noexcept : db_(other.db_), stmt_(other.stmt_) {
    other.stmt_ = nullptr;
  }
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, std::string_view value);
  Statement& Bind(int index, std::optional<int64_t> value);
  Statement& BindNull(int index);

  // Advances: true with a row, false when done, an error otherwise.
  StatusOr<bool> Step();
  // Runs to completion and resets, for statements without rows.
  Status Exec();

  int64_t Int(int column) const { return sqlite3_column_int64(stmt_, column); }
  double Double(int column) const { return sqlite3_column_double(stmt_, column); }
  bool IsNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
  std::string Text(int column) const;

 private:
  SqliteDb* db_;
  sqlite3_stmt* stmt_;
};

class SqliteDb {
 public:
  static StatusOr<std::unique_ptr<SqliteDb>> Open(const std::string& path, bool read_only,
                                                  int busy_timeout_ms);
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;
  ~SqliteDb();

  // Runs one or more statements without results.
  Status ExecScript(const std::string& sql);
  // Prepares (or takes from the cache) `sql`. The statement must not be in use already.
  StatusOr<Statement> Prepare(const std::string& sql);

  Status Error(std::string_view operation) const;
  sqlite3* handle() { return db_; }

 private:
  explicit SqliteDb(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::map<std::string, sqlite3_stmt*, std::less<>> cache_;
};

// BEGIN IMMEDIATE on construction; ROLLBACK on destruction unless Commit() succeeded.
class WriteTransaction {
 public:
  explicit WriteTransaction(SqliteDb& db) : db_(db) {}
  ~WriteTransaction();
  Status Begin();
  Status Commit();

 private:
  SqliteDb& db_;
  bool open_ = false;
};

}  // namespace nightshift::store
