#pragma once

// An agent::Sandbox for tests of what the agent does with a sandbox — the loop, the tools'
// argument handling, budgets, redaction, transcripts — that runs as any user: no isolation at
// all. Each call runs `sh -c script` as a plain process of the test's own user (RunProcess
// without a sandbox) in a host directory that stands for /workspace. The tools name
// /workspace in their scripts and arguments, so the path is swapped both ways: "/workspace" in
// the script and the environment's values becomes the directory, and the directory in the
// output becomes "/workspace" again. stdin (a file's new content) is passed as it is.
//
// What needs the real sandbox — the tools running as the sandbox's user, inside its root —
// is tested with agent::ProcessSandbox, as root.

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include "agent/tools.h"

namespace nightshift::testing {

class HostDirSandbox final : public agent::Sandbox {
 public:
  // `dir` must exist; it is used by its canonical path (symlinks resolved), as the tools'
  // `realpath` sees it.
  explicit HostDirSandbox(const std::filesystem::path& dir);

  StatusOr<Result> Run(const std::string& script, const std::map<std::string, std::string>& env,
                       const std::string& stdin_data, int64_t timeout_ms,
                       const CancelToken* cancel) override;

 private:
  std::string dir_;
};

}  // namespace nightshift::testing
