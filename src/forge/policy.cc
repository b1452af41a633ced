#include "forge/policy.h"

#include <yaml-cpp/yaml.h>

#include <regex>

#include "core/fs.h"
#include "core/secrets.h"
#include "forge/builtin.h"

namespace nightshift::forge {

bool GlobMatch(std::string_view pattern, std::string_view path) {
  // Iterative matcher with backtracking for * (one segment) and ** (any).
  if (pattern.empty()) return path.empty();
  if (pattern.substr(0, 2) == "**") {
    std::string_view rest = pattern.substr(2);
    if (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
    for (size_t i = 0; i <= path.size(); ++i) {
      if (GlobMatch(rest, path.substr(i))) return true;
    }
    return false;
  }
  if (pattern.front() == '*') {
    for (size_t i = 0; i <= path.size(); ++i) {
      if (GlobMatch(pattern.substr(1), path.substr(i))) return true;
      if (i < path.size() && path[i] == '/') break;
    }
    return false;
  }
  if (path.empty()) return false;
  if (pattern.front() == '?' ? path.front() != '/' : pattern.front() == path.front()) {
    return GlobMatch(pattern.substr(1), path.substr(1));
  }
  return false;
}

std::vector<std::string> CheckChanges(const ReviewPolicy& policy,
                                      const std::vector<ChangedFile>& files,
                                      const std::string& diff) {
  std::vector<std::string> reasons;
  int64_t lines = 0;
  for (const ChangedFile& f : files) {
    for (const std::string& glob : policy.protected_paths) {
      if (GlobMatch(glob, f.path)) {
        reasons.push_back(StrCat("changes a protected path: ", f.path, " (", glob, ")"));
        break;
      }
    }
    if (f.added < 0) {
      if (f.bytes > policy.max_binary_bytes) {
        reasons.push_back(StrCat("adds a binary file of ", f.bytes, " bytes: ", f.path,
                                 " (at most ", policy.max_binary_bytes, ")"));
      }
    } else {
      lines += f.added + f.removed;
    }
  }
  if (static_cast<int>(files.size()) > policy.max_files) {
    reasons.push_back(StrCat("changes ", files.size(), " files (at most ", policy.max_files, ")"));
  }
  if (lines > policy.max_lines) {
    reasons.push_back(StrCat("changes ", lines, " lines (at most ", policy.max_lines, ")"));
  }
  if (policy.scan_secrets) {
    size_t at = 0;
    while (at < diff.size()) {
      size_t end = diff.find('\n', at);
      if (end == std::string::npos) end = diff.size();
      std::string_view line(diff.data() + at, end - at);
      at = end + 1;
      if (line.empty() || line[0] != '+' || line.substr(0, 3) == "+++") continue;
      const std::string added(line.substr(1));
      for (const std::regex& pattern : SecretPatterns()) {
        if (std::regex_search(added, pattern)) {
          reasons.push_back("adds something that looks like a secret (a token or private key)");
          at = diff.size();
          break;
        }
      }
    }
  }
  return reasons;
}

namespace {

Status Bad(std::string_view file, const YAML::Node& node, std::string_view reason) {
  return InvalidArgumentError(
      StrCat(file, ":", node.Mark().line + 1, ":", node.Mark().column + 1, ": ", reason));
}

StatusOr<ReviewPolicy> ParsePolicy(const YAML::Node& node, std::string_view file,
                                   ReviewPolicy policy) {
  if (!node.IsMap()) return Bad(file, node, "a review policy must be a mapping");
  for (const auto& entry : node) {
    const std::string key = entry.first.Scalar();
    const YAML::Node& v = entry.second;
    try {
      if (key == "protected_paths") {
        if (!v.IsSequence()) return Bad(file, v, "protected_paths must be a list of globs");
        policy.protected_paths = v.as<std::vector<std::string>>();
      } else if (key == "max_files") {
        policy.max_files = v.as<int>();
      } else if (key == "max_lines") {
        policy.max_lines = v.as<int64_t>();
      } else if (key == "max_binary_bytes") {
        policy.max_binary_bytes = v.as<int64_t>();
      } else if (key == "scan_secrets") {
        policy.scan_secrets = v.as<bool>();
      } else {
        return Bad(file, entry.first, StrCat("unknown key '", key, "' in a review policy"));
      }
    } catch (const YAML::Exception&) {
      return Bad(file, v, StrCat(key, " has the wrong type"));
    }
  }
  if (policy.max_files < 1 || policy.max_lines < 1 || policy.max_binary_bytes < 0) {
    return Bad(file, node, "review limits must be positive");
  }
  return policy;
}

// The config file's YAML; a syntax error as "FILE:LINE:COLUMN: reason".
StatusOr<YAML::Node> LoadYaml(std::string_view yaml, std::string_view file) {
  try {
    return YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(
        StrCat(file, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
  }
}

}  // namespace

StatusOr<Identity> ParseIdentity(std::string_view yaml, std::string_view file) {
  Identity identity;
  ASSIGN_OR_RETURN(YAML::Node root, LoadYaml(yaml, file));
  try {
    if (!root.IsMap() || !root["identity"]) return identity;
    const YAML::Node node = root["identity"];
    if (!node.IsMap()) return Bad(file, node, "identity must be a mapping of name and email");
    if (node["name"]) identity.name = node["name"].as<std::string>();
    if (node["email"]) identity.email = node["email"].as<std::string>();
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(
        StrCat(file, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
  }
  if (identity.name.empty() || identity.email.find('@') == std::string::npos) {
    return InvalidArgumentError(StrCat(file, ": identity needs a name and an email address"));
  }
  return identity;
}

StatusOr<std::map<std::string, ForgeLink>> ParseForgeLinks(
    std::string_view yaml, std::string_view file,
    const std::map<std::string, std::string>& environment) {
  std::map<std::string, ForgeLink> out;
  ASSIGN_OR_RETURN(YAML::Node root, LoadYaml(yaml, file));
  if (!root.IsMap() || !root["forges"]) return out;
  const YAML::Node forges = root["forges"];
  if (!forges.IsMap()) return Bad(file, forges, "forges must map repository names to forges");
  for (const auto& entry : forges) {
    const std::string repo = entry.first.Scalar();
    const YAML::Node& node = entry.second;
    if (!node.IsMap()) return Bad(file, node, StrCat("forge of ", repo, " must be a mapping"));
    ForgeLink link;
    try {
      for (const auto& kv : node) {
        const std::string key = kv.first.Scalar();
        const YAML::Node& v = kv.second;
        if (key == "type") {
          link.type = v.as<std::string>();
        } else if (key == "api_url") {
          link.options.api_url = v.as<std::string>();
        } else if (key == "project") {
          link.options.project = v.as<std::string>();
        } else if (key == "token_env" || key == "app_id" || key == "installation_id" ||
                   key == "private_key_file") {
          const std::string value = v.as<std::string>();
          if (key == "token_env") {
            auto it = environment.find(value);
            if (it == environment.end() || it->second.empty()) {
              return Bad(file, v,
                         StrCat("forge of ", repo, ": the environment variable ", value,
                                " (token_env) is not set"));
            }
            link.options.token = it->second;
          } else if (key == "app_id") {
            link.options.app_id = value;
          } else if (key == "installation_id") {
            link.options.installation_id = value;
          } else {
            auto pem = ReadFile(value);
            if (!pem.ok())
              return Bad(file, v, StrCat("forge of ", repo, ": ", pem.status().message()));
            link.options.private_key_pem = *pem;
          }
        } else if (key == "labels") {
          link.labels = v.as<std::vector<std::string>>();
        } else if (key == "draft") {
          link.draft = v.as<bool>();
        } else {
          return Bad(file, kv.first, StrCat("unknown key '", key, "' in the forge of ", repo));
        }
      }
    } catch (const YAML::Exception&) {
      return Bad(file, node, StrCat("forge of ", repo, ": a value has the wrong type"));
    }
    if (link.type != "github" && link.type != "gitlab") {
      return Bad(file, node, StrCat("forge of ", repo, ": type must be github or gitlab"));
    }
    out[repo] = std::move(link);
  }
  return out;
}

StatusOr<std::map<std::string, ReviewPolicy>> ParseReviewPolicies(std::string_view yaml,
                                                                  std::string_view file) {
  std::map<std::string, ReviewPolicy> out;
  ASSIGN_OR_RETURN(YAML::Node root, LoadYaml(yaml, file));
  out[""] = ReviewPolicy{};
  if (!root.IsMap()) return out;
  if (root["review"]) {
    ASSIGN_OR_RETURN(out[""], ParsePolicy(root["review"], file, ReviewPolicy{}));
  }
  if (const YAML::Node repos = root["review_repositories"]; repos) {
    if (!repos.IsMap()) return Bad(file, repos, "review_repositories must be a mapping");
    for (const auto& entry : repos) {
      ASSIGN_OR_RETURN(out[entry.first.Scalar()], ParsePolicy(entry.second, file, out[""]));
    }
  }
  return out;
}

}  // namespace nightshift::forge
