#pragma once

// The JSON shapes of the HTTP API (docs/api.md): what the server sends and what clients send it.
// The server's handlers write their answers through these and the client reads them through the
// same ones, so the two cannot drift. See shape.h for how they are read and written; events.h for
// the payloads of run events.

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "api/shape.h"
#include "core/json.h"

namespace nightshift::api {

// --- Repositories ---

struct Repository {
  int64_t id = 0;
  std::string name;
  std::string url;
  Timestamp created_at;

  static constexpr auto Fields() {
    return std::tuple{RequiredField("id", &Repository::id, "its id"),
                      Field("name", &Repository::name, "unique among live repositories"),
                      Field("url", &Repository::url, "git URL or a path on the server"),
                      Field("created_at", &Repository::created_at, "when it was added")};
  }
};

// POST /api/v1/repositories
struct RepositoryRequest {
  std::string name;
  std::string url;

  static constexpr auto Fields() {
    return std::tuple{Field("name", &RepositoryRequest::name, "1-100 of A-Z a-z 0-9 . _ -"),
                      Field("url", &RepositoryRequest::url, "git URL or an absolute path")};
  }
};

// GET /api/v1/repositories
struct RepositoryList {
  std::vector<Repository> repositories;

  static constexpr auto Fields() {
    return std::tuple{
        RequiredField("repositories", &RepositoryList::repositories, "sorted by name")};
  }
};

// --- Runs ---

struct Lease {
  std::string owner;
  Timestamp expires_at;

  static constexpr auto Fields() {
    return std::tuple{Field("owner", &Lease::owner, "the runner holding the run"),
                      Field("expires_at", &Lease::expires_at, "unless it heartbeats")};
  }
};

struct RunAttempt {
  int32_t number = 0;
  std::string runner;
  Timestamp started_at;
  std::optional<Timestamp> ended_at;
  std::string outcome;
  std::string reason;

  static constexpr auto Fields() {
    return std::tuple{
        Field("number", &RunAttempt::number, "1, 2, …"),
        Field("runner", &RunAttempt::runner, "who leased it"),
        Field("started_at", &RunAttempt::started_at, "when it was leased"),
        NullableField("ended_at", &RunAttempt::ended_at, "null while it runs"),
        Field("outcome", &RunAttempt::outcome, "a final state, requeued, or empty while it runs"),
        Field("reason", &RunAttempt::reason, "why it ended so")};
  }
};

struct Run {
  int64_t id = 0;
  std::string repo;
  std::string ref;
  std::string kind;
  std::string recipe;
  std::string task;
  std::string model;
  std::string state;
  int32_t attempt = 0;
  int32_t max_attempts = 0;
  int32_t timeout_seconds = 0;
  std::optional<int32_t> exit_code;
  std::string reason;
  std::string commit;
  Timestamp created_at;
  std::optional<Timestamp> started_at;
  std::optional<Timestamp> finished_at;
  int64_t last_event_seq = 0;
  std::string requested_by;
  std::string trigger;
  std::optional<Lease> lease;
  std::optional<std::vector<RunAttempt>> attempts;

