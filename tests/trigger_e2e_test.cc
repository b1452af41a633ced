// Triggers end to end: the real `nightshift serve` with a config of agents and webhooks, signed
// deliveries over loopback HTTP, a fake GitHub API for the failed jobs' logs, a real git
// repository, and the CLI. Runs as plain processes (--sandbox off), so it needs no root.

#include <httplib.h>
#include <stdlib.h>

#include <ctime>
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

constexpr char kSecret[] = "It's a Secret to Everybody";

// HMAC-SHA256 of `body` in hex, by OpenSSL (not by the code under test).
std::string Sign(const std::filesystem::path& dir, const std::string& body,
                 const std::string& secret = kSecret) {
  const auto file = dir / "body";
  EXPECT_TRUE(WriteFileAtomic(file, body, 0600).ok());
  auto out = Shell("openssl dgst -sha256 -hmac " + ShellQuote(secret) + " -r < " +
                   ShellQuote(file.string()));
  return out.output.substr(0, 64);
}

class TriggersEndToEnd : public ::testing::Test, protected testing::ServerFixture {
 protected:
  void SetUp() override {
    // The fake GitHub API: the failed jobs of workflow run 30433642 and one job's log.
    github_.Get("/repos/acme/app/actions/runs/30433642/jobs",
                [](const httplib::Request&, httplib::Response& res) {
                  Json jobs{{"total_count", 2},
                            {"jobs",
                             {{{"id", 7},
                               {"name", "test"},
                               {"conclusion", "failure"},
                               {"html_url", "https://github.com/acme/app/actions/runs/1/job/7"}},
                              {{"id", 8},
                               {"name", "lint"},
                               {"conclusion", "success"},
                               {"html_url", "https://github.com/acme/app/actions/runs/1/job/8"}}}}};
                  res.set_content(jobs.dump(), "application/json");
                });
    github_.Get("/repos/acme/app/actions/jobs/7/logs", [](const httplib::Request&,
                                                          httplib::Response& res) {
      res.set_content("Run make test\nFAIL: test_login (expected 200, got 500)\n", "text/plain");
    });
    github_port_ = github_.bind_to_any_port("127.0.0.1");
    github_thread_ = std::thread([this] { github_.listen_after_bind(); });

    testing::MakeGitRepo(dir_.path() / "work", {{"README", "app\n"}});
    ASSERT_EQ(Shell("git -C " + (dir_.path() / "work").string() +
                    " checkout -q -b feature/login && git -C " + (dir_.path() / "work").string() +
                    " checkout -q -")
                  .exit_code,
              0);
    origin_ = dir_.path() / "origin.git";
    ASSERT_EQ(
        Shell("git clone -q --bare " + (dir_.path() / "work").string() + " " + origin_.string())
            .exit_code,
        0);
    ::setenv("TEST_GITHUB_HOOK_SECRET", kSecret, 1);
    ::setenv("TEST_GITLAB_HOOK_TOKEN", "gl-token", 1);
    ::setenv("TEST_SENTRY_SECRET", "sentry-secret", 1);
    ::setenv("TEST_SLACK_SECRET", "slack-secret", 1);
    ::setenv("TEST_GITHUB_TOKEN", "ghp_test", 1);
    const auto config = dir_.path() / "nightshift.yml";
    ASSERT_TRUE(WriteFileAtomic(config,
                                StrCat(R"(
webhooks:
  github: {secret_env: TEST_GITHUB_HOOK_SECRET}
  gitlab: {token_env: TEST_GITLAB_HOOK_TOKEN}
  slack: {signing_secret_env: TEST_SLACK_SECRET}
  generic:
    sentry:
      secret_env: TEST_SENTRY_SECRET
      signature_header: Sentry-Hook-Signature
      signature_prefix: ""
      fields: {title: /data/issue/title}
forges:
  app: {type: github, project: acme/app, token_env: TEST_GITHUB_TOKEN,
        api_url: "http://127.0.0.1:)",
                                       github_port_, R"("}
agents:
  ci-fixer:
    recipe: "cat .nightshift/context/ci.log; echo fixing {{event.branch}} after {{event.workflow}}"
    repositories: ["acme/*"]
    triggers:
      - github: {event: workflow_run, conclusion: failure}
    concurrency: {key: "{{event.branch}}", overlap: skip}
  from-slack:
    recipe: "echo slack asks {{event.task}}"
    repositories: ["acme/*"]
    triggers:
      - slack: {}
  triage:
    recipe: "echo sentry says {{event.title}}"
    repositories: ["app"]
    triggers:
      - generic: {name: sentry}
)"),
                                0600)
                    .ok());
    ASSERT_TRUE(StartServer(dir_.path() / "data", {"--sandbox", "off", "--config", config.string(),
                                                   "--log-level", "warn"}));
    Json repo = Api("POST", "/api/v1/repositories",
                    Json{{"name", "app"}, {"url", origin_.string()}}.dump());
    ASSERT_EQ(repo.value("name", ""), "app") << repo.dump();
  }

