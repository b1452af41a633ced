#pragma once

// The built-in agent: a tool loop. The model (outside the sandbox) reasons and calls tools;
// every tool runs inside the run's sandbox (tools.h). Budgets for steps, tokens, cost and wall
// time each end the run cleanly, keeping what was done. Every model request and response and
// every tool call with its result is recorded as a run event.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "agent/config.h"
#include "agent/model.h"
#include "agent/tools.h"
#include "api/events.h"

namespace nightshift::agent {

// Where the loop's transcript goes: one event of the catalogue (api/events.h) per call —
// agent_start, model_request, model_response, tool_call, tool_result, agent_end.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void Emit(const api::EventRecord& event) = 0;
};

struct LoopInput {
  std::string task;
  ModelConfig model;
  Budgets budgets;
  size_t tool_output_bytes = 16 * 1024;
  int64_t command_timeout_ms = 600'000;
  std::vector<std::string> secrets;  // redacted from whatever reaches the model
  Authorize authorize;               // policy on the tools' actions (tools.h); unset: none
};

struct LoopResult {
  enum class End { kFinished, kBudget, kModelError, kCancelled };
  End end = End::kFinished;
  std::string summary;  // the model's, when finished
  std::string reason;   // why it stopped otherwise
  int steps = 0;        // model calls
  Usage usage;
  double cost_usd = 0;
};

// The system prompt: the task's setting, the repository's layout and its own instructions
// (AGENTS.md or .nightshift/instructions.md), and the environment. Gathered in the sandbox.
std::string SystemPrompt(Sandbox& sandbox, const CancelToken* cancel);

LoopResult RunAgentLoop(ModelClient& client, const LoopInput& input, Sandbox& sandbox,
                        EventSink& events, const CancelToken* cancel);

}  // namespace nightshift::agent
