#include "server/api.h"

#include <httplib.h>

#include <charconv>
#include <memory>
#include <regex>

#include "api/resources.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/secrets.h"

namespace nightshift::server {
// Records a request's outcome in the audit log (when the server keeps one).
void Audit(ApiContext& context, const httplib::Request& req, const httplib::Response& res,
           const std::string& actor, Json detail);

namespace {

using store::Run;
using store::RunState;

int HttpStatus(const Status& st) {
  switch (st.code()) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kUnauthenticated:
      return 401;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition:
      return 409;
    case StatusCode::kResourceExhausted:
      return 413;
    case StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

std::string ErrorCode(const Status& st) {
  std::string code(StatusCodeName(st.code()));
  for (char& c : code) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return code;
}

}  // namespace

void SendJson(httplib::Response& res, int status, const Json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
}

void SendError(httplib::Response& res, const Status& st) {
  if (HttpStatus(st) >= 500) log::Get("api")->error("{}", st.ToString());
  SendJson(res, HttpStatus(st),
           api::ToJson(api::ErrorBody{{.code = ErrorCode(st), .message = st.message()}}));
}

namespace {

// The store's records as the API's shapes (api/resources.h).

// Text a client sent, safe for one log line: at most 64 bytes, anything but printable ASCII
// shown as '?'.
std::string OneLineForLog(std::string_view text) {
  std::string out(text.substr(0, 64));
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return out;
}

std::optional<api::Timestamp> TimeOrNull(int64_t ms) {
  return ms > 0 ? std::optional<api::Timestamp>(api::Timestamp{ms}) : std::nullopt;
}

api::Repository RepositoryOf(const store::Repository& r) {
  return {.id = r.id, .name = r.name, .url = r.url, .created_at = {r.created_ms}};
}

Json RepositoryJson(const store::Repository& r) { return api::ToJson(RepositoryOf(r)); }

api::Comment CommentOf(const store::CrComment& c) {
  return {.id = c.id, .author = c.author, .body = c.body, .created_at = {c.created_ms}};
}

api::ChangeRequest ChangeRequestOf(const store::ChangeRequest& c, bool with_diff) {
  return {.id = c.id,
          .run_id = c.run_id,
          .repo = c.repo,
          .branch = c.branch,
          .base_branch = c.base_branch,
          .base_commit = c.base_commit,
          .head_commit = c.head_commit,
          .title = c.title,
          .body = c.body,
          .state = std::string(store::CrStateName(c.state)),
          .review = std::string(store::CrReviewName(c.review)),
          .remote_url = c.remote_url,
          .created_at = {c.created_ms},
          .updated_at = {c.updated_ms},
          .diff = with_diff ? std::optional<std::string>(c.diff) : std::nullopt};
}

Json ChangeRequestJson(const store::ChangeRequest& c, bool with_diff) {
  return api::ToJson(ChangeRequestOf(c, with_diff));
}

api::Run RunOf(const Run& r) {
  return {.id = r.id,
          .repo = r.repo,
          .ref = r.ref,
          .kind = std::string(store::RunKindName(r.kind)),
          .recipe = r.recipe,
          .task = r.task,
          .model = r.model,
          .state = std::string(store::RunStateName(r.state)),
          .attempt = r.attempt,
          .max_attempts = r.max_attempts,
          .timeout_seconds = r.timeout_seconds,
          .exit_code = r.exit_code,
          .reason = r.reason,
          .commit = r.commit,
          .created_at = {r.created_ms},
          .started_at = TimeOrNull(r.started_ms),
          .finished_at = TimeOrNull(r.finished_ms),
          .last_event_seq = r.last_event_seq,
          .requested_by = r.requested_by,
          .trigger = r.trigger,
          .lease = r.lease_owner.empty()
                       ? std::nullopt
                       : std::optional<api::Lease>(api::Lease{.owner = r.lease_owner,
                                                              .expires_at = {r.lease_expires_ms}})};
}

Json RunJson(const Run& r) { return api::ToJson(RunOf(r)); }

api::Event EventOf(const store::RunEvent& e) {
  Json data = Json::parse(e.data, nullptr, /*allow_exceptions=*/false);
  if (data.is_discarded()) data = Json{{"raw", e.data}};
  return {.seq = e.seq, .ts = {e.ts_ms}, .kind = e.kind, .data = std::move(data)};
}

StatusOr<Json> BodyObject(const httplib::Request& req) {
  ASSIGN_OR_RETURN(Json body, ParseJson(req.body));
  if (!body.is_object()) return InvalidArgumentError("the request body must be a JSON object");
  return body;
}

StatusOr<int64_t> ParseId(std::string_view text, std::string_view what) {
  int64_t id = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || ptr != text.data() + text.size() || id <= 0) {
    return InvalidArgumentError(StrCat("invalid ", what, " '", text, "'"));
  }
  return id;
}

StatusOr<int64_t> IntParam(const httplib::Request& req, const std::string& name, int64_t fallback,
                           int64_t min, int64_t max) {
  if (!req.has_param(name)) return fallback;
  std::string text = req.get_param_value(name);
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || v < min || v > max) {
    return InvalidArgumentError(StrCat("'", name, "' must be an integer from ", min, " to ", max));
  }
  return v;
}

Status ValidateRepositoryName(const std::string& name) {
  static const std::regex kName("[A-Za-z0-9._-]{1,100}");
  if (!std::regex_match(name, kName) || name == "." || name == "..") {
    return InvalidArgumentError(
        StrCat("invalid repository name '", name, "': use 1-100 of A-Z a-z 0-9 . _ -"));
  }
  return OkStatus();
}

Status ValidateRepositoryUrl(const std::string& url) {
  if (url.empty()) return InvalidArgumentError("'url' is required");
  if (url.size() > 2048) return InvalidArgumentError("'url' is longer than 2048 characters");
  for (char c : url) {
    if (static_cast<unsigned char>(c) < 0x20)
      return InvalidArgumentError("'url' contains control characters");
  }
  std::string path;
  if (url.starts_with("file://")) {
    path = url.substr(7);
  } else if (url.starts_with("/")) {
    path = url;
  } else {
    static const std::regex kRemote(R"(^(https?|ssh|git)://[^/\s]+(/\S*)?$)");
    static const std::regex kScp(R"(^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:\S+$)");
    if (std::regex_match(url, kRemote) || std::regex_match(url, kScp)) return OkStatus();
    return InvalidArgumentError(StrCat(
        "unsupported repository URL '", url,
        "': use an absolute path, file://, https://, http://, ssh://, git:// or user@host:path"));
  }
  std::error_code ec;
  if (!std::filesystem::is_directory(path, ec)) {
    return InvalidArgumentError(StrCat("no such directory: ", path));
  }
  if (!std::filesystem::exists(std::filesystem::path(path) / "HEAD", ec) &&
      !std::filesystem::exists(std::filesystem::path(path) / ".git", ec)) {
    return InvalidArgumentError(StrCat("not a git repository: ", path));
  }
  return OkStatus();
}

// Writes everything; false when the client went away.
bool Write(httplib::DataSink& sink, const std::string& s) { return sink.write(s.data(), s.size()); }

std::string SseFrame(const store::RunEvent& e) {
  return StrCat("id: ", e.seq, "\nevent: ", e.kind, "\ndata: ",
                api::ToJson(EventOf(e)).dump(-1, ' ', false, Json::error_handler_t::replace),
                "\n\n");
}

class Api {
 public:
  explicit Api(ApiContext& ctx) : ctx_(ctx) {}

