#include "forge/remote_http.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <thread>

#include "core/clock.h"
#include "core/log.h"

namespace nightshift::forge {
namespace {

constexpr size_t kMaxMessageBytes = 200;
constexpr int64_t kSecondaryLimitWaitMs = 60'000;  // GitHub: "wait for at least one minute"

std::optional<int64_t> ParseInt(std::string_view text) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || text.empty()) return std::nullopt;
  return value;
}

// The first present of two header names ("x-ratelimit-reset" on GitHub, "ratelimit-reset" on
// GitLab).
std::string EitherHeader(const HttpResponse& response, const std::string& a, const std::string& b) {
  std::string value = response.Header(a);
  return value.empty() ? response.Header(b) : value;
}

bool IsRedirect(int http_status) {
  return http_status == 301 || http_status == 302 || http_status == 303 || http_status == 307 ||
         http_status == 308;
}

// "https://host:port" of an absolute URL, without any user info; for messages.
std::string Origin(std::string_view url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return "";
  const size_t authority_start = scheme_end + 3;
  const size_t authority_end = url.find_first_of("/?#", authority_start);
  std::string_view authority = url.substr(authority_start, authority_end - authority_start);
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
    authority.remove_prefix(at + 1);
  }
  return StrCat(url.substr(0, authority_start), authority);
}

bool MentionsRateLimit(std::string_view message) {
  std::string lower(message);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower.find("rate limit") != std::string::npos;
}

// One line of at most kMaxMessageBytes: control characters become spaces.
std::string OneLine(std::string_view text) {
  std::string line(text.substr(0, kMaxMessageBytes));
  for (char& c : line) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  line.erase(0, line.find_first_not_of(' '));
  line.erase(line.find_last_not_of(' ') + 1);
  return line;
}

// The forge's message for an answer, for retry decisions and errors.
std::string AnswerMessage(const HttpResponse& response, ErrorTextFn error_text) {
  auto json = ParseJson(response.body);
  if (json.ok() && json->is_object()) return OneLine(error_text(*json));
  const std::string_view body = response.body;
  return OneLine(body.substr(0, body.find('\n')));
}

}  // namespace

RestClient::RestClient(std::string forge, ErrorTextFn error_text, const RemoteForgeOptions& options)
    : forge_(std::move(forge)),
      error_text_(error_text),
      api_url_(options.api_url),
      max_retries_(std::max(0, options.max_retries)),
      retry_base_ms_(std::max<int64_t>(1, options.retry_base_ms)),
      retry_max_ms_(std::max<int64_t>(1, options.retry_max_ms)),
      timeout_ms_(options.timeout_ms),
      max_response_bytes_(options.max_response_bytes),
      clock_(options.clock != nullptr ? *options.clock : SystemClock::Get()) {}

int64_t RestClient::BackoffMs(int attempt) const {
  int64_t wait = retry_base_ms_;
  for (int i = 1; i < attempt && wait < retry_max_ms_; ++i) wait *= 2;
  return std::min(wait, retry_max_ms_);
}

StatusOr<HttpResponse> RestClient::Send(const RestRequest& request) const {
  std::map<std::string, std::string> headers = request.headers;
  std::string body;
  if (request.body) {
    headers["Content-Type"] = "application/json";
    // Titles and bodies may come from model output: invalid UTF-8 is replaced, not thrown.
    body = request.body->dump(-1, ' ', false, Json::error_handler_t::replace);
  }
  const std::string what = StrCat(forge_, ": ", request.method, " ", request.path);
  const bool follow = request.follow_redirect && request.method == "GET";
  ASSIGN_OR_RETURN(HttpResponse response, SendWithRetries(request.method, api_url_ + request.path,
                                                          headers, body, what, follow));
  if (!IsRedirect(response.status)) return response;
  ASSIGN_OR_RETURN(std::string location, RedirectTarget(response, what));
  // Only the origin is named: the rest of a pre-signed URL is as good as a credential.
  return SendWithRetries("GET", location, {}, "", StrCat(what, " -> ", Origin(location)), false);
}

