#include "triggers/agents.h"

#include <fnmatch.h>

#include <algorithm>
#include <array>
#include <utility>

#include "triggers/github.h"
#include "triggers/gitlab.h"

namespace nightshift::triggers {
namespace {

constexpr std::array<std::pair<Overlap, std::string_view>, 3> kOverlapNames{{
    {Overlap::kSkip, "skip"},
    {Overlap::kQueue, "queue"},
    {Overlap::kCancelPrevious, "cancel_previous"},
}};

// The event types of each source in an agent's `triggers:`, under the names people write
// (GitLab's too are snake case: `pipeline`, `merge_request`).
const std::vector<std::string> kScheduleFields = {"repository", "branch", "due", "cron",
                                                  "timezone"};
const std::vector<std::string> kSlackFields = {"action",  "repository", "actor",       "command",
                                               "text",    "task",       "user",        "user_id",
                                               "channel", "team",       "response_url"};

bool Glob(std::string_view pattern, std::string_view text) {
  return ::fnmatch(std::string(pattern).c_str(), std::string(text).c_str(), 0) == 0;
}

bool IsJsonPointer(const std::string& text) {
  if (!text.starts_with("/")) return false;
  try {
    Json::json_pointer pointer(text);
  } catch (const Json::exception&) {
    return false;
  }
  return true;
}

std::vector<std::string> GenericFields(const GenericHook& hook) {
  std::vector<std::string> fields = {"action", "repository", "actor"};
  for (const auto& [name, pointer] : hook.fields) {
    if (std::find(fields.begin(), fields.end(), name) == fields.end()) fields.push_back(name);
  }
  return fields;
}

// A filter's value: one glob or a list of them.
std::vector<std::string> ReadGlobs(const ConfigNode& node, ConfigErrors& errors) {
  std::vector<std::string> globs;
  if (node.IsScalar()) {
    globs.push_back(node.scalar());
  } else {
    ReadConfigValue(node, &globs, errors);
  }
  return globs;
}

std::optional<Template> Compile(const std::string& text, const TriggerSpec& trigger,
                                std::string_view what, const ConfigNode& at, ConfigErrors& errors) {
  if (text.empty()) return std::nullopt;
  auto compiled = Template::Parse(text, trigger.fields,
                                  StrCat(at.path(), ": ", what, " for ", trigger.Describe()));
  if (!compiled.ok()) {
    const ConfigNode* value = at.Find(what);
    errors.Add(value != nullptr ? *value : at, compiled.status().message());
    return std::nullopt;
  }
  return *std::move(compiled);
}

TriggerSpec ParseTrigger(const ConfigNode& item, const std::map<std::string, GenericHook>& hooks,
                         ConfigErrors& errors) {
  TriggerSpec trigger;
  if (!item.IsMapping() || item.children().size() != 1) {
    errors.Add(item, StrCat(item.path(),
                            " must be one of github:, gitlab:, slack:, generic: or schedule:"));
    return trigger;
  }
  const ConfigNode& body = item.children().front();
  const std::string& source = body.key();
  if (source == "schedule") {
    ScheduleSpec spec;
    std::string misfire = "run_once";
    if (!ReadConfigFields(body,
                          {{"cron", &spec.cron},
                           {"timezone", &spec.timezone},
                           {"misfire", &misfire},
                           {"branch", &spec.branch}},
                          errors)) {
      return trigger;
    }
    trigger.source = "schedule";
    trigger.type = "schedule";
    trigger.fields = kScheduleFields;
    auto parsed_misfire = ParseMisfire(misfire);
    RequireConfig(parsed_misfire.ok(), body, "misfire", "must be run_once or skip", errors);
    if (parsed_misfire.ok()) spec.misfire = *parsed_misfire;
    if (spec.cron.empty()) {
      RequireConfig(false, body, "cron", "is required", errors);
    } else {
      auto schedule = Schedule::Make(spec.cron, spec.timezone);
      if (!schedule.ok()) {
        const ConfigNode* at = body.Find("cron");
        errors.Add(*at, StrCat(body.path(), ": ", schedule.status().message()));
      } else {
        spec.schedule = *std::move(schedule);
      }
    }
    trigger.schedule = std::move(spec);
    return trigger;
  }
  if (source != "github" && source != "gitlab" && source != "slack" && source != "generic") {
    errors.AddAtKey(body, StrCat("unknown trigger '", source,
                                 "' (expected github, gitlab, slack, generic or schedule)"));
    return trigger;
  }
  if (!CheckConfigMapping(body, errors)) return trigger;
  trigger.source = source;
  if (source == "slack") {
    trigger.type = "slash_command";
  } else if (source == "generic") {
    const ConfigNode* name = body.Find("name");
    if (name == nullptr || !name->IsScalar() || !hooks.contains(name->scalar())) {
      std::string known;
      for (const auto& [hook, unused] : hooks) known += StrCat(known.empty() ? "" : ", ", hook);
      errors.Add(name != nullptr ? *name : body,
                 StrCat(body.path(), ".name must name a hook under webhooks.generic (",
                        known.empty() ? "none is configured" : StrCat("configured: ", known), ")"));
      return trigger;
    }
    trigger.source = StrCat("generic:", name->scalar());
    trigger.type = "generic";
  } else {
    const ConfigNode* event = body.Find("event");
    if (event == nullptr || !event->IsScalar()) {
      errors.Add(event != nullptr ? *event : body, StrCat(body.path(), ".event is required"));
      return trigger;
    }
    trigger.type = event->scalar();
  }
  trigger.fields = EventFields(trigger.source, trigger.type, hooks);
  if (trigger.fields.empty()) {
    errors.Add(*body.Find("event"), StrCat(body.path(), ".event: '", trigger.type, "' is not a ",
                                           source, " event Nightshift handles"));
    return trigger;
  }
  for (const ConfigNode& filter : body.children()) {
    if (filter.key() == "event" || filter.key() == "name") continue;
    if (std::find(trigger.fields.begin(), trigger.fields.end(), filter.key()) ==
        trigger.fields.end()) {
      std::string known;
      for (const auto& f : trigger.fields) known += StrCat(known.empty() ? "" : ", ", f);
      errors.AddAtKey(filter, StrCat("unknown field '", filter.key(), "' in ", body.path(), " (",
                                     trigger.Describe(), " has ", known, ")"));
      continue;
    }
    trigger.filters[filter.key()] = ReadGlobs(filter, errors);
  }
  return trigger;
}

bool CheckAgentName(const ConfigNode& agent, ConfigErrors& errors) {
  const std::string& name = agent.key();
  const bool ok =
      !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
      });
  if (!ok) {
    errors.AddAtKey(agent,
                    StrCat("agent name '", name, "' must be 1 to 64 letters, digits, '-' or '_'"));
  }
  return ok;
}

