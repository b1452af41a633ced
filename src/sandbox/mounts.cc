#include "sandbox/mounts.h"

#include <fcntl.h>
#include <sys/mount.h>  // glibc 2.36: also the new mount API (open_tree, fsopen, move_mount)
#include <sys/stat.h>

#include "sandbox/raw_syscall.h"

namespace nightshift::sandbox::internal {
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

StatusOr<MountPlan> PlanMounts(const SandboxSpec& spec) {
  MountPlan p;
  ASSIGN_OR_RETURN(const std::filesystem::path staging, StagingMountPoint());
  p.staging = staging.string();
  p.upper = (staging / "upper").string();
  p.work = (staging / "work").string();
  p.root = (staging / "root").string();
  p.tmpfs_options = StrCat("size=", spec.upper_bytes, ",mode=0755");
  std::string lower;
  for (const auto& layer : spec.layers) lower += layer.string() + ":";
  if (spec.rootfs.empty() && !spec.layers.empty()) {
    // overlayfs refuses a lower layer below another one ("/" is above every layer on the root
    // filesystem, ELOOP). So the host root first becomes an overlay of its own — a different
    // superblock, which no layer is below — and the layers stack on that.
    p.base = (staging / "base").string();
    p.empty = (staging / "empty").string();
    p.base_options = StrCat("lowerdir=/:", p.empty);
    lower += p.base;
  } else {
    lower += spec.rootfs.empty() ? std::string("/") : spec.rootfs.string();
  }
  p.overlay_options = StrCat("lowerdir=", lower, ",upperdir=", p.upper, ",workdir=", p.work);
  p.workspace_target = p.root + "/workspace";
  p.proc = p.root + "/proc";
  p.proc_sys = p.root + "/proc/sys";
  p.proc_init_cmdline = p.root + "/proc/1/cmdline";
  p.dev = p.root + "/dev";
  p.dev_pts = p.root + "/dev/pts";
  p.dev_shm = p.root + "/dev/shm";
  p.dev_ptmx = p.root + "/dev/ptmx";
  p.tmp = p.root + "/tmp";
  for (const char* node : {"null", "zero", "full", "random", "urandom", "tty"}) {
    const std::string host = StrCat("/dev/", node);
    struct stat st {};
    if (::stat(host.c_str(), &st) != 0 || !S_ISCHR(st.st_mode)) {
      return FailedPreconditionError(StrCat("the host has no character device ", host));
    }
    p.dev_nodes.push_back({StrCat(p.dev, "/", node), st.st_rdev, st.st_mode & 07777});
  }
  for (const auto& [link, target] :
       std::vector<std::pair<std::string, std::string>>{{"fd", "/proc/self/fd"},
                                                        {"stdin", "/proc/self/fd/0"},
                                                        {"stdout", "/proc/self/fd/1"},
                                                        {"stderr", "/proc/self/fd/2"}}) {
    p.dev_links.push_back({target, StrCat(p.dev, "/", link)});
  }
  std::vector<std::string> masked = DefaultMaskedPaths();
  for (const auto& m : spec.masked) masked.push_back(m.string());
  for (const std::string& m : masked) {
    // Masks under /sys wait for sysfs, which is mounted last.
    if (m == "/sys" || m.rfind("/sys/", 0) == 0) {
      p.sys_masks.push_back(m);
    } else {
      p.masks.push_back(p.root + m);
    }
  }
  // upper/, work/ and root/ are made by PID 1, on the tmpfs it mounts over `staging`.
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
    masks.push_back(relative == "." ? "/workspace" : "/workspace/" + relative.string());
  }
  return masks;
}

