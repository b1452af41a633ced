#include "forge/remote.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/json.h"
#include "forge/remote_http.h"

namespace nightshift::forge {
namespace {

// One scripted answer.
struct Reply {
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// One request as the server saw it.
struct Recorded {
  std::string method;
  std::string target;  // path and query, as sent
  httplib::Headers headers;
  std::string body;

  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "<absent>" : it->second;
  }
  Json JsonBody() const { return Json::parse(body); }
};

// An HTTP server on a free loopback port that records every request and answers them, in
// order, from `script`; past its end it answers 599.
class RecordingServer {
 public:
  explicit RecordingServer(std::vector<Reply> script) : script_(std::move(script)) {
    auto handler = [this](const httplib::Request& request, httplib::Response& response) {
      std::lock_guard lock(mu_);
      requests_.push_back({request.method, request.target, request.headers, request.body});
      if (next_ >= script_.size()) {
        response.status = 599;
        return;
      }
      const Reply& reply = script_[next_++];
      response.status = reply.status;
      for (const auto& [name, value] : reply.headers) response.set_header(name, value);
      response.set_content(reply.body, "application/json");
    };
    server_.Get(".*", handler);
    server_.Post(".*", handler);
    server_.Put(".*", handler);
    server_.Patch(".*", handler);
    server_.Delete(".*", handler);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~RecordingServer() {
    server_.stop();
    thread_.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<Recorded> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<Reply> script_;       // GUARDED_BY(mu_)
  size_t next_ = 0;                 // GUARDED_BY(mu_)
  std::vector<Recorded> requests_;  // GUARDED_BY(mu_)
};

RemoteForgeOptions GitHubOptions(const RecordingServer& server) {
  RemoteForgeOptions options;
  options.api_url = server.url();
  options.project = "octo/app";
  options.token = "ghp_test";
  options.max_retries = 3;
  options.retry_base_ms = 5;
  options.retry_max_ms = 20;
  options.timeout_ms = 5'000;
  return options;
}

RemoteForgeOptions GitLabOptions(const RecordingServer& server) {
  RemoteForgeOptions options = GitHubOptions(server);
  options.api_url = server.url() + "/api/v4/";  // the trailing slash is dropped
  options.project = "group/sub/app";
  options.token = "glpat-test";
  return options;
}

std::unique_ptr<RemoteForge> GitHub(const RemoteForgeOptions& options) {
  auto forge = MakeGitHub(options);
  EXPECT_TRUE(forge.ok()) << forge.status();
  return std::move(forge).value();
}

std::unique_ptr<RemoteForge> GitLab(const RemoteForgeOptions& options) {
  auto forge = MakeGitLab(options);
  EXPECT_TRUE(forge.ok()) << forge.status();
  return std::move(forge).value();
}

void ExpectGitHubHeaders(const Recorded& request, const std::string& token, bool has_body) {
  EXPECT_EQ(request.Header("Authorization"), "Bearer " + token);
  EXPECT_EQ(request.Header("Accept"), "application/vnd.github+json");
  EXPECT_EQ(request.Header("X-GitHub-Api-Version"), "2022-11-28");
  EXPECT_EQ(request.Header("User-Agent"), "nightshift");
  EXPECT_EQ(request.Header("PRIVATE-TOKEN"), "<absent>");
  EXPECT_EQ(request.Header("Content-Type"), has_body ? "application/json" : "<absent>");
}

void ExpectGitLabHeaders(const Recorded& request, bool has_body) {
  EXPECT_EQ(request.Header("PRIVATE-TOKEN"), "glpat-test");
  EXPECT_EQ(request.Header("Authorization"), "<absent>");
  EXPECT_EQ(request.Header("Content-Type"), has_body ? "application/json" : "<absent>");
}

ChangeRequestDraft Draft() {
  ChangeRequestDraft draft;
  draft.title = "Fix the flaky test";
  draft.body = "The *why*.";
  draft.head_branch = "nightshift/agent/42";
  draft.base_branch = "main";
  draft.labels = {"nightshift", "bot"};
  draft.draft = true;
  return draft;
}

// GitHub's ISO 8601 form: "2016-07-11T22:14:10Z".
std::string IsoSeconds(int64_t ms) {
  const time_t seconds = static_cast<time_t>(ms / 1000);
  std::tm tm = {};
  gmtime_r(&seconds, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

TEST(GitHub, OpensAPullRequestThenAddsLabels) {
  RecordingServer server({
      {201, R"({"number": 17, "html_url": "https://github.com/octo/app/pull/17"})"},
      {200, R"([{"name": "nightshift"}, {"name": "bot"}])"},
  });
  auto opened = GitHub(GitHubOptions(server))->Open(Draft());
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->id, "17");
  EXPECT_EQ(opened->url, "https://github.com/octo/app/pull/17");

  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].target, "/repos/octo/app/pulls");
  ExpectGitHubHeaders(requests[0], "ghp_test", true);
  EXPECT_EQ(requests[0].JsonBody(), Json::parse(R"({"title": "Fix the flaky test",
      "body": "The *why*.", "head": "nightshift/agent/42", "base": "main", "draft": true})"));
  EXPECT_EQ(requests[1].method, "POST");
  EXPECT_EQ(requests[1].target, "/repos/octo/app/issues/17/labels");
  ExpectGitHubHeaders(requests[1], "ghp_test", true);
  EXPECT_EQ(requests[1].JsonBody(), Json::parse(R"({"labels": ["nightshift", "bot"]})"));
}

TEST(GitHub, OpensWithoutLabelsInOneRequest) {
  RecordingServer server({{201, R"({"number": 3, "html_url": "u"})"}});
  ChangeRequestDraft draft = Draft();
  draft.labels.clear();
  draft.draft = false;
  auto opened = GitHub(GitHubOptions(server))->Open(draft);
  ASSERT_TRUE(opened.ok()) << opened.status();
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].JsonBody()["draft"], false);
}

TEST(GitHub, LabelFailureStillReturnsTheOpenedPullRequest) {
  RecordingServer server({
      {201, R"({"number": 17, "html_url": "u"})"},
      {403, R"({"message": "Resource not accessible by integration"})"},
  });
  auto opened = GitHub(GitHubOptions(server))->Open(Draft());
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->id, "17");
  EXPECT_EQ(server.requests().size(), 2u);
}

TEST(GitHub, FallsBackToAReadyPullRequestWhereDraftsAreUnsupported) {
  RecordingServer server({
      {422, R"({"message": "Validation Failed", "errors": [{"resource": "PullRequest",
          "code": "custom", "message": "Draft pull requests are not supported in this repository."}]})"},
      {201, R"({"number": 4, "html_url": "u"})"},
  });
  ChangeRequestDraft draft = Draft();
  draft.labels.clear();
  auto opened = GitHub(GitHubOptions(server))->Open(draft);
  ASSERT_TRUE(opened.ok()) << opened.status();
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].JsonBody()["draft"], true);
  EXPECT_EQ(requests[1].JsonBody()["draft"], false);
}

