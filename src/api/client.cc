#include "api/client.h"

#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <optional>
#include <thread>
#include <utility>

namespace nightshift::api {

// ---------------------------------------------------------------------------------------------
// SseParser

Status SseParser::Feed(std::string_view chunk, const Handler& handler) {
  size_t i = 0;
  if (skip_next_lf_ && !chunk.empty()) {
    // "\r\n" split across two chunks: the '\r' already ended the line.
    if (chunk[0] == '\n') i = 1;
    skip_next_lf_ = false;
  }
  while (i < chunk.size()) {
    size_t end = chunk.find_first_of("\r\n", i);
    size_t piece = (end == std::string_view::npos ? chunk.size() : end) - i;
    if (line_.size() + piece > kMaxLineBytes) {
      return InvalidArgumentError(
          StrCat("event stream line longer than ", kMaxLineBytes, " bytes"));
    }
    if (end == std::string_view::npos) {
      line_.append(chunk.substr(i));
      break;
    }
    std::string_view line;
    if (line_.empty()) {
      line = chunk.substr(i, piece);
    } else {
      line_.append(chunk.substr(i, piece));
      line = line_;
    }
    i = end + 1;
    if (chunk[end] == '\r') {
      if (i == chunk.size()) {
        skip_next_lf_ = true;
      } else if (chunk[i] == '\n') {
        ++i;
      }
    }
    Status status = ProcessLine(line, handler);
    line_.clear();  // only now: `line` may point into it
    RETURN_IF_ERROR(status);
  }
  return OkStatus();
}

Status SseParser::ProcessLine(std::string_view line, const Handler& handler) {
  if (line.empty()) {
    // A blank line dispatches the event being assembled, if it has data.
    if (!has_data_) {
      event_type_.clear();
      return OkStatus();
    }
    SseEvent event;
    event.id = last_event_id_;
    if (!event_type_.empty()) event.type = std::move(event_type_);
    event.data = std::move(data_);
    event_type_.clear();
    data_.clear();
    has_data_ = false;
    return handler(event);
  }
  if (line.front() == ':') return OkStatus();  // a comment, e.g. ": keep-alive"

  std::string_view field = line;
  std::string_view value;
  if (size_t colon = line.find(':'); colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "event") {
    event_type_ = value;
  } else if (field == "data") {
    if (data_.size() + value.size() + 1 > kMaxLineBytes) {
      return InvalidArgumentError(
          StrCat("event stream event larger than ", kMaxLineBytes, " bytes"));
    }
    if (has_data_) data_.push_back('\n');
    data_.append(value);
    has_data_ = true;
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) last_event_id_ = value;
  }
  // "retry" and unknown fields are ignored.
  return OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Helpers

namespace {

// Splits "http[s]://authority[/path]" into "scheme://authority" and "/path" (without a trailing
// '/'). A URL without a scheme is taken to be http.
Status SplitBaseUrl(std::string_view url, std::string* origin, std::string* prefix) {
  std::string_view rest = url;
  std::string scheme = "http";
  if (size_t sep = url.find("://"); sep != std::string_view::npos) {
    scheme = std::string(url.substr(0, sep));
    std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    rest = url.substr(sep + 3);
  }
  if (scheme != "http" && scheme != "https") {
    return InvalidArgumentError(
        StrCat("the server URL must start with http:// or https://, got '", url, "'"));
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
  if (authority.empty() || authority.find_first_of("@?# ") != std::string_view::npos ||
      path.find_first_of("?# ") != std::string_view::npos) {
    return InvalidArgumentError(StrCat("malformed server URL '", url, "'"));
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  *origin = StrCat(scheme, "://", authority);
  *prefix = std::string(path);
  return OkStatus();
}

std::string ErrorReason(httplib::Error error) {
  switch (error) {
    case httplib::Error::Connection:
      return "could not connect";
    case httplib::Error::ConnectionTimeout:
      return "connecting timed out";
    case httplib::Error::Read:
      return "the connection failed or timed out while reading the answer";
    case httplib::Error::Write:
      return "the connection failed while sending the request";
    case httplib::Error::SSLConnection:
      return "the TLS handshake failed";
    case httplib::Error::SSLServerVerification:
      return "the server's TLS certificate did not verify";
    case httplib::Error::SSLLoadingCerts:
      return "could not load the TLS CA certificates";
    default:
      return StrCat("error ", static_cast<int>(error), " (", httplib::to_string(error), ")");
  }
}

StatusCode CodeForHttpStatus(int http_status) {
  switch (http_status) {
    case 400:
      return StatusCode::kInvalidArgument;
    case 401:
      return StatusCode::kUnauthenticated;
    case 403:
      return StatusCode::kPermissionDenied;
    case 404:
      return StatusCode::kNotFound;
    case 409:
      return StatusCode::kFailedPrecondition;
    case 413:
    case 429:
      return StatusCode::kResourceExhausted;
    case 502:
    case 503:
    case 504:
      return StatusCode::kUnavailable;
    default:
      return StatusCode::kInternal;
  }
}

std::optional<StatusCode> CodeForName(std::string_view name) {
  static constexpr std::pair<std::string_view, StatusCode> kCodes[] = {
      {"invalid_argument", StatusCode::kInvalidArgument},
      {"unauthenticated", StatusCode::kUnauthenticated},
      {"permission_denied", StatusCode::kPermissionDenied},
      {"not_found", StatusCode::kNotFound},
      {"already_exists", StatusCode::kAlreadyExists},
      {"failed_precondition", StatusCode::kFailedPrecondition},
      {"payload_too_large", StatusCode::kResourceExhausted},
      {"resource_exhausted", StatusCode::kResourceExhausted},
      {"deadline_exceeded", StatusCode::kDeadlineExceeded},
      {"cancelled", StatusCode::kCancelled},
      {"unavailable", StatusCode::kUnavailable},
      {"internal", StatusCode::kInternal},
  };
  for (const auto& [n, code] : kCodes) {
    if (n == name) return code;
  }
  return std::nullopt;
}

// The first line of an unexpected body, printable and short, for an error message.
std::string BodySnippet(std::string_view body) {
  std::string out;
  for (char c : body.substr(0, body.find('\n'))) {
    if (out.size() >= 200) {
      out += "...";
      break;
    }
    out.push_back(std::isprint(static_cast<unsigned char>(c)) ? c : '?');
  }
  return out;
}

std::string Serialize(const Json& json) {
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace

std::string UrlEncode(std::string_view s) {
  bool only_dots = std::all_of(s.begin(), s.end(), [](char c) { return c == '.'; });
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '_' || c == '~' || (c == '.' && !only_dots)) {
      out.push_back(c);
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xf]);
    }
  }
  return out;
}

Status StatusFromHttpError(int http_status, std::string_view body) {
  StatusCode code = CodeForHttpStatus(http_status);
  if (auto parsed = ParseJson(body); parsed.ok()) {
    if (auto error = FromJson<ErrorBody>(*parsed); error.ok() && !error->error.message.empty()) {
      return Status(CodeForName(error->error.code).value_or(code), error->error.message);
    }
  }
  std::string snippet = BodySnippet(body);
  return Status(
      code, StrCat("the server answered HTTP ", http_status, snippet.empty() ? "" : ": ", snippet));
}

// ---------------------------------------------------------------------------------------------
// ApiClient

StatusOr<std::unique_ptr<ApiClient>> ApiClient::Create(Options options) {
  std::string origin;
  std::string prefix;
  RETURN_IF_ERROR(SplitBaseUrl(options.base_url, &origin, &prefix));
  while (!options.base_url.empty() && options.base_url.back() == '/') options.base_url.pop_back();
  std::unique_ptr<httplib::Client> http;
  try {
    http = std::make_unique<httplib::Client>(origin);
  } catch (const std::exception& e) {
    return InvalidArgumentError(StrCat("server URL '", options.base_url, "': ", e.what()));
  }
  if (!http->is_valid()) {
    return InvalidArgumentError(StrCat("cannot use the server URL '", options.base_url, "'"));
  }
  http->set_connection_timeout(options.connect_timeout);
  http->set_write_timeout(options.request_timeout);
  http->set_follow_location(false);
  http->set_tcp_nodelay(true);  // headers and body go in two writes: no Nagle delay
  if (!options.token.empty()) http->set_bearer_token_auth(options.token);
  return std::unique_ptr<ApiClient>(
      new ApiClient(std::move(options), std::move(prefix), std::move(http)));
}

ApiClient::ApiClient(Options options, std::string prefix, std::unique_ptr<httplib::Client> http)
    : options_(std::move(options)), prefix_(std::move(prefix)), http_(std::move(http)) {}

ApiClient::~ApiClient() = default;

namespace {

StatusOr<Json> Answer(const httplib::Result& result, std::string_view method, std::string_view path,
                      const std::string& base_url) {
  if (!result) {
    return UnavailableError(StrCat("cannot reach the Nightshift server at ", base_url, ": ",
                                   ErrorReason(result.error())));
  }
  const httplib::Response& response = *result;
  if (response.status < 200 || response.status >= 300) {
    return StatusFromHttpError(response.status, response.body);
  }
  if (response.status == 204 || response.body.empty()) return Json(nullptr);
  auto json = ParseJson(response.body);
  if (!json.ok()) {
    return InternalError(StrCat("the server's answer to ", method, " ", path,
                                " is not JSON: ", json.status().message()));
  }
  return json;
}

}  // namespace

StatusOr<Json> ApiClient::Get(std::string_view path) {
  http_->set_read_timeout(options_.request_timeout);
  auto result = http_->Get(prefix_ + std::string(path), {{"Accept", "application/json"}});
  return Answer(result, "GET", path, options_.base_url);
}

StatusOr<Json> ApiClient::Post(std::string_view path, const Json& body) {
  http_->set_read_timeout(options_.request_timeout);
  std::string text = body.is_null() ? "" : Serialize(body);
  auto result = http_->Post(prefix_ + std::string(path), {{"Accept", "application/json"}}, text,
                            body.is_null() ? "" : "application/json");
  return Answer(result, "POST", path, options_.base_url);
}

StatusOr<Json> ApiClient::Delete(std::string_view path) {
  http_->set_read_timeout(options_.request_timeout);
  auto result = http_->Delete(prefix_ + std::string(path), {{"Accept", "application/json"}});
  return Answer(result, "DELETE", path, options_.base_url);
}

// ---------------------------------------------------------------------------------------------
// Typed calls

namespace {

// The answer read as `S`; Internal, naming the call, when it does not have that shape.
template <Shape S>
StatusOr<S> As(StatusOr<Json> answer, std::string_view method, std::string_view path) {
  if (!answer.ok()) return std::move(answer).status();
  auto value = FromJson<S>(*answer);
  if (!value.ok()) {
    return InternalError(StrCat("the server's answer to ", method, " ", path,
                                " is malformed: ", value.status().message()));
  }
  return value;
}

// "?a=1&b=2" from the pairs whose value is not empty.
std::string Query(std::initializer_list<std::pair<std::string_view, std::string>> params) {
  std::string query;
  for (const auto& [key, value] : params) {
    if (!value.empty()) query += StrCat(query.empty() ? "?" : "&", key, "=", UrlEncode(value));
  }
  return query;
}

}  // namespace

StatusOr<Repository> ApiClient::AddRepository(const RepositoryRequest& request) {
  constexpr std::string_view kPath = "/api/v1/repositories";
  return As<Repository>(Post(kPath, ToJson(request)), "POST", kPath);
}

StatusOr<std::vector<Repository>> ApiClient::ListRepositories() {
  constexpr std::string_view kPath = "/api/v1/repositories";
  ASSIGN_OR_RETURN(RepositoryList list, As<RepositoryList>(Get(kPath), "GET", kPath));
  return std::move(list.repositories);
}

Status ApiClient::RemoveRepository(std::string_view name) {
  return Delete(StrCat("/api/v1/repositories/", UrlEncode(name))).status();
}

StatusOr<Run> ApiClient::CreateRun(const RunRequest& request) {
  constexpr std::string_view kPath = "/api/v1/runs";
  return As<Run>(Post(kPath, ToJson(request)), "POST", kPath);
}

StatusOr<RunList> ApiClient::ListRuns(const RunFilter& filter) {
  const std::string path = StrCat(
      "/api/v1/runs", Query({{"repo", filter.repo},
                             {"state", filter.state},
                             {"limit", filter.limit ? std::to_string(*filter.limit) : ""},
                             {"before", filter.before ? std::to_string(*filter.before) : ""}}));
  return As<RunList>(Get(path), "GET", path);
}

StatusOr<Run> ApiClient::GetRun(int64_t run_id) {
  const std::string path = StrCat("/api/v1/runs/", run_id);
  return As<Run>(Get(path), "GET", path);
}

StatusOr<IncomingEventList> ApiClient::ListIncoming(std::optional<int64_t> limit,
                                                    std::optional<int64_t> before) {
  const std::string path =
      StrCat("/api/v1/events", Query({{"limit", limit ? std::to_string(*limit) : ""},
                                      {"before", before ? std::to_string(*before) : ""}}));
  return As<IncomingEventList>(Get(path), "GET", path);
}

StatusOr<IncomingEvent> ApiClient::ReplayIncoming(int64_t id) {
  const std::string path = StrCat("/api/v1/events/", id, "/replay");
  return As<IncomingEvent>(Post(path, Json()), "POST", path);
}

StatusOr<ScheduleList> ApiClient::ListSchedules() {
  return As<ScheduleList>(Get("/api/v1/schedules"), "GET", "/api/v1/schedules");
}

StatusOr<AgentList> ApiClient::ListAgents() {
  return As<AgentList>(Get("/api/v1/agents"), "GET", "/api/v1/agents");
}

StatusOr<AgentList> ApiClient::RefreshAgents(const std::string& repository) {
  const std::string path =
      StrCat("/api/v1/repositories/", UrlEncode(repository), "/agents/refresh");
  return As<AgentList>(Post(path, Json()), "POST", path);
}

StatusOr<Run> ApiClient::CancelRun(int64_t run_id) {
  const std::string path = StrCat("/api/v1/runs/", run_id, "/cancel");
  return As<Run>(Post(path, Json()), "POST", path);
}

StatusOr<std::vector<Event>> ApiClient::ListEvents(int64_t run_id, int64_t after_seq) {
  const std::string path = StrCat("/api/v1/runs/", run_id, "/events?format=json&after=", after_seq);
  ASSIGN_OR_RETURN(EventList list, As<EventList>(Get(path), "GET", path));
  return std::move(list.events);
}

StatusOr<std::vector<ChangeRequest>> ApiClient::ListChangeRequests(std::string_view repo,
                                                                   std::string_view state) {
  const std::string path =
      StrCat("/api/v1/change-requests",
             Query({{"repo", std::string(repo)}, {"state", std::string(state)}}));
  ASSIGN_OR_RETURN(ChangeRequestList list, As<ChangeRequestList>(Get(path), "GET", path));
  return std::move(list.change_requests);
}

StatusOr<ChangeRequest> ApiClient::GetChangeRequest(int64_t id) {
  const std::string path = StrCat("/api/v1/change-requests/", id);
  return As<ChangeRequest>(Get(path), "GET", path);
}

StatusOr<ChangeRequest> ApiClient::ActOnChangeRequest(int64_t id, std::string_view action) {
  const std::string path = StrCat("/api/v1/change-requests/", id, "/", action);
  return As<ChangeRequest>(Post(path, Json()), "POST", path);
}

StatusOr<PostedComment> ApiClient::CommentOnChangeRequest(int64_t id,
                                                          const CommentRequest& comment) {
  const std::string path = StrCat("/api/v1/change-requests/", id, "/comments");
  return As<PostedComment>(Post(path, ToJson(comment)), "POST", path);
}

// ---------------------------------------------------------------------------------------------
// The event stream

namespace {

// What one connection of an event stream came to.
struct StreamAttempt {
  Status status;                           // why it stopped, when not at the end event
  bool connected = false;                  // the server answered 200
  bool retryable = false;                  // resuming may help
  std::optional<std::string> final_state;  // set once the end event arrived
};

}  // namespace

StatusOr<std::string> ApiClient::StreamEvents(int64_t run_id, int64_t after_seq,
                                              const EventCallback& callback) {
  const std::string path = StrCat(prefix_, "/api/v1/runs/", run_id, "/events");
  int64_t last_seq = after_seq;
  bool connected_before = false;
  int failures = 0;
  for (;;) {
    const int64_t seq_before = last_seq;
    StreamAttempt attempt;
    int http_status = 0;
    std::string error_body;
    SseParser parser;

    // Handles one parsed server-sent event; an error stops the stream.
    auto on_event = [&](const SseEvent& sse) -> Status {
      auto json = ParseJson(sse.data);
      if (!json.ok() || !json->is_object()) {
        return InternalError(StrCat("malformed '", sse.type, "' event from the server for run ",
                                    run_id, ": ", BodySnippet(sse.data)));
      }
      if (sse.type == StreamEnd::kEventName) {
        auto end = FromJson<StreamEnd>(*json);
        if (!end.ok() || end->state.empty()) {
          return InternalError(StrCat("the end event of run ", run_id, " names no state"));
        }
        attempt.final_state = std::move(end->state);
        return OkStatus();
      }
      auto event = FromJson<Event>(*json);
      if (event.ok() && event->seq <= 0) event = InvalidArgumentError("'seq' is not positive");
      if (!event.ok()) {
        return InternalError(StrCat("malformed event from the server for run ", run_id, " (",
                                    event.status().message(), "): ", BodySnippet(sse.data)));
      }
      if (event->seq <= last_seq) return OkStatus();  // already delivered before a reconnect
      if (event->kind.empty()) event->kind = sse.type;
      RETURN_IF_ERROR(callback(*event));
      last_seq = event->seq;
      return OkStatus();
    };

    httplib::Headers headers = {{"Accept", "text/event-stream"}};
    if (last_seq > 0) headers.emplace("Last-Event-ID", std::to_string(last_seq));
    http_->set_read_timeout(options_.stream_read_timeout);
    Status stop;
    auto result = http_->Get(
        path, headers,
        [&](const httplib::Response& response) {
          http_status = response.status;
          return true;
        },
        [&](const char* data, size_t length) {
          if (http_status != 200) {
            if (error_body.size() < 65536) error_body.append(data, length);
            return true;
          }
          stop = parser.Feed(std::string_view(data, length), on_event);
          return stop.ok() && !attempt.final_state;
        });

    if (attempt.final_state) return *attempt.final_state;
    if (!stop.ok()) return stop;  // a malformed stream or the callback's own error
    if (!result && http_status == 0) {
      attempt.status =
          UnavailableError(StrCat("cannot reach the Nightshift server at ", options_.base_url, ": ",
                                  ErrorReason(result.error())));
      attempt.retryable = true;
    } else if (http_status != 200) {
      attempt.status = StatusFromHttpError(http_status, error_body);
      attempt.retryable = IsUnavailable(attempt.status);
    } else {
      attempt.connected = true;
      attempt.retryable = true;
      attempt.status = UnavailableError(StrCat(
          "the event stream of run ", run_id, " from ", options_.base_url,
          " broke off: ", result ? "closed before its end event" : ErrorReason(result.error())));
    }

    connected_before = connected_before || attempt.connected;
    // The first connection failing is an answer in itself (wrong URL, server down); resuming
    // is for streams that were flowing.
    if (!attempt.retryable || !connected_before) return attempt.status;
    if (last_seq > seq_before) failures = 0;
    if (++failures > options_.max_reconnects) {
      return attempt.status.WithContext(
          StrCat("gave up after ", options_.max_reconnects, " reconnects"));
    }
    std::this_thread::sleep_for(options_.reconnect_backoff);
  }
}

}  // namespace nightshift::api
