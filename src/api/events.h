#pragma once

// The catalogue of run events: every kind a run's append-only log holds, its payload's fields with
// their types, and what it means. Each event reaches clients as {seq, ts, kind, data}
// (resources.h: Event) with `data` one of the payloads below; docs/api.md documents each kind,
// and events_test fails when one is missing there.
//
// Emitters build the payload struct and hand it over as an EventRecord, so a kind that is not in
// the catalogue cannot be written:
//
//   events.Emit(api::PhaseEvent{.name = "fetch", .status = "started"});
//
// Readers (the CLI, the web UI) must ignore kinds and fields they do not know: a newer server may
// send more.
//
// kind                   source  meaning
// state                  store   the run moved from one state to another
// log                    runner  a line of the run's output
// phase                  runner  a phase of the run started or ended
// checkout               runner  the ref was resolved and checked out
// environment            runner  the environment was read and its prebuild built or reused
// result                 runner  what the run changed, as the platform read and committed it
// policy                 runner  the review policy blocked the run's changes
// change_request         runner  a change request was opened or updated with the run's commit
// remote_change_request  runner  its counterpart on GitHub or GitLab, or why there is none
// agent_start            agent   the built-in agent started on the task
// model_request          agent   a request to the model, with the messages new since the last
// model_response         agent   the model's answer, or why there was none
// tool_call              agent   the model called a tool
// tool_result            agent   what the tool call returned
// agent_end              agent   the agent stopped, and why

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "api/shape.h"
#include "core/clock.h"
#include "core/json.h"

namespace nightshift::api {

// --- Emitted by the store, in the transaction that changes the run ---

struct StateEvent {
  static constexpr std::string_view kKind = "state";
  static constexpr std::string_view kSource = "store";
  static constexpr std::string_view kMeaning = "the run moved from one state to another";

  std::optional<std::string> from;
  std::string to;
  int32_t attempt = 0;
  std::optional<std::string> runner;
  std::optional<std::string> reason;
  std::optional<int32_t> exit_code;

  static constexpr auto Fields() {
    return std::tuple{
        Field("from", &StateEvent::from, "the state before; absent on the run's first event"),
        Field("to", &StateEvent::to, "the new state (queued, preparing, running, succeeded…)"),
        Field("attempt", &StateEvent::attempt, "the attempt it belongs to (0 while queued)"),
        Field("runner", &StateEvent::runner, "the runner that leased it, on -> preparing"),
        Field("reason", &StateEvent::reason, "why, in words, when there is a why"),
        Field("exit_code", &StateEvent::exit_code, "the recipe's exit status, when it ended")};
  }
};

// --- Emitted by the runner ---

struct LogEvent {
  static constexpr std::string_view kKind = "log";
  static constexpr std::string_view kSource = "runner";
  static constexpr std::string_view kMeaning = "a line of the run's output";

  std::string stream;  // "stdout" or "stderr"
  std::string line;

  static constexpr auto Fields() {
    return std::tuple{Field("stream", &LogEvent::stream, "\"stdout\" or \"stderr\""),
                      Field("line", &LogEvent::line, "the line, without its newline")};
  }
};

struct PhaseEvent {
  static constexpr std::string_view kKind = "phase";
  static constexpr std::string_view kSource = "runner";
  static constexpr std::string_view kMeaning = "a phase of the run started or ended";

  std::string name;
  std::string status;
  std::optional<int64_t> duration_ms;

  static constexpr auto Fields() {
    return std::tuple{
        Field("name", &PhaseEvent::name, "fetch, checkout, environment, agent or deliver"),
        Field("status", &PhaseEvent::status,
              "started; at its end ok, failed, cancelled, blocked or partial"),
        Field("duration_ms", &PhaseEvent::duration_ms, "how long it took, at its end")};
  }
};

struct CheckoutEvent {
  static constexpr std::string_view kKind = "checkout";
  static constexpr std::string_view kSource = "runner";
  static constexpr std::string_view kMeaning = "the ref was resolved and checked out";

  std::string commit;
  std::string ref;
  std::optional<std::vector<std::string>> layers;

  static constexpr auto Fields() {
    return std::tuple{
        Field("commit", &CheckoutEvent::commit, "the commit the ref resolved to"),
        Field("ref", &CheckoutEvent::ref, "the ref asked for (empty: the repository's HEAD)"),
        Field("layers", &CheckoutEvent::layers, "the cached checkout layers, top first")};
  }
};

struct EnvironmentEvent {
  static constexpr std::string_view kKind = "environment";
  static constexpr std::string_view kSource = "runner";
  static constexpr std::string_view kMeaning =
      "the environment was read and its prebuild built or reused";

