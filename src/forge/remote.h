#pragma once

// Change requests on a hosted forge: GitHub pull requests and GitLab merge requests over their
// REST APIs. The platform (never the agent) opens them after it has pushed the run's branch,
// comments on them, updates them after a follow-up run, and reads their comments for
// `/nightshift …` instructions. Rate limits and server errors are retried with backoff, then
// reported as one clear error.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace nightshift {
class Clock;
}  // namespace nightshift

namespace nightshift::forge {

// In every comment the platform posts on a forge, so that its own comments, when they come back
// as webhook events, start nothing (triggers::LoopGuard).
inline constexpr std::string_view kCommentMarker = "<!-- nightshift -->";

struct ChangeRequestDraft {
  std::string title;
  std::string body;         // Markdown
  std::string head_branch;  // e.g. nightshift/agent/42 (already pushed)
  std::string base_branch;  // e.g. main
  std::vector<std::string> labels;
  bool draft = true;
};

struct RemoteChangeRequest {
  std::string id;   // GitHub: the pull request number; GitLab: the merge request iid
  std::string url;  // for people (html_url / web_url)
};

struct RemoteComment {
  std::string id;
  std::string author;
  std::string body;
  std::string created_at;  // as the forge gives it (ISO 8601)
};

// A CI job that failed, with the end of its log.
struct FailedJob {
  std::string name;
  std::string url;       // for people (html_url / web_url)
  std::string log_tail;  // the log's last bytes, as the forge stored them (not cleaned up)
};

// The failed jobs of CI run `ci_run_id` on `branch` as one text for an agent: a heading, then each
// job's name, link and log tail.
std::string FailedJobsLog(std::string_view ci_run_id, std::string_view branch,
                          const std::vector<FailedJob>& jobs);

struct RemoteForgeOptions {
  // https://api.github.com, or https://gitlab.example.com/api/v4; when empty, github.com's or
  // gitlab.com's.
  std::string api_url;
  std::string project;  // GitHub "owner/repo"; GitLab "group/subgroup/project" (or its id)
  std::string token;    // a personal/project access token; GitHub: or an App's (below)
  // GitHub App: when app_id is set, an installation token is minted with a JWT (RS256) signed
  // by private_key_pem and cached until shortly before it expires.
  std::string app_id;
  std::string installation_id;
  std::string private_key_pem;
  int max_retries = 4;
  int64_t retry_base_ms = 1000;
  int64_t retry_max_ms = 60'000;
  int64_t timeout_ms = 30'000;
  // A larger answer (a JSON page or a job's log, decompressed) fails its request with
  // ResourceExhausted, read no further.
  uint64_t max_response_bytes = uint64_t{64} << 20;
  // For App tokens' lifetimes and rate-limit resets; SystemClock when null. Not owned; must
  // outlive the forge.
  const Clock* clock = nullptr;
};

// Every call is one or a few HTTP requests, each retried on transport errors, HTTP 429, 5xx and
// rate limits (up to max_retries, then Unavailable naming the forge, the request and the last
// answer); other 4xx fail at once with the forge's message (NotFound for 404 and 410,
// Unauthenticated for 401, PermissionDenied for 403, AlreadyExists for 409, InvalidArgument
// for 400 and 422, FailedPrecondition for others). docs/forges.md lists the requests.
// `id` must be the decimal number the forge gave (InvalidArgument otherwise).
// Thread-safe.
class RemoteForge {
 public:
  virtual ~RemoteForge() = default;
  // Opens the change request and adds `labels`. Once it exists, a failure to add the labels is
  // logged, not returned, so the caller never loses the id of an opened change request.
  virtual StatusOr<RemoteChangeRequest> Open(const ChangeRequestDraft& draft) = 0;
  // Replaces title and body; a draft stays a draft.
  virtual Status Update(const std::string& id, const std::string& title,
                        const std::string& body) = 0;
  virtual Status Comment(const std::string& id, const std::string& body) = 0;
  // Every comment, oldest first (all pages).
  virtual StatusOr<std::vector<RemoteComment>> Comments(const std::string& id) = 0;
  // The failed jobs of CI run `ci_run_id` (GitHub: a workflow run id, its latest attempt, jobs
  // that concluded "failure" or "timed_out"; GitLab: a pipeline id, jobs in the "failed" state)
  // and the last `tail_bytes` of each one's log, for an agent fixing the failure. At most
  // `max_jobs`, the first ones (lowest job id) first; an empty list when none failed.
  // `ci_run_id` must be decimal (InvalidArgument otherwise, as is a `max_jobs` below 1).
  // NotFound when the run is unknown. A tail starts at a UTF-8 character boundary, so may be a
  // few bytes short; a job whose log is gone (HTTP 404 or 410: expired, erased) has an empty
  // tail. Any other failure to read a log fails the call.
  virtual StatusOr<std::vector<FailedJob>> FailedJobs(const std::string& ci_run_id,
                                                      size_t tail_bytes, int max_jobs) = 0;
};

// InvalidArgument for incomplete options (no project, no token and no App credentials, an App
// key that is not an RSA private key in PEM, an api_url that is not http(s)).
StatusOr<std::unique_ptr<RemoteForge>> MakeGitHub(RemoteForgeOptions options);
StatusOr<std::unique_ptr<RemoteForge>> MakeGitLab(RemoteForgeOptions options);

}  // namespace nightshift::forge