TEST(GitHub, UpdatesTitleAndBody) {
  RecordingServer server({{200, R"({"number": 17})"}});
  ASSERT_TRUE(GitHub(GitHubOptions(server))->Update("17", "New title", "New body").ok());
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "PATCH");
  EXPECT_EQ(requests[0].target, "/repos/octo/app/pulls/17");
  ExpectGitHubHeaders(requests[0], "ghp_test", true);
  EXPECT_EQ(requests[0].JsonBody(), Json::parse(R"({"title": "New title", "body": "New body"})"));
}

TEST(GitHub, Comments) {
  RecordingServer server({{201, R"({"id": 1})"}});
  ASSERT_TRUE(GitHub(GitHubOptions(server))->Comment("17", "Run 42 finished.").ok());
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].target, "/repos/octo/app/issues/17/comments");
  ExpectGitHubHeaders(requests[0], "ghp_test", true);
  EXPECT_EQ(requests[0].JsonBody(), Json::parse(R"({"body": "Run 42 finished."})"));
}

TEST(GitHub, ReadsCommentsUntilAShortPage) {
  Json full = Json::array();
  for (int i = 1; i <= 100; ++i) {
    full.push_back({{"id", i},
                    {"user", {{"login", "alice"}}},
                    {"body", "c" + std::to_string(i)},
                    {"created_at", "2024-01-01T00:00:00Z"}});
  }
  RecordingServer server({
      {200, full.dump()},
      {200, R"([{"id": 101, "user": null, "body": "/nightshift retry",
                 "created_at": "2024-01-02T00:00:00Z"}])"},
  });
  auto comments = GitHub(GitHubOptions(server))->Comments("17");
  ASSERT_TRUE(comments.ok()) << comments.status();
  ASSERT_EQ(comments->size(), 101u);
  EXPECT_EQ((*comments)[0].id, "1");
  EXPECT_EQ((*comments)[0].author, "alice");
  EXPECT_EQ((*comments)[0].body, "c1");
  EXPECT_EQ((*comments)[0].created_at, "2024-01-01T00:00:00Z");
  EXPECT_EQ((*comments)[100].id, "101");
  EXPECT_EQ((*comments)[100].author, "");  // a deleted user
  EXPECT_EQ((*comments)[100].body, "/nightshift retry");

  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(requests[0].target, "/repos/octo/app/issues/17/comments?per_page=100&page=1");
  EXPECT_EQ(requests[1].target, "/repos/octo/app/issues/17/comments?per_page=100&page=2");
  ExpectGitHubHeaders(requests[1], "ghp_test", false);
  EXPECT_EQ(requests[1].body, "");
}

TEST(GitHub, FollowsTheLinkHeader) {
  RecordingServer server({
      {200,
       R"([{"id": 1, "body": "a"}, {"id": 2, "body": "b"}])",
       {{"Link",
         R"(<https://api.github.com/x?page=2>; rel="next", <https://api.github.com/x?page=2>; rel="last")"}}},
      {200,
       R"([{"id": 3, "body": "c"}])",
       {{"Link",
         R"(<https://api.github.com/x?page=1>; rel="prev", <https://api.github.com/x?page=1>; rel="first")"}}},
  });
  auto comments = GitHub(GitHubOptions(server))->Comments("17");
  ASSERT_TRUE(comments.ok()) << comments.status();
  EXPECT_EQ(comments->size(), 3u);
  EXPECT_EQ(server.requests().size(), 2u);
}

TEST(GitHub, RefusesIdsThatAreNotNumbers) {
  RecordingServer server({});
  auto github = GitHub(GitHubOptions(server));
  EXPECT_TRUE(IsInvalidArgument(github->Comment("17/../../x", "hi")));
  EXPECT_TRUE(IsInvalidArgument(github->Comments("").status()));
  EXPECT_TRUE(server.requests().empty());
}

// A run's jobs as GitHub lists them: {"total_count": N, "jobs": [...]}.
std::string GitHubJobs(const Json& jobs) {
  return Json{{"total_count", jobs.size()}, {"jobs", jobs}}.dump();
}

Json GitHubJob(int64_t id, const std::string& name, const Json& conclusion) {
  return {{"id", id},
          {"name", name},
          {"status", "completed"},
          {"conclusion", conclusion},
          {"html_url", "https://github.com/octo/app/actions/runs/7/job/" + std::to_string(id)}};
}