  std::string prebuild;
  std::string prebuild_id;
  int64_t setup_commands = 0;
  std::vector<std::string> sources;

  static constexpr auto Fields() {
    return std::tuple{
        Field("prebuild", &EnvironmentEvent::prebuild, "none, reused, built, or \"failed: <why>\""),
        Field("prebuild_id", &EnvironmentEvent::prebuild_id,
              "the prebuild's key; empty without setup commands"),
        Field("setup_commands", &EnvironmentEvent::setup_commands,
              "how many setup commands the environment has"),
        Field("sources", &EnvironmentEvent::sources,
              "the files it was read from, repository-relative")};
  }
};

// --- Emitted by the control plane's delivery (forge/delivery.h) when a runner hands over ---

// One file of a run's result.
struct ChangedFile {
  std::string path;
  std::string status;
  std::optional<std::string> added;
  std::optional<std::string> removed;

  static constexpr auto Fields() {
    return std::tuple{
        Field("path", &ChangedFile::path, "repository-relative"),
        Field("status", &ChangedFile::status, "added, modified or deleted"),
        Field("added", &ChangedFile::added, "lines added, as a decimal string (-1: binary)"),
        Field("removed", &ChangedFile::removed, "lines removed, as a decimal string")};
  }
};

struct ResultEvent {
  static constexpr std::string_view kKind = "result";
  static constexpr std::string_view kSource = "control plane";
  static constexpr std::string_view kMeaning =
      "what the run changed, as the platform read and committed it";

  std::string summary;
  std::optional<std::string> error;
  std::optional<std::vector<ChangedFile>> files;
  std::optional<bool> diff_truncated;
  std::optional<std::string> diff;
  std::optional<int64_t> read_ms;

  static constexpr auto Fields() {
    return std::tuple{
        Field("summary", &ResultEvent::summary, "the agent's summary (empty for a recipe)"),
        Field("error", &ResultEvent::error, "why the result could not be read (nothing else then)"),
        Field("files", &ResultEvent::files, "the changed files"),
        Field("diff_truncated", &ResultEvent::diff_truncated, "the diff was cut at 1 MiB"),
        Field("diff", &ResultEvent::diff, "the change as a unified diff"),
        Field("read_ms", &ResultEvent::read_ms, "how long reading and committing it took")};
  }
};

struct PolicyEvent {
  static constexpr std::string_view kKind = "policy";
  static constexpr std::string_view kSource = "control plane";
  static constexpr std::string_view kMeaning =
      "the review policy or a policy rule blocked the run's changes, or its recipe";

  std::vector<std::string> violations;

  static constexpr auto Fields() {
    return std::tuple{Field("violations", &PolicyEvent::violations,
                            "each rule broken, in words (review.md, governance.md)")};
  }
};

struct ChangeRequestEvent {
  static constexpr std::string_view kKind = "change_request";
  static constexpr std::string_view kSource = "control plane";
  static constexpr std::string_view kMeaning =
      "a change request was opened or updated with the run's commit";

  int64_t id = 0;
  std::string branch;
  std::string base_branch;
  std::string head_commit;
  bool updated = false;

  static constexpr auto Fields() {
    return std::tuple{
        Field("id", &ChangeRequestEvent::id, "the change request's id"),
        Field("branch", &ChangeRequestEvent::branch, "the branch pushed: nightshift/<kind>/<run>"),
        Field("base_branch", &ChangeRequestEvent::base_branch, "the branch it merges into"),
        Field("head_commit", &ChangeRequestEvent::head_commit, "the platform's commit"),
        Field("updated", &ChangeRequestEvent::updated,
              "true when a follow-up run updated an existing one")};
  }
};

struct RemoteChangeRequestEvent {
  static constexpr std::string_view kKind = "remote_change_request";
  static constexpr std::string_view kSource = "control plane";
  static constexpr std::string_view kMeaning =
      "the change request's counterpart on GitHub or GitLab, or why there is none";

  std::optional<std::string> id;
  std::optional<std::string> url;
  std::optional<std::string> error;

  static constexpr auto Fields() {
    return std::tuple{
        Field("id", &RemoteChangeRequestEvent::id, "its number (GitHub) or iid (GitLab)"),
        Field("url", &RemoteChangeRequestEvent::url, "its web address"),
        Field("error", &RemoteChangeRequestEvent::error, "why publishing it failed")};
  }
};

// --- Emitted by the built-in agent (agent/loop.h): its transcript ---

struct AgentBudgets {
  int32_t max_steps = 0;
  int64_t max_tokens = 0;
  double max_cost_usd = 0;
  int64_t max_wall_seconds = 0;

