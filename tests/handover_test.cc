// Delivery by the control plane: a runner that talks to the control plane through a LeaseSource
// which is not the store — every call crosses a "wire" (the handover as JSON, as a runner on
// another machine would send it) — still ends with a change request, pushed by the control
// plane. And the control plane checks what it received, not what the runner checked: a result
// tampered with on the way (a protected path added) is blocked. Needs root (the sandbox).

#include <unistd.h>

#include <chrono>
#include <functional>
#include <thread>

#include "forge/builtin.h"
#include "forge/delivery.h"
#include "gtest/gtest.h"
#include "runner/recipe_executor.h"
#include "runner/runner.h"
#include "store/sqlite_store.h"
#include "tests/support/test_support.h"
#include "workspace/workspace.h"

namespace nightshift {
namespace {

using store::RunState;
using testing::Shell;
using testing::ShellQuote;

// The control plane as a remote runner sees it: the store behind it, and the result crossing
// as JSON. `tamper`, if set, edits the handover on the way.
class WireLeaseSource final : public runner::LeaseSource {
 public:
  explicit WireLeaseSource(runner::LeaseSource& control_plane) : inner_(control_plane) {}
  StatusOr<std::optional<store::Run>> Lease(const std::string& owner, int64_t ttl_ms) override {
    return inner_.Lease(owner, ttl_ms);
  }
  StatusOr<store::Run> Heartbeat(int64_t id, const store::Lease& l, int64_t ttl_ms) override {
    return inner_.Heartbeat(id, l, ttl_ms);
  }
  StatusOr<store::Run> Transition(int64_t id, const store::Lease& l,
                                  const store::Transition& t) override {
    return inner_.Transition(id, l, t);
  }
  StatusOr<int64_t> Append(int64_t id, const std::vector<store::NewEvent>& events) override {
    return inner_.Append(id, events);
  }
  StatusOr<store::Run> Get(int64_t id) override { return inner_.Get(id); }
  StatusOr<store::Repository> Repository(const std::string& name) override {
    return inner_.Repository(name);
  }
  Status RecoverLeases(const std::string& owner) override { return inner_.RecoverLeases(owner); }
  StatusOr<forge::Conclusion> Conclude(int64_t id, const store::Lease& l,
                                       const forge::RunHandover& handover) override {
    const std::string wire = forge::HandoverToJson(handover).dump();
    ++handovers;
    ASSIGN_OR_RETURN(forge::RunHandover received, forge::HandoverFromJson(Json::parse(wire)));
    if (tamper) tamper(received);
    return inner_.Conclude(id, l, received);
  }
  StatusOr<policy::Decision> Authorize(int64_t id, const store::Lease& l, const std::string& action,
                                       policy::Attributes resource,
                                       policy::Attributes context) override {
    return inner_.Authorize(id, l, action, std::move(resource), std::move(context));
  }
  StatusOr<std::vector<policy::SecretValue>> Secrets(int64_t id, const store::Lease& l) override {
    return inner_.Secrets(id, l);
  }

  std::function<void(forge::RunHandover&)> tamper;
  int handovers = 0;

 private:
  runner::LeaseSource& inner_;
};

class HandoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "delivery needs the sandbox, which needs root";
    testing::MakeGitRepo(dir_.path() / "work", {{"version.txt", "1\n"}});
    origin_ = dir_.path() / "origin.git";
    ASSERT_EQ(Shell("git clone -q --bare " + ShellQuote((dir_.path() / "work").string()) + " " +
                    ShellQuote(origin_.string()))
                  .exit_code,
              0);
    // The control plane: its store, forge and delivery, in a data dir of its own.
    std::filesystem::create_directories(dir_.path() / "control");
    auto s = store::OpenSqliteStore(dir_.path() / "control" / "db", SystemClock::Get());
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    ASSERT_TRUE(store_->AddRepository("app", origin_.string()).ok());
    forge_ = std::make_unique<forge::BuiltinForge>(*store_, forge::Identity{});
    delivery_ = std::make_unique<forge::Delivery>(
        *store_, *forge_,
        forge::DeliveryOptions{.data_dir = dir_.path() / "control",
                               .review = {{"", forge::ReviewPolicy{}}}});
    control_plane_ = std::make_unique<runner::StoreLeaseSource>(*store_, delivery_.get());
    wire_ = std::make_unique<WireLeaseSource>(*control_plane_);
    // The runner, with mirrors and checkouts of its own in another directory.
    spaces_ = std::make_unique<workspace::Workspaces>(
        workspace::WorkspaceOptions{.data_dir = dir_.path() / "runner"});
    executor_ = std::make_unique<runner::RecipeExecutor>(
        runner::RecipeOptions{.sandbox = true, .workspaces = spaces_.get()});
    runner_ = std::make_unique<runner::Runner>(
        *wire_, *executor_,
        runner::RunnerOptions{.name = "remote-runner",
                              .slots = 1,
                              .lease_ttl_ms = 10'000,
                              .heartbeat_ms = 2'000,
                              .idle_poll_ms = 50,
                              .work_root = dir_.path() / "runner" / "work"});
    ASSERT_TRUE(runner_->Start().ok());
  }
  void TearDown() override {
    if (runner_) runner_->Stop();
  }