StatusOr<std::string> RestClient::RedirectTarget(const HttpResponse& response,
                                                 const std::string& what) const {
  std::string location = response.Header("location");
  const bool https = location.starts_with("https://");
  if (!https && !location.starts_with("http://")) {
    return InternalError(StrCat(what, ": unexpected answer: HTTP ", response.status,
                                " to a Location that is not an http(s) URL"));
  }
  if (!https && api_url_.starts_with("https://")) {
    return InternalError(StrCat(what, ": unexpected answer: HTTP ", response.status,
                                " from https to http: ", Origin(location)));
  }
  if (!IsHeaderSafe(location) || Origin(location).ends_with("://")) {  // no host
    return InternalError(
        StrCat(what, ": unexpected answer: HTTP ", response.status, " to a malformed Location"));
  }
  return location;
}

StatusOr<HttpResponse> RestClient::SendWithRetries(
    const std::string& method, const std::string& url,
    const std::map<std::string, std::string>& headers, const std::string& body,
    const std::string& what, bool accept_redirect) const {
  const int attempts = max_retries_ + 1;
  for (int attempt = 1;; ++attempt) {
    auto response =
        HttpRequest(method, url, headers, body, timeout_ms_, nullptr, max_response_bytes_);
    std::string last;  // what went wrong this time, for the final error
    int64_t wait_ms = 0;
    if (!response.ok()) {
      if (!IsUnavailable(response.status())) return response.status().WithContext(what);
      last = response.status().message();
    } else if ((response->status >= 200 && response->status < 300) ||
               (accept_redirect && IsRedirect(response->status))) {
      return response;
    } else {
      const std::string message = AnswerMessage(*response, error_text_);
      last = DescribeAnswer(*response, error_text_);
      const int code = response->status;
      const bool retryable = code == 429 || (code >= 500 && code < 600) ||
                             (code == 403 && IsRateLimited(*response, message));
      if (!retryable) return HttpErrorStatus(code, StrCat(what, ": ", last));
      wait_ms = ServerWaitMs(*response, message, clock_.NowMs());
    }
    if (attempt >= attempts) {
      return UnavailableError(
          StrCat(what, ": ", last, " (", attempts, attempts == 1 ? " attempt)" : " attempts)"));
    }
    if (wait_ms > retry_max_ms_) {
      return UnavailableError(
          StrCat(what, ": ", last, " (rate limited for another ", (wait_ms + 999) / 1000, " s)"));
    }
    if (wait_ms <= 0) wait_ms = BackoffMs(attempt);
    log::Get("forge")->warn("{}: {}; retry {}/{} in {} ms", what, last, attempt, max_retries_,
                            wait_ms);
    std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
  }
}

StatusOr<Json> RestClient::ParseBody(const RestRequest& request,
                                     const HttpResponse& response) const {
  auto json = ParseJson(response.body);
  if (!json.ok()) {
    return InternalError(StrCat(forge_, ": ", request.method, " ", request.path,
                                ": unexpected answer: ", json.status().message()));
  }
  return json;
}

bool IsRateLimited(const HttpResponse& response, std::string_view message) {
  if (response.status == 429) return true;
  if (response.status != 403) return false;
  return EitherHeader(response, "x-ratelimit-remaining", "ratelimit-remaining") == "0" ||
         !response.Header("retry-after").empty() || MentionsRateLimit(message);
}

int64_t ServerWaitMs(const HttpResponse& response, std::string_view message, int64_t now_ms) {
  if (auto seconds = ParseInt(response.Header("retry-after"))) {
    return std::max<int64_t>(0, *seconds * 1000);
  }
  if (EitherHeader(response, "x-ratelimit-remaining", "ratelimit-remaining") == "0") {
    if (auto reset = ParseInt(EitherHeader(response, "x-ratelimit-reset", "ratelimit-reset"))) {
      return std::max<int64_t>(0, *reset * 1000 - now_ms);
    }
  }
  if (response.status == 403 && MentionsRateLimit(message)) return kSecondaryLimitWaitMs;
  return 0;
}

