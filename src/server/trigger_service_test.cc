// The triggers' ledger and router: exactly-once, coalescing, the loop guard, overlap, limits
// and schedules. No root: a real store in a temp dir, the real run service, no runner; time from
// a FakeClock. The crash tests kill a forked child with SIGKILL at the worst points.

#include "server/trigger_service.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fs.h"
#include "gtest/gtest.h"
#include "store/sqlite_store.h"
#include "tests/support/test_support.h"

namespace nightshift::server {
namespace {

// 2026-12-07T10:00:00Z, a Monday.
constexpr int64_t kMonday10 = 1'796'637'600'000;

class TriggerServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open() {
    service_.reset();
    runs_.reset();
    forge_.reset();
    store_.reset();
    auto s = store::OpenSqliteStore(dir_.path() / "db", clock_);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    (void)store_->AddRepository("app", "https://github.com/acme/app.git");
    (void)store_->AddRepository("other", "https://github.com/acme/other.git");
    forge_ = std::make_unique<forge::BuiltinForge>(*store_, forge::Identity{});
    runs_ = std::make_unique<RunService>(*store_, *forge_,
                                         RunCapabilities{.sandbox = true, .models = {"default"}});
  }

  // The agents of `yaml` (an `agents:` and `webhooks:` config).
  void Configure(const std::string& yaml) {
    ConfigErrors errors("test.yml");
    const ConfigNode root = ParseYamlConfig(yaml, errors);
    TriggerOptions options;
    if (const ConfigNode* hooks = root.Find("webhooks")) {
      options.config.webhooks = triggers::ParseWebhooks(*hooks, {}, errors);
    }
    options.config.agents =
        triggers::ParseAgents(*root.Find("agents"), options.config.webhooks.generic, errors);
    ASSERT_TRUE(errors.empty()) << errors.Lines().front();
    options.own = {.logins = {"nightshift-bot"}, .comment_marker = "<!-- nightshift -->"};
    options.failpoint = failpoint_;
    yaml_ = yaml;
    service_ = std::make_unique<TriggerService>(*store_, *runs_, std::move(options), clock_);
  }

  StatusOr<store::IncomingEvent> Deliver(const std::string& type, const std::string& delivery,
                                         const Json& body) {
    return service_->Accept(
        {.source = "github", .delivery = delivery, .type = type, .body = body.dump()});
  }

  Json Outcome(int64_t event_id) {
    auto event = store_->GetIncoming(event_id);
    EXPECT_TRUE(event.ok()) << event.status();
    EXPECT_EQ(event->state, store::IncomingState::kDone);
    return Json::parse(event->outcome);
  }

  std::vector<store::Run> Runs() {
    auto runs = store_->ListRuns({.limit = 500});
    EXPECT_TRUE(runs.ok()) << runs.status();
    return runs.ok() ? *runs : std::vector<store::Run>{};
  }

  static Json WorkflowRunFailure() {
    auto text =
        ReadFile(std::filesystem::path(TESTS_DIR) / "data/github/workflow_run_failure.json");
    EXPECT_TRUE(text.ok()) << text.status();
    return Json::parse(*text);
  }

  static Json Push(const std::string& branch, const std::string& sender = "mona") {
    return Json{{"ref", "refs/heads/" + branch},
                {"before", "0000"},
                {"after", "acb5820ced9479c074f688cc328bf03f341a511d"},
                {"repository",
                 {{"full_name", "acme/app"}, {"clone_url", "https://github.com/acme/app.git"}}},
                {"sender", {{"login", sender}}}};
  }

  testing::TempDir dir_;
  FakeClock clock_{kMonday10};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<forge::BuiltinForge> forge_;
  std::unique_ptr<RunService> runs_;
  std::function<void(std::string_view)> failpoint_;
  std::unique_ptr<TriggerService> service_;
  std::string yaml_;
};

constexpr char kCiFixer[] = R"(
agents:
  ci-fixer:
    task: "CI failed on {{event.branch}} ({{event.workflow}}). Find the cause and fix it."
    repositories: ["acme/*"]
    triggers:
      - github: {event: workflow_run, conclusion: failure}
    concurrency: {key: "{{event.branch}}", overlap: cancel_previous}
)";

