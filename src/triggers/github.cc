#include "triggers/github.h"

#include <sodium.h>

#include <algorithm>
#include <array>

#include "core/json.h"

namespace nightshift::triggers {
namespace {

constexpr std::string_view kSignaturePrefix = "sha256=";

// A field of the event and where GitHub's body has it (a JSON pointer).
struct FieldSource {
  const char* name;
  const char* pointer;
};

struct EventType {
  const char* type;
  std::vector<const char*> actions;  // the actions that start runs; empty: any (push)
  const char* item_kind;             // "branch", "issue", "pull_request"
  const char* item_field;            // the field naming the item
  std::vector<FieldSource> fields;
};

const std::vector<EventType>& EventTypes() {
  static const auto* types = new std::vector<EventType>{
      {"workflow_run",
       {"completed"},
       "branch",
       "branch",
       {{"branch", "/workflow_run/head_branch"},
        {"sha", "/workflow_run/head_sha"},
        {"workflow", "/workflow/name"},
        {"conclusion", "/workflow_run/conclusion"},
        {"run_id", "/workflow_run/id"},
        {"run_url", "/workflow_run/html_url"},
        {"trigger", "/workflow_run/event"}}},
      {"check_suite",
       {"completed"},
       "branch",
       "branch",
       {{"branch", "/check_suite/head_branch"},
        {"sha", "/check_suite/head_sha"},
        {"conclusion", "/check_suite/conclusion"},
        {"app", "/check_suite/app/name"}}},
      {"issues",
       {"opened", "labeled", "assigned"},
       "issue",
       "number",
       {{"number", "/issue/number"},
        {"title", "/issue/title"},
        {"body", "/issue/body"},
        {"url", "/issue/html_url"},
        {"author", "/issue/user/login"},
        {"label", "/label/name"},
        {"assignee", "/assignee/login"}}},
      {"issue_comment",
       {"created"},
       "issue",
       "number",
       {{"number", "/issue/number"},
        {"title", "/issue/title"},
        {"url", "/comment/html_url"},
        {"comment.body", "/comment/body"},
        {"comment.author", "/comment/user/login"},
        {"pull_request_url", "/issue/pull_request/html_url"}}},
      {"pull_request_review_comment",
       {"created"},
       "pull_request",
       "number",
       {{"number", "/pull_request/number"},
        {"title", "/pull_request/title"},
        {"branch", "/pull_request/head/ref"},
        {"url", "/comment/html_url"},
        {"path", "/comment/path"},
        {"comment.body", "/comment/body"},
        {"comment.author", "/comment/user/login"}}},
      {"pull_request",
       {"opened", "reopened", "synchronize", "labeled", "ready_for_review"},
       "pull_request",
       "number",
       {{"number", "/pull_request/number"},
        {"title", "/pull_request/title"},
        {"body", "/pull_request/body"},
        {"branch", "/pull_request/head/ref"},
        {"base", "/pull_request/base/ref"},
        {"sha", "/pull_request/head/sha"},
        {"url", "/pull_request/html_url"},
        {"author", "/pull_request/user/login"},
        {"label", "/label/name"}}},
      {"push",
       {},
       "branch",
       "branch",
       {{"branch", "/ref"}, {"sha", "/after"}, {"before", "/before"}, {"compare", "/compare"}}},
  };
  return *types;
}

const EventType* FindType(std::string_view type) {
  for (const EventType& t : EventTypes()) {
    if (type == t.type) return &t;
  }
  return nullptr;
}

// The value at `pointer` as text: strings as they are, numbers and booleans printed, anything
// else (absent, null, an object) empty.
std::string Text(const Json& body, const char* pointer) {
  const Json::json_pointer at(pointer);
  if (!body.contains(at)) return "";
  const Json& value = body.at(at);
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_integer()) return std::to_string(value.get<int64_t>());
  if (value.is_boolean()) return value.get<bool>() ? "true" : "false";
  return "";
}

}  // namespace

