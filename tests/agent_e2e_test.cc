// The built-in agent end to end: the real server configured with a model that is the scripted
// model server (tests/support/model_server.h), for both providers. A repository whose test
// fails; the model runs the test, reads the code, fixes it, runs the test again and finishes;
// the run succeeds and its diff is the fix.

#include <httplib.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "core/json.h"
#include "gtest/gtest.h"
#include "tests/support/model_server.h"
#include "tests/support/server_fixture.h"
#include "tests/support/test_support.h"

namespace nightshift {
namespace {

using testing::Shell;
using testing::ShellQuote;

class AgentEndToEnd : public ::testing::TestWithParam<std::string>,
                      protected testing::ServerFixture {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "agent runs need the sandbox, which needs root";
    testing::MakeGitRepo(dir_.path() / "calc",
                         {{"calc.sh", "add() { echo $(( $1 - $2 )); }\n"},
                          {"test.sh",
                           ". ./calc.sh\n[ \"$(add 2 3)\" = 5 ] && echo 'tests passed' || "
                           "{ echo \"FAIL: add 2 3 = $(add 2 3)\"; exit 1; }\n"},
                          {"AGENTS.md", "Run the tests with: sh test.sh\n"}});
  }

  void Start(const std::string& scenario, const std::string& extra_config = "") {
    auto script =
        testing::ModelServer::LoadScenario(std::filesystem::path(SCENARIOS_DIR) / scenario);
    ASSERT_TRUE(script.ok()) << script.status();
    model_ = std::make_unique<testing::ModelServer>(*script);
    ASSERT_TRUE(model_->ok());
    const bool openai = GetParam() == "openai";
    std::ofstream(dir_.path() / "nightshift.yml")
        << "models:\n  default:\n    provider: " << GetParam()
        << "\n    base_url: " << (openai ? model_->openai_base_url() : model_->anthropic_base_url())
        << "\n    model: scripted-1\n    api_key_env: SCRIPTED_KEY\n"
           "    input_cost_per_mtok: 3\n    output_cost_per_mtok: 15\n"
           "    retry_base_ms: 10\n    max_retries: 2\n"
        << extra_config;
    ::setenv("SCRIPTED_KEY", "scripted-secret-key", 1);
    ASSERT_TRUE(StartServer(
        dir_.path() / "data",
        {"--config", (dir_.path() / "nightshift.yml").string(), "--log-level", "warn"}));
    Json repo = Api("POST", "/api/v1/repositories",
                    Json{{"name", "calc"}, {"url", (dir_.path() / "calc").string()}}.dump());
    ASSERT_EQ(repo.value("name", ""), "calc") << repo.dump();
  }

  Json EventOf(int64_t id, const std::string& kind) {
    Json found;
    for (const Json& e : Events(id, 1000)) {
      if (e["kind"] == kind) found = e["data"];
    }
    return found;
  }