  void AddRepository(const httplib::Request& req, httplib::Response& res) {
    auto body = BodyObject(req);
    if (!body.ok()) return SendError(res, body.status());
    auto request = api::FromJson<api::RepositoryRequest>(*body);
    if (!request.ok()) return SendError(res, request.status());
    if (Status st = ValidateRepositoryName(request->name); !st.ok()) return SendError(res, st);
    if (Status st = ValidateRepositoryUrl(request->url); !st.ok()) return SendError(res, st);
    auto repo = ctx_.store.AddRepository(request->name, request->url);
    if (!repo.ok()) return SendError(res, repo.status());
    SendJson(res, 201, RepositoryJson(*repo));
  }

  void ListRepositories(const httplib::Request&, httplib::Response& res) {
    auto repos = ctx_.store.ListRepositories();
    if (!repos.ok()) return SendError(res, repos.status());
    api::RepositoryList list;
    for (const auto& r : *repos) list.repositories.push_back(RepositoryOf(r));
    SendJson(res, 200, api::ToJson(list));
  }

  void GetRepository(const httplib::Request& req, httplib::Response& res) {
    auto repo = ctx_.store.GetRepository(req.matches[1]);
    if (!repo.ok()) return SendError(res, repo.status());
    SendJson(res, 200, RepositoryJson(*repo));
  }

  void RemoveRepository(const httplib::Request& req, httplib::Response& res) {
    if (Status st = ctx_.store.RemoveRepository(req.matches[1]); !st.ok())
      return SendError(res, st);
    res.status = 204;
  }

  void CreateRun(const httplib::Request& req, httplib::Response& res) {
    auto body = BodyObject(req);
    if (!body.ok()) return SendError(res, body.status());
    auto parsed = api::FromJson<api::RunRequest>(*body);
    if (!parsed.ok()) return SendError(res, parsed.status());
    SubmitRequest request{.repo = parsed->repo,
                          .ref = parsed->ref,
                          .recipe = parsed->recipe,
                          .task = parsed->task,
                          .model = parsed->model,
                          .timeout_seconds = parsed->timeout_seconds.value_or(3600),
                          .max_attempts = parsed->max_attempts.value_or(3)};
    if (!parsed->kind.empty()) {
      request.kind = store::ParseRunKind(parsed->kind);
      if (!request.kind) {
        return SendError(
            res, InvalidArgumentError("'kind' must be \"recipe\", \"agent\" or \"prebuild\""));
      }
    }
    auto run = ctx_.runs.Submit(request, CallerPrincipal());
    if (!run.ok()) {
      SendError(res, run.status());
      // A budget's cap: too many requests, not too large a one.
      if (run.status().code() == StatusCode::kResourceExhausted) res.status = 429;
      return;
    }
    SendJson(res, 201, RunJson(*run));
  }

