#include "policy/audit.h"

#include <sodium.h>

#include "core/digest.h"
#include "core/fs.h"

namespace nightshift::policy {
namespace {

std::optional<std::string> Unhex(const std::string& hex, size_t size) {
  std::string out(size, '\0');
  size_t len = 0;
  if (hex.size() != 2 * size ||
      sodium_hex2bin(reinterpret_cast<unsigned char*>(out.data()), size, hex.data(), hex.size(),
                     nullptr, &len, nullptr) != 0 ||
      len != size) {
    return std::nullopt;
  }
  return out;
}

}  // namespace

std::string AuditHash(const store::AuditRecord& r) {
  // Canonical: a JSON object with sorted keys and no spaces; the detail as its text.
  const Json canonical{{"seq", r.seq},       {"time_ms", r.time_ms},   {"actor", r.actor},
                       {"action", r.action}, {"resource", r.resource}, {"decision", r.decision},
                       {"run_id", r.run_id}, {"detail", r.detail}};
  const std::string text =
      StrCat(r.prev_hash, "\n", canonical.dump(-1, ' ', true, Json::error_handler_t::replace));
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(text.data()), text.size());
  return HexOf(digest, sizeof digest);
}

std::string CheckpointMessage(int64_t seq, const std::string& hash) {
  return StrCat("nightshift audit checkpoint\n", seq, "\n", hash);
}

StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(store::Store& store,
                                                   const std::filesystem::path& key_file,
                                                   const Clock& clock, int64_t checkpoint_every) {
  if (sodium_init() < 0) return InternalError("libsodium cannot start");
  std::unique_ptr<AuditLog> log(new AuditLog(store, clock, checkpoint_every));
  log->secret_key_.resize(crypto_sign_SECRETKEYBYTES);
  log->public_key_.resize(crypto_sign_PUBLICKEYBYTES);
  auto* sk = reinterpret_cast<unsigned char*>(log->secret_key_.data());
  auto* pk = reinterpret_cast<unsigned char*>(log->public_key_.data());
  auto existing = ReadFile(key_file);
  if (existing.ok()) {
    std::string text = *existing;
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    auto key = Unhex(text, crypto_sign_SECRETKEYBYTES);
    if (!key) return FailedPreconditionError(StrCat(key_file.string(), " holds no Ed25519 key"));
    log->secret_key_ = *key;
    crypto_sign_ed25519_sk_to_pk(pk, reinterpret_cast<unsigned char*>(log->secret_key_.data()));
  } else {
    crypto_sign_keypair(pk, sk);
    Status written =
        CreateFileExclusive(key_file, HexOf(sk, crypto_sign_SECRETKEYBYTES) + "\n", 0600);
    if (!written.ok()) return written.WithContext("audit key");
  }
  ASSIGN_OR_RETURN(std::optional<store::AuditRecord> last, store.LastAudit());
  if (last) {
    log->head_seq_ = last->seq;
    log->head_hash_ = last->hash;
  }
  ASSIGN_OR_RETURN(std::vector<store::AuditCheckpoint> checkpoints, store.ListAuditCheckpoints());
  if (!checkpoints.empty()) log->checkpointed_seq_ = checkpoints.back().seq;
  log->writer_ = std::thread([raw = log.get()] { raw->WriterLoop(); });
  return log;
}

AuditLog::~AuditLog() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_.notify_all();
  if (writer_.joinable()) writer_.join();
}

std::string AuditLog::PublicKeyHex() const { return HexOf(public_key_.data(), public_key_.size()); }

StatusOr<int64_t> AuditLog::Append(AuditEntry entry) {
  store::AuditRecord record{
      .actor = std::move(entry.actor),
      .action = std::move(entry.action),
      .resource = std::move(entry.resource),
      .decision = std::move(entry.decision),
      .run_id = entry.run_id,
      .detail = entry.detail.dump(-1, ' ', true, Json::error_handler_t::replace)};
  std::unique_lock lock(mu_);
  if (stopping_) return UnavailableError("the audit log is closed");
  const int64_t ticket = next_ticket_++;
  queue_.push_back({std::move(record), ticket});
  work_.notify_one();
  done_.wait(lock, [&] { return stored_ticket_ >= ticket; });
  auto it = results_.find(ticket);
  StatusOr<int64_t> result = std::move(it->second);
  results_.erase(it);
  return result;
}

