#pragma once

// The sandbox's mount namespace: its root (the allowed host directories, read-only, on a tmpfs
// of its own, or a rootfs; the spec's layers over either, with a writable layer on that tmpfs;
// the spec's host paths bound on top), a fresh /proc with /proc/sys read-only, a minimal /dev,
// tmpfs /tmp, read-only /sys, the masked paths, and pivot_root into it; at launch, the
// workspace at /workspace.
//
// PlanMounts and WorkspaceMount run in the supervisor (they allocate); the steps run in the
// sandbox's PID 1, which is still root of the host's user namespace (binds and overlays of the
// host's directories need privileges over the host's mounts: in an unprivileged user namespace
// they are locked), in the order Contain() gives (contain.cc). Internal to src/sandbox.

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "core/fs.h"
#include "core/status.h"
#include "sandbox/contain.h"
#include "sandbox/contain_step.h"

namespace nightshift::sandbox::internal {

// One thing to make while the root is assembled, at an absolute path of PID 1's (not yet
// pivoted) view.
struct RootEntry {
  enum class Kind {
    kDir,      // a directory (one that is already there will do)
    kSymlink,  // a symlink to `source`
    kBind,     // `source`, a host directory, bound recursively, read-only, nosuid, nodev
    kOverlay,  // a read-only overlay, nosuid, nodev; `source` is its options (lowerdir=…)
    // `source`, an operator's host path, bound like kBind at `components` under `path` (the
    // root): each component made if missing (a directory; the last one an empty file if
    // `file`) and opened in turn, refusing symlinks, so that nothing the rootfs, a layer or a
    // host directory has on the way sends the mount, or what is made for it, elsewhere.
    kHostPath,
  };
  Kind kind;
  std::string path;
  std::string source;
  std::vector<std::string> components;
  bool file = false;
};

// Every path and option string the steps need, made in the supervisor.
struct MountPlan {
  // The tmpfs the root is assembled on is mounted over `staging`, a directory of the host
  // shared by all sandboxes of the process (each mounts in its own namespace).
  std::string staging, tmpfs_options;
  // The new root: `staging` itself for the host base without layers (`read_only_root`: made
  // read-only once laid out), else an overlay mounted at `root` on the tmpfs, of
  // `overlay_options` (the layers over the rootfs, or over `skeleton`), its writable layer in
  // `upper` and `work`.
  std::string root;
  bool read_only_root = false;
  std::string upper, work, skeleton, overlay_options;
  // Made on the tmpfs before the overlay (the skeleton: the host's top-level entries as
  // symlinks and mount points), then in the root once it is there (binds, overlays, mount
  // points, the host paths).
  std::vector<RootEntry> before_overlay, in_root;
  std::string proc, proc_sys, proc_init_cmdline, dev, dev_pts, dev_shm, dev_ptmx, tmp;
  struct DevNode {
    std::string path;  // in the new root's /dev
    dev_t rdev;        // the host's device
    mode_t mode;
  };
  std::vector<DevNode> dev_nodes;
  std::vector<std::pair<std::string, std::string>> dev_links;  // link target, link path
  // What each masked path is (a directory, a file, a symlink, nothing) is looked at when it is
  // masked, in the sandbox's root: a plan holds only names.
  std::vector<std::string> masks;      // hidden before pivot_root: paths under `root`
  std::vector<std::string> sys_masks;  // under /sys, hidden once sysfs is mounted
};

// The plan for `spec`'s shape (everything but the workspace, hostname and limits, which come
// with each launch). FailedPrecondition if the host lacks a device /dev needs, or a layer lies
// inside a host directory it would be stacked over (overlayfs refuses that).
StatusOr<MountPlan> PlanMounts(const SandboxSpec& spec);

// The spec's masked paths that lie inside its workspace, as paths under /workspace.
std::vector<std::string> WorkspaceMasks(const SandboxSpec& spec);

// The workspace as a detached mount (made with the new mount API, so nothing is mounted in the
// supervisor's namespace), nosuid and nodev, and read-only if `read_only`: a recursive bind of
// `workspace`, or with `layers`, an overlay of them (top first) under the writable `workspace`
// with `work` as its work dir.
StatusOr<UniqueFd> WorkspaceMount(const std::filesystem::path& workspace,
                                  const std::vector<std::filesystem::path>& layers,
                                  const std::filesystem::path& work, bool read_only);

// --- The steps, in the sandbox's PID 1 (NS_CHILD: see raw_syscall.h). ---

// Nothing mounted from here on propagates back to the host.
NS_CHILD ContainFailure MakeMountsPrivate();
// The staging tmpfs and the root on it (the plan's entries, the overlay), with the workspace's
// mount point.
NS_CHILD ContainFailure MountRoot(const MountPlan& plan);
// A fresh /proc of the sandbox's PID namespace, /proc/sys read-only.
NS_CHILD ContainFailure MountProc(const MountPlan& plan);
// /dev: a tmpfs with null, zero, full, random, urandom, tty (made with mknod: PID 1 is real
// root), the fd links, a private devpts and a tmpfs /dev/shm; then read-only.
NS_CHILD ContainFailure MountDev(const MountPlan& plan);
NS_CHILD ContainFailure MountTmp(const MountPlan& plan);
// An empty read-only tmpfs over each masked directory, /dev/null over anything else; a path
// that is not there, or is a symlink (masked by its target), is left alone.
NS_CHILD ContainFailure MaskPaths(const std::vector<std::string>& masks);
// Into the new root; the host's tree is unmounted from the sandbox's namespace.
NS_CHILD ContainFailure PivotRoot(const MountPlan& plan);
// Read-only sysfs. After joining the sandbox's network namespace: sysfs shows the network
// devices of its mounter's.
NS_CHILD ContainFailure MountSys();
// At launch: the workspace (a detached mount, WorkspaceMount) at /workspace, and the masks in it
// ("/workspace/…", null-terminated).
NS_CHILD ContainFailure AttachWorkspace(int workspace_fd, const char* const* masks);

}  // namespace nightshift::sandbox::internal
