#include "workspace/layered_tree.h"

#include <fcntl.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace nightshift::workspace {
namespace {

constexpr const char* kOpaqueXattr = "trusted.overlay.opaque";
constexpr const char* kRedirectXattr = "trusted.overlay.redirect";
constexpr const char* kMetacopyXattr = "trusted.overlay.metacopy";

// Whether the open file has the xattr; errors other than "absent" or "unsupported" are errors.
StatusOr<bool> HasXattr(int fd, const char* name, std::string* value,
                        std::string_view name_for_errors) {
  char buffer[256];
  const ssize_t n = ::fgetxattr(fd, name, buffer, sizeof buffer);
  if (n >= 0) {
    if (value != nullptr) value->assign(buffer, static_cast<size_t>(n));
    return true;
  }
  if (errno == ENODATA || errno == ENOTSUP || errno == ERANGE) return errno == ERANGE;
  return ErrnoError("read the overlay attributes of", name_for_errors);
}

}  // namespace

EntryType TypeOf(const struct stat& st) {
  if (S_ISREG(st.st_mode)) return EntryType::kFile;
  if (S_ISDIR(st.st_mode)) return EntryType::kDirectory;
  if (S_ISLNK(st.st_mode)) return EntryType::kSymlink;
  if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) return EntryType::kWhiteout;
  return EntryType::kOther;
}

StatusOr<bool> IsOpaqueDirectory(int dir_fd, std::string_view name_for_errors) {
  ASSIGN_OR_RETURN(bool redirected, HasXattr(dir_fd, kRedirectXattr, nullptr, name_for_errors));
  if (redirected) {
    return InternalError(
        StrCat(name_for_errors, " is a renamed overlay directory (redirect_dir), not supported"));
  }
  std::string value;
  ASSIGN_OR_RETURN(bool opaque, HasXattr(dir_fd, kOpaqueXattr, &value, name_for_errors));
  return opaque && value == "y";
}

Status CheckNotMetacopy(int file_fd, std::string_view name_for_errors) {
  ASSIGN_OR_RETURN(bool metacopy, HasXattr(file_fd, kMetacopyXattr, nullptr, name_for_errors));
  if (metacopy) {
    return InternalError(
        StrCat(name_for_errors, " is a metadata-only overlay copy-up, not supported"));
  }
  return OkStatus();
}

StatusOr<UniqueFd> OpenEntry(int dir_fd, const std::string& name, int flags,
                             std::string_view name_for_errors) {
  UniqueFd fd(::openat(dir_fd, name.c_str(), flags | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.Valid()) return ErrnoError("open", name_for_errors);
  return fd;
}

StatusOr<std::string> ReadOpenFile(int fd, size_t max_bytes, std::string_view name_for_errors) {
  std::string out;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && st.st_size > 0) {
    if (static_cast<uint64_t>(st.st_size) > max_bytes) {
      return FailedPreconditionError(
          StrCat(name_for_errors, " is larger than ", max_bytes, " bytes"));
    }
    out.reserve(static_cast<size_t>(st.st_size));
  }
  char buffer[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("read", name_for_errors);
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_bytes) {
      return FailedPreconditionError(
          StrCat(name_for_errors, " is larger than ", max_bytes, " bytes"));
    }
    out.append(buffer, static_cast<size_t>(n));
  }
  return out;
}

