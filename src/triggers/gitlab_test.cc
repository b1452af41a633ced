#include "triggers/gitlab.h"

#include <gtest/gtest.h>

#include "core/json.h"

namespace nightshift::triggers {
namespace {

TEST(GitLabToken, EqualOrUnauthenticated) {
  EXPECT_TRUE(VerifyGitLabToken("s3cret", "s3cret").ok());
  for (const char* header : {"s3cre", "s3cret ", "S3CRET", "x"}) {
    Status st = VerifyGitLabToken("s3cret", header);
    EXPECT_EQ(st.code(), StatusCode::kUnauthenticated) << header;
    EXPECT_EQ(st.message(), "X-Gitlab-Token does not match") << header;
  }
  EXPECT_EQ(VerifyGitLabToken("s3cret", "").message(), "missing X-Gitlab-Token");
}

const Json kProject = {{"path_with_namespace", "acme/backend/api"},
                       {"git_http_url", "https://gitlab.example.com/acme/backend/api.git"},
                       {"git_ssh_url", "git@gitlab.example.com:acme/backend/api.git"},
                       {"web_url", "https://gitlab.example.com/acme/backend/api"}};

TEST(GitLabEvents, AFailedPipeline) {
  const Json body = {{"object_kind", "pipeline"},
                     {"object_attributes",
                      {{"id", 31},
                       {"ref", "fix/login"},
                       {"sha", "bcbb5ec396a2c0f828686f14fac9b80b780504f2"},
                       {"status", "failed"},
                       {"source", "push"},
                       {"url", "https://gitlab.example.com/acme/backend/api/-/pipelines/31"}}},
                     {"user", {{"username", "root"}}},
                     {"project", kProject}};
  auto event = ParseGitLabEvent("Pipeline Hook", "uuid-1", body.dump());
  ASSERT_TRUE(event.ok() && event->has_value()) << event.status();
  const TriggerEvent& e = **event;
  EXPECT_EQ(e.source, "gitlab");
  EXPECT_EQ(FailedCiRun(e), "31");
  TriggerEvent running = e;
  running.fields["status"] = "running";
  EXPECT_EQ(FailedCiRun(running), std::nullopt);
  EXPECT_EQ(e.type, "pipeline");
  EXPECT_EQ(e.repository, "acme/backend/api");
  EXPECT_EQ(e.repository_urls.size(), 3u);
  EXPECT_EQ(e.actor, "root");
  EXPECT_EQ(e.item, "branch:fix/login");
  EXPECT_EQ(e.fields.at("status"), "failed");
  EXPECT_EQ(e.fields.at("pipeline_id"), "31");
  EXPECT_EQ(e.fields.size(), GitLabEventFields("pipeline").size());
}

TEST(GitLabEvents, NotesOnMergeRequestsAndIssuesPushesAndWhatStartsNothing) {
  const Json mr_note = {
      {"object_attributes",
       {{"note", "/nightshift add a test"}, {"noteable_type", "MergeRequest"}, {"url", "u"}}},
      {"merge_request", {{"iid", 4}, {"title", "Login"}, {"source_branch", "login"}}},
      {"user", {{"username", "alice"}}},
      {"project", kProject}};
  auto note = ParseGitLabEvent("Note Hook", "u", mr_note.dump());
  ASSERT_TRUE(note.ok() && note->has_value()) << note.status();
  EXPECT_EQ((*note)->item, "merge_request:4");
  EXPECT_EQ((*note)->fields.at("comment.body"), "/nightshift add a test");
  EXPECT_EQ((*note)->fields.at("branch"), "login");
  const Json issue_note = {{"object_attributes", {{"note", "look"}, {"noteable_type", "Issue"}}},
                           {"issue", {{"iid", 9}, {"title", "Crash"}}},
                           {"project", kProject}};
  auto on_issue = ParseGitLabEvent("Note Hook", "u", issue_note.dump());
  ASSERT_TRUE(on_issue.ok() && on_issue->has_value()) << on_issue.status();
  EXPECT_EQ((*on_issue)->item, "issue:9");
  EXPECT_EQ((*on_issue)->fields.at("title"), "Crash");

  const Json push = {{"ref", "refs/heads/main"},
                     {"before", "95790bf891e76fee5e1747ab589903a6a1f80f22"},
                     {"after", "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"},
                     {"user_username", "jsmith"},
                     {"project", kProject}};
  auto pushed = ParseGitLabEvent("Push Hook", "u", push.dump());
  ASSERT_TRUE(pushed.ok() && pushed->has_value()) << pushed.status();
  EXPECT_EQ((*pushed)->actor, "jsmith");
  EXPECT_EQ((*pushed)->fields.at("branch"), "main");

  Json deleted = push;
  deleted["after"] = std::string(40, '0');
  Json commit_note = mr_note;
  commit_note["object_attributes"]["noteable_type"] = "Commit";
  const Json closed = {{"object_attributes", {{"action", "close"}, {"iid", 4}}},
                       {"project", kProject}};
  for (const auto& [hook, body] :
       std::vector<std::pair<std::string, Json>>{{"Push Hook", deleted},
                                                 {"Note Hook", commit_note},
                                                 {"Merge Request Hook", closed},
                                                 {"Tag Push Hook", push}}) {
    auto e = ParseGitLabEvent(hook, "u", body.dump());
    ASSERT_TRUE(e.ok()) << hook << ": " << e.status();
    EXPECT_FALSE(e->has_value()) << hook << ": " << body.dump();
  }
}

TEST(GitLabEvents, HostileOrBrokenBodiesAreErrors) {
  struct Case {
    std::string hook;
    std::string body;
    std::string error;
  };
  for (const Case& c : std::vector<Case>{
           {"Wiki Page Hook", "{}", "gitlab: hook 'Wiki Page Hook' is not one Nightshift handles"},
           {"Pipeline Hook", "\"x\"", "gitlab: the body is not a JSON object"},
           {"Pipeline Hook", "{}",
            "gitlab: this pipeline event has no project.path_with_namespace"},
           {"Pipeline Hook", Json{{"project", kProject}}.dump(),
            "gitlab: this pipeline event has no branch"},
       }) {
    auto e = ParseGitLabEvent(c.hook, "u", c.body);
    ASSERT_FALSE(e.ok()) << c.body;
    EXPECT_EQ(e.status().message(), c.error) << c.body;
  }
}

}  // namespace
}  // namespace nightshift::triggers
