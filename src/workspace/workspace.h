#pragma once

// Getting a run's workspace ready: the repository's mirror fetched, the requested ref's
// checkout as cached layers, and its environment (environment.h) — a prebuild snapshot reused
// or built, or the setup left for the run to do. The runner calls one step per phase and
// records each as a run event.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "sandbox/pool.h"
#include "sandbox/process.h"
#include "workspace/cache.h"
#include "workspace/environment.h"
#include "workspace/git.h"
#include "workspace/layered_tree.h"
#include "workspace/mirror.h"

namespace nightshift::workspace {

struct WorkspaceOptions {
  std::filesystem::path data_dir;  // holds mirrors/ and cache/
  int64_t cache_max_bytes = int64_t{20} << 30;
  int64_t mirror_max_age_ms = 0;  // 0: fetch on every run
  // The sandbox setup commands run in (its workspace fields are filled in per run).
  sandbox::SandboxSpec sandbox;
  sandbox::SandboxPool* pool = nullptr;
  std::string git = "git";
};

// Where a run's /workspace comes from: an overlay of `layers` (top first) under the run's own
// upper dir.
struct RunWorkspace {
  std::filesystem::path mirror;  // the repository's mirror it came from
  std::string commit;
  LayerLease checkout;
  std::optional<LayerLease> prebuild;
  EnvironmentSpec environment;
  std::string prebuild_id;      // empty when the environment has no setup
  std::string prebuild_status;  // "none", "reused", "built", or "failed: <why>"
  bool setup_pending = false;   // no prebuild: the run runs setup itself
  // Without the sandbox (CheckoutCopy): the run's own writable checkout, no layers.
  std::filesystem::path copy;

  std::vector<std::filesystem::path> layers() const;
};

// What a setup command run produced.
struct SetupOutcome {
  bool ok = false;
  std::string reason;  // when not ok: which command, and how it ended
};

class Workspaces {
 public:
  explicit Workspaces(WorkspaceOptions options);

  // Phase "fetch": the repository's mirror, up to date.
  StatusOr<std::filesystem::path> Fetch(const std::string& repo_key, const std::string& url,
                                        const GitContext& git);
  // Phase "checkout": `ref` resolved in the mirror, and its layers.
  StatusOr<RunWorkspace> Checkout(const std::string& repo_key, const std::string& url,
                                  const std::filesystem::path& mirror, const std::string& ref,
                                  const GitContext& git);
  // Phase "checkout" without the sandbox (no overlay mounts): `ref` resolved in the mirror and
  // checked out, by the same means as a cached layer, into `dir`, the run's own to write.
  StatusOr<RunWorkspace> CheckoutCopy(const std::string& repo_key, const std::string& url,
                                      const std::filesystem::path& mirror, const std::string& ref,
                                      const std::filesystem::path& dir, const GitContext& git);
  // Phase "environment": reads the environment files through the layers and, when it has
  // setup, reuses or builds the prebuild (`build` false: only reuse). A failed prebuild is not
  // an error: the run falls back to running setup itself (setup_pending), and the failure is
  // remembered so later runs with the same key do not retry it; `force` retries.
  // InvalidArgument for an invalid environment file (FILE:LINE:COLUMN: reason).
  Status Environment(RunWorkspace& workspace, const std::string& repo_key, bool build, bool force,
                     const sandbox::LineSink& log, const CancelToken* cancel);

  // Runs the environment's setup commands, in order, in a sandbox whose /workspace is `layers`
  // under `upper` (with `work` as overlayfs's work dir). Output goes to `log`.
  StatusOr<SetupOutcome> RunSetup(const EnvironmentSpec& environment,
                                  const std::vector<std::filesystem::path>& layers,
                                  const std::filesystem::path& upper,
                                  const std::filesystem::path& work, const std::string& hostname,
                                  const sandbox::LineSink& log, const CancelToken* cancel);

  // The same without the sandbox: plain processes in the run's own checkout `dir`.
  StatusOr<SetupOutcome> RunSetupPlain(const EnvironmentSpec& environment,
                                       const std::filesystem::path& dir,
                                       const sandbox::LineSink& log, const CancelToken* cancel);

  // The prebuild key of `environment` for the checkout in `layers`: a hash of the spec, the
  // base root and the lock files' contents.
  std::string PrebuildKey(const EnvironmentSpec& environment,
                          const std::vector<std::filesystem::path>& layers) const;

  LayerCache& cache() { return cache_; }
  const WorkspaceOptions& options() const { return options_; }

 private:
  // `ref` resolved to a commit in the mirror, which is cloned again (once) if it is corrupt.
  StatusOr<std::string> Resolve(const std::string& repo_key, const std::string& url,
                                const std::filesystem::path& mirror, const std::string& ref,
                                const GitContext& git);
  const WorkspaceOptions options_;
  Mirrors mirrors_;
  LayerCache cache_;
  // Runs each setup command through `run` (the process spec of one command, given the
  // command and the time left), in order, until one fails.
  StatusOr<SetupOutcome> RunSetupWith(
      const EnvironmentSpec& environment, const sandbox::LineSink& log, const CancelToken* cancel,
      const std::function<sandbox::ProcessSpec(const std::string& command, int64_t left_ms)>&
          make_spec);

  std::string base_root_id_;
};

}  // namespace nightshift::workspace