  static constexpr auto Fields() {
    return std::tuple{
        RequiredField("id", &Run::id, "its id"),
        Field("repo", &Run::repo, "the repository's name"),
        Field("ref", &Run::ref, "branch, tag or commit; empty: the repository's HEAD"),
        Field("kind", &Run::kind, "recipe, agent or prebuild"),
        Field("recipe", &Run::recipe, "the shell command of a recipe run"),
        Field("task", &Run::task, "the task of an agent run"),
        Field("model", &Run::model, "the model of an agent run; empty: default"),
        Field("state", &Run::state, "queued, preparing, running, or how it ended"),
        Field("attempt", &Run::attempt, "attempts started so far"),
        Field("max_attempts", &Run::max_attempts, "how many it may take"),
        Field("timeout_seconds", &Run::timeout_seconds, "its deadline"),
        NullableField("exit_code", &Run::exit_code, "the recipe's exit status"),
        Field("reason", &Run::reason, "why it ended (or was requeued), in words"),
        Field("commit", &Run::commit, "the commit its ref resolved to"),
        Field("created_at", &Run::created_at, "when it was queued"),
        NullableField("started_at", &Run::started_at, "its first lease"),
        NullableField("finished_at", &Run::finished_at, "when it ended"),
        Field("last_event_seq", &Run::last_event_seq, "its last event's sequence number"),
        Field("requested_by", &Run::requested_by,
              "who asked: admin, comment:<author> (a follow-up comment), trigger:<agent>, "
              "schedule:<agent>"),
        Field("trigger", &Run::trigger, "the event that started it, in words; empty: none"),
        NullableField("lease", &Run::lease, "who holds it now"),
        Field("attempts", &Run::attempts, "each attempt (GET /api/v1/runs/{id} only)")};
  }
};

// POST /api/v1/runs. An empty string is the same as an absent field.
struct RunRequest {
  std::string repo;
  std::string recipe;
  std::string ref;
  std::string kind;
  std::string task;
  std::string model;
  std::optional<int64_t> timeout_seconds;
  std::optional<int64_t> max_attempts;

  static constexpr auto Fields() {
    return std::tuple{
        Field("repo", &RunRequest::repo, "the repository's name"),
        Field("recipe", &RunRequest::recipe, "a shell command"),
        Field("ref", &RunRequest::ref, "branch, tag or commit; default: HEAD"),
        Field("kind", &RunRequest::kind, "recipe, agent or prebuild; implied by recipe or task"),
        Field("task", &RunRequest::task, "what the built-in agent should do"),
        Field("model", &RunRequest::model, "a model of the server's config; default: default"),
        Field("timeout_seconds", &RunRequest::timeout_seconds, "1-86400; default 3600"),
        Field("max_attempts", &RunRequest::max_attempts, "1-10; default 3")};
  }
};

// GET /api/v1/runs
struct RunList {
  std::vector<Run> runs;
  std::optional<int64_t> next_before;

  static constexpr auto Fields() {
    return std::tuple{
        RequiredField("runs", &RunList::runs, "newest first"),
        NullableField("next_before", &RunList::next_before, "`before` for the next page")};
  }
};

// --- Run events ---

// One entry of a run's log; `data` is the payload of its kind (events.h).
struct Event {
  int64_t seq = 0;
  Timestamp ts;
  std::string kind;
  Json data;

  static constexpr auto Fields() {
    return std::tuple{RequiredField("seq", &Event::seq, "1, 2, 3… per run, without gaps"),
                      Field("ts", &Event::ts, "when it happened"),
                      Field("kind", &Event::kind, "a kind of the catalogue (events.h)"),
                      Field("data", &Event::data, "its payload")};
  }
};

// GET /api/v1/runs/{id}/events?format=json
struct EventList {
  std::vector<Event> events;

  static constexpr auto Fields() {
    return std::tuple{RequiredField("events", &EventList::events, "in order")};
  }
};

// The `end` event of an event stream: the run has finished and every event was sent.
struct StreamEnd {
  static constexpr std::string_view kEventName = "end";
  std::string state;

  static constexpr auto Fields() {
    return std::tuple{RequiredField("state", &StreamEnd::state, "how the run ended")};
  }
};

// --- Change requests ---

struct Comment {
  int64_t id = 0;
  std::string author;
  std::string body;
  Timestamp created_at;

  static constexpr auto Fields() {
    return std::tuple{Field("id", &Comment::id, "its id"),
                      Field("author", &Comment::author, "who wrote it"),
                      Field("body", &Comment::body, "its text"),
                      Field("created_at", &Comment::created_at, "when")};
  }
};

struct ChangeRequest {
  int64_t id = 0;
  int64_t run_id = 0;
  std::string repo;
  std::string branch;
  std::string base_branch;
  std::string base_commit;
  std::string head_commit;
  std::string title;
  std::string body;
  std::string state;
  std::string review;
  std::string remote_url;
  Timestamp created_at;
  Timestamp updated_at;
  std::optional<std::string> diff;
  std::optional<std::vector<Comment>> comments;

