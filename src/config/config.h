#pragma once

// The server's config file (`nightshift serve --config FILE`, `nightshift config check FILE`),
// read once into one typed structure. This part only dispatches: each top-level section goes to
// the part that owns it, which checks its own rules (models in agent/config.h; review, identity
// and forges in forge/config.h). A key at the top level that no part owns is an error, as is
// one inside a section.
//
// Every error is "FILE:LINE:COLUMN: reason" and one read finds all of them (ConfigErrors);
// docs/operations.md lists the sections.

#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "agent/config.h"
#include "core/config_node.h"
#include "core/status.h"
#include "forge/builtin.h"
#include "forge/policy.h"
#include "policy/budgets.h"
#include "policy/engine.h"
#include "triggers/agents.h"

namespace nightshift::config {

struct ServerConfig {
  agent::AgentConfig agent;  // models:, agent:
  // review: (under "", for every repository) and review_repositories: (by repository name).
  std::map<std::string, forge::ReviewPolicy> review = {{"", forge::ReviewPolicy{}}};
  forge::Identity identity;                        // identity:
  std::map<std::string, forge::ForgeLink> forges;  // forges:, by repository name
  triggers::TriggersConfig triggers;               // webhooks:, agents:
  // policy: the rules every decision is made by (the baseline alone when absent).
  policy::PolicyConfig policy{.set = policy::BaselinePolicySet()};
  policy::BudgetsConfig budgets;  // budgets: caps on concurrent runs, runs an hour, spend a day
  // A new section is a field here and a row in config.cc's kSections.
};

// The top-level keys a config file may hold, in the order they are read.
std::vector<std::string_view> ConfigSections();

// Reads the config text. Secrets named in it (api_key_env, token_env) come from `environment`,
// private_key_file from its file. Every problem is recorded in `errors` (whose file name the
// messages carry); the config is whole only when `errors` stays empty.
ServerConfig ParseServerConfig(std::string_view text, const Environment& environment,
                               ConfigErrors& errors);

// Reads `file` and parses it. When the file cannot be read or has errors, they are in `errors`
// and the result is their first (ConfigErrors::ToStatus); `errors` must have been made for
// this file.
StatusOr<ServerConfig> LoadServerConfig(const std::filesystem::path& file,
                                        const Environment& environment, ConfigErrors& errors);

}  // namespace nightshift::config
