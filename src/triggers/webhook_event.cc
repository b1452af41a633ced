#include "triggers/webhook_event.h"

#include <sodium.h>

#include <algorithm>
#include <array>

namespace nightshift::triggers {

const EventTypeSpec* SourceSpec::Find(std::string_view type) const {
  for (const EventTypeSpec& t : types) {
    if (type == t.type) return &t;
  }
  return nullptr;
}

std::vector<std::string> SourceSpec::FieldsOf(std::string_view type) const {
  const EventTypeSpec* t = Find(type);
  if (t == nullptr) return {};
  std::vector<std::string> names = {"action", "repository", "actor"};
  for (const FieldSource& field : t->fields) names.push_back(field.name);
  return names;
}

std::string TextAt(const Json& body, const char* pointer) {
  const Json::json_pointer at(pointer);
  if (!body.contains(at)) return "";
  const Json& value = body.at(at);
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_integer()) return std::to_string(value.get<int64_t>());
  if (value.is_boolean()) return value.get<bool>() ? "true" : "false";
  return "";
}

StatusOr<std::optional<TriggerEvent>> ReadEvent(const SourceSpec& spec, const EventTypeSpec& type,
                                                std::string_view delivery, const Json& body) {
  const std::string action = type.action_pointer ? TextAt(body, type.action_pointer) : "";
  if (!type.actions.empty() &&
      std::find(type.actions.begin(), type.actions.end(), action) == type.actions.end()) {
    return std::optional<TriggerEvent>();
  }
  TriggerEvent event{.source = spec.source,
                     .type = type.type,
                     .delivery = std::string(delivery),
                     .repository = TextAt(body, spec.repository_pointer),
                     .actor = TextAt(body, spec.actor_pointer)};
  if (event.repository.empty()) {
    std::string where(std::string_view(spec.repository_pointer).substr(1));
    std::replace(where.begin(), where.end(), '/', '.');
    return InvalidArgumentError(StrCat(spec.source, ": this ", type.type, " event has no ", where));
  }
  for (const char* url : spec.url_pointers) {
    if (std::string u = TextAt(body, url); !u.empty())
      event.repository_urls.push_back(std::move(u));
  }
  event.fields["action"] = action;
  event.fields["repository"] = event.repository;
  event.fields["actor"] = event.actor;
  for (const FieldSource& field : type.fields)
    event.fields[field.name] = TextAt(body, field.pointer);
  return std::optional<TriggerEvent>(std::move(event));
}

Status SetItem(const EventTypeSpec& type, TriggerEvent& event, std::string_view kind) {
  const std::string& item = event.fields[type.item_field];
  if (item.empty()) {
    return InvalidArgumentError(
        StrCat(event.source, ": this ", type.type, " event has no ", type.item_field));
  }
  event.item = StrCat(kind.empty() ? std::string_view(type.item_kind) : kind, ":", item);
  return OkStatus();
}

std::optional<std::string> FailedCiRun(const TriggerEvent& event) {
  auto field = [&](const char* name) {
    auto it = event.fields.find(name);
    return it == event.fields.end() ? std::string() : it->second;
  };
  if (event.source == "github" && event.type == "workflow_run" &&
      field("conclusion") == "failure") {
    return field("run_id");
  }
  if (event.source == "gitlab" && event.type == "pipeline" && field("status") == "failed") {
    return field("pipeline_id");
  }
  return std::nullopt;
}

StatusOr<Json> ParseBody(std::string_view source, std::string_view body) {
  auto parsed = ParseJson(body);
  if (!parsed.ok()) return InvalidArgumentError(StrCat(source, ": ", parsed.status().message()));
  if (!parsed->is_object())
    return InvalidArgumentError(StrCat(source, ": the body is not a JSON object"));
  return std::move(*parsed);
}

Status VerifyHmacSha256(std::string_view secret, std::string_view message,
                        std::string_view header_name, std::string_view prefix,
                        std::string_view header) {
  if (header.empty()) return UnauthenticatedError(StrCat("missing ", header_name));
  std::array<unsigned char, crypto_auth_hmacsha256_BYTES> given{};
  size_t given_length = 0;
  if (header.substr(0, prefix.size()) != prefix ||
      header.size() != prefix.size() + 2 * given.size() ||
      sodium_hex2bin(given.data(), given.size(), header.data() + prefix.size(), 2 * given.size(),
                     nullptr, &given_length, nullptr) != 0 ||
      given_length != given.size()) {
    return UnauthenticatedError(
        StrCat("malformed ", header_name, " (expected ", prefix, " and 64 hex digits)"));
  }
  std::array<unsigned char, crypto_auth_hmacsha256_BYTES> want{};
  crypto_auth_hmacsha256_state state;
  crypto_auth_hmacsha256_init(&state, reinterpret_cast<const unsigned char*>(secret.data()),
                              secret.size());
  crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(message.data()),
                                message.size());
  crypto_auth_hmacsha256_final(&state, want.data());
  if (sodium_memcmp(given.data(), want.data(), want.size()) != 0) {
    return UnauthenticatedError(StrCat(header_name, " does not match the body"));
  }
  return OkStatus();
}

}  // namespace nightshift::triggers
