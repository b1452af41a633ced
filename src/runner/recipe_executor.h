#pragma once

#include <string>
#include <vector>

#include "agent/config.h"
#include "agent/tools.h"
#include "runner/executor.h"
#include "sandbox/pool.h"
#include "workspace/workspace.h"

namespace nightshift::runner {

// Carries out a run: the phases fetch, checkout, environment and agent (a recipe with `sh -c`, or
// the built-in agent), each recorded as a "phase" event with its duration, git's, setup's and
// the recipe's output as "log" events. In the sandbox, /workspace is an overlay of the cached
// checkout (and the prebuild of its environment, or this run's setup) under the run's own upper
// dir; when the agent phase is done, what the run changed is read from that upper dir as data
// and handed to the control plane (Execution::conclude), which delivers it. Without the
// sandbox (no root): recipes only, in a private checkout, and nothing is delivered. A
// "prebuild" run stops after the environment phase.
struct RecipeOptions {
  // Run in a sandbox (src/sandbox/contain.h) with the checkout at /workspace. Requires root.
  // Off: a plain process group in a private checkout (development, non-root).
  bool sandbox = true;
  sandbox::CgroupLimits limits;               // per-run limits inside the sandbox
  std::vector<std::filesystem::path> masked;  // e.g. the platform's data dir
  // More of the host in every run's root, read-only (SandboxSpec::host_paths).
  std::vector<std::filesystem::path> host_paths;
  uid_t sandbox_uid = 100000;            // host uid of root inside; owns the checkout
  std::string git = "git";               // looked up in PATH
  sandbox::SandboxPool* pool = nullptr;  // pre-forked sandboxes of SandboxShape(); not owned
  // Mirrors, checkouts and prebuilds (src/workspace); not owned; required.
  workspace::Workspaces* workspaces = nullptr;
  // Models and budgets for runs of kind "agent"; not owned. Null: no agent runs.
  const agent::AgentConfig* agent = nullptr;

  // The sandbox every run gets, but for its workspace (here `workspace`), hostname and limits.
  sandbox::SandboxSpec SandboxShape(const std::filesystem::path& workspace) const;
};

class RecipeExecutor final : public Executor {
 public:
  explicit RecipeExecutor(RecipeOptions options = {}) : options_(std::move(options)) {}
  Outcome Execute(Execution& execution) override;

 private:
  // The built-in agent (agent/loop.h) on the run's task, its tools in `sandbox`.
  Outcome RunBuiltinAgent(Execution& execution, agent::Sandbox& sandbox,
                          const std::vector<std::string>& secrets, std::string* summary);
  const RecipeOptions options_;
};

// Validates a ref the way `git check-ref-format` does for a branch/tag name, or accepts a hex
// object id. Empty means the repository's HEAD and is valid. InvalidArgument with the reason.
Status ValidateRef(std::string_view ref);

// Where the platform puts a run's context files (store::RunSpec::context) in its workspace.
inline constexpr std::string_view kContextDir = ".nightshift/context/";

// A context file's path: kContextDir and a plain name ([A-Za-z0-9._-], not starting with
// '.'). InvalidArgument otherwise.
Status ValidateContextPath(std::string_view path);

}  // namespace nightshift::runner