TEST(GitHub, FailedJobsFollowTheLogRedirectWithoutTheToken) {
  RecordingServer storage({
      {200, "setup\nbuild\nerror: test_foo failed\n"},
      {200, "step\n##[error]The job exceeded the maximum execution time\n"},
  });
  RecordingServer api({
      {200, GitHubJobs(Json::array(
                {GitHubJob(31, "test (linux)", "failure"), GitHubJob(30, "lint", "success"),
                 GitHubJob(29, "test (mac)", "timed_out"), GitHubJob(32, "docs", "cancelled"),
                 GitHubJob(33, "deploy", nullptr)}))},
      {302, "", {{"Location", storage.url() + "/logs/29.txt?sig=SECRET&se=2030"}}},
      {302, "", {{"Location", storage.url() + "/logs/31.txt?sig=SECRET&se=2030"}}},
  });
  auto jobs = GitHub(GitHubOptions(api))->FailedJobs("7", 4096, 10);
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  ASSERT_EQ(jobs->size(), 2u);
  // Lowest job id first.
  EXPECT_EQ((*jobs)[0].name, "test (mac)");
  EXPECT_EQ((*jobs)[0].url, "https://github.com/octo/app/actions/runs/7/job/29");
  EXPECT_EQ((*jobs)[0].log_tail, "setup\nbuild\nerror: test_foo failed\n");
  EXPECT_EQ((*jobs)[1].name, "test (linux)");
  EXPECT_EQ((*jobs)[1].log_tail, "step\n##[error]The job exceeded the maximum execution time\n");

  const auto requests = api.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(requests[0].target,
            "/repos/octo/app/actions/runs/7/jobs?filter=latest&per_page=100&page=1");
  ExpectGitHubHeaders(requests[0], "ghp_test", false);
  EXPECT_EQ(requests[1].target, "/repos/octo/app/actions/jobs/29/logs");
  ExpectGitHubHeaders(requests[1], "ghp_test", false);
  EXPECT_EQ(requests[2].target, "/repos/octo/app/actions/jobs/31/logs");

  const auto downloads = storage.requests();
  ASSERT_EQ(downloads.size(), 2u);
  EXPECT_EQ(downloads[0].method, "GET");
  EXPECT_EQ(downloads[0].target, "/logs/29.txt?sig=SECRET&se=2030");
  EXPECT_EQ(downloads[1].target, "/logs/31.txt?sig=SECRET&se=2030");
  for (const Recorded& download : downloads) {
    EXPECT_EQ(download.Header("Authorization"), "<absent>");
    EXPECT_EQ(download.Header("X-GitHub-Api-Version"), "<absent>");
  }
}

TEST(GitHub, FailedJobsReadALogAnsweredDirectlyAndKeepItsTail) {
  RecordingServer server({
      {200, GitHubJobs(Json::array({GitHubJob(5, "build", "failure")}))},
      {200, "0123456789abcdefghij"},
  });
  auto jobs = GitHub(GitHubOptions(server))->FailedJobs("7", 6, 10);
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  ASSERT_EQ(jobs->size(), 1u);
  EXPECT_EQ((*jobs)[0].log_tail, "efghij");
  EXPECT_EQ(server.requests().size(), 2u);
}

TEST(GitHub, FailedJobsAtMostMaxJobsAcrossPages) {
  Json first_page = Json::array();
  for (int id = 100; id < 200; ++id) {
    first_page.push_back(
        GitHubJob(id, "job " + std::to_string(id), id == 150 ? "failure" : "success"));
  }
  RecordingServer server({
      {200, GitHubJobs(first_page), {{"Link", R"(<https://api.github.com/x?page=2>; rel="next")"}}},
      {200, GitHubJobs(Json::array(
                {GitHubJob(99, "early", "failure"), GitHubJob(200, "late", "failure")}))},
      {200, "log of 99"},
      {200, "log of 150"},
  });
  auto jobs = GitHub(GitHubOptions(server))->FailedJobs("7", 100, 2);
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  ASSERT_EQ(jobs->size(), 2u);
  EXPECT_EQ((*jobs)[0].name, "early");
  EXPECT_EQ((*jobs)[0].log_tail, "log of 99");
  EXPECT_EQ((*jobs)[1].name, "job 150");
  EXPECT_EQ((*jobs)[1].log_tail, "log of 150");
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 4u);
  EXPECT_EQ(requests[1].target,
            "/repos/octo/app/actions/runs/7/jobs?filter=latest&per_page=100&page=2");
  EXPECT_EQ(requests[2].target, "/repos/octo/app/actions/jobs/99/logs");
  EXPECT_EQ(requests[3].target, "/repos/octo/app/actions/jobs/150/logs");
}

