// The review gate end to end, on local bare repositories: a run's changes become a change
// request on its own branch, with the right diff and trailer; a person approves and merges it
// onto main; a run touching a protected path is blocked and pushes nothing; a comment starts a
// follow-up run that updates the same branch; a conflicting merge is reported, not forced.

#include <httplib.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <mutex>
#include <thread>

#include "core/fs.h"
#include "core/json.h"
#include "gtest/gtest.h"
#include "tests/support/server_fixture.h"
#include "tests/support/test_support.h"

namespace nightshift {
namespace {

using testing::Shell;
using testing::ShellQuote;

class ForgeEndToEnd : public ::testing::Test, protected testing::ServerFixture {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "delivery needs the sandbox, which needs root";
    testing::MakeGitRepo(dir_.path() / "work", {{"version.txt", "1\n"}, {"README", "app\n"}});
    origin_ = dir_.path() / "origin.git";
    ASSERT_EQ(
        Shell("git clone -q --bare " + (dir_.path() / "work").string() + " " + origin_.string())
            .exit_code,
        0);
    ASSERT_TRUE(StartServer(dir_.path() / "data", {"--log-level", "warn"}));
    Json repo = Api("POST", "/api/v1/repositories",
                    Json{{"name", "app"}, {"url", origin_.string()}}.dump());
    ASSERT_EQ(repo.value("name", ""), "app") << repo.dump();
  }

  Json RunAndWait(const std::string& recipe, const std::string& ref = "main") {
    Json run =
        Api("POST", "/api/v1/runs", Json{{"repo", "app"}, {"ref", ref}, {"recipe", recipe}}.dump());
    return WaitFinished(run.value("id", int64_t{0}));
  }

  Json ChangeRequestOf(int64_t run_id) {
    for (const Json& e : Events(run_id, 1000)) {
      if (e["kind"] == "change_request") {
        return Api("GET",
                   "/api/v1/change-requests/" + std::to_string(e["data"]["id"].get<int64_t>()));
      }
    }
    return Json();
  }

  std::string Origin(const std::string& args) {
    return Shell("git -C " + origin_.string() + " " + args).output;
  }

