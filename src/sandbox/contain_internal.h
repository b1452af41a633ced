#pragma once

// Between the supervisor (process.cc) and the sandbox checklist (contain.cc). Not for other
// parts.

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
  std::filesystem::path staging;  // host dir: tmpfs mount point for upper/work/root
  std::string staging_s, upper, work, root;
  // With layers over the host root: the host root as a read-only overlay of its own first
  // (see ContainMounts), at `base`, with `empty` as its second lower layer.
  std::string base, empty, base_options;
  std::string tmpfs_options, overlay_options;
  std::string workspace_source, workspace_target;
  std::string proc, proc_sys, sys, dev, dev_pts, dev_shm, dev_ptmx, tmp;
  std::vector<std::pair<std::string, std::string>> dev_nodes;  // host node → target
  std::vector<std::pair<std::string, std::string>> dev_links;  // link target → link path
  std::vector<std::pair<std::string, bool>> masks;             // path inside root, is dir
  std::string hostname;
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
};

StatusOr<std::unique_ptr<PreparedSandbox>> PrepareSandbox(const SandboxSpec& spec);
void RemovePrepared(PreparedSandbox& prepared);

// In the child, right after clone() into new mount/PID/net/UTS/IPC/cgroup namespaces: runs the
// checklist. Writes "u" to `to_parent` once in its user namespace and waits for "m" (maps
// written) on `from_parent`. Async-signal-safe. Returns the failed step and errno, if any.
std::optional<std::pair<ContainStep, int>> Contain(const PreparedSandbox& prepared, int to_parent,
                                                   int from_parent);

std::string_view ContainStepName(ContainStep step);

// One byte of the parent/child handshake (0 at EOF). Async-signal-safe.
char ReadSyncByte(int fd);

}  // namespace nightshift::sandbox::internal
