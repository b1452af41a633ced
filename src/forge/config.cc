#include "forge/config.h"

#include <algorithm>

#include "core/fs.h"

namespace nightshift::forge {
namespace {

// Git takes an identity apart at '<' and '>' and a line break ends its header: none may be in
// one.
bool IsIdentityText(const std::string& text) {
  return std::none_of(text.begin(), text.end(), [](char c) {
    return c == '<' || c == '>' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  });
}

ForgeLink ParseForgeLink(const ConfigNode& node, const Environment& environment,
                         ConfigErrors& errors) {
  ForgeLink link;
  RemoteForgeOptions& options = link.options;
  const size_t errors_before = errors.size();
  auto token_env = EnvironmentSecret(environment, &options.token, errors);
  auto private_key_file = [&](const ConfigNode& value) {
    std::string path;
    if (!ReadConfigValue(value, &path, errors)) return;
    auto pem = ReadFile(path);
    if (!pem.ok()) {
      errors.Add(value, StrCat(value.path(), ": ", pem.status().message()));
      return;
    }
    options.private_key_pem = std::move(*pem);
  };
  if (!ReadConfigFields(node,
                        {{"type", &link.type},
                         {"api_url", &options.api_url},
                         {"project", &options.project},
                         {"token_env", token_env},
                         {"app_id", &options.app_id},
                         {"installation_id", &options.installation_id},
                         {"private_key_file", private_key_file},
                         {"labels", &link.labels},
                         {"draft", &link.draft}},
                        errors)) {
    return link;
  }
  RequireConfig(link.type == "github" || link.type == "gitlab", node, "type",
                "must be github or gitlab", errors);
  if (errors.size() == errors_before) {
    // The client's own checks (project's form, credentials, api_url): refused now, not at the
    // first change request.
    if (auto made = MakeRemoteForge(link); !made.ok()) {
      errors.AddAtKey(node, StrCat(node.path(), ": ", made.status().message()));
    }
  }
  return link;
}

}  // namespace

ReviewPolicy ParseReviewPolicy(const ConfigNode& node, ReviewPolicy base, ConfigErrors& errors) {
  ReviewPolicy policy = std::move(base);
  if (!ReadConfigFields(node,
                        {{"protected_paths", &policy.protected_paths},
                         {"max_files", &policy.max_files},
                         {"max_lines", &policy.max_lines},
                         {"max_binary_bytes", &policy.max_binary_bytes},
                         {"scan_secrets", &policy.scan_secrets}},
                        errors)) {
    return policy;
  }
  // Only what this node sets: what it did not came from `base`, checked where that was read.
  auto require = [&](bool ok, std::string_view key, std::string_view requirement) {
    if (node.Find(key) != nullptr) RequireConfig(ok, node, key, requirement, errors);
  };
  require(policy.max_files >= 1, "max_files", "must be at least 1");
  require(policy.max_lines >= 1, "max_lines", "must be at least 1");
  require(policy.max_binary_bytes >= 0, "max_binary_bytes", "must be at least 0");
  return policy;
}

std::map<std::string, ReviewPolicy> ParseReviewPolicies(const ConfigNode& repositories,
                                                        const ReviewPolicy& base,
                                                        ConfigErrors& errors) {
  std::map<std::string, ReviewPolicy> out;
  if (!CheckConfigMapping(repositories, errors,
                          "a mapping of repository names to review policies")) {
    return out;
  }
  for (const ConfigNode& repository : repositories.children()) {
    out[repository.key()] = ParseReviewPolicy(repository, base, errors);
  }
  return out;
}

Identity ParseIdentity(const ConfigNode& node, ConfigErrors& errors) {
  Identity identity;
  if (!ReadConfigFields(node, {{"name", &identity.name}, {"email", &identity.email}}, errors)) {
    return identity;
  }
  RequireConfig(!identity.name.empty() && IsIdentityText(identity.name), node, "name",
                "must be a name (not empty; no '<', '>' or control characters)", errors);
  RequireConfig(identity.email.find('@') != std::string::npos && IsIdentityText(identity.email),
                node, "email", "must be an email address (no '<', '>' or control characters)",
                errors);
  return identity;
}

std::map<std::string, ForgeLink> ParseForgeLinks(const ConfigNode& forges,
                                                 const Environment& environment,
                                                 ConfigErrors& errors) {
  std::map<std::string, ForgeLink> out;
  if (!CheckConfigMapping(forges, errors, "a mapping of repository names to forges")) return out;
  for (const ConfigNode& repository : forges.children()) {
    out[repository.key()] = ParseForgeLink(repository, environment, errors);
  }
  return out;
}

StatusOr<std::unique_ptr<RemoteForge>> MakeRemoteForge(const ForgeLink& link) {
  if (link.type == "github") return MakeGitHub(link.options);
  if (link.type == "gitlab") return MakeGitLab(link.options);
  return InvalidArgumentError(StrCat("unknown forge type '", link.type, "'"));
}

}  // namespace nightshift::forge
