// Workspaces end to end: the real server with 20 runner slots, real repositories, mirrors,
// cached checkouts, prebuilds and sandboxes (root only).

#include <httplib.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "core/json.h"
#include "gtest/gtest.h"
#include "tests/support/server_fixture.h"
#include "tests/support/test_support.h"

namespace nightshift {
namespace {

using testing::Shell;
using testing::ShellQuote;

class WorkspaceEndToEnd : public ::testing::Test, protected testing::ServerFixture {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "workspaces need the sandbox, which needs root";
    ASSERT_TRUE(StartServer(data_dir(), {"--runners", "20", "--log-level", "warn"}));
  }

  std::filesystem::path data_dir() const { return dir_.path() / "data"; }

  void AddRepo(const std::string& name, const std::string& url) {
    Json repo = Api("POST", "/api/v1/repositories", Json{{"name", name}, {"url", url}}.dump());
    ASSERT_EQ(repo.value("name", ""), name) << repo.dump();
  }

  int64_t StartRun(const std::string& repo, const std::string& ref, const std::string& recipe) {
    Json run =
        Api("POST", "/api/v1/runs", Json{{"repo", repo}, {"ref", ref}, {"recipe", recipe}}.dump());
    EXPECT_TRUE(run.contains("id")) << run.dump();
    return run.value("id", int64_t{0});
  }

  std::string Logs(int64_t id) {
    std::string out;
    for (const auto& e : Events(id)) {
      if (e["kind"] == "log") out += e["data"]["line"].get<std::string>() + "\n";
    }
    return out;
  }
};

TEST_F(WorkspaceEndToEnd, TwentyConcurrentRunsShareOneMirrorWithTheirOwnRefsAndWrites) {
  const auto repo = dir_.path() / "app";
  testing::MakeGitRepo(repo, {{"which.txt", "main\n"}});
  for (int i = 0; i < 20; ++i) {
    const std::string branch = "b" + std::to_string(i);
    ASSERT_EQ(Shell("cd " + repo.string() + " && git checkout -q -b " + branch + " main && echo " +
                    branch + " > which.txt && git commit -qam " + branch)
                  .exit_code,
              0);
  }
  AddRepo("app", repo.string());
  std::vector<int64_t> ids;
  for (int i = 0; i < 20; ++i) {
    ids.push_back(StartRun("app", "b" + std::to_string(i),
                           "cat which.txt; echo $NIGHTSHIFT_RUN_ID > mine.txt; sleep 1; "
                           "cat mine.txt; git status --porcelain"));
  }
  for (int i = 0; i < 20; ++i) {
    Json done = WaitFinished(ids[i]);
    ASSERT_EQ(done["state"], "succeeded") << done.dump() << Logs(ids[i]);
    EXPECT_EQ(Logs(ids[i]),
              "b" + std::to_string(i) + "\n" + std::to_string(ids[i]) + "\n?? mine.txt\n");
  }
  EXPECT_EQ(Shell("ls -d " + (data_dir() / "mirrors").string() + "/*.git | wc -l").output, "1\n");
  // The timeline: each phase started and ended with a duration.
  std::vector<std::string> phases;
  for (const auto& e : Events(ids[0])) {
    if (e["kind"] == "phase" && e["data"].contains("duration_ms")) {
      phases.push_back(e["data"]["name"].get<std::string>());
    }
  }
  EXPECT_EQ(phases,
            (std::vector<std::string>{"fetch", "checkout", "environment", "agent", "deliver"}));
}

TEST_F(WorkspaceEndToEnd, PrebuildAheadOfTimeThenRunsReuseIt) {
  const auto repo = dir_.path() / "app";
  testing::MakeGitRepo(repo, {{".nightshift/environment.yml",
                               "setup:\n  - echo SETUP-RAN && mkdir -p deps && echo ok > deps/x\n"
                               "env:\n  APP_MODE: test\n"}});
  AddRepo("app", repo.string());
  auto prebuild = Cli("prebuild app");
  EXPECT_EQ(prebuild.exit_code, 0) << prebuild.output;
  EXPECT_NE(prebuild.output.find("SETUP-RAN"), std::string::npos) << prebuild.output;
  int64_t id = StartRun("app", "", "cat deps/x; echo $APP_MODE; git status --porcelain");
  Json done = WaitFinished(id);
  ASSERT_EQ(done["state"], "succeeded") << done.dump();
  // Setup did not run again, and its products are not the run's changes: git shows nothing
  // untracked and no change request is opened.
  EXPECT_EQ(Logs(id), "ok\ntest\n");
  EXPECT_EQ(done["reason"], "nothing to change");
  bool reused = false;
  for (const auto& e : Events(id)) {
    if (e["kind"] == "environment") reused = e["data"]["prebuild"] == "reused";
  }
  EXPECT_TRUE(reused);
}

TEST_F(WorkspaceEndToEnd, BadInputFailsTheRunWithAClearReason) {
  const auto repo = dir_.path() / "app";
  testing::MakeGitRepo(repo, {{"README", "x\n"}});
  AddRepo("app", repo.string());
  // Registered while it existed, then gone; and a server nobody listens on.
  testing::MakeGitRepo(dir_.path() / "gone", {{"README", "x\n"}});
  AddRepo("gone", (dir_.path() / "gone").string());
  std::filesystem::remove_all(dir_.path() / "gone");
  AddRepo("offline", "https://127.0.0.1:1/nobody/here.git");

  Json unknown_ref = WaitFinished(StartRun("app", "no-such-branch", "true"));
  EXPECT_EQ(unknown_ref["state"], "failed");
  EXPECT_EQ(unknown_ref["reason"], "unknown ref 'no-such-branch' in repository app");

  Json unreachable = WaitFinished(StartRun("gone", "", "true"));
  EXPECT_EQ(unreachable["state"], "failed");
  EXPECT_NE(unreachable["reason"].get<std::string>().find("cannot fetch"), std::string::npos)
      << unreachable.dump();
  Json offline = WaitFinished(StartRun("offline", "", "true"));
  EXPECT_EQ(offline["state"], "failed");
  EXPECT_NE(offline["reason"].get<std::string>().find("cannot fetch https://127.0.0.1:1/"),
            std::string::npos)
      << offline.dump();

  testing::CommitFiles(repo, {{".nightshift/environment.yml", "setup: [true]\nbogus: 1\n"}},
                       "bad env");
  Json bad_env = WaitFinished(StartRun("app", "", "true"));
  EXPECT_EQ(bad_env["state"], "failed");
  EXPECT_NE(
      bad_env["reason"].get<std::string>().find("environment: .nightshift/environment.yml:2:"),
      std::string::npos)
      << bad_env.dump();

  auto cli = Cli("prebuild nope");
  EXPECT_EQ(cli.exit_code, 1);
  EXPECT_EQ(std::count(cli.output.begin(), cli.output.end(), '\n'), 1) << cli.output;

  // Nothing half-built is left in the cache.
  EXPECT_EQ(Shell("ls -A " + (data_dir() / "cache/tmp").string()).output, "");
}

}  // namespace
}  // namespace nightshift