namespace {

// A recursive bind of `dir`, nosuid and nodev.
StatusOr<UniqueFd> DetachedBind(const std::filesystem::path& dir) {
  UniqueFd fd(
      ::open_tree(AT_FDCWD, dir.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE));
  if (!fd.Valid()) return ErrnoError("open_tree", dir.string());
  struct mount_attr attr {};
  attr.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  if (::mount_setattr(fd.Get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) != 0) {
    return ErrnoError("mount_setattr", dir.string());
  }
  return fd;
}

// An overlay of `layers` (top first) under the writable `upper`.
StatusOr<UniqueFd> DetachedOverlay(const std::vector<std::filesystem::path>& layers,
                                   const std::filesystem::path& upper,
                                   const std::filesystem::path& work) {
  UniqueFd fs(::fsopen("overlay", FSOPEN_CLOEXEC));
  if (!fs.Valid()) return ErrnoError("fsopen", "overlay");
  // fsconfig takes strings of at most 256 bytes: name each directory by a descriptor instead
  // (/proc/self/fd/N, resolved now, in this process).
  std::vector<UniqueFd> held;
  auto short_name = [&](const std::filesystem::path& dir) -> StatusOr<std::string> {
    UniqueFd fd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!fd.Valid()) return ErrnoError("open", dir.string());
    std::string name = StrCat("/proc/self/fd/", fd.Get());
    held.push_back(std::move(fd));
    return name;
  };
  std::string lower;
  for (const auto& layer : layers) {
    ASSIGN_OR_RETURN(std::string name, short_name(layer));
    lower += (lower.empty() ? "" : ":") + name;
  }
  ASSIGN_OR_RETURN(std::string upper_name, short_name(upper));
  ASSIGN_OR_RETURN(std::string work_name, short_name(work));
  // Plain entries only in the upper dir, which the host reads back as data (workspace/result.h):
  // a renamed directory is copied, not redirected; a copy-up copies the data too.
  for (const auto& [key, value] :
       std::vector<std::pair<const char*, std::string>>{{"lowerdir", lower},
                                                        {"upperdir", upper_name},
                                                        {"workdir", work_name},
                                                        {"redirect_dir", "off"},
                                                        {"metacopy", "off"}}) {
    if (::fsconfig(fs.Get(), FSCONFIG_SET_STRING, key, value.c_str(), 0) != 0) {
      return ErrnoError("overlay option", StrCat(key, "=", value));
    }
  }
  if (::fsconfig(fs.Get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
    return ErrnoError("mount", StrCat("the workspace overlay over ", upper.string()));
  }
  UniqueFd mount(::fsmount(fs.Get(), FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV));
  if (!mount.Valid()) return ErrnoError("fsmount", "workspace overlay");
  return mount;
}

}  // namespace

StatusOr<UniqueFd> WorkspaceMount(const std::filesystem::path& workspace,
                                  const std::vector<std::filesystem::path>& layers,
                                  const std::filesystem::path& work) {
  if (layers.empty()) return DetachedBind(workspace);
  return DetachedOverlay(layers, workspace, work);
}

// --- In PID 1. ---

namespace {

NS_CHILD ContainFailure MountAt(ContainStep step, const char* source, const char* target,
                                const char* type, unsigned long flags, const char* data) {
  return Check(step, sys::Mount(source, target, type, flags, data));
}

NS_CHILD ContainFailure MakeDir(ContainStep step, const char* path, mode_t mode) {
  return Check(step, sys::Mkdir(path, mode));
}

// A mount point that may already exist in the lower layer.
NS_CHILD void EnsureDir(const char* path, mode_t mode) { sys::Mkdir(path, mode); }

NS_CHILD ContainFailure MaskPath(const char* path) {
  struct stat st {};
  if (sys::Lstat(path, &st) != 0) return std::nullopt;  // not in this root
  if (S_ISLNK(st.st_mode)) return std::nullopt;         // masked by its target
  if (S_ISDIR(st.st_mode)) {
    return MountAt(ContainStep::kMask, "tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV,
                   "mode=0755,size=4k");
  }
  return MountAt(ContainStep::kMask, "/dev/null", path, nullptr, MS_BIND, nullptr);
}

}  // namespace

ContainFailure MakeMountsPrivate() {
  return MountAt(ContainStep::kMountPrivate, nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr);
}

ContainFailure MountRoot(const MountPlan& p) {
  // The writable layer and the root live on a tmpfs: overlayfs refuses an upper dir inside its
  // lower layer, and the host / is the lower layer.
  RETURN_IF_FAILED(MountAt(ContainStep::kMountStaging, "nightshift", p.staging.c_str(), "tmpfs",
                           MS_NOSUID | MS_NODEV, p.tmpfs_options.c_str()));
  RETURN_IF_FAILED(MakeDir(ContainStep::kMountStaging, p.upper.c_str(), 0755));
  RETURN_IF_FAILED(MakeDir(ContainStep::kMountStaging, p.work.c_str(), 0755));
  RETURN_IF_FAILED(MakeDir(ContainStep::kMountStaging, p.root.c_str(), 0755));
  if (!p.base.empty()) {
    RETURN_IF_FAILED(MakeDir(ContainStep::kMountStaging, p.base.c_str(), 0755));
    RETURN_IF_FAILED(MakeDir(ContainStep::kMountStaging, p.empty.c_str(), 0755));
    RETURN_IF_FAILED(MountAt(ContainStep::kMountOverlay, "overlay", p.base.c_str(), "overlay",
                             MS_RDONLY | MS_NOSUID, p.base_options.c_str()));
  }
  RETURN_IF_FAILED(MountAt(ContainStep::kMountOverlay, "overlay", p.root.c_str(), "overlay",
                           MS_NOSUID, p.overlay_options.c_str()));
  return MakeDir(ContainStep::kMountWorkspace, p.workspace_target.c_str(), 0755);
}

