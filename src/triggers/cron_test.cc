#include "triggers/cron.h"

#include <date/date.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace nightshift::triggers {
namespace {

Seconds At(std::string_view rfc3339) {
  auto t = ParseRfc3339(rfc3339);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *t : Seconds{};
}

// The next `n` fire times after `after`, formatted in the schedule's zone.
std::vector<std::string> NextN(std::string_view expression, std::string_view zone,
                               std::string_view after, int n) {
  auto s = Schedule::Make(expression, zone);
  EXPECT_TRUE(s.ok()) << s.status();
  if (!s.ok()) return {};
  std::vector<std::string> out;
  Seconds t = At(after);
  for (int i = 0; i < n; ++i) {
    auto next = s->Next(t);
    if (!next) break;
    out.push_back(s->Format(*next));
    t = *next;
  }
  return out;
}

TEST(Cron, FieldsRangesStepsListsAndNames) {
  EXPECT_EQ(NextN("*/15 9-10 * * mon-fri", "", "2026-12-04T10:20:00Z", 4),
            (std::vector<std::string>{"2026-12-04T10:30:00+00:00", "2026-12-04T10:45:00+00:00",
                                      "2026-12-07T09:00:00+00:00", "2026-12-07T09:15:00+00:00"}));
  EXPECT_EQ(NextN("0 3 1,15 * *", "", "2026-12-07T00:00:00Z", 3),
            (std::vector<std::string>{"2026-12-15T03:00:00+00:00", "2027-01-01T03:00:00+00:00",
                                      "2027-01-15T03:00:00+00:00"}));
  EXPECT_EQ(NextN("30 4 * JAN,jul sun", "", "2026-12-07T00:00:00Z", 2),
            (std::vector<std::string>{"2027-01-03T04:30:00+00:00", "2027-01-10T04:30:00+00:00"}));
  // 7 is Sunday, like 0; N/STEP runs to the maximum.
  EXPECT_EQ(NextN("0 0 * * 7", "", "2026-12-07T00:00:00Z", 1),
            (std::vector<std::string>{"2026-12-13T00:00:00+00:00"}));
  EXPECT_EQ(NextN("50/5 23 * * *", "", "2026-12-07T00:00:00Z", 3),
            (std::vector<std::string>{"2026-12-07T23:50:00+00:00", "2026-12-07T23:55:00+00:00",
                                      "2026-12-08T23:50:00+00:00"}));
  EXPECT_EQ(NextN("1-10/4 0 1 1 *", "", "2026-12-07T00:00:00Z", 3),
            (std::vector<std::string>{"2027-01-01T00:01:00+00:00", "2027-01-01T00:05:00+00:00",
                                      "2027-01-01T00:09:00+00:00"}));
}

TEST(Cron, Macros) {
  auto first = [](std::string_view macro) {
    return NextN(macro, "", "2026-12-07T10:20:30Z", 1).at(0);
  };
  EXPECT_EQ(first("@hourly"), "2026-12-07T11:00:00+00:00");
  EXPECT_EQ(first("@daily"), "2026-12-08T00:00:00+00:00");
  EXPECT_EQ(first("@midnight"), "2026-12-08T00:00:00+00:00");
  EXPECT_EQ(first("@weekly"), "2026-12-13T00:00:00+00:00");
  EXPECT_EQ(first("@monthly"), "2027-01-01T00:00:00+00:00");
  EXPECT_EQ(first("@yearly"), "2027-01-01T00:00:00+00:00");
  EXPECT_EQ(first("@annually"), "2027-01-01T00:00:00+00:00");
}

// Vixie cron: both day fields restricted → either matches; one of them '*' (even "*/2") → both.
TEST(Cron, DayOfMonthOrDayOfWeek) {
  // The 13th, or any Friday.
  EXPECT_EQ(NextN("0 0 13 * fri", "", "2026-12-07T00:00:00Z", 3),
            (std::vector<std::string>{"2026-12-11T00:00:00+00:00", "2026-12-13T00:00:00+00:00",
                                      "2026-12-18T00:00:00+00:00"}));
  // "*/2" starts with '*': odd days that are Mondays.
  EXPECT_EQ(NextN("0 0 */2 * mon", "", "2026-12-07T00:00:00Z", 2),
            (std::vector<std::string>{"2026-12-21T00:00:00+00:00", "2027-01-11T00:00:00+00:00"}));
}

TEST(Cron, LeapDays) {
  EXPECT_EQ(NextN("0 0 29 2 *", "", "2026-03-01T00:00:00Z", 2),
            (std::vector<std::string>{"2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00"}));
  // 2100 is not a leap year: eight years between two 29 Februaries.
  EXPECT_EQ(NextN("0 0 29 2 *", "", "2096-03-01T00:00:00Z", 1),
            (std::vector<std::string>{"2104-02-29T00:00:00+00:00"}));
  EXPECT_EQ(NextN("0 12 31 * *", "", "2027-01-31T12:00:00Z", 2),
            (std::vector<std::string>{"2027-03-31T12:00:00+00:00", "2027-05-31T12:00:00+00:00"}));
}

TEST(Cron, ATimeZoneMovesTheFireTimes) {
  EXPECT_EQ(NextN("0 3 * * 1-5", "Europe/Berlin", "2026-12-07T00:00:00Z", 2),
            (std::vector<std::string>{"2026-12-07T03:00:00+01:00", "2026-12-08T03:00:00+01:00"}));
  EXPECT_EQ(NextN("0 9 * * *", "America/New_York", "2026-07-01T00:00:00Z", 1),
            (std::vector<std::string>{"2026-07-01T09:00:00-04:00"}));
  EXPECT_EQ(NextN("0 0 * * *", "Asia/Kolkata", "2026-07-01T00:00:00Z", 1),
            (std::vector<std::string>{"2026-07-02T00:00:00+05:30"}));
}

// Berlin skips 02:00–02:59 on 29 March 2026 and repeats it on 25 October 2026.
TEST(Cron, ASkippedHourFiresOnceAtTheEndOfTheGap) {
  EXPECT_EQ(NextN("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", 2),
            (std::vector<std::string>{"2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"}));
  // Four matching minutes in the gap and 03:00 itself: one fire.
  EXPECT_EQ(NextN("*/15 2-3 * * *", "Europe/Berlin", "2026-03-29T00:50:00Z", 3),
            (std::vector<std::string>{"2026-03-29T03:00:00+02:00", "2026-03-29T03:15:00+02:00",
                                      "2026-03-29T03:30:00+02:00"}));
}

TEST(Cron, ARepeatedHourFiresOnce) {
  EXPECT_EQ(NextN("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", 2),
            (std::vector<std::string>{"2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"}));
  // Hourly across the change: 02:00 once (its first occurrence), then 03:00.
  EXPECT_EQ(NextN("0 * * * *", "Europe/Berlin", "2026-10-24T23:30:00Z", 3),
            (std::vector<std::string>{"2026-10-25T02:00:00+02:00", "2026-10-25T03:00:00+01:00",
                                      "2026-10-25T04:00:00+01:00"}));
  // Asked from inside the repeat, the repeated hour does not fire again.
  EXPECT_EQ(NextN("45 2 * * *", "Europe/Berlin", "2026-10-25T01:10:00Z", 1),
            (std::vector<std::string>{"2026-10-26T02:45:00+01:00"}));
}

// New York moves forward at 02:00 on 8 March 2026 and back at 02:00 on 1 November 2026.
TEST(Cron, DaylightSavingInASecondZone) {
  EXPECT_EQ(NextN("30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", 3),
            (std::vector<std::string>{"2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00",
                                      "2026-03-10T02:30:00-04:00"}));
  EXPECT_EQ(NextN("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", 2),
            (std::vector<std::string>{"2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"}));
  // Every 20 minutes through the repeated hour: 01:00, 01:20, 01:40 once each, then 02:00 EST.
  EXPECT_EQ(NextN("*/20 * * * *", "America/New_York", "2026-11-01T04:50:00Z", 5),
            (std::vector<std::string>{"2026-11-01T01:00:00-04:00", "2026-11-01T01:20:00-04:00",
                                      "2026-11-01T01:40:00-04:00", "2026-11-01T02:00:00-05:00",
                                      "2026-11-01T02:20:00-05:00"}));
  // Lord Howe moves by half an hour.
  EXPECT_EQ(NextN("15 2 * * *", "Australia/Lord_Howe", "2026-10-03T12:00:00Z", 1),
            (std::vector<std::string>{"2026-10-04T02:30:00+11:00"}));
}

TEST(Cron, BadExpressionsNameTheFieldAndTheReason) {
  struct Case {
    const char* expression;
    const char* error;
  };
  for (const Case& c : std::vector<Case>{
           {"", "cron: expected 5 fields (minute hour day-of-month month day-of-week), got 0"},
           {"* * * *",
            "cron: expected 5 fields (minute hour day-of-month month day-of-week), got 4"},
           {"* * * * * *",
            "cron: expected 5 fields (minute hour day-of-month month day-of-week), got 6"},
           {"60 * * * *", "cron: minute field '60': 60 is out of range 0-59"},
           {"* 24 * * *", "cron: hour field '24': 24 is out of range 0-23"},
           {"* * 0 * *", "cron: day of month field '0': 0 is out of range 1-31"},
           {"* * * 13 *", "cron: month field '13': 13 is out of range 1-12"},
           {"* * * * 8", "cron: day of week field '8': 8 is out of range 0-7"},
           {"* * * foo *", "cron: month field 'foo': unknown name 'foo'"},
           {"* * * * monday", "cron: day of week field 'monday': 'monday' is not a number"},
           {"x * * * *", "cron: minute field 'x': 'x' is not a number"},
           {"-5 * * * *", "cron: minute field '-5': '' is not a number"},
           {"5-1 * * * *", "cron: minute field '5-1': range '5-1' runs backwards"},
           {"*/0 * * * *", "cron: minute field '*/0': step '0' must be a number from 1 to 59"},
           {"*/ * * * *", "cron: minute field '*/': step '' must be a number from 1 to 59"},
           {"1,,2 * * * *", "cron: minute field '1,,2': an empty list item"},
           {"@reboot",
            "cron: unknown macro '@reboot' (expected @yearly, @annually, @monthly, "
            "@weekly, @daily, @midnight or @hourly)"},
           {"0 0 30 2 *", "cron: '0 0 30 2 *' can never fire: no month it names has that day"},
           {"0 0 31 4,6,9,11 *",
            "cron: '0 0 31 4,6,9,11 *' can never fire: no month it names has that day"},
       }) {
    auto e = CronExpression::Parse(c.expression);
    ASSERT_FALSE(e.ok()) << c.expression;
    EXPECT_EQ(e.status().message(), c.error) << c.expression;
  }
  // Restricted on both day fields, 30 February still fires: on the Mondays of February.
  EXPECT_TRUE(CronExpression::Parse("0 0 30 2 mon").ok());
}

TEST(Cron, TimeZonesAndTimes) {
  auto bad = Schedule::Make("* * * * *", "Mars/Olympus_Mons");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "cron: unknown time zone 'Mars/Olympus_Mons' (expected an IANA name such as "
            "Europe/Berlin)");
  EXPECT_EQ(Schedule::Make("* * * * *", "").value().timezone(), "UTC");
  EXPECT_EQ(At("2026-03-29T03:30:00+02:00"), At("2026-03-29T01:30:00Z"));
  EXPECT_EQ(At("2026-03-29T01:30:00.999Z"), At("2026-03-29T01:30:00Z"));
  EXPECT_EQ(At("2026-03-29t01:30:00z"), At("2026-03-29T01:30:00Z"));
  for (const char* text : {"", "2026-03-29", "2026-03-29T01:30:00", "2026-03-29 01:30:00Z",
                           "2026-03-29T01:30:00Zjunk", "2026-13-29T01:30:00Z", "yesterday"}) {
    auto t = ParseRfc3339(text);
    ASSERT_FALSE(t.ok()) << text;
    EXPECT_EQ(t.status().message(),
              std::string("'") + text + "' is not an RFC 3339 time (e.g. 2026-03-29T01:30:00Z)");
  }
}

