#include "sandbox/contain.h"

#include <sched.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include <cstring>

#include "sandbox/cgroups.h"
#include "sandbox/contain_internal.h"
#include "sandbox/netns.h"
#include "sandbox/raw_syscall.h"
#include "sandbox/rlimits.h"

namespace nightshift::sandbox {

const std::vector<std::string>& DefaultHostPaths() {
  static const auto* paths = new std::vector<std::string>{"/usr",   "/bin",   "/sbin",   "/lib",
                                                          "/lib32", "/lib64", "/libx32", "/etc"};
  return *paths;
}

const std::vector<std::string>& DefaultMaskedPaths() {
  // Nothing but /etc: the rest of the host (/root, /home, /run, /var…) is not in the root at all.
  static const auto* paths = new std::vector<std::string>{
      "/etc/shadow",    "/etc/shadow-", "/etc/gshadow",     "/etc/gshadow-",   "/etc/sudoers",
      "/etc/sudoers.d", "/etc/ssh",     "/etc/ssl/private", "/etc/krb5.keytab"};
  return *paths;
}

Status ValidateSandboxSpec(const SandboxSpec& spec) {
  auto dir = [](const std::filesystem::path& p, std::string_view what) -> Status {
    if (!p.is_absolute())
      return InvalidArgumentError(StrCat(what, " must be an absolute path: ", p.string()));
    std::error_code ec;
    if (!std::filesystem::is_directory(p, ec)) {
      return InvalidArgumentError(StrCat(what, " is not a directory: ", p.string()));
    }
    return OkStatus();
  };
  if (spec.workspace.empty()) return InvalidArgumentError("a sandbox needs a workspace");
  RETURN_IF_ERROR(dir(spec.workspace, "workspace"));
  if (!spec.workspace_layers.empty()) {
    for (const auto& layer : spec.workspace_layers) RETURN_IF_ERROR(dir(layer, "workspace layer"));
    RETURN_IF_ERROR(dir(spec.workspace_work, "workspace work dir"));
  }
  if (!spec.rootfs.empty()) RETURN_IF_ERROR(dir(spec.rootfs, "rootfs"));
  for (const auto& layer : spec.layers) RETURN_IF_ERROR(dir(layer, "layer"));
  for (const auto& path : spec.host_paths) {
    // Mounted at its own path in the sandbox's root: a normal absolute path, so that the mount
    // point is that path and no other.
    if (!path.is_absolute() || path != path.lexically_normal() || path.filename().empty()) {
      return InvalidArgumentError(
          StrCat("host path must be a normal absolute path other than /: ", path.string()));
    }
    // The sandbox's own mounts would hide it.
    for (const char* own : {"/workspace", "/proc", "/dev", "/sys", "/tmp", "/var/tmp"}) {
      const auto relative = path.lexically_relative(own);
      if (!relative.empty() && *relative.begin() != "..") {
        return InvalidArgumentError(
            StrCat("host path ", path.string(), " lies under the sandbox's own ", own));
      }
    }
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !(S_ISDIR(st.st_mode) || S_ISREG(st.st_mode))) {
      return InvalidArgumentError(
          StrCat("host path is not a directory or a file on this host: ", path.string()));
    }
    // Its mount point is made in the sandbox's root refusing symlinks (mounts.cc): say so now,
    // not as a failed mount. Its last component may be one (its target is mounted).
    std::error_code ec;
    const auto parent = std::filesystem::canonical(path.parent_path(), ec);
    if (ec || parent != path.parent_path()) {
      return InvalidArgumentError(
          StrCat("host path goes through a symlink on this host: ", path.string(), " (give ",
                 (parent / path.filename()).string(), ")"));
    }
  }
  if (spec.limits.memory_bytes < 0 || spec.limits.pids < 0 || spec.limits.cpus < 0) {
    return InvalidArgumentError("limits must not be negative");
  }
  // The sandbox's payload runs in the supervisor's memory until it execs, and the OOM killer
  // kills every process sharing its victim's (launch.h): the smallest limit leaves its set-up
  // (~0.25 MiB charged) and an exec far from it.
  if (spec.limits.memory_bytes > 0 && spec.limits.memory_bytes < kMinSandboxMemoryBytes) {
    return InvalidArgumentError("impossible limit: memory below 16 MiB");
  }
  if (spec.limits.cpus > 0 && spec.limits.cpus < 0.01) {
    return InvalidArgumentError("impossible limit: cpus below 0.01");
  }
  if (spec.upper_bytes < (1 << 20)) return InvalidArgumentError("upper_bytes below 1 MiB");
  if (spec.host_uid == 0 || spec.host_gid == 0) {
    return InvalidArgumentError("the sandbox must map root to an unprivileged host uid and gid");
  }
  return OkStatus();
}

