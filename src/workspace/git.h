#pragma once

// Running git for the workspace part: a fixed, hermetic environment (no system or global
// config, no terminal prompts), bounded time, cancellable, output collected and logged.

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "sandbox/process.h"

namespace nightshift::workspace {

struct GitContext {
  std::string git = "git";     // looked up in PATH
  std::filesystem::path home;  // HOME for git (credentials helpers, known_hosts)
  const sandbox::CancelToken* cancel = nullptr;
  sandbox::LineSink log;  // git's stderr lines (progress, warnings); may be empty
  int64_t timeout_ms = 10 * 60 * 1000;
};

struct GitOutput {
  int exit_code = 0;
  std::vector<std::string> out;  // stdout lines
  std::string last_error;        // git's last stderr line, for messages
};

// Runs `git args...` in `cwd`. Errors: the process could not run, was cancelled (Cancelled) or
// timed out (DeadlineExceeded). A non-zero exit is not an error here: see exit_code.
StatusOr<GitOutput> RunGit(const GitContext& context, const std::filesystem::path& cwd,
                           const std::vector<std::string>& args,
                           const std::map<std::string, std::string>& extra_env = {},
                           std::optional<sandbox::ProcessSpec::PrivateOverlay> overlay = {});

// RunGit, with a non-zero exit turned into an error `what: <git's last error line>`.
StatusOr<GitOutput> RunGitOk(const GitContext& context, const std::filesystem::path& cwd,
                             const std::vector<std::string>& args, std::string_view what);

// The environment git runs with.
std::map<std::string, std::string> GitEnvironment(const GitContext& context);

}  // namespace nightshift::workspace