TEST(Cron, LatestAcrossDaylightSaving) {
  auto berlin = Schedule::Make("30 2 * * *", "Europe/Berlin").value();
  // From inside the repeated hour (02:40 CET), 02:30 last fired at its first occurrence.
  EXPECT_EQ(berlin.Format(*berlin.Latest(At("2026-10-25T01:40:00Z"))), "2026-10-25T02:30:00+02:00");
  // Just after the skipped hour, it fired when the gap ended.
  EXPECT_EQ(berlin.Format(*berlin.Latest(At("2026-03-29T01:10:00Z"))), "2026-03-29T03:00:00+02:00");
  EXPECT_EQ(berlin.Format(*berlin.Latest(At("2026-03-29T00:59:59Z"))), "2026-03-28T02:30:00+01:00");
}

TEST(Cron, WhatASchedulerOwesAfterDowntime) {
  auto hourly = Schedule::Make("0 * * * *", "UTC").value();
  // Nothing due yet.
  Owed owed =
      OwedAt(hourly, At("2026-12-07T09:00:00Z"), At("2026-12-07T09:59:59Z"), Misfire::kSkip);
  EXPECT_FALSE(owed.fire);
  EXPECT_EQ(owed.next, At("2026-12-07T10:00:00Z"));
  // Due now (within the grace): both policies fire it.
  for (Misfire m : {Misfire::kSkip, Misfire::kRunOnce}) {
    owed = OwedAt(hourly, At("2026-12-07T09:00:00Z"), At("2026-12-07T10:00:45Z"), m);
    EXPECT_EQ(owed.fire, At("2026-12-07T10:00:00Z"));
    EXPECT_EQ(owed.next, At("2026-12-07T11:00:00Z"));
  }
  // Down from 09:30 to 12:30: 10:00, 11:00 and 12:00 were missed.
  owed = OwedAt(hourly, At("2026-12-07T09:00:00Z"), At("2026-12-07T12:30:00Z"), Misfire::kRunOnce);
  EXPECT_EQ(owed.fire, At("2026-12-07T12:00:00Z"));  // once, for the latest
  EXPECT_EQ(owed.next, At("2026-12-07T13:00:00Z"));
  owed = OwedAt(hourly, At("2026-12-07T09:00:00Z"), At("2026-12-07T12:30:00Z"), Misfire::kSkip);
  EXPECT_FALSE(owed.fire);
  EXPECT_EQ(owed.next, At("2026-12-07T13:00:00Z"));
  // A monthly schedule down for a quarter: the latest, not the first, is owed.
  auto monthly = Schedule::Make("@monthly", "UTC").value();
  owed = OwedAt(monthly, At("2026-01-01T00:00:00Z"), At("2026-04-20T00:00:00Z"), Misfire::kRunOnce);
  EXPECT_EQ(owed.fire, At("2026-04-01T00:00:00Z"));
  // A minutely schedule down for three years: one fire, quickly.
  auto minutely = Schedule::Make("* * * * *", "UTC").value();
  owed =
      OwedAt(minutely, At("2023-12-07T00:00:00Z"), At("2026-12-07T10:00:30Z"), Misfire::kRunOnce);
  EXPECT_EQ(owed.fire, At("2026-12-07T10:00:00Z"));
  EXPECT_EQ(ParseMisfire("run_once").value(), Misfire::kRunOnce);
  EXPECT_EQ(ParseMisfire("skip").value(), Misfire::kSkip);
  EXPECT_EQ(ParseMisfire("always").status().message(), "misfire: 'always' is not run_once or skip");
}

