#pragma once

// The agent's sections of the server's config file (`nightshift serve --config FILE`, read once
// by config/config.h, which hands each section to the part that owns it):
//
//   models:
//     default:                        # the model runs use unless they name another
//       provider: openai              # or anthropic
//       base_url: https://api.openai.com/v1
//       model: gpt-4.1
//       api_key_env: OPENAI_API_KEY   # the key is read from this variable at start
//       input_cost_per_mtok: 2.0      # USD per million tokens, for cost accounting and budgets
//       output_cost_per_mtok: 8.0
//   agent:
//     max_steps: 50                   # budgets of one run; each ends it cleanly
//     max_tokens: 2000000
//     max_cost_usd: 5
//
// docs/agents.md is the reference.

#include <cstdint>
#include <map>
#include <string>

#include "agent/model.h"
#include "core/config_node.h"

namespace nightshift::agent {

struct Budgets {
  int max_steps = 50;              // model calls
  int64_t max_tokens = 2'000'000;  // input + output, over the run
  double max_cost_usd = 5.0;
  int64_t max_wall_ms = 0;  // 0: the run's own timeout only
};

struct AgentConfig {
  std::map<std::string, ModelConfig> models;
  Budgets budgets;
  int64_t tool_output_bytes = 16 * 1024;  // head and tail of each tool's output kept
  int64_t command_timeout_ms = 600'000;   // run_command's default (and maximum) timeout
};

// The `models:` section: each model by name. `environment` resolves api_key_env (a missing
// variable is an error: the server should not start with a model it cannot call). Every
// problem is recorded in `errors`; the result is whole only when none was.
std::map<std::string, ModelConfig> ParseModels(const ConfigNode& models,
                                               const Environment& environment,
                                               ConfigErrors& errors);

// The `agent:` section: budgets and tool limits, over `config`'s (the defaults). Every problem
// is recorded in `errors`.
void ParseAgentLimits(const ConfigNode& agent, AgentConfig& config, ConfigErrors& errors);

}  // namespace nightshift::agent
