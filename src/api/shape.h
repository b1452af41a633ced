#pragma once

// Typed JSON shapes. A struct lists its fields once — name, member, meaning — in a static
// `Fields()`; ToJson, FromJson and Describe all work from that list, so what is written, what is
// read and what is documented cannot drift apart.
//
// Reading is strict on types and tolerant of what it does not know: a field of the wrong type is
// an InvalidArgument naming it ("'lease.owner' must be a string"); unknown fields are ignored,
// and an absent or null field keeps the member's default (unless the field is required), so an
// older reader understands a newer writer. Nothing here throws.
//
//   struct Repository {
//     int64_t id = 0;
//     std::string name;
//     static constexpr auto Fields() {
//       return std::tuple{Field("id", &Repository::id, "its id"),
//                         Field("name", &Repository::name, "its unique name")};
//     }
//   };

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/json.h"
#include "core/status.h"

namespace nightshift::api {

// A point in time, sent as RFC 3339 UTC with milliseconds: "2026-11-25T12:00:00.123Z".
struct Timestamp {
  int64_t ms = 0;  // since the Unix epoch
  friend bool operator==(const Timestamp&, const Timestamp&) = default;
};

// "2026-11-25T12:00:00.123Z" (the milliseconds may be absent) → milliseconds since the epoch.
// nullopt for any other text.
std::optional<int64_t> ParseTimestampMs(std::string_view text);

// How a field is written, and what reading it requires.
enum class Presence {
  kDefault,   // always written; when absent or null, reading keeps the member's default
  kRequired,  // always written; absent or null is an error when reading
  kOmitted,   // a std::optional, not written when empty
  kNullable,  // a std::optional, written as null when empty
};

template <typename S, typename T>
struct FieldSpec {
  std::string_view name;
  T S::*member;
  std::string_view meaning;
  Presence presence;
};

template <typename T>
inline constexpr bool kIsOptional = false;
template <typename T>
inline constexpr bool kIsOptional<std::optional<T>> = true;

// A field: a std::optional member is omitted when empty, any other is always written.
template <typename S, typename T>
constexpr FieldSpec<S, T> Field(std::string_view name, T S::*member, std::string_view meaning) {
  return {name, member, meaning, kIsOptional<T> ? Presence::kOmitted : Presence::kDefault};
}
// A field that must be present when read.
template <typename S, typename T>
constexpr FieldSpec<S, T> RequiredField(std::string_view name, T S::*member,
                                        std::string_view meaning) {
  static_assert(!kIsOptional<T>, "a required field is not optional");
  return {name, member, meaning, Presence::kRequired};
}
// A std::optional field written as null when empty.
template <typename S, typename T>
constexpr FieldSpec<S, T> NullableField(std::string_view name, T S::*member,
                                        std::string_view meaning) {
  static_assert(kIsOptional<T>, "a nullable field is a std::optional");
  return {name, member, meaning, Presence::kNullable};
}

// A struct with a field list.
template <typename S>
concept Shape = requires {
  S::Fields();
};

// What a field is, for documentation and tests: its JSON type ("string", "integer", "number",
// "boolean", "timestamp", "any", "object", "[string]", "[object]"…) and, for an object or a list
// of objects, the fields inside.
struct FieldInfo {
  std::string name;
  std::string type;
  Presence presence = Presence::kDefault;
  std::string meaning;
  std::vector<FieldInfo> fields;
};

namespace internal {

Status WrongType(std::string_view path, std::string_view type);
std::string Join(std::string_view path, std::string_view name);

template <typename T>
struct Codec;

// The type of a field's value: T for T and for std::optional<T>.
template <typename T>
struct ValueOf {
  using type = T;
};
template <typename T>
struct ValueOf<std::optional<T>> {
  using type = T;
};

template <>
struct Codec<std::string> {
  static Json Write(const std::string& v) { return v; }
  static Status Read(const Json& j, std::string_view path, std::string& out) {
    if (!j.is_string()) return WrongType(path, "a string");
    out = j.get<std::string>();
    return OkStatus();
  }
  static std::string Type() { return "string"; }
  static std::vector<FieldInfo> Inner() { return {}; }
};

template <>
struct Codec<bool> {
  static Json Write(bool v) { return v; }
  static Status Read(const Json& j, std::string_view path, bool& out) {
    if (!j.is_boolean()) return WrongType(path, "a boolean");
    out = j.get<bool>();
    return OkStatus();
  }
  static std::string Type() { return "boolean"; }
  static std::vector<FieldInfo> Inner() { return {}; }
};

template <typename T>
requires(std::is_integral_v<T> && !std::is_same_v<T, bool>) struct Codec<T> {
  static Json Write(T v) { return v; }
  static Status Read(const Json& j, std::string_view path, T& out) {
    if (!j.is_number_integer()) return WrongType(path, "an integer");
    constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<T>::max());
    if (j.is_number_unsigned()) {
      if (j.get<uint64_t>() > kMax) return WrongType(path, "a smaller integer");
    } else {
      int64_t v = j.get<int64_t>();
      if (v < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
          (v > 0 && static_cast<uint64_t>(v) > kMax)) {
        return WrongType(path, "a smaller integer");
      }
    }
    out = j.get<T>();
    return OkStatus();
  }
  static std::string Type() { return "integer"; }
  static std::vector<FieldInfo> Inner() { return {}; }
};

template <>
struct Codec<double> {
  static Json Write(double v) { return v; }
  static Status Read(const Json& j, std::string_view path, double& out) {
    if (!j.is_number()) return WrongType(path, "a number");
    out = j.get<double>();
    return OkStatus();
  }
  static std::string Type() { return "number"; }
  static std::vector<FieldInfo> Inner() { return {}; }
};

template <>
struct Codec<Timestamp> {
  static Json Write(const Timestamp& v);
  static Status Read(const Json& j, std::string_view path, Timestamp& out);
  static std::string Type() { return "timestamp"; }
  static std::vector<FieldInfo> Inner() { return {}; }
};

// Any JSON value, taken as it is.
template <>
struct Codec<Json> {
  static Json Write(const Json& v) { return v; }
  static Status Read(const Json& j, std::string_view, Json& out) {
    out = j;
    return OkStatus();
  }
  static std::string Type() { return "any"; }
  static std::vector<FieldInfo> Inner() { return {}; }
};

template <typename T>
struct Codec<std::vector<T>> {
  static Json Write(const std::vector<T>& v) {
    Json out = Json::array();
    for (const T& item : v) out.push_back(Codec<T>::Write(item));
    return out;
  }
  static Status Read(const Json& j, std::string_view path, std::vector<T>& out) {
    if (!j.is_array()) return WrongType(path, "an array");
    out.clear();
    out.reserve(j.size());
    for (size_t i = 0; i < j.size(); ++i) {
      T item{};
      RETURN_IF_ERROR(Codec<T>::Read(j[i], StrCat(path, "[", i, "]"), item));
      out.push_back(std::move(item));
    }
    return OkStatus();
  }
  static std::string Type() { return StrCat("[", Codec<T>::Type(), "]"); }
  static std::vector<FieldInfo> Inner() { return Codec<T>::Inner(); }
};

template <Shape S>
struct Codec<S> {
  static Json Write(const S& value) {
    Json out = Json::object();
    std::apply([&](const auto&... field) { (WriteField(out, value, field), ...); }, S::Fields());
    return out;
  }
  static Status Read(const Json& j, std::string_view path, S& out) {
    if (!j.is_object()) return WrongType(path, "an object");
    Status status;  // the first error; the fields after it are not read
    std::apply(
        [&](const auto&... field) {
          (void)((status = ReadField(j, path, out, field)).ok() && ...);
        },
        S::Fields());
    return status;
  }
  static std::string Type() { return "object"; }
  static std::vector<FieldInfo> Inner() {
    std::vector<FieldInfo> out;
    std::apply([&](const auto&... field) { (out.push_back(Describe(field)), ...); }, S::Fields());
    return out;
  }

