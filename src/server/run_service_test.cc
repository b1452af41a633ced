// The one submission path: every rule in one place, for the API and for follow-up comments
// alike. No root: a real store in a temp dir, no runner.

#include "server/run_service.h"

#include <atomic>
#include <thread>

#include "gtest/gtest.h"
#include "store/sqlite_store.h"
#include "tests/support/test_support.h"

namespace nightshift::server {
namespace {

using store::RunKind;

class RunServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::OpenSqliteStore(dir_.path() / "db", SystemClock::Get());
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    ASSERT_TRUE(store_->AddRepository("app", "/nowhere").ok());
    forge_ = std::make_unique<forge::BuiltinForge>(*store_, forge::Identity{});
  }

  RunService Service(bool sandbox, std::vector<std::string> models = {"default"}) {
    return RunService(*store_, *forge_, RunCapabilities{.sandbox = sandbox, .models = models});
  }

  // A change request opened by a run of `kind`.
  store::ChangeRequest OpenChangeRequest(RunKind kind) {
    store::RunSpec spec{.repo = "app", .kind = kind};
    if (kind == RunKind::kAgent) spec.task = "do it";
    if (kind == RunKind::kRecipe) spec.recipe = "true";
    auto run = store_->CreateRun(spec);
    EXPECT_TRUE(run.ok()) << run.status();
    auto cr = store_->CreateChangeRequest(store::ChangeRequest{
        .run_id = run->id, .repo_id = run->repo_id, .branch = "nightshift/x/1", .title = "t"});
    EXPECT_TRUE(cr.ok()) << cr.status();
    return *cr;
  }

  testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<forge::BuiltinForge> forge_;
  const Principal admin_{.kind = "admin"};
};

TEST_F(RunServiceTest, BadRequestsAreRefusedNamingTheField) {
  RunService runs = Service(true);
  struct Case {
    SubmitRequest request;
    StatusCode code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{.recipe = "true"}, StatusCode::kInvalidArgument, "'repo' is required"},
      {{.repo = "app"},
       StatusCode::kInvalidArgument,
       "'recipe' (or a 'task' for the agent) is required"},
      {{.repo = "app", .kind = RunKind::kAgent, .recipe = "x", .task = "t"},
       StatusCode::kInvalidArgument,
       "a run of kind agent takes no 'recipe'"},
      {{.repo = "app", .kind = RunKind::kRecipe, .recipe = "x", .task = "t"},
       StatusCode::kInvalidArgument,
       "'task' and 'model' are for runs of kind agent"},
      {{.repo = "app", .recipe = std::string(64 * 1024 + 1, 'x')},
       StatusCode::kInvalidArgument,
       "'recipe' is longer than 64 KiB"},
      {{.repo = "app", .recipe = "x", .timeout_seconds = 0},
       StatusCode::kInvalidArgument,
       "'timeout_seconds' must be from 1 to 86400"},
      {{.repo = "app", .recipe = "x", .max_attempts = 11},
       StatusCode::kInvalidArgument,
       "'max_attempts' must be from 1 to 10"},
      {{.repo = "app", .ref = "-rf", .recipe = "x"},
       StatusCode::kInvalidArgument,
       "invalid ref '-rf': starts with '-'"},
      {{.repo = "app", .task = "t", .model = "gpt-9"},
       StatusCode::kInvalidArgument,
       "unknown model 'gpt-9' (configured: default)"},
      {{.repo = "nope", .recipe = "x"}, StatusCode::kNotFound, "unknown repository 'nope'"},
  };
  for (const Case& c : cases) {
    auto run = runs.Submit(c.request, admin_);
    EXPECT_EQ(run.status().code(), c.code) << c.message;
    EXPECT_EQ(run.status().message(), c.message);
  }
  EXPECT_TRUE(store_->ListRuns({})->empty());
}

// The dead twin pipeline ran a --task run as `sh -c ""` without the sandbox and called it a
// success: such runs are refused at submission now.
TEST_F(RunServiceTest, KindsThisServerCannotRunAreRefused) {
  RunService plain = Service(/*sandbox=*/false);
  for (RunKind kind : {RunKind::kAgent, RunKind::kPrebuild}) {
    SubmitRequest request{.repo = "app", .kind = kind};
    if (kind == RunKind::kAgent) request.task = "fix the tests";
    auto run = plain.Submit(request, admin_);
    EXPECT_EQ(run.status().code(), StatusCode::kFailedPrecondition) << run.status();
    EXPECT_NE(run.status().message().find("need the sandbox"), std::string::npos);
  }
  EXPECT_TRUE(plain.Submit({.repo = "app", .recipe = "make test"}, admin_).ok());
  RunService no_models = Service(true, {});
  EXPECT_EQ(no_models.Submit({.repo = "app", .task = "x"}, admin_).status().code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(RunServiceTest, ThePrincipalIsRecorded) {
  RunService runs = Service(true);
  auto run = runs.Submit({.repo = "app", .task = "x"}, admin_);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->kind, RunKind::kAgent);  // a task without a kind is the agent's
  EXPECT_EQ(store_->GetRun(run->id)->requested_by, "admin");
  auto cancelled = runs.Cancel(run->id, Principal{.kind = "comment", .name = "bob"});
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->reason, "cancelled by comment:bob");
}