StatusOr<std::vector<std::string>> PathComponents(std::string_view relative) {
  std::vector<std::string> parts;
  if (relative.empty() || relative.front() == '/') {
    return InvalidArgumentError(StrCat("not a relative path: '", relative, "'"));
  }
  size_t start = 0;
  for (;;) {
    const size_t slash = relative.find('/', start);
    std::string_view part =
        relative.substr(start, slash == std::string_view::npos ? relative.npos : slash - start);
    if (part.empty() || part == "." || part == ".." || part.find('\0') != std::string_view::npos) {
      return InvalidArgumentError(StrCat("not a plain relative path: '", relative, "'"));
    }
    parts.emplace_back(part);
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return parts;
}

StatusOr<LayerStack> LayerStack::Open(const std::vector<std::filesystem::path>& layers) {
  LayerStack stack;
  for (const auto& layer : layers) {
    UniqueFd fd(::open(layer.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.Valid()) return ErrnoError("open layer", layer.string());
    stack.roots_.push_back(std::move(fd));
  }
  return stack;
}

StatusOr<std::vector<std::pair<size_t, UniqueFd>>> LayerStack::OpenDirectory(
    const std::vector<std::string>& components, std::string_view relative) const {
  std::vector<std::pair<size_t, UniqueFd>> active;
  for (size_t i = 0; i < roots_.size(); ++i) {
    UniqueFd dup(::fcntl(roots_[i].Get(), F_DUPFD_CLOEXEC, 3));
    if (!dup.Valid()) return ErrnoError("dup", "a layer's root");
    active.emplace_back(i, std::move(dup));
  }
  std::string so_far;
  for (const std::string& name : components) {
    so_far += (so_far.empty() ? "" : "/") + name;
    std::vector<std::pair<size_t, UniqueFd>> next;
    for (auto& [layer, dir] : active) {
      struct stat st {};
      if (::fstatat(dir.Get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;
        return ErrnoError("stat", so_far);
      }
      const EntryType type = TypeOf(st);
      if (type == EntryType::kWhiteout) break;  // hides the layers below
      if (type != EntryType::kDirectory) {
        if (!next.empty()) break;  // a non-directory below a directory is hidden by it
        if (type == EntryType::kSymlink) {
          return InvalidArgumentError(
              StrCat(so_far, " is a symlink: ", relative, " is not read through it"));
        }
        return InvalidArgumentError(StrCat(so_far, " is not a directory (reading ", relative, ")"));
      }
      ASSIGN_OR_RETURN(UniqueFd sub, OpenEntry(dir.Get(), name, O_RDONLY | O_DIRECTORY, so_far));
      ASSIGN_OR_RETURN(bool opaque, IsOpaqueDirectory(sub.Get(), so_far));
      next.emplace_back(layer, std::move(sub));
      if (opaque) break;
    }
    if (next.empty()) return NotFoundError(StrCat(relative, " not found"));
    active = std::move(next);
  }
  return active;
}

StatusOr<LayerStack::Found> LayerStack::Find(std::string_view relative) const {
  ASSIGN_OR_RETURN(std::vector<std::string> parts, PathComponents(relative));
  Found found{.name = parts.back()};
  parts.pop_back();
  ASSIGN_OR_RETURN(auto dirs, OpenDirectory(parts, relative));
  for (auto& [layer, dir] : dirs) {
    found.entry.layer = layer;
    if (::fstatat(dir.Get(), found.name.c_str(), &found.entry.st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      return ErrnoError("stat", relative);
    }
    found.entry.type = TypeOf(found.entry.st);
    if (found.entry.type == EntryType::kWhiteout) break;
    found.dir = std::move(dir);
    return found;
  }
  return NotFoundError(StrCat(relative, " not found"));
}

StatusOr<LayerEntry> LayerStack::Lookup(std::string_view relative) const {
  ASSIGN_OR_RETURN(Found found, Find(relative));
  return found.entry;
}

StatusOr<std::string> LayerStack::ReadFile(std::string_view relative, size_t max_bytes) const {
  ASSIGN_OR_RETURN(Found found, Find(relative));
  if (found.entry.type == EntryType::kSymlink) {
    return InvalidArgumentError(StrCat(relative, " is a symlink, which is not followed"));
  }
  if (found.entry.type != EntryType::kFile) {
    return InvalidArgumentError(StrCat(relative, " must be a regular file"));
  }
  // O_NONBLOCK: were it swapped for a FIFO since the stat, the open must not hang.
  ASSIGN_OR_RETURN(UniqueFd fd,
                   OpenEntry(found.dir.Get(), found.name, O_RDONLY | O_NONBLOCK, relative));
  struct stat opened {};
  if (::fstat(fd.Get(), &opened) != 0 || !S_ISREG(opened.st_mode)) {
    return InvalidArgumentError(StrCat(relative, " must be a regular file"));
  }
  RETURN_IF_ERROR(CheckNotMetacopy(fd.Get(), relative));
  return ReadOpenFile(fd.Get(), max_bytes, relative);
}

StatusOr<std::string> ReadThroughLayers(const std::vector<std::filesystem::path>& layers,
                                        const std::filesystem::path& relative, size_t max_bytes) {
  ASSIGN_OR_RETURN(LayerStack stack, LayerStack::Open(layers));
  return stack.ReadFile(relative.string(), max_bytes);
}

}  // namespace nightshift::workspace
