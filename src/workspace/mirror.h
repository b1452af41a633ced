#pragma once

// Mirrors: one bare repository per registered repository, under <data>/mirrors, fetched from
// its URL (a local path, file://, https or ssh) and shared by every run of that repository.
// A per-mirror file lock (flock) serializes fetches, across threads and processes; readers
// (checkouts cloning from the mirror) need no lock, since git only ever adds objects and
// updates refs atomically. A missing or corrupt mirror is re-created.

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include "core/status.h"
#include "workspace/git.h"

namespace nightshift::workspace {

// The branches and tags (refs/heads/*, refs/tags/*) of the repository whose git dir is
// `git_dir`, from its files: packed-refs, then loose refs, which win. No process is started.
std::map<std::string, std::string> ReadGitRefs(const std::filesystem::path& git_dir);

class Mirrors {
 public:
  // `max_age_ms`: a mirror fetched less than this long ago is not fetched again (0: always).
  explicit Mirrors(std::filesystem::path root, int64_t max_age_ms = 0)
      : root_(std::move(root)), max_age_ms_(max_age_ms) {}

  // Brings the mirror named `key` (a repository's stable id) up to date with `url` and returns
  // its path. Unavailable with git's reason when the URL cannot be fetched. `recreate`: clone
  // it again first (the caller found it corrupt: a ref whose objects are gone).
  StatusOr<std::filesystem::path> Sync(const std::string& key, const std::string& url,
                                       const GitContext& git, bool recreate = false);

  // The commit `ref` names in `mirror`: a branch, a tag, or a commit id (full or abbreviated);
  // empty = the default branch. NotFound naming the ref otherwise; Internal if git cannot
  // read it (a corrupt mirror: a ref whose objects are gone).
  static StatusOr<std::string> Resolve(const std::filesystem::path& mirror, const std::string& ref,
                                       const GitContext& git);

  std::filesystem::path PathOf(const std::string& key) const { return root_ / (key + ".git"); }

 private:
  Status Create(const std::filesystem::path& path, const std::string& url, const GitContext& git);
  const std::filesystem::path root_;
  const int64_t max_age_ms_;
};

}  // namespace nightshift::workspace