  std::filesystem::path origin_;
};

TEST_F(ForgeEndToEnd, RunToChangeRequestToApprovalToMergeOnMain) {
  const std::string main_before = Origin("rev-parse main");
  Json run = RunAndWait("echo 2 > version.txt");
  ASSERT_EQ(run["state"], "succeeded") << run.dump();
  Json cr = ChangeRequestOf(run["id"]);
  ASSERT_TRUE(cr.is_object()) << run.dump();
  const std::string branch = "nightshift/recipe/" + std::to_string(run["id"].get<int64_t>());
  EXPECT_EQ(cr["branch"], branch);
  EXPECT_EQ(cr["base_branch"], "main");
  EXPECT_EQ(cr["state"], "open");
  const std::string diff = cr["diff"];
  EXPECT_NE(diff.find("-1\n+2\n"), std::string::npos) << diff;
  // The branch is in origin, committed by the platform with the trailer; main is untouched.
  EXPECT_EQ(Origin("rev-parse " + branch), cr["head_commit"].get<std::string>() + "\n");
  EXPECT_NE(Origin("log -1 --format=%B " + branch)
                .find("Nightshift-Run: " + std::to_string(run["id"].get<int64_t>())),
            std::string::npos);
  EXPECT_EQ(Origin("log -1 --format=%an " + branch), "Nightshift\n");
  EXPECT_EQ(Origin("rev-parse main"), main_before);

  // Nothing merges without a person's approval.
  const std::string id = std::to_string(cr["id"].get<int64_t>());
  auto early = Cli("cr merge " + id);
  EXPECT_EQ(early.exit_code, 1);
  EXPECT_NE(early.output.find("not approved"), std::string::npos) << early.output;
  EXPECT_EQ(Cli("cr approve " + id).output, "change request " + id + " open (approved)\n");
  EXPECT_EQ(Cli("cr merge " + id).output, "change request " + id + " merged (approved)\n");
  EXPECT_EQ(Origin("show main:version.txt"), "2\n");
  EXPECT_EQ(Cli("cr list --state merged").exit_code, 0);
  EXPECT_EQ(Cli("cr diff " + id).output, diff);
}

TEST_F(ForgeEndToEnd, AProtectedPathBlocksTheRunAndNothingIsPushed) {
  Json run = RunAndWait("mkdir -p .github/workflows && echo 'on: push' > .github/workflows/ci.yml");
  EXPECT_EQ(run["state"], "blocked_by_policy") << run.dump();
  EXPECT_EQ(run["reason"],
            "blocked by policy: changes a protected path: .github/workflows/ci.yml "
            "(.github/workflows/**)");
  EXPECT_EQ(Origin("for-each-ref refs/heads/nightshift"), "");
  EXPECT_TRUE(ChangeRequestOf(run["id"]).is_null());
}

TEST_F(ForgeEndToEnd, NoChangesNoChangeRequest) {
  Json run = RunAndWait("cat version.txt");
  EXPECT_EQ(run["state"], "succeeded");
  EXPECT_EQ(run["reason"], "nothing to change");
  EXPECT_EQ(Origin("for-each-ref refs/heads/nightshift"), "");
}

TEST_F(ForgeEndToEnd, ACommentStartsAFollowUpThatUpdatesTheSameBranch) {
  Json run = RunAndWait("echo 2 > version.txt");
  Json cr = ChangeRequestOf(run["id"]);
  ASSERT_TRUE(cr.is_object());
  const std::string id = std::to_string(cr["id"].get<int64_t>());
  ASSERT_EQ(Cli("cr approve " + id).exit_code, 0);
  int status = 0;
  Json comment = Api("POST", "/api/v1/change-requests/" + id + "/comments",
                     Json{{"body", "/nightshift echo notes > NOTES"}}.dump(), &status);
  ASSERT_EQ(status, 201) << comment.dump();
  ASSERT_TRUE(comment["follow_up_run"].is_number()) << comment.dump();
  Json follow = WaitFinished(comment["follow_up_run"]);
  ASSERT_EQ(follow["state"], "succeeded") << follow.dump();
  Json updated = Api("GET", "/api/v1/change-requests/" + id);
  EXPECT_EQ(updated["branch"], cr["branch"]);
  EXPECT_NE(updated["head_commit"], cr["head_commit"]);
  EXPECT_EQ(updated["review"], "pending");  // new commits need a new approval
  const std::string diff = updated["diff"];
  EXPECT_NE(diff.find("+2"), std::string::npos) << diff;
  EXPECT_NE(diff.find("+notes"), std::string::npos) << diff;
  EXPECT_EQ(Origin("rev-parse " + cr["branch"].get<std::string>()),
            updated["head_commit"].get<std::string>() + "\n");
  EXPECT_EQ(updated["comments"].size(), 1u);
  // A plain comment starts nothing.
  Json plain = Api("POST", "/api/v1/change-requests/" + id + "/comments",
                   Json{{"body", "looks good"}}.dump(), &status);
  EXPECT_TRUE(plain["follow_up_run"].is_null());
}

TEST_F(ForgeEndToEnd, AConflictIsReportedNotForced) {
  Json run = RunAndWait("echo agent > version.txt");
  Json cr = ChangeRequestOf(run["id"]);
  ASSERT_TRUE(cr.is_object());
  // Meanwhile someone changes the same line on main.
  const auto clone = dir_.path() / "human";
  ASSERT_EQ(
      Shell("git clone -q " + origin_.string() + " " + clone.string() + " && cd " + clone.string() +
            " && echo human > version.txt && git -c user.name=h "
            "-c user.email=h@h commit -qam human && git push -q origin main")
          .exit_code,
      0);
  const std::string main_before = Origin("rev-parse main");
  const std::string id = std::to_string(cr["id"].get<int64_t>());
  ASSERT_EQ(Cli("cr approve " + id).exit_code, 0);
  auto merge = Cli("cr merge " + id);
  EXPECT_EQ(merge.exit_code, 1);
  EXPECT_NE(merge.output.find("merge conflict with main in: version.txt"), std::string::npos)
      << merge.output;
  EXPECT_EQ(Origin("rev-parse main"), main_before);
  EXPECT_EQ(Api("GET", "/api/v1/change-requests/" + id)["state"], "open");
}

TEST_F(ForgeEndToEnd, BadRequestsGetAClearAnswer) {
  int status = 0;
  Json missing = Api("GET", "/api/v1/change-requests/999", "", &status);
  EXPECT_EQ(status, 404);
  Json bad_state = Api("GET", "/api/v1/change-requests?state=weird", "", &status);
  EXPECT_EQ(status, 400);
  Json empty =
      Api("POST", "/api/v1/change-requests/999/comments", Json{{"body", ""}}.dump(), &status);
  EXPECT_EQ(status, 400);
  auto cli = Cli("cr approve 999");
  EXPECT_EQ(cli.exit_code, 1);
  EXPECT_EQ(std::count(cli.output.begin(), cli.output.end(), '\n'), 1) << cli.output;
}

// The README's tour: the repository is a plain `git init` with main checked out. Merging lands
// on its main and, its working tree being clean, in the working tree too; with local edits in
// the way, the merge is refused with git's whole reason and nothing changes.
TEST(ForgeNonBare, MergingIntoANonBareRepositoryUpdatesItsCheckedOutBranch) {
  if (::geteuid() != 0) GTEST_SKIP() << "delivery needs the sandbox, which needs root";
  testing::TempDir dir;
  const auto demo = dir.path() / "demo";
  testing::MakeGitRepo(demo, {{"README.md", "hello\n"}});
  testing::ServerProcess server(dir.path() / "data", {"--log-level", "warn"});
  ASSERT_TRUE(server.Start()) << server.error();
  auto cli = [&](const std::string& args) {
    return Shell("NIGHTSHIFT_SERVER=" + server.url() +
                 " NIGHTSHIFT_DATA_DIR=" + ShellQuote(server.data_dir().string()) + " " +
                 ShellQuote(testing::NightshiftBin()) + " " + args);
  };
  ASSERT_EQ(cli("repo add demo " + ShellQuote(demo.string())).exit_code, 0);
  auto run = cli("run --repo demo --recipe 'echo \"hello, world\" > README.md' --follow");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  ASSERT_EQ(cli("cr approve 1").exit_code, 0);
  auto merged = cli("cr merge 1");
  ASSERT_EQ(merged.exit_code, 0) << merged.output;
  EXPECT_EQ(Shell("git -C " + ShellQuote(demo.string()) + " show main:README.md").output,
            "hello, world\n");
  EXPECT_EQ(*ReadFile(demo / "README.md"), "hello, world\n");  // the clean worktree followed

  // A second change request, and local edits in the way.
  ASSERT_EQ(cli("run --repo demo --recipe 'echo again > README.md' --follow").exit_code, 0);
  ASSERT_EQ(cli("cr approve 2").exit_code, 0);
  std::ofstream(demo / "README.md") << "my local edit\n";
  auto refused = cli("cr merge 2");
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_EQ(std::count(refused.output.begin(), refused.output.end(), '\n'), 1) << refused.output;
  // git's whole reason: why the branch could not be updated, not just "failed to push".
  EXPECT_NE(refused.output.find("failed to push"), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find("; "), std::string::npos) << refused.output;
  EXPECT_EQ(*ReadFile(demo / "README.md"), "my local edit\n");
}

// A repository linked to a GitHub project: the change request is also opened there as a draft
// pull request with its labels (a loopback server plays GitHub and records what it gets).
TEST(ForgeGitHubLink, TheChangeRequestIsAlsoOpenedAsAPullRequest) {
  if (::geteuid() != 0) GTEST_SKIP() << "delivery needs the sandbox, which needs root";
  testing::TempDir dir;
  testing::MakeGitRepo(dir.path() / "work", {{"version.txt", "1\n"}});
  const auto origin = dir.path() / "origin.git";
  ASSERT_EQ(Shell("git clone -q --bare " + (dir.path() / "work").string() + " " + origin.string())
                .exit_code,
            0);
  httplib::Server github;
  std::mutex mu;
  std::vector<std::string> requests;
  github.Post(R"(/repos/acme/app/pulls)", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mu);
    requests.push_back("POST " + req.path + " " + req.get_header_value("Authorization") + " " +
                       req.body);
    res.status = 201;
    res.set_content(R"({"number": 7, "html_url": "https://github.test/acme/app/pull/7"})",
                    "application/json");
  });
  github.Post(R"(/repos/acme/app/issues/7/labels)",
              [&](const httplib::Request& req, httplib::Response& res) {
                std::lock_guard lock(mu);
                requests.push_back("POST " + req.path + " " + req.body);
                res.set_content("[]", "application/json");
              });
  const int port = github.bind_to_any_port("127.0.0.1");
  std::thread serving([&] { github.listen_after_bind(); });
  while (!github.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::ofstream(dir.path() / "nightshift.yml")
      << "forges:\n  app:\n    type: github\n    api_url: http://127.0.0.1:" << port
      << "\n    project: acme/app\n    token_env: FAKE_GITHUB_TOKEN\n    labels: [bot]\n";
  ::setenv("FAKE_GITHUB_TOKEN", "ghs_faketoken", 1);
  testing::ServerProcess server(
      dir.path() / "data",
      {"--config", (dir.path() / "nightshift.yml").string(), "--log-level", "warn"});
  ASSERT_TRUE(server.Start()) << server.error();
  httplib::Client api("127.0.0.1", server.port());
  api.set_bearer_token_auth(server.token());
  ASSERT_EQ(api.Post("/api/v1/repositories", Json{{"name", "app"}, {"url", origin.string()}}.dump(),
                     "application/json")
                ->status,
            201);
  auto created =
      api.Post("/api/v1/runs", Json{{"repo", "app"}, {"recipe", "echo 2 > version.txt"}}.dump(),
               "application/json");
  const int64_t id = Json::parse(created->body)["id"];
  Json run;
  for (int i = 0; i < 600; ++i) {
    run = Json::parse(api.Get("/api/v1/runs/" + std::to_string(id))->body);
    if (run["state"] != "queued" && run["state"] != "preparing" && run["state"] != "running") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(run["state"], "succeeded") << run.dump();
  Json crs = Json::parse(api.Get("/api/v1/change-requests")->body)["change_requests"];
  ASSERT_EQ(crs.size(), 1u);
  EXPECT_EQ(crs[0]["remote_url"], "https://github.test/acme/app/pull/7");
  github.stop();
  serving.join();
  ASSERT_EQ(requests.size(), 2u);
  Json pull = Json::parse(requests[0].substr(requests[0].find('{')));
  EXPECT_EQ(requests[0].rfind("POST /repos/acme/app/pulls Bearer ghs_faketoken ", 0), 0u);
  EXPECT_EQ(pull["head"], "nightshift/recipe/" + std::to_string(id));
  EXPECT_EQ(pull["base"], "main");
  EXPECT_EQ(pull["draft"], true);
  EXPECT_EQ(requests[1], R"(POST /repos/acme/app/issues/7/labels {"labels":["bot"]})");
}

}  // namespace
}  // namespace nightshift