std::string DescribeAnswer(const HttpResponse& response, ErrorTextFn error_text) {
  const std::string message = AnswerMessage(response, error_text);
  return message.empty() ? StrCat("HTTP ", response.status)
                         : StrCat("HTTP ", response.status, ": ", message);
}

Status HttpErrorStatus(int http_status, std::string message) {
  switch (http_status) {
    case 400:
    case 422:
      return InvalidArgumentError(std::move(message));
    case 401:
      return UnauthenticatedError(std::move(message));
    case 403:
      return PermissionDeniedError(std::move(message));
    case 404:
    case 410:  // Gone: GitHub's answer for an expired job log, among others
      return NotFoundError(std::move(message));
    case 409:
      return AlreadyExistsError(std::move(message));
    default:
      return FailedPreconditionError(std::move(message));
  }
}

std::string UrlEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

bool IsDecimal(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); });
}

StatusOr<std::string> NormalizeApiUrl(std::string_view url, std::string_view fallback) {
  std::string normalized(url.empty() ? fallback : url);
  while (!normalized.empty() && normalized.back() == '/') normalized.pop_back();
  if (!normalized.starts_with("https://") && !normalized.starts_with("http://")) {
    return InvalidArgumentError(
        StrCat("api_url must start with https:// or http://: '", OneLine(normalized), "'"));
  }
  return normalized;
}

bool IsHeaderSafe(std::string_view value) {
  return std::none_of(value.begin(), value.end(),
                      [](unsigned char c) { return c <= 0x20 || c == 0x7f; });
}

std::string IdText(const Json& value) {
  if (value.is_number_unsigned()) return std::to_string(value.get<uint64_t>());
  if (value.is_number_integer()) return std::to_string(value.get<int64_t>());
  if (value.is_string()) return value.get<std::string>();
  return "";
}

std::string Tail(std::string_view text, size_t bytes) {
  if (text.size() > bytes) {
    text.remove_prefix(text.size() - bytes);
    for (int i = 0; i < 3 && !text.empty() && (static_cast<unsigned char>(text[0]) & 0xc0) == 0x80;
         ++i) {
      text.remove_prefix(1);
    }
  }
  return std::string(text);
}

StatusOr<std::vector<FailedJob>> WithLogTails(
    std::vector<ListedJob> listed, size_t tail_bytes, int max_jobs,
    const std::function<StatusOr<HttpResponse>(const std::string& job_id)>& fetch_log) {
  // Decimal ids without leading zeros: the shorter is the lower.
  std::stable_sort(listed.begin(), listed.end(), [](const ListedJob& a, const ListedJob& b) {
    return a.id.size() != b.id.size() ? a.id.size() < b.id.size() : a.id < b.id;
  });
  if (listed.size() > static_cast<size_t>(std::max(0, max_jobs))) listed.resize(max_jobs);
  std::vector<FailedJob> jobs;
  jobs.reserve(listed.size());
  for (ListedJob& listed_job : listed) {
    FailedJob job = std::move(listed_job.job);
    if (tail_bytes > 0) {
      // One log in memory at a time; only its tail is kept.
      auto answer = fetch_log(listed_job.id);
      if (answer.ok()) {
        job.log_tail = Tail(answer->body, tail_bytes);
      } else if (IsNotFound(answer.status())) {
        log::Get("forge")->warn("the log of failed job {} is gone: {}", listed_job.id,
                                answer.status().message());
      } else {
        return answer.status();
      }
    }
    jobs.push_back(std::move(job));
  }
  return jobs;
}

std::string FailedJobsLog(std::string_view ci_run_id, std::string_view branch,
                          const std::vector<FailedJob>& jobs) {
  std::string log =
      StrCat("# CI run ", ci_run_id, " failed", branch.empty() ? "" : " on ", branch, "\n");
  for (const FailedJob& job : jobs) {
    log += StrCat("\n## ", job.name, " (", job.url, ")\n\n", job.log_tail, "\n");
  }
  return log;
}

}  // namespace nightshift::forge
