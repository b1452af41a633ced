#include "triggers/cron.h"

// date::parse, inlined into ParseRfc3339 at -O2, reads a seconds field that GCC 12 cannot prove
// initialised (date.h:7261: it is, on every path that uses it). The warning is in the library's
// template, not in this file's code.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <date/date.h>
#include <date/tz.h>

#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <sstream>
#include <vector>

namespace nightshift::triggers {
namespace {

using date::days;
using date::local_seconds;
using std::chrono::minutes;

struct FieldSpec {
  const char* name;
  unsigned min, max;
  const char* const* names;  // names[i] is value min + i … ; nullptr: numbers only
  unsigned name_base;        // the value of names[0]
};

constexpr const char* kMonthNames[] = {"jan", "feb", "mar", "apr", "may", "jun",  "jul",
                                       "aug", "sep", "oct", "nov", "dec", nullptr};
constexpr const char* kDayNames[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", nullptr};

constexpr std::array<FieldSpec, 5> kFields = {{
    {"minute", 0, 59, nullptr, 0},
    {"hour", 0, 23, nullptr, 0},
    {"day of month", 1, 31, nullptr, 0},
    {"month", 1, 12, kMonthNames, 1},
    {"day of week", 0, 7, kDayNames, 0},
}};

std::vector<std::string_view> Split(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    size_t at = text.find(sep, start);
    parts.push_back(text.substr(start, at == std::string_view::npos ? at : at - start));
    if (at == std::string_view::npos) return parts;
    start = at + 1;
  }
}

Status FieldError(const FieldSpec& spec, std::string_view field, std::string_view why) {
  return InvalidArgumentError(StrCat("cron: ", spec.name, " field '", field, "': ", why));
}

// A number or (for months and days of the week) a three-letter name, in the field's range.
StatusOr<unsigned> ParseValue(const FieldSpec& spec, std::string_view field,
                              std::string_view text) {
  if (spec.names != nullptr && text.size() == 3 &&
      std::isalpha(static_cast<unsigned char>(text[0]))) {
    std::string lower(text);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (unsigned i = 0; spec.names[i] != nullptr; ++i) {
      if (lower == spec.names[i]) return spec.name_base + i;
    }
    return FieldError(spec, field, StrCat("unknown name '", text, "'"));
  }
  unsigned value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
    return FieldError(spec, field, StrCat("'", text, "' is not a number"));
  }
  if (value < spec.min || value > spec.max) {
    return FieldError(spec, field, StrCat(value, " is out of range ", spec.min, "-", spec.max));
  }
  return value;
}

// One field: a comma-separated list of `*`, `N`, `N-M`, each with an optional `/STEP`
// (`N/STEP` runs from N to the field's maximum). Sets bits[value] for each value it takes.
template <size_t kBits>
Status ParseField(const FieldSpec& spec, std::string_view field, std::bitset<kBits>* bits) {
  if (field.empty()) return FieldError(spec, field, "empty");
  for (std::string_view item : Split(field, ',')) {
    if (item.empty()) return FieldError(spec, field, "an empty list item");
    std::string_view range = item;
    unsigned step = 1;
    if (size_t slash = item.find('/'); slash != std::string_view::npos) {
      range = item.substr(0, slash);
      std::string_view step_text = item.substr(slash + 1);
      auto [end, error] =
          std::from_chars(step_text.data(), step_text.data() + step_text.size(), step);
      if (step_text.empty() || error != std::errc() || end != step_text.data() + step_text.size() ||
          step == 0 || step > spec.max) {
        return FieldError(spec, field,
                          StrCat("step '", step_text, "' must be a number from 1 to ", spec.max));
      }
    }
    unsigned low = spec.min;
    unsigned high = spec.max;
    if (range != "*") {
      size_t dash = range.find('-');
      ASSIGN_OR_RETURN(low, ParseValue(spec, field, range.substr(0, dash)));
      if (dash != std::string_view::npos) {
        ASSIGN_OR_RETURN(high, ParseValue(spec, field, range.substr(dash + 1)));
        if (high < low) {
          return FieldError(spec, field, StrCat("range '", range, "' runs backwards"));
        }
      } else if (range.size() == item.size()) {
        high = low;  // a single value; with a step, it runs to the maximum
      }
    }
    for (unsigned v = low; v <= high; v += step) bits->set(v);
  }
  return OkStatus();
}

constexpr unsigned kMaxDaysInMonth[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

std::string_view Macro(std::string_view text) {
  if (text == "@yearly" || text == "@annually") return "0 0 1 1 *";
  if (text == "@monthly") return "0 0 1 * *";
  if (text == "@weekly") return "0 0 * * 0";
  if (text == "@daily" || text == "@midnight") return "0 0 * * *";
  if (text == "@hourly") return "0 * * * *";
  return {};
}

}  // namespace

StatusOr<CronExpression> CronExpression::Parse(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  if (!text.empty() && text.front() == '@') {
    std::string_view expanded = Macro(text);
    if (expanded.empty()) {
      return InvalidArgumentError(StrCat(
          "cron: unknown macro '", text,
          "' (expected @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)"));
    }
    text = expanded;
  }
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    size_t start = i;
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i > start) fields.push_back(text.substr(start, i - start));
  }
  if (fields.size() != 5) {
    return InvalidArgumentError(
        StrCat("cron: expected 5 fields (minute hour day-of-month month day-of-week), got ",
               fields.size()));
  }
  CronExpression e;
  RETURN_IF_ERROR(ParseField(kFields[0], fields[0], &e.minutes_));
  RETURN_IF_ERROR(ParseField(kFields[1], fields[1], &e.hours_));
  RETURN_IF_ERROR(ParseField(kFields[2], fields[2], &e.days_));
  RETURN_IF_ERROR(ParseField(kFields[3], fields[3], &e.months_));
  std::bitset<8> weekdays;  // 0–7, where 7 is Sunday again
  RETURN_IF_ERROR(ParseField(kFields[4], fields[4], &weekdays));
  for (unsigned d = 0; d < 7; ++d) e.weekdays_[d] = weekdays[d];
  if (weekdays[7]) e.weekdays_[0] = true;
  e.day_star_ = fields[2].front() == '*';
  e.weekday_star_ = fields[4].front() == '*';
  // Only the day of month, in months too short for it, can make an expression that never fires
  // (when both day fields are restricted, any matching weekday fires).
  if (!e.day_star_ && e.weekday_star_) {
    bool fires = false;
    for (unsigned m = 1; m <= 12 && !fires; ++m) {
      for (unsigned d = 1; d <= kMaxDaysInMonth[m] && e.months_[m]; ++d) {
        if (e.days_[d]) {
          fires = true;
          break;
        }
      }
    }
    if (!fires) {
      return InvalidArgumentError(
          StrCat("cron: '", text, "' can never fire: no month it names has that day"));
    }
  }
  return e;
}

