#pragma once

// The client side of the HTTP API (docs/api.md): typed requests and answers (resources.h) with a
// bearer token, error bodies turned into Status values, and the run event stream (server-sent
// events) with resumption. Used by the CLI; remote runners and the web UI are meant to use it too.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/resources.h"
#include "core/json.h"
#include "core/status.h"

namespace httplib {
class Client;
}  // namespace httplib

namespace nightshift::api {

// One dispatched server-sent event (WHATWG HTML, "event stream interpretation").
struct SseEvent {
  std::string id;                // the last event ID seen so far on this stream ("" if none)
  std::string type = "message";  // the `event:` field, "message" when absent
  std::string data;              // `data:` lines joined with '\n'
};

// Incremental parser of a text/event-stream body. Feed it the body in chunks of any size; it
// calls `handler` once per complete event. Lines may end in "\n", "\r\n" or "\r", also when the
// ending is split across chunks. Comment lines (": keep-alive") and unknown fields are ignored;
// an event without data lines is not dispatched, as the specification says.
// Not thread-safe.
class SseParser {
 public:
  using Handler = std::function<Status(const SseEvent&)>;

  // A line longer than this is an error: the peer is not speaking event-stream.
  static constexpr size_t kMaxLineBytes = 16 << 20;

  // Parses `chunk`, dispatching each event it completes. Stops at and returns the first error
  // of `handler`; InvalidArgument if a line exceeds kMaxLineBytes. After an error the parser
  // must not be fed again.
  Status Feed(std::string_view chunk, const Handler& handler);

  // The value of the last `id:` field seen, which is what Last-Event-ID should carry.
  const std::string& last_event_id() const { return last_event_id_; }

 private:
  Status ProcessLine(std::string_view line, const Handler& handler);

  std::string line_;           // the current, incomplete line
  bool skip_next_lf_ = false;  // the previous chunk ended in '\r'
  std::string last_event_id_;  // persists across events
  std::string event_type_;     // of the event being assembled
  std::string data_;           // of the event being assembled
  bool has_data_ = false;
};

// Talks to one Nightshift server. Not thread-safe: use one ApiClient per thread.
class ApiClient {
 public:
  struct Options {
    std::string base_url = "http://127.0.0.1:8080";  // http[s]://host[:port][/prefix]
    std::string token;                               // bearer token; empty sends none
    std::chrono::seconds connect_timeout{10};
    std::chrono::seconds request_timeout{60};
    // The server sends a keep-alive comment every 15 s on event streams; silence for longer
    // than this means the connection is dead and is treated like a dropped stream.
    std::chrono::seconds stream_read_timeout{60};
    // Event streams that drop before their `end` event are resumed up to this many times in a
    // row (the count starts over whenever an event arrives), waiting `reconnect_backoff` between
    // tries, so that following a run survives a server restart.
    int max_reconnects = 30;
    std::chrono::milliseconds reconnect_backoff{1000};
  };

  // InvalidArgument if `options.base_url` is not an http:// or https:// URL.
  static StatusOr<std::unique_ptr<ApiClient>> Create(Options options);
  ~ApiClient();

  // --- Typed calls. Errors as for Get/Post/Delete below; an answer of the wrong shape is
  // Internal, naming the call and the field.

  StatusOr<Repository> AddRepository(const RepositoryRequest& request);
  StatusOr<std::vector<Repository>> ListRepositories();
  Status RemoveRepository(std::string_view name);

  StatusOr<Run> CreateRun(const RunRequest& request);
  // One page of runs, newest first. Empty `repo`/`state` and unset `limit`/`before` are not sent
  // (the server's defaults apply).
  struct RunFilter {
    std::string repo;
    std::string state;
    std::optional<int64_t> limit;
    std::optional<int64_t> before;
  };
  StatusOr<RunList> ListRuns(const RunFilter& filter);
  StatusOr<Run> GetRun(int64_t run_id);  // with its attempts
  StatusOr<Run> CancelRun(int64_t run_id);
  // One page of a run's events after `after_seq`, in order; empty once all were read.
  StatusOr<std::vector<Event>> ListEvents(int64_t run_id, int64_t after_seq);

  StatusOr<std::vector<ChangeRequest>> ListChangeRequests(std::string_view repo,
                                                          std::string_view state);
  StatusOr<ChangeRequest> GetChangeRequest(int64_t id);  // with its diff and comments
  // `action` is "approve", "merge" or "close".
  StatusOr<ChangeRequest> ActOnChangeRequest(int64_t id, std::string_view action);
  StatusOr<PostedComment> CommentOnChangeRequest(int64_t id, const CommentRequest& comment);

  // What arrived for the triggers, newest first (GET /api/v1/events).
  StatusOr<IncomingEventList> ListIncoming(std::optional<int64_t> limit,
                                           std::optional<int64_t> before);
  // Processes a stored event again and returns it once processed (or still pending).
  StatusOr<IncomingEvent> ReplayIncoming(int64_t id);
  StatusOr<ScheduleList> ListSchedules();
  // GET /api/v1/agents; POST /api/v1/repositories/NAME/agents/refresh (that repository's own).
  StatusOr<AgentList> ListAgents();
  StatusOr<AgentList> RefreshAgents(const std::string& repository);

  // Called once per run event, in order. An error stops the stream and is returned by
  // StreamEvents.
  using EventCallback = std::function<Status(const Event& event)>;

  // Follows GET /api/v1/runs/{run_id}/events from after event `after_seq` until the server's
  // `end` event and returns the run's final state from it. Events are delivered in order, each
  // once, across reconnects; an event without a `kind` takes the stream's event name. Fails at
  // once if the first connection cannot be made or the server answers with an error (unknown run,
  // bad token); once connected, a dropped stream is resumed with Last-Event-ID (see
  // Options::max_reconnects). A malformed event stops the stream with Internal.
  StatusOr<std::string> StreamEvents(int64_t run_id, int64_t after_seq,
                                     const EventCallback& callback);

  // --- Untyped calls, for what the typed ones do not cover.

  // `path` starts with "/" and may carry a query ("/api/v1/runs?limit=5"); it is appended to the
  // base URL's path. The answer's JSON body (null for 204). Errors: the server's
  // {"error": {...}} body as a Status with the server's message and the matching code;
  // Unavailable "cannot reach the Nightshift server at URL: reason" when there is no answer;
  // Internal when the answer is not JSON.
  StatusOr<Json> Get(std::string_view path);
  StatusOr<Json> Post(std::string_view path, const Json& body);  // null body: an empty one
  StatusOr<Json> Delete(std::string_view path);

  const std::string& base_url() const { return options_.base_url; }

 private:
  ApiClient(Options options, std::string prefix, std::unique_ptr<httplib::Client> http);

  Options options_;
  std::string prefix_;  // the base URL's path, without a trailing '/'
  std::unique_ptr<httplib::Client> http_;
};

// Percent-encodes `s` for use as one path segment or query value (RFC 3986 unreserved characters
// pass through, and '.' too unless the segment is only dots).
std::string UrlEncode(std::string_view s);

// The Status for an HTTP error answer: the code and message of a {"error": {"code", "message"}}
// body, or a description of the status and body when the body is not one.
Status StatusFromHttpError(int http_status, std::string_view body);

}  // namespace nightshift::api