TEST(GitHub, NoFailedJobsIsAnEmptyList) {
  RecordingServer server({
      {200, GitHubJobs(
                Json::array({GitHubJob(1, "build", "success"), GitHubJob(2, "test", "skipped")}))},
  });
  auto jobs = GitHub(GitHubOptions(server))->FailedJobs("7", 100, 5);
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  EXPECT_TRUE(jobs->empty());
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(GitHub, FailedJobsOfAnUnknownRunAreNotFound) {
  RecordingServer server({{404, R"({"message": "Not Found"})"}});
  auto jobs = GitHub(GitHubOptions(server))->FailedJobs("123", 100, 5);
  EXPECT_TRUE(IsNotFound(jobs.status())) << jobs.status();
  EXPECT_EQ(jobs.status().message(),
            "github: GET /repos/octo/app/actions/runs/123/jobs?filter=latest&per_page=100&page=1: "
            "HTTP 404: Not Found");
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(GitHub, AnExpiredLogLeavesAnEmptyTail) {
  RecordingServer server({
      {200, GitHubJobs(Json::array({GitHubJob(1, "a", "failure"), GitHubJob(2, "b", "failure")}))},
      {410, R"({"message": "Server Error", "status": "410"})"},
      {200, "b's log"},
  });
  auto jobs = GitHub(GitHubOptions(server))->FailedJobs("7", 100, 5);
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  ASSERT_EQ(jobs->size(), 2u);
  EXPECT_EQ((*jobs)[0].name, "a");
  EXPECT_EQ((*jobs)[0].log_tail, "");
  EXPECT_EQ((*jobs)[1].log_tail, "b's log");
}

TEST(GitHub, FailedJobsRefuseRunIdsThatAreNotNumbers) {
  RecordingServer server({});
  auto github = GitHub(GitHubOptions(server));
  for (const char* id : {"", "7/../../x", "-1", "1 2", "7?filter=all", "0x10"}) {
    EXPECT_TRUE(IsInvalidArgument(github->FailedJobs(id, 100, 5).status())) << id;
  }
  EXPECT_TRUE(IsInvalidArgument(github->FailedJobs("7", 100, 0).status()));
  EXPECT_TRUE(server.requests().empty());
}

TEST(GitHub, ALogRedirectIsFollowedOnceAndOnlyToHttp) {
  RecordingServer storage({{302, "", {{"Location", "http://127.0.0.1:1/again"}}}});
  RecordingServer api({
      {200, GitHubJobs(Json::array({GitHubJob(1, "a", "failure")}))},
      {302, "", {{"Location", "file:///etc/passwd"}}},
      {200, GitHubJobs(Json::array({GitHubJob(1, "a", "failure")}))},
      {302, "", {{"Location", storage.url() + "/log?sig=SECRET"}}},
  });
  auto github = GitHub(GitHubOptions(api));
  auto jobs = github->FailedJobs("7", 100, 5);
  EXPECT_EQ(jobs.status().code(), StatusCode::kInternal) << jobs.status();
  EXPECT_EQ(jobs.status().message(),
            "github: GET /repos/octo/app/actions/jobs/1/logs: unexpected answer: HTTP 302 to a "
            "Location that is not an http(s) URL");

  // A second hop is an error like any other 3xx, and names the first hop's origin only.
  jobs = github->FailedJobs("7", 100, 5);
  EXPECT_EQ(jobs.status().code(), StatusCode::kFailedPrecondition) << jobs.status();
  EXPECT_EQ(jobs.status().message(),
            "github: GET /repos/octo/app/actions/jobs/1/logs -> " + storage.url() + ": HTTP 302");
  EXPECT_EQ(storage.requests().size(), 1u);
}

TEST(GitHub, ALogDownloadIsRetriedWithoutRevealingItsUrl) {
  RecordingServer storage({
      {503, "Service Unavailable"},
      {403, "<?xml version=\"1.0\"?><Error><Code>AuthenticationFailed</Code></Error>"},
  });
  RecordingServer api({
      {200, GitHubJobs(Json::array({GitHubJob(1, "a", "failure")}))},
      {302, "", {{"Location", storage.url() + "/blob/1?sig=SECRET"}}},
  });
  auto jobs = GitHub(GitHubOptions(api))->FailedJobs("7", 100, 5);
  EXPECT_EQ(jobs.status().code(), StatusCode::kPermissionDenied) << jobs.status();
  EXPECT_EQ(jobs.status().message().find("SECRET"), std::string::npos) << jobs.status();
  EXPECT_EQ(jobs.status().message().find("/blob"), std::string::npos) << jobs.status();
  EXPECT_EQ(storage.requests().size(), 2u);
}

TEST(GitHub, ALogLargerThanTheLimitIsRefusedOnce) {
  RecordingServer server({
      {200, GitHubJobs(Json::array({GitHubJob(1, "a", "failure")}))},
      {200, std::string(4096, 'x')},
  });
  RemoteForgeOptions options = GitHubOptions(server);
  options.max_response_bytes = 1024;
  auto jobs = GitHub(options)->FailedJobs("7", 100, 5);
  EXPECT_EQ(jobs.status().code(), StatusCode::kResourceExhausted) << jobs.status();
  EXPECT_EQ(
      jobs.status().message(),
      "github: GET /repos/octo/app/actions/jobs/1/logs: the answer is larger than 1024 bytes");
  EXPECT_EQ(server.requests().size(), 2u);  // not retried
}

TEST(GitLab, FailedJobsWithTheirTraces) {
  RecordingServer server({
      {200,
       R"([{"id": 812, "name": "rspec 2/2", "status": "failed", "stage": "test",
            "web_url": "https://gl/group/sub/app/-/jobs/812"},
           {"id": 811, "name": "rspec 1/2", "status": "failed", "stage": "test",
            "web_url": "https://gl/group/sub/app/-/jobs/811"},
           {"id": 805, "name": "compile", "status": "failed", "stage": "build",
            "web_url": "https://gl/group/sub/app/-/jobs/805"}])",
       {{"X-Next-Page", ""}}},
      {200, "Running with gitlab-runner\n$ make\nmake: *** [all] Error 2\n"},
      {200, "1 example, 1 failure\n"},
  });
  auto jobs = GitLab(GitLabOptions(server))->FailedJobs("4711", 24, 2);
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  ASSERT_EQ(jobs->size(), 2u);
  EXPECT_EQ((*jobs)[0].name, "compile");
  EXPECT_EQ((*jobs)[0].url, "https://gl/group/sub/app/-/jobs/805");
  EXPECT_EQ((*jobs)[0].log_tail, "make: *** [all] Error 2\n");
  EXPECT_EQ((*jobs)[1].name, "rspec 1/2");
  EXPECT_EQ((*jobs)[1].log_tail, "1 example, 1 failure\n");  // shorter than the tail

  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(
      requests[0].target,
      "/api/v4/projects/group%2Fsub%2Fapp/pipelines/4711/jobs?scope[]=failed&per_page=100&page=1");
  ExpectGitLabHeaders(requests[0], false);
  EXPECT_EQ(requests[1].target, "/api/v4/projects/group%2Fsub%2Fapp/jobs/805/trace");
  ExpectGitLabHeaders(requests[1], false);
  EXPECT_EQ(requests[2].target, "/api/v4/projects/group%2Fsub%2Fapp/jobs/811/trace");
}

