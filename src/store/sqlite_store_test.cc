#include "store/sqlite_store.h"

#include <sqlite3.h>

#include <atomic>
#include <set>
#include <thread>

#include "core/fs.h"
#include "core/json.h"
#include "gtest/gtest.h"

namespace nightshift::store {
namespace {

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = MakeTempDir("ns-store-test");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
    store_ = Open();
    ASSERT_TRUE(store_->AddRepository("app", "/srv/app.git").ok());
  }
  void TearDown() override {
    store_.reset();
    RemoveTreeQuietly(dir_);
  }
  std::unique_ptr<Store> Open() {
    auto s = OpenSqliteStore(dir_ / "nightshift.db", clock_);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }
  store::Run Create(std::string recipe = "true", int32_t max_attempts = 3) {
    auto run = store_->CreateRun(
        RunSpec{.repo = "app", .ref = "main", .recipe = recipe, .max_attempts = max_attempts});
    EXPECT_TRUE(run.ok()) << run.status();
    return *run;
  }
  std::vector<std::string> StateEvents(int64_t run_id) {
    std::vector<std::string> out;
    for (const RunEvent& e : *store_->ListEvents(run_id, 0, 1000)) {
      if (e.kind == "state") out.push_back(Json::parse(e.data)["to"].get<std::string>());
    }
    return out;
  }

  std::filesystem::path dir_;
  FakeClock clock_;
  std::unique_ptr<Store> store_;
};

TEST_F(SqliteStoreTest, RepositoriesAddListRemove) {
  EXPECT_TRUE(IsAlreadyExists(store_->AddRepository("app", "/x").status()));
  ASSERT_TRUE(store_->AddRepository("lib", "https://example.com/lib.git").ok());
  auto list = store_->ListRepositories();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "app");
  EXPECT_EQ((*list)[1].url, "https://example.com/lib.git");
  ASSERT_TRUE(store_->RemoveRepository("lib").ok());
  EXPECT_TRUE(IsNotFound(store_->GetRepository("lib").status()));
  EXPECT_TRUE(IsNotFound(store_->RemoveRepository("lib")));
  // The name is free again once removed.
  EXPECT_TRUE(store_->AddRepository("lib", "/other").ok());
}

TEST_F(SqliteStoreTest, RemoveRefusedWhileRunsAreUnfinishedAndHistoryStays) {
  store::Run run = Create();
  EXPECT_TRUE(IsFailedPrecondition(store_->RemoveRepository("app")));
  ASSERT_TRUE(store_->CancelRun(run.id, "test").ok());
  ASSERT_TRUE(store_->RemoveRepository("app").ok());
  auto again = store_->GetRun(run.id);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->repo, "app");
}

TEST_F(SqliteStoreTest, CreateRunUnknownRepositoryIsNotFoundAndStoresNothing) {
  auto run = store_->CreateRun(RunSpec{.repo = "nope", .recipe = "true"});
  EXPECT_TRUE(IsNotFound(run.status()));
  EXPECT_TRUE(store_->ListRuns({})->empty());
}

TEST_F(SqliteStoreTest, CreateRunsQueuesEachAndARefusedOneKeepsNoOtherFromIt) {
  ASSERT_TRUE(
      store_->CreateRun(RunSpec{.repo = "app", .recipe = "x", .idempotency_key = "k1"}).ok());
  auto runs = store_->CreateRuns({
      RunSpec{.repo = "app", .recipe = "first", .idempotency_key = "k0", .concurrency_key = "c"},
      RunSpec{.repo = "app", .recipe = "dup", .idempotency_key = "k1"},
      RunSpec{.repo = "nope", .recipe = "unknown"},
      RunSpec{.repo = "app", .recipe = "last", .concurrency_key = "c"},
  });
  ASSERT_TRUE(runs.ok()) << runs.status();
  ASSERT_EQ(runs->size(), 4u);
  ASSERT_TRUE((*runs)[0].ok());
  EXPECT_EQ((*runs)[1].status().code(), StatusCode::kAlreadyExists);
  EXPECT_TRUE(IsNotFound((*runs)[2].status()));
  ASSERT_TRUE((*runs)[3].ok());
  EXPECT_EQ((*runs)[3]->recipe, "last");
  EXPECT_EQ(store_->ListRuns({})->size(), 3u);
  EXPECT_EQ(StateEvents((*runs)[0]->id), std::vector<std::string>{"queued"});
  // The key's run is the last one that took it.
  auto key = store_->GetTriggerKey("c");
  ASSERT_TRUE(key.ok() && *key);
  EXPECT_EQ((*key)->run_id, (*runs)[3]->id);
}