TEST_F(TriggerServiceTest, AWorkflowRunFailureAsGitHubSendsItStartsTheAgentWithItsTask) {
  Configure(kCiFixer);
  auto event =
      Deliver("workflow_run", "72d3162e-cc78-11e3-81ab-4c9367dc0958", WorkflowRunFailure());
  ASSERT_TRUE(event.ok()) << event.status();
  service_->ProcessDue();
  const Json outcome = Outcome(event->id);
  ASSERT_EQ(outcome.size(), 1u) << outcome.dump();
  EXPECT_EQ(outcome[0]["result"], "started") << outcome.dump();
  EXPECT_EQ(outcome[0]["agent"], "ci-fixer");
  EXPECT_EQ(outcome[0]["repository"], "app");
  auto run = store_->GetRun(outcome[0]["run_id"].get<int64_t>());
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->repo, "app");  // matched by owner/name, not acme/other
  EXPECT_EQ(run->kind, store::RunKind::kAgent);
  EXPECT_EQ(run->task, "CI failed on feature/login (CI). Find the cause and fix it.");
  EXPECT_EQ(run->ref, "feature/login");  // the change request goes to the branch that failed
  EXPECT_EQ(run->requested_by, "trigger:ci-fixer");
  EXPECT_NE(run->trigger.find("https://github.com/acme/app/actions/runs/30433642"),
            std::string::npos)
      << run->trigger;
}

TEST_F(TriggerServiceTest, ARedeliveredDeliveryStartsOneRun) {
  Configure(kCiFixer);
  auto first = Deliver("workflow_run", "d-1", WorkflowRunFailure());
  ASSERT_TRUE(first.ok());
  service_->ProcessDue();
  for (int i = 0; i < 3; ++i) {
    auto again = Deliver("workflow_run", "d-1", WorkflowRunFailure());
    EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
    service_->ProcessDue();
  }
  EXPECT_EQ(Runs().size(), 1u);
  auto stored = store_->GetIncoming(first->id);
  EXPECT_EQ(stored->redeliveries, 3);
}

TEST_F(TriggerServiceTest, AWebhookAndAScheduleForTheSameBranchInTheSameSecondStartOneRun) {
  Configure(R"(
agents:
  nightly:
    recipe: "make check BRANCH={{event.branch}}"
    repositories: ["app"]
    triggers:
      - schedule: {cron: "0 12 * * 1-5", timezone: Europe/Berlin, branch: main}
      - github: {event: push}
    concurrency: {key: "{{event.branch}}", overlap: skip}
)");
  service_->ProcessDue();       // the schedule is first seen: due times from now on
  clock_.AdvanceMs(3'600'000);  // 12:00 in Berlin
  auto push = Deliver("push", "p-1", Push("main"));
  ASSERT_TRUE(push.ok());
  service_->ProcessDue();
  const auto runs = Runs();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].recipe, "make check BRANCH='main'");
  const Json outcome = Outcome(push->id);
  auto events = store_->ListIncoming({.limit = 10});
  ASSERT_EQ(events->size(), 2u);
  // Whichever was processed first started it; the other one was coalesced into it.
  std::vector<std::string> results;
  for (const auto& e : *events) results.push_back(Json::parse(e.outcome)[0]["result"]);
  std::sort(results.begin(), results.end());
  EXPECT_EQ(results, (std::vector<std::string>{"coalesced", "started"}));
}

