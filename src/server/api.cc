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

  // The admin token is the one principal the API knows today.
  static Principal Admin() { return Principal{.kind = "admin"}; }

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
    auto run = ctx_.runs.Submit(request, Admin());
    if (!run.ok()) return SendError(res, run.status());
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
    if (action == "approve") cr = ctx_.forge->Approve(*id);
    if (action == "merge") cr = ctx_.forge->Merge(*id);
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
    // A comment's author is its principal (the admin token stands for whoever it names).
    const Principal principal =
        author.empty() ? Admin() : Principal{.kind = "comment", .name = author};
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
    auto run = ctx_.runs.Cancel(*id, Admin());
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

void RegisterApi(httplib::Server& http, ApiContext& context) {
  auto api = std::make_shared<Api>(context);
  http.set_pre_routing_handler([&context](const httplib::Request& req, httplib::Response& res) {
    if (!req.path.starts_with("/api/")) return httplib::Server::HandlerResponse::Unhandled;
    const std::string auth = req.get_header_value("Authorization");
    constexpr std::string_view kBearer = "Bearer ";
    if (!auth.starts_with(kBearer) ||
        !ConstantTimeEquals(std::string_view(auth).substr(kBearer.size()), context.admin_token)) {
      res.set_header("WWW-Authenticate", "Bearer");
      SendError(res, UnauthenticatedError("missing or invalid bearer token"));
      return httplib::Server::HandlerResponse::Handled;
    }
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
  http.Post("/api/v1/repositories", [api](const auto& q, auto& r) { api->AddRepository(q, r); });
  http.Get("/api/v1/repositories", [api](const auto& q, auto& r) { api->ListRepositories(q, r); });
  http.Get(R"(/api/v1/repositories/([^/]+))",
           [api](const auto& q, auto& r) { api->GetRepository(q, r); });
  http.Delete(R"(/api/v1/repositories/([^/]+))",
              [api](const auto& q, auto& r) { api->RemoveRepository(q, r); });
  http.Post("/api/v1/runs", [api](const auto& q, auto& r) { api->CreateRun(q, r); });
  http.Get("/api/v1/change-requests",
           [api](const auto& q, auto& r) { api->ListChangeRequests(q, r); });
  http.Get(R"(/api/v1/change-requests/([^/]+))",
           [api](const auto& q, auto& r) { api->GetChangeRequest(q, r); });
  http.Post(R"(/api/v1/change-requests/([^/]+)/(approve|merge|close))",
            [api](const auto& q, auto& r) { api->ChangeRequestAction(q, r); });
  http.Post(R"(/api/v1/change-requests/([^/]+)/comments)",
            [api](const auto& q, auto& r) { api->CommentChangeRequest(q, r); });
  http.Get("/api/v1/runs", [api](const auto& q, auto& r) { api->ListRuns(q, r); });
  http.Get(R"(/api/v1/runs/([^/]+))", [api](const auto& q, auto& r) { api->GetRun(q, r); });
  http.Post(R"(/api/v1/runs/([^/]+)/cancel)",
            [api](const auto& q, auto& r) { api->CancelRun(q, r); });
  http.Get(R"(/api/v1/runs/([^/]+)/events)", [api](const auto& q, auto& r) { api->Events(q, r); });
}

}  // namespace nightshift::server