  static constexpr auto Fields() {
    return std::tuple{
        RequiredField("id", &ChangeRequest::id, "its id"),
        Field("run_id", &ChangeRequest::run_id, "the run that opened it"),
        Field("repo", &ChangeRequest::repo, "the repository's name"),
        Field("branch", &ChangeRequest::branch, "nightshift/<kind>/<run>"),
        Field("base_branch", &ChangeRequest::base_branch, "what it merges into"),
        Field("base_commit", &ChangeRequest::base_commit, "the commit the work started from"),
        Field("head_commit", &ChangeRequest::head_commit, "the branch's tip"),
        Field("title", &ChangeRequest::title, "its title"),
        Field("body", &ChangeRequest::body, "its description"),
        Field("state", &ChangeRequest::state, "open, merged or closed"),
        Field("review", &ChangeRequest::review, "pending or approved"),
        Field("remote_url", &ChangeRequest::remote_url, "on GitHub or GitLab, if linked"),
        Field("created_at", &ChangeRequest::created_at, "when it was opened"),
        Field("updated_at", &ChangeRequest::updated_at, "its last change"),
        Field("diff", &ChangeRequest::diff, "the change (GET of one only)"),
        Field("comments", &ChangeRequest::comments, "oldest first (GET of one only)")};
  }
};

// GET /api/v1/change-requests
struct ChangeRequestList {
  std::vector<ChangeRequest> change_requests;

  static constexpr auto Fields() {
    return std::tuple{
        RequiredField("change_requests", &ChangeRequestList::change_requests, "newest first")};
  }
};

// POST /api/v1/change-requests/{id}/comments
struct CommentRequest {
  std::string body;
  std::string author;

  static constexpr auto Fields() {
    return std::tuple{
        Field("body", &CommentRequest::body, "\"/nightshift <instruction>\" starts a follow-up"),
        Field("author", &CommentRequest::author, "default: admin")};
  }
};

// The answer to a comment.
struct PostedComment {
  int64_t id = 0;
  std::string author;
  std::string body;
  Timestamp created_at;
  std::optional<int64_t> follow_up_run;

  static constexpr auto Fields() {
    return std::tuple{
        RequiredField("id", &PostedComment::id, "the comment's id"),
        Field("author", &PostedComment::author, "who wrote it"),
        Field("body", &PostedComment::body, "its text"),
        Field("created_at", &PostedComment::created_at, "when"),
        NullableField("follow_up_run", &PostedComment::follow_up_run, "the run it started")};
  }
};

// --- Errors ---

struct ErrorDetail {
  std::string code;
  std::string message;

  static constexpr auto Fields() {
    return std::tuple{Field("code", &ErrorDetail::code, "not_found, invalid_argument, …"),
                      Field("message", &ErrorDetail::message, "one line for people")};
  }
};

// The body of every 4xx/5xx answer.
struct ErrorBody {
  ErrorDetail error;

  static constexpr auto Fields() {
    return std::tuple{RequiredField("error", &ErrorBody::error, "what went wrong")};
  }
};

// --- Triggers (docs/triggers.md) ---

// What arrived: a webhook delivery, a slash command, a schedule's fire.
struct IncomingEvent {
  int64_t id = 0;
  std::string source;
  std::string type;
  std::string delivery;
  std::string state;
  Timestamp received_at;
  std::optional<Timestamp> processed_at;
  int32_t replays = 0;
  int32_t redeliveries = 0;
  Json outcome = Json::array();