TEST(GitLab, AStreamedTraceLargerThanTheLimitIsCutOff) {
  // Chunked, so no Content-Length announces the size: the transfer stops at the limit.
  httplib::Server server;
  server.Get(".*/jobs", [](const httplib::Request&, httplib::Response& response) {
    response.set_content(R"([{"id": 9, "name": "build", "web_url": "u"}])", "application/json");
  });
  server.Get(".*/trace", [](const httplib::Request&, httplib::Response& response) {
    response.set_chunked_content_provider("text/plain", [](size_t, httplib::DataSink& sink) {
      const std::string chunk(1024, 'x');
      for (int i = 0; i < 1024 && sink.is_writable(); ++i) {
        if (!sink.write(chunk.data(), chunk.size())) return false;
      }
      sink.done();
      return true;
    });
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  std::thread thread([&server] { server.listen_after_bind(); });
  while (!server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  RemoteForgeOptions options;
  options.api_url = "http://127.0.0.1:" + std::to_string(port) + "/api/v4";
  options.project = "group/app";
  options.token = "glpat-test";
  options.max_response_bytes = 4096;
  auto jobs = GitLab(options)->FailedJobs("3", 100, 5);
  server.stop();
  thread.join();
  EXPECT_EQ(jobs.status().code(), StatusCode::kResourceExhausted) << jobs.status();
  EXPECT_EQ(jobs.status().message(),
            "gitlab: GET /projects/group%2Fapp/jobs/9/trace: the answer is larger than 4096 bytes");
}

TEST(GitLab, NoFailedJobsIsAnEmptyList) {
  RecordingServer server({{200, "[]", {{"X-Next-Page", ""}}}});
  auto jobs = GitLab(GitLabOptions(server))->FailedJobs("4711", 100, 5);
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  EXPECT_TRUE(jobs->empty());
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(GitLab, FailedJobsOfAnUnknownPipelineAreNotFound) {
  RecordingServer server({{404, R"({"message": "404 Not found"})"}});
  auto jobs = GitLab(GitLabOptions(server))->FailedJobs("4711", 100, 5);
  EXPECT_TRUE(IsNotFound(jobs.status())) << jobs.status();
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(GitLab, FailedJobsRefuseHostileIds) {
  RecordingServer server({
      {200, R"([{"id": "5/../../../users", "name": "x", "web_url": "u"}])", {{"X-Next-Page", ""}}},
  });
  auto gitlab = GitLab(GitLabOptions(server));
  EXPECT_TRUE(IsInvalidArgument(gitlab->FailedJobs("4711/../1", 100, 5).status()));
  EXPECT_TRUE(server.requests().empty());
  // A job id from the forge goes into a path too.
  auto jobs = gitlab->FailedJobs("4711", 100, 5);
  EXPECT_EQ(jobs.status().code(), StatusCode::kInternal) << jobs.status();
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(Tail, KeepsTheLastBytesFromACharacterBoundary) {
  EXPECT_EQ(Tail("abc", 10), "abc");
  EXPECT_EQ(Tail("abc", 2), "bc");
  EXPECT_EQ(Tail("abc", 0), "");
  // "é" is two bytes and "€" three: a cut inside one drops its remaining bytes.
  EXPECT_EQ(Tail("x\xc3\xa9y", 2), "y");
  EXPECT_EQ(Tail("x\xe2\x82\xacy", 3), "y");
  EXPECT_EQ(Tail("x\xe2\x82\xacy", 4), "\xe2\x82\xacy");
}

TEST(GitLab, OpensADraftMergeRequest) {
  RecordingServer server(
      {{201, R"({"iid": 5, "web_url": "https://gl/group/sub/app/-/merge_requests/5"})"}});
  auto opened = GitLab(GitLabOptions(server))->Open(Draft());
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->id, "5");
  EXPECT_EQ(opened->url, "https://gl/group/sub/app/-/merge_requests/5");

  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].target, "/api/v4/projects/group%2Fsub%2Fapp/merge_requests");
  ExpectGitLabHeaders(requests[0], true);
  EXPECT_EQ(requests[0].JsonBody(), Json::parse(R"({"source_branch": "nightshift/agent/42",
      "target_branch": "main", "title": "Draft: Fix the flaky test", "description": "The *why*.",
      "labels": "nightshift,bot"})"));
}

TEST(GitLab, OpensAReadyMergeRequestByNumericProjectId) {
  RecordingServer server({{201, R"({"iid": 6, "web_url": "u"})"}});
  RemoteForgeOptions options = GitLabOptions(server);
  options.project = "1234";
  ChangeRequestDraft draft = Draft();
  draft.draft = false;
  draft.labels.clear();
  ASSERT_TRUE(GitLab(options)->Open(draft).ok());
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].target, "/api/v4/projects/1234/merge_requests");
  EXPECT_EQ(requests[0].JsonBody(), Json::parse(R"({"source_branch": "nightshift/agent/42",
      "target_branch": "main", "title": "Fix the flaky test", "description": "The *why*."})"));
}

TEST(GitLab, UpdateKeepsADraftADraft) {
  RecordingServer server({{200, R"({"iid": 5, "draft": true})"}, {200, R"({"iid": 5})"}});
  ASSERT_TRUE(GitLab(GitLabOptions(server))->Update("5", "New title", "New body").ok());
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(requests[0].target, "/api/v4/projects/group%2Fsub%2Fapp/merge_requests/5");
  EXPECT_EQ(requests[1].method, "PUT");
  EXPECT_EQ(requests[1].target, "/api/v4/projects/group%2Fsub%2Fapp/merge_requests/5");
  ExpectGitLabHeaders(requests[1], true);
  EXPECT_EQ(requests[1].JsonBody(),
            Json::parse(R"({"title": "Draft: New title", "description": "New body"})"));
}

TEST(GitLab, Comments) {
  RecordingServer server({{201, R"({"id": 9})"}});
  ASSERT_TRUE(GitLab(GitLabOptions(server))->Comment("5", "Run 42 finished.").ok());
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].target, "/api/v4/projects/group%2Fsub%2Fapp/merge_requests/5/notes");
  ExpectGitLabHeaders(requests[0], true);
  EXPECT_EQ(requests[0].JsonBody(), Json::parse(R"({"body": "Run 42 finished."})"));
}

TEST(GitLab, ReadsCommentsSkippingSystemNotes) {
  RecordingServer server({
      {200,
       R"([{"id": 1, "body": "added 1 commit", "system": true, "author": {"username": "bob"}},
                {"id": 2, "body": "/nightshift retry", "system": false,
                 "author": {"username": "alice"}, "created_at": "2024-01-01T00:00:00.000Z"}])",
       {{"X-Next-Page", "2"}}},
      {200,
       R"([{"id": 3, "body": "thanks", "author": {"username": "carol"}}])",
       {{"X-Next-Page", ""}}},
  });
  auto comments = GitLab(GitLabOptions(server))->Comments("5");
  ASSERT_TRUE(comments.ok()) << comments.status();
  ASSERT_EQ(comments->size(), 2u);
  EXPECT_EQ((*comments)[0].id, "2");
  EXPECT_EQ((*comments)[0].author, "alice");
  EXPECT_EQ((*comments)[0].body, "/nightshift retry");
  EXPECT_EQ((*comments)[0].created_at, "2024-01-01T00:00:00.000Z");
  EXPECT_EQ((*comments)[1].id, "3");
  EXPECT_EQ((*comments)[1].author, "carol");

  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(requests[0].target,
            "/api/v4/projects/group%2Fsub%2Fapp/merge_requests/5/notes"
            "?sort=asc&order_by=created_at&per_page=100&page=1");
  EXPECT_EQ(requests[1].target,
            "/api/v4/projects/group%2Fsub%2Fapp/merge_requests/5/notes"
            "?sort=asc&order_by=created_at&per_page=100&page=2");
  ExpectGitLabHeaders(requests[0], false);
}