  static constexpr auto Fields() {
    return std::tuple{
        Field("max_steps", &AgentBudgets::max_steps, "model calls"),
        Field("max_tokens", &AgentBudgets::max_tokens, "input and output tokens"),
        Field("max_cost_usd", &AgentBudgets::max_cost_usd, "dollars"),
        Field("max_wall_seconds", &AgentBudgets::max_wall_seconds, "0: the run's timeout only")};
  }
};

struct AgentStartEvent {
  static constexpr std::string_view kKind = "agent_start";
  static constexpr std::string_view kSource = "agent";
  static constexpr std::string_view kMeaning = "the built-in agent started on the task";

  std::string model;
  std::string provider;
  std::string task;
  std::string system_prompt;
  AgentBudgets budgets;

  static constexpr auto Fields() {
    return std::tuple{
        Field("model", &AgentStartEvent::model, "the model's name in the server's config"),
        Field("provider", &AgentStartEvent::provider, "openai or anthropic"),
        Field("task", &AgentStartEvent::task, "the task as given"),
        Field("system_prompt", &AgentStartEvent::system_prompt, "the system prompt sent"),
        Field("budgets", &AgentStartEvent::budgets, "the limits that end the loop")};
  }
};

// A message of the conversation, as recorded in a model_request event.
struct TranscriptMessage {
  std::string role;
  std::string text;
  std::optional<std::string> tool_call_id;

  static constexpr auto Fields() {
    return std::tuple{
        Field("role", &TranscriptMessage::role, "user, assistant or tool"),
        Field("text", &TranscriptMessage::text, "its text"),
        Field("tool_call_id", &TranscriptMessage::tool_call_id, "the call a tool message answers")};
  }
};

struct ModelRequestEvent {
  static constexpr std::string_view kKind = "model_request";
  static constexpr std::string_view kSource = "agent";
  static constexpr std::string_view kMeaning =
      "a request to the model, with the messages new since the last one";

  int32_t step = 0;
  std::string model;
  int64_t messages = 0;
  std::vector<TranscriptMessage> new_messages;

  static constexpr auto Fields() {
    return std::tuple{
        Field("step", &ModelRequestEvent::step, "the model call's number, from 1"),
        Field("model", &ModelRequestEvent::model, "the provider's model id"),
        Field("messages", &ModelRequestEvent::messages, "the conversation's length"),
        Field("new_messages", &ModelRequestEvent::new_messages, "the messages not recorded yet")};
  }
};

// A tool call the model asked for.
struct RequestedToolCall {
  std::string id;
  std::string name;
  std::string arguments;

  static constexpr auto Fields() {
    return std::tuple{Field("id", &RequestedToolCall::id, "the model's id for the call"),
                      Field("name", &RequestedToolCall::name, "the tool"),
                      Field("arguments", &RequestedToolCall::arguments,
                            "JSON text as the model wrote it (it may be invalid)")};
  }
};

struct ModelResponseEvent {
  static constexpr std::string_view kKind = "model_response";
  static constexpr std::string_view kSource = "agent";
  static constexpr std::string_view kMeaning = "the model's answer, or why there was none";

  int32_t step = 0;
  std::optional<std::string> error;
  std::optional<std::string> text;
  std::optional<std::vector<RequestedToolCall>> tool_calls;
  std::optional<std::string> stop_reason;
  std::optional<int64_t> input_tokens;
  std::optional<int64_t> output_tokens;
  std::optional<double> cost_usd;
  std::optional<int64_t> latency_ms;
  std::optional<int32_t> attempts;

  static constexpr auto Fields() {
    return std::tuple{
        Field("step", &ModelResponseEvent::step, "the model call's number"),
        Field("error", &ModelResponseEvent::error, "why there is no answer (nothing else then)"),
        Field("text", &ModelResponseEvent::text, "the answer's text"),
        Field("tool_calls", &ModelResponseEvent::tool_calls, "the tools it calls"),
        Field("stop_reason", &ModelResponseEvent::stop_reason, "as the provider said it"),
        Field("input_tokens", &ModelResponseEvent::input_tokens, "tokens in"),
        Field("output_tokens", &ModelResponseEvent::output_tokens, "tokens out"),
        Field("cost_usd", &ModelResponseEvent::cost_usd, "this call's cost"),
        Field("latency_ms", &ModelResponseEvent::latency_ms, "the call's time, retries included"),
        Field("attempts", &ModelResponseEvent::attempts, "requests sent, retries included")};
  }
};

struct ToolCallEvent {
  static constexpr std::string_view kKind = "tool_call";
  static constexpr std::string_view kSource = "agent";
  static constexpr std::string_view kMeaning = "the model called a tool";

  std::string id;
  std::string name;
  std::string arguments;

