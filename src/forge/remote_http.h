#pragma once

// The REST plumbing GitHub and GitLab share: one request with retries and backoff, the forge's
// error text in a one-line Status, URL encoding and option checks.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/http.h"
#include "core/json.h"
#include "core/status.h"
#include "forge/remote.h"

namespace nightshift {
class Clock;
}  // namespace nightshift

namespace nightshift::forge {

// The forge's human message in a parsed error body; "" when it has none.
using ErrorTextFn = std::string (*)(const Json& body);

struct RestRequest {
  std::string method;  // GET, POST, PUT, PATCH
  std::string path;    // below api_url, with the query: "/repos/o/r/pulls?page=2"
  std::map<std::string, std::string> headers;
  std::optional<Json> body;  // sent as JSON (with Content-Type) when set
  // For a GET that answers with a redirect to a download (GitHub's job logs: a pre-signed URL on
  // another host): one 301/302/303/307/308 is followed to its Location, which must be an
  // absolute http(s) URL (https when api_url is). That GET carries none of `headers` (the
  // token must not leave the forge), and is retried like the first. One hop only: a second
  // redirect fails like any other 3xx.
  bool follow_redirect = false;
};

// Sends requests to one forge's API. Thread-safe (it holds no mutable state).
class RestClient {
 public:
  // `forge` ("github", "gitlab") starts every error message. `options` gives api_url (already
  // normalized), the retry policy, the timeout, the largest answer and the clock.
  RestClient(std::string forge, ErrorTextFn error_text, const RemoteForgeOptions& options);

  // The 2xx answer to `request`. Transport errors, 429, 5xx and rate limits (IsRateLimited) are
  // retried up to max_retries times, waiting as the server asks (ServerWaitMs) or with
  // exponential backoff from retry_base_ms capped at retry_max_ms; then Unavailable:
  // "github: POST /repos/o/r/pulls: HTTP 502 (5 attempts)". A server that asks for a wait
  // longer than retry_max_ms is not waited for: Unavailable at once. Other answers fail at once
  // with HttpErrorStatus. An answer larger than max_response_bytes is ResourceExhausted, not
  // retried. The error never contains the request's headers, nor a redirect's path or query
  // (a pre-signed URL's signature): "github: GET /repos/o/r/actions/jobs/1/logs -> https://host".
  StatusOr<HttpResponse> Send(const RestRequest& request) const;

  // The body of a 2xx answer to `request` as JSON; Internal when it is not JSON.
  StatusOr<Json> ParseBody(const RestRequest& request, const HttpResponse& response) const;

  const Clock& clock() const { return clock_; }

 private:
  int64_t BackoffMs(int attempt) const;
  // One URL with the retry policy; `what` names it in errors and logs. A 3xx answer is returned
  // when `accept_redirect`, else it is an error like any non-2xx.
  StatusOr<HttpResponse> SendWithRetries(const std::string& method, const std::string& url,
                                         const std::map<std::string, std::string>& headers,
                                         const std::string& body, const std::string& what,
                                         bool accept_redirect) const;
  // Where a redirect answer points, checked as RestRequest::follow_redirect says.
  StatusOr<std::string> RedirectTarget(const HttpResponse& response, const std::string& what) const;

  std::string forge_;
  ErrorTextFn error_text_;
  std::string api_url_;
  int max_retries_;
  int64_t retry_base_ms_;
  int64_t retry_max_ms_;
  int64_t timeout_ms_;
  uint64_t max_response_bytes_;
  const Clock& clock_;
};

// A rate-limit answer: 429, or 403 with x-ratelimit-remaining (or ratelimit-remaining) 0, a
// retry-after header, or a "rate limit" message (GitHub's secondary limits).
bool IsRateLimited(const HttpResponse& response, std::string_view message);

// Milliseconds the server asks to wait before the next try: retry-after seconds; else, with no
// requests remaining, until x-ratelimit-reset (epoch seconds); else one minute for a GitHub
// secondary rate limit. 0 when it does not say or the time has already come.
int64_t ServerWaitMs(const HttpResponse& response, std::string_view message, int64_t now_ms);

// "HTTP 422: Validation Failed: A pull request already exists", one line. The message comes
// from `error_text` on a JSON body, else from the body's first line (at most 200 bytes).
std::string DescribeAnswer(const HttpResponse& response, ErrorTextFn error_text);

// The Status for a final non-2xx answer: 400/422 InvalidArgument, 401 Unauthenticated, 403
// PermissionDenied, 404 and 410 NotFound, 409 AlreadyExists, other FailedPrecondition.
Status HttpErrorStatus(int http_status, std::string message);

// Percent-encodes all but RFC 3986 unreserved characters: "group/project" -> "group%2Fproject".
std::string UrlEncode(std::string_view text);

// Whether `text` is a non-empty run of ASCII digits.
bool IsDecimal(std::string_view text);

// `url` without trailing slashes, or `fallback` when empty; InvalidArgument unless http(s).
StatusOr<std::string> NormalizeApiUrl(std::string_view url, std::string_view fallback);

// Whether `value` may go into an HTTP header (no control characters, no spaces).
bool IsHeaderSafe(std::string_view value);

// A JSON number or string id as text: 42 -> "42"; "" for other types.
std::string IdText(const Json& value);

// The last at most `bytes` of `text`, starting at a UTF-8 character boundary (leading
// continuation bytes dropped, at most three).
std::string Tail(std::string_view text, size_t bytes);

// A failed CI job as the forge listed it: `id` is decimal.
struct ListedJob {
  std::string id;
  FailedJob job;
};

// RemoteForge::FailedJobs after the listing, for both forges: the `max_jobs` lowest ids, in
// order, each with the tail of the log `fetch_log(id)` answers (whole, at most
// max_response_bytes). A log that is NotFound (HTTP 404 or 410) leaves an empty tail, with a
// warning; other errors are returned.
StatusOr<std::vector<FailedJob>> WithLogTails(
    std::vector<ListedJob> listed, size_t tail_bytes, int max_jobs,
    const std::function<StatusOr<HttpResponse>(const std::string& job_id)>& fetch_log);

}  // namespace nightshift::forge