TEST_F(TriggerServiceTest, ABatchsRunsAreQueuedTogetherAndARefusedOneFailsOnlyItsOwnEntry) {
  Configure(R"(
agents:
  tester:
    recipe: "make test BRANCH={{event.branch}}"
    repositories: ["app"]
    triggers: [{github: {event: push}}]
    concurrency: {key: "{{event.branch}}"}
  dreamer:
    task: "look at {{event.branch}}"
    model: not-configured
    repositories: ["app"]
    triggers: [{github: {event: push}}]
)");
  std::vector<int64_t> ids;
  for (const char* branch : {"a", "b", "a"}) {
    auto stored = Deliver("push", StrCat("p-", ids.size()), Push(branch));
    ASSERT_TRUE(stored.ok());
    ids.push_back(stored->id);
  }
  service_->ProcessDue();  // one batch
  const auto runs = Runs();
  ASSERT_EQ(runs.size(), 2u);  // a and b; the second a joins the first
  auto entry_of = [&](int64_t id, const std::string& agent) {
    for (const Json& e : Outcome(id)) {
      if (e["agent"] == agent) return e;
    }
    return Json();
  };
  const Json first = entry_of(ids[0], "tester");
  const Json third = entry_of(ids[2], "tester");
  EXPECT_EQ(first["result"], "started") << first.dump();
  EXPECT_EQ(entry_of(ids[1], "tester")["result"], "started");
  EXPECT_EQ(third["result"], "coalesced") << third.dump();
  EXPECT_EQ(third["run_id"], first["run_id"]) << third.dump();
  EXPECT_EQ(third["reason"],
            StrCat("into run ", first["run_id"].get<int64_t>(), ", not started yet"));
  EXPECT_FALSE(third.contains("pending_into"));
  for (int64_t id : ids) {
    const Json refused = entry_of(id, "dreamer");
    EXPECT_EQ(refused["result"], "error") << refused.dump();
    EXPECT_NE(refused.value("reason", "").find("unknown model 'not-configured'"), std::string::npos)
        << refused.dump();
    EXPECT_FALSE(refused.contains("pending"));
  }
  // The key's run is the first a's: a later push of a, once it ran, is its own run.
  auto key = store_->GetTriggerKey("tester | app | a");
  ASSERT_TRUE(key.ok() && *key);
  EXPECT_EQ((*key)->run_id, first["run_id"].get<int64_t>());
}

TEST_F(TriggerServiceTest, ThePlatformsOwnPushesCommentsAndLoginStartNothing) {
  Configure(R"(
agents:
  any:
    recipe: "true"
    repositories: ["*"]
    triggers:
      - github: {event: push}
      - github: {event: issue_comment}
)");
  auto own_branch = Deliver("push", "p-1", Push("nightshift/fix/12"));
  auto own_login = Deliver("push", "p-2", Push("main", "nightshift-bot"));
  Json comment{{"action", "created"},
               {"issue", {{"number", 7}, {"title", "t"}}},
               {"comment",
                {{"body", "Updated by follow-up run 3\n\n<!-- nightshift -->"},
                 {"user", {{"login", "someone"}}}}},
               {"repository", {{"full_name", "acme/app"}}},
               {"sender", {{"login", "someone"}}}};
  auto own_comment = Deliver("issue_comment", "c-1", comment);
  service_->ProcessDue();
  for (const auto& event : {own_branch, own_login, own_comment}) {
    ASSERT_TRUE(event.ok()) << event.status();
    EXPECT_EQ(Outcome(event->id)[0]["result"], "loop_guard") << Outcome(event->id).dump();
  }
  EXPECT_TRUE(Runs().empty());
  // A person's push to the same repository does start one.
  auto person = Deliver("push", "p-3", Push("main"));
  service_->ProcessDue();
  EXPECT_EQ(Outcome(person->id)[0]["result"], "started");
}

