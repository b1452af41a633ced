#pragma once

// Cron schedules: when a schedule trigger fires (docs/triggers.md).
//
// A CronExpression is the five fields of Vixie cron — minute, hour, day of month, month, day of
// week — with ranges, steps, lists, month and day names and the @hourly … @yearly macros. A
// Schedule is an expression in an IANA time zone (read from the system's tz database through
// Howard Hinnant's date/tz) and answers one question: the first fire time after an instant.

#include <bitset>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace date {
class time_zone;
}  // namespace date

namespace nightshift::triggers {

using Seconds = std::chrono::sys_seconds;

class CronExpression {
 public:
  // "*/15 9-17 * * mon-fri", "0 3 1,15 * *", "@daily". InvalidArgument naming the field and
  // the reason for a bad one, and for an expression that can never fire ("0 0 30 2 *").
  static StatusOr<CronExpression> Parse(std::string_view text);

  // Whether a local date matches the day fields. Vixie cron's rule: when both day of month and
  // day of week are restricted (neither field starts with '*'), a day matching either fires;
  // otherwise both must match.
  bool MatchesDay(unsigned month, unsigned day, unsigned weekday) const;  // weekday 0: Sunday
  bool MatchesHour(unsigned hour) const { return hours_[hour]; }
  bool MatchesMinute(unsigned minute) const { return minutes_[minute]; }

 private:
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;     // 1–31
  std::bitset<13> months_;   // 1–12
  std::bitset<7> weekdays_;  // 0 (Sunday) – 6; 7 is read as 0
  bool day_star_ = false;    // the day-of-month field starts with '*'
  bool weekday_star_ = false;
};

class Schedule {
 public:
  // `timezone` is an IANA name ("Europe/Berlin"); empty means UTC. InvalidArgument for a bad
  // expression or an unknown zone.
  static StatusOr<Schedule> Make(std::string_view expression, std::string_view timezone);

  // The first fire time strictly after `after`. Local times the zone skips (a clock moved
  // forward) fire once, at the end of the gap; local times it repeats (a clock moved back) fire
  // once, at their first occurrence. nullopt only past the year 9999.
  std::optional<Seconds> Next(Seconds after) const;

  // The last fire time at or before `at` (the same rules, backwards). nullopt before 1970.
  std::optional<Seconds> Latest(Seconds at) const;

  // `at` as RFC 3339 with the zone's UTC offset at that instant: 2026-03-30T03:00:00+02:00.
  std::string Format(Seconds at) const;

  const std::string& timezone() const { return timezone_; }

 private:
  CronExpression expression_;
  const date::time_zone* zone_ = nullptr;
  std::string timezone_;
};

// What a schedule does about due times that passed while the server was down.
enum class Misfire {
  kRunOnce,  // fire once, for the latest of them
  kSkip,     // fire none of them; wait for the next
};
StatusOr<Misfire> ParseMisfire(std::string_view text);  // "run_once" or "skip"

// A due time this late is still on time, not a misfire: the scheduler's own delay.
inline constexpr std::chrono::seconds kMisfireGrace{60};

struct Owed {
  std::optional<Seconds> fire;  // the due time to fire for now (the key of that fire), if any
  Seconds next;                 // the first due time after `now`
};

// What `schedule` owes at `now`, when it last fired for due time `last_due` (or, never having
// fired, was created then). A due time past by at most kMisfireGrace is fired under either
// policy; older ones follow `misfire`. However long the gap, at most one fire is owed.
Owed OwedAt(const Schedule& schedule, Seconds last_due, Seconds now, Misfire misfire);

// "2026-03-29T01:30:00Z", "2026-03-29T03:30:00+02:00", fractions of a second dropped.
// InvalidArgument for anything else.
StatusOr<Seconds> ParseRfc3339(std::string_view text);

}  // namespace nightshift::triggers
