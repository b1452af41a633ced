#pragma once

// The audit log (docs/governance.md): append-only and hash-chained. Each record carries the
// hash of the one before it, over a canonical encoding. Every `checkpoint_every` records, the
// head's seq and hash are signed with the server's Ed25519 key (DATA_DIR/audit-key, whose public
// half can be exported). So a record changed, removed or reordered breaks the chain, and a tail
// cut off before the last checkpoint breaks that checkpoint. Verify names the first bad record or
// checkpoint.
//
// Appends are group-committed: callers from any thread wait until their record is stored; one
// thread chains and stores what is waiting in one transaction.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/json.h"
#include "core/status.h"
#include "store/store.h"

namespace nightshift::policy {

// The fields of a record to append; seq, time and hashes are the log's.
struct AuditEntry {
  std::string actor;
  std::string action;
  std::string resource;
  std::string decision = "allow";
  int64_t run_id = 0;
  Json detail = Json::object();
};

struct AuditVerdict {
  bool ok = true;
  int64_t records = 0;
  int64_t checkpoints = 0;
  int64_t first_bad_seq = 0;  // the first bad record, or the checkpoint's seq
  std::string reason;         // what is wrong with it
};

// The hash a record must carry: SHA-256 of its previous hash and its canonical encoding.
std::string AuditHash(const store::AuditRecord& record);
// What a checkpoint's signature covers.
std::string CheckpointMessage(int64_t seq, const std::string& hash);

class AuditLog {
 public:
  // Loads or creates the signing key (`key_file`, 0600) and reads the log's head.
  static StatusOr<std::unique_ptr<AuditLog>> Open(store::Store& store,
                                                  const std::filesystem::path& key_file,
                                                  const Clock& clock,
                                                  int64_t checkpoint_every = 1000);
  ~AuditLog();

  // Appends a record and waits until it is stored; its seq.
  StatusOr<int64_t> Append(AuditEntry entry);
  // Signs the head now (a checkpoint), if records came since the last one.
  Status Checkpoint();

  // Reads the whole log and its checkpoints back and checks every hash and signature against
  // `public_key_hex` (empty: this log's own key).
  AuditVerdict Verify(const std::string& public_key_hex = "") const;
  static AuditVerdict Verify(store::Store& store, const std::string& public_key_hex);

  std::string PublicKeyHex() const;

 private:
  AuditLog(store::Store& store, const Clock& clock, int64_t checkpoint_every)
      : store_(store), clock_(clock), checkpoint_every_(checkpoint_every) {}
  void WriterLoop();

  struct Waiting {
    store::AuditRecord record;
    int64_t ticket = 0;
  };

  store::Store& store_;
  const Clock& clock_;
  const int64_t checkpoint_every_;
  std::string secret_key_;  // crypto_sign_SECRETKEYBYTES
  std::string public_key_;  // crypto_sign_PUBLICKEYBYTES

  std::mutex mu_;
  std::condition_variable work_;
  std::condition_variable done_;
  std::deque<Waiting> queue_;
  int64_t next_ticket_ = 1;
  int64_t stored_ticket_ = 0;  // every ticket up to this one is decided
  std::map<int64_t, StatusOr<int64_t>> results_;
  bool stopping_ = false;
  std::thread writer_;
  // The writer's own (and Checkpoint's, under write_mu_).
  std::mutex write_mu_;
  int64_t head_seq_ = 0;
  std::string head_hash_;
  int64_t checkpointed_seq_ = 0;
};

}  // namespace nightshift::policy
