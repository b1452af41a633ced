#include "tests/support/model_server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <fstream>
#include <string>
#include <vector>

#include "core/fs.h"

namespace nightshift::testing {
namespace {

struct Reply {
  int status = -1;  // -1: no HTTP response at all
  std::string body;
  httplib::Headers headers;
  Json json;  // the body parsed, or null
};

const httplib::Headers kOpenAiHeaders = {{"Authorization", "Bearer test-key"}};
const httplib::Headers kAnthropicHeaders = {{"x-api-key", "test-key"},
                                            {"anthropic-version", "2023-06-01"}};

Reply Post(const ModelServer& server, const std::string& path, const httplib::Headers& headers,
           const std::string& body) {
  httplib::Client client("127.0.0.1", server.port());
  client.set_read_timeout(10, 0);
  Reply reply;
  auto res = client.Post(path.c_str(), headers, body, "application/json");
  if (!res) return reply;
  reply.status = res->status;
  reply.body = res->body;
  reply.headers = res->headers;
  auto parsed = ParseJson(res->body);
  if (parsed.ok()) reply.json = *parsed;
  return reply;
}

Reply PostOpenAi(const ModelServer& server, const Json& body,
                 const httplib::Headers& headers = kOpenAiHeaders) {
  return Post(server, "/v1/chat/completions", headers, body.dump());
}

Reply PostAnthropic(const ModelServer& server, const Json& body,
                    const httplib::Headers& headers = kAnthropicHeaders) {
  return Post(server, "/v1/messages", headers, body.dump());
}

bool AnyErrorContains(const std::vector<std::string>& errors, const std::string& a,
                      const std::string& b = "") {
  for (const auto& e : errors) {
    if (e.find(a) != std::string::npos && e.find(b) != std::string::npos) return true;
  }
  return false;
}

std::string Dump(const std::vector<std::string>& errors) {
  std::string out;
  for (const auto& e : errors) out += "\n  " + e;
  return out;
}

Json OpenAiTools() {
  Json tools = Json::array();
  for (const char* name : {"read_file", "finish"}) {
    tools.push_back({{"type", "function"},
                     {"function",
                      {{"name", name},
                       {"description", "a tool"},
                       {"parameters", {{"type", "object"}, {"properties", Json::object()}}}}}});
  }
  return tools;
}

Json AnthropicTools() {
  Json tools = Json::array();
  for (const char* name : {"read_file", "finish"}) {
    tools.push_back({{"name", name},
                     {"description", "a tool"},
                     {"input_schema", {{"type", "object"}, {"properties", Json::object()}}}});
  }
  return tools;
}

Json OpenAiRequest(Json messages) {
  return {{"model", "gpt-test"}, {"messages", std::move(messages)}, {"tools", OpenAiTools()}};
}

Json AnthropicRequest(Json messages) {
  return {{"model", "claude-test"},
          {"max_tokens", 1024},
          {"system", "Fix the test in this repository."},
          {"messages", std::move(messages)},
          {"tools", AnthropicTools()}};
}

// A single step answering with one read_file call.
Json OneToolCallScenario() {
  return Json::parse(R"({"steps": [
    {"respond": {"tool_calls": [{"name": "read_file", "arguments": {"path": "a.py"}}]}}]})");
}

Json OpenAiFirstMessages() {
  return Json::array({{{"role", "system"}, {"content", "Fix the test in this repository."}},
                      {{"role", "user"}, {"content", "test_calc.py fails"}}});
}

