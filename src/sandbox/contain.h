#pragma once

// The sandbox: what a contained process gets, and the ordered checklist that builds it between
// clone() and execve() (ContainInit and ContainPayload, in contain.cc, over one file pair per
// kernel facility: mounts, userns, netns, cgroups, seccomp, rlimits).
//
// Requires root (CAP_SYS_ADMIN in the initial user namespace): the mount, PID, UTS and IPC
// namespaces are furnished by the sandbox's PID 1 with full privileges — an overlay of the host
// root cannot be mounted from inside an unprivileged user namespace, since the host's submounts
// are locked there — and only the process that execs the command enters the sandbox's own user
// namespace, where root maps to an unprivileged host uid and owns none of the other namespaces.

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "sandbox/cgroups.h"

namespace nightshift::sandbox {

struct SandboxSpec {
  std::filesystem::path rootfs;               // empty: the host root, read-only
  std::vector<std::filesystem::path> layers;  // overlay lower layers above the base, top first
  std::filesystem::path workspace;            // bind-mounted read-write at /workspace (required)
  // Optional: /workspace is then an overlay of these read-only layers (top first) with
  // `workspace` as its writable upper dir and `workspace_work` (empty, on the same filesystem)
  // as overlayfs's work dir. How cached checkouts and prebuilds reach a run (src/workspace).
  std::vector<std::filesystem::path> workspace_layers;
  std::filesystem::path workspace_work;
  std::vector<std::filesystem::path> masked;  // host paths hidden (e.g. the platform data dir)
  std::string hostname = "sandbox";
  uid_t host_uid = 100000;  // root inside maps to this unprivileged host uid
  gid_t host_gid = 100000;
  CgroupLimits limits;
  int64_t upper_bytes = int64_t{2} << 30;  // tmpfs holding the root's writable layer and /tmp
  bool seccomp = true;
};

// The smallest memory limit a sandbox takes.
inline constexpr int64_t kMinSandboxMemoryBytes = int64_t{16} << 20;

// Checks a spec before anything is started: paths exist and are absolute directories, limits
// are possible. InvalidArgument naming the problem.
Status ValidateSandboxSpec(const SandboxSpec& spec);

// Host paths every sandbox hides, besides the spec's own `masked`.
const std::vector<std::string>& DefaultMaskedPaths();

}  // namespace nightshift::sandbox