TEST(GitLab, ConflictCarriesGitLabsMessage) {
  RecordingServer server(
      {{409,
        R"({"message": ["Another open merge request already exists for this source branch: !4"]})"}});
  auto opened = GitLab(GitLabOptions(server))->Open(Draft());
  EXPECT_TRUE(IsAlreadyExists(opened.status())) << opened.status();
  EXPECT_EQ(opened.status().message(),
            "gitlab: POST /projects/group%2Fsub%2Fapp/merge_requests: HTTP 409: Another open merge "
            "request already exists for this source branch: !4");
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(GitLab, ValidationErrorsNameTheFields) {
  RecordingServer server({{400, R"({"message": {"title": ["can't be blank"]}})"}});
  Status status = GitLab(GitLabOptions(server))->Comment("5", "x");
  EXPECT_TRUE(IsInvalidArgument(status));
  EXPECT_EQ(status.message(),
            "gitlab: POST /projects/group%2Fsub%2Fapp/merge_requests/5/notes: HTTP 400: title "
            "can't be blank");
}

TEST(Retries, ServerErrorThenSuccess) {
  RecordingServer server({
      {502, "<html>Bad Gateway</html>"},
      {201, R"({"number": 8, "html_url": "u"})"},
  });
  ChangeRequestDraft draft = Draft();
  draft.labels.clear();
  auto opened = GitHub(GitHubOptions(server))->Open(draft);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->id, "8");
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1].target, requests[0].target);
  EXPECT_EQ(requests[1].body, requests[0].body);
}

TEST(Retries, GitHubRateLimitWaitsForTheReset) {
  const int64_t now_s = SystemClock::Get().NowMs() / 1000;
  RecordingServer server({
      {403,
       R"({"message": "API rate limit exceeded for user ID 1."})",
       {{"x-ratelimit-remaining", "0"}, {"x-ratelimit-reset", std::to_string(now_s)}}},
      {201, R"({"id": 1})"},
  });
  ASSERT_TRUE(GitHub(GitHubOptions(server))->Comment("17", "hi").ok());
  EXPECT_EQ(server.requests().size(), 2u);
}

TEST(Retries, TooManyRequestsHonoursRetryAfter) {
  RecordingServer server({{429, "", {{"Retry-After", "0"}}}, {201, R"({"id": 1})"}});
  ASSERT_TRUE(GitLab(GitLabOptions(server))->Comment("5", "hi").ok());
  EXPECT_EQ(server.requests().size(), 2u);
}

TEST(Retries, ARateLimitBeyondRetryMaxFailsAtOnce) {
  const int64_t reset_s = SystemClock::Get().NowMs() / 1000 + 3600;
  RecordingServer server({
      {403,
       R"({"message": "API rate limit exceeded for user ID 1."})",
       {{"x-ratelimit-remaining", "0"}, {"x-ratelimit-reset", std::to_string(reset_s)}}},
  });
  Status status = GitHub(GitHubOptions(server))->Comment("17", "hi");
  EXPECT_TRUE(IsUnavailable(status)) << status;
  EXPECT_NE(status.message().find("github: POST /repos/octo/app/issues/17/comments: HTTP 403: "
                                  "API rate limit exceeded for user ID 1. (rate limited for "
                                  "another "),
            std::string::npos)
      << status;
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(Retries, ClientErrorIsNotRetried) {
  RecordingServer server({
      {422, R"({"message": "Validation Failed", "errors": [{"resource": "PullRequest",
          "code": "custom", "message": "A pull request already exists for octo:nightshift/agent/42."}],
          "documentation_url": "https://docs.github.com/rest"})"},
  });
  auto opened = GitHub(GitHubOptions(server))->Open(Draft());
  EXPECT_TRUE(IsInvalidArgument(opened.status())) << opened.status();
  EXPECT_EQ(opened.status().message(),
            "github: POST /repos/octo/app/pulls: HTTP 422: Validation Failed: A pull request "
            "already exists for octo:nightshift/agent/42.");
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(Retries, NotFoundIsNotRetried) {
  RecordingServer server({{404, R"({"message": "Not Found"})"}});
  Status status = GitHub(GitHubOptions(server))->Update("17", "t", "b");
  EXPECT_TRUE(IsNotFound(status)) << status;
  EXPECT_EQ(status.message(), "github: PATCH /repos/octo/app/pulls/17: HTTP 404: Not Found");
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(Retries, ExhaustedRetriesNameTheRequest) {
  RecordingServer server({
      {503, "Service Unavailable\n<html>"},
      {503, "Service Unavailable\n<html>"},
      {503, "Service Unavailable\n<html>"},
  });
  RemoteForgeOptions options = GitHubOptions(server);
  options.max_retries = 2;
  Status status = GitHub(options)->Update("5", "t", "b");
  EXPECT_TRUE(IsUnavailable(status)) << status;
  EXPECT_EQ(status.message(),
            "github: PATCH /repos/octo/app/pulls/5: HTTP 503: Service Unavailable (3 attempts)");
  EXPECT_EQ(server.requests().size(), 3u);
}

TEST(Retries, TransportErrorsAreRetriedThenReported) {
  // A port that was free a moment ago: bound, never listened on, closed.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const int port = ntohs(address.sin_port);
  close(fd);
  RemoteForgeOptions options;
  options.api_url = "http://127.0.0.1:" + std::to_string(port);
  options.project = "octo/app";
  options.token = "t";
  options.max_retries = 1;
  options.retry_base_ms = 5;
  options.timeout_ms = 2'000;
  Status status = MakeGitHub(options).value()->Comment("1", "hi");
  EXPECT_TRUE(IsUnavailable(status)) << status;
  EXPECT_TRUE(status.message().starts_with("github: POST /repos/octo/app/issues/1/comments: "))
      << status;
  EXPECT_TRUE(status.message().ends_with("(2 attempts)")) << status;
}

TEST(Retries, BackoffAndServerWaits) {
  HttpResponse limited;
  limited.status = 403;
  limited.headers = {{"x-ratelimit-remaining", "0"}, {"x-ratelimit-reset", "1000"}};
  EXPECT_TRUE(IsRateLimited(limited, ""));
  EXPECT_EQ(ServerWaitMs(limited, "", 990'500), 9'500);
  EXPECT_EQ(ServerWaitMs(limited, "", 2'000'000), 0);
  limited.headers = {{"retry-after", "30"}};
  EXPECT_EQ(ServerWaitMs(limited, "", 0), 30'000);
  limited.headers = {};
  EXPECT_TRUE(IsRateLimited(limited, "You have exceeded a secondary rate limit."));
  EXPECT_EQ(ServerWaitMs(limited, "You have exceeded a secondary rate limit.", 0), 60'000);
  EXPECT_FALSE(IsRateLimited(limited, "Resource not accessible by integration"));
}

// App authentication.

struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

// The PKCS#1 form GitHub hands out ("BEGIN RSA PRIVATE KEY").
std::string PrivatePem(EVP_PKEY* key) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  EXPECT_EQ(
      PEM_write_bio_PrivateKey_traditional(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr),
      1);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

std::string Base64UrlDecode(std::string_view text) {
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    int value = c >= 'A' && c <= 'Z'   ? c - 'A'
                : c >= 'a' && c <= 'z' ? c - 'a' + 26
                : c >= '0' && c <= '9' ? c - '0' + 52
                : c == '-'             ? 62
                : c == '_'             ? 63
                                       : -1;
    EXPECT_GE(value, 0) << "not base64url: " << text;
    buffer = (buffer << 6) | static_cast<uint32_t>(value & 0x3f);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  return out;
}

std::vector<std::string> Split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t end; (end = text.find(separator, start)) != std::string::npos; start = end + 1) {
    parts.push_back(text.substr(start, end - start));
  }
  parts.push_back(text.substr(start));
  return parts;
}

// Checks an App JWT: its header, claims at `now_s`, and RS256 signature by `key`.
void ExpectAppJwt(const std::string& authorization, EVP_PKEY* key, int64_t now_s) {
  ASSERT_TRUE(authorization.starts_with("Bearer ")) << authorization;
  const auto parts = Split(authorization.substr(7), '.');
  ASSERT_EQ(parts.size(), 3u) << authorization;
  EXPECT_EQ(Json::parse(Base64UrlDecode(parts[0])), Json::parse(R"({"alg":"RS256","typ":"JWT"})"));
  const Json claims = Json::parse(Base64UrlDecode(parts[1]));
  EXPECT_EQ(claims["iss"], "4242");
  EXPECT_EQ(claims["iat"], now_s - 60);
  EXPECT_EQ(claims["exp"], now_s + 540);
  for (const auto& part : parts) EXPECT_EQ(part.find('='), std::string::npos) << "padding";

  const std::string signed_part = parts[0] + "." + parts[1];
  const std::string signature = Base64UrlDecode(parts[2]);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  ASSERT_EQ(EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key), 1);
  EXPECT_EQ(
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                       signature.size(), reinterpret_cast<const unsigned char*>(signed_part.data()),
                       signed_part.size()),
      1)
      << "the JWT's signature does not verify";
}

