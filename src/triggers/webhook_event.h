#pragma once

// What a webhook delivery becomes, whatever its source: a TriggerEvent with the fields its type
// documents. Each source (github.h, gitlab.h) describes where its bodies keep them in a
// SourceSpec; ReadEvent reads a body through it, as hostile data.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/status.h"

namespace nightshift::triggers {

// One event from outside, as the router sees it, whatever its source.
struct TriggerEvent {
  std::string source;                        // "github", "gitlab"
  std::string type;                          // "workflow_run", "pipeline", …
  std::string delivery;                      // the source's delivery id: redelivered, the same
  std::string repository;                    // "owner/name", "group/subgroup/project"
  std::vector<std::string> repository_urls;  // clone, ssh and web URLs, to match a registered one
  std::string actor;                         // who caused it
  // The item it is about, for coalescing: "branch:main", "issue:7", "pull_request:12".
  std::string item;
  std::map<std::string, std::string> fields;  // every documented field of the type
};

// A field of an event type and where the source's body has it (a JSON pointer).
struct FieldSource {
  const char* name;
  const char* pointer;
};

struct EventTypeSpec {
  const char* type;
  const char* action_pointer;        // where the action is; nullptr: the type has none
  std::vector<const char*> actions;  // the actions that start runs; empty: any
  const char* item_kind;             // "branch", "issue", "pull_request"; nullptr: per event
  const char* item_field;            // the field naming the item
  std::vector<FieldSource> fields;
};

struct SourceSpec {
  const char* source;
  const char* repository_pointer;
  std::vector<const char*> url_pointers;
  const char* actor_pointer;
  std::vector<EventTypeSpec> types;

  const EventTypeSpec* Find(std::string_view type) const;
  // `action`, `repository`, `actor`, then the type's own; empty for an unknown type.
  std::vector<std::string> FieldsOf(std::string_view type) const;
};

// The value at `pointer` as text: strings as they are, integers and booleans printed, anything
// else (absent, null, an object) empty.
std::string TextAt(const Json& body, const char* pointer);

// `body` (already parsed) as an event of `type`: every field filled, the item not yet (the
// source may adjust fields first, then calls SetItem). nullopt when its action starts nothing.
// InvalidArgument when it lacks a repository.
StatusOr<std::optional<TriggerEvent>> ReadEvent(const SourceSpec& spec, const EventTypeSpec& type,
                                                std::string_view delivery, const Json& body);

// Sets `event.item` to KIND:VALUE from the type's item field, KIND being `kind` or else the
// type's item_kind; InvalidArgument when the field is empty.
Status SetItem(const EventTypeSpec& type, TriggerEvent& event, std::string_view kind = {});

// Checks a signature header of the form PREFIX + 64 hex digits (GitHub's "sha256=", Slack's
// "v0=") against HMAC-SHA256(secret, message), in constant time. Unauthenticated naming
// `header_name` when it is missing, malformed or wrong.
Status VerifyHmacSha256(std::string_view secret, std::string_view message,
                        std::string_view header_name, std::string_view prefix,
                        std::string_view header);

// The CI run a failure event is about — a GitHub workflow run concluded "failure", a GitLab
// pipeline with status "failed" — as the forge's id of it; nullopt for any other event.
std::optional<std::string> FailedCiRun(const TriggerEvent& event);

// The SHA-256 of `data` in lower-case hex: the delivery id of a source that sends none.

// `body` parsed as a JSON object, or InvalidArgument prefixed with the source.
StatusOr<Json> ParseBody(std::string_view source, std::string_view body);

}  // namespace nightshift::triggers