// `owner`: the repository whose own agents file this is; nullptr for the server config.
AgentSpec ParseAgent(const ConfigNode& node, const std::map<std::string, GenericHook>& hooks,
                     const std::string* owner, ConfigErrors& errors) {
  AgentSpec agent{.name = node.key()};
  if (owner != nullptr) {
    agent.name = StrCat(*owner, "/", node.key());
    agent.owner_repository = *owner;
  }
  std::string overlap = "skip";
  std::vector<TriggerSpec> triggers;
  auto read_triggers = [&](const ConfigNode& list) {
    if (!list.IsSequence()) {
      errors.Add(list, StrCat(list.path(), " must be a list of triggers"));
      return;
    }
    for (const ConfigNode& item : list.children()) {
      triggers.push_back(ParseTrigger(item, hooks, errors));
    }
  };
  auto read_concurrency = [&](const ConfigNode& value) {
    ReadConfigFields(value, {{"key", &agent.concurrency_key}, {"overlap", &overlap}}, errors);
  };
  auto read_limits = [&](const ConfigNode& value) {
    if (!ReadConfigFields(
            value,
            {{"runs_per_hour", &agent.runs_per_hour}, {"max_concurrent", &agent.max_concurrent}},
            errors)) {
      return;
    }
    RequireConfig(agent.runs_per_hour >= 0, value, "runs_per_hour", "must be at least 0", errors);
    RequireConfig(agent.max_concurrent >= 0, value, "max_concurrent", "must be at least 0", errors);
  };
  if (!ReadConfigFields(node,
                        {{"task", &agent.task},
                         {"model", &agent.model},
                         {"recipe", &agent.recipe},
                         {"repositories", &agent.repositories},
                         {"triggers", read_triggers},
                         {"concurrency", read_concurrency},
                         {"limits", read_limits},
                         {"timeout_seconds", &agent.timeout_seconds}},
                        errors)) {
    return agent;
  }
  if (agent.task.empty() == agent.recipe.empty()) {
    errors.AddAtKey(node, StrCat(node.path(),
                                 " needs either task: (the built-in agent) or "
                                 "recipe: (a command), not both"));
  }
  RequireConfig(agent.recipe.empty() || agent.model.empty(), node, "model",
                "is for agents with a task, not a recipe", errors);
  if (owner == nullptr) {
    RequireConfig(!agent.repositories.empty(), node, "repositories",
                  "must name at least one repository (globs: [\"acme/*\"], [\"*\"])", errors);
  } else if (const ConfigNode* repositories = node.Find("repositories")) {
    errors.AddAtKey(*repositories,
                    StrCat(repositories->path(),
                           ": a repository's own agents run on that repository only; remove it"));
  }
  RequireConfig(node.Find("triggers") != nullptr, node, "triggers",
                "must list at least one trigger", errors);
  RequireConfig(agent.timeout_seconds >= 1 && agent.timeout_seconds <= 86400, node,
                "timeout_seconds", "must be from 1 to 86400", errors);
  if (auto parsed = ParseOverlap(overlap); parsed.ok()) {
    agent.overlap = *parsed;
  } else if (const ConfigNode* concurrency = node.Find("concurrency")) {
    RequireConfig(false, *concurrency, "overlap", "must be skip, queue or cancel_previous", errors);
  }
  for (TriggerSpec& trigger : triggers) {
    if (trigger.fields.empty()) continue;  // its error is recorded
    trigger.task = Compile(agent.task, trigger, "task", node, errors);
    trigger.recipe = Compile(agent.recipe, trigger, "recipe", node, errors);
    if (!agent.concurrency_key.empty()) {
      auto key = Template::Parse(agent.concurrency_key, trigger.fields,
                                 StrCat(node.path(), ".concurrency.key for ", trigger.Describe()));
      if (key.ok()) {
        trigger.key = *std::move(key);
      } else {
        errors.Add(*node.Find("concurrency"), key.status().message());
      }
    }
  }
  agent.triggers = std::move(triggers);
  return agent;
}

}  // namespace

