#include "tests/support/model_server.h"

#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <ctime>
#include <deque>
#include <initializer_list>
#include <optional>
#include <string_view>
#include <utility>

#include "core/fs.h"

namespace nightshift::testing {
namespace {

// ---- Reading untrusted JSON without throwing -------------------------------------------------

// The member `key` of `object`, or nullptr when `object` is not an object or lacks it.
const Json* Member(const Json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

// The string member `key`, or "" when absent or not a string.
std::string StringMember(const Json& object, std::string_view key) {
  const Json* v = Member(object, key);
  return v != nullptr && v->is_string() ? v->get<std::string>() : std::string();
}

// Text of a message or tool result content: a string, or the `text` of each block of an array
// (OpenAI content parts and Anthropic text blocks alike), concatenated.
std::string ContentText(const Json* content) {
  if (content == nullptr) return "";
  if (content->is_string()) return content->get<std::string>();
  std::string out;
  if (content->is_array()) {
    for (const Json& block : *content) out += StringMember(block, "text");
  }
  return out;
}

std::string Quoted(std::string_view s, size_t limit = 200) {
  if (s.size() <= limit) return StrCat("\"", s, "\"");
  return StrCat("\"", s.substr(0, limit), "...\" (", s.size(), " bytes)");
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

// ---- Scenario validation ---------------------------------------------------------------------

Status CheckKeys(const Json& object, std::initializer_list<std::string_view> allowed,
                 std::string_view where) {
  for (const auto& [key, value] : object.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return InvalidArgumentError(StrCat(where, ": unknown key '", key, "'"));
    }
  }
  return OkStatus();
}

bool IsNonNegativeInt(const Json& v) {
  return v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
}

Status ValidateExpect(const Json& expect, const std::string& where) {
  if (!expect.is_object()) return InvalidArgumentError(StrCat(where, ": must be an object"));
  RETURN_IF_ERROR(CheckKeys(expect,
                            {"tools", "system_contains", "last_tool_result_contains",
                             "last_tool_result_is_error", "messages_at_least", "model"},
                            where));
  if (const Json* tools = Member(expect, "tools")) {
    bool ok = tools->is_array() && std::all_of(tools->begin(), tools->end(),
                                               [](const Json& t) { return t.is_string(); });
    if (!ok) return InvalidArgumentError(StrCat(where, ".tools: must be an array of strings"));
  }
  for (std::string_view key : {"system_contains", "last_tool_result_contains", "model"}) {
    const Json* v = Member(expect, key);
    if (v != nullptr && !v->is_string()) {
      return InvalidArgumentError(StrCat(where, ".", key, ": must be a string"));
    }
  }
  if (const Json* v = Member(expect, "last_tool_result_is_error");
      v != nullptr && !v->is_boolean()) {
    return InvalidArgumentError(StrCat(where, ".last_tool_result_is_error: must be a boolean"));
  }
  if (const Json* v = Member(expect, "messages_at_least"); v != nullptr && !IsNonNegativeInt(*v)) {
    return InvalidArgumentError(StrCat(where, ".messages_at_least: must be an integer >= 0"));
  }
  return OkStatus();
}

Status ValidateRespond(const Json& respond, const std::string& where) {
  if (!respond.is_object()) return InvalidArgumentError(StrCat(where, ": must be an object"));
  RETURN_IF_ERROR(CheckKeys(
      respond, {"status", "headers", "body", "raw_body", "text", "tool_calls", "usage", "delay_ms"},
      where));
  if (const Json* v = Member(respond, "status")) {
    if (!v->is_number_integer() || v->get<int64_t>() < 100 || v->get<int64_t>() > 599) {
      return InvalidArgumentError(StrCat(where, ".status: must be an integer from 100 to 599"));
    }
  }
  if (const Json* v = Member(respond, "headers")) {
    bool ok = v->is_object() &&
              std::all_of(v->begin(), v->end(), [](const Json& h) { return h.is_string(); });
    if (!ok) return InvalidArgumentError(StrCat(where, ".headers: must map names to strings"));
  }
  for (std::string_view key : {"body", "raw_body", "text"}) {
    const Json* v = Member(respond, key);
    if (v != nullptr && !v->is_string()) {
      return InvalidArgumentError(StrCat(where, ".", key, ": must be a string"));
    }
  }
  if (const Json* v = Member(respond, "delay_ms"); v != nullptr && !IsNonNegativeInt(*v)) {
    return InvalidArgumentError(StrCat(where, ".delay_ms: must be an integer >= 0"));
  }
  if (const Json* usage = Member(respond, "usage")) {
    if (!usage->is_object())
      return InvalidArgumentError(StrCat(where, ".usage: must be an object"));
    RETURN_IF_ERROR(CheckKeys(*usage, {"input", "output"}, StrCat(where, ".usage")));
    for (const auto& [key, value] : usage->items()) {
      if (!IsNonNegativeInt(value)) {
        return InvalidArgumentError(StrCat(where, ".usage.", key, ": must be an integer >= 0"));
      }
    }
  }
  if (const Json* calls = Member(respond, "tool_calls")) {
    if (!calls->is_array()) {
      return InvalidArgumentError(StrCat(where, ".tool_calls: must be an array"));
    }
    for (size_t i = 0; i < calls->size(); ++i) {
      const Json& call = (*calls)[i];
      std::string at = StrCat(where, ".tool_calls[", i, "]");
      if (!call.is_object()) return InvalidArgumentError(StrCat(at, ": must be an object"));
      RETURN_IF_ERROR(CheckKeys(call, {"name", "arguments", "arguments_raw"}, at));
      if (StringMember(call, "name").empty()) {
        return InvalidArgumentError(StrCat(at, ".name: must be a non-empty string"));
      }
      const Json* args = Member(call, "arguments");
      const Json* raw = Member(call, "arguments_raw");
      if (args != nullptr && raw != nullptr) {
        return InvalidArgumentError(StrCat(at, ": give arguments or arguments_raw, not both"));
      }
      if (args != nullptr && !args->is_object()) {
        return InvalidArgumentError(StrCat(at, ".arguments: must be an object"));
      }
      if (raw != nullptr && !raw->is_string()) {
        return InvalidArgumentError(StrCat(at, ".arguments_raw: must be a string"));
      }
    }
  }
  // A verbatim answer (error status or raw_body) has no assistant turn to put these in.
  const Json* status = Member(respond, "status");
  bool verbatim = Member(respond, "raw_body") != nullptr ||
                  (status != nullptr && status->get<int64_t>() != 200);
  if (verbatim) {
    for (std::string_view key : {"text", "tool_calls", "usage"}) {
      if (Member(respond, key) != nullptr) {
        return InvalidArgumentError(
            StrCat(where, ".", key, ": not allowed with raw_body or a status other than 200"));
      }
    }
  } else if (Member(respond, "body") != nullptr || Member(respond, "headers") != nullptr) {
    return InvalidArgumentError(
        StrCat(where, ": body and headers need raw_body or a status other than 200"));
  }
  return OkStatus();
}

Status ValidateScenario(const Json& scenario) {
  if (!scenario.is_object()) return InvalidArgumentError("scenario: must be a JSON object");
  // Other top-level keys (an "about" text, say) are the author's notes; within steps, unknown
  // keys are rejected, so a misspelt expectation cannot pass unnoticed.
  const Json* steps = Member(scenario, "steps");
  if (steps == nullptr || !steps->is_array()) {
    return InvalidArgumentError("scenario: 'steps' must be an array");
  }
  for (size_t i = 0; i < steps->size(); ++i) {
    const Json& step = (*steps)[i];
    std::string where = StrCat("step ", i + 1);
    if (!step.is_object()) return InvalidArgumentError(StrCat(where, ": must be an object"));
    RETURN_IF_ERROR(CheckKeys(step, {"about", "expect", "respond"}, where));
    if (const Json* expect = Member(step, "expect")) {
      RETURN_IF_ERROR(ValidateExpect(*expect, StrCat(where, ": expect")));
    }
    if (const Json* respond = Member(step, "respond")) {
      RETURN_IF_ERROR(ValidateRespond(*respond, StrCat(where, ": respond")));
    }
  }
  return OkStatus();
}

// ---- Protocol checks -------------------------------------------------------------------------

struct ToolResult {
  std::string text;
  bool is_error = false;
};

// What the expectations look at, gathered while the request's protocol is checked.
struct Conversation {
  std::string model;
  std::vector<std::string> tool_names;
  std::string system;
  size_t message_count = 0;
  int assistant_messages = 0;
  std::optional<ToolResult> last_tool_result;
};

// Reports each tool call id the server did not issue, once per request.
class IdCheck {
 public:
  IdCheck(const std::set<std::string>& issued, std::vector<std::string>& problems)
      : issued_(issued), problems_(problems) {}
  void Check(const std::string& id, const std::string& where) {
    if (issued_.count(id) == 0 && reported_.insert(id).second) {
      problems_.push_back(
          StrCat(where, ": tool call id ", Quoted(id), " was never issued by the server"));
    }
  }

 private:
  const std::set<std::string>& issued_;
  std::vector<std::string>& problems_;
  std::set<std::string> reported_;
};

void CheckCommon(const Json& body, Conversation& conv, std::vector<std::string>& problems) {
  conv.model = StringMember(body, "model");
  if (conv.model.empty()) problems.push_back("'model' is missing or not a non-empty string");
  const Json* tools = Member(body, "tools");
  if (tools == nullptr || !tools->is_array() || tools->empty()) {
    problems.push_back("'tools' is missing or not a non-empty array");
  }
}

Conversation InspectOpenAi(const Json& body, const std::set<std::string>& issued,
                           std::vector<std::string>& problems) {
  Conversation conv;
  CheckCommon(body, conv, problems);
  if (const Json* tools = Member(body, "tools"); tools != nullptr && tools->is_array()) {
    for (size_t i = 0; i < tools->size(); ++i) {
      const Json& tool = (*tools)[i];
      std::string name;
      if (StringMember(tool, "type") == "function" && Member(tool, "function") != nullptr) {
        name = StringMember(*Member(tool, "function"), "name");
      }
      if (name.empty()) {
        problems.push_back(
            StrCat("tools[", i, "] is not {type: \"function\", function: {name, ...}}"));
      } else {
        conv.tool_names.push_back(name);
      }
    }
  }

  const Json* messages = Member(body, "messages");
  if (messages == nullptr || !messages->is_array() || messages->empty()) {
    problems.push_back("'messages' is missing or not a non-empty array");
    return conv;
  }
  conv.message_count = messages->size();
  if (StringMember((*messages)[0], "role") != "system") {
    problems.push_back(StrCat("messages[0] has role ", Quoted(StringMember((*messages)[0], "role")),
                              ", expected the system message"));
  } else {
    conv.system = ContentText(Member((*messages)[0], "content"));
  }

  IdCheck ids(issued, problems);
  std::deque<std::string> pending;  // calls of the last assistant message not yet answered
  size_t pending_from = 0;          // index of that assistant message
  auto report_unanswered = [&](const std::string& before) {
    if (pending.empty()) return;
    problems.push_back(StrCat("messages[", pending_from, "]: tool calls ",
                              Join({pending.begin(), pending.end()}), " are not answered ",
                              before));
    pending.clear();
  };
  for (size_t i = 0; i < messages->size(); ++i) {
    const Json& message = (*messages)[i];
    std::string at = StrCat("messages[", i, "]");
    if (!message.is_object()) {
      problems.push_back(StrCat(at, " is not an object"));
      continue;
    }
    std::string role = StringMember(message, "role");
    if (role == "tool") {
      std::string id = StringMember(message, "tool_call_id");
      conv.last_tool_result = ToolResult{ContentText(Member(message, "content")), false};
      if (id.empty()) {
        problems.push_back(StrCat(at, ": tool message without a tool_call_id"));
        continue;
      }
      ids.Check(id, at);
      auto it = std::find(pending.begin(), pending.end(), id);
      if (it == pending.end()) {
        problems.push_back(
            StrCat(at, ": tool result for ", Quoted(id), " answers no preceding tool call"));
      } else {
        if (it != pending.begin()) {
          problems.push_back(StrCat(at, ": tool result for ", Quoted(id), " out of order (",
                                    Quoted(pending.front()), " is due first)"));
        }
        pending.erase(it);
      }
      continue;
    }
    report_unanswered(StrCat("before ", at));
    if (role == "assistant") {
      ++conv.assistant_messages;
      const Json* calls = Member(message, "tool_calls");
      if (calls == nullptr || calls->is_null()) continue;
      if (!calls->is_array()) {
        problems.push_back(StrCat(at, ".tool_calls is not an array"));
        continue;
      }
      for (size_t j = 0; j < calls->size(); ++j) {
        const Json& call = (*calls)[j];
        std::string call_at = StrCat(at, ".tool_calls[", j, "]");
        std::string id = StringMember(call, "id");
        const Json* function = Member(call, "function");
        const Json* arguments = function != nullptr ? Member(*function, "arguments") : nullptr;
        if (id.empty() || StringMember(call, "type") != "function" || function == nullptr ||
            StringMember(*function, "name").empty() || arguments == nullptr ||
            !arguments->is_string()) {
          problems.push_back(StrCat(call_at,
                                    " is not {id, type: \"function\", function: {name, "
                                    "arguments: <string>}}"));
        }
        if (id.empty()) continue;
        ids.Check(id, call_at);
        pending.push_back(id);
        pending_from = i;
      }
    } else if (role != "system" && role != "user") {
      problems.push_back(StrCat(at, " has unknown role ", Quoted(role)));
    }
  }
  report_unanswered("by the end of the conversation");
  return conv;
}

Conversation InspectAnthropic(const Json& body, const std::set<std::string>& issued,
                              std::vector<std::string>& problems) {
  Conversation conv;
  CheckCommon(body, conv, problems);
  if (const Json* tools = Member(body, "tools"); tools != nullptr && tools->is_array()) {
    for (size_t i = 0; i < tools->size(); ++i) {
      std::string name = StringMember((*tools)[i], "name");
      if (name.empty()) {
        problems.push_back(StrCat("tools[", i, "] has no name"));
      } else {
        conv.tool_names.push_back(name);
      }
    }
  }
  const Json* max_tokens = Member(body, "max_tokens");
  if (max_tokens == nullptr || !max_tokens->is_number_integer() ||
      max_tokens->get<int64_t>() <= 0) {
    problems.push_back("'max_tokens' is missing or not a positive integer");
  }
  // The API also takes `system` as an array of text blocks.
  conv.system = ContentText(Member(body, "system"));
  if (conv.system.empty()) problems.push_back("'system' is missing or empty");

  const Json* messages = Member(body, "messages");
  if (messages == nullptr || !messages->is_array() || messages->empty()) {
    problems.push_back("'messages' is missing or not a non-empty array");
    return conv;
  }
  conv.message_count = messages->size();
  IdCheck ids(issued, problems);
  std::vector<std::string> open;  // tool_use ids of the previous (assistant) message
  for (size_t i = 0; i < messages->size(); ++i) {
    const Json& message = (*messages)[i];
    std::string at = StrCat("messages[", i, "]");
    std::string role = StringMember(message, "role");
    std::string_view expected = i % 2 == 0 ? "user" : "assistant";
    if (role != expected) {
      problems.push_back(StrCat(at, " has role ", Quoted(role), ", expected \"", expected,
                                "\" (roles alternate, starting with user)"));
    }
    if (role == "assistant") ++conv.assistant_messages;

    const Json* content = Member(message, "content");
    std::vector<const Json*> blocks;
    if (content != nullptr && content->is_array()) {
      for (const Json& block : *content) blocks.push_back(&block);
    } else if (content == nullptr || !content->is_string()) {
      problems.push_back(StrCat(at, ".content is neither a string nor an array of blocks"));
    }

    std::vector<std::string> answered;
    std::vector<std::string> uses;
    for (size_t j = 0; j < blocks.size(); ++j) {
      const Json& block = *blocks[j];
      std::string block_at = StrCat(at, ".content[", j, "]");
      std::string type = StringMember(block, "type");
      if (type == "tool_use") {
        std::string id = StringMember(block, "id");
        if (role != "assistant")
          problems.push_back(StrCat(block_at,
                                    ": tool_use outside an "
                                    "assistant message"));
        if (id.empty() || StringMember(block, "name").empty()) {
          problems.push_back(StrCat(block_at, ": tool_use without id or name"));
        }
        const Json* input = Member(block, "input");
        if (input == nullptr || !input->is_object()) {
          problems.push_back(StrCat(block_at, ": tool_use input is not an object"));
        }
        if (id.empty()) continue;
        ids.Check(id, block_at);
        uses.push_back(id);
      } else if (type == "tool_result") {
        std::string id = StringMember(block, "tool_use_id");
        const Json* is_error = Member(block, "is_error");
        conv.last_tool_result =
            ToolResult{ContentText(Member(block, "content")),
                       is_error != nullptr && is_error->is_boolean() && is_error->get<bool>()};
        if (role != "user")
          problems.push_back(StrCat(block_at,
                                    ": tool_result outside a user "
                                    "message"));
        if (id.empty()) {
          problems.push_back(StrCat(block_at, ": tool_result without a tool_use_id"));
          continue;
        }
        ids.Check(id, block_at);
        if (std::find(open.begin(), open.end(), id) == open.end()) {
          problems.push_back(StrCat(block_at, ": tool_result for ", Quoted(id),
                                    " has no tool_use in the preceding assistant message"));
        } else if (std::find(answered.begin(), answered.end(), id) != answered.end()) {
          problems.push_back(StrCat(block_at, ": second tool_result for ", Quoted(id)));
        } else {
          answered.push_back(id);
        }
      } else if (type.empty()) {
        problems.push_back(StrCat(block_at, " has no type"));
      }
    }
    std::vector<std::string> unanswered;
    for (const auto& id : open) {
      if (std::find(answered.begin(), answered.end(), id) == answered.end()) {
        unanswered.push_back(id);
      }
    }
    if (!unanswered.empty()) {
      problems.push_back(StrCat("messages[", i - 1, "]: tool_use ", Join(unanswered),
                                " not answered by a tool_result in ", at));
    }
    open = std::move(uses);
  }
  if (!open.empty()) {
    problems.push_back(StrCat("messages[", messages->size() - 1, "]: tool_use ", Join(open),
                              " not answered: no user message follows"));
  }
  return conv;
}

void CheckExpectations(bool anthropic, const Json& expect, const Conversation& conv,
                       std::vector<std::string>& problems) {
  if (const Json* tools = Member(expect, "tools")) {
    for (const Json& tool : *tools) {
      auto name = tool.get<std::string>();
      if (std::find(conv.tool_names.begin(), conv.tool_names.end(), name) ==
          conv.tool_names.end()) {
        problems.push_back(StrCat("expect.tools: ", Quoted(name),
                                  " is not offered (offered: ", Join(conv.tool_names), ")"));
      }
    }
  }
  if (const Json* want = Member(expect, "system_contains")) {
    auto text = want->get<std::string>();
    if (conv.system.find(text) == std::string::npos) {
      problems.push_back(StrCat("expect.system_contains: the system prompt ", Quoted(conv.system),
                                " does not contain ", Quoted(text)));
    }
  }
  const Json* want_text = Member(expect, "last_tool_result_contains");
  const Json* want_error = anthropic ? Member(expect, "last_tool_result_is_error") : nullptr;
  if ((want_text != nullptr || want_error != nullptr) && !conv.last_tool_result) {
    problems.push_back("expect.last_tool_result_*: the conversation has no tool result");
  } else {
    if (want_text != nullptr) {
      auto text = want_text->get<std::string>();
      if (conv.last_tool_result->text.find(text) == std::string::npos) {
        problems.push_back(StrCat("expect.last_tool_result_contains: the last tool result ",
                                  Quoted(conv.last_tool_result->text), " does not contain ",
                                  Quoted(text)));
      }
    }
    if (want_error != nullptr && want_error->get<bool>() != conv.last_tool_result->is_error) {
      problems.push_back(StrCat("expect.last_tool_result_is_error: is_error is ",
                                conv.last_tool_result->is_error ? "true" : "false", ", expected ",
                                want_error->get<bool>() ? "true" : "false"));
    }
  }
  if (const Json* at_least = Member(expect, "messages_at_least")) {
    auto n = at_least->get<uint64_t>();
    if (conv.message_count < n) {
      problems.push_back(StrCat("expect.messages_at_least: ", conv.message_count,
                                " messages, expected at least ", n));
    }
  }
  if (const Json* model = Member(expect, "model")) {
    if (conv.model != model->get<std::string>()) {
      problems.push_back(StrCat("expect.model: model is ", Quoted(conv.model), ", expected ",
                                Quoted(model->get<std::string>())));
    }
  }
}

void CheckHeaders(bool anthropic, const httplib::Request& req, std::vector<std::string>& problems) {
  if (anthropic) {
    if (req.get_header_value("x-api-key").empty()) problems.push_back("no x-api-key header");
    if (req.get_header_value("anthropic-version").empty()) {
      problems.push_back("no anthropic-version header");
    }
    return;
  }
  std::string auth = req.get_header_value("Authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (auth.size() <= kBearer.size() || auth.compare(0, kBearer.size(), kBearer) != 0) {
    problems.push_back(StrCat("no 'Authorization: Bearer <key>' header (got ", Quoted(auth), ")"));
  }
}

// ---- Answers ---------------------------------------------------------------------------------

struct Answer {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string content_type = "application/json";
  std::string body;
};

Json Usage(const Json& respond, std::string_view key, int64_t fallback) {
  const Json* usage = Member(respond, "usage");
  const Json* v = usage != nullptr ? Member(*usage, key) : nullptr;
  return v != nullptr ? *v : Json(fallback);
}

}  // namespace

ModelServer::ModelServer(Json scenario) : scenario_(std::move(scenario)) {
  if (Status st = ValidateScenario(scenario_); !st.ok()) {
    errors_.push_back(StrCat("invalid scenario: ", st.message()));
    return;
  }
  http_ = std::make_unique<httplib::Server>();
  http_->Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    Handle(Protocol::kOpenAi, req, res);
  });
  http_->Post("/v1/messages", [this](const httplib::Request& req, httplib::Response& res) {
    Handle(Protocol::kAnthropic, req, res);
  });
  port_ = http_->bind_to_any_port("127.0.0.1");
  if (port_ <= 0) {
    errors_.push_back(StrCat("cannot listen on 127.0.0.1: ", std::strerror(errno)));
    port_ = 0;
    return;
  }
  http_thread_ = std::thread([this] {
    http_->listen_after_bind();
    listen_returned_ = true;
  });
  // httplib's stop() is a no-op until the accept loop runs, and "constructed" should mean
  // "accepting": wait for the loop.
  for (int i = 0; i < 25'000 && !http_->is_running() && !listen_returned_; ++i) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  ok_ = http_->is_running();
  if (!ok_) errors_.push_back("the HTTP accept loop did not start");
}

ModelServer::~ModelServer() {
  if (!http_thread_.joinable()) return;
  // See the constructor: stop() only works once the loop runs (or it has ended on its own).
  while (!http_->is_running() && !listen_returned_) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  http_->stop();
  http_thread_.join();
}

std::string ModelServer::openai_base_url() const {
  return StrCat("http://127.0.0.1:", port_, "/v1");
}

std::string ModelServer::anthropic_base_url() const { return StrCat("http://127.0.0.1:", port_); }

std::vector<std::string> ModelServer::errors() const {
  std::lock_guard lock(mu_);
  return errors_;
}

std::vector<Json> ModelServer::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

int ModelServer::steps_served() const {
  std::lock_guard lock(mu_);
  return static_cast<int>(next_step_);
}

StatusOr<Json> ModelServer::LoadScenario(const std::filesystem::path& file) {
  auto text = ReadFile(file);
  if (!text.ok()) return text.status();
  auto scenario = ParseJson(*text);
  if (!scenario.ok()) return scenario.status().WithContext(file.string());
  RETURN_IF_ERROR(ValidateScenario(*scenario).WithContext(file.string()));
  return scenario;
}

void ModelServer::Handle(Protocol protocol, const httplib::Request& req, httplib::Response& res) {
  const bool anthropic = protocol == Protocol::kAnthropic;
  const char* protocol_name = anthropic ? "anthropic" : "openai";
  auto parsed = ParseJson(req.body);
  Answer answer;
  int64_t delay_ms = 0;
  {
    std::lock_guard lock(mu_);
    requests_.push_back(parsed.ok() ? *parsed : Json(nullptr));
    const Json& steps = scenario_["steps"];
    if (next_step_ >= steps.size()) {
      std::string error = StrCat("unexpected request ", requests_.size(), " (", protocol_name,
                                 "): the scenario has only ", steps.size(), " steps");
      errors_.push_back(error);
      answer.status = 500;
      answer.body = Json{{"error", {{"type", "scenario_exhausted"}, {"message", error}}}}.dump();
    } else {
      size_t step_number = ++next_step_;
      const Json& step = steps[step_number - 1];
      const Json* expect = Member(step, "expect");
      const Json* respond_ptr = Member(step, "respond");
      const Json respond = respond_ptr != nullptr ? *respond_ptr : Json::object();

      std::vector<std::string> problems;
      CheckHeaders(anthropic, req, problems);
      if (!parsed.ok()) {
        problems.push_back(StrCat("the body is not JSON: ", parsed.status().message()));
      } else if (!parsed->is_object()) {
        problems.push_back("the body is not a JSON object");
      } else {
        Conversation conv = anthropic ? InspectAnthropic(*parsed, issued_ids_, problems)
                                      : InspectOpenAi(*parsed, issued_ids_, problems);
        if (conv.assistant_messages < assistant_turns_served_) {
          problems.push_back(StrCat("the conversation carries ", conv.assistant_messages,
                                    " assistant messages, but ", assistant_turns_served_,
                                    " assistant turns were served before it"));
        }
        if (expect != nullptr) CheckExpectations(anthropic, *expect, conv, problems);
      }
      for (const auto& problem : problems) {
        errors_.push_back(StrCat("step ", step_number, " (", protocol_name, "): ", problem));
      }

      if (const Json* delay = Member(respond, "delay_ms")) delay_ms = delay->get<int64_t>();
      const Json* status = Member(respond, "status");
      const Json* raw_body = Member(respond, "raw_body");
      if (raw_body != nullptr || (status != nullptr && status->get<int>() != 200)) {
        answer.status = status != nullptr ? status->get<int>() : 200;
        answer.body =
            raw_body != nullptr ? raw_body->get<std::string>() : StringMember(respond, "body");
        if (const Json* headers = Member(respond, "headers")) {
          for (const auto& [name, value] : headers->items()) {
            if (EqualsIgnoreCase(name, "Content-Type")) {
              answer.content_type = value.get<std::string>();
            } else {
              answer.headers.emplace_back(name, value.get<std::string>());
            }
          }
        }
      } else {
        ++assistant_turns_served_;
        std::string model = parsed.ok() ? StringMember(*parsed, "model") : "";
        if (model.empty()) model = "scripted-model";
        const Json* text = Member(respond, "text");
        const Json* calls = Member(respond, "tool_calls");
        bool has_calls = calls != nullptr && !calls->empty();
        Json input_tokens = Usage(respond, "input", 100);
        Json output_tokens = Usage(respond, "output", 20);
        Json reply;
        if (anthropic) {
          Json content = Json::array();
          if (text != nullptr && !text->get<std::string>().empty()) {
            content.push_back({{"type", "text"}, {"text", *text}});
          }
          for (size_t i = 0; has_calls && i < calls->size(); ++i) {
            const Json& call = (*calls)[i];
            std::string id = StrCat("toolu_", ++last_tool_call_number_);
            issued_ids_.insert(id);
            // arguments_raw goes out as a JSON string where the API promises an object.
            Json input = Json::object();
            if (const Json* args = Member(call, "arguments")) input = *args;
            if (const Json* raw = Member(call, "arguments_raw")) input = *raw;
            content.push_back(
                {{"type", "tool_use"}, {"id", id}, {"name", call["name"]}, {"input", input}});
          }
          reply = {{"id", StrCat("msg_", step_number)},
                   {"type", "message"},
                   {"role", "assistant"},
                   {"model", model},
                   {"content", content},
                   {"stop_reason", has_calls ? "tool_use" : "end_turn"},
                   {"stop_sequence", nullptr},
                   {"usage", {{"input_tokens", input_tokens}, {"output_tokens", output_tokens}}}};
        } else {
          Json message = {{"role", "assistant"}, {"content", text != nullptr ? *text : Json()}};
          if (has_calls) {
            Json tool_calls = Json::array();
            for (const Json& call : *calls) {
              std::string id = StrCat("call_", ++last_tool_call_number_);
              issued_ids_.insert(id);
              std::string arguments = "{}";
              if (const Json* args = Member(call, "arguments")) arguments = args->dump();
              if (const Json* raw = Member(call, "arguments_raw"))
                arguments = raw->get<std::string>();
              tool_calls.push_back(
                  {{"id", id},
                   {"type", "function"},
                   {"function", {{"name", call["name"]}, {"arguments", arguments}}}});
            }
            message["tool_calls"] = std::move(tool_calls);
          }
          Json choice = {{"index", 0},
                         {"message", std::move(message)},
                         {"finish_reason", has_calls ? "tool_calls" : "stop"}};
          reply = {
              {"id", StrCat("chatcmpl-", step_number)},
              {"object", "chat.completion"},
              {"created", static_cast<int64_t>(std::time(nullptr))},
              {"model", model},
              {"choices", Json::array({std::move(choice)})},
              {"usage",
               {{"prompt_tokens", input_tokens},
                {"completion_tokens", output_tokens},
                {"total_tokens", input_tokens.get<int64_t>() + output_tokens.get<int64_t>()}}}};
        }
        answer.body = reply.dump();
      }
    }
  }
  // Outside the lock: a slow step must not hold up other requests or the accessors.
  if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
  for (const auto& [name, value] : answer.headers) res.set_header(name, value);
  res.set_content(answer.body, answer.content_type);
  res.status = answer.status;
}

}  // namespace nightshift::testing