TEST(ModelServer, OpenAiToolRoundTripPassesWithoutErrors) {
  ModelServer server(Json::parse(R"({"steps": [
    {"expect": {"tools": ["read_file", "finish"], "system_contains": "Fix the test",
                "messages_at_least": 2, "model": "gpt-test"},
     "respond": {"text": "I will read the test.",
                 "tool_calls": [{"name": "read_file", "arguments": {"path": "test_calc.py"}}],
                 "usage": {"input": 120, "output": 30}}},
    {"expect": {"last_tool_result_contains": "def add", "messages_at_least": 4},
     "respond": {"text": "All done."}}]})"));
  ASSERT_TRUE(server.ok()) << Dump(server.errors());
  EXPECT_EQ(server.openai_base_url(), StrCat("http://127.0.0.1:", server.port(), "/v1"));

  Json messages = OpenAiFirstMessages();
  Reply first = PostOpenAi(server, OpenAiRequest(messages));
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.json["object"], "chat.completion");
  EXPECT_EQ(first.json["model"], "gpt-test");
  const Json& choice = first.json["choices"][0];
  EXPECT_EQ(choice["finish_reason"], "tool_calls");
  EXPECT_EQ(choice["message"]["role"], "assistant");
  EXPECT_EQ(choice["message"]["content"], "I will read the test.");
  const Json& call = choice["message"]["tool_calls"][0];
  EXPECT_EQ(call["id"], "call_1");
  EXPECT_EQ(call["type"], "function");
  EXPECT_EQ(call["function"]["name"], "read_file");
  ASSERT_TRUE(call["function"]["arguments"].is_string());
  EXPECT_EQ(Json::parse(call["function"]["arguments"].get<std::string>()),
            Json({{"path", "test_calc.py"}}));
  EXPECT_EQ(first.json["usage"],
            Json({{"prompt_tokens", 120}, {"completion_tokens", 30}, {"total_tokens", 150}}));

  messages.push_back(choice["message"]);
  messages.push_back({{"role", "tool"},
                      {"tool_call_id", call["id"]},
                      {"content", "def add(a, b):\n    return a - b\n"}});
  Reply second = PostOpenAi(server, OpenAiRequest(messages));
  ASSERT_EQ(second.status, 200) << second.body;
  const Json& final_message = second.json["choices"][0]["message"];
  EXPECT_EQ(final_message["content"], "All done.");
  EXPECT_FALSE(final_message.contains("tool_calls"));
  EXPECT_EQ(second.json["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(second.json["usage"]["prompt_tokens"], 100);
  EXPECT_EQ(second.json["usage"]["completion_tokens"], 20);

  EXPECT_TRUE(server.errors().empty()) << Dump(server.errors());
  EXPECT_EQ(server.steps_served(), 2);
  ASSERT_EQ(server.requests().size(), 2u);
  EXPECT_EQ(server.requests()[1]["messages"].size(), 4u);
}

TEST(ModelServer, AnthropicToolRoundTripPassesWithoutErrors) {
  ModelServer server(Json::parse(R"({"steps": [
    {"expect": {"tools": ["read_file"], "system_contains": "Fix the test", "messages_at_least": 1},
     "respond": {"text": "Reading.",
                 "tool_calls": [{"name": "read_file", "arguments": {"path": "test_calc.py"}},
                                {"name": "read_file", "arguments": {"path": "calc.py"}}],
                 "usage": {"input": 7, "output": 3}}},
    {"expect": {"last_tool_result_contains": "no such file", "last_tool_result_is_error": true,
                "messages_at_least": 3},
     "respond": {"tool_calls": [{"name": "finish", "arguments": {"summary": "fixed"}}]}},
    {"expect": {"last_tool_result_contains": "ok", "last_tool_result_is_error": false},
     "respond": {"text": "All done."}}]})"));
  ASSERT_TRUE(server.ok()) << Dump(server.errors());
  EXPECT_EQ(server.anthropic_base_url(), StrCat("http://127.0.0.1:", server.port()));

  Json messages = Json::array({{{"role", "user"}, {"content", "test_calc.py fails"}}});
  Reply first = PostAnthropic(server, AnthropicRequest(messages));
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.json["type"], "message");
  EXPECT_EQ(first.json["role"], "assistant");
  EXPECT_EQ(first.json["model"], "claude-test");
  EXPECT_EQ(first.json["stop_reason"], "tool_use");
  EXPECT_EQ(first.json["usage"], Json({{"input_tokens", 7}, {"output_tokens", 3}}));
  const Json& content = first.json["content"];
  ASSERT_EQ(content.size(), 3u) << content.dump();
  EXPECT_EQ(content[0], Json({{"type", "text"}, {"text", "Reading."}}));
  EXPECT_EQ(content[1]["type"], "tool_use");
  EXPECT_EQ(content[1]["id"], "toolu_1");
  EXPECT_EQ(content[1]["name"], "read_file");
  EXPECT_EQ(content[1]["input"], Json({{"path", "test_calc.py"}}));
  EXPECT_EQ(content[2]["id"], "toolu_2");

  messages.push_back({{"role", "assistant"}, {"content", content}});
  messages.push_back(
      {{"role", "user"},
       {"content",
        Json::array({{{"type", "tool_result"}, {"tool_use_id", "toolu_1"}, {"content", "ok"}},
                     {{"type", "tool_result"},
                      {"tool_use_id", "toolu_2"},
                      {"content", Json::array({{{"type", "text"}, {"text", "no such "}},
                                               {{"type", "text"}, {"text", "file"}}})},
                      {"is_error", true}}})}});
  Reply second = PostAnthropic(server, AnthropicRequest(messages));
  ASSERT_EQ(second.status, 200) << second.body;
  ASSERT_EQ(second.json["content"].size(), 1u);
  EXPECT_EQ(second.json["content"][0]["id"], "toolu_3");  // ids never repeat

  messages.push_back({{"role", "assistant"}, {"content", second.json["content"]}});
  messages.push_back(
      {{"role", "user"},
       {"content",
        Json::array({{{"type", "tool_result"}, {"tool_use_id", "toolu_3"}, {"content", "ok"}}})}});
  Reply third = PostAnthropic(server, AnthropicRequest(messages));
  ASSERT_EQ(third.status, 200) << third.body;
  EXPECT_EQ(third.json["stop_reason"], "end_turn");
  EXPECT_EQ(third.json["content"], Json::array({{{"type", "text"}, {"text", "All done."}}}));

  EXPECT_TRUE(server.errors().empty()) << Dump(server.errors());
  EXPECT_EQ(server.steps_served(), 3);
}