Status VerifyGitHubSignature(std::string_view secret, std::string_view body,
                             std::string_view signature_header) {
  if (signature_header.empty()) return UnauthenticatedError("missing X-Hub-Signature-256");
  std::array<unsigned char, crypto_auth_hmacsha256_BYTES> given{};
  size_t given_length = 0;
  if (signature_header.substr(0, kSignaturePrefix.size()) != kSignaturePrefix ||
      signature_header.size() != kSignaturePrefix.size() + 2 * given.size() ||
      sodium_hex2bin(given.data(), given.size(), signature_header.data() + kSignaturePrefix.size(),
                     2 * given.size(), nullptr, &given_length, nullptr) != 0 ||
      given_length != given.size()) {
    return UnauthenticatedError(
        "malformed X-Hub-Signature-256 (expected sha256= and 64 hex digits)");
  }
  std::array<unsigned char, crypto_auth_hmacsha256_BYTES> want{};
  crypto_auth_hmacsha256_state state;
  crypto_auth_hmacsha256_init(&state, reinterpret_cast<const unsigned char*>(secret.data()),
                              secret.size());
  crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(body.data()),
                                body.size());
  crypto_auth_hmacsha256_final(&state, want.data());
  if (sodium_memcmp(given.data(), want.data(), want.size()) != 0) {
    return UnauthenticatedError("X-Hub-Signature-256 does not match the body");
  }
  return OkStatus();
}

StatusOr<std::optional<TriggerEvent>> ParseGitHubEvent(std::string_view event_type,
                                                       std::string_view delivery,
                                                       std::string_view body) {
  if (event_type == "ping") return std::optional<TriggerEvent>();
  const EventType* type = FindType(event_type);
  if (type == nullptr) {
    return NotFoundError(
        StrCat("github: event type '", event_type, "' is not one Nightshift handles"));
  }
  auto parsed = ParseJson(body);
  if (!parsed.ok()) return InvalidArgumentError(StrCat("github: ", parsed.status().message()));
  const Json& json = *parsed;
  if (!json.is_object()) return InvalidArgumentError("github: the body is not a JSON object");
  const std::string action = Text(json, "/action");
  if (!type->actions.empty() &&
      std::find(type->actions.begin(), type->actions.end(), action) == type->actions.end()) {
    return std::optional<TriggerEvent>();
  }
  TriggerEvent event{.source = "github",
                     .type = type->type,
                     .delivery = std::string(delivery),
                     .repository = Text(json, "/repository/full_name"),
                     .actor = Text(json, "/sender/login")};
  if (event.repository.empty()) {
    return InvalidArgumentError(
        StrCat("github: this ", type->type, " event has no repository.full_name"));
  }
  for (const char* url : {"/repository/clone_url", "/repository/ssh_url", "/repository/html_url"}) {
    if (std::string u = Text(json, url); !u.empty()) event.repository_urls.push_back(std::move(u));
  }
  event.fields["action"] = action;
  event.fields["repository"] = event.repository;
  event.fields["actor"] = event.actor;
  for (const FieldSource& field : type->fields)
    event.fields[field.name] = Text(json, field.pointer);
  if (event.type == "push") {
    std::string& ref = event.fields["branch"];
    // Tags and deleted branches start nothing.
    if (ref.rfind("refs/heads/", 0) != 0 || Text(json, "/deleted") == "true") {
      return std::optional<TriggerEvent>();
    }
    ref.erase(0, std::string_view("refs/heads/").size());
  }
  const std::string& item = event.fields[type->item_field];
  if (item.empty()) {
    return InvalidArgumentError(
        StrCat("github: this ", type->type, " event has no ", type->item_field));
  }
  event.item = StrCat(type->item_kind, ":", item);
  return std::optional<TriggerEvent>(std::move(event));
}

const std::vector<std::string>& GitHubEventFields(std::string_view event_type) {
  static const auto* fields = [] {
    auto* all = new std::map<std::string, std::vector<std::string>, std::less<>>();
    for (const EventType& type : EventTypes()) {
      std::vector<std::string>& names = (*all)[type.type];
      names = {"action", "repository", "actor"};
      for (const FieldSource& field : type.fields) names.push_back(field.name);
    }
    return all;
  }();
  static const std::vector<std::string> kNone;
  auto it = fields->find(event_type);
  return it == fields->end() ? kNone : it->second;
}

}  // namespace nightshift::triggers
