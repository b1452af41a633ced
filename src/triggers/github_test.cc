#include "triggers/github.h"

#include <gtest/gtest.h>

#include <fstream>

#include "core/json.h"
#include "core/shell.h"
#include "tests/support/test_support.h"

namespace nightshift::triggers {
namespace {

// GitHub's own example (docs: "Validating webhook deliveries").
TEST(GitHubSignature, GitHubsKnownAnswer) {
  EXPECT_TRUE(VerifyGitHubSignature(
                  "It's a Secret to Everybody", "Hello, World!",
                  "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
                  .ok());
}

// Against OpenSSL's HMAC, for bodies of every kind of byte.
TEST(GitHubSignature, AgreesWithOpenSsl) {
  testing::TempDir dir;
  for (const std::string& body : {std::string("{}"), std::string("{\"a\":\"\\u0000\"}"),
                                  std::string("\x00\xff\n'\"", 6), std::string(100000, 'x')}) {
    const auto file = dir.path() / "body";
    std::ofstream(file, std::ios::binary) << body;
    auto hex = testing::Shell("openssl dgst -sha256 -hmac 'shh' -r < " + ShellQuote(file.string()) +
                              " | cut -d' ' -f1");
    ASSERT_EQ(hex.exit_code, 0) << hex.output;
    const std::string header = "sha256=" + hex.output.substr(0, 64);
    EXPECT_TRUE(VerifyGitHubSignature("shh", body, header).ok()) << header;
    EXPECT_FALSE(VerifyGitHubSignature("shh!", body, header).ok());
    EXPECT_FALSE(VerifyGitHubSignature("shh", body + " ", header).ok());
  }
}

TEST(GitHubSignature, MissingMalformedOrWrongIsUnauthenticated) {
  const std::string good =
      "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
  struct Case {
    std::string header;
    std::string error;
  };
  const std::string malformed =
      "malformed X-Hub-Signature-256 (expected sha256= and 64 hex digits)";
  for (const Case& c : std::vector<Case>{
           {"", "missing X-Hub-Signature-256"},
           {"sha1=757107ea0eb2509fc211221cce984b8a37570b6d", malformed},
           {good.substr(7), malformed},
           {good + "00", malformed},
           {good.substr(0, good.size() - 1), malformed},
           {"sha256=" + std::string(64, 'g'), malformed},
           {"sha256=" + std::string(64, '0'), "X-Hub-Signature-256 does not match the body"},
       }) {
    Status st = VerifyGitHubSignature("It's a Secret to Everybody", "Hello, World!", c.header);
    EXPECT_EQ(st.code(), StatusCode::kUnauthenticated) << c.header;
    EXPECT_EQ(st.message(), c.error) << c.header;
  }
}

// A workflow_run payload with the parts GitHub sends that matter here, and some that do not.
Json WorkflowRun(std::string_view action, std::string_view conclusion) {
  return Json{{"action", action},
              {"workflow_run",
               {{"id", 289782451},
                {"name", "test"},
                {"head_branch", "fix/login"},
                {"head_sha", "3484a3fb816e0859fd6e1cea078d76385ff50625"},
                {"conclusion", conclusion.empty() ? Json(nullptr) : Json(conclusion)},
                {"event", "push"},
                {"html_url", "https://github.com/acme/app/actions/runs/289782451"},
                {"pull_requests", Json::array()}}},
              {"workflow", {{"id", 2823525}, {"name", "CI"}, {"path", ".github/workflows/ci.yml"}}},
              {"repository",
               {{"full_name", "acme/app"},
                {"clone_url", "https://github.com/acme/app.git"},
                {"ssh_url", "git@github.com:acme/app.git"},
                {"html_url", "https://github.com/acme/app"}}},
              {"sender", {{"login", "octocat"}, {"type", "User"}}}};
}

TEST(GitHubEvents, AFailedWorkflowRunHasItsDocumentedFields) {
  auto event = ParseGitHubEvent("workflow_run", "d-1", WorkflowRun("completed", "failure").dump());
  ASSERT_TRUE(event.ok()) << event.status();
  ASSERT_TRUE(event->has_value());
  const TriggerEvent& e = **event;
  EXPECT_EQ(e.source, "github");
  EXPECT_EQ(e.type, "workflow_run");
  EXPECT_EQ(e.delivery, "d-1");
  EXPECT_EQ(FailedCiRun(e), e.fields.at("run_id"));
  EXPECT_FALSE(e.fields.at("run_id").empty());
  TriggerEvent green = e;
  green.fields["conclusion"] = "success";
  EXPECT_EQ(FailedCiRun(green), std::nullopt);
  EXPECT_EQ(e.repository, "acme/app");
  EXPECT_EQ(e.repository_urls, (std::vector<std::string>{"https://github.com/acme/app.git",
                                                         "git@github.com:acme/app.git",
                                                         "https://github.com/acme/app"}));
  EXPECT_EQ(e.actor, "octocat");
  EXPECT_EQ(e.item, "branch:fix/login");
  EXPECT_EQ(e.fields.at("branch"), "fix/login");
  EXPECT_EQ(e.fields.at("workflow"), "CI");
  EXPECT_EQ(e.fields.at("conclusion"), "failure");
  EXPECT_EQ(e.fields.at("run_id"), "289782451");
  EXPECT_EQ(e.fields.at("run_url"), "https://github.com/acme/app/actions/runs/289782451");
  // Every documented field is there, so templates checked against the list never miss at fire.
  for (const std::string& name : GitHubEventFields("workflow_run")) {
    EXPECT_TRUE(e.fields.count(name)) << name;
  }
  EXPECT_EQ(e.fields.size(), GitHubEventFields("workflow_run").size());
}

TEST(GitHubEvents, WhatStartsNothingIsIgnoredNotAnError) {
  auto requested = ParseGitHubEvent("workflow_run", "d", WorkflowRun("requested", "").dump());
  ASSERT_TRUE(requested.ok());
  EXPECT_FALSE(requested->has_value());
  auto ping = ParseGitHubEvent("ping", "d", R"({"zen": "Keep it logically awesome."})");
  ASSERT_TRUE(ping.ok());
  EXPECT_FALSE(ping->has_value());
  const Json repo = {{"full_name", "acme/app"}};
  for (const Json& push :
       {Json{{"ref", "refs/tags/v1"}, {"after", "a"}, {"repository", repo}},
        Json{{"ref", "refs/heads/gone"}, {"deleted", true}, {"repository", repo}}}) {
    auto e = ParseGitHubEvent("push", "d", push.dump());
    ASSERT_TRUE(e.ok()) << e.status();
    EXPECT_FALSE(e->has_value()) << push.dump();
  }
  auto branch = ParseGitHubEvent(
      "push", "d",
      Json{{"ref", "refs/heads/nightshift/recipe/7"}, {"after", "b"}, {"repository", repo}}.dump());
  ASSERT_TRUE(branch.ok() && branch->has_value());
  EXPECT_EQ((*branch)->fields.at("branch"), "nightshift/recipe/7");
  EXPECT_EQ((*branch)->item, "branch:nightshift/recipe/7");
}

TEST(GitHubEvents, CommentsIssuesAndPullRequests) {
  const Json repo = {{"full_name", "acme/app"}};
  auto comment = ParseGitHubEvent(
      "issue_comment", "d",
      Json{{"action", "created"},
           {"issue",
            {{"number", 12}, {"title", "Flaky login"}, {"pull_request", {{"html_url", "u"}}}}},
           {"comment", {{"body", "/nightshift fix it"}, {"user", {{"login", "alice"}}}}},
           {"repository", repo},
           {"sender", {{"login", "alice"}}}}
          .dump());
  ASSERT_TRUE(comment.ok() && comment->has_value()) << comment.status();
  EXPECT_EQ((*comment)->item, "issue:12");
  EXPECT_EQ((*comment)->fields.at("comment.body"), "/nightshift fix it");
  EXPECT_EQ((*comment)->fields.at("pull_request_url"), "u");
  auto labeled =
      ParseGitHubEvent("issues", "d",
                       Json{{"action", "labeled"},
                            {"issue", {{"number", 7}, {"title", "t"}, {"body", nullptr}}},
                            {"label", {{"name", "nightshift"}}},
                            {"repository", repo}}
                           .dump());
  ASSERT_TRUE(labeled.ok() && labeled->has_value()) << labeled.status();
  EXPECT_EQ((*labeled)->fields.at("label"), "nightshift");
  EXPECT_EQ((*labeled)->fields.at("body"), "");  // null: an empty string, the field still there
  auto closed = ParseGitHubEvent(
      "issues", "d",
      Json{{"action", "closed"}, {"issue", {{"number", 7}}}, {"repository", repo}}.dump());
  ASSERT_TRUE(closed.ok());
  EXPECT_FALSE(closed->has_value());
}

TEST(GitHubEvents, HostileOrBrokenBodiesAreErrorsNeverCrashes) {
  struct Case {
    std::string type;
    std::string body;
    std::string error;
  };
  for (
      const Case& c : std::vector<Case>{
          {"deployment", "{}", "github: event type 'deployment' is not one Nightshift handles"},
          {"workflow_run", "[1,2]", "github: the body is not a JSON object"},
          {"workflow_run", R"({"action": "completed"})",
           "github: this workflow_run event has no repository.full_name"},
          {"workflow_run",
           R"({"action": "completed", "repository": {"full_name": "a/b"}, "workflow_run": 5})",
           "github: this workflow_run event has no branch"},
          {"issues",
           R"({"action": "opened", "repository": {"full_name": "a/b"}, "issue": {"number": {"x": 1}}})",
           "github: this issues event has no number"},
      }) {
    auto e = ParseGitHubEvent(c.type, "d", c.body);
    ASSERT_FALSE(e.ok()) << c.body;
    EXPECT_EQ(e.status().message(), c.error) << c.body;
  }
  // Every part of the wrong JSON type: no field is read through it, and nothing throws.
  for (const char* body :
       {R"({"action": "completed", "repository": [1, 2], "workflow_run": ["head_branch"]})",
        R"({"action": ["completed"], "repository": {"full_name": "a/b"}})",
        R"({"action": "completed", "repository": {"full_name": 7}, "workflow_run": null})",
        R"({"action": "completed", "repository": {"full_name": "a/b"},
            "workflow_run": {"head_branch": {"x": 1}}, "workflow": "CI"})"}) {
    auto e = ParseGitHubEvent("workflow_run", "d", body);
    EXPECT_TRUE(!e.ok() || !e->has_value()) << body;
  }
  auto truncated = ParseGitHubEvent("workflow_run", "d", R"({"action": "compl)");
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(truncated.status().code(), StatusCode::kInvalidArgument);
  // Random bytes and cut-off payloads: an answer, every time.
  const std::string whole = WorkflowRun("completed", "failure").dump();
  for (size_t cut = 0; cut < whole.size(); cut += 7) {
    auto e = ParseGitHubEvent("workflow_run", "d", whole.substr(0, cut));
    EXPECT_FALSE(e.ok() && e->has_value() && cut < whole.size()) << cut;
  }
}

}  // namespace
}  // namespace nightshift::triggers
