#include "triggers/slack.h"

#include <gtest/gtest.h>

namespace nightshift::triggers {
namespace {

using std::chrono::seconds;
using std::chrono::sys_seconds;

// Slack's own example (docs: "Verifying requests from Slack").
constexpr std::string_view kSecret = "8f742231b10e8888abcd99yyyzzz85a5";
constexpr std::string_view kBody =
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="
    "G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-"
    "collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%"
    "2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121."
    "803a0bc887a14d10d2c447fce8b6703c";
constexpr std::string_view kSignature =
    "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
const sys_seconds kSent{seconds(1531420618)};

TEST(SlackSignature, SlacksKnownAnswer) {
  EXPECT_TRUE(VerifySlackSignature(kSecret, "1531420618", kBody, kSignature, kSent).ok());
  EXPECT_TRUE(
      VerifySlackSignature(kSecret, "1531420618", kBody, kSignature, kSent + seconds(299)).ok());
}

TEST(SlackSignature, WrongStaleOrMalformedIsUnauthenticated) {
  struct Case {
    std::string timestamp;
    std::string body;
    std::string signature;
    sys_seconds now;
    std::string error;
  };
  const std::string body(kBody);
  const std::string signature(kSignature);
  for (const Case& c : std::vector<Case>{
           {"1531420618", body + "&x=1", signature, kSent,
            "X-Slack-Signature does not match the body"},
           {"1531420619", body, signature, kSent, "X-Slack-Signature does not match the body"},
           {"1531420618", body, signature, kSent + seconds(301),
            "X-Slack-Request-Timestamp 1531420618 is more than 300 s from the server's clock "
            "(1531420919): a replay, or a wrong clock"},
           {"1531420618", body, signature, kSent - seconds(400),
            "X-Slack-Request-Timestamp 1531420618 is more than 300 s from the server's clock "
            "(1531420218): a replay, or a wrong clock"},
           // The extremes an int64 holds: refused, with no overflow (UBSan would stop here).
           {"-9223372036854775808", body, signature, kSent,
            "X-Slack-Request-Timestamp -9223372036854775808 is more than 300 s from the server's "
            "clock (1531420618): a replay, or a wrong clock"},
           {"9223372036854775807", body, signature, kSent,
            "X-Slack-Request-Timestamp 9223372036854775807 is more than 300 s from the server's "
            "clock (1531420618): a replay, or a wrong clock"},
           {"99999999999999999999", body, signature, kSent,
            "missing or malformed X-Slack-Request-Timestamp"},
           {"", body, signature, kSent, "missing or malformed X-Slack-Request-Timestamp"},
           {"15314x", body, signature, kSent, "missing or malformed X-Slack-Request-Timestamp"},
           {"1531420618", body, "", kSent, "missing X-Slack-Signature"},
           {"1531420618", body, "v1=" + signature.substr(3), kSent,
            "malformed X-Slack-Signature (expected v0= and 64 hex digits)"},
       }) {
    Status st = VerifySlackSignature(kSecret, c.timestamp, c.body, c.signature, c.now);
    EXPECT_EQ(st.code(), StatusCode::kUnauthenticated) << c.error;
    EXPECT_EQ(st.message(), c.error);
  }
}

TEST(SlackCommand, TheTaskAndTheRepository) {
  auto e = ParseSlackCommand({{"command", "/nightshift"},
                              {"text", "fix the flaky login test in acme/app  "},
                              {"user_name", "alice"},
                              {"user_id", "U1"},
                              {"channel_id", "C9"},
                              {"team_id", "T1"},
                              {"response_url", "https://hooks.slack.com/commands/x"}});
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->source, "slack");
  EXPECT_EQ(e->repository, "acme/app");
  EXPECT_EQ(e->fields.at("task"), "fix the flaky login test");
  EXPECT_EQ(e->actor, "alice");
  EXPECT_EQ(e->item, "slack:C9");
  // No "in OWNER/NAME" at the end (or not a repository name there): no repository, no task.
  for (const char* text : {"fix the flaky login test", "fix it in prod", "look in a/b c",
                           "in acme/app", "fix in acme/app;rm"}) {
    auto other = ParseSlackCommand({{"command", "/nightshift"}, {"text", text}, {"user_id", "U1"}});
    ASSERT_TRUE(other.ok()) << text;
    EXPECT_EQ(other->repository, "") << text;
    EXPECT_EQ(other->fields.at("task"), "") << text;
  }
  auto missing = ParseSlackCommand({{"text", "fix"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), "slack: not a slash command (no command or user_id)");
}

}  // namespace
}  // namespace nightshift::triggers
