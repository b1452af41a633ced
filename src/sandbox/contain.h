#pragma once

// The sandbox: what a contained process gets, and the ordered checklist that builds it between
// clone() and execve() (ContainInit and ContainPayload, in contain.cc, over one file pair per
// kernel facility: mounts, userns, netns, cgroups, seccomp, rlimits).
//
// Requires root (CAP_SYS_ADMIN in the initial user namespace): the mount, PID, UTS and IPC
// namespaces are furnished by the sandbox's PID 1 with full privileges — the binds and overlays
// of host directories that make its root, and the workspace attached to it later, need them —
// and only the process that execs the command enters the sandbox's own user namespace, where
// root maps to an unprivileged host uid and owns none of the other namespaces.

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
  // The base root. Empty: the host's system directories (DefaultHostPaths), read-only, and
  // nothing else of the host's tree. Else a root filesystem directory the operator built.
  std::filesystem::path rootfs;
  std::vector<std::filesystem::path> layers;  // overlay lower layers above the base, top first
  // More of the host, added by the operator: absolute paths (directories or files, such as
  // /opt/toolchains/go) bound read-only, nosuid and nodev at the same path, over either base.
  std::vector<std::filesystem::path> host_paths;
  std::filesystem::path workspace;  // bind-mounted read-write at /workspace (required)
  // Optional: /workspace is then an overlay of these read-only layers (top first) with
  // `workspace` as its writable upper dir and `workspace_work` (empty, on the same filesystem)
  // as overlayfs's work dir. How cached checkouts and prebuilds reach a run (src/workspace).
  std::vector<std::filesystem::path> workspace_layers;
  std::filesystem::path workspace_work;
  bool workspace_read_only = false;  // /workspace mounted read-only (per launch, not the shape)
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

// Checks a spec before anything is started: paths exist and are absolute directories (host
// paths: normal absolute paths of directories or files, not "/", not under the sandbox's own
// mounts, reached through no symlink but their last component), limits are possible.
// InvalidArgument naming the problem.
Status ValidateSandboxSpec(const SandboxSpec& spec);

// The host's top-level entries a sandbox without a rootfs gets, and all it gets of the host's
// tree besides SandboxSpec::host_paths: the system directories a toolchain needs (/usr, /bin,
// /sbin, /lib, /lib32, /lib64, /libx32, /etc). Those the host lacks are skipped; one that is a
// symlink on the host (merged /usr: /bin -> usr/bin) is the same symlink in the sandbox; a
// directory is bound read-only, nosuid and nodev, with its submounts.
const std::vector<std::string>& DefaultHostPaths();

// Paths every sandbox hides wherever its root shows them, besides the spec's own `masked`: the
// secrets of /etc (shadow and gshadow and their backups, sudoers, ssh host keys, TLS private
// keys, the Kerberos keytab).
const std::vector<std::string>& DefaultMaskedPaths();

}  // namespace nightshift::sandbox
