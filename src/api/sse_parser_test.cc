#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "api/client.h"

namespace nightshift::api {
namespace {

// Feeds `chunks` in order and collects the events; the first error ends the feeding.
struct Collected {
  std::vector<SseEvent> events;
  Status status;
};

Collected FeedAll(SseParser& parser, const std::vector<std::string>& chunks) {
  Collected out;
  for (const auto& chunk : chunks) {
    out.status = parser.Feed(chunk, [&](const SseEvent& event) {
      out.events.push_back(event);
      return OkStatus();
    });
    if (!out.status.ok()) break;
  }
  return out;
}

Collected FeedAll(const std::vector<std::string>& chunks) {
  SseParser parser;
  return FeedAll(parser, chunks);
}

constexpr char kTwoEvents[] =
    "id: 7\n"
    "event: log\n"
    "data: {\"seq\":7}\n"
    "\n"
    ": keep-alive\n"
    "\n"
    "id: 8\n"
    "event: state\n"
    "data: {\"seq\":8}\n"
    "\n";

TEST(SseParser, ParsesEventsAndSkipsComments) {
  auto got = FeedAll({kTwoEvents});
  ASSERT_TRUE(got.status.ok()) << got.status;
  ASSERT_EQ(got.events.size(), 2u);
  EXPECT_EQ(got.events[0].id, "7");
  EXPECT_EQ(got.events[0].type, "log");
  EXPECT_EQ(got.events[0].data, "{\"seq\":7}");
  EXPECT_EQ(got.events[1].id, "8");
  EXPECT_EQ(got.events[1].type, "state");
  EXPECT_EQ(got.events[1].data, "{\"seq\":8}");
}

TEST(SseParser, SameEventsWhateverTheChunking) {
  std::string text = kTwoEvents;
  for (size_t size = 1; size <= text.size(); ++size) {
    std::vector<std::string> chunks;
    for (size_t i = 0; i < text.size(); i += size) chunks.push_back(text.substr(i, size));
    auto got = FeedAll(chunks);
    ASSERT_TRUE(got.status.ok()) << got.status;
    ASSERT_EQ(got.events.size(), 2u) << "chunk size " << size;
    EXPECT_EQ(got.events[0].data, "{\"seq\":7}") << "chunk size " << size;
    EXPECT_EQ(got.events[1].type, "state") << "chunk size " << size;
  }
}

TEST(SseParser, AcceptsCrLfAndCrLineEndings) {
  auto crlf = FeedAll({"id: 1\r\nevent: log\r\ndata: a\r\n\r\n"});
  ASSERT_EQ(crlf.events.size(), 1u);
  EXPECT_EQ(crlf.events[0].data, "a");
  EXPECT_EQ(crlf.events[0].type, "log");

  auto cr = FeedAll({"data: b\r\r"});
  ASSERT_EQ(cr.events.size(), 1u);
  EXPECT_EQ(cr.events[0].data, "b");

  // "\r" at the end of one chunk and "\n" at the start of the next are one line ending, not a
  // line ending followed by a blank line (which would dispatch early).
  auto split = FeedAll({"data: c\r", "\ndata: d\r\n\r\n"});
  ASSERT_EQ(split.events.size(), 1u);
  EXPECT_EQ(split.events[0].data, "c\nd");
}

TEST(SseParser, JoinsDataLinesAndStripsOneSpace) {
  auto got = FeedAll({"data:first\ndata:  second\ndata\n\n"});
  ASSERT_EQ(got.events.size(), 1u);
  EXPECT_EQ(got.events[0].data, "first\n second\n");
  EXPECT_EQ(got.events[0].type, "message");
}

TEST(SseParser, EventWithoutDataIsNotDispatched) {
  auto got = FeedAll({"event: end\nid: 3\n\ndata: x\n\n"});
  ASSERT_EQ(got.events.size(), 1u);
  // The type belonged to the discarded event; the id persists.
  EXPECT_EQ(got.events[0].type, "message");
  EXPECT_EQ(got.events[0].id, "3");
}

TEST(SseParser, LastEventIdPersistsAcrossEvents) {
  SseParser parser;
  auto got = FeedAll(parser, {"id: 41\ndata: a\n\ndata: b\n\nretry: 10\nfoo: bar\n"});
  ASSERT_EQ(got.events.size(), 2u);
  EXPECT_EQ(got.events[1].id, "41");
  EXPECT_EQ(parser.last_event_id(), "41");
}

TEST(SseParser, IncompleteEventIsHeldBack) {
  SseParser parser;
  auto got = FeedAll(parser, {"event: end\ndata: {\"state\":\"succeeded\"}\n"});
  EXPECT_TRUE(got.events.empty());
  got = FeedAll(parser, {"\n"});
  ASSERT_EQ(got.events.size(), 1u);
  EXPECT_EQ(got.events[0].type, "end");
  EXPECT_EQ(got.events[0].data, "{\"state\":\"succeeded\"}");
}

TEST(SseParser, HandlerErrorStopsParsing) {
  SseParser parser;
  int calls = 0;
  Status status = parser.Feed("data: 1\n\ndata: 2\n\n", [&](const SseEvent&) {
    ++calls;
    return CancelledError("stop");
  });
  EXPECT_EQ(status.code(), StatusCode::kCancelled);
  EXPECT_EQ(calls, 1);
}

TEST(SseParser, RejectsOverlongLine) {
  SseParser parser;
  std::string chunk(1 << 20, 'x');
  Status status;
  for (size_t fed = 0; status.ok() && fed <= SseParser::kMaxLineBytes; fed += chunk.size()) {
    status = parser.Feed(chunk, [](const SseEvent&) { return OkStatus(); });
  }
  EXPECT_TRUE(IsInvalidArgument(status)) << status;
}

}  // namespace
}  // namespace nightshift::api
