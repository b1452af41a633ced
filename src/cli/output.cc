#include "cli/output.h"

#include <algorithm>
#include <ctime>
#include <iostream>

#include "core/clock.h"

namespace nightshift::cli {

std::string Dump(const Json& json, int indent) {
  return json.dump(indent, ' ', false, Json::error_handler_t::replace);
}

std::string Or(const std::string& text, std::string_view fallback) {
  return text.empty() ? std::string(fallback) : text;
}

std::string OneLine(std::string_view s, size_t max_bytes) {
  std::string out;
  for (char c : s) out.push_back(static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? ' ' : c);
  if (max_bytes > 3 && out.size() > max_bytes) {
    size_t cut = max_bytes - 3;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out.resize(cut);
    out += "...";
  }
  return out;
}

std::string LocalTime(api::Timestamp time) {
  if (time.ms == 0) return "-";
  const std::time_t t = static_cast<std::time_t>(time.ms / 1000);
  std::tm local{};
  char buf[64];
  if (localtime_r(&t, &local) == nullptr ||
      std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &local) == 0) {
    return UtcTime(time);
  }
  return buf;
}

std::string LocalTime(const std::optional<api::Timestamp>& time) {
  return time ? LocalTime(*time) : "-";
}

std::string UtcTime(api::Timestamp time) { return time.ms == 0 ? "-" : FormatTimestampMs(time.ms); }

void PrintTable(const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths(header.size());
  for (size_t i = 0; i < header.size(); ++i) widths[i] = header[i].size();
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  auto print_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size() + 2, ' ');
    }
    std::cout << line << '\n';
  };
  print_row(header);
  for (const auto& row : rows) print_row(row);
}

void ToStderr(const std::string& line) {
  std::cout.flush();
  std::cerr << line << '\n';
}

}  // namespace nightshift::cli