bool CronExpression::MatchesDay(unsigned month, unsigned day, unsigned weekday) const {
  if (!months_[month]) return false;
  const bool day_match = days_[day];
  const bool weekday_match = weekdays_[weekday];
  if (day_star_ || weekday_star_) return day_match && weekday_match;
  return day_match || weekday_match;
}

StatusOr<Schedule> Schedule::Make(std::string_view expression, std::string_view timezone) {
  Schedule s;
  ASSIGN_OR_RETURN(s.expression_, CronExpression::Parse(expression));
  s.timezone_ = timezone.empty() ? "UTC" : std::string(timezone);
  try {
    s.zone_ = date::locate_zone(s.timezone_);
  } catch (const std::exception&) {
    return InvalidArgumentError(StrCat("cron: unknown time zone '", s.timezone_,
                                       "' (expected an IANA name such as Europe/Berlin)"));
  }
  return s;
}

namespace {

// The instant local time `local` fires at: itself when the zone has it once; the end of the gap
// when the zone skips it; its first occurrence when the zone repeats it. Never goes backwards as
// `local` goes forwards.
Seconds FireAt(const date::time_zone& zone, local_seconds local) {
  const date::local_info info = zone.get_info(local);
  if (info.result == date::local_info::nonexistent) return info.second.begin;
  return Seconds{local.time_since_epoch() - info.first.offset};  // `first` is the earlier
}

// No zone repeats more than this of its local time when its clocks go back (one hour in
// daylight saving, two in Antarctica/Troll).
constexpr std::chrono::hours kLongestRepeat{3};

}  // namespace