  void ListRuns(const httplib::Request& req, httplib::Response& res) {
    store::RunFilter filter;
    filter.repo = req.get_param_value("repo");
    if (req.has_param("state") && !req.get_param_value("state").empty()) {
      filter.state = store::ParseRunState(req.get_param_value("state"));
      if (!filter.state) {
        return SendError(res, InvalidArgumentError(
                                  StrCat("unknown state '", req.get_param_value("state"), "'")));
      }
    }
    auto limit = IntParam(req, "limit", 50, 1, 500);
    auto before = IntParam(req, "before", 0, 0, INT64_MAX);
    for (const Status& st : {limit.status(), before.status()}) {
      if (!st.ok()) return SendError(res, st);
    }
    filter.limit = static_cast<int32_t>(*limit);
    filter.before_id = *before;
    auto runs = ctx_.store.ListRuns(filter);
    if (!runs.ok()) return SendError(res, runs.status());
    api::RunList list;
    for (const Run& r : *runs) list.runs.push_back(RunOf(r));
    if (runs->size() == static_cast<size_t>(filter.limit)) list.next_before = runs->back().id;
    SendJson(res, 200, api::ToJson(list));
  }

  void ListChangeRequests(const httplib::Request& req, httplib::Response& res) {
    const std::string state = req.get_param_value("state");
    std::optional<store::CrState> wanted;
    if (!state.empty()) {
      wanted = store::ParseCrState(state);
      if (!wanted) {
        return SendError(res, InvalidArgumentError(
                                  StrCat("unknown state '", state, "' (open, merged, closed)")));
      }
    }
    auto list = ctx_.store.ListChangeRequests(req.get_param_value("repo"), wanted);
    if (!list.ok()) return SendError(res, list.status());
    api::ChangeRequestList out;
    for (const auto& c : *list) out.change_requests.push_back(ChangeRequestOf(c, false));
    SendJson(res, 200, api::ToJson(out));
  }

  void GetChangeRequest(const httplib::Request& req, httplib::Response& res) {
    auto id = ParseId(req.matches[1].str(), "change request id");
    if (!id.ok()) return SendError(res, id.status());
    auto cr = ctx_.store.GetChangeRequest(*id);
    if (!cr.ok()) return SendError(res, cr.status());
    auto comments = ctx_.store.ListCrComments(*id);
    if (!comments.ok()) return SendError(res, comments.status());
    api::ChangeRequest out = ChangeRequestOf(*cr, true);
    out.comments.emplace();
    for (const auto& c : *comments) out.comments->push_back(CommentOf(c));
    SendJson(res, 200, api::ToJson(out));
  }

  // approve, merge, close
  void ChangeRequestAction(const httplib::Request& req, httplib::Response& res) {
    auto id = ParseId(req.matches[1].str(), "change request id");
    if (!id.ok()) return SendError(res, id.status());
    if (ctx_.forge == nullptr) return SendError(res, UnavailableError("no forge"));
    const std::string action = req.matches[2].str();
    StatusOr<store::ChangeRequest> cr = InternalError("unknown action");
    const std::string by = CurrentCaller().Describe();
    if (action == "approve") cr = ctx_.forge->Approve(*id, by);
    if (action == "merge") cr = ctx_.forge->Merge(*id, by);
    if (action == "close") cr = ctx_.forge->Close(*id);
    if (!cr.ok()) return SendError(res, cr.status());
    SendJson(res, 200, ChangeRequestJson(*cr, false));
  }

  void CommentChangeRequest(const httplib::Request& req, httplib::Response& res) {
    auto id = ParseId(req.matches[1].str(), "change request id");
    if (!id.ok()) return SendError(res, id.status());
    auto body = BodyObject(req);
    if (!body.ok()) return SendError(res, body.status());
    auto comment = api::FromJson<api::CommentRequest>(*body);
    if (!comment.ok()) return SendError(res, comment.status());
    const std::string& text = comment->body;
    const std::string& author = comment->author;
    // A comment's author is its principal: the caller, or — for the admin token, which stands
    // for whoever it names (a forge's reviewer relayed) — the `author` given.
    const Principal principal = author.empty() || CurrentCaller().kind != "admin"
                                    ? CallerPrincipal()
                                    : Principal{.kind = "comment", .name = author};
    auto done = ctx_.runs.Comment(*id, text, principal);
    if (!done.ok()) return SendError(res, done.status());
    const store::CrComment& c = done->first;
    SendJson(res, 201,
             api::ToJson(api::PostedComment{
                 .id = c.id,
                 .author = c.author,
                 .body = c.body,
                 .created_at = {c.created_ms},
                 .follow_up_run =
                     done->second ? std::optional<int64_t>(done->second->id) : std::nullopt}));
  }

