#pragma once

// Between the supervisor (process.cc) and the sandbox checklist (contain.cc). Not for other
// parts.

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sandbox/contain.h"

namespace nightshift::sandbox::internal {

// Every string the child needs, built in the parent: after clone() in a multi-threaded process
// the child may not allocate.
struct PreparedSandbox {
  std::filesystem::path staging;  // host dir: the tmpfs mount point for upper/work/root
  std::string staging_s, upper, work, root;
  // With layers over the host root: the host root as a read-only overlay of its own first
  // (see ContainMounts), at `base`, with `empty` as its second lower layer.
  std::string base, empty, base_options;
  std::string tmpfs_options, overlay_options;
  std::string workspace_target;  // the mount point, made before pivot_root
  std::string proc, proc_sys, dev, dev_pts, dev_shm, dev_ptmx, tmp;  // /sys: after pivot_root
  struct DevNode {
    std::string path;  // in the new root's /dev
    dev_t rdev;        // the host's device
    mode_t mode;
  };
  std::vector<DevNode> dev_nodes;
  std::vector<std::pair<std::string, std::string>> dev_links;  // link target → link path
  std::vector<std::pair<std::string, bool>> masks;             // path inside root, is dir
  std::string uid_map, gid_map;
};

enum class ContainStep : int32_t {
  kMountPrivate = 100,
  kMountStaging,
  kMountOverlay,
  kMountWorkspace,
  kMountProc,
  kMountSys,
  kMountDev,
  kMountTmp,
  kMask,
  kPivotRoot,
  kNet,
  kHostname,
  kRlimits,
  kUserns,
  kSetId,
  kCaps,
  kSeccomp,
  kCgroup,
  kInitFork,
  kLaunch,
};

// Builds the strings of `spec`'s shape (everything but workspace, hostname and limits, which
// come with the launch). The host staging directory is one mount point shared by all sandboxes
// of the process (each mounts its tmpfs there in its own mount namespace).
StatusOr<std::unique_ptr<PreparedSandbox>> PrepareSandbox(const SandboxSpec& spec);

// The spec's masked paths that lie inside its workspace, as ContainLaunch wants them: "d" or
// "f" then the path under /workspace.
std::vector<std::string> WorkspaceMasks(const SandboxSpec& spec);

using ContainFailure = std::optional<std::pair<ContainStep, int>>;

// The checklist, in two halves. Async-signal-safe; each returns the failed step and errno.
//

// ContainWarm, in the child right after clone() into new mount/PID/UTS/IPC namespaces: the
// overlay root, /proc — then `after_proc` —, /dev, /tmp, the masks, pivot_root, then
// `before_sys`, /sys and the masks under it, rlimits. The sandbox then waits, still
// privileged, for its command (launch.h). Hooks may be null.
struct WarmHooks {
  ContainFailure (*after_proc)(void* arg) = nullptr;  // the sandbox's /proc is at prepared.proc
  ContainFailure (*before_sys)(void* arg) = nullptr;  // after pivot_root
  void* arg = nullptr;
};
ContainFailure ContainWarm(const PreparedSandbox& prepared, const WarmHooks& hooks);

// The per-command part, in PID 1 once launched: the workspace (a detached mount,
// `workspace_fd`) at /workspace with `workspace_masks` ("d/path" or "f/path", null-terminated)
// over it, and the hostname. PID 1 keeps its privileges for this; the command never has them.
ContainFailure ContainLaunch(int workspace_fd, const char* const* workspace_masks,
                             const char* hostname);

// The command's process, the payload, is cloned by PID 1 into new user and cgroup namespaces
// before PID 1 mounts anything (launch.h). While PID 1 mounts, it makes the sandbox's network
// namespace (ContainPayloadNet: owned by its user namespace, loopback up), then empties its
// capability bounding set (ContainPayloadBounding) and installs the seccomp filter. PID 1,
// still root of the host's user namespace, writes its uid and gid maps once the sandbox's /proc
// is mounted (ContainPayloadMaps), then sends it "m"; the payload (ContainPayload) becomes root
// inside and clears its capabilities. PID 1 joins the payload's network namespace before it
// mounts /sys (ContainJoinNet, after pivot_root).
ContainFailure ContainPayloadNet();
ContainFailure ContainPayloadBounding();
ContainFailure ContainPayloadMaps(const PreparedSandbox& prepared, pid_t payload);
ContainFailure ContainPayload(int init);
ContainFailure ContainJoinNet(pid_t payload);

std::string_view ContainStepName(ContainStep step);

}  // namespace nightshift::sandbox::internal