TEST_F(TriggerServiceTest, ASlashNightshiftCommentOnItsPullRequestIsAFollowUpOnItsBranch) {
  Configure(kCiFixer);
  auto original = store_->CreateRun({.repo = "app", .kind = store::RunKind::kAgent, .task = "t"});
  ASSERT_TRUE(original.ok());
  auto cr = store_->CreateChangeRequest(store::ChangeRequest{.run_id = original->id,
                                                             .repo_id = original->repo_id,
                                                             .branch = "nightshift/agent/1",
                                                             .base_branch = "main",
                                                             .title = "t"});
  ASSERT_TRUE(cr.ok());
  cr->remote_id = "12";
  ASSERT_TRUE(store_->UpdateChangeRequest(*cr, store::CrState::kOpen).ok());
  auto comment = [](int number, const std::string& body) {
    return Json{{"action", "created"},
                {"issue",
                 {{"number", number},
                  {"title", "t"},
                  {"pull_request", {{"html_url", "https://github.com/acme/app/pull/12"}}}}},
                {"comment", {{"body", body}, {"user", {{"login", "alice"}}}}},
                {"repository", {{"full_name", "acme/app"}}},
                {"sender", {{"login", "alice"}}}};
  };
  auto ours = Deliver("issue_comment", "c-1", comment(12, "/nightshift also cover the empty cart"));
  auto theirs = Deliver("issue_comment", "c-2", comment(13, "/nightshift do something"));
  service_->ProcessDue();
  const Json outcome = Outcome(ours->id);
  ASSERT_EQ(outcome[0]["result"], "follow_up") << outcome.dump();
  auto run = store_->GetRun(outcome[0]["run_id"].get<int64_t>());
  EXPECT_EQ(run->ref, "nightshift/agent/1");
  EXPECT_EQ(run->change_request_id, cr->id);
  EXPECT_EQ(run->requested_by, "github:alice");
  // Not one of the platform's pull requests: no follow-up (and no agent wants comments here).
  EXPECT_EQ(Outcome(theirs->id)[0]["result"], "no_matching_agent");
}

TEST_F(TriggerServiceTest, OverlapCancelPreviousCancelsTheRunningOneAndStartsAfresh) {
  Configure(kCiFixer);
  auto first = Deliver("workflow_run", "d-1", WorkflowRunFailure());
  service_->ProcessDue();
  const int64_t run1 = Outcome(first->id)[0]["run_id"];
  // Running: leased by a runner.
  auto leased = store_->LeaseRun("runner", 60'000);
  ASSERT_TRUE(leased.ok() && *leased);
  auto second = Deliver("workflow_run", "d-2", WorkflowRunFailure());
  service_->ProcessDue();
  const Json outcome = Outcome(second->id);
  EXPECT_EQ(outcome[0]["result"], "started") << outcome.dump();
  EXPECT_EQ(outcome[0]["cancelled_run_id"], run1);
  EXPECT_EQ(store_->GetRun(run1)->state, store::RunState::kCancelled);
}

TEST_F(TriggerServiceTest, OverlapQueueStartsOneMoreRunWhenTheRunningOneEnds) {
  Configure(R"(
agents:
  q:
    recipe: "echo {{event.branch}}"
    repositories: ["app"]
    triggers: [{github: {event: push}}]
    concurrency: {key: "{{event.branch}}", overlap: queue}
)");
  auto first = Deliver("push", "p-1", Push("main"));
  service_->ProcessDue();
  const int64_t run1 = Outcome(first->id)[0]["run_id"];
  auto leased = store_->LeaseRun("runner", 60'000);
  ASSERT_TRUE(leased.ok() && *leased);
  auto second = Deliver("push", "p-2", Push("main"));
  auto third = Deliver("push", "p-3", Push("main"));
  service_->ProcessDue();
  EXPECT_EQ(Outcome(second->id)[0]["result"], "queued");
  EXPECT_EQ(Outcome(third->id)[0]["result"], "coalesced");
  EXPECT_EQ(Runs().size(), 1u);
  ASSERT_TRUE(store_->CancelRun(run1, "done").ok());
  service_->ProcessDue();
  const auto runs = Runs();
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].state, store::RunState::kQueued);
  EXPECT_NE(runs[0].trigger.find(StrCat("(event ", second->id, ")")), std::string::npos);
  const Json now = Outcome(second->id);
  EXPECT_EQ(now[0]["result"], "started") << now.dump();
  EXPECT_EQ(now[0]["run_id"], runs[0].id);
  EXPECT_EQ(now[0]["reason"], StrCat("after run ", run1, " ended (overlap: queue)"));
}