  void GetRun(const httplib::Request& req, httplib::Response& res) {
    auto id = ParseId(req.matches[1].str(), "run id");
    if (!id.ok()) return SendError(res, id.status());
    auto run = ctx_.store.GetRun(*id);
    if (!run.ok()) return SendError(res, run.status());
    auto attempts = ctx_.store.ListAttempts(*id);
    if (!attempts.ok()) return SendError(res, attempts.status());
    api::Run out = RunOf(*run);
    out.attempts.emplace();
    for (const auto& a : *attempts) {
      out.attempts->push_back({.number = a.number,
                               .runner = a.runner,
                               .started_at = {a.started_ms},
                               .ended_at = TimeOrNull(a.ended_ms),
                               .outcome = a.outcome,
                               .reason = a.reason});
    }
    SendJson(res, 200, api::ToJson(out));
  }

  void CancelRun(const httplib::Request& req, httplib::Response& res) {
    auto id = ParseId(req.matches[1].str(), "run id");
    if (!id.ok()) return SendError(res, id.status());
    auto run = ctx_.runs.Cancel(*id, CallerPrincipal());
    if (!run.ok()) return SendError(res, run.status());
    SendJson(res, 200, RunJson(*run));
  }

  void Events(const httplib::Request& req, httplib::Response& res) {
    auto id = ParseId(req.matches[1].str(), "run id");
    if (!id.ok()) return SendError(res, id.status());
    auto run = ctx_.store.GetRun(*id);
    if (!run.ok()) return SendError(res, run.status());
    int64_t after_default = 0;
    if (req.has_header("Last-Event-ID")) {
      auto last = ParseId(req.get_header_value("Last-Event-ID"), "Last-Event-ID");
      if (last.ok()) after_default = *last;
    }
    auto after = IntParam(req, "after", after_default, 0, INT64_MAX);
    if (!after.ok()) return SendError(res, after.status());

    if (req.get_param_value("format") == "json") {
      auto limit = IntParam(req, "limit", 1000, 1, 10000);
      if (!limit.ok()) return SendError(res, limit.status());
      auto events = ctx_.store.ListEvents(*id, *after, static_cast<int32_t>(*limit));
      if (!events.ok()) return SendError(res, events.status());
      api::EventList list;
      for (const auto& e : *events) list.events.push_back(EventOf(e));
      return SendJson(res, 200, api::ToJson(list));
    }

    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    // The subscription exists before the first read, so no change can slip in between.
    auto sub = std::make_shared<EventHub::Subscription>(ctx_.hub, *id);
    int64_t run_id = *id;
    int64_t cursor = *after;
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, sub, run_id, cursor, opened = false](size_t, httplib::DataSink& sink) mutable {
          // httplib sends the headers with the first chunk; a run with nothing new to say
          // would leave the client waiting for them, so open with a comment.
          if (!opened && !Write(sink, StrCat(": events of run ", run_id, "\n\n"))) return false;
          opened = true;
          return Stream(*sub, run_id, cursor, sink);
        });
  }

  // Identities (docs/governance.md).

  static api::User UserOf(const store::User& u) {
    return api::User{.name = u.name,
                     .scopes = policy::SplitScopes(u.scopes),
                     .created_at = {u.created_ms},
                     .disabled_at = TimeOrNull(u.disabled_ms)};
  }

  static api::Token TokenOf(const store::ApiToken& t) {
    return api::Token{.id = t.id,
                      .name = t.name,
                      .owner = t.owner,
                      .scopes = policy::SplitScopes(t.scopes),
                      .created_at = {t.created_ms},
                      .expires_at = TimeOrNull(t.expires_ms),
                      .revoked_at = TimeOrNull(t.revoked_ms)};
  }

  static StatusOr<std::vector<std::string>> Scopes(const std::vector<std::string>& given) {
    return policy::ParseScopes(policy::JoinScopes(given));
  }

  void Login(const httplib::Request& req, httplib::Response& res) {
    auto body = BodyObject(req);
    if (!body.ok()) return SendError(res, body.status());
    auto login = api::FromJson<api::LoginRequest>(*body);
    if (!login.ok()) return SendError(res, login.status());
    const int64_t ttl = login->ttl_seconds.value_or(12 * 3600);
    if (ttl < 60 || ttl > 30 * 86400) {
      return SendError(res, InvalidArgumentError("'ttl_seconds' must be from 60 to 2592000"));
    }
    auto made = ctx_.identities.Login(login->user, login->password, ttl * 1000, req.remote_addr);
    if (!made.ok()) {
      log::Get("api")->warn("login refused for '{}' from {}", OneLineForLog(login->user),
                            req.remote_addr);
      SendError(res, made.status());
      if (made.status().code() == StatusCode::kResourceExhausted) res.status = 429;
      return Audit(ctx_, req, res, "anonymous", Json{{"user", login->user}});
    }
    api::Token out = TokenOf(made->token);
    out.token = made->secret;
    SendJson(res, 201, api::ToJson(out));
    Audit(ctx_, req, res, StrCat("user:", login->user), Json{{"token_id", made->token.id}});
  }

  void AddUser(const httplib::Request& req, httplib::Response& res) {
    auto body = BodyObject(req);
    if (!body.ok()) return SendError(res, body.status());
    auto request = api::FromJson<api::UserRequest>(*body);
    if (!request.ok()) return SendError(res, request.status());
    auto scopes = Scopes(request->scopes);
    if (!scopes.ok()) return SendError(res, scopes.status());
    auto user = ctx_.identities.AddUser(request->name, request->password, *scopes);
    if (!user.ok()) return SendError(res, user.status());
    SendJson(res, 201, api::ToJson(UserOf(*user)));
  }

  void ListUsers(const httplib::Request&, httplib::Response& res) {
    auto users = ctx_.store.ListUsers();
    if (!users.ok()) return SendError(res, users.status());
    api::UserList list;
    for (const auto& u : *users) list.users.push_back(UserOf(u));
    SendJson(res, 200, api::ToJson(list));
  }

  void DisableUser(const httplib::Request& req, httplib::Response& res) {
    auto user = ctx_.identities.DisableUser(req.matches[1].str());
    if (!user.ok()) return SendError(res, user.status());
    SendJson(res, 200, api::ToJson(UserOf(*user)));
  }

  void CreateToken(const httplib::Request& req, httplib::Response& res) {
    auto body = BodyObject(req);
    if (!body.ok()) return SendError(res, body.status());
    auto request = api::FromJson<api::TokenRequest>(*body);
    if (!request.ok()) return SendError(res, request.status());
    auto scopes = Scopes(request->scopes);
    if (!scopes.ok()) return SendError(res, scopes.status());
    int64_t expires_ms = 0;
    if (request->expires_in_seconds) {
      const int64_t seconds = *request->expires_in_seconds;
      if (seconds < 1 || seconds > 10LL * 365 * 86400) {
        return SendError(res,
                         InvalidArgumentError("'expires_in_seconds' must be from 1 to 315360000"));
      }
      expires_ms = SystemClock::Get().NowMs() + seconds * 1000;
    }
    auto made = ctx_.identities.CreateToken(CurrentCaller(), request->name, *scopes, expires_ms);
    if (!made.ok()) return SendError(res, made.status());
    api::Token out = TokenOf(made->token);
    out.token = made->secret;
    SendJson(res, 201, api::ToJson(out));
  }

  void ListTokens(const httplib::Request&, httplib::Response& res) {
    auto tokens = ctx_.identities.Tokens(CurrentCaller());
    if (!tokens.ok()) return SendError(res, tokens.status());
    api::TokenList list;
    for (const auto& t : *tokens) list.tokens.push_back(TokenOf(t));
    SendJson(res, 200, api::ToJson(list));
  }

  static Json AuditJson(const store::AuditRecord& r) {
    Json detail = Json::parse(r.detail, nullptr, false);
    return Json{{"seq", r.seq},
                {"time_ms", r.time_ms},
                {"actor", r.actor},
                {"action", r.action},
                {"resource", r.resource},
                {"decision", r.decision},
                {"run_id", r.run_id},
                {"detail", detail.is_discarded() ? Json(r.detail) : detail},
                {"prev_hash", r.prev_hash},
                {"hash", r.hash}};
  }

  // ?actor=A&run=ID&since_ms=T&limit=N (newest first), or ?after=SEQ&limit=N (oldest first: an
  // export, page by page).
  void ListAudit(const httplib::Request& req, httplib::Response& res) {
    auto number = [&](const char* name, int64_t fallback) -> StatusOr<int64_t> {
      if (!req.has_param(name)) return fallback;
      const std::string text = req.get_param_value(name);
      int64_t value = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (ec != std::errc() || end != text.data() + text.size() || value < 0) {
        return InvalidArgumentError(StrCat("'", name, "' must be a number, 0 or more"));
      }
      return value;
    };
    auto limit = number("limit", 100);
    auto run = number("run", 0);
    auto since = number("since_ms", 0);
    auto after = number("after", -1);
    for (const auto* n : {&limit, &run, &since, &after}) {
      if (!n->ok()) return SendError(res, n->status());
    }
    if (*limit < 1 || *limit > 10'000) {
      return SendError(res, InvalidArgumentError("'limit' must be from 1 to 10000"));
    }
    auto records = *after >= 0 ? ctx_.store.ListAudit(*after, static_cast<int32_t>(*limit))
                               : ctx_.store.SearchAudit(req.get_param_value("actor"), *run, *since,
                                                        static_cast<int32_t>(*limit));
    if (!records.ok()) return SendError(res, records.status());
    Json list = Json::array();
    for (const auto& r : *records) list.push_back(AuditJson(r));
    SendJson(res, 200, Json{{"records", list}});
  }

  void VerifyAudit(const httplib::Request&, httplib::Response& res) {
    if (ctx_.audit == nullptr) return SendError(res, FailedPreconditionError("no audit log"));
    const policy::AuditVerdict v = ctx_.audit->Verify();
    SendJson(res, 200,
             Json{{"ok", v.ok},
                  {"records", v.records},
                  {"checkpoints", v.checkpoints},
                  {"first_bad_seq", v.first_bad_seq},
                  {"reason", v.reason},
                  {"public_key", ctx_.audit->PublicKeyHex()}});
  }

  void AuditKey(const httplib::Request&, httplib::Response& res) {
    if (ctx_.audit == nullptr) return SendError(res, FailedPreconditionError("no audit log"));
    SendJson(res, 200, Json{{"algorithm", "ed25519"}, {"public_key", ctx_.audit->PublicKeyHex()}});
  }

  static Json PauseJson(const store::Pause& pause) {
    return Json{{"scope", pause.scope},
                {"name", pause.name},
                {"created_by", pause.created_by},
                {"created_ms", pause.created_ms}};
  }

  // {"scope": "all"|"repo"|"agent", "name"}: the body of a pause or a resume.
  static StatusOr<std::pair<std::string, std::string>> PauseScope(const Json& body) {
    for (const auto& [key, value] : body.items()) {
      if (key != "scope" && key != "name") {
        return InvalidArgumentError(StrCat("unknown field '", key, "'"));
      }
      if (!value.is_string()) return InvalidArgumentError(StrCat("'", key, "' must be a string"));
    }
    return std::make_pair(body.value("scope", ""), body.value("name", ""));
  }

  void SetPause(const httplib::Request& req, httplib::Response& res) {
    auto body = BodyObject(req);
    if (!body.ok()) return SendError(res, body.status());
    auto scope = PauseScope(*body);
    if (!scope.ok()) return SendError(res, scope.status());
    auto paused = ctx_.runs.Pause(scope->first, scope->second, CallerPrincipal());
    if (!paused.ok()) return SendError(res, paused.status());
    Json out = PauseJson(paused->pause);
    out["cancelled"] = paused->cancelled;
    SendJson(res, 200, out);
  }

  void ListPauses(const httplib::Request&, httplib::Response& res) {
    auto pauses = ctx_.runs.Pauses();
    if (!pauses.ok()) return SendError(res, pauses.status());
    Json list = Json::array();
    for (const auto& pause : *pauses) list.push_back(PauseJson(pause));
    SendJson(res, 200, Json{{"pauses", list}});
  }

  void Resume(const httplib::Request& req, httplib::Response& res) {
    auto body = BodyObject(req);
    if (!body.ok()) return SendError(res, body.status());
    auto scope = PauseScope(*body);
    if (!scope.ok()) return SendError(res, scope.status());
    if (Status st = ctx_.runs.Resume(scope->first, scope->second); !st.ok()) {
      return SendError(res, st);
    }
    SendJson(res, 200, Json{{"scope", scope->first}, {"name", scope->second}, {"resumed", true}});
  }

  static Json SecretJson(const store::Secret& secret) {
    return Json{{"name", secret.name},
                {"repo", secret.repo},
                {"agent", secret.agent},
                {"created_by", secret.created_by},
                {"created_ms", secret.created_ms},
                {"updated_ms", secret.updated_ms}};
  }

  // {"name", "value", "repo", "agent"}: the value is sealed and never shown again.
  void SetSecret(const httplib::Request& req, httplib::Response& res) {
    if (ctx_.vault == nullptr) return SendError(res, UnavailableError("no secrets vault"));
    auto body = BodyObject(req);
    if (!body.ok()) return SendError(res, body.status());
    for (const auto& [key, value] : body->items()) {
      if (key != "name" && key != "value" && key != "repo" && key != "agent") {
        return SendError(res, InvalidArgumentError(StrCat("unknown field '", key, "'")));
      }
      if (!value.is_string()) {
        return SendError(res, InvalidArgumentError(StrCat("'", key, "' must be a string")));
      }
    }
    const std::string name = body->value("name", "");
    const std::string repo = body->value("repo", "");
    if (!repo.empty()) {
      if (auto known = ctx_.store.GetRepository(repo); !known.ok()) {
        return SendError(res, known.status());
      }
    }
    auto stored = ctx_.vault->Set(name, repo, body->value("agent", ""), body->value("value", ""),
                                  CurrentCaller().Describe());
    if (!stored.ok()) return SendError(res, stored.status());
    SendJson(res, 200, SecretJson(*stored));
  }

  void ListSecrets(const httplib::Request&, httplib::Response& res) {
    if (ctx_.vault == nullptr) return SendError(res, UnavailableError("no secrets vault"));
    auto secrets = ctx_.vault->List();
    if (!secrets.ok()) return SendError(res, secrets.status());
    Json list = Json::array();
    for (const auto& secret : *secrets) list.push_back(SecretJson(secret));
    SendJson(res, 200, Json{{"secrets", list}});
  }

  // DELETE /api/v1/secrets/NAME?repo=R&agent=A
  void RemoveSecret(const httplib::Request& req, httplib::Response& res) {
    if (ctx_.vault == nullptr) return SendError(res, UnavailableError("no secrets vault"));
    const std::string name = req.matches[1].str();
    const std::string repo = req.get_param_value("repo");
    const std::string agent = req.get_param_value("agent");
    if (Status st = ctx_.vault->Remove(name, repo, agent); !st.ok()) return SendError(res, st);
    SendJson(res, 200, Json{{"name", name}, {"repo", repo}, {"agent", agent}, {"removed", true}});
  }

  void RevokeToken(const httplib::Request& req, httplib::Response& res) {
    auto id = ParseId(req.matches[1].str(), "token id");
    if (!id.ok()) return SendError(res, id.status());
    auto token = ctx_.identities.Revoke(CurrentCaller(), *id);
    if (!token.ok()) return SendError(res, token.status());
    SendJson(res, 200, api::ToJson(TokenOf(*token)));
  }

 private:
  // Streams until the run has finished and every event was sent, the client leaves, or the
  // server shuts down.
  bool Stream(EventHub::Subscription& sub, int64_t run_id, int64_t& cursor,
              httplib::DataSink& sink) {
    constexpr int32_t kPage = 500;
    for (;;) {
      auto events = ctx_.store.ListEvents(run_id, cursor, kPage);
      if (!events.ok()) return false;
      if (!events->empty()) {
        std::string out;
        for (const auto& e : *events) {
          out += SseFrame(e);
          cursor = e.seq;
        }
        if (!Write(sink, out)) return false;
        if (events->size() == kPage) continue;
      }
      auto run = ctx_.store.GetRun(run_id);
      if (!run.ok()) return false;
      if (store::IsTerminal(run->state) && run->last_event_seq <= cursor) {
        const Json end =
            api::ToJson(api::StreamEnd{.state = std::string(store::RunStateName(run->state))});
        Write(sink, StrCat("event: ", api::StreamEnd::kEventName, "\ndata: ", end.dump(), "\n\n"));
        sink.done();
        return true;
      }
      if (!sub.WaitForChange(ctx_.keepalive_ms)) {
        if (!sink.is_writable() || !Write(sink, ": keep-alive\n\n")) return false;
      }
    }
  }

  ApiContext& ctx_;
};

}  // namespace