  static constexpr auto Fields() {
    return std::tuple{
        RequiredField("id", &IncomingEvent::id, "its id"),
        Field("source", &IncomingEvent::source, "github, gitlab, slack, generic:<name>, schedule"),
        Field("type", &IncomingEvent::type, "the source's event type"),
        Field("delivery", &IncomingEvent::delivery, "the source's id of the delivery"),
        Field("state", &IncomingEvent::state, "pending, then done"),
        Field("received_at", &IncomingEvent::received_at, "when it was stored"),
        NullableField("processed_at", &IncomingEvent::processed_at, "when it was processed"),
        Field("replays", &IncomingEvent::replays, "times processed again on purpose"),
        Field("redeliveries", &IncomingEvent::redeliveries,
              "times the source sent it again (duplicates, which start nothing)"),
        Field("outcome", &IncomingEvent::outcome,
              "what came of it: one entry per agent and repository, each with `result` "
              "(started, coalesced, queued, skipped, rate_limited, loop_guard, ignored, "
              "no_matching_agent, no_matching_repository, follow_up, error) and `run_id`, "
              "`agent`, `repository`, `reason` where they apply")};
  }
};

// GET /api/v1/events
struct IncomingEventList {
  std::vector<IncomingEvent> events;
  std::optional<int64_t> next_before;

  static constexpr auto Fields() {
    return std::tuple{RequiredField("events", &IncomingEventList::events, "newest first"),
                      NullableField("next_before", &IncomingEventList::next_before,
                                    "`before` for the next page")};
  }
};

struct ScheduleEntry {
  std::string agent;
  std::string cron;
  std::string timezone;
  std::string misfire;
  std::string last_due;
  std::string next_due;

  static constexpr auto Fields() {
    return std::tuple{Field("agent", &ScheduleEntry::agent, "the agent it starts"),
                      Field("cron", &ScheduleEntry::cron, "its cron expression"),
                      Field("timezone", &ScheduleEntry::timezone, "its IANA time zone"),
                      Field("misfire", &ScheduleEntry::misfire, "run_once or skip"),
                      Field("last_due", &ScheduleEntry::last_due,
                            "the due time it last fired for (or was first seen), RFC 3339"),
                      Field("next_due", &ScheduleEntry::next_due, "its next due time, RFC 3339")};
  }
};

// GET /api/v1/schedules
struct ScheduleList {
  std::vector<ScheduleEntry> schedules;

  static constexpr auto Fields() {
    return std::tuple{RequiredField("schedules", &ScheduleList::schedules, "by agent")};
  }
};

// One agent in force: from the server config's `agents:` or a repository's own
// .nightshift/agents.yml.
struct AgentEntry {
  std::string name;
  std::string origin;      // "config" or "repository"
  std::string repository;  // a repository's own agent: that repository
  std::string commit;      // … and the commit its file was read from
  std::vector<std::string> repositories;
  std::vector<std::string> triggers;
  std::string runs;   // "task" or "recipe"
  std::string model;  // a task's model
  std::string overlap;
  int64_t runs_per_hour = 0;
  int64_t max_concurrent = 0;

  static constexpr auto Fields() {
    return std::tuple{
        RequiredField("name", &AgentEntry::name, "its name (a repository's own: REPO/NAME)"),
        Field("origin", &AgentEntry::origin, "config or repository"),
        Field("repository", &AgentEntry::repository, "a repository's own agent: that repository"),
        Field("commit", &AgentEntry::commit, "the commit its file was read from"),
        Field("repositories", &AgentEntry::repositories, "the config's globs it runs on"),
        Field("triggers", &AgentEntry::triggers, "what starts it, one line each"),
        Field("runs", &AgentEntry::runs, "task (the built-in agent) or recipe"),
        Field("model", &AgentEntry::model, "a task's model"),
        Field("overlap", &AgentEntry::overlap, "skip, queue or cancel_previous"),
        Field("runs_per_hour", &AgentEntry::runs_per_hour, "its limit (0: none)"),
        Field("max_concurrent", &AgentEntry::max_concurrent, "its limit (0: none)")};
  }
};

// A repository's .nightshift/agents.yml as last read.
struct AgentFileEntry {
  std::string repository;
  std::string commit;
  std::string failed_commit;
  std::vector<std::string> errors;

