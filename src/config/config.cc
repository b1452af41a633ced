#include "config/config.h"

#include <algorithm>
#include <iterator>

#include "core/fs.h"
#include "forge/config.h"

namespace nightshift::config {
namespace {

// One top-level key and the part's parser that reads it into the config.
struct Section {
  std::string_view key;
  void (*read)(const ConfigNode& node, const Environment& environment, ServerConfig& config,
               ConfigErrors& errors);
};

// In the order they are read, whatever the file's: a section may start from one before it
// (review_repositories from review).
constexpr Section kSections[] = {
    {"models",
     [](const ConfigNode& node, const Environment& environment, ServerConfig& config,
        ConfigErrors& errors) {
       config.agent.models = agent::ParseModels(node, environment, errors);
     }},
    {"agent", [](const ConfigNode& node, const Environment&, ServerConfig& config,
                 ConfigErrors& errors) { agent::ParseAgentLimits(node, config.agent, errors); }},
    {"review",
     [](const ConfigNode& node, const Environment&, ServerConfig& config, ConfigErrors& errors) {
       config.review[""] = forge::ParseReviewPolicy(node, forge::ReviewPolicy{}, errors);
     }},
    {"review_repositories",
     [](const ConfigNode& node, const Environment&, ServerConfig& config, ConfigErrors& errors) {
       for (auto& [name, policy] : forge::ParseReviewPolicies(node, config.review[""], errors)) {
         config.review[name] = std::move(policy);
       }
     }},
    {"policy", [](const ConfigNode& node, const Environment&, ServerConfig& config,
                  ConfigErrors& errors) { policy::ReadPolicyConfig(node, config.policy, errors); }},
    {"budgets",
     [](const ConfigNode& node, const Environment&, ServerConfig& config, ConfigErrors& errors) {
       policy::ReadBudgetsConfig(node, config.budgets, errors);
     }},
    {"identity",
     [](const ConfigNode& node, const Environment&, ServerConfig& config, ConfigErrors& errors) {
       config.identity = forge::ParseIdentity(node, errors);
     }},
    {"forges",
     [](const ConfigNode& node, const Environment& environment, ServerConfig& config,
        ConfigErrors& errors) {
       config.forges = forge::ParseForgeLinks(node, environment, errors);
     }},
    {"webhooks",
     [](const ConfigNode& node, const Environment& environment, ServerConfig& config,
        ConfigErrors& errors) {
       config.triggers.webhooks = triggers::ParseWebhooks(node, environment, errors);
     }},
    {"agents",
     [](const ConfigNode& node, const Environment&, ServerConfig& config, ConfigErrors& errors) {
       config.triggers.agents =
           triggers::ParseAgents(node, config.triggers.webhooks.generic, errors);
     }},
    {"repository_agents",
     [](const ConfigNode& node, const Environment&, ServerConfig& config, ConfigErrors& errors) {
       config.triggers.repository_agents = triggers::ParseRepositoryAgentsPolicy(node, errors);
     }},
};

}  // namespace

std::vector<std::string_view> ConfigSections() {
  std::vector<std::string_view> keys;
  for (const Section& section : kSections) keys.push_back(section.key);
  return keys;
}

ServerConfig ParseServerConfig(std::string_view text, const Environment& environment,
                               ConfigErrors& errors) {
  ServerConfig config;
  const ConfigNode root = ParseYamlConfig(text, errors);
  if (!CheckConfigMapping(root, errors)) return config;
  for (const ConfigNode& node : root.children()) {
    const bool known = std::any_of(std::begin(kSections), std::end(kSections),
                                   [&](const Section& s) { return s.key == node.key(); });
    if (!known) {
      std::string expected;
      for (const Section& s : kSections) expected += StrCat(expected.empty() ? "" : ", ", s.key);
      errors.AddAtKey(node, StrCat("unknown key '", node.key(), "' (expected ", expected, ")"));
    }
  }
  for (const Section& section : kSections) {
    if (const ConfigNode* node = root.Find(section.key)) {
      section.read(*node, environment, config, errors);
    }
  }
  return config;
}

StatusOr<ServerConfig> LoadServerConfig(const std::filesystem::path& file,
                                        const Environment& environment, ConfigErrors& errors) {
  auto text = ReadFile(file);
  if (!text.ok()) {
    errors.AddUnplaced(text.status().message());
    return text.status();
  }
  ServerConfig config = ParseServerConfig(*text, environment, errors);
  RETURN_IF_ERROR(errors.ToStatus());
  return config;
}

}  // namespace nightshift::config
