#pragma once

// Agents as configuration (docs/triggers.md): what runs (a task for the built-in agent, or a
// recipe), on which repositories, started by which triggers — webhooks' events, Slack's slash
// command, cron schedules — with templates over the event, a concurrency key and limits. Read
// from the server config's `agents:` section and from each repository's own
// `.nightshift/agents.yml` (on its default branch); the secrets that authenticate the webhooks
// from `webhooks:`.
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
  std::string name;                       // a repository's own agents: "REPO/NAME"
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
  // A repository's own agent (from its .nightshift/agents.yml): the registered repository it
  // belongs to and runs on, only. Empty for the server config's agents.
  std::string owner_repository;
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

// Whether `agent` runs on the repository: its own one for a repository's agent, else one of its
// `repositories:`.
bool AgentRunsOn(const AgentSpec& agent, std::string_view name, std::string_view full_name);

// A repository's own agents: `.nightshift/agents.yml` on its default branch, in the format of
// the server config's `agents:` section, under a top-level `agents:` key. Such a file is the
// repository's content, so it is read as hostile bytes and held to rules the server config is
// not: it names no `repositories:` (its agents run on that repository only), its agents are
// named "REPO/NAME" (they cannot stand in for the server's), and the server's
// `repository_agents:` caps their limits and timeout.
inline constexpr std::string_view kRepositoryAgentsPath = ".nightshift/agents.yml";
inline constexpr size_t kMaxRepositoryAgentsBytes = 64 * 1024;

// The server config's `repository_agents:` section.
struct RepositoryAgentsPolicy {
  bool enabled = true;
  int64_t refresh_seconds = 300;   // how often the mirrors are fetched to look (0: on push only)
  int64_t max_runs_per_hour = 20;  // each agent's limits.runs_per_hour at most (and unset)
  int64_t max_concurrent = 2;      // each agent's limits.max_concurrent at most (and unset)
  int64_t max_timeout_seconds = 3600;
  int64_t max_agents = 16;  // agents per file
};
struct TriggersConfig {
  std::vector<AgentSpec> agents;
  WebhookConfig webhooks;
  RepositoryAgentsPolicy repository_agents;
};

RepositoryAgentsPolicy ParseRepositoryAgentsPolicy(const ConfigNode& node, ConfigErrors& errors);

// One repository's agents file as read.
struct RepositoryAgentsFile {
  std::string repository;  // its registered name
  std::string commit;      // the commit its agents were read from ("": none read yet)
  std::vector<AgentSpec> agents;
  // The newest commit's file, when it could not be used: its errors, one line each
  // ("app:.nightshift/agents.yml:3:5: …"). The agents above stay those of `commit`.
  std::string failed_commit;
  std::vector<std::string> errors;
};
using RepositoryAgentsMap = std::map<std::string, RepositoryAgentsFile>;

// Parses `text`, the file at `commit` of the registered repository `repository`. Errors (any
// makes the whole file unusable) in `errors`, named "REPOSITORY:.nightshift/agents.yml".
std::vector<AgentSpec> ParseRepositoryAgents(
    std::string_view repository, std::string_view text,
    const std::map<std::string, GenericHook>& generic_hooks, const RepositoryAgentsPolicy& policy,
    ConfigErrors& errors);

// How the platform knows its own doing when it comes back as an event.
struct OwnIdentity {
  std::vector<std::string> logins;  // its forge logins (webhooks.bot_logins) and committer name
  std::string comment_marker;       // in every comment it posts (forge::kCommentMarker)
};

// Why the platform itself caused `event` — its push to (or CI of) a nightshift/* branch, an
// event by one of its logins, a comment carrying its marker — or nullopt.
std::optional<std::string> LoopGuard(const TriggerEvent& event, const OwnIdentity& own);

}  // namespace nightshift::triggers
