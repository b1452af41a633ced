#pragma once

// The repository a run's result is delivered from: the platform's own, made for one delivery.
//
// Trust rule: nothing of the run's workspace is ever a repository here. The run's result enters
// only as data — the changed files' bytes, written into `git fast-import` on its stdin — and
// the one commit is made by the platform, with its identity, on top of the checked-out commit:
// commits the run made, its HEAD, index, hooks, config and attributes never reach it. The
// repository is bare, laid out by the platform (no hooks, no config but the format) in a
// directory the platform owns, and borrows the mirror's objects (alternates); every git
// command runs with the fixed configuration of workspace/git.h. So the diff a reviewer sees is
// git's own over two trees the platform built, and what is pushed is exactly that.

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "forge/policy.h"
#include "workspace/git.h"
#include "workspace/result.h"

namespace nightshift::forge {

struct Identity;

class DeliveryRepo {
 public:
  // Lays out a bare repository in the empty or absent directory `dir`, borrowing the objects of
  // the bare repository `mirror`. `object_format` is "sha1" or "sha256", the mirror's.
  static StatusOr<DeliveryRepo> Create(const std::filesystem::path& dir,
                                       const std::filesystem::path& mirror,
                                       std::string_view object_format, workspace::GitContext git);

  // The commit of `changes` over `parent` (author and committer `who`, at `time_s`). Gitlink
  // changes are left out: git cannot hold them as content, and the review policy refuses them.
  StatusOr<std::string> Commit(const std::string& parent,
                               const std::vector<workspace::FileChange>& changes,
                               const Identity& who, const std::string& message, int64_t time_s);

  // Lines added and removed per path from `from` to `to` (-1 for a file git takes for binary),
  // renames as a deletion and an addition.
  StatusOr<std::map<std::string, LineCount>> LineCounts(const std::string& from,
                                                        const std::string& to);

  // The unified diff from `from` to `to` that reviewers read (git's own, no external diff or
  // text conversion; binary files as "Binary files … differ").
  StatusOr<std::string> Diff(const std::string& from, const std::string& to);

  // A blob's bytes, up to `max_bytes`.
  StatusOr<std::string> ReadBlob(const std::string& oid, size_t max_bytes);

  // Pushes `commit` to `url` as refs/heads/`branch`, without force: a branch that moved is
  // refused. Errors carry git's reason.
  Status Push(const std::string& url, const std::string& commit, const std::string& branch);

  const std::filesystem::path& dir() const { return dir_; }

 private:
  DeliveryRepo(std::filesystem::path dir, workspace::GitContext git)
      : dir_(std::move(dir)), git_(std::move(git)) {}
  StatusOr<workspace::GitOutput> Git(workspace::GitCall call, std::string_view what);

  std::filesystem::path dir_;
  workspace::GitContext git_;
};

// A path as fast-import reads it: as is, or C-quoted when it has a quote, a backslash or a
// control character.
std::string FastImportPath(std::string_view path);

}  // namespace nightshift::forge
