#include "runner/runner.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "core/json.h"
#include "gtest/gtest.h"
#include "runner/recipe_executor.h"
#include "store/sqlite_store.h"
#include "tests/support/test_support.h"

namespace nightshift::runner {
namespace {

using store::RunState;

class RunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    commit_ = testing::MakeGitRepo(dir_.path() / "origin",
                                   {{"README.md", "hello\n"}, {"src/app.txt", "v1\n"}});
    auto s = store::OpenSqliteStore(dir_.path() / "db.sqlite", SystemClock::Get());
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    ASSERT_TRUE(store_->AddRepository("app", (dir_.path() / "origin").string()).ok());
    source_ = std::make_unique<StoreLeaseSource>(*store_, nullptr);
  }
  void TearDown() override {
    if (runner_) runner_->Stop();
    runner_.reset();
    store_->SetObserver(nullptr);
  }

  void StartRunner(int64_t lease_ttl_ms = 5000, Executor* executor = nullptr) {
    runner_ = std::make_unique<Runner>(*source_, executor ? *executor : executor_,
                                       RunnerOptions{.name = "test-runner",
                                                     .slots = 2,
                                                     .lease_ttl_ms = lease_ttl_ms,
                                                     .heartbeat_ms = lease_ttl_ms / 5,
                                                     .idle_poll_ms = 100,
                                                     .work_root = dir_.path() / "work"});
    store_->SetObserver(runner_.get());
    ASSERT_TRUE(runner_->Start().ok());
  }

  store::Run Create(const std::string& recipe, const std::string& ref = "",
                    int32_t timeout_seconds = 60) {
    auto run = store_->CreateRun(
        {.repo = "app", .ref = ref, .recipe = recipe, .timeout_seconds = timeout_seconds});
    EXPECT_TRUE(run.ok()) << run.status();
    return *run;
  }

