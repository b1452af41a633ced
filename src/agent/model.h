#pragma once

// Language models behind one interface: a provider-neutral conversation (system prompt,
// messages, tool calls and their results), sent to an OpenAI-compatible Chat Completions API
// or to Anthropic's Messages API over libcurl, with retries on 429/5xx and transport errors
// (honouring Retry-After), a timeout per request, and token usage per response.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/cancel.h"
#include "core/json.h"
#include "core/status.h"

namespace nightshift::agent {

struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // JSON text as the model wrote it; may be invalid
};

struct Message {
  enum class Role { kUser, kAssistant, kTool };
  Role role = Role::kUser;
  std::string text;
  std::vector<ToolCall> tool_calls;  // assistant
  std::string tool_call_id;          // tool: the call it answers
  bool is_error = false;             // tool
};

struct ToolSpec {
  std::string name;
  std::string description;
  Json parameters;  // JSON Schema of the arguments object
};

struct ModelRequest {
  std::string system;
  std::vector<Message> messages;
  std::vector<ToolSpec> tools;
};

struct Usage {
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
};

struct ModelResponse {
  std::string text;
  std::vector<ToolCall> tool_calls;
  std::string stop_reason;
  Usage usage;
  int attempts = 1;  // requests sent, retries included
  int64_t latency_ms = 0;
};

struct ModelConfig {
  std::string name;      // the key in the config's `models:`
  std::string provider;  // "openai" or "anthropic"
  std::string base_url;  // e.g. https://api.openai.com/v1, https://api.anthropic.com
  std::string model;
  std::string api_key_env;
  std::string api_key;             // resolved from api_key_env when the server starts; never logged
  double input_cost_per_mtok = 0;  // USD per million input tokens
  double output_cost_per_mtok = 0;  // USD per million output tokens
  int max_output_tokens = 4096;
  int64_t timeout_ms = 120'000;  // per request
  int max_retries = 4;           // after the first attempt
  int64_t retry_base_ms = 1000;  // backoff: base × 2^attempt, at most retry_max_ms
  int64_t retry_max_ms = 30'000;

  double Cost(const Usage& usage) const {
    return (static_cast<double>(usage.input_tokens) * input_cost_per_mtok +
            static_cast<double>(usage.output_tokens) * output_cost_per_mtok) /
           1e6;
  }
};

class ModelClient {
 public:
  virtual ~ModelClient() = default;
  // Unavailable with the last reason once retries are used up (or at once for errors a retry
  // cannot fix: 400, 401, 403, 404); Cancelled when `cancel` fires.
  virtual StatusOr<ModelResponse> Complete(const ModelRequest& request,
                                           const CancelToken* cancel) = 0;
};

// InvalidArgument for an unknown provider.
StatusOr<std::unique_ptr<ModelClient>> MakeModelClient(const ModelConfig& config);

// The wire formats, exposed for tests.
Json EncodeOpenAi(const ModelConfig& config, const ModelRequest& request);
StatusOr<ModelResponse> DecodeOpenAi(const Json& body);
Json EncodeAnthropic(const ModelConfig& config, const ModelRequest& request);
StatusOr<ModelResponse> DecodeAnthropic(const Json& body);

// Milliseconds a Retry-After header asks for (seconds or an HTTP date); -1 if absent/invalid.
int64_t RetryAfterMs(const std::string& header, int64_t now_ms);

}  // namespace nightshift::agent
