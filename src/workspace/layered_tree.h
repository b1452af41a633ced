#pragma once

// Reading a stack of overlay layers the way the overlay shows them — by the host, as data.
//
// Trust rule: the layers hold what repositories and runs wrote (a checkout, a prebuild's setup
// products, a run's upper directory), so their names, symlinks and xattrs are hostile. Nothing
// here follows a symlink, anywhere in a path: every open is relative to a directory descriptor,
// component by component, with O_NOFOLLOW, and a symlink on the way is an error, never a hop to
// somewhere else on the host. Overlayfs's own markers are honoured as the kernel would: a
// whiteout (a 0/0 character device) hides what is below it, and an opaque directory
// (trusted.overlay.opaque) hides the directories below it. Entries the platform never mounts
// with (a redirect of a renamed directory, a metadata-only copy-up) are refused.

#include <sys/stat.h>

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/fs.h"
#include "core/status.h"

namespace nightshift::workspace {

enum class EntryType { kFile, kSymlink, kDirectory, kWhiteout, kOther };

// What a directory entry is, from its lstat.
EntryType TypeOf(const struct stat& st);

// Whether the directory open at `dir_fd` is an opaque overlay directory. Internal if the
// directory carries an overlay marker the platform does not mount with (a redirect).
StatusOr<bool> IsOpaqueDirectory(int dir_fd, std::string_view name_for_errors);

// Refuses a regular file that is only a metadata copy-up (its data would live in a lower layer).
Status CheckNotMetacopy(int file_fd, std::string_view name_for_errors);

// `name` in the directory `dir_fd`, opened without following a symlink; `flags` are added to
// O_NOFOLLOW | O_CLOEXEC.
StatusOr<UniqueFd> OpenEntry(int dir_fd, const std::string& name, int flags,
                             std::string_view name_for_errors);

// Up to `max_bytes` of the open file (FailedPrecondition past that).
StatusOr<std::string> ReadOpenFile(int fd, size_t max_bytes, std::string_view name_for_errors);

// Splits a repository-relative path into its components; InvalidArgument for an absolute path,
// an empty one, or one with empty, "." or ".." components.
StatusOr<std::vector<std::string>> PathComponents(std::string_view relative);

struct LayerEntry {
  EntryType type = EntryType::kOther;
  size_t layer = 0;  // which layer shows it, 0 = top
  struct stat st {};
};

// The merged view of layers, top first. Holds a descriptor on each layer's root.
class LayerStack {
 public:
  static StatusOr<LayerStack> Open(const std::vector<std::filesystem::path>& layers);

  // What `relative` is in the merged view. NotFound when nothing shows it (absent, or hidden by
  // a whiteout or an opaque directory above); InvalidArgument when a directory on the way is a
  // symlink or not a directory.
  StatusOr<LayerEntry> Lookup(std::string_view relative) const;

  // The content of the regular file `relative`. NotFound as Lookup; InvalidArgument when it is
  // a symlink or anything but a regular file; FailedPrecondition past `max_bytes`.
  StatusOr<std::string> ReadFile(std::string_view relative, size_t max_bytes) const;

  size_t size() const { return roots_.size(); }

 private:
  // The entry showing `relative`, with the open directory that holds it.
  struct Found {
    LayerEntry entry;
    UniqueFd dir;
    std::string name;
  };
  StatusOr<Found> Find(std::string_view relative) const;
  // The directories showing `components` (a directory path), top first, opened; the merged
  // directory's layers. Empty components: the roots.
  StatusOr<std::vector<std::pair<size_t, UniqueFd>>> OpenDirectory(
      const std::vector<std::string>& components, std::string_view relative) const;

  std::vector<UniqueFd> roots_;
};

// LayerStack::ReadFile over `layers`, for one file (environment files, lock files).
StatusOr<std::string> ReadThroughLayers(const std::vector<std::filesystem::path>& layers,
                                        const std::filesystem::path& relative,
                                        size_t max_bytes = size_t{16} << 20);

}  // namespace nightshift::workspace
