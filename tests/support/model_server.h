#pragma once

// A scripted model server for tests: the model providers cannot be reached from test machines,
// so this plays one on 127.0.0.1. It speaks the real HTTP protocols of both providers,
//
//   OpenAI-compatible Chat Completions   POST /v1/chat/completions   (openai_base_url())
//   Anthropic Messages                   POST /v1/messages           (anthropic_base_url())
//
// replays a scenario one step per request, and records every way the client's requests break
// the protocol or the scenario's expectations. A test drives the client under test against it,
// then asserts that errors() is empty.
//
// Scenario (usually a file, see LoadScenario):
//
//   {"steps": [
//     {"expect":  {"tools": ["read_file", "finish"], "system_contains": "Fix the test",
//                  "last_tool_result_contains": "def add", "last_tool_result_is_error": false,
//                  "messages_at_least": 3, "model": "gpt-x"},
//      "respond": {"text": "I will read the test.",
//                  "tool_calls": [{"name": "read_file", "arguments": {"path": "t.py"}}],
//                  "usage": {"input": 120, "output": 30}, "delay_ms": 0}},
//     {"respond": {"status": 429, "headers": {"Retry-After": "0"}, "body": "{\"error\": 1}"}},
//     {"respond": {"raw_body": "this is not json"}},
//     {"respond": {"tool_calls": [{"name": "write_file", "arguments_raw": "{not json"}]}}
//   ]}
//
// Steps are numbered from 1 in errors ("step 2 (anthropic): ..."). Every POST to either endpoint
// consumes the next step, whichever protocol it uses; a request past the last step gets a 500
// and the error "unexpected request N ...". Unknown keys anywhere in a step are rejected, so a
// misspelt expectation cannot pass silently; "about" (a note, ignored) is allowed at the top
// level and in steps, as are other top-level keys.
//
// respond, one of:
//   - "status" other than 200, with optional "headers" and "body": sent as is.
//   - "raw_body" (optional "status", "headers"): sent as is, status 200 by default.
//   - an assistant turn in the request's protocol: optional "text", optional "tool_calls" (each
//     with "name" and "arguments" (an object) or "arguments_raw" (a string sent unparsed: as the
//     OpenAI arguments string, or as an Anthropic `input` that is a JSON string instead of an
//     object, which the client must reject)), "usage" {"input", "output"} (default 100 / 20).
//     Tool call ids are call_<n> (OpenAI) or toolu_<n> (Anthropic), n counting up across the
//     whole scenario. No text and no tool calls gives an empty final turn.
//   "delay_ms" delays any kind of answer.
//
// expect (each optional; a mismatch is an error naming the step):
//   tools                      these tool names are all offered
//   system_contains            the system prompt (OpenAI: messages[0], which must be role
//                              system; Anthropic: the `system` field) contains this
//   last_tool_result_contains  the most recent tool result (OpenAI: the last role "tool"
//                              message; Anthropic: the last tool_result block, content string or
//                              its text blocks concatenated) contains this
//   last_tool_result_is_error  Anthropic only: that tool_result's is_error (false when absent).
//                              Chat Completions has no such flag; ignored on OpenAI requests.
//   messages_at_least          messages.size() >= n (OpenAI counts the system message)
//   model                      the request's model equals this
//
// Protocol checks on every request within the script (the scripted answer is still sent):
// auth headers (OpenAI `Authorization: Bearer <key>`; Anthropic `x-api-key` and
// `anthropic-version`), a JSON object body with `model` and a non-empty `tools` array; OpenAI:
// messages[0] is the system message, each assistant tool call is answered, in order, by role
// "tool" messages before the next other message, and no tool message answers nothing;
// Anthropic: non-empty `system`, `max_tokens` > 0, roles alternate starting with user, each
// tool_use is answered by a tool_result in the immediately following user message, no
// tool_result without its tool_use, tool_use inputs are objects. Every tool call id in the
// request must be one this server issued (clients echo ids, never invent them), and the request
// must carry at least as many assistant messages as assistant turns served so far (error and
// raw_body steps do not count): one ModelServer is one conversation.
//
// Thread safety: all methods may be called from any thread while requests are served.

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/json.h"
#include "core/status.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace nightshift::testing {

class ModelServer {
 public:
  // Validates `scenario` and starts listening on a free loopback port. On an invalid scenario
  // or a failure to listen, ok() is false and errors() says why.
  explicit ModelServer(Json scenario);
  ~ModelServer();  // stops listening; waits for requests in flight (and their delays)
  ModelServer(const ModelServer&) = delete;
  ModelServer& operator=(const ModelServer&) = delete;

  bool ok() const { return ok_; }
  int port() const { return port_; }
  std::string openai_base_url() const;     // "http://127.0.0.1:PORT/v1"
  std::string anthropic_base_url() const;  // "http://127.0.0.1:PORT"

  // Protocol and expectation failures, and unexpected requests, in the order they happened.
  std::vector<std::string> errors() const;
  // Every request body received on either endpoint, in order; Json(nullptr) if unparsable.
  std::vector<Json> requests() const;
  // Steps consumed so far (requests past the script are not counted).
  int steps_served() const;

  // Reads and validates a scenario file. InvalidArgument naming the file and the problem.
  static StatusOr<Json> LoadScenario(const std::filesystem::path& file);

 private:
  enum class Protocol { kOpenAi, kAnthropic };
  void Handle(Protocol protocol, const httplib::Request& req, httplib::Response& res);

  const Json scenario_;
  std::unique_ptr<httplib::Server> http_;
  std::thread http_thread_;
  std::atomic<bool> listen_returned_{false};
  bool ok_ = false;
  int port_ = 0;

  mutable std::mutex mu_;
  std::vector<std::string> errors_;    // GUARDED_BY(mu_)
  std::vector<Json> requests_;         // GUARDED_BY(mu_)
  size_t next_step_ = 0;               // GUARDED_BY(mu_)
  int assistant_turns_served_ = 0;     // GUARDED_BY(mu_) normal turns, not error/raw steps
  int64_t last_tool_call_number_ = 0;  // GUARDED_BY(mu_)
  std::set<std::string> issued_ids_;   // GUARDED_BY(mu_)
};

}  // namespace nightshift::testing
