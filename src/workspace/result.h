#pragma once

// A run's result, read as data: what the run changed in /workspace against its checked-out
// commit. It is read from the run's own overlay upper directory, so it costs what the run
// wrote, not the size of the repository: a run that changed nothing costs one directory read.
//
// Trust rule: the upper directory is the sandbox's, so everything in it is hostile bytes. It is
// walked by descriptor, nothing is followed, nothing is executed, and no git ever runs in it:
//  - the change is the difference between the checked-out commit's tree (from the platform's
//    own repository, through `BaseTree`) and the merged view's files, so commits the run made,
//    a moved HEAD, its index, hooks, config and attributes change nothing — `.git` at the root
//    is not part of the result;
//  - a file is its bytes and its executable bit, a symlink is its target (text, never
//    followed), a whiteout or an opaque directory deletes what is below;
//  - new files `git add -A` would leave out are left out: those the repository's `.gitignore`
//    files ignore (as the result shows them; never `.git/info/exclude` or any config) and
//    setup's products (what a prebuild or setup layer below the checkout holds);
//  - what git cannot hold as plain content is still reported, for the review policy to refuse:
//    a directory holding its own `.git` (a nested repository) and anything written into a
//    submodule's directory become changes of a gitlink.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "workspace/git.h"

namespace nightshift::workspace {

struct FileChange {
  std::string path;       // repository-relative, '/'-separated, raw bytes
  uint32_t old_mode = 0;  // git mode in the checked-out commit; 0: the path is new
  std::string old_oid;
  uint32_t new_mode = 0;  // git mode in the result; 0: deleted
  std::string content;    // the result's bytes: a file's content, a symlink's target
  std::string new_oid;    // `content` as a git blob (files and symlinks)

  bool deleted() const { return new_mode == 0; }
  bool added() const { return old_mode == 0; }
};

struct RunResult {
  std::vector<FileChange> changes;  // by path
  int64_t entries_read = 0;         // entries of the upper directory looked at
  int64_t content_bytes = 0;        // bytes of changed files read
};

struct ResultLimits {
  int64_t max_entries = 1'000'000;         // entries of the upper directory walked
  int64_t max_bytes = int64_t{256} << 20;  // content of changed files read
};

// The checked-out commit's tree entries at and under the given top-level names (ListTree).
using BaseTree =
    std::function<StatusOr<std::map<std::string, TreeEntry>>(const std::vector<std::string>& tops)>;

// What the run changed: `upper` is its overlay upper directory, `lowers` the layers below it
// (top first: the checkout, then setup's products). ResourceExhausted past `limits` (the result
// is then too large to review); Internal for an overlay entry the platform never mounts with.
// `object_format` is the repository's hash: "sha1" or "sha256".
StatusOr<RunResult> CollectRunResult(const std::filesystem::path& upper,
                                     const std::vector<std::filesystem::path>& lowers,
                                     const BaseTree& base, std::string_view object_format,
                                     const ResultLimits& limits = {});

// `content` as a git blob id ("sha1" or "sha256"), in hex.
std::string GitBlobId(std::string_view content, std::string_view object_format);

}  // namespace nightshift::workspace