namespace {
// Set by the pre-routing handler for each /api/ request, on the thread that handles it.
thread_local std::optional<policy::Caller> tl_caller;
constexpr char kLoginPath[] = "/api/v1/login";
}  // namespace

void Audit(ApiContext& context, const httplib::Request& req, const httplib::Response& res,
           const std::string& actor, Json detail) {
  if (context.audit == nullptr) return;
  detail["status"] = res.status;
  if (res.status >= 400) {
    auto body = Json::parse(res.body, nullptr, false);
    if (body.is_object() && body.contains("error") && body["error"].is_object()) {
      detail["error"] = body["error"].value("message", "");
    }
  }
  if (CurrentCaller().token_id != 0) detail["token_id"] = CurrentCaller().token_id;
  detail["from"] = req.remote_addr;
  const std::string decision =
      res.status == 401 || res.status == 403 ? "deny" : (res.status >= 400 ? "error" : "allow");
  auto appended = context.audit->Append({.actor = actor,
                                         .action = StrCat(req.method, " ", req.path),
                                         .resource = req.path,
                                         .decision = decision,
                                         .detail = std::move(detail)});
  if (!appended.ok()) {
    log::Get("api")->error("cannot append to the audit log: {}", appended.status().message());
  }
}

const policy::Caller& CurrentCaller() {
  static const policy::Caller kNobody;
  return tl_caller ? *tl_caller : kNobody;
}

