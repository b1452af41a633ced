// Repositories' own agents read from real mirrors of real git repositories in a temp dir: the
// default branch's file, a broken or hostile file leaving the last good agents in force, and
// the trigger service starting a repository's agent on that repository only. No root.

#include "server/repository_agents.h"

#include "core/fs.h"
#include "gtest/gtest.h"
#include "server/trigger_service.h"
#include "store/sqlite_store.h"
#include "tests/support/test_support.h"

namespace nightshift::server {
namespace {

using testing::Shell;
using testing::ShellQuote;

constexpr char kNightly[] = R"(
agents:
  nightly:
    recipe: "echo nightly {{event.due}}"
    triggers:
      - schedule: {cron: "0 3 * * *", timezone: Europe/Berlin}
  on-push:
    recipe: "echo pushed {{event.branch}}"
    triggers:
      - github: {event: push}
)";

class RepositoryAgentsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::OpenSqliteStore(dir_.path() / "db", clock_);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    testing::MakeGitRepo(work(), {{"README", "app\n"}});
    ASSERT_TRUE(store_->AddRepository("app", work().string()).ok());
    agents_ = std::make_unique<RepositoryAgents>(
        *store_, RepositoryAgentsOptions{
                     .data_dir = dir_.path() / "data", .tick_ms = 20, .min_fetch_interval_ms = 0});
  }

  std::filesystem::path work() const { return dir_.path() / "work"; }

  std::string Commit(const std::map<std::string, std::string>& files) {
    return testing::CommitFiles(work(), files, "change");
  }

  triggers::RepositoryAgentsFile Refresh() {
    auto file = agents_->RefreshNow("app");
    EXPECT_TRUE(file.ok()) << file.status();
    return file.ok() ? *file : triggers::RepositoryAgentsFile{};
  }

  static std::vector<std::string> Names(const triggers::RepositoryAgentsFile& file) {
    std::vector<std::string> names;
    for (const auto& agent : file.agents) names.push_back(agent.name);
    return names;
  }

  testing::TempDir dir_;
  FakeClock clock_{1'796'637'600'000};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<RepositoryAgents> agents_;
};

TEST_F(RepositoryAgentsTest, TheDefaultBranchsFileIsReadAndFollowsItsCommits) {
  EXPECT_TRUE(Refresh().agents.empty());
  const std::string first = Commit({{".nightshift/agents.yml", kNightly}});
  triggers::RepositoryAgentsFile file = Refresh();
  EXPECT_EQ(file.commit, first);
  EXPECT_EQ(Names(file), (std::vector<std::string>{"app/nightly", "app/on-push"}));
  EXPECT_TRUE(file.errors.empty());

  // Another branch's file is not read.
  ASSERT_EQ(Shell("cd " + ShellQuote(work().string()) +
                  " && git checkout -qb other && mkdir -p .nightshift && printf 'agents: {}\\n' > "
                  ".nightshift/agents.yml && git commit -qam other && git checkout -q main")
                .exit_code,
            0);
  EXPECT_EQ(Names(Refresh()).size(), 2u);

  // Deleted on the default branch: no agents.
  ASSERT_EQ(Shell("cd " + ShellQuote(work().string()) +
                  " && git rm -q .nightshift/agents.yml && git commit -qm gone")
                .exit_code,
            0);
  EXPECT_TRUE(Refresh().agents.empty());
}

