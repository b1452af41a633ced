#include "agent/model.h"

#include <ctime>
#include <thread>

#include "core/clock.h"
#include "core/http.h"
#include "core/log.h"

namespace nightshift::agent {
namespace {

std::string TrimSlash(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

// --- OpenAI-compatible Chat Completions ---

Json OpenAiMessages(const ModelRequest& request) {
  Json messages = Json::array();
  messages.push_back({{"role", "system"}, {"content", request.system}});
  for (const Message& m : request.messages) {
    switch (m.role) {
      case Message::Role::kUser:
        messages.push_back({{"role", "user"}, {"content", m.text}});
        break;
      case Message::Role::kAssistant: {
        Json msg = {{"role", "assistant"},
                    {"content", m.text.empty() ? Json(nullptr) : Json(m.text)}};
        if (!m.tool_calls.empty()) {
          Json calls = Json::array();
          for (const ToolCall& call : m.tool_calls) {
            calls.push_back({{"id", call.id},
                             {"type", "function"},
                             {"function", {{"name", call.name}, {"arguments", call.arguments}}}});
          }
          msg["tool_calls"] = std::move(calls);
        }
        messages.push_back(std::move(msg));
        break;
      }
      case Message::Role::kTool:
        messages.push_back(
            {{"role", "tool"}, {"tool_call_id", m.tool_call_id}, {"content", m.text}});
        break;
    }
  }
  return messages;
}

// --- Anthropic Messages ---

Json AnthropicMessages(const ModelRequest& request) {
  Json messages = Json::array();
  // Tool results go back as a user turn of tool_result blocks; consecutive ones share a turn.
  for (const Message& m : request.messages) {
    switch (m.role) {
      case Message::Role::kUser:
        messages.push_back(
            {{"role", "user"}, {"content", Json::array({{{"type", "text"}, {"text", m.text}}})}});
        break;
      case Message::Role::kAssistant: {
        Json content = Json::array();
        if (!m.text.empty()) content.push_back({{"type", "text"}, {"text", m.text}});
        for (const ToolCall& call : m.tool_calls) {
          // The input must be an object; what the model sent is kept as it was otherwise.
          Json input = Json::parse(call.arguments, nullptr, false);
          if (!input.is_object()) input = Json::object();
          content.push_back(
              {{"type", "tool_use"}, {"id", call.id}, {"name", call.name}, {"input", input}});
        }
        if (content.empty()) content.push_back({{"type", "text"}, {"text", "(no text)"}});
        messages.push_back({{"role", "assistant"}, {"content", std::move(content)}});
        break;
      }
      case Message::Role::kTool: {
        Json block = {
            {"type", "tool_result"}, {"tool_use_id", m.tool_call_id}, {"content", m.text}};
        if (m.is_error) block["is_error"] = true;
        if (!messages.empty() && messages.back()["role"] == "user" &&
            messages.back()["content"].is_array() && !messages.back()["content"].empty() &&
            messages.back()["content"].back().value("type", "") == "tool_result") {
          messages.back()["content"].push_back(std::move(block));
        } else {
          messages.push_back({{"role", "user"}, {"content", Json::array({std::move(block)})}});
        }
        break;
      }
    }
  }
  return messages;
}

bool Retryable(int status) {
  return status == 408 || status == 409 || status == 429 || status >= 500;
}

std::string ErrorMessage(const HttpResponse& r) {
  std::string detail;
  Json body = Json::parse(r.body, nullptr, false);
  if (body.is_object() && body.contains("error")) {
    const Json& e = body["error"];
    detail = e.is_object() ? e.value("message", e.dump()) : e.dump();
  } else {
    detail = r.body.substr(0, 200);
  }
  return StrCat("HTTP ", r.status, detail.empty() ? "" : ": ", detail);
}

class HttpModelClient final : public ModelClient {
 public:
  explicit HttpModelClient(ModelConfig config) : config_(std::move(config)) {}

  StatusOr<ModelResponse> Complete(const ModelRequest& request,
                                   const CancelToken* cancel) override {
    const bool anthropic = config_.provider == "anthropic";
    const std::string url =
        TrimSlash(config_.base_url) + (anthropic ? "/v1/messages" : "/chat/completions");
    std::map<std::string, std::string> headers = {{"Content-Type", "application/json"}};
    if (anthropic) {
      headers["x-api-key"] = config_.api_key;
      headers["anthropic-version"] = "2023-06-01";
    } else {
      headers["Authorization"] = "Bearer " + config_.api_key;
    }
    const std::string body =
        (anthropic ? EncodeAnthropic(config_, request) : EncodeOpenAi(config_, request)).dump();
    const int64_t start_ms = MonotonicMs();
    std::string last_error;
    for (int attempt = 0;; ++attempt) {
      int64_t wait_ms =
          std::min(config_.retry_max_ms, config_.retry_base_ms << std::min(attempt, 20));
      auto response = HttpRequest("POST", url, headers, body, config_.timeout_ms,
                                  [cancel] { return cancel != nullptr && cancel->IsCancelled(); });
      if (!response.ok() && response.status().code() == StatusCode::kCancelled) {
        return response.status();
      }
      if (!response.ok()) {
        last_error = response.status().message();
      } else if (response->status == 200) {
        Json json = Json::parse(response->body, nullptr, false);
        auto decoded = json.is_discarded()
                           ? StatusOr<ModelResponse>(InvalidArgumentError("the body is not JSON"))
                           : (anthropic ? DecodeAnthropic(json) : DecodeOpenAi(json));
        if (decoded.ok()) {
          decoded->attempts = attempt + 1;
          decoded->latency_ms = MonotonicMs() - start_ms;
          return decoded;
        }
        last_error = StrCat("invalid response: ", decoded.status().message());
      } else if (!Retryable(response->status)) {
        return UnavailableError(StrCat("model API: ", ErrorMessage(*response)));
      } else {
        last_error = ErrorMessage(*response);
        if (int64_t asked =
                RetryAfterMs(response->Header("retry-after"), SystemClock::Get().NowMs());
            asked >= 0) {
          wait_ms = std::min(asked, config_.retry_max_ms);
        }
      }
      if (attempt >= config_.max_retries) {
        return UnavailableError(
            StrCat("model API: ", last_error, " (after ", attempt + 1, " attempts)"));
      }
      log::Get("agent")->warn("model {}: {}; retrying in {} ms", config_.name, last_error, wait_ms);
      const int64_t until = MonotonicMs() + wait_ms;
      while (MonotonicMs() < until) {
        if (cancel != nullptr && cancel->IsCancelled()) return CancelledError("cancelled");
        std::this_thread::sleep_for(std::chrono::milliseconds(std::min<int64_t>(20, wait_ms)));
      }
    }
  }

 private:
  const ModelConfig config_;
};

}  // namespace

Json EncodeOpenAi(const ModelConfig& config, const ModelRequest& request) {
  Json tools = Json::array();
  for (const ToolSpec& tool : request.tools) {
    tools.push_back({{"type", "function"},
                     {"function",
                      {{"name", tool.name},
                       {"description", tool.description},
                       {"parameters", tool.parameters}}}});
  }
  return {{"model", config.model},
          {"messages", OpenAiMessages(request)},
          {"tools", tools},
          {"tool_choice", "auto"},
          {"max_tokens", config.max_output_tokens}};
}

StatusOr<ModelResponse> DecodeOpenAi(const Json& body) {
  if (!body.is_object() || !body.contains("choices") || !body["choices"].is_array() ||
      body["choices"].empty()) {
    return InvalidArgumentError("no choices");
  }
  const Json& choice = body["choices"][0];
  if (!choice.is_object() || !choice.contains("message") || !choice["message"].is_object()) {
    return InvalidArgumentError("no message in the first choice");
  }
  const Json& message = choice["message"];
  ModelResponse response;
  if (message.contains("content") && message["content"].is_string()) {
    response.text = message["content"].get<std::string>();
  }
  if (message.contains("tool_calls") && message["tool_calls"].is_array()) {
    for (const Json& call : message["tool_calls"]) {
      if (!call.is_object() || !call.contains("function") || !call["function"].is_object()) {
        return InvalidArgumentError("a tool call without a function");
      }
      const Json& fn = call["function"];
      ToolCall parsed{.id = call.value("id", ""), .name = fn.value("name", "")};
      if (fn.contains("arguments")) {
        parsed.arguments = fn["arguments"].is_string() ? fn["arguments"].get<std::string>()
                                                       : fn["arguments"].dump();
      }
      if (parsed.id.empty()) return InvalidArgumentError("a tool call without an id");
      response.tool_calls.push_back(std::move(parsed));
    }
  }
  response.stop_reason = choice.value("finish_reason", "");
  if (body.contains("usage") && body["usage"].is_object()) {
    response.usage.input_tokens = body["usage"].value("prompt_tokens", int64_t{0});
    response.usage.output_tokens = body["usage"].value("completion_tokens", int64_t{0});
  }
  return response;
}

Json EncodeAnthropic(const ModelConfig& config, const ModelRequest& request) {
  Json tools = Json::array();
  for (const ToolSpec& tool : request.tools) {
    tools.push_back({{"name", tool.name},
                     {"description", tool.description},
                     {"input_schema", tool.parameters}});
  }
  return {{"model", config.model},
          {"max_tokens", config.max_output_tokens},
          {"system", request.system},
          {"messages", AnthropicMessages(request)},
          {"tools", tools}};
}

StatusOr<ModelResponse> DecodeAnthropic(const Json& body) {
  if (!body.is_object() || !body.contains("content") || !body["content"].is_array()) {
    return InvalidArgumentError("no content");
  }
  ModelResponse response;
  for (const Json& block : body["content"]) {
    if (!block.is_object()) continue;
    const std::string type = block.value("type", "");
    if (type == "text") {
      response.text += block.value("text", "");
    } else if (type == "tool_use") {
      ToolCall call{.id = block.value("id", ""), .name = block.value("name", "")};
      if (call.id.empty()) return InvalidArgumentError("a tool_use block without an id");
      // An input that is a string is taken as the JSON text the model meant (and is checked
      // as such by the tools).
      if (!block.contains("input")) {
        call.arguments = "{}";
      } else if (block["input"].is_string()) {
        call.arguments = block["input"].get<std::string>();
      } else {
        call.arguments = block["input"].dump();
      }
      response.tool_calls.push_back(std::move(call));
    }
  }
  response.stop_reason = body.value("stop_reason", "");
  if (body.contains("usage") && body["usage"].is_object()) {
    response.usage.input_tokens = body["usage"].value("input_tokens", int64_t{0});
    response.usage.output_tokens = body["usage"].value("output_tokens", int64_t{0});
  }
  return response;
}

int64_t RetryAfterMs(const std::string& header, int64_t now_ms) {
  if (header.empty()) return -1;
  if (header.find_first_not_of("0123456789") == std::string::npos && header.size() < 10) {
    return std::stoll(header) * 1000;
  }
  struct tm tm {};
  if (::strptime(header.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm) == nullptr) return -1;
  const int64_t at_ms = int64_t{::timegm(&tm)} * 1000;
  return std::max<int64_t>(0, at_ms - now_ms);
}

StatusOr<std::unique_ptr<ModelClient>> MakeModelClient(const ModelConfig& config) {
  if (config.provider != "openai" && config.provider != "anthropic") {
    return InvalidArgumentError(StrCat("model ", config.name, ": unknown provider '",
                                       config.provider, "' (expected openai or anthropic)"));
  }
  return std::unique_ptr<ModelClient>(new HttpModelClient(config));
}

}  // namespace nightshift::agent