  void TearDown() override {
    github_.stop();
    if (github_thread_.joinable()) github_thread_.join();
  }

  // POSTs a GitHub delivery; the status and the answer.
  std::pair<int, Json> DeliverGitHub(const std::string& type, const std::string& delivery,
                                     const std::string& body, const std::string& signature) {
    httplib::Headers headers{{"X-GitHub-Event", type}, {"X-GitHub-Delivery", delivery}};
    if (!signature.empty()) headers.emplace("X-Hub-Signature-256", signature);
    auto res = client_->Post("/hooks/github", headers, body, "application/json");
    EXPECT_TRUE(res) << "no answer";
    if (!res) return {0, Json()};
    return {res->status, Json::parse(res->body, nullptr, false)};
  }

  Json Events() { return Api("GET", "/api/v1/events")["events"]; }

  // POSTs a signed delivery to the generic hook "sentry"; the stored event's id (0 on failure).
  int64_t DeliverSentry(const std::string& body) {
    auto res = client_->Post("/hooks/generic/sentry",
                             {{"Sentry-Hook-Signature", Sign(dir_.path(), body, "sentry-secret")}},
                             body, "application/json");
    EXPECT_TRUE(res);
    if (!res) return 0;
    EXPECT_EQ(res->status, 202) << res->body;
    return Json::parse(res->body).value("event_id", int64_t{0});
  }

