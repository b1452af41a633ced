#include "sandbox/contain.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>  // glibc 2.36: also the new mount API (move_mount)
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "core/fs.h"
#include "sandbox/contain_internal.h"
#include "sandbox/raw_syscall.h"

namespace nightshift::sandbox {

const std::vector<std::string>& DefaultMaskedPaths() {
  static const auto* paths = new std::vector<std::string>{
      "/root",        "/home",        "/run",     "/var/run",   "/var/lib", "/etc/shadow",
      "/etc/gshadow", "/etc/sudoers", "/etc/ssh", "/var/spool", "/var/mail"};
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
  if (spec.limits.memory_bytes < 0 || spec.limits.pids < 0 || spec.limits.cpus < 0) {
    return InvalidArgumentError("limits must not be negative");
  }
  if (spec.limits.memory_bytes > 0 && spec.limits.memory_bytes < (1 << 20)) {
    return InvalidArgumentError("impossible limit: memory below 1 MiB");
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

namespace {

// Where each sandbox mounts its private tmpfs. Only a mount point, and every sandbox mounts in
// its own mount namespace, so all share one empty directory: made once per process, removed at
// exit. (A directory per sandbox cost a mkdir and an rmdir per run, and the rmdir of an ext4
// directory can wait for a synchronous discard.)
StatusOr<std::filesystem::path> StagingMountPoint() {
  struct Dir {
    StatusOr<std::filesystem::path> path = MakeTempDir("nightshift-sandbox");
    ~Dir() {
      if (path.ok()) RemoveTreeQuietly(*path);
    }
  };
  static Dir dir;
  return dir.path;
}

}  // namespace

StatusOr<std::unique_ptr<PreparedSandbox>> PrepareSandbox(const SandboxSpec& spec) {
  RETURN_IF_ERROR(ValidateSandboxSpec(spec));
  auto p = std::make_unique<PreparedSandbox>();
  ASSIGN_OR_RETURN(p->staging, StagingMountPoint());
  p->staging_s = p->staging.string();
  p->upper = (p->staging / "upper").string();
  p->work = (p->staging / "work").string();
  p->root = (p->staging / "root").string();
  p->tmpfs_options = StrCat("size=", spec.upper_bytes, ",mode=0755");
  std::string lower;
  for (const auto& layer : spec.layers) lower += layer.string() + ":";
  if (spec.rootfs.empty() && !spec.layers.empty()) {
    // overlayfs refuses a lower layer below another one ("/" is above every layer on the root
    // filesystem, ELOOP). So the host root first becomes an overlay of its own — a different
    // superblock, which no layer is below — and the layers stack on that.
    p->base = (p->staging / "base").string();
    p->empty = (p->staging / "empty").string();
    p->base_options = StrCat("lowerdir=/:", p->empty);
    lower += p->base;
  } else {
    lower += spec.rootfs.empty() ? std::string("/") : spec.rootfs.string();
  }
  p->overlay_options = StrCat("lowerdir=", lower, ",upperdir=", p->upper, ",workdir=", p->work);
  p->workspace_target = p->root + "/workspace";
  p->proc = p->root + "/proc";
  p->proc_sys = p->root + "/proc/sys";
  p->dev = p->root + "/dev";
  p->dev_pts = p->root + "/dev/pts";
  p->dev_shm = p->root + "/dev/shm";
  p->dev_ptmx = p->root + "/dev/ptmx";
  p->tmp = p->root + "/tmp";
  for (const char* node : {"null", "zero", "full", "random", "urandom", "tty"}) {
    const std::string host = StrCat("/dev/", node);
    struct stat st {};
    if (::stat(host.c_str(), &st) != 0 || !S_ISCHR(st.st_mode)) {
      return FailedPreconditionError(StrCat("the host has no character device ", host));
    }
    p->dev_nodes.push_back({StrCat(p->dev, "/", node), st.st_rdev, st.st_mode & 07777});
  }
  for (const auto& [link, target] :
       std::vector<std::pair<std::string, std::string>>{{"fd", "/proc/self/fd"},
                                                        {"stdin", "/proc/self/fd/0"},
                                                        {"stdout", "/proc/self/fd/1"},
                                                        {"stderr", "/proc/self/fd/2"}}) {
    p->dev_links.push_back({target, StrCat(p->dev, "/", link)});
  }
  std::vector<std::string> masked = DefaultMaskedPaths();
  for (const auto& m : spec.masked) masked.push_back(m.string());
  for (const std::string& m : masked) {
    std::error_code ec;
    auto st = std::filesystem::symlink_status(m, ec);
    if (ec || std::filesystem::is_symlink(st)) continue;  // a symlink is masked by its target
    p->masks.push_back({p->root + m, std::filesystem::is_directory(st)});
  }
  p->uid_map = StrCat("0 ", spec.host_uid, " 1\n");
  p->gid_map = StrCat("0 ", spec.host_gid, " 1\n");
  // upper/, work/ and root/ are made by the child, on the tmpfs it mounts over `staging`.
  return p;
}

std::vector<std::string> WorkspaceMasks(const SandboxSpec& spec) {
  std::vector<std::string> masks;
  std::error_code ec;
  const auto workspace = std::filesystem::weakly_canonical(spec.workspace, ec);
  if (ec) return masks;
  for (const auto& m : spec.masked) {
    const auto path = std::filesystem::weakly_canonical(m, ec);
    if (ec) continue;
    const auto relative = path.lexically_relative(workspace);
    if (relative.empty() || *relative.begin() == "..") continue;
    auto st = std::filesystem::symlink_status(path, ec);
    if (ec || std::filesystem::is_symlink(st)) continue;
    const std::string inside = relative == "." ? "/workspace" : "/workspace/" + relative.string();
    masks.push_back(StrCat(std::filesystem::is_directory(st) ? "d" : "f", inside));
  }
  return masks;
}

namespace {

// A failed step: which, and errno.
struct Fail {
  ContainStep step;
  int error;
};

bool MountOk(const char* src, const char* target, const char* type, unsigned long flags,
             const char* data) {
  return ::mount(src, target, type, flags, data) == 0;
}

// Creates an empty file to bind a device or /dev/null onto.
bool BindReadOnly(const char* src, const char* target) {
  if (!MountOk(src, target, nullptr, MS_BIND | MS_REC, nullptr)) return false;
  return MountOk(nullptr, target, nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
                 nullptr);
}

#define CONTAIN_STEP(step, ok)             \
  do {                                     \
    if (!(ok)) return Fail{(step), errno}; \
  } while (0)

std::optional<Fail> MaskPath(const char* path, bool is_dir) {
  struct stat st {};
  if (::lstat(path, &st) != 0) return std::nullopt;  // not in this root
  if (is_dir) {
    CONTAIN_STEP(
        ContainStep::kMask,
        MountOk("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "mode=0755,size=4k"));
  } else {
    CONTAIN_STEP(ContainStep::kMask, MountOk("/dev/null", path, nullptr, MS_BIND, nullptr));
  }
  return std::nullopt;
}

// The mount namespace: an overlay root, the workspace, fresh /proc, /sys read-only, a minimal
// /dev, tmpfs /tmp, the masks, then pivot_root into it.
std::optional<Fail> ContainMounts(const PreparedSandbox& p, const WarmHooks& hooks) {
  // Nothing we mount may propagate back to the host.
  CONTAIN_STEP(ContainStep::kMountPrivate,
               MountOk(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr));
  // The writable layer and the root live on a tmpfs: overlayfs refuses an upper dir inside its
  // lower layer, and the host / is the lower layer.
  CONTAIN_STEP(ContainStep::kMountStaging, MountOk("nightshift", p.staging_s.c_str(), "tmpfs",
                                                   MS_NOSUID | MS_NODEV, p.tmpfs_options.c_str()));
  CONTAIN_STEP(ContainStep::kMountStaging, ::mkdir(p.upper.c_str(), 0755) == 0);
  CONTAIN_STEP(ContainStep::kMountStaging, ::mkdir(p.work.c_str(), 0755) == 0);
  CONTAIN_STEP(ContainStep::kMountStaging, ::mkdir(p.root.c_str(), 0755) == 0);
  if (!p.base.empty()) {
    CONTAIN_STEP(ContainStep::kMountStaging, ::mkdir(p.base.c_str(), 0755) == 0);
    CONTAIN_STEP(ContainStep::kMountStaging, ::mkdir(p.empty.c_str(), 0755) == 0);
    CONTAIN_STEP(ContainStep::kMountOverlay,
                 MountOk("overlay", p.base.c_str(), "overlay", MS_RDONLY | MS_NOSUID,
                         p.base_options.c_str()));
  }
  CONTAIN_STEP(ContainStep::kMountOverlay,
               MountOk("overlay", p.root.c_str(), "overlay", MS_NOSUID, p.overlay_options.c_str()));

  // The workspace comes with the command (ContainLaunch); its mount point is made now.
  CONTAIN_STEP(ContainStep::kMountWorkspace, ::mkdir(p.workspace_target.c_str(), 0755) == 0);

  ::mkdir(p.proc.c_str(), 0555);
  CONTAIN_STEP(ContainStep::kMountProc,
               MountOk("proc", p.proc.c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr));
  CONTAIN_STEP(ContainStep::kMountProc, BindReadOnly(p.proc_sys.c_str(), p.proc_sys.c_str()));
  if (hooks.after_proc != nullptr) {
    if (auto failed = hooks.after_proc(hooks.arg)) return Fail{failed->first, failed->second};
  }

  ::mkdir(p.dev.c_str(), 0755);
  CONTAIN_STEP(ContainStep::kMountDev, MountOk("tmpfs", p.dev.c_str(), "tmpfs",
                                               MS_NOSUID | MS_NOEXEC, "mode=0755,size=1m"));
  // The same devices as the host's, made here (we are still real root, and this tmpfs is not
  // nodev): cheaper than a bind mount each. chmod because mknod obeys the umask.
  for (const auto& node : p.dev_nodes) {
    CONTAIN_STEP(ContainStep::kMountDev,
                 ::mknod(node.path.c_str(), S_IFCHR | node.mode, node.rdev) == 0);
    CONTAIN_STEP(ContainStep::kMountDev, ::chmod(node.path.c_str(), node.mode) == 0);
  }
  for (const auto& [target, link] : p.dev_links) {
    CONTAIN_STEP(ContainStep::kMountDev, ::symlink(target.c_str(), link.c_str()) == 0);
  }
  ::mkdir(p.dev_pts.c_str(), 0755);
  CONTAIN_STEP(ContainStep::kMountDev,
               MountOk("devpts", p.dev_pts.c_str(), "devpts", MS_NOSUID | MS_NOEXEC,
                       "newinstance,ptmxmode=0666,mode=0620"));
  CONTAIN_STEP(ContainStep::kMountDev, ::symlink("pts/ptmx", p.dev_ptmx.c_str()) == 0);
  ::mkdir(p.dev_shm.c_str(), 01777);
  CONTAIN_STEP(ContainStep::kMountDev,
               MountOk("tmpfs", p.dev_shm.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"));
  CONTAIN_STEP(ContainStep::kMountDev,
               MountOk(nullptr, p.dev.c_str(), nullptr,
                       MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC, nullptr));

  ::mkdir(p.tmp.c_str(), 01777);
  CONTAIN_STEP(ContainStep::kMountTmp,
               MountOk("tmpfs", p.tmp.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"));

  // Masks under /sys wait for sysfs, mounted last (below).
  const size_t root_length = p.root.size();
  auto under_sys = [&](const std::string& path) {
    return path.compare(root_length, 4, "/sys") == 0 &&
           (path.size() == root_length + 4 || path[root_length + 4] == '/');
  };
  for (const auto& [path, is_dir] : p.masks) {
    if (under_sys(path)) continue;
    if (auto failed = MaskPath(path.c_str(), is_dir)) return failed;
  }

  // pivot_root(".", ".") stacks the old root under the new one; unmounting it leaves only the
  // sandbox's tree (nsjail and runc do the same).
  CONTAIN_STEP(ContainStep::kPivotRoot, ::chdir(p.root.c_str()) == 0);
  CONTAIN_STEP(ContainStep::kPivotRoot, ::syscall(SYS_pivot_root, ".", ".") == 0);
  CONTAIN_STEP(ContainStep::kPivotRoot, ::umount2(".", MNT_DETACH) == 0);

  // The sandbox's network namespace, which the payload makes meanwhile, is joined as late as
  // possible — everything above overlaps its making — and before /sys is mounted: sysfs shows
  // the network devices of its mounter's namespace.
  if (hooks.before_sys != nullptr) {
    if (auto failed = hooks.before_sys(hooks.arg)) return Fail{failed->first, failed->second};
  }
  ::mkdir("/sys", 0555);
  CONTAIN_STEP(
      ContainStep::kMountSys,
      MountOk("sysfs", "/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr));
  for (const auto& [path, is_dir] : p.masks) {
    if (!under_sys(path)) continue;
    if (auto failed = MaskPath(path.c_str() + root_length, is_dir)) return failed;
  }
  CONTAIN_STEP(ContainStep::kPivotRoot, ::chdir("/workspace") == 0);
  return std::nullopt;
}

bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// No exec may regain a capability: the bounding set is emptied. Needs CAP_SETPCAP, so before
// ClearCaps. Raw calls: the payload runs this while PID 1, which shares its errno, works on
// (raw_syscall.h).
std::optional<Fail> DropBoundingSet() {
  // EINVAL: past the last capability this kernel knows.
  for (long cap = 0; cap <= 63; ++cap) {
    if (int error = RawError(RawSyscall(SYS_prctl, PR_CAPBSET_DROP, cap)); error != 0) {
      if (error == EINVAL) break;
      return Fail{ContainStep::kCaps, error};
    }
  }
  return std::nullopt;
}

// Root inside keeps no capability: the current sets, then the ambient set.
std::optional<Fail> ClearCaps() {
  struct {
    uint32_t version;
    int pid;
  } header{0x20080522 /* _LINUX_CAPABILITY_VERSION_3 */, 0};
  struct {
    uint32_t effective, permitted, inheritable;
  } data[2] = {};
  if (int error = RawError(
          RawSyscall(SYS_capset, reinterpret_cast<long>(&header), reinterpret_cast<long>(data)));
      error != 0) {
    return Fail{ContainStep::kCaps, error};
  }
  RawSyscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL);
  return std::nullopt;
}

std::optional<Fail> ContainRlimits() {
  struct rlimit core {
    0, 0
  };
  CONTAIN_STEP(ContainStep::kRlimits, ::setrlimit(RLIMIT_CORE, &core) == 0);
  struct rlimit files {
    65536, 65536
  };
  struct rlimit current {};
  if (::getrlimit(RLIMIT_NOFILE, &current) == 0 && current.rlim_max < files.rlim_max) {
    files = current;
  }
  CONTAIN_STEP(ContainStep::kRlimits, ::setrlimit(RLIMIT_NOFILE, &files) == 0);
  return std::nullopt;
}

ContainFailure Report(const std::optional<Fail>& failed) {
  if (!failed) return std::nullopt;
  return std::make_pair(failed->step, failed->error);
}

}  // namespace

ContainFailure ContainWarm(const PreparedSandbox& p, const WarmHooks& hooks) {
  if (auto failed = ContainMounts(p, hooks)) return Report(failed);
  return Report(ContainRlimits());
}

ContainFailure ContainLaunch(int workspace_fd, const char* const* workspace_masks,
                             const char* hostname) {
  // A detached mount the parent made (a bind of a host directory, or an overlay): attach it.
  if (::move_mount(workspace_fd, "", AT_FDCWD, "/workspace", MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    return std::make_pair(ContainStep::kMountWorkspace, errno);
  }
  ::close(workspace_fd);
  for (; *workspace_masks != nullptr; ++workspace_masks) {
    const char* mask = *workspace_masks;
    if (auto failed = MaskPath(mask + 1, mask[0] == 'd')) return Report(failed);
  }
  if (::sethostname(hostname, std::strlen(hostname)) != 0) {
    return std::make_pair(ContainStep::kHostname, errno);
  }
  return std::nullopt;
}

namespace {

// "<proc>/<pid>/<file>" into `out` (no allocation); false if it does not fit.
bool ProcFilePath(const char* proc, pid_t pid, const char* file, char (&out)[256]) {
  char digits[16];
  int n = 0;
  for (auto v = static_cast<unsigned>(pid); n == 0 || v > 0; v /= 10) {
    digits[n++] = static_cast<char>('0' + v % 10);
  }
  size_t at = 0;
  auto put = [&](char c) {
    if (at + 1 < sizeof out) out[at++] = c;
  };
  for (const char* c = proc; *c != '\0'; ++c) put(*c);
  put('/');
  while (n > 0) put(digits[--n]);
  put('/');
  for (const char* c = file; *c != '\0'; ++c) put(*c);
  out[at] = '\0';
  return at + 1 < sizeof out;
}

}  // namespace

ContainFailure ContainPayloadMaps(const PreparedSandbox& p, pid_t payload) {
  // setgroups must be denied before an unprivileged gid_map would be accepted; for root it also
  // keeps the sandbox from dropping into supplementary groups it was never given.
  const std::pair<const char*, const std::string*> files[] = {
      {"setgroups", nullptr}, {"uid_map", &p.uid_map}, {"gid_map", &p.gid_map}};
  for (const auto& [file, content] : files) {
    char path[256];
    // The sandbox's own /proc (mounted, not yet pivoted into): the pid is in its namespace.
    if (!ProcFilePath(p.proc.c_str(), payload, file, path)) {
      return std::make_pair(ContainStep::kUserns, ENAMETOOLONG);
    }
    int fd = ::open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return std::make_pair(ContainStep::kUserns, errno);
    const bool ok = content == nullptr ? WriteAll(fd, "deny", 4)
                                       : WriteAll(fd, content->data(), content->size());
    const int error = errno;
    ::close(fd);
    if (!ok) return std::make_pair(ContainStep::kUserns, error);
  }
  return std::nullopt;
}

ContainFailure ContainJoinNet(pid_t payload) {
  char path[256];
  if (!ProcFilePath("/proc", payload, "ns/net", path)) {
    return std::make_pair(ContainStep::kNet, ENAMETOOLONG);
  }
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::make_pair(ContainStep::kNet, errno);
  const int error = ::setns(fd, CLONE_NEWNET) == 0 ? 0 : errno;
  ::close(fd);
  if (error != 0) return std::make_pair(ContainStep::kNet, error);
  return std::nullopt;
}

ContainFailure ContainPayloadNet() {
  // Raw calls throughout: PID 1, which shares our errno, mounts meanwhile.
  if (int error = RawError(RawSyscall(SYS_unshare, CLONE_NEWNET)); error != 0) {
    return std::make_pair(ContainStep::kNet, error);
  }
  // The namespace starts with a down loopback; bring it up so local servers work.
  const long fd = RawSyscall(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (int error = RawError(fd); error != 0) return std::make_pair(ContainStep::kNet, error);
  struct ifreq ifr {};
  std::memcpy(ifr.ifr_name, "lo", 3);
  int error = RawError(RawSyscall(SYS_ioctl, fd, SIOCGIFFLAGS, reinterpret_cast<long>(&ifr)));
  if (error == 0) {
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    error = RawError(RawSyscall(SYS_ioctl, fd, SIOCSIFFLAGS, reinterpret_cast<long>(&ifr)));
  }
  RawSyscall(SYS_close, fd);
  if (error != 0) return std::make_pair(ContainStep::kNet, error);
  return std::nullopt;
}

ContainFailure ContainPayloadBounding() { return Report(DropBoundingSet()); }

ContainFailure ContainPayload(int init) {
  char byte = 0;
  long n;
  while ((n = RawSyscall(SYS_read, init, reinterpret_cast<long>(&byte), 1)) == -EINTR) {
  }
  if (n != 1 || byte != 'm') return std::make_pair(ContainStep::kUserns, EPROTO);
  // Raw system calls, also because glibc's setresuid() signals every thread it believes the
  // process has (POSIX per-process credentials), and after clone() in a multi-threaded
  // supervisor those threads do not exist here — it would wait for them forever.
  if (int error = RawError(RawSyscall(SYS_setresgid, 0, 0, 0)); error != 0) {
    return std::make_pair(ContainStep::kSetId, error);
  }
  if (int error = RawError(RawSyscall(SYS_setresuid, 0, 0, 0)); error != 0) {
    return std::make_pair(ContainStep::kSetId, error);
  }
  return Report(ClearCaps());
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
      return "bring up loopback";
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
      return "fork the command";
    case ContainStep::kLaunch:
      return "receive the command";
  }
  return "contain";
}

}  // namespace internal
}  // namespace nightshift::sandbox