// Against the definition, minute by minute, for random expressions in UTC.
TEST(Cron, NextAgreesWithAMinuteByMinuteScan) {
  std::mt19937 random(20261207);
  auto field = [&](unsigned min, unsigned max) {
    switch (random() % 5) {
      case 0:
        return std::string("*");
      case 1:
        return std::to_string(min + random() % (max - min + 1));
      case 2: {
        unsigned a = min + random() % (max - min + 1);
        unsigned b = a + random() % (max - a + 1);
        return std::to_string(a) + "-" + std::to_string(b);
      }
      case 3:
        return "*/" + std::to_string(1 + random() % 7);
      default:
        return std::to_string(min + random() % (max - min + 1)) + "," +
               std::to_string(min + random() % (max - min + 1));
    }
  };
  int compared = 0;
  for (int i = 0; i < 300; ++i) {
    const std::string expression = field(0, 59) + " " + field(0, 23) + " " + field(1, 31) + " " +
                                   field(1, 12) + " " + field(0, 6);
    auto parsed = CronExpression::Parse(expression);
    if (!parsed.ok()) continue;  // never fires: checked above
    auto schedule = Schedule::Make(expression, "UTC");
    ASSERT_TRUE(schedule.ok());
    const Seconds after = At("2026-01-01T00:00:00Z") + std::chrono::hours(random() % 8760);
    // The scan: every minute of the next 400 days (a whole day at once when it does not match).
    std::optional<Seconds> want;
    for (Seconds t = std::chrono::floor<std::chrono::minutes>(after) + std::chrono::minutes(1);
         t < after + date::days(400);) {
      const auto day = std::chrono::floor<date::days>(t);
      const date::year_month_day ymd{day};
      if (!parsed->MatchesDay(static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                              date::weekday{day}.c_encoding())) {
        t = day + date::days(1);
        continue;
      }
      const date::hh_mm_ss time{t - day};
      if (parsed->MatchesHour(static_cast<unsigned>(time.hours().count())) &&
          parsed->MatchesMinute(static_cast<unsigned>(time.minutes().count()))) {
        want = t;
        break;
      }
      t += std::chrono::minutes(1);
    }
    if (!want) continue;  // rarer than 400 days: the fixed cases above cover those
    EXPECT_EQ(schedule->Next(after), want) << expression;
    ++compared;
  }
  EXPECT_GT(compared, 150);
}

