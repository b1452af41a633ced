#pragma once

// Showing what the server sent on a terminal. Everything it sent is untrusted text: shown on one
// line where a line is expected, never interpreted.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/shape.h"
#include "core/json.h"

namespace nightshift::cli {

// JSON as text (indent -1: one line); invalid UTF-8 is replaced.
std::string Dump(const Json& json, int indent = -1);

// `text`, or `fallback` when it is empty.
std::string Or(const std::string& text, std::string_view fallback = "-");

// One line of at most `max_bytes` (0: no limit): control characters become spaces, and a cut
// never splits a UTF-8 sequence.
std::string OneLine(std::string_view s, size_t max_bytes = 0);

// A timestamp as local time, "2026-11-25 13:00:00"; "-" when absent (0 or null).
std::string LocalTime(api::Timestamp time);
std::string LocalTime(const std::optional<api::Timestamp>& time);

// A timestamp as the API writes it, "2026-11-25T12:00:00.000Z"; "-" when absent.
std::string UtcTime(api::Timestamp time);

// Prints rows under a header, each column as wide as its widest cell, two spaces apart.
void PrintTable(const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows);

// A line on stderr, after whatever is buffered for stdout, so interleaved lines keep their order.
void ToStderr(const std::string& line);

}  // namespace nightshift::cli
