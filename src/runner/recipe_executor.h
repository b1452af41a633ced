#pragma once

#include <string>
#include <vector>

#include "agent/config.h"
#include "agent/tools.h"
#include "forge/builtin.h"
#include "forge/delivery.h"
#include "forge/policy.h"
#include "runner/executor.h"
#include "sandbox/pool.h"
#include "workspace/workspace.h"

namespace nightshift::runner {

// The deterministic agent: gets the repository at the run's ref and runs the recipe there with
// `sh -c`. In the sandbox, /workspace is an overlay of the cached checkout (and the prebuild
// of its environment) under the run's own upper dir, and the phases are fetch, checkout,
// environment and agent; without it, a fresh clone in the scratch dir (checkout, agent). A
// "prebuild" run stops after the environment phase. Phases are recorded as "phase" events with
// their durations; git's, setup's and the recipe's output as "log" events.
struct RecipeOptions {
  // Run the recipe in a sandbox (src/sandbox/contain.h) with the checkout at /workspace.
  // Requires root. Off: a plain process group in the checkout (development, non-root).
  bool sandbox = true;
  sandbox::CgroupLimits limits;               // per-run limits inside the sandbox
  std::vector<std::filesystem::path> masked;  // e.g. the platform's data dir
  // More of the host in every run's root, read-only (SandboxSpec::host_paths).
  std::vector<std::filesystem::path> host_paths;
  uid_t sandbox_uid = 100000;            // host uid of root inside; owns the checkout
  std::string git = "git";               // looked up in PATH
  sandbox::SandboxPool* pool = nullptr;  // pre-forked sandboxes of SandboxShape(); not owned
  // With the sandbox: mirrors, cached checkout layers and prebuilds (src/workspace); not
  // owned. Null: every run clones the repository into its scratch dir.
  workspace::Workspaces* workspaces = nullptr;
  // Models and budgets for runs of kind "agent"; not owned. Null: no agent runs.
  const agent::AgentConfig* agent = nullptr;
  // The review gate (not owned): with a forge, a sandboxed run that changed files has them
  // checked against the policy (by repository name, "" = default), committed, pushed to
  // nightshift/<kind>/<run-id> and recorded as a change request. Null: nothing is delivered.
  forge::BuiltinForge* forge = nullptr;
  const std::map<std::string, forge::ReviewPolicy>* review = nullptr;

  // The sandbox every run gets, but for its workspace (here `workspace`), hostname and limits.
  sandbox::SandboxSpec SandboxShape(const std::filesystem::path& workspace) const;
};

class RecipeExecutor final : public Executor {
 public:
  explicit RecipeExecutor(RecipeOptions options = {}) : options_(std::move(options)) {}
  Outcome Execute(Execution& execution) override;

 private:
  // Phases fetch → checkout → environment → agent over the workspace layers.
  Outcome ExecuteLayered(Execution& execution);
  // The run's result, read as data from its upper directory, committed by the platform in a
  // repository of its own (forge/delivery.h) and shown in the "result" event; then, for a run
  // that succeeded, Deliver.
  Outcome Conclude(Execution& execution, const workspace::RunWorkspace& ws, Outcome outcome,
                   const std::string& summary, const std::filesystem::path& upper,
                   const std::vector<std::filesystem::path>& layers);
  // The review gate on the platform's commit, then the push and the change request.
  Outcome Deliver(Execution& execution, const workspace::RunWorkspace& ws,
                  forge::DeliveryRepo& repo, const workspace::RunResult& result,
                  const std::map<std::string, forge::LineCount>& lines, const std::string& commit,
                  const std::string& run_diff, const std::string& title,
                  const std::string& summary);
  // The built-in agent (agent/loop.h) on the run's task, its tools in `sandbox`.
  Outcome RunBuiltinAgent(Execution& execution, agent::Sandbox& sandbox, std::string* summary);
  const RecipeOptions options_;
};

// Validates a ref the way `git check-ref-format` does for a branch/tag name, or accepts a hex
// object id. Empty means the repository's HEAD and is valid. InvalidArgument with the reason.
Status ValidateRef(std::string_view ref);

}  // namespace nightshift::runner