  static constexpr auto Fields() {
    return std::tuple{Field("id", &ToolCallEvent::id, "the model's id for the call"),
                      Field("name", &ToolCallEvent::name, "the tool"),
                      Field("arguments", &ToolCallEvent::arguments,
                            "JSON text as the model wrote it (it may be invalid)")};
  }
};

struct ToolResultEvent {
  static constexpr std::string_view kKind = "tool_result";
  static constexpr std::string_view kSource = "agent";
  static constexpr std::string_view kMeaning = "what a tool call returned";

  std::string id;
  std::string name;
  bool is_error = false;
  std::string output;
  int64_t duration_ms = 0;

  static constexpr auto Fields() {
    return std::tuple{Field("id", &ToolResultEvent::id, "the call it answers"),
                      Field("name", &ToolResultEvent::name, "the tool"),
                      Field("is_error", &ToolResultEvent::is_error, "the call failed"),
                      Field("output", &ToolResultEvent::output, "what the model is shown"),
                      Field("duration_ms", &ToolResultEvent::duration_ms, "how long it took")};
  }
};

struct AgentEndEvent {
  static constexpr std::string_view kKind = "agent_end";
  static constexpr std::string_view kSource = "agent";
  static constexpr std::string_view kMeaning = "the agent stopped, and why";

  std::string end;
  std::string reason;
  std::string summary;
  int32_t steps = 0;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  double cost_usd = 0;
  int64_t wall_ms = 0;

  static constexpr auto Fields() {
    return std::tuple{
        Field("end", &AgentEndEvent::end, "finished, budget, model_error or cancelled"),
        Field("reason", &AgentEndEvent::reason, "why, unless it finished"),
        Field("summary", &AgentEndEvent::summary, "the agent's summary of its work"),
        Field("steps", &AgentEndEvent::steps, "model calls made"),
        Field("input_tokens", &AgentEndEvent::input_tokens, "tokens in, over the run"),
        Field("output_tokens", &AgentEndEvent::output_tokens, "tokens out, over the run"),
        Field("cost_usd", &AgentEndEvent::cost_usd, "dollars, over the run"),
        Field("wall_ms", &AgentEndEvent::wall_ms, "time in the loop")};
  }
};

// --- The catalogue ---

// Every payload type, in the order of the table above.
using EventPayloads = std::tuple<StateEvent, LogEvent, PhaseEvent, CheckoutEvent, EnvironmentEvent,
                                 ResultEvent, PolicyEvent, ChangeRequestEvent,
                                 RemoteChangeRequestEvent, AgentStartEvent, ModelRequestEvent,
                                 ModelResponseEvent, ToolCallEvent, ToolResultEvent, AgentEndEvent>;

// A payload of the catalogue.
template <typename E>
concept EventPayload = Shape<E> && requires {
  { E::kKind } -> std::convertible_to<std::string_view>;
  { E::kSource } -> std::convertible_to<std::string_view>;
  { E::kMeaning } -> std::convertible_to<std::string_view>;
};

struct EventKindInfo {
  std::string_view kind;
  std::string_view source;  // who emits it: store, runner or agent
  std::string_view meaning;
  std::vector<FieldInfo> fields;
};

// The catalogue, in the order of EventPayloads. Thread-safe.
const std::vector<EventKindInfo>& EventCatalogue();

// The catalogue's entry for `kind`; nullptr for a kind it does not have.
const EventKindInfo* FindEventKind(std::string_view kind);

// One event of the catalogue, ready to append to a run's log: its kind and its payload. Made
// only from a payload type, so every kind written is in the catalogue.
class EventRecord {
 public:
  template <EventPayload E>
  EventRecord(const E& payload)  // NOLINT(google-explicit-constructor): emit sites pass payloads
      : kind_(E::kKind), data_(ToJson(payload)) {}

  std::string_view kind() const { return kind_; }
  const Json& data() const { return data_; }
  // The payload as JSON text; invalid UTF-8 (a process's output) is replaced, not rejected.
  std::string Serialize() const;

 private:
  std::string_view kind_;  // one of the catalogue's, which live as long as the program
  Json data_;
};

// One phase of a run, as its two `phase` events: "started" when made, and its end with how long
// it took on End(). `Sink` is whatever appends a run's events (its Emit takes an EventRecord).
template <typename Sink>
class PhaseTimer {
 public:
  PhaseTimer(Sink& sink, std::string name)
      : sink_(sink), name_(std::move(name)), start_ms_(MonotonicMs()) {
    sink_.Emit(PhaseEvent{.name = name_, .status = "started"});
  }
  void End(std::string_view status) {
    sink_.Emit(PhaseEvent{
        .name = name_, .status = std::string(status), .duration_ms = MonotonicMs() - start_ms_});
  }

 private:
  Sink& sink_;
  std::string name_;
  int64_t start_ms_;
};

}  // namespace nightshift::api