 private:
  template <typename T>
  static void WriteField(Json& out, const S& value, const FieldSpec<S, T>& field) {
    const T& member = value.*field.member;
    if constexpr (kIsOptional<T>) {
      if (member.has_value()) {
        out[field.name] = Codec<typename T::value_type>::Write(*member);
      } else if (field.presence == Presence::kNullable) {
        out[field.name] = nullptr;
      }
    } else {
      out[field.name] = Codec<T>::Write(member);
    }
  }

  template <typename T>
  static Status ReadField(const Json& j, std::string_view path, S& out,
                          const FieldSpec<S, T>& field) {
    const std::string where = Join(path, field.name);
    auto it = j.find(field.name);
    if (it == j.end() || it->is_null()) {
      if (field.presence == Presence::kRequired) {
        return InvalidArgumentError(StrCat("'", where, "' is missing"));
      }
      return OkStatus();
    }
    T& member = out.*field.member;
    if constexpr (kIsOptional<T>) {
      typename T::value_type value{};
      RETURN_IF_ERROR(Codec<typename T::value_type>::Read(*it, where, value));
      member = std::move(value);
      return OkStatus();
    } else {
      return Codec<T>::Read(*it, where, member);
    }
  }

  template <typename T>
  static FieldInfo Describe(const FieldSpec<S, T>& field) {
    using Value = typename ValueOf<T>::type;
    return FieldInfo{.name = std::string(field.name),
                     .type = Codec<Value>::Type(),
                     .presence = field.presence,
                     .meaning = std::string(field.meaning),
                     .fields = Codec<Value>::Inner()};
  }
};

}  // namespace internal

// The shape as a JSON object (invalid UTF-8 in strings is kept; serialize with
// Json::error_handler_t::replace where it may occur).
template <Shape S>
Json ToJson(const S& value) {
  return internal::Codec<S>::Write(value);
}

// Reads `json` as the shape. InvalidArgument when it is not an object, a field has the wrong type
// or a required field is missing; the message names the field.
template <Shape S>
StatusOr<S> FromJson(const Json& json) {
  S out{};
  if (!json.is_object()) return InvalidArgumentError("expected a JSON object");
  RETURN_IF_ERROR(internal::Codec<S>::Read(json, "", out));
  return out;
}

// The shape's fields, in the order they are declared.
template <Shape S>
std::vector<FieldInfo> Describe() {
  return internal::Codec<S>::Inner();
}

}  // namespace nightshift::api
