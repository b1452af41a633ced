#include "cli/event_printer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include "api/events.h"

namespace nightshift::cli {
namespace {

struct Printed {
  std::string out;
  std::string err;
};

Printed Print(std::string_view kind, const Json& data, bool json = false) {
  std::ostringstream out, err;
  EventPrinter printer(json, /*live=*/false, out, err);
  api::Event event{.seq = 1, .ts = {1'700'000'000'000}, .kind = std::string(kind), .data = data};
  EXPECT_TRUE(printer.Print(event).ok());
  return {out.str(), err.str()};
}

template <api::EventPayload E>
Printed Print(const E& payload) {
  return Print(E::kKind, api::ToJson(payload));
}

TEST(EventPrinter, HasAnEntryForEveryKindOfTheCatalogue) {
  const std::vector<std::string_view> printed = PrintedKinds();
  for (const api::EventKindInfo& info : api::EventCatalogue()) {
    EXPECT_NE(std::find(printed.begin(), printed.end(), info.kind), printed.end())
        << "the CLI's printer table has no entry for `" << info.kind
        << "`: add one (ShowNothing if it should not show)";
  }
  for (std::string_view kind : printed) EXPECT_NE(api::FindEventKind(kind), nullptr) << kind;
}

TEST(EventPrinter, LogLinesGoToTheirStream) {
  EXPECT_EQ(Print(api::LogEvent{.stream = "stdout", .line = "ok"}).out, "ok\n");
  Printed err = Print(api::LogEvent{.stream = "stderr", .line = "warning"});
  EXPECT_EQ(err.out, "");
  EXPECT_EQ(err.err, "warning\n");
}

TEST(EventPrinter, StateChanges) {
  EXPECT_EQ(Print(api::StateEvent{.to = "queued"}).err, "[state] queued\n");
  EXPECT_EQ(
      Print(api::StateEvent{.from = "queued", .to = "preparing", .attempt = 2, .runner = "r"}).err,
      "[state] queued -> preparing (attempt 2)\n");
  EXPECT_EQ(Print(api::StateEvent{.from = "running",
                                  .to = "failed",
                                  .attempt = 1,
                                  .reason = "recipe exited\nwith status 3",
                                  .exit_code = 3})
                .err,
            "[state] running -> failed (exit code 3): recipe exited with status 3\n");
}

TEST(EventPrinter, PhasesAndTheRunsProgress) {
  EXPECT_EQ(Print(api::PhaseEvent{.name = "checkout", .status = "ok", .duration_ms = 12}).err,
            "[phase] checkout ok (12 ms)\n");
  EXPECT_EQ(Print(api::CheckoutEvent{.commit = "3f1c", .ref = ""}).err, "[checkout] 3f1c (HEAD)\n");
  EXPECT_EQ(Print(api::EnvironmentEvent{.prebuild = "built", .prebuild_id = "p1"}).err,
            "[environment] prebuild built (p1)\n");
  EXPECT_EQ(Print(api::ChangeRequestEvent{
                      .id = 4, .branch = "nightshift/recipe/9", .base_branch = "main"})
                .err,
            "[change request] 4 opened: nightshift/recipe/9 -> main\n");
  EXPECT_EQ(Print(api::PolicyEvent{.violations = {"too big"}}).err,
            "[policy] blocked: {\"violations\":[\"too big\"]}\n");
}

TEST(EventPrinter, ResultNamesTheChangedFiles) {
  api::ResultEvent result{.summary = "fixed it",
                          .files = std::vector<api::ChangedFile>{
                              {.path = "a.c", .status = "modified", .added = "3", .removed = "1"},
                              {.path = "b.bin", .status = "added"}}};
  EXPECT_EQ(Print(result).err,
            "[result] fixed it\n[result] 2 file(s) changed: a.c (+3 -1), b.bin (+? -?)\n");
}

TEST(EventPrinter, TheAgentsTranscript) {
  EXPECT_EQ(Print(api::AgentStartEvent{.model = "m"}).err, "");
  EXPECT_EQ(Print(api::ModelRequestEvent{.step = 1}).err, "");
  EXPECT_EQ(Print(api::ModelResponseEvent{.step = 1,
                                          .text = "Looking.",
                                          .input_tokens = 10,
                                          .output_tokens = 5,
                                          .latency_ms = 7})
                .err,
            "[model] Looking.\n[model] step 1: 10 in / 5 out tokens, 7 ms\n");
  EXPECT_EQ(Print(api::ModelResponseEvent{.step = 2, .error = "HTTP 500"}).err,
            "[model] step 2: HTTP 500\n");
  EXPECT_EQ(Print(api::ToolCallEvent{.name = "read_file", .arguments = R"({"path":"a"})"}).err,
            "[tool] read_file {\"path\":\"a\"}\n");
  EXPECT_EQ(Print(api::ToolResultEvent{.name = "run_command", .is_error = true, .output = "x"}).err,
            "[tool] run_command error: x\n");
  EXPECT_EQ(Print(api::AgentEndEvent{.end = "budget",
                                     .reason = "step budget of 1 used up",
                                     .steps = 1,
                                     .input_tokens = 10,
                                     .output_tokens = 5,
                                     .cost_usd = 0.25})
                .err,
            "[agent] budget after 1 steps, 15 tokens, $0.25: step budget of 1 used up\n");
}

TEST(EventPrinter, UnknownKindsAndMalformedPayloadsShowAsJson) {
  EXPECT_EQ(Print("from_the_future", Json{{"a", 1}}).err, "[from_the_future] {\"a\":1}\n");
  EXPECT_EQ(Print("phase", Json{{"name", 5}}).err, "[phase] {\"name\":5}\n");
  EXPECT_EQ(Print(api::RemoteChangeRequestEvent{.error = "no token"}).err,
            "[remote_change_request] {\"error\":\"no token\"}\n");
}

TEST(EventPrinter, JsonPrintsTheEventAsSent) {
  Printed printed = Print("log", Json{{"stream", "stdout"}, {"line", "ok"}}, /*json=*/true);
  EXPECT_EQ(printed.out,
            "{\"data\":{\"line\":\"ok\",\"stream\":\"stdout\"},\"kind\":\"log\",\"seq\":1,"
            "\"ts\":\"2023-11-14T22:13:20.000Z\"}\n");
  EXPECT_EQ(printed.err, "");
}

}  // namespace
}  // namespace nightshift::cli