TEST_F(RepositoryAgentsTest, ABrokenOrHostileFileLeavesTheLastGoodAgentsInForce) {
  const std::string good = Commit({{".nightshift/agents.yml", kNightly}});
  ASSERT_EQ(Names(Refresh()).size(), 2u);
  const struct {
    std::string shell;  // makes the commit, in the work tree
    std::string error;
  } cases[] = {
      {"printf 'agents: {a: [\\n' > .nightshift/agents.yml", "app:.nightshift/agents.yml:"},
      {"rm .nightshift/agents.yml && ln -s /etc/passwd .nightshift/agents.yml",
       "not a regular file (a symlink, not followed)"},
      {"rm -r .nightshift && ln -s /etc .nightshift",
       ".nightshift is not a directory (a symlink or a file is not followed)"},
      {"rm -r .nightshift && mkdir -p .nightshift/agents.yml && touch .nightshift/agents.yml/x",
       "not a regular file (a directory"},
      {"head -c 70000 /dev/zero | tr '\\0' '#' > .nightshift/agents.yml", "70000 bytes"},
  };
  for (const auto& c : cases) {
    ASSERT_EQ(
        Shell("cd " + ShellQuote(work().string()) + " && rm -rf .nightshift && git checkout -q " +
              good + " -- .nightshift && " + c.shell + " && git add -A && git commit -qm bad")
            .exit_code,
        0)
        << c.shell;
    const std::string bad =
        Shell("git -C " + ShellQuote(work().string()) + " rev-parse HEAD").output.substr(0, 40);
    triggers::RepositoryAgentsFile file = Refresh();
    EXPECT_EQ(file.commit, good) << c.shell;
    EXPECT_EQ(file.failed_commit, bad) << c.shell;
    EXPECT_EQ(Names(file).size(), 2u) << c.shell;
    ASSERT_FALSE(file.errors.empty()) << c.shell;
    EXPECT_NE(file.errors[0].find(c.error), std::string::npos) << c.shell << ": " << file.errors[0];
  }
  // Fixed: the new file's agents.
  ASSERT_EQ(Shell("cd " + ShellQuote(work().string()) +
                  " && rm -rf .nightshift && git add -A && git commit -qm clean")
                .exit_code,
            0);
  const std::string fixed = Commit({{".nightshift/agents.yml",
                                     "agents:\n  one: {recipe: x, triggers: [{github: {event: "
                                     "push}}]}\n"}});
  triggers::RepositoryAgentsFile file = Refresh();
  EXPECT_EQ(file.commit, fixed);
  EXPECT_TRUE(file.errors.empty());
  EXPECT_EQ(Names(file), std::vector<std::string>{"app/one"});
}