TEST(ModelServer, ToolResultWithUnknownIdIsReported) {
  ModelServer server(Json::parse(R"({"steps": [
    {"respond": {"tool_calls": [{"name": "read_file", "arguments": {"path": "a.py"}}]}},
    {"respond": {"text": "done"}}]})"));
  ASSERT_TRUE(server.ok()) << Dump(server.errors());
  Json messages = OpenAiFirstMessages();
  Reply first = PostOpenAi(server, OpenAiRequest(messages));
  ASSERT_EQ(first.status, 200);
  messages.push_back(first.json["choices"][0]["message"]);
  messages.push_back({{"role", "tool"}, {"tool_call_id", "call_999"}, {"content", "x"}});
  Reply second = PostOpenAi(server, OpenAiRequest(messages));
  EXPECT_EQ(second.status, 200);  // protocol errors are recorded, the step is still served

  auto errors = server.errors();
  EXPECT_TRUE(AnyErrorContains(errors, "step 2", "\"call_999\" was never issued")) << Dump(errors);
  EXPECT_TRUE(AnyErrorContains(errors, "\"call_999\" answers no preceding tool call"))
      << Dump(errors);
  EXPECT_TRUE(AnyErrorContains(errors, "call_1 are not answered")) << Dump(errors);
}

TEST(ModelServer, AnthropicToolResultWithUnknownIdIsReported) {
  ModelServer server(Json::parse(R"({"steps": [{"respond": {"text": "hi"}}]})"));
  ASSERT_TRUE(server.ok()) << Dump(server.errors());
  Json messages = Json::array({{{"role", "user"}, {"content", "go"}},
                               {{"role", "assistant"},
                                {"content", Json::array({{{"type", "tool_use"},
                                                          {"id", "toolu_invented"},
                                                          {"name", "read_file"},
                                                          {"input", Json::object()}}})}},
                               {{"role", "user"},
                                {"content", Json::array({{{"type", "tool_result"},
                                                          {"tool_use_id", "toolu_invented"},
                                                          {"content", "x"}}})}}});
  EXPECT_EQ(PostAnthropic(server, AnthropicRequest(messages)).status, 200);
  auto errors = server.errors();
  ASSERT_EQ(errors.size(), 1u) << Dump(errors);  // reported once, not per mention
  EXPECT_TRUE(AnyErrorContains(errors, "step 1 (anthropic)", "\"toolu_invented\" was never issued"))
      << Dump(errors);
}

