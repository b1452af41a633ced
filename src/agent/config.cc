#include "agent/config.h"

namespace nightshift::agent {
namespace {

// Durations are bounded (a year) so that converting them to milliseconds cannot overflow.
constexpr int64_t kMaxSeconds = 365 * 24 * 3600;

ModelConfig ParseModel(const ConfigNode& node, const Environment& environment,
                       ConfigErrors& errors) {
  ModelConfig m{.name = node.key()};
  double timeout_seconds = static_cast<double>(m.timeout_ms) / 1000;
  if (!ReadConfigFields(node,
                        {{"provider", &m.provider},
                         {"base_url", &m.base_url},
                         {"model", &m.model},
                         {"api_key_env",
                          [&](const ConfigNode& value) {
                            if (ReadConfigValue(value, &m.api_key_env, errors)) {
                              EnvironmentSecret(environment, &m.api_key, errors)(value);
                            }
                          }},
                         {"input_cost_per_mtok", &m.input_cost_per_mtok},
                         {"output_cost_per_mtok", &m.output_cost_per_mtok},
                         {"max_output_tokens", &m.max_output_tokens},
                         {"timeout_seconds", &timeout_seconds},
                         {"max_retries", &m.max_retries},
                         {"retry_base_ms", &m.retry_base_ms},
                         {"retry_max_ms", &m.retry_max_ms}},
                        errors)) {
    return m;
  }
  RequireConfig(m.provider == "openai" || m.provider == "anthropic", node, "provider",
                "must be openai or anthropic", errors);
  if (m.base_url.empty()) {
    m.base_url =
        m.provider == "anthropic" ? "https://api.anthropic.com" : "https://api.openai.com/v1";
  }
  RequireConfig(!m.model.empty(), node, "model", "is required", errors);
  // Written so that NaN (`.nan`) fails them too.
  RequireConfig(m.input_cost_per_mtok >= 0, node, "input_cost_per_mtok", "must be at least 0",
                errors);
  RequireConfig(m.output_cost_per_mtok >= 0, node, "output_cost_per_mtok", "must be at least 0",
                errors);
  RequireConfig(m.max_output_tokens >= 1, node, "max_output_tokens", "must be at least 1", errors);
  const bool timeout_ok = timeout_seconds >= 0.001 && timeout_seconds <= kMaxSeconds;
  RequireConfig(timeout_ok, node, "timeout_seconds", StrCat("must be from 0.001 to ", kMaxSeconds),
                errors);
  if (timeout_ok) m.timeout_ms = static_cast<int64_t>(timeout_seconds * 1000);
  RequireConfig(m.max_retries >= 0, node, "max_retries", "must be at least 0", errors);
  RequireConfig(m.retry_base_ms >= 0, node, "retry_base_ms", "must be at least 0", errors);
  return m;
}

}  // namespace

std::map<std::string, ModelConfig> ParseModels(const ConfigNode& models,
                                               const Environment& environment,
                                               ConfigErrors& errors) {
  std::map<std::string, ModelConfig> out;
  if (!CheckConfigMapping(models, errors, "a mapping of names to models")) return out;
  for (const ConfigNode& model : models.children()) {
    out[model.key()] = ParseModel(model, environment, errors);
  }
  return out;
}

void ParseAgentLimits(const ConfigNode& agent, AgentConfig& config, ConfigErrors& errors) {
  Budgets& budgets = config.budgets;
  int64_t max_wall_seconds = budgets.max_wall_ms / 1000;
  int64_t command_timeout_seconds = config.command_timeout_ms / 1000;
  if (!ReadConfigFields(agent,
                        {{"max_steps", &budgets.max_steps},
                         {"max_tokens", &budgets.max_tokens},
                         {"max_cost_usd", &budgets.max_cost_usd},
                         {"max_wall_seconds", &max_wall_seconds},
                         {"tool_output_bytes", &config.tool_output_bytes},
                         {"command_timeout_seconds", &command_timeout_seconds}},
                        errors)) {
    return;
  }
  RequireConfig(budgets.max_steps >= 1, agent, "max_steps", "must be at least 1", errors);
  RequireConfig(budgets.max_tokens >= 1, agent, "max_tokens", "must be at least 1", errors);
  RequireConfig(budgets.max_cost_usd > 0, agent, "max_cost_usd", "must be more than 0", errors);
  const bool wall_ok = max_wall_seconds >= 0 && max_wall_seconds <= kMaxSeconds;
  RequireConfig(wall_ok, agent, "max_wall_seconds", StrCat("must be from 0 to ", kMaxSeconds),
                errors);
  if (wall_ok) budgets.max_wall_ms = max_wall_seconds * 1000;
  RequireConfig(config.tool_output_bytes >= 256, agent, "tool_output_bytes", "must be at least 256",
                errors);
  const bool command_ok = command_timeout_seconds >= 1 && command_timeout_seconds <= kMaxSeconds;
  RequireConfig(command_ok, agent, "command_timeout_seconds",
                StrCat("must be from 1 to ", kMaxSeconds), errors);
  if (command_ok) config.command_timeout_ms = command_timeout_seconds * 1000;
}

}  // namespace nightshift::agent
