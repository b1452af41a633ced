#pragma once

#include <string_view>

#include "core/status.h"
#include "nlohmann/json.hpp"

namespace nightshift {

using Json = nlohmann::json;

// Parses untrusted text. InvalidArgument with the parser's position on malformed input.
StatusOr<Json> ParseJson(std::string_view text);

// Field accessors for untrusted objects: InvalidArgument naming the field when it has the
// wrong type; `fallback` when it is absent or null.
StatusOr<std::string> JsonString(const Json& object, std::string_view field,
                                 std::string_view fallback = "");
StatusOr<int64_t> JsonInt(const Json& object, std::string_view field, int64_t fallback);

}  // namespace nightshift