void AuditLog::WriterLoop() {
  for (;;) {
    std::vector<Waiting> batch;
    {
      std::unique_lock lock(mu_);
      work_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      while (!queue_.empty() && batch.size() < 4096) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    std::lock_guard write(write_mu_);
    const int64_t now = clock_.NowMs();
    std::vector<store::AuditRecord> records;
    int64_t seq = head_seq_;
    std::string hash = head_hash_;
    for (Waiting& w : batch) {
      store::AuditRecord& r = w.record;
      r.seq = ++seq;
      r.time_ms = now;
      r.prev_hash = hash;
      r.hash = AuditHash(r);
      hash = r.hash;
      records.push_back(r);
    }
    std::optional<store::AuditCheckpoint> checkpoint;
    if (seq / checkpoint_every_ > checkpointed_seq_ / checkpoint_every_) {
      const std::string message = CheckpointMessage(seq, hash);
      unsigned char signature[crypto_sign_BYTES];
      crypto_sign_detached(signature, nullptr,
                           reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                           reinterpret_cast<const unsigned char*>(secret_key_.data()));
      checkpoint = store::AuditCheckpoint{.seq = seq,
                                          .hash = hash,
                                          .signature = HexOf(signature, sizeof signature),
                                          .time_ms = now};
    }
    Status stored = store_.AppendAudit(records, checkpoint);
    if (stored.ok()) {
      head_seq_ = seq;
      head_hash_ = hash;
      if (checkpoint) checkpointed_seq_ = seq;
    }
    {
      std::lock_guard lock(mu_);
      for (const Waiting& w : batch) {
        results_.emplace(w.ticket,
                         stored.ok() ? StatusOr<int64_t>(w.record.seq) : StatusOr<int64_t>(stored));
        stored_ticket_ = std::max(stored_ticket_, w.ticket);
      }
    }
    done_.notify_all();
  }
}

Status AuditLog::Checkpoint() {
  std::lock_guard write(write_mu_);
  if (head_seq_ == 0 || head_seq_ == checkpointed_seq_) return OkStatus();
  const std::string message = CheckpointMessage(head_seq_, head_hash_);
  unsigned char signature[crypto_sign_BYTES];
  crypto_sign_detached(signature, nullptr, reinterpret_cast<const unsigned char*>(message.data()),
                       message.size(), reinterpret_cast<const unsigned char*>(secret_key_.data()));
  RETURN_IF_ERROR(
      store_.AppendAudit({}, store::AuditCheckpoint{.seq = head_seq_,
                                                    .hash = head_hash_,
                                                    .signature = HexOf(signature, sizeof signature),
                                                    .time_ms = clock_.NowMs()}));
  checkpointed_seq_ = head_seq_;
  return OkStatus();
}

AuditVerdict AuditLog::Verify(const std::string& public_key_hex) const {
  return Verify(store_, public_key_hex.empty() ? PublicKeyHex() : public_key_hex);
}

AuditVerdict AuditLog::Verify(store::Store& store, const std::string& public_key_hex) {
  AuditVerdict verdict;
  auto bad = [&](int64_t seq, std::string reason) {
    if (!verdict.ok) return;
    verdict.ok = false;
    verdict.first_bad_seq = seq;
    verdict.reason = std::move(reason);
  };
  auto key = Unhex(public_key_hex, crypto_sign_PUBLICKEYBYTES);
  if (!key) {
    bad(0, "the public key is not an Ed25519 key in hex");
    return verdict;
  }
  auto checkpoints = store.ListAuditCheckpoints();
  if (!checkpoints.ok()) {
    bad(0, StrCat("cannot read the checkpoints: ", checkpoints.status().message()));
    return verdict;
  }
  verdict.checkpoints = static_cast<int64_t>(checkpoints->size());
  size_t next_checkpoint = 0;
  // Checkpoints must be signed, and name a record whose hash they hold.
  auto check_checkpoint = [&](const store::AuditCheckpoint& c, const std::string* record_hash) {
    const std::string message = CheckpointMessage(c.seq, c.hash);
    auto signature = Unhex(c.signature, crypto_sign_BYTES);
    if (!signature || crypto_sign_verify_detached(
                          reinterpret_cast<const unsigned char*>(signature->data()),
                          reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                          reinterpret_cast<const unsigned char*>(key->data())) != 0) {
      bad(c.seq, StrCat("checkpoint at record ", c.seq, ": bad signature"));
    } else if (record_hash == nullptr) {
      bad(c.seq,
          StrCat("checkpoint at record ", c.seq, ": no such record (the log was cut short)"));
    } else if (*record_hash != c.hash) {
      bad(c.seq, StrCat("checkpoint at record ", c.seq, ": the record's hash differs"));
    }
  };
  int64_t expected = 1;
  std::string prev_hash;
  for (;;) {
    auto page = store.ListAudit(expected - 1, 10'000);
    if (!page.ok()) {
      bad(expected, StrCat("cannot read the log: ", page.status().message()));
      return verdict;
    }
    if (page->empty()) break;
    for (const store::AuditRecord& r : *page) {
      if (r.seq != expected) {
        bad(expected, StrCat("record ", expected, " is missing (the log jumps to ", r.seq, ")"));
        return verdict;
      }
      if (r.prev_hash != prev_hash) {
        bad(r.seq, StrCat("record ", r.seq, ": does not follow record ", r.seq - 1,
                          " (its previous hash differs)"));
        return verdict;
      }
      if (AuditHash(r) != r.hash) {
        bad(r.seq, StrCat("record ", r.seq, ": its content does not match its hash"));
        return verdict;
      }
      while (next_checkpoint < checkpoints->size() &&
             (*checkpoints)[next_checkpoint].seq == r.seq) {
        check_checkpoint((*checkpoints)[next_checkpoint++], &r.hash);
        if (!verdict.ok) return verdict;
      }
      prev_hash = r.hash;
      ++expected;
      ++verdict.records;
    }
  }
  for (; next_checkpoint < checkpoints->size(); ++next_checkpoint) {
    check_checkpoint((*checkpoints)[next_checkpoint], nullptr);
  }
  return verdict;
}

}  // namespace nightshift::policy
