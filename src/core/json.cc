#include "core/json.h"

namespace nightshift {

StatusOr<Json> ParseJson(std::string_view text) {
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::parse_error& e) {
    return InvalidArgumentError(StrCat("malformed JSON at byte ", e.byte));
  }
}

StatusOr<std::string> JsonString(const Json& object, std::string_view field,
                                 std::string_view fallback) {
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return std::string(fallback);
  if (!it->is_string()) return InvalidArgumentError(StrCat("'", field, "' must be a string"));
  return it->get<std::string>();
}

StatusOr<int64_t> JsonInt(const Json& object, std::string_view field, int64_t fallback) {
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return fallback;
  if (!it->is_number_integer()) {
    return InvalidArgumentError(StrCat("'", field, "' must be an integer"));
  }
  return it->get<int64_t>();
}

}  // namespace nightshift
