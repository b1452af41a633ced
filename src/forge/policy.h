#pragma once

// The review policy a run's changes must pass before the platform pushes them: protected paths,
// size limits, no large binaries, nothing that looks like a secret. Configured in the server's
// config file (`review:` for all repositories, `review_repositories: {NAME: …}` per repository;
// read by forge/config.h); docs/review.md is the reference.

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/glob.h"
#include "core/status.h"
#include "forge/remote.h"
#include "workspace/result.h"

namespace nightshift::forge {

struct ReviewPolicy {
  std::vector<std::string> protected_paths = {
      ".github/workflows/**", ".gitlab-ci.yml",    ".nightshift/**", ".devcontainer/**",
      ".devcontainer.json",   ".gitmodules",       "CODEOWNERS",     ".github/CODEOWNERS",
      "docs/CODEOWNERS",      ".gitlab/CODEOWNERS"};
  int max_files = 100;
  int64_t max_lines = 5000;            // added + removed, binary files counted by their newlines
  int64_t max_binary_bytes = 1 << 20;  // per binary file
  bool scan_secrets = true;
};

struct LineCount {
  int64_t added = 0;  // -1: a binary file, counted by the newlines of its new content
  int64_t removed = 0;
};

// The checked-out version of a changed file (for the secret scan: only what the change adds
// counts).
using OldContent = std::function<StatusOr<std::string>(const workspace::FileChange&)>;

// The reasons the changes break the policy, one line each (no line breaks, whatever the paths
// hold); empty: they pass. Every path is checked on both sides of its change (a rename is a
// deletion and an addition), with its mode: a symlink named as, or pointing into, a protected
// path touches it, as does one pointing out of the repository; a submodule or nested
// repository, and a path git refuses to check out (.git in any spelling), never pass. Binary
// files count towards the line limit by their newlines; secrets are looked for in every byte
// of the new content. `lines` holds the line counts by path.
std::vector<std::string> CheckChanges(const ReviewPolicy& policy,
                                      const std::vector<workspace::FileChange>& changes,
                                      const std::map<std::string, LineCount>& lines,
                                      const OldContent& old_content);

// Whether a path would let a checkout write outside the work tree or into a repository's own
// metadata: a component that is ".git" in any case, or a spelling of it NTFS or HFS+ would
// take for it ("git~1", ".git. ", ".g\u200cit").
bool IsPathGitRefuses(std::string_view path);

// `path` for a message: control characters and quotes escaped.
std::string DisplayPath(std::string_view path);

// Whether `pattern` matches some path inside the directory `dir` ("" is the repository's root,
// inside which every non-empty pattern matches something).
bool GlobMatchesUnder(std::string_view pattern, std::string_view dir);

// Where a repository's change requests are also opened: a GitHub or GitLab project.
struct ForgeLink {
  std::string type;  // "github" or "gitlab"
  RemoteForgeOptions options;
  std::vector<std::string> labels = {"nightshift"};
  bool draft = true;
};

}  // namespace nightshift::forge