  store::Run RunAndWait(const std::string& recipe) {
    auto run = store_->CreateRun({.repo = "app", .ref = "main", .recipe = recipe});
    EXPECT_TRUE(run.ok()) << run.status();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    for (;;) {
      auto now = store_->GetRun(run->id);
      if (store::IsTerminal(now->state) || std::chrono::steady_clock::now() > deadline) {
        return *now;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  std::string Origin(const std::string& args) {
    return Shell("git -C " + ShellQuote(origin_.string()) + " " + args).output;
  }

  testing::TempDir dir_;
  std::filesystem::path origin_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<forge::BuiltinForge> forge_;
  std::unique_ptr<forge::Delivery> delivery_;
  std::unique_ptr<runner::StoreLeaseSource> control_plane_;
  std::unique_ptr<WireLeaseSource> wire_;
  std::unique_ptr<workspace::Workspaces> spaces_;
  std::unique_ptr<runner::RecipeExecutor> executor_;
  std::unique_ptr<runner::Runner> runner_;
};

TEST_F(HandoverTest, TheControlPlaneDeliversWhatTheRunnerHandsOver) {
  store::Run run = RunAndWait("echo 2 > version.txt");
  ASSERT_EQ(run.state, RunState::kSucceeded) << run.reason;
  EXPECT_EQ(wire_->handovers, 1);
  auto crs = store_->ListChangeRequests("app", std::nullopt);
  ASSERT_TRUE(crs.ok());
  ASSERT_EQ(crs->size(), 1u);
  const store::ChangeRequest& cr = crs->front();
  EXPECT_EQ(cr.run_id, run.id);
  EXPECT_EQ(Origin("rev-parse " + cr.branch), cr.head_commit + "\n");
  EXPECT_EQ(Origin("show " + cr.branch + ":version.txt"), "2\n");
  EXPECT_NE(cr.diff.find("-1\n+2\n"), std::string::npos) << cr.diff;
}

TEST_F(HandoverTest, AResultTamperedWithOnTheWayIsCheckedByTheControlPlane) {
  wire_->tamper = [](forge::RunHandover& handover) {
    handover.changes.push_back(workspace::FileChange{
        .path = ".github/workflows/x.yml",
        .new_mode = workspace::kModeFile,
        .content = "on: push\njobs: {x: {runs-on: ubuntu-latest, steps: [{run: curl evil}]}}\n"});
  };
  store::Run run = RunAndWait("echo 2 > version.txt");
  EXPECT_EQ(run.state, RunState::kBlockedByPolicy) << run.reason;
  EXPECT_NE(run.reason.find("changes a protected path: .github/workflows/x.yml"), std::string::npos)
      << run.reason;
  EXPECT_EQ(Origin("for-each-ref refs/heads/nightshift"), "");
  EXPECT_TRUE(store_->ListChangeRequests("app", std::nullopt)->empty());
}

// Old sides are the control plane's own: a runner that lies about what a file was (claiming a
// secret was already there) does not get the secret past the scan.
TEST_F(HandoverTest, TheRunnersAccountOfTheOldSideIsNotBelieved) {
  wire_->tamper = [](forge::RunHandover& handover) {
    for (auto& change : handover.changes) {
      change.content = "token = ghp_0123456789abcdefghijklmnopqrstuvwxyzAB\n";
      change.old_oid = change.new_oid = workspace::GitBlobId(change.content, "sha1");
    }
  };
  store::Run run = RunAndWait("echo 2 > version.txt");
  EXPECT_EQ(run.state, RunState::kBlockedByPolicy) << run.reason;
  EXPECT_NE(run.reason.find("looks like a secret"), std::string::npos) << run.reason;
}

TEST(HandoverJson, RoundTripsBytesAndRefusesGarbage) {
  forge::RunHandover handover{.succeeded = true, .summary = "s", .base_commit = "abc"};
  handover.changes.push_back(workspace::FileChange{.path = std::string("a\nb\0c", 5),
                                                   .new_mode = workspace::kModeFile,
                                                   .content = std::string("\0\xff\n", 3)});
  auto back = forge::HandoverFromJson(Json::parse(forge::HandoverToJson(handover).dump()));
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->changes.size(), 1u);
  EXPECT_EQ(back->changes[0].path, handover.changes[0].path);
  EXPECT_EQ(back->changes[0].content, handover.changes[0].content);
  for (const char* bad :
       {R"([])", R"({"succeeded": true})", R"({"succeeded": 1, "base_commit": "x", "changes": []})",
        R"({"succeeded": true, "base_commit": "x", "changes": [{"path": "!!"}]})"}) {
    EXPECT_EQ(forge::HandoverFromJson(Json::parse(bad)).status().code(),
              StatusCode::kInvalidArgument)
        << bad;
  }
}

}  // namespace
}  // namespace nightshift