TEST(ModelServer, MissingAuthHeadersAreReported) {
  ModelServer server(Json::parse(R"({"steps": [{}, {}]})"));
  ASSERT_TRUE(server.ok()) << Dump(server.errors());
  EXPECT_EQ(PostOpenAi(server, OpenAiRequest(OpenAiFirstMessages()), {}).status, 200);
  Json messages = Json::array({{{"role", "user"}, {"content", "go"}}});
  // The conversation check would complain about the dropped OpenAI turn; carry one.
  messages.push_back({{"role", "assistant"}, {"content", "ok"}});
  messages.push_back({{"role", "user"}, {"content", "go on"}});
  EXPECT_EQ(PostAnthropic(server, AnthropicRequest(messages), {{"anthropic-version", "2023-06-01"}})
                .status,
            200);
  auto errors = server.errors();
  EXPECT_EQ(errors.size(), 2u) << Dump(errors);
  EXPECT_TRUE(AnyErrorContains(errors, "step 1 (openai)", "Authorization: Bearer")) << Dump(errors);
  EXPECT_TRUE(AnyErrorContains(errors, "step 2 (anthropic)", "x-api-key")) << Dump(errors);
}

TEST(ModelServer, ExpectationMismatchIsReportedNamingTheStep) {
  ModelServer server(Json::parse(R"({"steps": [
    {"expect": {"system_contains": "Fix the test"},
     "respond": {"tool_calls": [{"name": "read_file", "arguments": {"path": "a.py"}}]}},
    {"expect": {"tools": ["write_file"], "system_contains": "Refactor",
                "last_tool_result_contains": "def add", "messages_at_least": 9,
                "model": "other-model"},
     "respond": {"text": "done"}}]})"));
  ASSERT_TRUE(server.ok()) << Dump(server.errors());
  Json messages = OpenAiFirstMessages();
  Reply first = PostOpenAi(server, OpenAiRequest(messages));
  ASSERT_EQ(first.status, 200);
  EXPECT_TRUE(server.errors().empty()) << Dump(server.errors());
  messages.push_back(first.json["choices"][0]["message"]);
  messages.push_back({{"role", "tool"}, {"tool_call_id", "call_1"}, {"content", "print(1)"}});
  EXPECT_EQ(PostOpenAi(server, OpenAiRequest(messages)).status, 200);

  auto errors = server.errors();
  EXPECT_EQ(errors.size(), 5u) << Dump(errors);
  EXPECT_TRUE(AnyErrorContains(errors, "step 2 (openai): expect.tools", "\"write_file\""))
      << Dump(errors);
  EXPECT_TRUE(AnyErrorContains(errors, "step 2 (openai): expect.system_contains", "Refactor"))
      << Dump(errors);
  EXPECT_TRUE(
      AnyErrorContains(errors, "step 2 (openai): expect.last_tool_result_contains", "\"print(1)\""))
      << Dump(errors);
  EXPECT_TRUE(AnyErrorContains(errors, "step 2 (openai): expect.messages_at_least", "4 messages"))
      << Dump(errors);
  EXPECT_TRUE(AnyErrorContains(errors, "step 2 (openai): expect.model", "other-model"))
      << Dump(errors);
}

TEST(ModelServer, RateLimitIsDeliveredAsScripted) {
  ModelServer server(Json::parse(R"({"steps": [
    {"respond": {"status": 429, "headers": {"Retry-After": "0"},
                 "body": "{\"error\": \"slow down\"}"}},
    {"respond": {"text": "hello"}}]})"));
  ASSERT_TRUE(server.ok()) << Dump(server.errors());
  Reply limited = PostOpenAi(server, OpenAiRequest(OpenAiFirstMessages()));
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(limited.body, "{\"error\": \"slow down\"}");
  auto retry_after = limited.headers.find("Retry-After");
  ASSERT_NE(retry_after, limited.headers.end());
  EXPECT_EQ(retry_after->second, "0");
  // The retry is the next step; the 429 was no assistant turn, so none need be carried.
  Reply retried = PostOpenAi(server, OpenAiRequest(OpenAiFirstMessages()));
  EXPECT_EQ(retried.status, 200);
  EXPECT_EQ(retried.json["choices"][0]["message"]["content"], "hello");
  EXPECT_TRUE(server.errors().empty()) << Dump(server.errors());
}