StatusOr<Overlap> ParseOverlap(std::string_view text) {
  for (const auto& [value, name] : kOverlapNames) {
    if (name == text) return value;
  }
  return InvalidArgumentError(
      StrCat("overlap '", text, "' is not one of skip, queue, cancel_previous"));
}

std::string_view OverlapName(Overlap overlap) {
  for (const auto& [value, name] : kOverlapNames) {
    if (value == overlap) return name;
  }
  return "skip";
}

std::string TriggerSpec::Describe() const {
  if (schedule) return StrCat("schedule '", schedule->cron, "' ", schedule->timezone);
  return StrCat(source, " ", type);
}

std::vector<std::string> EventFields(std::string_view source, std::string_view type,
                                     const std::map<std::string, GenericHook>& generic_hooks) {
  if (source == "github") return GitHubEventFields(type);
  if (source == "gitlab") return GitLabEventFields(type);
  if (source == "slack") return type == "slash_command" ? kSlackFields : std::vector<std::string>{};
  if (source == "schedule") return kScheduleFields;
  if (source.starts_with("generic:")) {
    auto it = generic_hooks.find(std::string(source.substr(8)));
    if (it != generic_hooks.end()) return GenericFields(it->second);
  }
  return {};
}

std::vector<AgentSpec> ParseAgents(const ConfigNode& node,
                                   const std::map<std::string, GenericHook>& generic_hooks,
                                   ConfigErrors& errors) {
  std::vector<AgentSpec> agents;
  if (!CheckConfigMapping(node, errors, "a mapping of agent names to agents")) return agents;
  for (const ConfigNode& agent : node.children()) {
    if (!CheckAgentName(agent, errors)) continue;
    agents.push_back(ParseAgent(agent, generic_hooks, nullptr, errors));
  }
  return agents;
}

bool AgentRunsOn(const AgentSpec& agent, std::string_view name, std::string_view full_name) {
  if (!agent.owner_repository.empty()) return agent.owner_repository == name;
  return RepositoryMatches(agent.repositories, name, full_name);
}