ContainFailure MountProc(const MountPlan& p) {
  EnsureDir(p.proc.c_str(), 0555);
  RETURN_IF_FAILED(MountAt(ContainStep::kMountProc, "proc", p.proc.c_str(), "proc",
                           MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr));
  RETURN_IF_FAILED(MountAt(ContainStep::kMountProc, p.proc_sys.c_str(), p.proc_sys.c_str(), nullptr,
                           MS_BIND | MS_REC, nullptr));
  RETURN_IF_FAILED(MountAt(ContainStep::kMountProc, nullptr, p.proc_sys.c_str(), nullptr,
                           MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr));
  // PID 1 runs in the supervisor's memory: its command line, which anyone may read, is the
  // supervisor's.
  return MountAt(ContainStep::kMountProc, "/dev/null", p.proc_init_cmdline.c_str(), nullptr,
                 MS_BIND, nullptr);
}

ContainFailure MountDev(const MountPlan& p) {
  constexpr ContainStep kStep = ContainStep::kMountDev;
  EnsureDir(p.dev.c_str(), 0755);
  RETURN_IF_FAILED(
      MountAt(kStep, "tmpfs", p.dev.c_str(), "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=1m"));
  // The same devices as the host's, made here (this tmpfs is not nodev): cheaper than a bind
  // mount each. chmod because mknod obeys the umask.
  for (const auto& node : p.dev_nodes) {
    RETURN_IF_FAILED(Check(kStep, sys::Mknod(node.path.c_str(), S_IFCHR | node.mode, node.rdev)));
    RETURN_IF_FAILED(Check(kStep, sys::Chmod(node.path.c_str(), node.mode)));
  }
  for (const auto& [target, link] : p.dev_links) {
    RETURN_IF_FAILED(Check(kStep, sys::Symlink(target.c_str(), link.c_str())));
  }
  EnsureDir(p.dev_pts.c_str(), 0755);
  RETURN_IF_FAILED(MountAt(kStep, "devpts", p.dev_pts.c_str(), "devpts", MS_NOSUID | MS_NOEXEC,
                           "newinstance,ptmxmode=0666,mode=0620"));
  RETURN_IF_FAILED(Check(kStep, sys::Symlink("pts/ptmx", p.dev_ptmx.c_str())));
  EnsureDir(p.dev_shm.c_str(), 01777);
  RETURN_IF_FAILED(
      MountAt(kStep, "tmpfs", p.dev_shm.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"));
  return MountAt(kStep, nullptr, p.dev.c_str(), nullptr,
                 MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC, nullptr);
}

ContainFailure MountTmp(const MountPlan& p) {
  EnsureDir(p.tmp.c_str(), 01777);
  return MountAt(ContainStep::kMountTmp, "tmpfs", p.tmp.c_str(), "tmpfs", MS_NOSUID | MS_NODEV,
                 "mode=1777");
}

ContainFailure MaskPaths(const std::vector<std::string>& masks) {
  for (const auto& mask : masks) RETURN_IF_FAILED(MaskPath(mask.c_str()));
  return std::nullopt;
}

ContainFailure PivotRoot(const MountPlan& p) {
  // pivot_root(".", ".") stacks the old root under the new one; unmounting it leaves only the
  // sandbox's tree (nsjail and runc do the same).
  RETURN_IF_FAILED(Check(ContainStep::kPivotRoot, sys::Chdir(p.root.c_str())));
  RETURN_IF_FAILED(Check(ContainStep::kPivotRoot, sys::PivotRoot(".", ".")));
  RETURN_IF_FAILED(Check(ContainStep::kPivotRoot, sys::Umount2(".", MNT_DETACH)));
  return Check(ContainStep::kPivotRoot, sys::Chdir("/"));
}

ContainFailure MountSys() {
  EnsureDir("/sys", 0555);
  return MountAt(ContainStep::kMountSys, "sysfs", "/sys", "sysfs",
                 MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
}

ContainFailure AttachWorkspace(int workspace_fd, const char* const* masks) {
  // A detached mount the supervisor made (a bind of a host directory, or an overlay).
  RETURN_IF_FAILED(
      Check(ContainStep::kMountWorkspace,
            sys::MoveMount(workspace_fd, "", AT_FDCWD, "/workspace", MOVE_MOUNT_F_EMPTY_PATH)));
  sys::Close(workspace_fd);
  for (; *masks != nullptr; ++masks) RETURN_IF_FAILED(MaskPath(*masks));
  return std::nullopt;
}

}  // namespace nightshift::sandbox::internal