  std::unique_ptr<testing::ModelServer> model_;
};

TEST_P(AgentEndToEnd, TheAgentFixesTheFailingTestAndTheDiffIsTheFix) {
  Start("fix_add.json");
  auto cli = Cli("run --repo calc --task 'Make sh test.sh pass.' --follow");
  EXPECT_EQ(cli.exit_code, 0) << cli.output;
  for (const auto& e : model_->errors()) ADD_FAILURE() << "model server: " << e;
  EXPECT_EQ(model_->steps_served(), 5);
  // The repository's own instructions reached the model.
  ASSERT_FALSE(model_->requests().empty());
  EXPECT_NE(model_->requests().front().dump().find("Run the tests with: sh test.sh"),
            std::string::npos);

  Json runs = Api("GET", "/api/v1/runs?repo=calc");
  const int64_t id = runs["runs"][0]["id"];
  Json run = WaitFinished(id);
  EXPECT_EQ(run["state"], "succeeded") << run.dump();
  EXPECT_EQ(run["kind"], "agent");
  Json result = EventOf(id, "result");
  EXPECT_EQ(result["summary"], "Fixed add() in calc.sh (it subtracted); sh test.sh passes.");
  const std::string diff = result.value("diff", "");
  EXPECT_NE(diff.find("-add() { echo $(( $1 - $2 )); }"), std::string::npos) << diff;
  EXPECT_NE(diff.find("+add() { echo $(( $1 + $2 )); }"), std::string::npos) << diff;
  EXPECT_EQ(result["files"].size(), 1u) << result.dump();
  Json end = EventOf(id, "agent_end");
  EXPECT_EQ(end["steps"], 5);
  EXPECT_EQ(end["input_tokens"], 7700);
  // The transcript is in the log, and the API key never is.
  auto logs = Cli("logs " + std::to_string(id));
  EXPECT_NE(logs.output.find("edit_file"), std::string::npos) << logs.output;
  auto all = Api("GET", "/api/v1/runs/" + std::to_string(id) + "/events?format=json&limit=1000");
  EXPECT_EQ(all.dump().find("scripted-secret-key"), std::string::npos);
}

TEST_P(AgentEndToEnd, AnApiThatStaysDownFailsTheRunWithTheReason) {
  Start("api_down.json");
  Json run = Api("POST", "/api/v1/runs", Json{{"repo", "calc"}, {"task", "anything"}}.dump());
  Json done = WaitFinished(run["id"]);
  EXPECT_EQ(done["state"], "failed");
  EXPECT_EQ(done["reason"], "model API: HTTP 500: internal error (after 3 attempts)");
}

// An agent that hits its budget stops cleanly: its work so far becomes a draft change request
// marked so, and the run fails with the reason and where the work is.
TEST_P(AgentEndToEnd, AnAgentStoppedAtItsBudgetLeavesADraftChangeRequest) {
  Start("budget.json", "agent:\n  max_steps: 3\n");
  int status = 0;
  Json run = Api("POST", "/api/v1/runs",
                 Json{{"repo", "calc"}, {"task", "Keep notes forever."}}.dump(), &status);
  ASSERT_EQ(status, 201) << run.dump();
  const int64_t id = run.value("id", int64_t{0});
  Json done = WaitFinished(id);
  EXPECT_EQ(done.value("state", ""), "failed") << done.dump();
  EXPECT_NE(done.value("reason", "")
                .find("the agent stopped: step budget of 3 used up; its work "
                      "so far is in draft change request 1"),
            std::string::npos)
      << done.dump();
  Json cr = Api("GET", "/api/v1/change-requests/1");
  EXPECT_EQ(cr.value("title", "").rfind("[draft: stopped at budget] Keep notes forever.", 0), 0u)
      << cr.dump();
  EXPECT_NE(cr.dump().find("**Draft: stopped at budget.** The agent stopped before it finished "
                           "(step budget of 3 used up)"),
            std::string::npos)
      << cr.dump();
  EXPECT_NE(cr.dump().find("+step 1"), std::string::npos) << cr.dump();
  EXPECT_NE(cr.dump().find("+step 3"), std::string::npos) << cr.dump();
}

TEST_P(AgentEndToEnd, BadRequestsAreRefusedWithAReason) {
  Start("fix_add.json");
  int status = 0;
  Json unknown = Api("POST", "/api/v1/runs",
                     Json{{"repo", "calc"}, {"task", "x"}, {"model", "gpt-9"}}.dump(), &status);
  EXPECT_EQ(status, 400);
  EXPECT_EQ(unknown["error"]["message"], "unknown model 'gpt-9' (configured: default)");
  Json both = Api("POST", "/api/v1/runs",
                  Json{{"repo", "calc"}, {"task", "x"}, {"recipe", "true"}}.dump(), &status);
  EXPECT_EQ(status, 400);
  auto cli = Cli("run --repo calc");
  EXPECT_EQ(cli.exit_code, 2);
  EXPECT_EQ(cli.output, "nightshift: run needs --recipe CMD or --task TEXT\n");
}

INSTANTIATE_TEST_SUITE_P(Providers, AgentEndToEnd, ::testing::Values("openai", "anthropic"),
                         [](const auto& info) { return info.param; });

TEST(AgentServerConfig, AMissingKeyOrBadFileStopsTheServerWithOneLine) {
  testing::TempDir dir;
  std::ofstream(dir.path() / "bad.yml") << "models:\n  default:\n    provider: openai\n    model: "
                                           "m\n    api_key_env: NO_SUCH_KEY_VAR\n";
  auto r = Shell(ShellQuote(testing::NightshiftBin()) + " serve --listen 127.0.0.1:0 --data-dir " +
                 (dir.path() / "data").string() + " --config " + (dir.path() / "bad.yml").string() +
                 " 2>&1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.output, "nightshift: " + (dir.path() / "bad.yml").string() +
                          ":5:18: models.default.api_key_env: the environment variable "
                          "NO_SUCH_KEY_VAR is not set\n");
}

}  // namespace
}  // namespace nightshift
