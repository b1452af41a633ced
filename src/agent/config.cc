#include "agent/config.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>

#include "core/fs.h"

extern char** environ;

namespace nightshift::agent {
namespace {

Status Bad(std::string_view file, const YAML::Node& node, std::string_view reason) {
  return InvalidArgumentError(
      StrCat(file, ":", node.Mark().line + 1, ":", node.Mark().column + 1, ": ", reason));
}

template <typename T>
StatusOr<T> Get(std::string_view file, const YAML::Node& node, std::string_view what) {
  T value{};
  if (!node.IsScalar() || !YAML::convert<T>::decode(node, value)) {
    return Bad(file, node, StrCat(what, " has the wrong type"));
  }
  return value;
}

StatusOr<ModelConfig> ParseModel(std::string_view file, const std::string& name,
                                 const YAML::Node& node,
                                 const std::map<std::string, std::string>& environment) {
  if (!node.IsMap()) return Bad(file, node, StrCat("model ", name, " must be a mapping"));
  ModelConfig m{.name = name};
  for (const auto& entry : node) {
    const std::string key = entry.first.Scalar();
    const YAML::Node& v = entry.second;
    if (key == "provider") {
      ASSIGN_OR_RETURN(m.provider, Get<std::string>(file, v, key));
    } else if (key == "base_url") {
      ASSIGN_OR_RETURN(m.base_url, Get<std::string>(file, v, key));
    } else if (key == "model") {
      ASSIGN_OR_RETURN(m.model, Get<std::string>(file, v, key));
    } else if (key == "api_key_env") {
      ASSIGN_OR_RETURN(m.api_key_env, Get<std::string>(file, v, key));
    } else if (key == "input_cost_per_mtok") {
      ASSIGN_OR_RETURN(m.input_cost_per_mtok, Get<double>(file, v, key));
    } else if (key == "output_cost_per_mtok") {
      ASSIGN_OR_RETURN(m.output_cost_per_mtok, Get<double>(file, v, key));
    } else if (key == "max_output_tokens") {
      ASSIGN_OR_RETURN(m.max_output_tokens, Get<int>(file, v, key));
    } else if (key == "timeout_seconds") {
      ASSIGN_OR_RETURN(double seconds, Get<double>(file, v, key));
      m.timeout_ms = static_cast<int64_t>(seconds * 1000);
    } else if (key == "max_retries") {
      ASSIGN_OR_RETURN(m.max_retries, Get<int>(file, v, key));
    } else if (key == "retry_base_ms") {
      ASSIGN_OR_RETURN(m.retry_base_ms, Get<int64_t>(file, v, key));
    } else if (key == "retry_max_ms") {
      ASSIGN_OR_RETURN(m.retry_max_ms, Get<int64_t>(file, v, key));
    } else {
      return Bad(file, entry.first, StrCat("unknown key '", key, "' in model ", name));
    }
  }
  if (m.provider != "openai" && m.provider != "anthropic") {
    return Bad(file, node, StrCat("model ", name, ": provider must be openai or anthropic"));
  }
  if (m.base_url.empty()) {
    m.base_url =
        m.provider == "anthropic" ? "https://api.anthropic.com" : "https://api.openai.com/v1";
  }
  if (m.model.empty()) return Bad(file, node, StrCat("model ", name, ": 'model' is required"));
  if (m.max_output_tokens < 1 || m.timeout_ms < 1 || m.max_retries < 0 || m.retry_base_ms < 0 ||
      m.input_cost_per_mtok < 0 || m.output_cost_per_mtok < 0) {
    return Bad(file, node, StrCat("model ", name, ": limits and costs must not be negative"));
  }
  if (!m.api_key_env.empty()) {
    auto it = environment.find(m.api_key_env);
    if (it == environment.end() || it->second.empty()) {
      return Bad(file, node,
                 StrCat("model ", name, ": the environment variable ", m.api_key_env,
                        " (api_key_env) is not set"));
    }
    m.api_key = it->second;
  }
  return m;
}

}  // namespace

StatusOr<AgentConfig> ParseAgentConfig(std::string_view text, std::string_view file,
                                       const std::map<std::string, std::string>& environment) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(
        StrCat(file, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
  }
  AgentConfig config;
  if (root.IsNull()) return config;
  if (!root.IsMap()) return Bad(file, root, "the top level must be a mapping");
  try {
    for (const auto& entry : root) {
      const std::string key = entry.first.Scalar();
      const YAML::Node& v = entry.second;
      if (key == "models") {
        if (!v.IsMap()) return Bad(file, v, "models must be a mapping of name to model");
        for (const auto& model : v) {
          const std::string name = model.first.Scalar();
          ASSIGN_OR_RETURN(config.models[name], ParseModel(file, name, model.second, environment));
        }
      } else if (key == "agent") {
        if (!v.IsMap()) return Bad(file, v, "agent must be a mapping");
        for (const auto& a : v) {
          const std::string k = a.first.Scalar();
          if (k == "max_steps") {
            ASSIGN_OR_RETURN(config.budgets.max_steps, Get<int>(file, a.second, k));
          } else if (k == "max_tokens") {
            ASSIGN_OR_RETURN(config.budgets.max_tokens, Get<int64_t>(file, a.second, k));
          } else if (k == "max_cost_usd") {
            ASSIGN_OR_RETURN(config.budgets.max_cost_usd, Get<double>(file, a.second, k));
          } else if (k == "max_wall_seconds") {
            ASSIGN_OR_RETURN(int64_t s, Get<int64_t>(file, a.second, k));
            config.budgets.max_wall_ms = s * 1000;
          } else if (k == "tool_output_bytes") {
            ASSIGN_OR_RETURN(config.tool_output_bytes, Get<int64_t>(file, a.second, k));
          } else if (k == "command_timeout_seconds") {
            ASSIGN_OR_RETURN(int64_t s, Get<int64_t>(file, a.second, k));
            config.command_timeout_ms = s * 1000;
          } else {
            return Bad(file, a.first, StrCat("unknown key '", k, "' in agent"));
          }
        }
        if (config.budgets.max_steps < 1 || config.budgets.max_tokens < 1 ||
            config.budgets.max_cost_usd <= 0 || config.tool_output_bytes < 256 ||
            config.command_timeout_ms < 1000) {
          return Bad(file, v, "agent budgets must be positive (tool_output_bytes ≥ 256)");
        }
      } else if (key == "review" || key == "review_repositories" || key == "identity" ||
                 key == "forges") {
        continue;  // read by the forge part (forge/policy.h)
      } else {
        return Bad(
            file, entry.first,
            StrCat("unknown key '", key,
                   "' (expected models, agent, review, review_repositories, identity, forges)"));
      }
    }
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(
        StrCat(file, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
  }
  return config;
}

StatusOr<AgentConfig> LoadAgentConfig(const std::filesystem::path& file) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(file));
  std::map<std::string, std::string> environment;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view var(*e);
    size_t eq = var.find('=');
    if (eq != std::string_view::npos) {
      environment[std::string(var.substr(0, eq))] = std::string(var.substr(eq + 1));
    }
  }
  return ParseAgentConfig(text, file.string(), environment);
}

}  // namespace nightshift::agent
