#include "sandbox/mounts.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sys/mount.h>  // glibc 2.36: also the new mount API (open_tree, fsopen, move_mount)
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/xattr.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <string>

#include "sandbox/raw_syscall.h"

namespace nightshift::sandbox::internal {
namespace {

// A fresh empty directory in /dev/shm when that is a tmpfs, as on every usual system, else in
// $TMPDIR or /tmp. On a disk mounted with `discard` (ext4 here), removing a directory waits for
// the discard: ~0.5 ms, a third of a whole `nightshift sandbox exec -- true`.
StatusOr<std::filesystem::path> MakeStagingDir() {
  constexpr const char* kPrefix = "nightshift-sandbox";
  struct statfs fs {};
  if (::statfs("/dev/shm", &fs) == 0 && fs.f_type == TMPFS_MAGIC) {
    std::string path = StrCat("/dev/shm/", kPrefix, "-XXXXXX");
    if (::mkdtemp(path.data()) != nullptr) return std::filesystem::path(path);
  }
  return MakeTempDir(kPrefix);
}

// Where each sandbox mounts its private tmpfs. Only a mount point, and every sandbox mounts in
// its own mount namespace, so all share one empty directory: made once per process, removed at
// exit. (A directory per sandbox cost a mkdir and an rmdir per run, and the rmdir of an ext4
// directory can wait for a synchronous discard.)
StatusOr<std::filesystem::path> StagingMountPoint() {
  struct Dir {
    StatusOr<std::filesystem::path> path = MakeStagingDir();
    ~Dir() {
      if (path.ok()) RemoveTreeQuietly(*path);
    }
  };
  static Dir dir;
  return dir.path;
}

using Kind = RootEntry::Kind;

// What there is at `path`, not following a symlink.
enum class Found { kNothing, kDir, kSymlink, kOther };
Found Look(const std::filesystem::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return Found::kNothing;
  if (S_ISDIR(st.st_mode)) return Found::kDir;
  if (S_ISLNK(st.st_mode)) return Found::kSymlink;
  return Found::kOther;
}

// Whether overlayfs takes `dir` of a layer for opaque: the layers below it do not show through.
bool Opaque(const std::filesystem::path& dir) {
  char value = 0;
  return (::lgetxattr(dir.c_str(), "trusted.overlay.opaque", &value, 1) == 1 ||
          ::lgetxattr(dir.c_str(), "user.overlay.opaque", &value, 1) == 1) &&
         value == 'y';
}

// Whether `path`, resolved, lies in `dir`.
bool Inside(const std::filesystem::path& path, const std::filesystem::path& dir) {
  std::error_code ec;
  const auto relative = std::filesystem::weakly_canonical(path, ec).lexically_relative(dir);
  return !ec && !relative.empty() && *relative.begin() != "..";
}

// A host directory `dir` (of DefaultHostPaths) in a root whose lower layers are `layers` over
// a skeleton that has it as a mount point: what the root shows there is the layers' entries
// over the host's directory, as overlayfs would merge them. So a plain bind when no layer has
// it; a read-only overlay of the layers' directories over the host's when some do; nothing
// when a layer's entry hides what is below it (a file, a symlink, a whiteout, an opaque
// directory): the root's own overlay then shows the right thing.
StatusOr<std::optional<RootEntry>> HostDirUnderLayers(
    const std::filesystem::path& dir, const std::vector<std::filesystem::path>& layers,
    const std::string& target) {
  std::string lower;
  for (const auto& layer : layers) {
    const auto mine = layer / dir.relative_path();
    const Found found = Look(mine);
    if (found == Found::kNothing) continue;
    // The root's overlay shows what is there without the host's directory.
    if (found != Found::kDir || Opaque(mine)) return std::nullopt;
    if (Inside(mine, dir)) {
      return FailedPreconditionError(StrCat("layer ", layer.string(), " lies inside ", dir.string(),
                                            ", which it would be stacked over"));
    }
    lower += mine.string() + ":";
  }
  if (lower.empty()) return RootEntry{Kind::kBind, target, dir.string()};
  return RootEntry{Kind::kOverlay, target, StrCat("lowerdir=", lower, dir.string())};
}

}  // namespace

StatusOr<MountPlan> PlanMounts(const SandboxSpec& spec) {
  MountPlan p;
  ASSIGN_OR_RETURN(const std::filesystem::path staging, StagingMountPoint());
  p.staging = staging.string();
  p.tmpfs_options = StrCat("size=", spec.upper_bytes, ",mode=0755");
  const bool host_base = spec.rootfs.empty();
  if (host_base && spec.layers.empty()) {
    // The root is the tmpfs itself: the host's directories are bound onto it, and nothing else
    // of the host is there.
    p.root = p.staging;
    p.read_only_root = true;
  } else {
    // An overlay of the layers over the rootfs, or over a skeleton of the host's top-level
    // entries (the host's directories are then mounted onto it).
    p.root = (staging / "root").string();
    p.upper = (staging / "upper").string();
    p.work = (staging / "work").string();
    std::string lower;
    for (const auto& layer : spec.layers) lower += layer.string() + ":";
    if (host_base) {
      p.skeleton = (staging / "skeleton").string();
      lower += p.skeleton;
    } else {
      lower += spec.rootfs.string();
    }
    p.overlay_options = StrCat("lowerdir=", lower, ",upperdir=", p.upper, ",workdir=", p.work);
  }
  if (host_base) {
    // The host's top-level entries, as symlinks and mount points (in the skeleton under the
    // layers, or right in the root); the sandbox's own mount points with them, and /var/tmp
    // (which some tools use) as a link to the sandbox's /tmp.
    const std::string& base = p.skeleton.empty() ? p.root : p.skeleton;
    auto& layout = p.skeleton.empty() ? p.in_root : p.before_overlay;
    std::vector<std::string> host_dirs;
    for (const std::string& path : DefaultHostPaths()) {
      switch (Look(path)) {
        case Found::kDir:
          layout.push_back({Kind::kDir, base + path, ""});
          host_dirs.push_back(path);
          break;
        case Found::kSymlink: {
          std::error_code ec;
          const auto target = std::filesystem::read_symlink(path, ec);
          if (!ec) layout.push_back({Kind::kSymlink, base + path, target.string()});
          break;
        }
        default:  // not on this host (or not something a root has at its top)
          break;
      }
    }
    for (const char* own : {"/workspace", "/proc", "/dev", "/sys", "/tmp", "/var"}) {
      layout.push_back({Kind::kDir, base + own, ""});
    }
    layout.push_back({Kind::kSymlink, base + "/var/tmp", "/tmp"});
    for (const std::string& dir : host_dirs) {
      if (spec.layers.empty()) {
        p.in_root.push_back({Kind::kBind, p.root + dir, dir});
        continue;
      }
      ASSIGN_OR_RETURN(auto entry, HostDirUnderLayers(dir, spec.layers, p.root + dir));
      if (entry) p.in_root.push_back(std::move(*entry));
    }
  } else {
    p.in_root.push_back({Kind::kDir, p.root + "/workspace", ""});
  }
  // The operator's host paths, parents first.
  std::vector<std::filesystem::path> host_paths = spec.host_paths;
  std::sort(host_paths.begin(), host_paths.end());
  for (const auto& path : host_paths) {
    RootEntry entry{Kind::kHostPath, p.root, path.string()};
    for (const auto& part : path.relative_path()) entry.components.push_back(part.string());
    std::error_code ec;
    entry.file = !std::filesystem::is_directory(path, ec);  // the host path's, or its target's
    p.in_root.push_back(std::move(entry));
  }
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
  // Everything under `staging` is made by PID 1, on the tmpfs it mounts there.
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

// A recursive bind of `dir`, nosuid and nodev (and read-only if `read_only`).
StatusOr<UniqueFd> DetachedBind(const std::filesystem::path& dir, bool read_only) {
  UniqueFd fd(
      ::open_tree(AT_FDCWD, dir.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE));
  if (!fd.Valid()) return ErrnoError("open_tree", dir.string());
  struct mount_attr attr {};
  attr.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (read_only ? MOUNT_ATTR_RDONLY : 0);
  if (::mount_setattr(fd.Get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) != 0) {
    return ErrnoError("mount_setattr", dir.string());
  }
  return fd;
}

// An overlay of `layers` (top first) under the writable `upper`.
StatusOr<UniqueFd> DetachedOverlay(const std::vector<std::filesystem::path>& layers,
                                   const std::filesystem::path& upper,
                                   const std::filesystem::path& work, bool read_only) {
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
  UniqueFd mount(
      ::fsmount(fs.Get(), FSMOUNT_CLOEXEC,
                MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (read_only ? MOUNT_ATTR_RDONLY : 0)));
  if (!mount.Valid()) return ErrnoError("fsmount", "workspace overlay");
  return mount;
}

}  // namespace

StatusOr<UniqueFd> WorkspaceMount(const std::filesystem::path& workspace,
                                  const std::vector<std::filesystem::path>& layers,
                                  const std::filesystem::path& work, bool read_only) {
  if (layers.empty()) return DetachedBind(workspace, read_only);
  return DetachedOverlay(layers, workspace, work, read_only);
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

NS_CHILD ContainFailure AlreadyThereWillDo(long result) {
  if (result == -EEXIST) return std::nullopt;
  return Check(ContainStep::kRootLayout, result);
}

// `source`, a host directory, at `target`, with its submounts, read-only, nosuid and nodev.
// mount(MS_BIND) takes no flags for the new mount, and a remount only changes the top one:
// mount_setattr sets them on the whole tree.
NS_CHILD ContainFailure BindReadOnly(const char* source, const char* target) {
  RETURN_IF_FAILED(
      MountAt(ContainStep::kMountHost, source, target, nullptr, MS_BIND | MS_REC, nullptr));
  struct mount_attr attr {};
  attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  return Check(ContainStep::kMountHost,
               sys::MountSetattr(AT_FDCWD, target, AT_RECURSIVE, &attr, sizeof attr));
}

// The mount point of a kHostPath entry, made and opened one component at a time; returns its
// descriptor (O_PATH) in `*fd`.
NS_CHILD ContainFailure OpenHostPathTarget(const RootEntry& e, int* fd) {
  constexpr ContainStep kStep = ContainStep::kMountHost;
  long dir = sys::Open(e.path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  RETURN_IF_FAILED(Check(kStep, dir));
  const size_t count = e.components.size();
  for (size_t i = 0; i < count; ++i) {
    const char* name = e.components[i].c_str();
    const bool file = e.file && i + 1 == count;
    const long made = file ? sys::Mknodat(static_cast<int>(dir), name, S_IFREG | 0644, 0)
                           : sys::Mkdirat(static_cast<int>(dir), name, 0755);
    struct open_how how {};
    how.flags = O_PATH | O_CLOEXEC | (file ? 0 : O_DIRECTORY);
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    const long next = made < 0 && made != -EEXIST
                          ? made
                          : sys::Openat2(static_cast<int>(dir), name, &how, sizeof how);
    sys::Close(static_cast<int>(dir));
    RETURN_IF_FAILED(Check(kStep, next));
    dir = next;
  }
  *fd = static_cast<int>(dir);
  return std::nullopt;
}

NS_CHILD ContainFailure MountHostPath(const RootEntry& e) {
  constexpr ContainStep kStep = ContainStep::kMountHost;
  int target = -1;
  RETURN_IF_FAILED(OpenHostPathTarget(e, &target));
  const long tree =
      sys::OpenTree(AT_FDCWD, e.source.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
  long result = tree;
  if (tree >= 0) {
    struct mount_attr attr {};
    attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
    result = sys::MountSetattr(static_cast<int>(tree), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr,
                               sizeof attr);
    if (result >= 0) {
      result = sys::MoveMount(static_cast<int>(tree), "", target, "",
                              MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
    }
    sys::Close(static_cast<int>(tree));
  }
  sys::Close(target);
  return Check(kStep, result);
}

NS_CHILD ContainFailure LayOut(const std::vector<RootEntry>& entries) {
  for (const RootEntry& e : entries) {
    const char* path = e.path.c_str();
    switch (e.kind) {
      case RootEntry::Kind::kDir:
        RETURN_IF_FAILED(AlreadyThereWillDo(sys::Mkdir(path, 0755)));
        break;
      case RootEntry::Kind::kSymlink:
        RETURN_IF_FAILED(Check(ContainStep::kRootLayout, sys::Symlink(e.source.c_str(), path)));
        break;
      case RootEntry::Kind::kBind:
        RETURN_IF_FAILED(BindReadOnly(e.source.c_str(), path));
        break;
      case RootEntry::Kind::kOverlay:
        RETURN_IF_FAILED(MountAt(ContainStep::kMountHost, "overlay", path, "overlay",
                                 MS_RDONLY | MS_NOSUID | MS_NODEV, e.source.c_str()));
        break;
      case RootEntry::Kind::kHostPath:
        RETURN_IF_FAILED(MountHostPath(e));
        break;
    }
  }
  return std::nullopt;
}

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
  // Everything of the sandbox's own lives on a tmpfs: the root's top level, or with an overlay
  // its writable layer (overlayfs refuses an upper dir inside a lower layer).
  RETURN_IF_FAILED(MountAt(ContainStep::kMountStaging, "nightshift", p.staging.c_str(), "tmpfs",
                           MS_NOSUID | MS_NODEV, p.tmpfs_options.c_str()));
  if (!p.overlay_options.empty()) {
    RETURN_IF_FAILED(MakeDir(ContainStep::kMountStaging, p.upper.c_str(), 0755));
    RETURN_IF_FAILED(MakeDir(ContainStep::kMountStaging, p.work.c_str(), 0755));
    RETURN_IF_FAILED(MakeDir(ContainStep::kMountStaging, p.root.c_str(), 0755));
    if (!p.skeleton.empty()) {
      RETURN_IF_FAILED(MakeDir(ContainStep::kMountStaging, p.skeleton.c_str(), 0755));
    }
    RETURN_IF_FAILED(LayOut(p.before_overlay));
    RETURN_IF_FAILED(MountAt(ContainStep::kMountOverlay, "overlay", p.root.c_str(), "overlay",
                             MS_NOSUID, p.overlay_options.c_str()));
  }
  RETURN_IF_FAILED(LayOut(p.in_root));
  if (!p.read_only_root) return std::nullopt;
  // Root inside owns nothing of it anyway (host root does); read-only says so to everyone.
  return MountAt(ContainStep::kRootLayout, nullptr, p.root.c_str(), nullptr,
                 MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr);
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