std::optional<Seconds> Schedule::Next(Seconds after) const {
  // Candidates are local minutes, in order; as FireAt never goes backwards, the first candidate
  // firing after `after` is the answer. Local times before `after`'s own fire at or before it,
  // so the scan starts there.
  const local_seconds start = std::chrono::floor<minutes>(zone_->to_local(after));
  const date::local_days first_day = std::chrono::floor<days>(start);
  // An expression that can fire does so within eight years (29 February across a century).
  for (date::local_days day = first_day; day < first_day + days{366 * 9}; day += days{1}) {
    const date::year_month_day ymd{day};
    if (ymd.year() > date::year{9999}) return std::nullopt;
    if (!expression_.MatchesDay(static_cast<unsigned>(ymd.month()),
                                static_cast<unsigned>(ymd.day()),
                                date::weekday{day}.c_encoding())) {
      continue;
    }
    for (unsigned h = 0; h < 24; ++h) {
      if (!expression_.MatchesHour(h)) continue;
      for (unsigned m = 0; m < 60; ++m) {
        if (!expression_.MatchesMinute(m)) continue;
        const local_seconds local = day + std::chrono::hours{h} + minutes{m};
        if (local <= start) continue;
        const Seconds at = FireAt(*zone_, local);
        if (at > after) return at;
      }
    }
  }
  return std::nullopt;
}

std::optional<Seconds> Schedule::Latest(Seconds at) const {
  // The mirror of Next: local minutes backwards from `at`'s own. From inside a repeated stretch
  // of local time, later local times fired earlier (at their first occurrence), so the scan
  // starts that much later and skips what fires after `at`.
  const local_seconds start = std::chrono::floor<minutes>(zone_->to_local(at)) + kLongestRepeat;
  const date::local_days first_day = std::chrono::floor<days>(start);
  for (date::local_days day = first_day; day > first_day - days{366 * 9}; day -= days{1}) {
    const date::year_month_day ymd{day};
    if (ymd.year() < date::year{1970}) return std::nullopt;
    if (!expression_.MatchesDay(static_cast<unsigned>(ymd.month()),
                                static_cast<unsigned>(ymd.day()),
                                date::weekday{day}.c_encoding())) {
      continue;
    }
    for (int h = 23; h >= 0; --h) {
      if (!expression_.MatchesHour(static_cast<unsigned>(h))) continue;
      for (int m = 59; m >= 0; --m) {
        if (!expression_.MatchesMinute(static_cast<unsigned>(m))) continue;
        const local_seconds local = day + std::chrono::hours{h} + minutes{m};
        if (local > start) continue;
        const Seconds fire = FireAt(*zone_, local);
        if (fire <= at) return fire;
      }
    }
  }
  return std::nullopt;
}

std::string Schedule::Format(Seconds at) const {
  const std::chrono::seconds offset = zone_->get_info(at).offset;
  const local_seconds local{at.time_since_epoch() + offset};
  // Offsets are within ±26 hours.
  const int total = static_cast<int>(offset.count() / 60);
  const int magnitude = total < 0 ? -total : total;
  char zone[16];
  std::snprintf(zone, sizeof zone, "%c%02d:%02d", total < 0 ? '-' : '+', magnitude / 60,
                magnitude % 60);
  return date::format("%FT%T", local) + zone;
}

StatusOr<Misfire> ParseMisfire(std::string_view text) {
  if (text == "run_once") return Misfire::kRunOnce;
  if (text == "skip") return Misfire::kSkip;
  return InvalidArgumentError(StrCat("misfire: '", text, "' is not run_once or skip"));
}

Owed OwedAt(const Schedule& schedule, Seconds last_due, Seconds now, Misfire misfire) {
  std::optional<Seconds> latest = schedule.Latest(now);  // the latest due time at or before now
  if (latest && *latest <= last_due) latest.reset();
  std::optional<Seconds> due = schedule.Next(now);
  Owed owed{.next = due.value_or(Seconds::max())};
  if (latest && (misfire == Misfire::kRunOnce || now - *latest <= kMisfireGrace)) {
    owed.fire = latest;
  }
  return owed;
}

StatusOr<Seconds> ParseRfc3339(std::string_view text) {
  std::string normal(text);
  if (!normal.empty() && (normal.back() == 'Z' || normal.back() == 'z')) {
    normal.pop_back();
    normal += "+00:00";
  }
  if (normal.size() > 10 && normal[10] == 't') normal[10] = 'T';
  std::istringstream in(normal);
  date::sys_time<std::chrono::nanoseconds> parsed;
  in >> date::parse("%FT%T%Ez", parsed);
  if (in.fail() || in.peek() != std::char_traits<char>::eof()) {
    return InvalidArgumentError(
        StrCat("'", text, "' is not an RFC 3339 time (e.g. 2026-03-29T01:30:00Z)"));
  }
  return std::chrono::floor<std::chrono::seconds>(parsed);
}

}  // namespace nightshift::triggers