  store::Run WaitFor(int64_t id, std::function<bool(const store::Run&)> pred,
                     int64_t timeout_ms = 20'000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      auto run = store_->GetRun(id);
      EXPECT_TRUE(run.ok());
      if (pred(*run) || std::chrono::steady_clock::now() > deadline) return *run;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  store::Run WaitFinished(int64_t id) {
    return WaitFor(id, [](const store::Run& r) { return store::IsTerminal(r.state); });
  }

  std::vector<std::string> Lines(int64_t id, const std::string& stream = "stdout") {
    std::vector<std::string> out;
    for (const auto& e : *store_->ListEvents(id, 0, 10'000)) {
      if (e.kind != "log") continue;
      Json j = Json::parse(e.data);
      if (j["stream"] == stream) out.push_back(j["line"]);
    }
    return out;
  }

  testing::TempDir dir_;
  std::string commit_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<StoreLeaseSource> source_;
  // The runner's own logic is tested with plain processes, whose pids and files the test can
  // see; RecipeRunsInASandbox covers the sandboxed path.
  workspace::Workspaces plain_spaces_{
      workspace::WorkspaceOptions{.data_dir = dir_.path() / "plain",
                                  .sandbox = {.host_uid = ::geteuid(), .host_gid = ::getegid()}}};
  workspace::Workspaces sandboxed_spaces_{
      workspace::WorkspaceOptions{.data_dir = dir_.path() / "sandboxed"}};
  RecipeExecutor executor_{
      RecipeOptions{.sandbox = false, .sandbox_uid = ::geteuid(), .workspaces = &plain_spaces_}};
  RecipeExecutor sandboxed_{RecipeOptions{.sandbox = true, .workspaces = &sandboxed_spaces_}};
  std::unique_ptr<Runner> runner_;
};

TEST_F(RunnerTest, RecipeRunsInACheckoutAtTheRefAndStreamsOutput) {
  StartRunner();
  store::Run run = Create("cat src/app.txt; git rev-parse HEAD; echo oops >&2");
  store::Run done = WaitFinished(run.id);
  ASSERT_EQ(done.state, RunState::kSucceeded) << done.reason;
  EXPECT_EQ(done.exit_code, 0);
  EXPECT_EQ(done.commit, commit_);
  EXPECT_EQ(Lines(run.id), (std::vector<std::string>{"v1", commit_}));
  EXPECT_EQ(Lines(run.id, "stderr"), (std::vector<std::string>{"oops"}));
  // Phases are recorded with durations.
  int phases = 0;
  for (const auto& e : *store_->ListEvents(run.id, 0, 1000)) {
    if (e.kind == "phase" && Json::parse(e.data).contains("duration_ms")) ++phases;
  }
  EXPECT_EQ(phases, 4);  // fetch, checkout, environment, agent
}

// Without the sandbox there are no prebuild layers: setup runs in the checkout before the recipe.
TEST_F(RunnerTest, EnvironmentSetupRunsBeforeTheRecipeWithoutTheSandbox) {
  testing::CommitFiles(dir_.path() / "origin",
                       {{".nightshift/environment.yml",
                         "setup: echo made-by-setup > made.txt\nenv:\n  GREETING: hi\n"}},
                       "env");
  StartRunner();
  store::Run run = Create("cat made.txt; echo $GREETING");
  store::Run done = WaitFinished(run.id);
  ASSERT_EQ(done.state, RunState::kSucceeded) << done.reason;
  EXPECT_EQ(Lines(run.id), (std::vector<std::string>{"made-by-setup", "hi"}));

  testing::CommitFiles(dir_.path() / "origin", {{".nightshift/environment.yml", "setup: exit 4\n"}},
                       "broken");
  store::Run broken = WaitFinished(Create("echo never").id);
  EXPECT_EQ(broken.state, RunState::kFailed);
  EXPECT_EQ(broken.reason, "setup command 1 (exit 4) exited with status 4");
  EXPECT_TRUE(Lines(broken.id).empty());
}

TEST_F(RunnerTest, RecipeRunsInASandbox) {
  if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root";
  StartRunner(5000, &sandboxed_);
  store::Run run =
      Create("hostname; id -u; pwd; cat src/app.txt; echo new > new.txt && cat new.txt");
  store::Run done = WaitFinished(run.id);
  ASSERT_EQ(done.state, RunState::kSucceeded) << done.reason;
  EXPECT_EQ(Lines(run.id), (std::vector<std::string>{"run-" + std::to_string(run.id), "0",
                                                     "/workspace", "v1", "new"}));
}

TEST_F(RunnerTest, BranchTagAndShaRefs) {
  auto origin = dir_.path() / "origin";
  ASSERT_EQ(testing::Shell("git -C " + origin.string() + " tag v1 && git -C " + origin.string() +
                           " checkout -q -b feature")
                .exit_code,
            0);
  std::string feature = testing::CommitFiles(origin, {{"src/app.txt", "feature\n"}}, "feature");
  StartRunner();
  auto branch = Create("cat src/app.txt", "feature");
  auto tag = Create("cat src/app.txt", "v1");
  auto sha = Create("cat src/app.txt", feature);
  auto unknown = Create("true", "no-such-branch");
  EXPECT_EQ(WaitFinished(branch.id).commit, feature);
  EXPECT_EQ(Lines(branch.id), std::vector<std::string>{"feature"});
  EXPECT_EQ(WaitFinished(tag.id).commit, commit_);
  EXPECT_EQ(Lines(tag.id), std::vector<std::string>{"v1"});
  EXPECT_EQ(WaitFinished(sha.id).state, RunState::kSucceeded);
  store::Run u = WaitFinished(unknown.id);
  EXPECT_EQ(u.state, RunState::kFailed);
  EXPECT_NE(u.reason.find("unknown ref 'no-such-branch'"), std::string::npos) << u.reason;
}

TEST_F(RunnerTest, FailingRecipeAndTimeout) {
  StartRunner();
  auto failing = Create("exit 7");
  auto slow = Create("sleep 30", "", /*timeout_seconds=*/1);
  store::Run f = WaitFinished(failing.id);
  EXPECT_EQ(f.state, RunState::kFailed);
  EXPECT_EQ(f.exit_code, 7);
  EXPECT_EQ(f.reason, "recipe exited with status 7");
  store::Run t = WaitFinished(slow.id);
  EXPECT_EQ(t.state, RunState::kTimedOut);
  EXPECT_LT(t.finished_ms - t.started_ms, 10'000);
}

// The recipe ignores SIGTERM and leaves a background child; cancel must still stop the whole
// tree within a second.
TEST_F(RunnerTest, CancelStopsAProcessTreeThatIgnoresSigterm) {
  StartRunner();
  auto pidfile = dir_.path() / "pids";
  store::Run run =
      Create("trap '' TERM; sleep 300 & echo $$ $! > " + pidfile.string() + "; echo started; wait");
  WaitFor(run.id, [&](const store::Run&) { return Lines(run.id).size() == 1; });
  ASSERT_EQ(Lines(run.id), std::vector<std::string>{"started"});
  int shell = 0, child = 0;
  {
    auto text = testing::Shell("cat " + pidfile.string()).output;
    ASSERT_EQ(std::sscanf(text.c_str(), "%d %d", &shell, &child), 2) << text;
  }
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(store_->CancelRun(run.id, "test").ok());
  // Gone within one second: both the shell and its background child.
  bool gone = testing::AllGoneBy({shell, child}, start + std::chrono::seconds(1));
  EXPECT_TRUE(gone) << "process tree still alive 1 s after cancel";
  WaitFor(run.id, [&](const store::Run&) { return runner_->active_runs() == 0; });
  EXPECT_EQ(store_->GetRun(run.id)->state, RunState::kCancelled);
}

// The lease is lost while the recipe runs (as when the reaper expires it). The stale execution
// must be stopped even though this same runner leases the run again as attempt 2 at once.
TEST_F(RunnerTest, LostLeaseStopsTheStaleExecutionAndTheNextAttemptFinishes) {
  StartRunner(/*lease_ttl_ms=*/1000);
  auto marker = dir_.path() / "first-attempt";
  auto pid = dir_.path() / "pid";
  store::Run run =
      Create("if [ -e " + marker.string() + " ]; then echo second; else touch " + marker.string() +
             "; sleep 300 & echo $! > " + pid.string() + "; echo started; wait; fi");
  WaitFor(run.id, [&](const store::Run&) { return Lines(run.id).size() == 1; });
  ASSERT_EQ(Lines(run.id), std::vector<std::string>{"started"});
  int sleeper = std::atoi(testing::Shell("cat " + pid.string()).output.c_str());
  ASSERT_GT(sleeper, 0);
  ASSERT_TRUE(store_->ExpireLeases("test-runner").ok());
  store::Run done = WaitFinished(run.id);
  EXPECT_EQ(done.state, RunState::kSucceeded) << done.reason;
  EXPECT_EQ(done.attempt, 2);
  EXPECT_EQ(Lines(run.id), (std::vector<std::string>{"started", "second"}));
  auto attempts = *store_->ListAttempts(run.id);
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[0].outcome, "requeued");
  EXPECT_EQ(attempts[1].outcome, "succeeded");
  WaitFor(
      run.id, [&](const store::Run&) { return runner_->active_runs() == 0; }, 5000);
  EXPECT_EQ(runner_->active_runs(), 0);
  EXPECT_FALSE(testing::ProcessAlive(sleeper)) << "the stale attempt's process is still running";
}

TEST_F(RunnerTest, StartRecoversLeasesOfAPreviousLife) {
  store::Run run = Create("echo done");
  // A previous process under the same name leased it and died.
  ASSERT_TRUE(store_->LeaseRun("test-runner", 600'000).ok());
  StartRunner();
  store::Run done = WaitFinished(run.id);
  EXPECT_EQ(done.state, RunState::kSucceeded);
  EXPECT_EQ(done.attempt, 2);
  auto attempts = *store_->ListAttempts(run.id);
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[0].outcome, "requeued");
}

}  // namespace
}  // namespace nightshift::runner

namespace nightshift::runner {
namespace {

// Writers, the flusher thread and explicit Flush() calls race; every event lands exactly once,
// in order per writer, and nothing deadlocks.
TEST(EventWriter, ConcurrentLogAndFlushLoseNothing) {
  testing::TempDir dir;
  auto store = store::OpenSqliteStore(dir.path() / "db", SystemClock::Get());
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->AddRepository("r", "/x").ok());
  auto run = (*store)->CreateRun({.repo = "r", .recipe = "x"});
  StoreLeaseSource source(**store, nullptr);
  constexpr int kThreads = 4, kLines = 500;
  {
    EventWriter writer(source, run->id, /*flush_interval_ms=*/1, /*max_batch=*/7);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&writer, t] {
        for (int i = 0; i < kLines; ++i) writer.Log("stdout", std::to_string(t * kLines + i));
      });
    }
    for (int i = 0; i < 200; ++i) ASSERT_TRUE(writer.Flush().ok());
    for (auto& t : threads) t.join();
  }
  auto events = *(*store)->ListEvents(run->id, 1, 100'000);
  ASSERT_EQ(events.size(), static_cast<size_t>(kThreads * kLines));
  std::vector<int> last(kThreads, -1);
  for (const auto& e : events) {
    int n = std::stoi(Json::parse(e.data)["line"].get<std::string>());
    EXPECT_GT(n % kLines, last[n / kLines]);
    last[n / kLines] = n % kLines;
  }
}

}  // namespace
}  // namespace nightshift::runner
