#include "api/shape.h"

#include <ctime>

#include "core/clock.h"

namespace nightshift::api {
namespace {

// Reads exactly `digits` decimal digits at `pos`.
std::optional<int> Digits(std::string_view text, size_t pos, size_t digits) {
  if (pos + digits > text.size()) return std::nullopt;
  int value = 0;
  for (size_t i = pos; i < pos + digits; ++i) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

}  // namespace

std::optional<int64_t> ParseTimestampMs(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS[.mmm]Z
  auto year = Digits(text, 0, 4), month = Digits(text, 5, 2), day = Digits(text, 8, 2);
  auto hour = Digits(text, 11, 2), minute = Digits(text, 14, 2), second = Digits(text, 17, 2);
  if (!year || !month || !day || !hour || !minute || !second || text.size() < 20 ||
      text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' || text[16] != ':') {
    return std::nullopt;
  }
  int millis = 0;
  size_t end = 19;
  if (text[19] == '.') {
    auto fraction = Digits(text, 20, 3);
    if (!fraction) return std::nullopt;
    millis = *fraction;
    end = 23;
  }
  if (text.size() != end + 1 || text[end] != 'Z') return std::nullopt;
  if (*month < 1 || *month > 12 || *day < 1 || *day > 31 || *hour > 23 || *minute > 59 ||
      *second > 60) {
    return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = *year - 1900;
  tm.tm_mon = *month - 1;
  tm.tm_mday = *day;
  tm.tm_hour = *hour;
  tm.tm_min = *minute;
  tm.tm_sec = *second;
  const std::time_t seconds = timegm(&tm);
  return int64_t{seconds} * 1000 + millis;
}

namespace internal {

Status WrongType(std::string_view path, std::string_view type) {
  return InvalidArgumentError(StrCat("'", path, "' must be ", type));
}

std::string Join(std::string_view path, std::string_view name) {
  return path.empty() ? std::string(name) : StrCat(path, ".", name);
}

Json Codec<Timestamp>::Write(const Timestamp& v) { return FormatTimestampMs(v.ms); }

Status Codec<Timestamp>::Read(const Json& j, std::string_view path, Timestamp& out) {
  std::optional<int64_t> ms;
  if (j.is_string()) ms = ParseTimestampMs(j.get_ref<const std::string&>());
  if (!ms) return WrongType(path, "a timestamp (\"2026-11-25T12:00:00.000Z\")");
  out.ms = *ms;
  return OkStatus();
}

}  // namespace internal
}  // namespace nightshift::api