TEST_F(RunServiceTest, AFollowUpCommentStartsARunUnderTheSameRules) {
  const store::ChangeRequest cr = OpenChangeRequest(RunKind::kRecipe);
  RunService runs = Service(true);
  const Principal alice{.kind = "comment", .name = "alice"};
  auto plain = runs.Comment(cr.id, "looks good", alice);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_FALSE(plain->second.has_value());
  auto follow = runs.Comment(cr.id, "/nightshift echo more >> README\n", alice);
  ASSERT_TRUE(follow.ok()) << follow.status();
  ASSERT_TRUE(follow->second.has_value());
  EXPECT_EQ(follow->second->recipe, "echo more >> README");
  EXPECT_EQ(follow->second->ref, cr.branch);
  EXPECT_EQ(follow->second->change_request_id, cr.id);
  EXPECT_EQ(follow->second->requested_by, "comment:alice");
  EXPECT_EQ(store_->ListCrComments(cr.id)->size(), 2u);
}

TEST_F(RunServiceTest, ARefusedFollowUpStoresNoComment) {
  const store::ChangeRequest cr = OpenChangeRequest(RunKind::kAgent);
  RunService plain = Service(/*sandbox=*/false);  // cannot run the agent
  auto refused = plain.Comment(cr.id, "/nightshift also cover the empty cart", admin_);
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition) << refused.status();
  EXPECT_TRUE(store_->ListCrComments(cr.id)->empty());
  // Under the same rules as the API: too long, refused the same way.
  RunService runs = Service(true);
  auto too_long = runs.Comment(cr.id, "/nightshift " + std::string(70'000, 'x'), admin_);
  EXPECT_EQ(too_long.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(runs.Comment(999, "hi", admin_).status().code(), StatusCode::kNotFound);
}

TEST_F(RunServiceTest, ContextFilesStayInTheContextDirectoryAndUnderTheirLimit) {
  RunService runs = Service(true);
  for (const std::string& path : std::vector<std::string>{
           "../../etc/passwd", ".nightshift/context/../../x", ".nightshift/context/a/b",
           ".nightshift/context/", ".nightshift/context/.hidden", "/abs", "ci.log",
           std::string(".nightshift/context/x\0y", 23)}) {
    auto refused = runs.Submit({.repo = "app", .recipe = "true", .context = {{path, "x"}}}, admin_);
    EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument) << path;
  }
  auto too_big =
      runs.Submit({.repo = "app",
                   .recipe = "true",
                   .context = {{".nightshift/context/ci.log", std::string(2 << 20, 'x')}}},
                  admin_);
  EXPECT_EQ(too_big.status().code(), StatusCode::kInvalidArgument);
  auto run = runs.Submit(
      {.repo = "app", .recipe = "true", .context = {{".nightshift/context/ci.log", "FAIL"}}},
      admin_);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(store_->GetRun(run->id)->context.at(".nightshift/context/ci.log"), "FAIL");
}

TEST_F(RunServiceTest, AnIdempotencyKeyStartsOneRun) {
  RunService runs = Service(true);
  SubmitRequest request{.repo = "app", .recipe = "true", .idempotency_key = "event:1#0:a:app"};
  auto first = runs.Submit(request, admin_);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(runs.Submit(request, admin_).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->GetRunByKey("event:1#0:a:app")->id, first->id);
  EXPECT_EQ(store_->ListRuns({})->size(), 1u);
}

// Budgets: a run over a cap is refused with the cap named; an agent run reserves its cost
// budget, so runs submitted side by side cannot overshoot a spend cap.
class BudgetsTest : public RunServiceTest {
 protected:
  RunService Budgeted(policy::BudgetsConfig budgets) {
    return RunService(
        *store_, *forge_,
        RunCapabilities{.sandbox = true, .models = {"default"}, .agent_cost_budget_usd = 1.0},
        nullptr, std::move(budgets));
  }
  // An agent run that finished, having spent `usd`.
  void Spent(double usd) {
    auto run = store_->CreateRun({.repo = "app", .kind = RunKind::kAgent, .task = "t"});
    ASSERT_TRUE(run.ok());
    auto leased = store_->LeaseRun("r", 60'000);
    ASSERT_TRUE(leased.ok() && leased->has_value());
    const store::Lease lease{.owner = "r", .attempt = (*leased)->attempt};
    ASSERT_TRUE(
        store_
            ->AppendEvents(run->id, {{.kind = "agent_end", .data = Json{{"cost_usd", usd}}.dump()}})
            .ok());
    ASSERT_TRUE(store_
                    ->TransitionRun(
                        run->id, lease,
                        {.from = store::RunState::kPreparing, .to = store::RunState::kSucceeded})
                    .ok());
  }
  SubmitRequest Agent() { return {.repo = "app", .kind = RunKind::kAgent, .task = "fix it"}; }
};

TEST_F(BudgetsTest, ARunOverACapIsRefusedWithTheCapNamed) {
  RunService runs = Budgeted({.repositories = {{"app", {.max_concurrent = 2}}},
                              .agents = {{"nightly", {.max_runs_per_hour = 1}}}});
  EXPECT_TRUE(runs.Submit({.repo = "app", .recipe = "true"}, admin_).ok());
  EXPECT_TRUE(runs.Submit({.repo = "app", .recipe = "true"}, admin_).ok());
  auto third = runs.Submit({.repo = "app", .recipe = "true"}, admin_);
  EXPECT_EQ(third.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(third.status().message(),
            "the cap of 2 concurrent runs for repository app is reached: 2 queued or running");
  ASSERT_TRUE(store_->AddRepository("other", "/nowhere").ok());
  const Principal nightly{.kind = "schedule", .name = "nightly"};
  EXPECT_TRUE(runs.Submit({.repo = "other", .recipe = "true"}, nightly).ok());
  auto again = runs.Submit({.repo = "other", .recipe = "true"}, nightly);
  EXPECT_EQ(again.status().message(),
            "the cap of 1 runs an hour for agent nightly is reached: 1 started in the last 60 "
            "minutes");
  // A batch counts its own runs.
  std::vector<std::pair<SubmitRequest, Principal>> batch(
      2, {SubmitRequest{.repo = "other", .recipe = "true"},
          Principal{.kind = "trigger", .name = "nightly"}});
  auto results = runs.SubmitMany(batch);
  EXPECT_EQ(results[0].status().code(), StatusCode::kResourceExhausted);
}

TEST_F(BudgetsTest, SpendIsWhatFinishedRunsSpentAndWhatRunningOnesReserve) {
  Spent(1.2);
  RunService runs = Budgeted({.global = {.max_spend_per_day_usd = 2.5}});
  EXPECT_TRUE(runs.Submit(Agent(), admin_).ok());  // 1.20 spent + 1.00 reserved ≤ 2.50
  auto over = runs.Submit(Agent(), admin_);
  EXPECT_EQ(over.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(over.status().message(),
            "the spend cap of $2.50 a day for everything is reached: $1.20 spent and $1.00 "
            "reserved in the last 24 hours; this run reserves $1.00");
  // A recipe spends nothing on models: it reserves nothing.
  EXPECT_TRUE(runs.Submit({.repo = "app", .recipe = "true"}, admin_).ok());
}

TEST_F(BudgetsTest, RunsSubmittedSideBySideCannotOvershootASpendCap) {
  RunService runs = Budgeted({.repositories = {{"app", {.max_spend_per_day_usd = 3.0}}}});
  std::atomic<int> admitted{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 4; ++i) {
        auto run = runs.Submit(Agent(), admin_);
        (run.ok() ? admitted : refused)++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(admitted.load(), 3);
  EXPECT_EQ(refused.load(), 29);
}

TEST(BudgetsConfig, BadCapsAreNamed) {
  ConfigErrors errors("nightshift.yml");
  const ConfigNode root = ParseYamlConfig(
      "budgets:\n  global: {max_concurrent: 0, max_spend_per_day_usd: -1}\n"
      "  agents: {nightly: {max_runs_an_hour: 3}}\n",
      errors);
  policy::BudgetsConfig config;
  policy::ReadBudgetsConfig(*root.Find("budgets"), config, errors);
  const auto lines = errors.Lines();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "nightshift.yml:2:28: budgets.global.max_concurrent must be at least 1");
  EXPECT_EQ(lines[1],
            "nightshift.yml:2:54: budgets.global.max_spend_per_day_usd must be more than 0");
  EXPECT_NE(lines[2].find("unknown key 'max_runs_an_hour' in budgets.agents.nightly"),
            std::string::npos)
      << lines[2];
}

}  // namespace
}  // namespace nightshift::server