namespace internal {

StatusOr<std::unique_ptr<PreparedSandbox>> PrepareSandbox(const SandboxSpec& spec) {
  RETURN_IF_ERROR(ValidateSandboxSpec(spec));
  auto prepared = std::make_unique<PreparedSandbox>();
  ASSIGN_OR_RETURN(prepared->mounts, PlanMounts(spec));
  prepared->ids = MapRootTo(spec.host_uid, spec.host_gid);
  return prepared;
}

namespace {

// The handshake between PID 1 and the payload (child.h's messages over `link`).
constexpr char kUsernsMade = 'u';    // payload → PID 1: its user namespace exists
constexpr char kMapsWritten = 'm';   // PID 1 → payload: its uid/gid maps are in place
constexpr char kPayloadReady = 'r';  // payload → PID 1: root inside, no capabilities, filtered

NS_CHILD ContainFailure Tell(int link, char tag, ContainStep step) {
  if (!SendTag(link, tag)) return Failed(step, EPIPE);
  return std::nullopt;
}

NS_CHILD ContainFailure Await(int link, char tag, ContainStep step) {
  if (auto failure = AwaitTag(link, tag, static_cast<int32_t>(step))) return failure;
  return std::nullopt;
}

NS_CHILD ContainFailure InstallFilter(const SeccompProgram* seccomp) {
  if (seccomp == nullptr) {
    return Check(ContainStep::kSeccomp, sys::Prctl(PR_SET_NO_NEW_PRIVS, 1));
  }
  if (int error = InstallSeccompProgram(*seccomp); error != 0) {
    return Failed(ContainStep::kSeccomp, error);
  }
  return std::nullopt;
}

// The network namespace the supervisor made (netns.h), from `socket`, joined.
NS_CHILD ContainFailure ReceiveNetns(int socket) {
  int netns = -1;
  if (ReceiveFds(socket, &netns, 1, 1) != kNetnsMessage) return Failed(ContainStep::kNet, EPROTO);
  return JoinNetns(netns);
}

NS_CHILD ContainFailure SetHostname(const char* hostname) {
  return Check(ContainStep::kHostname, sys::Sethostname(hostname, std::strlen(hostname)));
}

}  // namespace

// The two halves overlap each other and the supervisor's making of the network namespace (the
// largest single cost). Each half's order matters where it says why.
ContainFailure ContainInit(const PreparedSandbox& p, pid_t payload, int link, int control) {
  const MountPlan& m = p.mounts;
  RETURN_IF_FAILED(MakeMountsPrivate());
  RETURN_IF_FAILED(MountRoot(m));
  RETURN_IF_FAILED(MountProc(m));
  RETURN_IF_FAILED(MountDev(m));
  RETURN_IF_FAILED(MountTmp(m));
  RETURN_IF_FAILED(MaskPaths(m.masks));
  // The payload has made its user namespace meanwhile: its maps, through the sandbox's /proc,
  // where `payload` is its pid. Before pivot_root: until pivot_root's old root is unmounted, the
  // kernel takes the payload, which shares our mount namespace, for chrooted, and refuses it a
  // user namespace (EPERM).
  RETURN_IF_FAILED(Await(link, kUsernsMade, ContainStep::kUserns));
  RETURN_IF_FAILED(WriteIdMaps(m.proc.c_str(), payload, p.ids));
  RETURN_IF_FAILED(Tell(link, kMapsWritten, ContainStep::kUserns));
  RETURN_IF_FAILED(PivotRoot(m));
  // Before /sys, which shows the network devices of its mounter's namespace.
  RETURN_IF_FAILED(ReceiveNetns(control));
  RETURN_IF_FAILED(MountSys());
  return MaskPaths(m.sys_masks);
}

ContainFailure AwaitPayloadReady(int link) {
  return Await(link, kPayloadReady, ContainStep::kInitFork);
}

ContainFailure ContainPayload(const SeccompProgram* seccomp, const CgroupFiles& cgroup, int direct,
                              int link) {
  // Into the sandbox's cgroup first, so all it makes is accounted there. Then, while the
  // supervisor makes the network namespace, the IPC namespace: only the command needs one.
  RETURN_IF_FAILED(JoinCgroup(cgroup));
  RETURN_IF_FAILED(Check(ContainStep::kIpc, sys::Unshare(CLONE_NEWIPC)));
  // Still root of the host's user namespace, which owns the network namespace: join it, and
  // drop the supervisor's supplementary groups. Then the sandbox's own user namespace, and a
  // cgroup namespace rooted at the sandbox's cgroup.
  RETURN_IF_FAILED(ReceiveNetns(direct));
  RETURN_IF_FAILED(DropSupplementaryGroups());
  RETURN_IF_FAILED(Check(ContainStep::kUserns, sys::Unshare(CLONE_NEWUSER | CLONE_NEWCGROUP)));
  RETURN_IF_FAILED(Tell(link, kUsernsMade, ContainStep::kUserns));
  RETURN_IF_FAILED(ApplyRlimits());
  // While still privileged in the new user namespace: dropping from the bounding set needs
  // CAP_SETPCAP.
  RETURN_IF_FAILED(DropBoundingSet());
  RETURN_IF_FAILED(InstallFilter(seccomp));
  RETURN_IF_FAILED(Await(link, kMapsWritten, ContainStep::kUserns));
  RETURN_IF_FAILED(BecomeRoot());
  RETURN_IF_FAILED(ClearCapabilities());
  return Tell(link, kPayloadReady, ContainStep::kInitFork);
}

ContainFailure ContainLaunch(int workspace_fd, const Command& command) {
  RETURN_IF_FAILED(AttachWorkspace(workspace_fd, command.masks));
  return SetHostname(command.hostname);
}

std::string_view ContainStepName(ContainStep step) {
  switch (step) {
    case ContainStep::kMountPrivate:
      return "make mounts private";
    case ContainStep::kMountStaging:
      return "mount the sandbox tmpfs";
    case ContainStep::kMountOverlay:
      return "mount the overlay root";
    case ContainStep::kMountWorkspace:
      return "bind the workspace";
    case ContainStep::kMountProc:
      return "mount /proc";
    case ContainStep::kMountSys:
      return "mount /sys";
    case ContainStep::kMountDev:
      return "set up /dev";
    case ContainStep::kMountTmp:
      return "mount /tmp";
    case ContainStep::kMask:
      return "mask a host path";
    case ContainStep::kPivotRoot:
      return "pivot_root";
    case ContainStep::kNet:
      return "set up the network namespace";
    case ContainStep::kHostname:
      return "set the hostname";
    case ContainStep::kRlimits:
      return "set rlimits";
    case ContainStep::kUserns:
      return "enter the user namespace";
    case ContainStep::kSetId:
      return "become root in the user namespace";
    case ContainStep::kCaps:
      return "drop capabilities";
    case ContainStep::kSeccomp:
      return "install the seccomp filter";
    case ContainStep::kCgroup:
      return "join the cgroup";
    case ContainStep::kInitFork:
      return "start the command's process";
    case ContainStep::kLaunch:
      return "receive the command";
    case ContainStep::kIpc:
      return "make the IPC namespace";
    case ContainStep::kRootLayout:
      return "lay out the root";
    case ContainStep::kMountHost:
      return "mount a host directory";
  }
  return "contain";
}

}  // namespace internal
}  // namespace nightshift::sandbox
