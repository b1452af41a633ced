#pragma once

// A repository's environment: the setup commands a prebuild runs once, the variables setup
// and the agent see, and what keys the prebuild. Declared in `.nightshift/environment.yml`;
// the common subset of `.devcontainer/devcontainer.json` is honoured too (docs/environments.md).

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace nightshift::workspace {

struct EnvironmentSpec {
  std::vector<std::string> setup;          // shell commands, run in order with `sh -c`
  std::map<std::string, std::string> env;  // for setup and for the agent
  std::vector<std::string> lock_files;     // extra files keying the prebuild (repo-relative)
  int64_t setup_timeout_seconds = 1800;
  std::vector<std::string> sources;  // files it was read from, repo-relative, in reading order

  bool empty() const { return setup.empty() && env.empty(); }
  // Stable text of everything that changes what a prebuild contains, for its key.
  std::string Canonical() const;
};

// Reads `.devcontainer/devcontainer.json` (else `.devcontainer.json`), then
// `.nightshift/environment.yml` (else `.yaml`) under `root`. Missing files give an empty spec.
// Setup is the devcontainer's commands then environment.yml's; environment.yml's variables win.
// InvalidArgument "FILE:LINE:COLUMN: reason" for an invalid file.
StatusOr<EnvironmentSpec> LoadEnvironment(const std::filesystem::path& root);

StatusOr<EnvironmentSpec> ParseEnvironmentYaml(std::string_view text, std::string_view file_name);
StatusOr<EnvironmentSpec> ParseDevcontainerJson(std::string_view text, std::string_view file_name);

// Lock files that key a prebuild when present at the repository's root.
const std::vector<std::string>& DefaultLockFiles();

}  // namespace nightshift::workspace