RepositoryAgentsPolicy ParseRepositoryAgentsPolicy(const ConfigNode& node, ConfigErrors& errors) {
  RepositoryAgentsPolicy policy;
  if (!ReadConfigFields(node,
                        {{"enabled", &policy.enabled},
                         {"refresh_seconds", &policy.refresh_seconds},
                         {"max_runs_per_hour", &policy.max_runs_per_hour},
                         {"max_concurrent", &policy.max_concurrent},
                         {"max_timeout_seconds", &policy.max_timeout_seconds},
                         {"max_agents", &policy.max_agents}},
                        errors)) {
    return policy;
  }
  RequireConfig(policy.refresh_seconds >= 0, node, "refresh_seconds", "must be at least 0", errors);
  RequireConfig(policy.max_runs_per_hour >= 1, node, "max_runs_per_hour", "must be at least 1",
                errors);
  RequireConfig(policy.max_concurrent >= 1, node, "max_concurrent", "must be at least 1", errors);
  RequireConfig(policy.max_timeout_seconds >= 1 && policy.max_timeout_seconds <= 86400, node,
                "max_timeout_seconds", "must be from 1 to 86400", errors);
  RequireConfig(policy.max_agents >= 1, node, "max_agents", "must be at least 1", errors);
  return policy;
}

std::vector<AgentSpec> ParseRepositoryAgents(
    std::string_view repository, std::string_view text,
    const std::map<std::string, GenericHook>& generic_hooks, const RepositoryAgentsPolicy& policy,
    ConfigErrors& errors) {
  std::vector<AgentSpec> agents;
  if (text.size() > kMaxRepositoryAgentsBytes) {
    errors.AddUnplaced(StrCat(errors.file_name(), ": ", text.size(), " bytes; at most ",
                              kMaxRepositoryAgentsBytes, " are read"));
    return agents;
  }
  const ConfigNode root = ParseYamlConfig(text, errors);
  if (!errors.empty() || root.IsNull()) return agents;
  const ConfigNode* section = nullptr;
  if (!ReadConfigFields(root, {{"agents", [&](const ConfigNode& node) { section = &node; }}},
                        errors) ||
      section == nullptr) {
    if (errors.empty()) errors.AddAt(1, 1, "the file must have an agents: mapping");
    return agents;
  }
  if (!CheckConfigMapping(*section, errors, "a mapping of agent names to agents")) return agents;
  if (static_cast<int64_t>(section->children().size()) > policy.max_agents) {
    errors.Add(*section, StrCat("agents: ", section->children().size(),
                                " agents; a repository may declare at most ", policy.max_agents,
                                " (repository_agents.max_agents)"));
    return agents;
  }
  const std::string owner(repository);
  std::vector<AgentSpec> parsed;
  for (const ConfigNode& node : section->children()) {
    if (!CheckAgentName(node, errors)) continue;
    AgentSpec agent = ParseAgent(node, generic_hooks, &owner, errors);
    // The server's caps: unset or higher limits become the cap.
    auto cap = [](int64_t value, int64_t max) { return value == 0 ? max : std::min(value, max); };
    agent.runs_per_hour = cap(agent.runs_per_hour, policy.max_runs_per_hour);
    agent.max_concurrent = cap(agent.max_concurrent, policy.max_concurrent);
    agent.timeout_seconds = std::min(agent.timeout_seconds, policy.max_timeout_seconds);
    parsed.push_back(std::move(agent));
  }
  if (errors.empty()) agents = std::move(parsed);
  return agents;
}