TEST_F(TriggerServiceTest, AQueuedScheduleFireStartsWithItsOwnTrigger) {
  Configure(R"(
agents:
  q:
    recipe: "echo {{event.cron}}"
    repositories: ["app"]
    triggers:
      - schedule: {cron: "0 * * * *"}
      - schedule: {cron: "30 * * * *", misfire: skip}
    concurrency: {key: "always the same", overlap: queue}
)");
  service_->ProcessDue();       // 10:00: first seen
  clock_.AdvanceMs(3'605'000);  // 11:00:05: the first trigger fires
  service_->ProcessDue();
  ASSERT_EQ(Runs().size(), 1u);
  const int64_t run1 = Runs()[0].id;
  auto leased = store_->LeaseRun("runner", 3'600'000);
  ASSERT_TRUE(leased.ok() && *leased);
  clock_.AdvanceMs(1'800'000);  // 11:30:05: the second fires, and waits for the first's run
  service_->ProcessDue();
  ASSERT_EQ(Runs().size(), 1u);
  ASSERT_TRUE(store_->CancelRun(run1, "done").ok());
  service_->ProcessDue();
  const auto runs = Runs();
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].recipe, "echo '30 * * * *'");
}

TEST_F(TriggerServiceTest, LimitsRefuseRunsBeyondTheHourlyRate) {
  Configure(R"(
agents:
  limited:
    recipe: "true"
    repositories: ["app"]
    triggers: [{github: {event: push}}]
    concurrency: {key: "{{event.sha}}{{event.before}}"}
    limits: {runs_per_hour: 2}
)");
  std::vector<int64_t> ids;
  for (int i = 0; i < 3; ++i) {
    Json push = Push("main");
    push["before"] = StrCat("b", i);
    ids.push_back(Deliver("push", StrCat("p-", i), push)->id);
  }
  service_->ProcessDue();
  EXPECT_EQ(Outcome(ids[2])[0]["result"], "rate_limited") << Outcome(ids[2]).dump();
  EXPECT_EQ(Runs().size(), 2u);
  clock_.AdvanceMs(3'601'000);
  Json push = Push("main");
  push["before"] = "b9";
  auto later = Deliver("push", "p-9", push);
  service_->ProcessDue();
  EXPECT_EQ(Outcome(later->id)[0]["result"], "started");
}

TEST_F(TriggerServiceTest, UnknownRepositoriesAndUnmatchedEventsAreRecordedNotDropped) {
  Configure(kCiFixer);
  Json elsewhere = WorkflowRunFailure();
  elsewhere["repository"]["full_name"] = "evil/app";
  elsewhere["repository"]["clone_url"] = "https://github.com/evil/app.git";
  elsewhere["repository"]["ssh_url"] = "git@github.com:evil/app.git";
  elsewhere["repository"]["html_url"] = "https://github.com/evil/app";
  auto unknown = Deliver("workflow_run", "d-1", elsewhere);
  Json success = WorkflowRunFailure();
  success["workflow_run"]["conclusion"] = "success";
  auto green = Deliver("workflow_run", "d-2", success);
  service_->ProcessDue();
  EXPECT_EQ(Outcome(unknown->id)[0]["result"], "no_matching_repository");
  EXPECT_EQ(Outcome(green->id)[0]["result"], "no_matching_agent");
  EXPECT_TRUE(Runs().empty());
}

TEST_F(TriggerServiceTest, HostileValuesStayTextInARecipe) {
  Configure(R"(
agents:
  r:
    recipe: "echo {{event.branch}}"
    repositories: ["app"]
    triggers: [{github: {event: push}}]
)");
  // A valid branch name for git, and a command for a shell that does not quote it.
  auto event = Deliver("push", "p-1", Push("x$(touch${IFS}/tmp/pwned)`id`'q"));
  // Not a valid ref: the submission is refused, recorded, and nothing runs.
  auto bad_ref = Deliver("push", "p-2", Push("a..b;rm -rf ~"));
  service_->ProcessDue();
  const auto runs = Runs();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(Outcome(event->id)[0]["result"], "started");
  EXPECT_EQ(runs[0].recipe, "echo 'x$(touch${IFS}/tmp/pwned)`id`'\\''q'");
  EXPECT_EQ(Outcome(bad_ref->id)[0]["result"], "error") << Outcome(bad_ref->id).dump();
}