  static constexpr auto Fields() {
    return std::tuple{
        RequiredField("repository", &AgentFileEntry::repository, "the registered repository"),
        Field("commit", &AgentFileEntry::commit,
              "the default branch's commit its agents are read from (empty: none read yet)"),
        Field("failed_commit", &AgentFileEntry::failed_commit,
              "a newer commit whose file could not be used"),
        Field("errors", &AgentFileEntry::errors, "why, one line each")};
  }
};

// GET /api/v1/agents, POST /api/v1/repositories/NAME/agents/refresh
struct AgentList {
  std::vector<AgentEntry> agents;
  std::vector<AgentFileEntry> files;

  static constexpr auto Fields() {
    return std::tuple{RequiredField("agents", &AgentList::agents,
                                    "the config's, then the "
                                    "repositories' own"),
                      Field("files", &AgentList::files, "each repository's agents file")};
  }
};

// POST /api/v1/login
struct LoginRequest {
  std::string user;
  std::string password;
  std::optional<int64_t> ttl_seconds;

  static constexpr auto Fields() {
    return std::tuple{RequiredField("user", &LoginRequest::user, "the user's name"),
                      RequiredField("password", &LoginRequest::password, "their password"),
                      NullableField("ttl_seconds", &LoginRequest::ttl_seconds,
                                    "how long the session token lasts (default 12 hours, at "
                                    "most 30 days)")};
  }
};

// POST /api/v1/users
struct UserRequest {
  std::string name;
  std::string password;
  std::vector<std::string> scopes;

  static constexpr auto Fields() {
    return std::tuple{
        RequiredField("name", &UserRequest::name, "[a-z0-9][a-z0-9._-]{0,63}"),
        RequiredField("password", &UserRequest::password, "12 to 1024 bytes"),
        RequiredField("scopes", &UserRequest::scopes, "what the user may do (docs/governance.md)")};
  }
};

struct User {
  std::string name;
  std::vector<std::string> scopes;
  Timestamp created_at;
  std::optional<Timestamp> disabled_at;

  static constexpr auto Fields() {
    return std::tuple{RequiredField("name", &User::name, "the user's name"),
                      Field("scopes", &User::scopes, "what they may do"),
                      Field("created_at", &User::created_at, "when they were added"),
                      NullableField("disabled_at", &User::disabled_at, "null while enabled")};
  }
};

// GET /api/v1/users
struct UserList {
  std::vector<User> users;

  static constexpr auto Fields() {
    return std::tuple{RequiredField("users", &UserList::users, "by name")};
  }
};

// POST /api/v1/tokens
struct TokenRequest {
  std::string name;
  std::vector<std::string> scopes;
  std::optional<int64_t> expires_in_seconds;

  static constexpr auto Fields() {
    return std::tuple{RequiredField("name", &TokenRequest::name, "its label"),
                      RequiredField("scopes", &TokenRequest::scopes, "each one the caller holds"),
                      NullableField("expires_in_seconds", &TokenRequest::expires_in_seconds,
                                    "its lifetime (null: it does not expire)")};
  }
};

struct Token {
  int64_t id = 0;
  std::string name;
  std::string owner;
  std::vector<std::string> scopes;
  Timestamp created_at;
  std::optional<Timestamp> expires_at;
  std::optional<Timestamp> revoked_at;
  std::string token;  // the secret: only in the answer that made it

  static constexpr auto Fields() {
    return std::tuple{RequiredField("id", &Token::id, "its id"),
                      Field("name", &Token::name, "its label"),
                      Field("owner", &Token::owner, "the user it acts for (empty: itself)"),
                      Field("scopes", &Token::scopes, "what it may do"),
                      Field("created_at", &Token::created_at, "when it was made"),
                      NullableField("expires_at", &Token::expires_at, "null: never"),
                      NullableField("revoked_at", &Token::revoked_at, "null while in force"),
                      Field("token", &Token::token,
                            "the secret, in the answer that made it only (it is stored hashed)")};
  }
};

// GET /api/v1/tokens
struct TokenList {
  std::vector<Token> tokens;

  static constexpr auto Fields() {
    return std::tuple{
        RequiredField("tokens", &TokenList::tokens, "the caller's (an admin's: all)")};
  }
};

}  // namespace nightshift::api