Principal CallerPrincipal() {
  const policy::Caller& caller = CurrentCaller();
  return Principal{.kind = caller.kind, .name = caller.name};
}

void Route(httplib::Server& http, ApiContext& context, std::string_view method,
           const std::string& pattern, std::string_view scope, ApiHandler handler) {
  context.routes.push_back(
      {.method = std::string(method), .pattern = pattern, .scope = std::string(scope)});
  httplib::Server::Handler guarded = [&context, scope = std::string(scope),
                                      handler = std::move(handler)](const httplib::Request& req,
                                                                    httplib::Response& res) {
    if (!tl_caller) {  // only the login route is not authenticated before routing
      return SendError(res, UnauthenticatedError("missing or invalid bearer token"));
    }
    if (!scope.empty() && !policy::Grants(tl_caller->scopes, scope)) {
      SendError(res, PermissionDeniedError(
                         StrCat("this needs scope '", scope, "'; ", tl_caller->Describe(),
                                " holds: ", policy::JoinScopes(tl_caller->scopes))));
      return Audit(context, req, res, tl_caller->Describe(), Json{{"scope", scope}});
    }
    handler(req, res);
    // Every change, and every refusal of a read.
    if (req.method != "GET" || res.status == 403) {
      Audit(context, req, res, tl_caller->Describe(), Json::object());
    }
  };
  if (method == "GET") http.Get(pattern, std::move(guarded));
  if (method == "POST") http.Post(pattern, std::move(guarded));
  if (method == "DELETE") http.Delete(pattern, std::move(guarded));
}