TEST(ModelServer, RawBodyIsDeliveredAsScripted) {
  ModelServer server(
      Json::parse(R"({"steps": [{"respond": {"status": 200, "raw_body": "this is not json"}}]})"));
  ASSERT_TRUE(server.ok()) << Dump(server.errors());
  Reply reply = PostAnthropic(server, AnthropicRequest({{{"role", "user"}, {"content", "go"}}}));
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body, "this is not json");
  EXPECT_TRUE(server.errors().empty()) << Dump(server.errors());
}

TEST(ModelServer, ArgumentsRawIsSentUnparsed) {
  ModelServer server(Json::parse(R"({"steps": [
    {"respond": {"tool_calls": [{"name": "write_file", "arguments_raw": "{not valid json"}]}},
    {"respond": {"tool_calls": [{"name": "write_file", "arguments_raw": "{not valid json"}]}}]})"));
  ASSERT_TRUE(server.ok()) << Dump(server.errors());
  Reply openai = PostOpenAi(server, OpenAiRequest(OpenAiFirstMessages()));
  EXPECT_EQ(openai.json["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{not valid json");
  EXPECT_EQ(openai.json["choices"][0]["message"]["content"], nullptr);
  Json messages = Json::array({{{"role", "user"}, {"content", "go"}},
                               {{"role", "assistant"}, {"content", "ok"}},
                               {{"role", "user"}, {"content", "go on"}}});
  Reply anthropic = PostAnthropic(server, AnthropicRequest(messages));
  ASSERT_EQ(anthropic.json["content"].size(), 1u) << anthropic.body;
  EXPECT_EQ(anthropic.json["content"][0]["id"], "toolu_2");
  EXPECT_EQ(anthropic.json["content"][0]["input"], "{not valid json");
}

TEST(ModelServer, RequestsBeyondTheScriptGet500AndAnError) {
  ModelServer server(Json::parse(R"({"steps": [{"respond": {"text": "only step"}}]})"));
  ASSERT_TRUE(server.ok()) << Dump(server.errors());
  EXPECT_EQ(PostOpenAi(server, OpenAiRequest(OpenAiFirstMessages())).status, 200);
  Reply extra = Post(server, "/v1/chat/completions", kOpenAiHeaders, "not even json");
  EXPECT_EQ(extra.status, 500);
  auto errors = server.errors();
  ASSERT_EQ(errors.size(), 1u) << Dump(errors);
  EXPECT_TRUE(AnyErrorContains(errors, "unexpected request 2")) << Dump(errors);
  EXPECT_EQ(server.steps_served(), 1);
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_TRUE(requests[1].is_null());
}

TEST(ModelServer, DroppedAssistantTurnIsReported) {
  ModelServer server(Json::parse(R"({"steps": [{"respond": {"text": "a"}},
                                               {"respond": {"text": "b"}}]})"));
  ASSERT_TRUE(server.ok()) << Dump(server.errors());
  Json request = OpenAiRequest(OpenAiFirstMessages());
  EXPECT_EQ(PostOpenAi(server, request).status, 200);
  EXPECT_EQ(PostOpenAi(server, request).status, 200);  // forgot the assistant's answer
  auto errors = server.errors();
  ASSERT_EQ(errors.size(), 1u) << Dump(errors);
  EXPECT_TRUE(AnyErrorContains(errors, "step 2", "1 assistant turns were served")) << Dump(errors);
}

TEST(ModelServer, OpenAiProtocolViolationsAreReported) {
  ModelServer server(Json::parse(R"({"steps": [{}]})"));
  ASSERT_TRUE(server.ok()) << Dump(server.errors());
  Json body = {{"messages", Json::array({{{"role", "user"}, {"content", "hi"}}})},
               {"tools", Json::array()}};
  EXPECT_EQ(PostOpenAi(server, body).status, 200);
  auto errors = server.errors();
  EXPECT_EQ(errors.size(), 3u) << Dump(errors);
  EXPECT_TRUE(AnyErrorContains(errors, "'model'")) << Dump(errors);
  EXPECT_TRUE(AnyErrorContains(errors, "'tools'")) << Dump(errors);
  EXPECT_TRUE(AnyErrorContains(errors, "messages[0]", "system")) << Dump(errors);
}