  // Polls the event until it is processed.
  Json Processed(int64_t id) {
    for (int i = 0; i < 200; ++i) {
      Json event = Api("GET", StrCat("/api/v1/events/", id));
      if (event.value("state", "") == "done") return event;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return Json();
  }

  std::string Log(int64_t run_id) {
    std::string text;
    for (const Json& e : ServerFixture::Events(run_id, 1000)) {
      if (e["kind"] == "log") text += e["data"].value("line", "") + "\n";
    }
    return text;
  }

  httplib::Server github_;
  int github_port_ = 0;
  std::thread github_thread_;
  std::filesystem::path origin_;
};

TEST_F(TriggersEndToEnd, AWorkflowRunFailureStartsTheAgentWithTheCiLogInItsContext) {
  auto payload =
      ReadFile(std::filesystem::path(TESTS_DIR) / "data/github/workflow_run_failure.json");
  ASSERT_TRUE(payload.ok());
  const std::string signature = "sha256=" + Sign(dir_.path(), *payload);
  auto [status, answer] = DeliverGitHub("workflow_run", "d-1", *payload, signature);
  ASSERT_EQ(status, 202) << answer.dump();
  const Json event = Processed(answer["event_id"]);
  ASSERT_EQ(event["outcome"][0]["result"], "started") << event.dump();
  const int64_t run_id = event["outcome"][0]["run_id"];
  const Json run = WaitFinished(run_id);
  EXPECT_EQ(run["state"], "succeeded") << run.dump();
  EXPECT_EQ(run["ref"], "feature/login");
  EXPECT_EQ(run["requested_by"], "trigger:ci-fixer");
  const std::string log = Log(run_id);
  EXPECT_NE(log.find("FAIL: test_login (expected 200, got 500)"), std::string::npos) << log;
  EXPECT_NE(log.find("## test ("), std::string::npos) << log;
  EXPECT_EQ(log.find("## lint"), std::string::npos) << log;
  EXPECT_NE(log.find("fixing feature/login after CI"), std::string::npos) << log;

  // Redelivered three times: one run, three redeliveries counted.
  for (int i = 0; i < 3; ++i) {
    auto [again, body] = DeliverGitHub("workflow_run", "d-1", *payload, signature);
    EXPECT_EQ(again, 200) << body.dump();
    EXPECT_EQ(body["duplicate"], true);
  }
  EXPECT_EQ(Api("GET", "/api/v1/runs")["runs"].size(), 1u);
  EXPECT_EQ(Api("GET", StrCat("/api/v1/events/", event["id"].get<int64_t>()))["redeliveries"], 3);

  // The CLI lists what arrived and what it started.
  auto cli = Cli("events");
  EXPECT_EQ(cli.exit_code, 0) << cli.output;
  EXPECT_NE(cli.output.find(StrCat("started run ", run_id, " (ci-fixer on app)")),
            std::string::npos)
      << cli.output;
  EXPECT_NE(cli.output.find("redelivered 3x"), std::string::npos) << cli.output;
  auto replay = Cli(StrCat("events replay ", event["id"].get<int64_t>()));
  EXPECT_EQ(replay.exit_code, 0) << replay.output;
  EXPECT_NE(replay.output.find("replayed 1x"), std::string::npos) << replay.output;
  EXPECT_EQ(Cli("events replay 999").exit_code, 1);
}

TEST_F(TriggersEndToEnd, BadSignaturesAreRefusedAndNothingIsStored) {
  const std::string body = R"({"ref":"refs/heads/main","repository":{"full_name":"acme/app"}})";
  const std::string good = "sha256=" + Sign(dir_.path(), body);
  std::string flipped = good;
  flipped.back() = flipped.back() == '0' ? '1' : '0';
  const std::vector<std::string> bad = {"",
                                        "sha256=",
                                        "sha1=" + good.substr(7),
                                        flipped,
                                        "sha256=" + Sign(dir_.path(), body, "wrong secret"),
                                        good + "00"};
  for (const std::string& signature : bad) {
    auto [status, answer] = DeliverGitHub("push", "x", body, signature);
    EXPECT_EQ(status, 401) << signature << " " << answer.dump();
    EXPECT_EQ(answer["error"]["code"], "unauthenticated");
  }
  // GitLab's token, and a generic hook's signature.
  auto gitlab =
      client_->Post("/hooks/gitlab", {{"X-Gitlab-Event", "Push Hook"}, {"X-Gitlab-Token", "wrong"}},
                    body, "application/json");
  ASSERT_TRUE(gitlab);
  EXPECT_EQ(gitlab->status, 401);
  auto generic = client_->Post("/hooks/generic/sentry", {{"Sentry-Hook-Signature", "00"}}, body,
                               "application/json");
  ASSERT_TRUE(generic);
  EXPECT_EQ(generic->status, 401);
  auto unknown = client_->Post("/hooks/generic/nope", body, "application/json");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  auto slack = client_->Post("/hooks/slack",
                             {{"X-Slack-Request-Timestamp", std::to_string(std::time(nullptr))},
                              {"X-Slack-Signature", "v0=" + std::string(64, '0')}},
                             "command=/nightshift", "application/x-www-form-urlencoded");
  ASSERT_TRUE(slack);
  EXPECT_EQ(slack->status, 401);
  auto oversized = client_->Post("/hooks/github", std::string(2 << 20, 'x'), "application/json");
  ASSERT_TRUE(oversized);
  EXPECT_EQ(oversized->status, 413);
  EXPECT_TRUE(Events().empty()) << Events().dump();

  // Signed but malformed: 400, nothing stored; an unknown event type: stored as ignored.
  const std::string junk = "{\"repository\": ";
  auto [malformed, error] = DeliverGitHub("push", "m-1", junk, "sha256=" + Sign(dir_.path(), junk));
  EXPECT_EQ(malformed, 400) << error.dump();
  EXPECT_TRUE(Events().empty());
  auto [ignored, note] = DeliverGitHub("deployment", "u-1", body, good);
  EXPECT_EQ(ignored, 202) << note.dump();
  EXPECT_EQ(Events()[0]["outcome"][0]["result"], "ignored");
  EXPECT_EQ(Api("GET", "/healthz")["status"], "ok");
}

TEST_F(TriggersEndToEnd, AGenericHookStartsItsAgentOnItsRepositories) {
  const std::string body = R"({"data":{"issue":{"title":"TypeError in login"}}})";
  const Json event = Processed(DeliverSentry(body));
  ASSERT_EQ(event["outcome"][0]["result"], "started") << event.dump();
  const Json run = WaitFinished(event["outcome"][0]["run_id"]);
  EXPECT_EQ(run["state"], "succeeded") << run.dump();
  EXPECT_NE(Log(run["id"]).find("sentry says TypeError in login"), std::string::npos);
}

TEST_F(TriggersEndToEnd, ARepositorysOwnAgentsFileIsReadFromItsDefaultBranch) {
  const auto work = dir_.path() / "work";
  auto push = [&](const std::map<std::string, std::string>& files) {
    testing::CommitFiles(work, files, "agents");
    ASSERT_EQ(Shell("git -C " + ShellQuote(work.string()) + " push -q " +
                    ShellQuote(origin_.string()) + " main")
                  .exit_code,
              0);
  };
  // Not read yet: the server's mirror has no file.
  EXPECT_EQ(Cli("agents").output.find("app/"), std::string::npos);
  push({{".nightshift/agents.yml", R"(
agents:
  own-triage:
    recipe: "echo own triage of {{event.title}}"
    triggers:
      - generic: {name: sentry}
    limits: {runs_per_hour: 1000}
)"}});
  auto refreshed = Cli("agents refresh app");
  ASSERT_EQ(refreshed.exit_code, 0) << refreshed.output;
  EXPECT_NE(refreshed.output.find("app/own-triage  recipe  from app @ "), std::string::npos)
      << refreshed.output;
  // The server's cap, not the file's 1000.
  const Json listed = Api("GET", "/api/v1/agents");
  bool capped = false;
  for (const Json& agent : listed["agents"]) {
    if (agent["name"] == "app/own-triage") capped = agent["runs_per_hour"] == 20;
  }
  EXPECT_TRUE(capped) << listed.dump();

  const std::string body = R"({"data":{"issue":{"title":"KeyError in cart"}}})";
  const Json event = Processed(DeliverSentry(body));
  ASSERT_EQ(event["outcome"].size(), 2u) << event.dump();
  int64_t own_run = 0;
  for (const Json& entry : event["outcome"]) {
    EXPECT_EQ(entry["result"], "started") << event.dump();
    if (entry["agent"] == "app/own-triage") own_run = entry["run_id"];
  }
  ASSERT_NE(own_run, 0) << event.dump();
  const Json run = WaitFinished(own_run);
  EXPECT_EQ(run["state"], "succeeded") << run.dump();
  EXPECT_EQ(run["requested_by"], "trigger:app/own-triage") << run.dump();
  EXPECT_NE(Log(own_run).find("own triage of KeyError in cart"), std::string::npos);

  // A file that breaks the rules (an agent for every repository): refused whole, with the
  // reason; the agents of the last good commit stay.
  push({{".nightshift/agents.yml", R"(
agents:
  everywhere:
    recipe: "echo hi"
    repositories: ["*"]
    triggers:
      - generic: {name: sentry}
)"}});
  auto broken = Cli("agents refresh app");
  EXPECT_EQ(broken.exit_code, 1) << broken.output;
  EXPECT_NE(broken.output.find("app:.nightshift/agents.yml:5:5: agents.everywhere.repositories: "
                               "a repository's own agents run on that repository only"),
            std::string::npos)
      << broken.output;
  EXPECT_NE(Cli("agents").output.find("app/own-triage"), std::string::npos);
  EXPECT_EQ(Cli("agents").output.find("app/everywhere"), std::string::npos);

  // A symlink in its place is not followed.
  ASSERT_EQ(Shell("cd " + ShellQuote(work.string()) +
                  " && rm .nightshift/agents.yml && ln -s /etc/passwd .nightshift/agents.yml && "
                  "git add -A && git commit -qm link && git push -q " +
                  ShellQuote(origin_.string()) + " main")
                .exit_code,
            0);
  auto linked = Cli("agents refresh app");
  EXPECT_EQ(linked.exit_code, 1) << linked.output;
  EXPECT_NE(linked.output.find("not a regular file (a symlink, not followed)"), std::string::npos)
      << linked.output;
  EXPECT_EQ(Cli("agents refresh nope").exit_code, 1);
}

TEST_F(TriggersEndToEnd, ASlashCommandAnswersWithTheRunsLinkWithinSlacksThreeSeconds) {
  const std::string body =
      "token=x&team_id=T1&channel_id=C1&user_id=U1&user_name=mona&command=%2Fnightshift&"
      "text=fix+the+flaky+login+test+in+acme%2Fapp&response_url=https%3A%2F%2Fhooks.slack.com%2F1&"
      "trigger_id=13345224609.738474920.8088930838d88f008e0";
  const std::string timestamp = std::to_string(std::time(nullptr));
  const std::string signature =
      "v0=" + Sign(dir_.path(), "v0:" + timestamp + ":" + body, "slack-secret");
  const auto start = std::chrono::steady_clock::now();
  auto res = client_->Post(
      "/hooks/slack", {{"X-Slack-Request-Timestamp", timestamp}, {"X-Slack-Signature", signature}},
      body, "application/x-www-form-urlencoded");
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_LT(took, std::chrono::seconds(3));
  const Json answer = Json::parse(res->body);
  EXPECT_EQ(answer["response_type"], "ephemeral");
  EXPECT_NE(answer["text"].get<std::string>().find("Started run 1: http://"), std::string::npos)
      << answer.dump();
  const Json run = WaitFinished(1);
  EXPECT_EQ(run["requested_by"], "trigger:from-slack");
  EXPECT_NE(Log(1).find("slack asks fix the flaky login test"), std::string::npos);
  // The same request again (a replay within the 5 minutes): no second run.
  auto again = client_->Post(
      "/hooks/slack", {{"X-Slack-Request-Timestamp", timestamp}, {"X-Slack-Signature", signature}},
      body, "application/x-www-form-urlencoded");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);
  EXPECT_EQ(Api("GET", "/api/v1/runs")["runs"].size(), 1u);
}

}  // namespace
}  // namespace nightshift