WebhookConfig ParseWebhooks(const ConfigNode& node, const Environment& environment,
                            ConfigErrors& errors) {
  WebhookConfig config;
  auto secret = [&](const char* key, std::string* out) {
    return [&environment, &errors, key, out](const ConfigNode& value) {
      if (!ReadConfigFields(value, {{key, EnvironmentSecret(environment, out, errors)}}, errors)) {
        return;
      }
      RequireConfig(!out->empty() || value.Find(key) != nullptr, value, key, "is required", errors);
    };
  };
  auto generic = [&](const ConfigNode& hooks) {
    if (!CheckConfigMapping(hooks, errors, "a mapping of hook names to hooks")) return;
    for (const ConfigNode& hook_node : hooks.children()) {
      GenericHook hook;
      auto fields = [&](const ConfigNode& value) {
        if (!CheckConfigMapping(value, errors)) return;
        for (const ConfigNode& field : value.children()) {
          std::string pointer;
          if (!ReadConfigValue(field, &pointer, errors)) continue;
          if (!IsJsonPointer(pointer)) {
            errors.Add(field, StrCat(field.path(), " must be a JSON pointer (\"/issue/title\")"));
            continue;
          }
          hook.fields[field.key()] = pointer;
        }
      };
      ReadConfigFields(hook_node,
                       {{"secret_env", EnvironmentSecret(environment, &hook.secret, errors)},
                        {"signature_header", &hook.signature_header},
                        {"signature_prefix", &hook.signature_prefix},
                        {"delivery_header", &hook.delivery_header},
                        {"repository", &hook.repository_pointer},
                        {"fields", fields}},
                       errors);
      RequireConfig(hook.repository_pointer.empty() || IsJsonPointer(hook.repository_pointer),
                    hook_node, "repository", "must be a JSON pointer (\"/repository/name\")",
                    errors);
      RequireConfig(!hook.secret.empty() || hook_node.Find("secret_env") != nullptr, hook_node,
                    "secret_env", "is required", errors);
      RequireConfig(!hook.signature_header.empty(), hook_node, "signature_header",
                    "must not be empty", errors);
      config.generic[hook_node.key()] = std::move(hook);
    }
  };
  ReadConfigFields(node,
                   {{"github", secret("secret_env", &config.github_secret)},
                    {"gitlab", secret("token_env", &config.gitlab_token)},
                    {"slack", secret("signing_secret_env", &config.slack_signing_secret)},
                    {"generic", generic},
                    {"bot_logins", &config.bot_logins}},
                   errors);
  return config;
}

StatusOr<TriggerEvent> ParseGenericEvent(std::string_view name, const GenericHook& hook,
                                         std::string_view delivery, std::string_view body) {
  const std::string source = StrCat("generic:", name);
  ASSIGN_OR_RETURN(Json json, ParseBody(source, body));
  TriggerEvent event{.source = source, .type = "generic", .delivery = std::string(delivery)};
  if (!hook.repository_pointer.empty()) {
    event.repository = TextAt(json, hook.repository_pointer.c_str());
  }
  for (const auto& [field, pointer] : hook.fields) {
    event.fields[field] = TextAt(json, pointer.c_str());
  }
  // Every event has these; a hook may name its own action and actor.
  event.fields.try_emplace("action");
  event.fields.try_emplace("actor");
  event.fields["repository"] = event.repository;
  event.actor = event.fields["actor"];
  event.item = StrCat(source, ":", delivery);
  return event;
}

bool Matches(const TriggerSpec& trigger, const TriggerEvent& event) {
  if (trigger.source != event.source || trigger.type != event.type) return false;
  for (const auto& [field, globs] : trigger.filters) {
    auto it = event.fields.find(field);
    const std::string value = it == event.fields.end() ? "" : it->second;
    if (std::none_of(globs.begin(), globs.end(),
                     [&](const std::string& glob) { return Glob(glob, value); })) {
      return false;
    }
  }
  return true;
}

bool RepositoryMatches(const std::vector<std::string>& globs, std::string_view name,
                       std::string_view full_name) {
  return std::any_of(globs.begin(), globs.end(), [&](const std::string& glob) {
    return Glob(glob, name) || (!full_name.empty() && Glob(glob, full_name));
  });
}

std::optional<std::string> LoopGuard(const TriggerEvent& event, const OwnIdentity& own) {
  for (const std::string& login : own.logins) {
    if (!login.empty() && event.actor == login) {
      return StrCat("caused by the platform's own login ", login);
    }
  }
  auto field = [&](const char* name) -> std::string_view {
    auto it = event.fields.find(name);
    return it == event.fields.end() ? std::string_view() : std::string_view(it->second);
  };
  if (!own.comment_marker.empty() &&
      field("comment.body").find(own.comment_marker) != std::string_view::npos) {
    return std::string("a comment the platform posted");
  }
  // What its own pushes set off: the push itself, the CI it starts, the change request.
  static constexpr std::array<std::string_view, 6> kCausedByPush = {
      "push", "workflow_run", "check_suite", "pull_request", "pipeline", "merge_request"};
  if (std::find(kCausedByPush.begin(), kCausedByPush.end(), event.type) != kCausedByPush.end() &&
      field("branch").starts_with("nightshift/")) {
    return StrCat("the platform's own branch ", field("branch"));
  }
  return std::nullopt;
}

}  // namespace nightshift::triggers
