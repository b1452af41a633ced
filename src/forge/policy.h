#pragma once

// The review policy a run's changes must pass before the platform pushes them: protected paths,
// size limits, no large binaries, nothing that looks like a secret. Configured in the server's
// config file (`review:` for all repositories, `review_repositories: {NAME: …}` per repository);
// docs/review.md is the reference.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "forge/remote.h"

namespace nightshift::forge {

struct ReviewPolicy {
  std::vector<std::string> protected_paths = {
      ".github/workflows/**", ".gitlab-ci.yml",  ".nightshift/**",    "CODEOWNERS",
      ".github/CODEOWNERS",   "docs/CODEOWNERS", ".gitlab/CODEOWNERS"};
  int max_files = 100;
  int64_t max_lines = 5000;            // added + removed
  int64_t max_binary_bytes = 1 << 20;  // per binary file
  bool scan_secrets = true;
};

struct ChangedFile {
  std::string path;
  int64_t added = 0;    // -1 for a binary file
  int64_t removed = 0;  // -1 for a binary file
  int64_t bytes = 0;    // size of a binary file
};

// The reasons the changes break the policy, one per line of a message; empty: they pass.
std::vector<std::string> CheckChanges(const ReviewPolicy& policy,
                                      const std::vector<ChangedFile>& files,
                                      const std::string& diff);

// Glob over '/'-separated paths: `*` and `?` stay within a segment, `**` spans segments.
bool GlobMatch(std::string_view pattern, std::string_view path);

// The platform's git identity for the agent's commits and merges (`identity: {name, email}`).
StatusOr<struct Identity> ParseIdentity(std::string_view yaml, std::string_view file_name);

// Where a repository's change requests are also opened: a GitHub or GitLab project.
struct ForgeLink {
  std::string type;  // "github" or "gitlab"
  RemoteForgeOptions options;
  std::vector<std::string> labels = {"nightshift"};
  bool draft = true;
};

// `forges: {REPO: {type, api_url, project, token_env | app_id + installation_id +
// private_key_file, labels, draft}}`; secrets come from `environment` and files.
StatusOr<std::map<std::string, ForgeLink>> ParseForgeLinks(
    std::string_view yaml, std::string_view file_name,
    const std::map<std::string, std::string>& environment);

// Per repository name ("" = every repository without one of its own), from the YAML config
// text (its `review` and `review_repositories` keys; other keys are ignored).
StatusOr<std::map<std::string, ReviewPolicy>> ParseReviewPolicies(std::string_view yaml,
                                                                  std::string_view file_name);

}  // namespace nightshift::forge
