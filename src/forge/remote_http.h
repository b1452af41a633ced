#pragma once

// The REST plumbing GitHub and GitLab share: one request with retries and backoff, the forge's
// error text in a one-line Status, URL encoding and option checks.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

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
};

// Sends requests to one forge's API. Thread-safe (it holds no mutable state).
class RestClient {
 public:
  // `forge` ("github", "gitlab") starts every error message. `options` gives api_url (already
  // normalized), the retry policy, the timeout and the clock.
  RestClient(std::string forge, ErrorTextFn error_text, const RemoteForgeOptions& options);

  // The 2xx answer to `request`. Transport errors, 429, 5xx and rate limits (IsRateLimited) are
  // retried up to max_retries times, waiting as the server asks (ServerWaitMs) or with
  // exponential backoff from retry_base_ms capped at retry_max_ms; then Unavailable:
  // "github: POST /repos/o/r/pulls: HTTP 502 (5 attempts)". A server that asks for a wait
  // longer than retry_max_ms is not waited for: Unavailable at once. Other answers fail at once
  // with HttpErrorStatus. The error never contains the request's headers.
  StatusOr<HttpResponse> Send(const RestRequest& request) const;

  // The body of a 2xx answer to `request` as JSON; Internal when it is not JSON.
  StatusOr<Json> ParseBody(const RestRequest& request, const HttpResponse& response) const;

  const Clock& clock() const { return clock_; }

 private:
  int64_t BackoffMs(int attempt) const;

  std::string forge_;
  ErrorTextFn error_text_;
  std::string api_url_;
  int max_retries_;
  int64_t retry_base_ms_;
  int64_t retry_max_ms_;
  int64_t timeout_ms_;
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
// PermissionDenied, 404 NotFound, 409 AlreadyExists, other FailedPrecondition.
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

}  // namespace nightshift::forge