void RegisterApi(httplib::Server& http, ApiContext& context) {
  auto api = std::make_shared<Api>(context);
  http.set_pre_routing_handler([&context](const httplib::Request& req, httplib::Response& res) {
    tl_caller.reset();
    if (!req.path.starts_with("/api/") || req.path == kLoginPath) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    const std::string auth = req.get_header_value("Authorization");
    constexpr std::string_view kBearer = "Bearer ";
    auto caller =
        auth.starts_with(kBearer)
            ? context.identities.Authenticate(std::string_view(auth).substr(kBearer.size()))
            : StatusOr<policy::Caller>(UnauthenticatedError("missing bearer token"));
    if (!caller.ok()) {
      res.set_header("WWW-Authenticate", "Bearer");
      SendError(res, caller.status().code() == StatusCode::kUnauthenticated
                         ? caller.status()
                         : UnavailableError("cannot check the token now"));
      Audit(context, req, res, "anonymous", Json::object());
      return httplib::Server::HandlerResponse::Handled;
    }
    tl_caller = *std::move(caller);
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    api::ErrorDetail error{.code = StrCat("http_", res.status), .message = "request failed"};
    if (res.status == 404) {
      error = {.code = "not_found", .message = StrCat("no route for ", req.method, " ", req.path)};
    } else if (res.status == 413) {
      error = {.code = "payload_too_large", .message = "request body too large"};
    }
    SendJson(res, res.status, api::ToJson(api::ErrorBody{.error = error}));
  });
  http.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unexpected error";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        SendError(res, InternalError(what));
      });

  http.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    SendJson(res, 200, Json{{"status", "ok"}});
  });
  auto route = [&](std::string_view method, const std::string& pattern, std::string_view scope,
                   void (Api::*member)(const httplib::Request&, httplib::Response&)) {
    Route(http, context, method, pattern, scope,
          [api, member](const httplib::Request& q, httplib::Response& r) { (*api.*member)(q, r); });
  };
  route("POST", "/api/v1/repositories", "repos:admin", &Api::AddRepository);
  route("GET", "/api/v1/repositories", "runs:read", &Api::ListRepositories);
  route("GET", R"(/api/v1/repositories/([^/]+))", "runs:read", &Api::GetRepository);
  route("DELETE", R"(/api/v1/repositories/([^/]+))", "repos:admin", &Api::RemoveRepository);
  route("POST", "/api/v1/runs", "runs:write", &Api::CreateRun);
  route("GET", "/api/v1/change-requests", "runs:read", &Api::ListChangeRequests);
  route("GET", R"(/api/v1/change-requests/([^/]+))", "runs:read", &Api::GetChangeRequest);
  route("POST", R"(/api/v1/change-requests/([^/]+)/(approve|close))", "crs:review",
        &Api::ChangeRequestAction);
  route("POST", R"(/api/v1/change-requests/([^/]+)/(merge))", "crs:merge",
        &Api::ChangeRequestAction);
  route("POST", R"(/api/v1/change-requests/([^/]+)/comments)", "crs:review",
        &Api::CommentChangeRequest);
  route("GET", "/api/v1/runs", "runs:read", &Api::ListRuns);
  route("GET", R"(/api/v1/runs/([^/]+))", "runs:read", &Api::GetRun);
  route("POST", R"(/api/v1/runs/([^/]+)/cancel)", "runs:write", &Api::CancelRun);
  route("GET", R"(/api/v1/runs/([^/]+)/events)", "runs:read", &Api::Events);
  // Identities.
  http.Post(kLoginPath,
            [api](const httplib::Request& q, httplib::Response& r) { api->Login(q, r); });
  route("POST", "/api/v1/users", "admin", &Api::AddUser);
  route("GET", "/api/v1/users", "admin", &Api::ListUsers);
  route("POST", R"(/api/v1/users/([^/]+)/disable)", "admin", &Api::DisableUser);
  route("POST", "/api/v1/tokens", "", &Api::CreateToken);
  route("GET", "/api/v1/tokens", "", &Api::ListTokens);
  route("DELETE", R"(/api/v1/tokens/([^/]+))", "", &Api::RevokeToken);
  // The audit log.
  route("POST", "/api/v1/pauses", "policies:admin", &Api::SetPause);
  route("GET", "/api/v1/pauses", "runs:read", &Api::ListPauses);
  route("POST", "/api/v1/resume", "policies:admin", &Api::Resume);
  route("POST", "/api/v1/secrets", "secrets:admin", &Api::SetSecret);
  route("GET", "/api/v1/secrets", "secrets:admin", &Api::ListSecrets);
  route("DELETE", R"(/api/v1/secrets/([^/]+))", "secrets:admin", &Api::RemoveSecret);
  route("GET", "/api/v1/audit", "audit:read", &Api::ListAudit);
  route("GET", "/api/v1/audit/verify", "audit:read", &Api::VerifyAudit);
  route("GET", "/api/v1/audit/key", "audit:read", &Api::AuditKey);
}

}  // namespace nightshift::server
