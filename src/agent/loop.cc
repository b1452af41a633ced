#include "agent/loop.h"

#include "core/clock.h"

namespace nightshift::agent {
namespace {

constexpr const char* kContextScript = R"SH(
echo "## Repository layout (git ls-files, first 300 entries)"
git ls-files 2>/dev/null | head -n 300
for f in AGENTS.md .nightshift/instructions.md; do
  if [ -f "$f" ]; then echo; echo "## The repository's instructions ($f)"; head -c 20000 "$f"; fi
done
echo; echo "## Environment"
echo "os: $(uname -sm)"
echo "tools: $(for t in git make gcc g++ clang python3 node npm go cargo java mvn; do command -v $t >/dev/null 2>&1 && printf '%s ' $t; done)"
)SH";

std::vector<api::RequestedToolCall> RequestedCalls(const std::vector<ToolCall>& calls) {
  std::vector<api::RequestedToolCall> out;
  for (const ToolCall& c : calls)
    out.push_back({.id = c.id, .name = c.name, .arguments = c.arguments});
  return out;
}

const char* EndName(LoopResult::End end) {
  switch (end) {
    case LoopResult::End::kFinished:
      return "finished";
    case LoopResult::End::kBudget:
      return "budget";
    case LoopResult::End::kModelError:
      return "model_error";
    case LoopResult::End::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

}  // namespace

std::string SystemPrompt(Sandbox& sandbox, const CancelToken* cancel) {
  std::string context;
  if (auto r = sandbox.Run(kContextScript, {}, "", 30'000, cancel); r.ok()) {
    context = Bound(r->output, 32 * 1024);
  }
  return StrCat(
      "You are a software engineering agent working unattended in a sandbox on a git "
      "repository checked out at /workspace. Complete the task you are given by using the "
      "tools: read and search the code, change it with edit_file or write_file, and run the "
      "tests with run_command. Make the smallest change that solves the task; do not commit, "
      "push or reformat unrelated code. Nobody will answer questions: decide and proceed. When "
      "the work is done and verified (or cannot be done), call finish with a summary of what "
      "you changed and which tests you ran.\n\n",
      context);
}

LoopResult RunAgentLoop(ModelClient& client, const LoopInput& input, Sandbox& sandbox,
                        EventSink& events, const CancelToken* cancel) {
  const int64_t start_ms = MonotonicMs();
  LoopResult result;
  Tools tools(sandbox, Redactor(input.secrets), input.tool_output_bytes, input.command_timeout_ms,
              input.authorize);
  ModelRequest request{.system = SystemPrompt(sandbox, cancel), .tools = Tools::Specs()};
  request.messages.push_back({.role = Message::Role::kUser, .text = input.task});
  events.Emit(
      api::AgentStartEvent{.model = input.model.name,
                           .provider = input.model.provider,
                           .task = input.task,
                           .system_prompt = request.system,
                           .budgets = {.max_steps = input.budgets.max_steps,
                                       .max_tokens = input.budgets.max_tokens,
                                       .max_cost_usd = input.budgets.max_cost_usd,
                                       .max_wall_seconds = input.budgets.max_wall_ms / 1000}});
  auto finish = [&](LoopResult::End end, std::string reason) {
    result.end = end;
    result.reason = std::move(reason);
    events.Emit(api::AgentEndEvent{.end = EndName(end),
                                   .reason = result.reason,
                                   .summary = result.summary,
                                   .steps = result.steps,
                                   .input_tokens = result.usage.input_tokens,
                                   .output_tokens = result.usage.output_tokens,
                                   .cost_usd = result.cost_usd,
                                   .wall_ms = MonotonicMs() - start_ms});
    return result;
  };

  size_t reported = 0;  // messages already recorded in a model_request event
  int nudges = 0;
  for (;;) {
    if (cancel != nullptr && cancel->IsCancelled())
      return finish(LoopResult::End::kCancelled, "cancelled");
    const Budgets& b = input.budgets;
    const int64_t tokens = result.usage.input_tokens + result.usage.output_tokens;
    if (result.steps >= b.max_steps) {
      return finish(LoopResult::End::kBudget, StrCat("step budget of ", b.max_steps, " used up"));
    }
    if (tokens >= b.max_tokens) {
      return finish(LoopResult::End::kBudget,
                    StrCat("token budget of ", b.max_tokens, " used up (", tokens, " tokens)"));
    }
    if (result.cost_usd >= b.max_cost_usd) {
      return finish(LoopResult::End::kBudget,
                    StrCat("cost budget of $", b.max_cost_usd, " used up"));
    }
    if (b.max_wall_ms > 0 && MonotonicMs() - start_ms >= b.max_wall_ms) {
      return finish(LoopResult::End::kBudget,
                    StrCat("time budget of ", b.max_wall_ms / 1000, " s used up"));
    }

    ++result.steps;
    std::vector<api::TranscriptMessage> new_messages;
    for (size_t i = reported; i < request.messages.size(); ++i) {
      const Message& m = request.messages[i];
      new_messages.push_back({.role = m.role == Message::Role::kUser        ? "user"
                                      : m.role == Message::Role::kAssistant ? "assistant"
                                                                            : "tool",
                              .text = m.text,
                              .tool_call_id = m.tool_call_id.empty()
                                                  ? std::nullopt
                                                  : std::optional<std::string>(m.tool_call_id)});
    }
    reported = request.messages.size();
    events.Emit(api::ModelRequestEvent{.step = result.steps,
                                       .model = input.model.model,
                                       .messages = static_cast<int64_t>(request.messages.size()),
                                       .new_messages = std::move(new_messages)});
    auto response = client.Complete(request, cancel);
    if (!response.ok()) {
      if (response.status().code() == StatusCode::kCancelled) {
        return finish(LoopResult::End::kCancelled, "cancelled");
      }
      events.Emit(
          api::ModelResponseEvent{.step = result.steps, .error = response.status().message()});
      return finish(LoopResult::End::kModelError, response.status().message());
    }
    result.usage.input_tokens += response->usage.input_tokens;
    result.usage.output_tokens += response->usage.output_tokens;
    const double cost = input.model.Cost(response->usage);
    result.cost_usd += cost;
    events.Emit(api::ModelResponseEvent{.step = result.steps,
                                        .text = response->text,
                                        .tool_calls = RequestedCalls(response->tool_calls),
                                        .stop_reason = response->stop_reason,
                                        .input_tokens = response->usage.input_tokens,
                                        .output_tokens = response->usage.output_tokens,
                                        .cost_usd = cost,
                                        .latency_ms = response->latency_ms,
                                        .attempts = response->attempts});
    request.messages.push_back({.role = Message::Role::kAssistant,
                                .text = response->text,
                                .tool_calls = response->tool_calls});
    if (response->tool_calls.empty()) {
      // Text only: remind it once how to end; the second time, its text is the summary.
      if (++nudges >= 2) {
        result.summary = response->text;
        return finish(LoopResult::End::kFinished, "");
      }
      request.messages.push_back(
          {.role = Message::Role::kUser,
           .text = "Continue with the tools. When the task is done, call finish with a summary."});
      continue;
    }
    nudges = 0;
    bool finished = false;
    for (const ToolCall& call : response->tool_calls) {
      events.Emit(
          api::ToolCallEvent{.id = call.id, .name = call.name, .arguments = call.arguments});
      const int64_t tool_start = MonotonicMs();
      Tools::Result outcome;
      if (finished) {
        outcome = {"not run: finish was called before it", true, false};
      } else {
        auto called = tools.Call(call, cancel);
        if (!called.ok()) return finish(LoopResult::End::kCancelled, "cancelled");
        outcome = std::move(*called);
      }
      events.Emit(api::ToolResultEvent{.id = call.id,
                                       .name = call.name,
                                       .is_error = outcome.is_error,
                                       .output = outcome.output,
                                       .duration_ms = MonotonicMs() - tool_start});
      if (outcome.finish && !outcome.is_error) {
        finished = true;
        result.summary = outcome.output;
      }
      request.messages.push_back({.role = Message::Role::kTool,
                                  .text = outcome.finish ? "finished" : outcome.output,
                                  .tool_call_id = call.id,
                                  .is_error = outcome.is_error});
    }
    if (finished) return finish(LoopResult::End::kFinished, "");
  }
}

}  // namespace nightshift::agent
