#pragma once

// Agents as configuration (docs/triggers.md): what runs (a task for the built-in agent, or a
// recipe), on which repositories, started by which triggers — webhooks' events, Slack's slash
// command, cron schedules — with templates over the event, a concurrency key and limits. Read
// from the server config's `agents:` section; the secrets that authenticate the webhooks from
// `webhooks:`.
//
// Everything is checked at load: a template naming a field its trigger's event type does not
// document, a filter on an unknown field, a cron expression that never fires or an unknown time
// zone is a config error, never an empty string or a silent no-op at fire time.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config_node.h"
#include "core/status.h"
#include "triggers/cron.h"
#include "triggers/template.h"
#include "triggers/webhook_event.h"

namespace nightshift::triggers {

// What a new event does when its concurrency key already has a run that has started.
// (A run that is still queued takes the new event in, whatever the policy: coalesced.)
enum class Overlap {
  kSkip,            // nothing: the running one is enough
  kQueue,           // one more run after it ends (further events wait in that one)
  kCancelPrevious,  // cancel it and start afresh
};
StatusOr<Overlap> ParseOverlap(std::string_view text);
std::string_view OverlapName(Overlap overlap);

struct ScheduleSpec {
  std::string cron;
  std::string timezone = "UTC";
  Misfire misfire = Misfire::kRunOnce;
  std::string branch;  // the ref runs start from; empty: the repository's default branch
  std::optional<Schedule> schedule;  // always set once loaded
};

// One trigger of an agent: a webhook's event type with filters, or a schedule.
struct TriggerSpec {
  // "github", "gitlab", "slack", "generic:NAME", or "schedule".
  std::string source;
  std::string type;  // the event type ("workflow_run", "pipeline", "slash_command", …)
  // Conditions on the event's fields: each field's value must match one of its globs.
  std::map<std::string, std::vector<std::string>> filters;
  std::optional<ScheduleSpec> schedule;
  std::vector<std::string> fields;  // what its events carry, for the templates
  // The agent's templates, checked against this trigger's fields.
  std::optional<Template> task;
  std::optional<Template> recipe;
  std::optional<Template> key;
  std::string Describe() const;  // "github workflow_run", "schedule 0 3 * * 1-5 Europe/Berlin"
};

struct AgentSpec {
  std::string name;
  std::string task;                       // for the built-in agent (a template)
  std::string model;                      // its model (empty: "default")
  std::string recipe;                     // or a shell command (a template; values shell-quoted)
  std::vector<std::string> repositories;  // globs over registered names and owner/name
  std::vector<TriggerSpec> triggers;
  std::string concurrency_key;  // a template; empty: the event's item ("branch:main")
  Overlap overlap = Overlap::kSkip;
  int64_t runs_per_hour = 0;   // 0: no limit
  int64_t max_concurrent = 0;  // 0: no limit
  int64_t timeout_seconds = 3600;
};

// A generic webhook (`/hooks/generic/NAME`): any JSON, authenticated by an HMAC-SHA256 of the
// body in a header.
struct GenericHook {
  std::string secret;
  std::string signature_header = "X-Signature-256";
  std::string signature_prefix = "sha256=";
  std::string delivery_header;     // empty: the delivery id is the body's SHA-256
  std::string repository_pointer;  // a JSON pointer to "owner/name" (empty: every repository)
  std::map<std::string, std::string> fields;  // field name → JSON pointer
};

struct WebhookConfig {
  std::string github_secret;         // empty: /hooks/github answers 404
  std::string gitlab_token;          // empty: /hooks/gitlab answers 404
  std::string slack_signing_secret;  // empty: /hooks/slack answers 404
  std::map<std::string, GenericHook> generic;
  // Forge logins the platform acts as (its bot, its App): events they caused start nothing.
  std::vector<std::string> bot_logins;
};

struct TriggersConfig {
  std::vector<AgentSpec> agents;
  WebhookConfig webhooks;
};

// `agents:` — a mapping of agent names to definitions. Templates are checked against the
// fields of each trigger's events; generic triggers against `generic_hooks` (read first).
std::vector<AgentSpec> ParseAgents(const ConfigNode& node,
                                   const std::map<std::string, GenericHook>& generic_hooks,
                                   ConfigErrors& errors);

// `webhooks:` — secrets by environment variable name (secret_env, token_env,
// signing_secret_env), read from `environment`.
WebhookConfig ParseWebhooks(const ConfigNode& node, const Environment& environment,
                            ConfigErrors& errors);

// A generic hook's delivery as an event of source "generic:NAME" and type "generic": its
// configured fields read from the body, the repository from its pointer (none: every
// repository of the agent). InvalidArgument for a body that is not a JSON object.
StatusOr<TriggerEvent> ParseGenericEvent(std::string_view name, const GenericHook& hook,
                                         std::string_view delivery, std::string_view body);

// The fields events of `source` and `type` carry; empty for an unknown pair.
std::vector<std::string> EventFields(std::string_view source, std::string_view type,
                                     const std::map<std::string, GenericHook>& generic_hooks);

// Whether `event` is one `trigger` starts runs for: source, type and every filter.
bool Matches(const TriggerSpec& trigger, const TriggerEvent& event);

// Whether a repository, known by its registered `name` and its forge `full_name`
// ("acme/app"), is one of `globs`.
bool RepositoryMatches(const std::vector<std::string>& globs, std::string_view name,
                       std::string_view full_name);

// How the platform knows its own doing when it comes back as an event.
struct OwnIdentity {
  std::vector<std::string> logins;  // its forge logins (webhooks.bot_logins) and committer name
  std::string comment_marker;       // in every comment it posts (forge::kCommentMarker)
};

// Why the platform itself caused `event` — its push to (or CI of) a nightshift/* branch, an
// event by one of its logins, a comment carrying its marker — or nullopt.
std::optional<std::string> LoopGuard(const TriggerEvent& event, const OwnIdentity& own);

}  // namespace nightshift::triggers