TEST(ModelServer, AnthropicProtocolViolationsAreReported) {
  ModelServer server(OneToolCallScenario());
  ASSERT_TRUE(server.ok()) << Dump(server.errors());
  // toolu_1 was never issued (this is the first request) and is never answered; the roles do
  // not alternate; max_tokens and system are missing.
  Json body = AnthropicRequest(Json::array(
      {{{"role", "user"}, {"content", "go"}},
       {{"role", "assistant"},
        {"content",
         Json::array(
             {{{"type", "tool_use"}, {"id", "toolu_1"}, {"name", "read_file"}, {"input", "{}"}}})}},
       {{"role", "assistant"}, {"content", "again"}}}));
  body.erase("max_tokens");
  body["system"] = "";
  EXPECT_EQ(PostAnthropic(server, body).status, 200);
  auto errors = server.errors();
  EXPECT_TRUE(AnyErrorContains(errors, "'max_tokens'")) << Dump(errors);
  EXPECT_TRUE(AnyErrorContains(errors, "'system'")) << Dump(errors);
  EXPECT_TRUE(AnyErrorContains(errors, "messages[2] has role \"assistant\"")) << Dump(errors);
  EXPECT_TRUE(AnyErrorContains(errors, "tool_use input is not an object")) << Dump(errors);
  EXPECT_TRUE(AnyErrorContains(errors, "messages[1]: tool_use toolu_1 not answered"))
      << Dump(errors);
  EXPECT_TRUE(AnyErrorContains(errors, "\"toolu_1\" was never issued")) << Dump(errors);
}

TEST(ModelServer, DelayIsApplied) {
  ModelServer server(Json::parse(R"({"steps": [{"respond": {"delay_ms": 50, "text": "late"}}]})"));
  ASSERT_TRUE(server.ok()) << Dump(server.errors());
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(PostOpenAi(server, OpenAiRequest(OpenAiFirstMessages())).status, 200);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(50));
}

TEST(ModelServer, InvalidScenarioIsRejected) {
  ModelServer misspelt(Json::parse(R"({"steps": [{"expect": {"system_contain": "x"}}]})"));
  EXPECT_FALSE(misspelt.ok());
  ASSERT_EQ(misspelt.errors().size(), 1u);
  EXPECT_TRUE(AnyErrorContains(misspelt.errors(), "step 1", "'system_contain'"))
      << Dump(misspelt.errors());

  ModelServer noted(Json::parse(R"({"about": "a note", "steps": [{"about": "x"}]})"));
  EXPECT_TRUE(noted.ok()) << Dump(noted.errors());

  ModelServer no_steps(Json::object());
  EXPECT_FALSE(no_steps.ok());
  EXPECT_TRUE(AnyErrorContains(no_steps.errors(), "'steps'")) << Dump(no_steps.errors());
}

TEST(ModelServer, LoadScenarioReadsAndValidatesFiles) {
  auto dir = MakeTempDir("model-server-test");
  ASSERT_TRUE(dir.ok()) << dir.status();
  auto good = *dir / "good.json";
  auto bad = *dir / "bad.json";
  std::ofstream(good) << R"({"steps": [{"respond": {"text": "hi"}}]})";
  std::ofstream(bad) << R"({"steps": [{"respond": {"status": "429"}}]})";

  auto loaded = ModelServer::LoadScenario(good);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)["steps"][0]["respond"]["text"], "hi");

  auto invalid = ModelServer::LoadScenario(bad);
  ASSERT_FALSE(invalid.ok());
  EXPECT_NE(invalid.status().message().find("respond.status"), std::string::npos)
      << invalid.status();
  EXPECT_FALSE(ModelServer::LoadScenario(*dir / "missing.json").ok());
  RemoveTreeQuietly(*dir);
}

}  // namespace
}  // namespace nightshift::testing