// One RSA key for the suite: generating one takes a while.
EVP_PKEY* AppKey() {
  static const Pkey key(EVP_RSA_gen(2048));
  return key.get();
}

class GitHubApp : public ::testing::Test {
 protected:
  RemoteForgeOptions AppOptions(const RecordingServer& server) {
    RemoteForgeOptions options = GitHubOptions(server);
    options.token.clear();
    options.app_id = "4242";
    options.installation_id = "7";
    options.private_key_pem = PrivatePem(AppKey());
    options.clock = &clock_;
    return options;
  }

  FakeClock clock_;
};

TEST_F(GitHubApp, MintsAnInstallationTokenAndCachesIt) {
  ASSERT_NE(AppKey(), nullptr);
  const int64_t now_s = clock_.NowMs() / 1000;
  RecordingServer server({
      {201, Json{{"token", "ghs_minted"}, {"expires_at", IsoSeconds(clock_.NowMs() + 3'600'000)}}
                .dump()},
      {201, R"({"number": 17, "html_url": "u"})"},
      {201, R"({"id": 1})"},
  });
  auto github = GitHub(AppOptions(server));
  ChangeRequestDraft draft = Draft();
  draft.labels.clear();
  auto opened = github->Open(draft);
  ASSERT_TRUE(opened.ok()) << opened.status();
  clock_.AdvanceMs(int64_t{30} * 60'000);
  ASSERT_TRUE(github->Comment("17", "hi").ok());

  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].target, "/app/installations/7/access_tokens");
  EXPECT_EQ(requests[0].Header("Accept"), "application/vnd.github+json");
  ExpectAppJwt(requests[0].Header("Authorization"), AppKey(), now_s);
  EXPECT_EQ(requests[1].target, "/repos/octo/app/pulls");
  ExpectGitHubHeaders(requests[1], "ghs_minted", true);
  EXPECT_EQ(requests[2].target, "/repos/octo/app/issues/17/comments");
  ExpectGitHubHeaders(requests[2], "ghs_minted", true);
}