TEST_F(SqliteStoreTest, HappyPathTransitionsAppendStateEvents) {
  store::Run run = Create();
  EXPECT_EQ(run.state, RunState::kQueued);
  auto leased = store_->LeaseRun("r1", 10'000);
  ASSERT_TRUE(leased.ok() && leased->has_value());
  EXPECT_EQ((*leased)->id, run.id);
  EXPECT_EQ((*leased)->state, RunState::kPreparing);
  EXPECT_EQ((*leased)->attempt, 1);
  EXPECT_EQ((*leased)->lease_owner, "r1");
  ASSERT_TRUE(
      store_->TransitionRun(run.id, {"r1", 1}, {RunState::kPreparing, RunState::kRunning}).ok());
  auto done = store_->TransitionRun(
      run.id, {"r1", 1},
      {.from = RunState::kRunning, .to = RunState::kSucceeded, .exit_code = 0, .commit = "abc"});
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state, RunState::kSucceeded);
  EXPECT_EQ(done->exit_code, 0);
  EXPECT_EQ(done->commit, "abc");
  EXPECT_TRUE(done->lease_owner.empty());
  EXPECT_GT(done->finished_ms, 0);
  EXPECT_EQ(StateEvents(run.id),
            (std::vector<std::string>{"queued", "preparing", "running", "succeeded"}));
  auto attempts = store_->ListAttempts(run.id);
  ASSERT_EQ(attempts->size(), 1u);
  EXPECT_EQ((*attempts)[0].outcome, "succeeded");
}