// The parser under the sanitizers: random bytes and random soups of cron's own tokens never
// crash it, and whatever it accepts fires strictly later than asked, on a matching minute.
TEST(Cron, RandomInputIsRefusedOrScheduledNeverCrashes) {
  std::mt19937 random(7);
  const std::vector<std::string> tokens = {
      "*",  "/",          "-",   ",",   " ",   "\t",  "0",   "1",      "7", "12", "31", "59", "60",
      "99", "4294967296", "mon", "SUN", "jan", "dec", "xyz", "@daily", "@", "**", "--", "\n"};
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string text;
    const int length = static_cast<int>(random() % 24);
    for (int j = 0; j < length; ++j) {
      if (i % 4 == 0) {
        text.push_back(static_cast<char>(random() % 256));
      } else if (i % 4 == 1) {
        text += tokens[random() % tokens.size()];
      }
    }
    if (i % 2 == 0) {  // five fields of cron's item forms, some out of range or misnamed
      const unsigned kMax[] = {59, 23, 31, 12, 7};
      unsigned max = 0;  // the field's; numbers go one past it now and then
      auto number = [&] { return std::to_string(random() % (max + 2)); };
      auto item = [&]() -> std::string {
        switch (random() % 7) {
          case 0:
            return "*";
          case 1:
            return number();
          case 2:
            return number() + "-" + number();
          case 3:
            return "*/" + number();
          case 4:
            return number() + "-" + number() + "/" + number();
          case 5:
            return tokens[15 + random() % 6];  // names, some wrong for the field
          default:
            return number() + "/" + number();
        }
      };
      text.clear();
      for (int field = 0; field < 5; ++field) {
        max = kMax[field];
        text += item();
        if (random() % 3 == 0) text += "," + item();
        text += field < 4 ? " " : "";
      }
    }
    auto parsed = CronExpression::Parse(text);
    if (!parsed.ok()) {
      EXPECT_EQ(parsed.status().message().rfind("cron: ", 0), 0u) << text;
      continue;
    }
    ++accepted;
    auto schedule = Schedule::Make(text, i % 2 ? "Europe/Berlin" : "UTC");
    ASSERT_TRUE(schedule.ok()) << text;
    const Seconds after = At("2026-01-01T00:00:00Z") + std::chrono::minutes(random() % 600000);
    auto next = schedule->Next(after);
    ASSERT_TRUE(next.has_value()) << text;
    EXPECT_GT(*next, after) << text;
    // Latest is Next backwards: the fire time is its own latest, and the one before it leads
    // to it again.
    EXPECT_EQ(schedule->Latest(*next), next) << text;
    if (auto before = schedule->Latest(*next - std::chrono::seconds(1))) {
      EXPECT_LT(*before, *next) << text;
      EXPECT_EQ(schedule->Next(*before), next) << text;
    }
    if (i % 2 == 0) {  // UTC: the fire time is a matching minute
      const auto day = std::chrono::floor<date::days>(*next);
      const date::year_month_day ymd{day};
      const date::hh_mm_ss time{*next - day};
      EXPECT_TRUE(parsed->MatchesDay(static_cast<unsigned>(ymd.month()),
                                     static_cast<unsigned>(ymd.day()),
                                     date::weekday{day}.c_encoding()) &&
                  parsed->MatchesHour(static_cast<unsigned>(time.hours().count())) &&
                  parsed->MatchesMinute(static_cast<unsigned>(time.minutes().count())) &&
                  time.seconds().count() == 0)
          << text;
    }
  }
  EXPECT_GT(accepted, 200);
}

}  // namespace
}  // namespace nightshift::triggers
