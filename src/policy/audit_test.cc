// The audit log against a real store: the chain, checkpoints, and tampering with the stored
// rows directly in SQLite — a record modified, deleted, reordered, the log cut short, a
// checkpoint forged — each found by Verify at the first bad record. No root.

#include "policy/audit.h"

#include <thread>

#include "core/fs.h"
#include "gtest/gtest.h"
#include "store/sqlite_db.h"
#include "store/sqlite_store.h"
#include "tests/support/test_support.h"

namespace nightshift::policy {
namespace {

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override { Open("first"); }

  // A fresh store and log under `name`.
  void Open(const std::string& name) {
    log_.reset();
    store_.reset();
    root_ = dir_.path() / name;
    std::filesystem::create_directories(root_);
    auto s = store::OpenSqliteStore(root_ / "db", clock_);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    auto log = AuditLog::Open(*store_, root_ / "audit-key", clock_, /*checkpoint_every=*/10);
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = std::move(*log);
  }

  void Fill(int n) {
    for (int i = 0; i < n; ++i) {
      auto seq = log_->Append({.actor = "user:alice",
                               .action = "POST /api/v1/runs",
                               .resource = StrCat("/api/v1/runs/", i),
                               .detail = Json{{"status", 201}}});
      ASSERT_TRUE(seq.ok()) << seq.status();
      clock_.AdvanceMs(1);
    }
  }

  // Runs `sql` on the database file behind the store's back, as an attacker with the file would.
  void Tamper(const std::string& sql) {
    auto db = store::SqliteDb::Open((root_ / "db").string(), /*read_only=*/false, 5000);
    ASSERT_TRUE(db.ok()) << db.status();
    ASSERT_TRUE((*db)->ExecScript(sql).ok()) << sql;
  }

  testing::TempDir dir_;
  std::filesystem::path root_;
  FakeClock clock_{1'796'637'600'000};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<AuditLog> log_;
};

TEST_F(AuditTest, AnUntouchedLogVerifies) {
  Fill(25);
  AuditVerdict verdict = log_->Verify();
  EXPECT_TRUE(verdict.ok) << verdict.reason;
  EXPECT_EQ(verdict.records, 25);
  EXPECT_EQ(verdict.checkpoints, 2);  // at 10 and 20
  ASSERT_TRUE(log_->Checkpoint().ok());
  EXPECT_EQ(log_->Verify().checkpoints, 3);
  // Reopened, the chain goes on from its head, with the same key.
  const std::string key = log_->PublicKeyHex();
  log_.reset();
  auto reopened = AuditLog::Open(*store_, root_ / "audit-key", clock_, 10);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)->PublicKeyHex(), key);
  EXPECT_EQ(*(*reopened)->Append({.actor = "admin", .action = "login"}), 26);
  EXPECT_TRUE((*reopened)->Verify().ok);
}

TEST_F(AuditTest, ConcurrentAppendsAreChainedInOneOrder) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < 50; ++i) {
        EXPECT_TRUE(log_->Append({.actor = StrCat("t", t), .action = "x"}).ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  AuditVerdict verdict = log_->Verify();
  EXPECT_TRUE(verdict.ok) << verdict.reason;
  EXPECT_EQ(verdict.records, 400);
}

TEST_F(AuditTest, EveryKindOfTamperingIsFoundAtTheFirstBadRecord) {
  const struct {
    const char* what;
    const char* sql;
    int64_t first_bad;
    const char* reason;
  } cases[] = {
      {"a field changed", "UPDATE audit_log SET actor = 'user:mallory' WHERE seq = 7", 7,
       "its content does not match its hash"},
      {"a field changed and its hash recomputed",
       "UPDATE audit_log SET decision = 'allow', hash = 'ab' WHERE seq = 4", 4,
       "its content does not match its hash"},
      {"a record deleted", "DELETE FROM audit_log WHERE seq = 12", 12, "record 12 is missing"},
      {"two records swapped",
       "UPDATE audit_log SET seq = -5 WHERE seq = 5; UPDATE audit_log SET seq = 5 WHERE seq = 6; "
       "UPDATE audit_log SET seq = 6 WHERE seq = -5",
       5, "does not follow record 4"},
      {"the log cut short past a checkpoint", "DELETE FROM audit_log WHERE seq > 15", 20,
       "checkpoint at record 20: no such record"},
      {"a checkpoint forged",
       "UPDATE audit_checkpoints SET hash = (SELECT hash FROM audit_log WHERE seq = 9), seq = 9 "
       "WHERE seq = 10",
       9, "checkpoint at record 9: bad signature"},
      {"a checkpoint's signature garbled",
       "UPDATE audit_checkpoints SET signature = substr(signature, 2) || '0' WHERE seq = 20", 20,
       "bad signature"},
      {"the first record deleted", "DELETE FROM audit_log WHERE seq = 1", 1, "record 1 is missing"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    Open(c.what);
    Fill(25);
    ASSERT_TRUE(log_->Verify().ok);
    Tamper(c.sql);
    AuditVerdict verdict = log_->Verify();
    EXPECT_FALSE(verdict.ok);
    EXPECT_EQ(verdict.first_bad_seq, c.first_bad) << verdict.reason;
    EXPECT_NE(verdict.reason.find(c.reason), std::string::npos) << verdict.reason;
  }
}

TEST_F(AuditTest, AnotherKeyDoesNotVerifyTheCheckpoints) {
  Fill(10);
  std::string other(64, '0');
  AuditVerdict verdict = log_->Verify(other);
  EXPECT_FALSE(verdict.ok);
  EXPECT_EQ(verdict.first_bad_seq, 10);
  EXPECT_FALSE(log_->Verify("not hex").ok);
  // The key file is the server's secret: 0600.
  EXPECT_EQ(
      std::filesystem::status(root_ / "audit-key").permissions() & std::filesystem::perms::all,
      std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

}  // namespace
}  // namespace nightshift::policy