TEST_F(SqliteStoreTest, TransitionGuardedOnStateAndOwner) {
  store::Run run = Create();
  ASSERT_TRUE(store_->LeaseRun("r1", 10'000).ok());
  // Wrong owner.
  auto st = store_->TransitionRun(run.id, {"r2", 1}, {RunState::kPreparing, RunState::kRunning});
  EXPECT_TRUE(IsFailedPrecondition(st.status())) << st.status();
  // Wrong previous state.
  st = store_->TransitionRun(run.id, {"r1", 1}, {RunState::kRunning, RunState::kSucceeded});
  EXPECT_TRUE(IsFailedPrecondition(st.status())) << st.status();
  EXPECT_EQ(store_->GetRun(run.id)->state, RunState::kPreparing);
  EXPECT_EQ(StateEvents(run.id), (std::vector<std::string>{"queued", "preparing"}));
}

// The same runner leasing the same run again (attempt 2) must not let its stale attempt-1
// execution heartbeat or finish the run.
TEST_F(SqliteStoreTest, LeaseOfAnEarlierAttemptIsStaleForTheSameOwner) {
  store::Run run = Create();
  ASSERT_TRUE(store_->LeaseRun("r1", 10'000).ok());
  ASSERT_TRUE(store_->ExpireLeases("r1").ok());
  auto again = store_->LeaseRun("r1", 10'000);
  ASSERT_TRUE(again.ok() && again->has_value());
  EXPECT_EQ((*again)->attempt, 2);
  EXPECT_TRUE(IsFailedPrecondition(store_->Heartbeat(run.id, {"r1", 1}, 10'000).status()));
  EXPECT_TRUE(IsFailedPrecondition(
      store_->TransitionRun(run.id, {"r1", 1}, {RunState::kPreparing, RunState::kFailed})
          .status()));
  EXPECT_TRUE(store_->Heartbeat(run.id, {"r1", 2}, 10'000).ok());
  EXPECT_TRUE(
      store_->TransitionRun(run.id, {"r1", 2}, {RunState::kPreparing, RunState::kRunning}).ok());
}

TEST_F(SqliteStoreTest, CancelQueuedAndRunningButNotFinished) {
  store::Run queued = Create();
  store::Run running = Create();
  auto cancelled = store_->CancelRun(queued.id, "by test");
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->state, RunState::kCancelled);

  auto leased = store_->LeaseRun("r1", 10'000);
  ASSERT_TRUE(leased.ok() && leased->has_value());
  ASSERT_EQ((*leased)->id, running.id);
  ASSERT_TRUE(store_->CancelRun(running.id, "stop").ok());
  // The runner finds out on its next heartbeat or transition.
  EXPECT_TRUE(IsFailedPrecondition(store_->Heartbeat(running.id, {"r1", 1}, 10'000).status()));
  EXPECT_TRUE(IsFailedPrecondition(
      store_->TransitionRun(running.id, {"r1", 1}, {RunState::kPreparing, RunState::kRunning})
          .status()));
  // Cancelling a finished run is refused and changes nothing.
  EXPECT_TRUE(IsFailedPrecondition(store_->CancelRun(running.id, "again").status()));
  auto after = store_->GetRun(running.id);
  EXPECT_EQ(after->reason, "stop");
  EXPECT_EQ(StateEvents(running.id),
            (std::vector<std::string>{"queued", "preparing", "cancelled"}));
  EXPECT_EQ((*store_->ListAttempts(running.id))[0].outcome, "cancelled");
}

TEST_F(SqliteStoreTest, ExpiredLeaseRequeuesThenFailsAfterMaxAttempts) {
  store::Run run = Create("true", /*max_attempts=*/2);
  ASSERT_TRUE(store_->LeaseRun("r1", 1000).ok());
  clock_.AdvanceMs(500);
  ASSERT_TRUE(store_->Heartbeat(run.id, {"r1", 1}, 1000).ok());
  clock_.AdvanceMs(900);
  EXPECT_TRUE(store_->ExpireLeases()->empty());  // the heartbeat extended it

  clock_.AdvanceMs(200);
  auto expired = store_->ExpireLeases();
  ASSERT_TRUE(expired.ok());
  ASSERT_EQ(expired->size(), 1u);
  EXPECT_EQ((*expired)[0].state, RunState::kQueued);
  EXPECT_TRUE(IsFailedPrecondition(store_->Heartbeat(run.id, {"r1", 1}, 1000).status()));

  auto second = store_->LeaseRun("r2", 1000);
  ASSERT_TRUE(second.ok() && second->has_value());
  EXPECT_EQ((*second)->attempt, 2);
  clock_.AdvanceMs(2000);
  expired = store_->ExpireLeases();
  ASSERT_EQ(expired->size(), 1u);
  EXPECT_EQ((*expired)[0].state, RunState::kFailed);
  EXPECT_NE((*expired)[0].reason.find("lost its lease"), std::string::npos);
  auto attempts = *store_->ListAttempts(run.id);
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[0].outcome, "requeued");
  EXPECT_EQ(attempts[0].runner, "r1");
  EXPECT_EQ(attempts[1].outcome, "failed");
  EXPECT_EQ(StateEvents(run.id),
            (std::vector<std::string>{"queued", "preparing", "queued", "preparing", "failed"}));
}

TEST_F(SqliteStoreTest, ExpireLeasesOfOwnerRecoversAtOnce) {
  store::Run mine = Create();
  store::Run theirs = Create();
  ASSERT_TRUE(store_->LeaseRun("me", 60'000).ok());
  ASSERT_TRUE(store_->LeaseRun("other", 60'000).ok());
  auto expired = store_->ExpireLeases("me");
  ASSERT_TRUE(expired.ok());
  ASSERT_EQ(expired->size(), 1u);
  EXPECT_EQ((*expired)[0].id, mine.id);
  EXPECT_EQ((*expired)[0].state, RunState::kQueued);
  EXPECT_EQ(store_->GetRun(theirs.id)->state, RunState::kPreparing);
}

TEST_F(SqliteStoreTest, EventsHaveGaplessSequenceAndResume) {
  store::Run run = Create();
  std::vector<NewEvent> batch;
  for (int i = 0; i < 10; ++i) batch.push_back({"log", Json{{"line", i}}.dump()});
  auto last = store_->AppendEvents(run.id, batch);
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(*last, 11);  // 1 is the "queued" state event
  auto tail = store_->ListEvents(run.id, 8, 100);
  ASSERT_EQ(tail->size(), 3u);
  EXPECT_EQ((*tail)[0].seq, 9);
  EXPECT_EQ((*tail)[2].seq, 11);
  EXPECT_TRUE(IsNotFound(store_->AppendEvents(9999, batch).status()));
}

TEST_F(SqliteStoreTest, ListRunsFiltersAndPaginates) {
  ASSERT_TRUE(store_->AddRepository("lib", "/srv/lib.git").ok());
  for (int i = 0; i < 5; ++i) Create();
  ASSERT_TRUE(store_->CreateRun(RunSpec{.repo = "lib", .recipe = "make"}).ok());
  auto page1 = *store_->ListRuns({.repo = "app", .limit = 3});
  ASSERT_EQ(page1.size(), 3u);
  EXPECT_GT(page1[0].id, page1[1].id);
  auto page2 = *store_->ListRuns({.repo = "app", .before_id = page1.back().id, .limit = 3});
  ASSERT_EQ(page2.size(), 2u);
  EXPECT_LT(page2[0].id, page1.back().id);
  EXPECT_EQ(store_->ListRuns({.repo = "lib"})->size(), 1u);
  ASSERT_TRUE(store_->CancelRun(page1[0].id, "x").ok());
  auto cancelled = *store_->ListRuns({.state = RunState::kCancelled});
  ASSERT_EQ(cancelled.size(), 1u);
  EXPECT_EQ(cancelled[0].id, page1[0].id);
}

// Two runners, each with its own connection to the same database, race for leases: every run
// is leased exactly once.
TEST_F(SqliteStoreTest, TwoRunnersRacingForLeasesEachRunLeasedOnce) {
  constexpr int kRuns = 200;
  for (int i = 0; i < kRuns; ++i) Create();
  std::unique_ptr<Store> other = Open();
  ASSERT_NE(other, nullptr);
  std::vector<int64_t> got_a, got_b;
  std::atomic<bool> go{false};
  auto lease_all = [&go](Store& store, const std::string& owner, std::vector<int64_t>& got) {
    while (!go) std::this_thread::yield();
    for (;;) {
      auto r = store.LeaseRun(owner, 60'000);
      ASSERT_TRUE(r.ok()) << r.status();
      if (!r->has_value()) return;
      got.push_back((*r)->id);
    }
  };
  std::thread a(lease_all, std::ref(*store_), "runner-a", std::ref(got_a));
  std::thread b(lease_all, std::ref(*other), "runner-b", std::ref(got_b));
  go = true;
  a.join();
  b.join();
  std::set<int64_t> all(got_a.begin(), got_a.end());
  for (int64_t id : got_b) EXPECT_TRUE(all.insert(id).second) << "run " << id << " leased twice";
  EXPECT_EQ(all.size(), static_cast<size_t>(kRuns));
  for (int64_t id : all) EXPECT_EQ(store_->ListAttempts(id)->size(), 1u);
}

// One queued run, many racers: exactly one wins.
TEST_F(SqliteStoreTest, ManyRacersOneRunExactlyOneWinner) {
  store::Run run = Create();
  std::unique_ptr<Store> other = Open();
  std::atomic<int> wins{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    Store& s = (i % 2) ? *other : *store_;
    threads.emplace_back([&s, &wins, i] {
      auto r = s.LeaseRun("runner-" + std::to_string(i), 60'000);
      ASSERT_TRUE(r.ok()) << r.status();
      if (r->has_value()) ++wins;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wins.load(), 1);
  EXPECT_EQ(store_->GetRun(run.id)->attempt, 1);
}

TEST_F(SqliteStoreTest, ReopenKeepsEverythingAndDoesNotRemigrate) {
  store::Run run = Create();
  ASSERT_TRUE(store_->AppendEvents(run.id, {{"log", R"({"line":"x"})"}}).ok());
  store_.reset();
  store_ = Open();
  auto again = store_->GetRun(run.id);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->last_event_seq, 2);
  EXPECT_EQ(store_->ListEvents(run.id, 0, 10)->size(), 2u);
}

TEST_F(SqliteStoreTest, NewerSchemaIsRefused) {
  store_.reset();
  {
    auto raw = OpenSqliteStore(dir_ / "nightshift.db", clock_);
    ASSERT_TRUE(raw.ok());
  }
  // Simulate a database written by a future build.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "nightshift.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(
      sqlite3_exec(db, "INSERT INTO schema_migrations VALUES(999, 0)", nullptr, nullptr, nullptr),
      SQLITE_OK);
  sqlite3_close(db);
  auto s = OpenSqliteStore(dir_ / "nightshift.db", clock_);
  EXPECT_TRUE(IsFailedPrecondition(s.status())) << s.status();
}

}  // namespace
}  // namespace nightshift::store