TEST_F(GitHubApp, RenewsATokenAMinuteBeforeItExpires) {
  const int64_t expires_ms = clock_.NowMs() + 3'600'000;
  RecordingServer server({
      {201, Json{{"token", "ghs_one"}, {"expires_at", IsoSeconds(expires_ms)}}.dump()},
      {201, R"({"id": 1})"},
      {201, Json{{"token", "ghs_two"}, {"expires_at", IsoSeconds(expires_ms + 3'600'000)}}.dump()},
      {201, R"({"id": 2})"},
  });
  auto github = GitHub(AppOptions(server));
  ASSERT_TRUE(github->Comment("17", "one").ok());
  clock_.AdvanceMs(3'600'000 - 59'000);
  ASSERT_TRUE(github->Comment("17", "two").ok());

  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 4u);
  EXPECT_EQ(requests[2].target, "/app/installations/7/access_tokens");
  ExpectAppJwt(requests[2].Header("Authorization"), AppKey(), clock_.NowMs() / 1000);
  ExpectGitHubHeaders(requests[3], "ghs_two", true);
}

TEST_F(GitHubApp, AMintingFailureIsReported) {
  RecordingServer server({{401, R"({"message": "A JSON web token could not be decoded"})"}});
  Status status = GitHub(AppOptions(server))->Comment("17", "hi");
  EXPECT_EQ(status.code(), StatusCode::kUnauthenticated) << status;
  EXPECT_EQ(status.message(),
            "github: POST /app/installations/7/access_tokens: HTTP 401: A JSON web token could "
            "not be decoded");
}

TEST_F(GitHubApp, RejectsKeysThatAreNotRsaPem) {
  RecordingServer server({});
  RemoteForgeOptions options = AppOptions(server);
  options.private_key_pem =
      "-----BEGIN RSA PRIVATE KEY-----\nnope\n-----END RSA PRIVATE KEY-----\n";
  EXPECT_TRUE(IsInvalidArgument(MakeGitHub(options).status()));
  Pkey ec(EVP_EC_gen("P-256"));
  ASSERT_NE(ec, nullptr);
  options.private_key_pem = PrivatePem(ec.get());
  EXPECT_TRUE(IsInvalidArgument(MakeGitHub(options).status()));
}

TEST(MakeForge, RefusesIncompleteOptions) {
  RemoteForgeOptions options;
  options.project = "octo/app";
  EXPECT_TRUE(IsInvalidArgument(MakeGitHub(options).status()));  // no token
  EXPECT_TRUE(IsInvalidArgument(MakeGitLab(options).status()));
  options.token = "t";
  EXPECT_TRUE(MakeGitHub(options).ok());  // api.github.com by default
  EXPECT_TRUE(MakeGitLab(options).ok());
  options.project = "octo";
  EXPECT_TRUE(IsInvalidArgument(MakeGitHub(options).status()));
  options.project = "octo/app/x";
  EXPECT_TRUE(IsInvalidArgument(MakeGitHub(options).status()));
  EXPECT_TRUE(MakeGitLab(options).ok());
  options.api_url = "ftp://example.com";
  EXPECT_TRUE(IsInvalidArgument(MakeGitLab(options).status()));
  options.api_url = "";
  options.token = "t\r\nX-Injected: 1";
  EXPECT_TRUE(IsInvalidArgument(MakeGitLab(options).status()));
  options.project = "octo/app";
  options.token.clear();
  options.app_id = "1";
  EXPECT_TRUE(IsInvalidArgument(MakeGitHub(options).status()));  // no installation or key
}

TEST(UrlEncode, EscapesAllButUnreserved) {
  EXPECT_EQ(UrlEncode("group/sub/app"), "group%2Fsub%2Fapp");
  EXPECT_EQ(UrlEncode("a-b.c_d~e f"), "a-b.c_d~e%20f");
}

}  // namespace
}  // namespace nightshift::forge