TEST_F(TriggerServiceTest, ReplayProcessesAStoredEventAgainOnPurpose) {
  Configure(kCiFixer);
  auto event = Deliver("workflow_run", "d-1", WorkflowRunFailure());
  service_->ProcessDue();
  const int64_t run1 = Outcome(event->id)[0]["run_id"];
  ASSERT_TRUE(store_->CancelRun(run1, "stop").ok());
  auto replayed = service_->Replay(event->id);
  ASSERT_TRUE(replayed.ok()) << replayed.status();
  service_->ProcessDue();
  const Json outcome = Outcome(event->id);
  EXPECT_EQ(outcome[0]["result"], "started");
  EXPECT_NE(outcome[0]["run_id"], run1);
  EXPECT_EQ(store_->GetIncoming(event->id)->replays, 1);
  EXPECT_EQ(service_->Replay(999).status().code(), StatusCode::kNotFound);
}

TEST_F(TriggerServiceTest, ScheduleFiresOncePerDueTimeAndMisfiresFollowThePolicy) {
  Configure(R"(
agents:
  once:
    recipe: "true"
    repositories: ["app"]
    triggers: [{schedule: {cron: "*/15 * * * *", misfire: run_once}}]
  skipper:
    recipe: "true"
    repositories: ["other"]
    triggers: [{schedule: {cron: "*/15 * * * *", misfire: skip}}]
)");
  service_->ProcessDue();
  EXPECT_TRUE(Runs().empty());
  clock_.AdvanceMs(15 * 60'000 + 5'000);  // 10:15:05
  service_->ProcessDue();
  service_->ProcessDue();
  EXPECT_EQ(Runs().size(), 2u);
  auto finish_all = [&] {
    for (const auto& run : Runs()) (void)store_->CancelRun(run.id, "done");
  };
  finish_all();  // else the next fires coalesce into the queued runs
  // Down from 10:15:05 to 13:00:30: run_once fires once for 13:00 (within the grace, both do).
  clock_.AdvanceMs(2 * 3'600'000 + 45 * 60'000 + 25'000);
  service_->ProcessDue();
  EXPECT_EQ(Runs().size(), 4u);
  finish_all();
  // Down for an hour past a due time by more than the grace: only run_once fires.
  clock_.AdvanceMs(45 * 60'000 + 90'000);  // 13:46:00
  service_->ProcessDue();
  const auto runs = Runs();
  ASSERT_EQ(runs.size(), 5u);
  EXPECT_EQ(runs[0].repo, "app");
  EXPECT_EQ(runs[0].requested_by, "schedule:once");
  ASSERT_EQ(service_->Schedules().size(), 2u);
  EXPECT_EQ(service_->Schedules()[0].next_due, "2026-12-07T14:00:00+00:00");
}

// A schedule fires exactly once per due time, whenever the process dies: killed right after the
// fire was recorded, or right after its run was submitted, the next process finishes the job.
TEST_F(TriggerServiceTest, AScheduleFiresExactlyOnceAcrossSigkill) {
  constexpr char kYaml[] = R"(
agents:
  nightly:
    recipe: "true"
    repositories: ["app"]
    triggers: [{schedule: {cron: "0 3 * * *", timezone: Europe/Berlin}}]
)";
  for (const char* point : {"fired", "submitted", "processed"}) {
    SCOPED_TRACE(point);
    Configure(kYaml);
    service_->ProcessDue();  // first seen
    // The last iteration's run ended (else this one's fire would coalesce into it).
    for (const auto& run : Runs()) (void)store_->CancelRun(run.id, "done");
    const size_t before = Runs().size();
    clock_.AdvanceMs(24 * 3'600'000);  // past the next 03:00 in Berlin
    service_.reset();
    store_.reset();
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      failpoint_ = [point](std::string_view at) {
        if (at == point) ::kill(::getpid(), SIGKILL);
      };
      Open();
      Configure(kYaml);
      service_->ProcessDue();
      ::_exit(0);  // the failpoint did not kill it: the parent sees 0
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
    failpoint_ = nullptr;
    Open();
    Configure(kYaml);
    service_->ProcessDue();
    service_->ProcessDue();
    EXPECT_EQ(Runs().size(), before + 1);
  }
}

}  // namespace
}  // namespace nightshift::server
