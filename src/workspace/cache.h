#pragma once

// The layer cache: read-only directories that become the lower layers of a run's /workspace
// overlay (contain.h: SandboxSpec::workspace_layers), under <data>/cache.
//
//  - Checkouts: one per (repository, commit), a git work tree with its own .git (objects
//    hard-linked from the mirror). A commit whose repository already has a cached checkout is
//    built as a *delta* over it — git runs in a private mount namespace on an overlay of the
//    older checkout, so only the changed files and the index are written — up to max_depth
//    deltas deep, then a full checkout again.
//  - Prebuilds: what an environment's setup commands changed in /workspace, below the checkout
//    (the checkout's tracked files always win; setup's products fill in the rest).
//
// Checkout files belong to the sandbox's host uid (root inside), but .git/objects files, which
// are shared with the mirror through hard links, stay root's: inside a run they are a lower
// layer and only ever copied up. Checkouts set core.checkStat=minimal and core.trustctime=false
// (a sandbox sees other owners and inode numbers than the host that wrote the index) and their
// files are dated a second before the index, so git does not re-hash them.
//
// Garbage collection keeps the cache under max_bytes by removing least-recently-used layers,
// never one that a lease holds or another layer is built on. Leases are counted in this
// process: the data dir's lock makes it the cache's only user.

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "workspace/git.h"

namespace nightshift::workspace {

// How checkouts are laid out; part of their ids. 2: byte for byte what the commit holds (no
// attribute-driven conversion).
inline constexpr int kCheckoutFormat = 2;

struct CacheOptions {
  std::filesystem::path root;  // <data>/cache
  int64_t max_bytes = int64_t{20} << 30;
  uid_t sandbox_uid = 100000;  // owns checkout files (root inside a sandbox)
  int max_depth = 8;           // deltas stacked on one full checkout
};

class LayerCache;

// Layers in use, top first; none is collected while the lease lives. Move-only.
class LayerLease {
 public:
  LayerLease() = default;
  LayerLease(LayerLease&& other) noexcept { *this = std::move(other); }
  LayerLease& operator=(LayerLease&& other) noexcept;
  ~LayerLease();

  const std::vector<std::filesystem::path>& dirs() const { return dirs_; }
  const std::vector<std::string>& ids() const { return ids_; }
  bool empty() const { return ids_.empty(); }

 private:
  friend class LayerCache;
  LayerCache* cache_ = nullptr;
  std::vector<std::string> ids_;
  std::vector<std::filesystem::path> dirs_;
};

struct LayerInfo {
  std::string id;
  std::string kind;    // "checkout" or "prebuild"
  std::string parent;  // the layer a delta is built on, else empty
  int64_t bytes = 0;
  int64_t last_used_ms = 0;
  int leases = 0;
};

class LayerCache {
 public:
  explicit LayerCache(CacheOptions options);

  // The layers showing `commit` of repository `repo_key` (from `mirror`; `url` becomes the
  // checkout's origin), built if not cached.
  StatusOr<LayerLease> Checkout(const std::string& repo_key, const std::filesystem::path& mirror,
                                const std::string& url, const std::string& commit,
                                const GitContext& git);

  // Builds a layer with `build(upper, work)`, which fills the empty dir `upper` (e.g. by running
  // setup in a sandbox with `upper` over `base`'s layers; `work` is an empty overlay work dir on
  // the same filesystem). Returns the cached one if `id` exists. If `build` fails, nothing is
  // cached but a failure record (see PrebuildFailure) and its error is returned.
  using Builder =
      std::function<Status(const std::filesystem::path& upper, const std::filesystem::path& work)>;
  StatusOr<LayerLease> Prebuild(const std::string& id, const Builder& build);
  // A cached prebuild, if any (does not build).
  std::optional<LayerLease> FindPrebuild(const std::string& id);
  // Why the last build of prebuild `id` failed, if it did and no build succeeded since.
  std::optional<std::string> PrebuildFailure(const std::string& id) const;
  void ForgetPrebuildFailure(const std::string& id);

  // Removes least-recently-used layers until the cache fits max_bytes. Returns bytes freed.
  int64_t Collect();
  std::vector<LayerInfo> List() const;

  const CacheOptions& options() const { return options_; }

 private:
  friend class LayerLease;
  struct Meta {
    std::string kind, repo, commit, parent;
    int64_t bytes = 0;
    int depth = 0;
    int format = 1;  // checkouts: kCheckoutFormat when built byte for byte
  };
  std::filesystem::path LayerDir(const std::string& id) const {
    return options_.root / "layers" / id;
  }
  std::filesystem::path MetaPath(const std::string& id) const {
    return options_.root / "meta" / (id + ".json");
  }
  std::optional<Meta> ReadMeta(const std::string& id) const;
  Status WriteMeta(const std::string& id, const Meta& meta) const;
  // Under mu_: leases `id` and its parents if all exist.
  std::optional<LayerLease> LeaseLocked(const std::string& id);
  void Release(const std::vector<std::string>& ids);
  // Moves a finished build into place and records it.
  Status Install(const std::filesystem::path& built, const std::string& id, const Meta& meta);
  StatusOr<std::filesystem::path> NewBuildDir(const std::string& id) const;
  Status BuildFull(const std::filesystem::path& dir, const std::filesystem::path& mirror,
                   const std::string& url, const std::string& commit, const GitContext& git);
  Status BuildDelta(const std::filesystem::path& dir, const LayerLease& base,
                    const std::string& base_commit, const std::filesystem::path& mirror,
                    const std::string& commit, const GitContext& git);

  const CacheOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, int> leases_;  // id → count
};

// A checkout of `commit` at `dest` (absent or empty), cloned from `mirror` with its objects
// hard-linked, `url` as its origin, byte for byte what the commit holds. How every checkout is
// made: a cached layer's, and a plain run's private copy.
Status WriteCheckout(const GitContext& git, const std::filesystem::path& mirror,
                     const std::string& url, const std::string& commit,
                     const std::filesystem::path& dest);

// Sum of the disk usage of a tree (st_blocks), not following symlinks.
int64_t TreeBytes(const std::filesystem::path& root);

}  // namespace nightshift::workspace