TEST_F(RepositoryAgentsTest, TheThreadReadsNewRepositoriesAndPushedOnesWithoutBeingAsked) {
  Commit({{".nightshift/agents.yml", kNightly}});
  agents_->Start();
  auto wait_for = [&](size_t count) {
    for (int i = 0; i < 500; ++i) {
      auto current = agents_->Current();
      auto it = current->find("app");
      if (it != current->end() && it->second.agents.size() == count) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  };
  EXPECT_TRUE(wait_for(2));  // a repository not read yet is read at once
  Commit({{".nightshift/agents.yml",
           "agents:\n  one: {recipe: x, triggers: [{github: {event: push}}]}\n"}});
  agents_->Refresh("app");  // as a push webhook does (refresh_seconds is 300)
  EXPECT_TRUE(wait_for(1));
  // A repository removed: its agents go.
  ASSERT_TRUE(store_->RemoveRepository("app").ok());
  bool gone = false;
  for (int i = 0; i < 500 && !gone; ++i) {
    gone = !agents_->Current()->contains("app");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(gone);
  agents_->Stop();
}

TEST_F(RepositoryAgentsTest, ABurstOfPushesCostsOneFetchPerInterval) {
  Commit({{".nightshift/agents.yml", kNightly}});
  RepositoryAgents agents(*store_, RepositoryAgentsOptions{.data_dir = dir_.path() / "data",
                                                           .tick_ms = 5,
                                                           .min_fetch_interval_ms = 60'000});
  agents.Start();
  for (int i = 0; i < 500 && !agents.Current()->contains("app"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(agents.Current()->at("app").agents.size(), 2u);
  // A new file pushed, and a flood of push webhooks: none is fetched within the interval.
  Commit({{".nightshift/agents.yml",
           "agents:\n  one: {recipe: x, triggers: [{github: {event: push}}]}\n"}});
  for (int i = 0; i < 200; ++i) {
    agents.Refresh("app");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(agents.Current()->at("app").agents.size(), 2u);
  agents.Stop();
}

TEST_F(RepositoryAgentsTest, LoadLocalReadsTheMirrorAsItIsWithoutFetching) {
  Commit({{".nightshift/agents.yml", kNightly}});
  agents_->LoadLocal();  // no mirror yet: nothing, and no fetch
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "data" / "mirrors"));
  ASSERT_EQ(Names(Refresh()).size(), 2u);
  RepositoryAgents restarted(*store_, RepositoryAgentsOptions{.data_dir = dir_.path() / "data"});
  restarted.LoadLocal();
  ASSERT_TRUE(restarted.Current()->contains("app"));
  EXPECT_EQ(restarted.Current()->at("app").agents.size(), 2u);
}

TEST_F(RepositoryAgentsTest, TheTriggerServiceStartsARepositorysAgentOnThatRepositoryOnly) {
  Commit({{".nightshift/agents.yml", kNightly}});
  ASSERT_EQ(Names(Refresh()).size(), 2u);
  ASSERT_TRUE(store_->AddRepository("other", "https://github.com/acme/other.git").ok());
  forge::BuiltinForge forge(*store_, forge::Identity{});
  RunService runs(*store_, forge, RunCapabilities{.sandbox = true, .models = {"default"}});
  std::vector<std::string> pushed;
  TriggerOptions options;
  options.repository_agents = [this] { return agents_->Current(); };
  options.repository_pushed = [&pushed](const std::string& repo) { pushed.push_back(repo); };
  // Its forge name, for the webhooks: the test's work tree stands for github.com/acme/app.
  options.forge_names = {{"app", "acme/app"}};
  TriggerService service(*store_, runs, std::move(options), clock_);

  auto push = [&](const std::string& repo, const std::string& delivery) {
    Json body{{"ref", "refs/heads/main"},
              {"after", "acb5820ced9479c074f688cc328bf03f341a511d"},
              {"repository", {{"full_name", repo}}},
              {"sender", {{"login", "mona"}}}};
    auto stored = service.Accept(
        {.source = "github", .delivery = delivery, .type = "push", .body = body.dump()});
    EXPECT_TRUE(stored.ok()) << stored.status();
    service.ProcessDue();
    auto event = store_->GetIncoming(stored->id);
    return Json::parse(event->outcome);
  };
  Json outcome = push("acme/app", "d1");
  ASSERT_EQ(outcome.size(), 1u) << outcome.dump();
  EXPECT_EQ(outcome[0]["result"], "started") << outcome.dump();
  EXPECT_EQ(outcome[0]["agent"], "app/on-push");
  EXPECT_EQ(pushed, std::vector<std::string>{"app"});
  auto run = store_->GetRun(outcome[0]["run_id"]);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->requested_by, "trigger:app/on-push");
  EXPECT_EQ(run->recipe, "echo pushed 'main'");  // values shell-quoted

  // The same event on another repository: not this agent's.
  EXPECT_EQ(push("acme/other", "d2")[0]["result"], "no_matching_agent");

  // Its schedule is listed, and fires on its repository only.
  bool listed = false;
  for (const ScheduleInfo& s : service.Schedules()) {
    listed = listed || (s.agent == "app/nightly" && s.timezone == "Europe/Berlin");
  }
  EXPECT_TRUE(listed);
  service.ProcessDue();                // first seen: due times from now on
  clock_.AdvanceMs(24 * 3600 * 1000);  // past 03:00 Berlin
  service.ProcessDue();
  auto all = store_->ListRuns({.limit = 50});
  ASSERT_TRUE(all.ok());
  int nightly = 0;
  for (const store::Run& r : *all) {
    if (r.requested_by == "schedule:app/nightly") {
      ++nightly;
      EXPECT_EQ(r.repo, "app");
    }
  }
  EXPECT_EQ(nightly, 1);
}

}  // namespace
}  // namespace nightshift::server
