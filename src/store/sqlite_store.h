#pragma once

#include <filesystem>
#include <memory>

#include "core/clock.h"
#include "store/store.h"

namespace nightshift::store {

struct SqliteOptions {
  // NORMAL survives any process crash (SIGKILL included) without losing a commit; FULL also
  // survives power loss at the cost of an fsync per commit.
  bool synchronous_full = false;
  int busy_timeout_ms = 5000;
};

// Opens (creating if needed) the SQLite database at `path`, in WAL mode, and applies pending
// schema migrations. One writer connection (writes are serialized in-process and use
// BEGIN IMMEDIATE across processes) and a pool of reader connections that read concurrently.
// `clock` must outlive the store.
StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::filesystem::path& path,
                                                 const Clock& clock,
                                                 const SqliteOptions& options = {});

// The schema version this build migrates to.
int SqliteSchemaVersion();

}  // namespace nightshift::store
