#include "workspace/cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "core/clock.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/log.h"
#include "workspace/mirror.h"

namespace nightshift::workspace {
namespace {

int64_t MtimeMs(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return int64_t{st.st_mtim.tv_sec} * 1000 + st.st_mtim.tv_nsec / 1'000'000;
}

// Gives a built layer to the sandbox's uid, except the object files hard-linked with the
// mirror (read-only, and a lower layer in every run).
Status ChownLayer(const std::filesystem::path& root, uid_t uid) {
  std::error_code ec;
  const std::filesystem::path objects = root / ".git" / "objects";
  if (::lchown(root.c_str(), uid, uid) != 0) return ErrnoError("chown", root.string());
  for (std::filesystem::recursive_directory_iterator it(root, ec), end; !ec && it != end;
       it.increment(ec)) {
    const auto& path = it->path();
    const bool is_dir = it->is_directory(ec) && !it->is_symlink(ec);
    if (!is_dir && path.native().starts_with(objects.native() + "/")) continue;
    if (::lchown(path.c_str(), uid, uid) != 0) return ErrnoError("chown", path.string());
  }
  if (ec) return InternalError(StrCat("walk ", root.string(), ": ", ec.message()));
  return OkStatus();
}

// Runs a shell script (git steps) with git's environment plus `vars`.
Status RunScript(const GitContext& git, const std::filesystem::path& cwd, const std::string& script,
                 std::map<std::string, std::string> vars, std::string_view what,
                 std::optional<sandbox::ProcessSpec::PrivateOverlay> overlay = {}) {
  sandbox::ProcessSpec spec{.argv = {"/bin/sh", "-c", script},
                            .working_dir = cwd,
                            .env = GitEnvironment(git),
                            .timeout_ms = git.timeout_ms};
  for (auto& [name, value] : vars) spec.env[name] = std::move(value);
  spec.env["GIT"] = git.git;
  spec.private_overlay = std::move(overlay);
  std::string last_error;
  auto result = sandbox::RunProcess(
      spec,
      [&](std::string_view stream, std::string_view line) {
        if (stream == "stderr" && !line.empty()) last_error = std::string(line);
        if (git.log) git.log(stream, line);
      },
      git.cancel);
  if (!result.ok()) return result.status();
  if (result->reason == sandbox::EndReason::kCancelled) return CancelledError("cancelled");
  if (result->reason == sandbox::EndReason::kTimedOut) {
    return DeadlineExceededError(StrCat(what, " timed out"));
  }
  if (result->exit_code != 0) {
    return InternalError(StrCat(
        what, ": ", last_error.empty() ? StrCat("exit status ", result->exit_code) : last_error));
  }
  return OkStatus();
}

// Files git writes are dated one second before the index that records them, so git does not
// take them for "racily clean" and re-hash them.
std::string StampSeconds() { return StrCat(SystemClock::Get().NowMs() / 1000 - 1); }

constexpr const char* kFullCheckout = R"(set -e
"$GIT" clone --local --no-checkout --quiet -- "$MIRROR" "$DEST"
cd "$DEST"
"$GIT" remote set-url origin "$URL"
"$GIT" config core.checkStat minimal
"$GIT" config core.trustctime false
# Byte for byte what the commit holds: no end-of-line conversion, keyword expansion, filter or
# re-encoding, whatever the repository's .gitattributes ask (this file overrides them all). A
# run's changes are then exactly the bytes it wrote.
mkdir -p .git/info
printf '* -text -eol -ident -filter -working-tree-encoding\n' > .git/info/attributes
"$GIT" checkout --quiet --detach "$COMMIT"
"$GIT" ls-files -z | xargs -0 -r touch -c -h -m -d "@$STAMP" --
"$GIT" update-index -q --refresh >/dev/null || true
)";

// Only what changed between the two commits is touched: a plain `git checkout` would stat every
// file of the work tree, and the first look at each file through a fresh overlay is the most
// expensive part of a delta. The objects the base lacks come from the mirror as one pack.
constexpr const char* kDeltaCheckout = R"(set -e
"$GIT" -C "$MIRROR" rev-list --objects "$COMMIT" --not "$BASE" |
  "$GIT" -C "$MIRROR" pack-objects -q --stdout | "$GIT" index-pack --stdin > /dev/null
"$GIT" diff-tree -r -z --no-renames --no-commit-id --name-only --diff-filter=d "$BASE" "$COMMIT" > "$LISTS/changed"
"$GIT" diff-tree -r -z --no-renames --no-commit-id --name-only --diff-filter=D "$BASE" "$COMMIT" > "$LISTS/deleted"
if [ -s "$LISTS/deleted" ]; then
  "$GIT" rm -q --ignore-unmatch --pathspec-from-file="$LISTS/deleted" --pathspec-file-nul
fi
if [ -s "$LISTS/changed" ]; then
  "$GIT" checkout -q "$COMMIT" --pathspec-from-file="$LISTS/changed" --pathspec-file-nul
fi
"$GIT" update-ref --no-deref HEAD "$COMMIT"
xargs -0 -r touch -c -h -m -d "@$STAMP" -- < "$LISTS/changed"
xargs -0 -r "$GIT" update-index -q -- < "$LISTS/changed"
)";

// The mirror's branches and tags as the checkout's origin/* and tags, in a packed-refs file
// of the new layer (over the base's).
Status WriteRemoteRefs(const std::filesystem::path& mirror, const std::filesystem::path& layer) {
  const std::map<std::string, std::string> refs = ReadGitRefs(mirror);
  std::string out = "# pack-refs with: sorted \n";
  std::map<std::string, std::string> mapped;
  for (const auto& [name, sha] : refs) {
    if (name.starts_with("refs/heads/")) {
      mapped["refs/remotes/origin/" + name.substr(11)] = sha;
    } else if (name.starts_with("refs/tags/")) {
      mapped[name] = sha;
    }
  }
  for (const auto& [name, sha] : mapped) out += StrCat(sha, " ", name, "\n");
  std::error_code ec;
  std::filesystem::create_directories(layer / ".git", ec);
  return WriteFileAtomic(layer / ".git" / "packed-refs", out);
}

}  // namespace

int64_t TreeBytes(const std::filesystem::path& root) {
  int64_t total = 0;
  struct stat st {};
  if (::lstat(root.c_str(), &st) == 0) total += int64_t{st.st_blocks} * 512;
  std::error_code ec;
  for (std::filesystem::recursive_directory_iterator it(root, ec), end; !ec && it != end;
       it.increment(ec)) {
    if (::lstat(it->path().c_str(), &st) == 0) total += int64_t{st.st_blocks} * 512;
  }
  return total;
}

LayerLease& LayerLease::operator=(LayerLease&& other) noexcept {
  if (this != &other) {
    if (cache_ != nullptr) cache_->Release(ids_);
    cache_ = std::exchange(other.cache_, nullptr);
    ids_ = std::move(other.ids_);
    dirs_ = std::move(other.dirs_);
    other.ids_.clear();
    other.dirs_.clear();
  }
  return *this;
}

LayerLease::~LayerLease() {
  if (cache_ != nullptr) cache_->Release(ids_);
}

LayerCache::LayerCache(CacheOptions options) : options_(std::move(options)) {
  // Leftovers of a crash: builds that never finished, layers never recorded.
  for (const char* sub : {"tmp", "trash"}) RemoveTreeQuietly(options_.root / sub);
  std::error_code ec;
  for (const char* sub : {"layers", "meta", "locks", "tmp", "trash"}) {
    std::filesystem::create_directories(options_.root / sub, ec);
  }
  for (std::filesystem::directory_iterator it(options_.root / "layers", ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::string id = it->path().filename().string();
    if (!std::filesystem::exists(MetaPath(id))) RemoveTreeQuietly(it->path());
  }
}

std::optional<LayerCache::Meta> LayerCache::ReadMeta(const std::string& id) const {
  auto text = ReadFile(MetaPath(id));
  if (!text.ok()) return std::nullopt;
  auto json = ParseJson(*text);
  if (!json.ok() || !json->is_object()) return std::nullopt;
  Meta meta;
  meta.kind = json->value("kind", "");
  meta.repo = json->value("repo", "");
  meta.commit = json->value("commit", "");
  meta.parent = json->value("parent", "");
  meta.bytes = json->value("bytes", int64_t{0});
  meta.depth = json->value("depth", 0);
  meta.format = json->value("format", 1);
  return meta;
}

Status LayerCache::WriteMeta(const std::string& id, const Meta& meta) const {
  Json json{{"kind", meta.kind},     {"repo", meta.repo},   {"commit", meta.commit},
            {"parent", meta.parent}, {"bytes", meta.bytes}, {"depth", meta.depth},
            {"format", meta.format}};
  return WriteFileAtomic(MetaPath(id), json.dump() + "\n", 0600);
}

std::optional<LayerLease> LayerCache::LeaseLocked(const std::string& id) {
  LayerLease lease;
  std::string next = id;
  while (!next.empty()) {
    auto meta = ReadMeta(next);
    if (!meta) return std::nullopt;  // missing, or a parent collected: not usable
    lease.ids_.push_back(next);
    lease.dirs_.push_back(LayerDir(next));
    if (lease.ids_.size() > 64) return std::nullopt;  // a cycle: corrupt metadata
    next = meta->parent;
  }
  for (const std::string& leased : lease.ids_) ++leases_[leased];
  lease.cache_ = this;
  // Last use, for the LRU order.
  ::utimensat(AT_FDCWD, MetaPath(id).c_str(), nullptr, 0);
  return lease;
}

void LayerCache::Release(const std::vector<std::string>& ids) {
  std::lock_guard lock(mu_);
  for (const std::string& id : ids) {
    if (auto it = leases_.find(id); it != leases_.end() && --it->second <= 0) leases_.erase(it);
  }
}

StatusOr<std::filesystem::path> LayerCache::NewBuildDir(const std::string& id) const {
  const auto dir = options_.root / "tmp" / StrCat(id, "-", RandomHex(4));
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return InternalError(StrCat("cannot create ", dir.string(), ": ", ec.message()));
  return dir;
}

Status LayerCache::Install(const std::filesystem::path& built, const std::string& id,
                           const Meta& meta) {
  std::error_code ec;
  std::filesystem::rename(built, LayerDir(id), ec);
  if (ec) return InternalError(StrCat("cannot install layer ", id, ": ", ec.message()));
  return WriteMeta(id, meta);
}

Status WriteCheckout(const GitContext& git, const std::filesystem::path& mirror,
                     const std::string& url, const std::string& commit,
                     const std::filesystem::path& dest) {
  return RunScript(git, dest.parent_path(), kFullCheckout,
                   {{"MIRROR", mirror.string()},
                    {"DEST", dest.string()},
                    {"URL", url},
                    {"COMMIT", commit},
                    {"STAMP", StampSeconds()}},
                   "checkout");
}

Status LayerCache::BuildFull(const std::filesystem::path& dir, const std::filesystem::path& mirror,
                             const std::string& url, const std::string& commit,
                             const GitContext& git) {
  return WriteCheckout(git, mirror, url, commit, dir);
}

Status LayerCache::BuildDelta(const std::filesystem::path& dir, const LayerLease& base,
                              const std::string& base_commit, const std::filesystem::path& mirror,
                              const std::string& commit, const GitContext& git) {
  const auto work = dir.parent_path() / "work";
  const auto merged = dir.parent_path() / "merged";
  std::error_code ec;
  for (const auto& d : {dir, work, merged}) std::filesystem::create_directories(d, ec);
  if (ec) return InternalError(StrCat("cannot create build dirs: ", ec.message()));
  RETURN_IF_ERROR(WriteRemoteRefs(mirror, dir));
  return RunScript(git, merged, kDeltaCheckout,
                   {{"LISTS", dir.parent_path().string()},
                    {"MIRROR", mirror.string()},
                    {"BASE", base_commit},
                    {"COMMIT", commit},
                    {"STAMP", StampSeconds()},
                    {"GIT_LITERAL_PATHSPECS", "1"}},
                   "checkout",
                   sandbox::ProcessSpec::PrivateOverlay{
                       .lowers = base.dirs(), .upper = dir, .work = work, .target = merged});
}

StatusOr<LayerLease> LayerCache::Checkout(const std::string& repo_key,
                                          const std::filesystem::path& mirror,
                                          const std::string& url, const std::string& commit,
                                          const GitContext& git) {
  const std::string id = StrCat("co", kCheckoutFormat, "-", repo_key, "-", commit);
  {
    std::lock_guard lock(mu_);
    if (auto lease = LeaseLocked(id)) return std::move(*lease);
  }
  ASSIGN_OR_RETURN(FileLock build_lock,
                   FileLock::Acquire(options_.root / "locks" / (id + ".lock")));
  // The base of a delta: this repository's most recently used checkout that is not too deep.
  std::optional<LayerLease> base;
  Meta base_meta;
  {
    std::lock_guard lock(mu_);
    if (auto lease = LeaseLocked(id)) return std::move(*lease);  // built meanwhile
    std::string best;
    int64_t best_used = -1;
    std::error_code ec;
    for (std::filesystem::directory_iterator it(options_.root / "meta", ec), end; !ec && it != end;
         it.increment(ec)) {
      if (it->path().extension() != ".json") continue;
      const std::string other = it->path().stem().string();
      auto meta = ReadMeta(other);
      if (!meta || meta->kind != "checkout" || meta->repo != repo_key) continue;
      if (meta->format != kCheckoutFormat) continue;  // an older layout: never a base
      if (meta->depth + 1 > options_.max_depth) continue;
      const int64_t used = MtimeMs(it->path());
      if (used > best_used) {
        best_used = used;
        best = other;
        base_meta = *meta;
      }
    }
    if (!best.empty()) base = LeaseLocked(best);
  }
  ASSIGN_OR_RETURN(std::filesystem::path build_dir, NewBuildDir(id));
  auto layer = [&] { return build_dir / "layer"; };
  Meta meta{.kind = "checkout", .repo = repo_key, .commit = commit, .format = kCheckoutFormat};
  Status built;
  if (base) {
    meta.parent = base->ids().front();
    meta.depth = base_meta.depth + 1;
    built = BuildDelta(layer(), *base, base_meta.commit, mirror, commit, git);
    if (!built.ok() && built.code() != StatusCode::kCancelled) {
      // The base's commit may be gone from the mirror (a force-push, then gc): start over.
      log::Get("workspace")
          ->warn("cache: delta {} over {} failed ({}); full checkout instead", id, meta.parent,
                 built.message());
      RemoveTreeQuietly(build_dir);
      ASSIGN_OR_RETURN(build_dir, NewBuildDir(id));
      meta.parent.clear();
      meta.depth = 0;
      base.reset();
    }
  }
  if (!base) built = BuildFull(layer(), mirror, url, commit, git);
  if (built.ok()) built = ChownLayer(layer(), options_.sandbox_uid);
  if (built.ok()) {
    meta.bytes = TreeBytes(layer());
    built = Install(layer(), id, meta);
  }
  RemoveTreeQuietly(build_dir);
  if (!built.ok()) return built;
  std::optional<LayerLease> lease;
  {
    std::lock_guard lock(mu_);
    lease = LeaseLocked(id);
  }
  base.reset();
  Collect();
  if (!lease) return InternalError(StrCat("layer ", id, " vanished after its build"));
  return std::move(*lease);
}

std::optional<LayerLease> LayerCache::FindPrebuild(const std::string& id) {
  std::lock_guard lock(mu_);
  return LeaseLocked(id);
}

std::optional<std::string> LayerCache::PrebuildFailure(const std::string& id) const {
  auto text = ReadFile(options_.root / "meta" / (id + ".failed"));
  if (!text.ok()) return std::nullopt;
  return *text;
}

void LayerCache::ForgetPrebuildFailure(const std::string& id) {
  std::error_code ec;
  std::filesystem::remove(options_.root / "meta" / (id + ".failed"), ec);
}

StatusOr<LayerLease> LayerCache::Prebuild(const std::string& id, const Builder& build) {
  if (auto lease = FindPrebuild(id)) return std::move(*lease);
  ASSIGN_OR_RETURN(FileLock build_lock,
                   FileLock::Acquire(options_.root / "locks" / (id + ".lock")));
  if (auto lease = FindPrebuild(id)) return std::move(*lease);
  ASSIGN_OR_RETURN(auto build_dir, NewBuildDir(id));
  const auto upper = build_dir / "layer";
  const auto work = build_dir / "work";
  std::error_code ec;
  std::filesystem::create_directories(upper, ec);
  std::filesystem::create_directories(work, ec);
  Status built =
      ec ? InternalError(StrCat("cannot create build dirs: ", ec.message())) : OkStatus();
  // The workspace's root directory takes its owner from the upper dir.
  if (built.ok() && ::chown(upper.c_str(), options_.sandbox_uid, options_.sandbox_uid) != 0) {
    built = ErrnoError("chown", upper.string());
  }
  if (built.ok()) built = build(upper, work);
  if (built.ok()) {
    RemoveTreeQuietly(upper / ".git");  // the checkout's, which always sits above
    built = Install(upper, id, Meta{.kind = "prebuild", .bytes = TreeBytes(upper)});
  }
  RemoveTreeQuietly(build_dir);
  if (!built.ok()) {
    if (built.code() != StatusCode::kCancelled) {
      (void)WriteFileAtomic(options_.root / "meta" / (id + ".failed"), built.message(), 0600);
    }
    return built;
  }
  ForgetPrebuildFailure(id);
  std::optional<LayerLease> lease = FindPrebuild(id);
  Collect();
  if (!lease) return InternalError(StrCat("layer ", id, " vanished after its build"));
  return std::move(*lease);
}

std::vector<LayerInfo> LayerCache::List() const {
  std::vector<LayerInfo> out;
  std::lock_guard lock(mu_);
  std::error_code ec;
  for (std::filesystem::directory_iterator it(options_.root / "meta", ec), end; !ec && it != end;
       it.increment(ec)) {
    if (it->path().extension() != ".json") continue;
    const std::string id = it->path().stem().string();
    auto meta = ReadMeta(id);
    if (!meta) continue;
    auto leased = leases_.find(id);
    out.push_back(LayerInfo{.id = id,
                            .kind = meta->kind,
                            .parent = meta->parent,
                            .bytes = meta->bytes,
                            .last_used_ms = MtimeMs(it->path()),
                            .leases = leased == leases_.end() ? 0 : leased->second});
  }
  std::sort(out.begin(), out.end(),
            [](const LayerInfo& a, const LayerInfo& b) { return a.last_used_ms < b.last_used_ms; });
  return out;
}

int64_t LayerCache::Collect() {
  std::vector<std::filesystem::path> doomed;
  int64_t freed = 0;
  {
    std::lock_guard lock(mu_);
    struct Candidate {
      std::string id;
      Meta meta;
      int64_t used;
    };
    std::vector<Candidate> all;
    std::error_code ec;
    for (std::filesystem::directory_iterator it(options_.root / "meta", ec), end; !ec && it != end;
         it.increment(ec)) {
      if (it->path().extension() != ".json") continue;
      const std::string id = it->path().stem().string();
      if (auto meta = ReadMeta(id)) all.push_back({id, *meta, MtimeMs(it->path())});
    }
    int64_t total = 0;
    for (const auto& c : all) total += c.meta.bytes;
    std::sort(all.begin(), all.end(),
              [](const Candidate& a, const Candidate& b) { return a.used < b.used; });
    while (total > options_.max_bytes) {
      std::set<std::string> parents;
      for (const auto& c : all) parents.insert(c.meta.parent);
      auto victim = std::find_if(all.begin(), all.end(), [&](const Candidate& c) {
        return !leases_.contains(c.id) && !parents.contains(c.id);
      });
      if (victim == all.end()) break;  // everything left is in use
      std::filesystem::remove(MetaPath(victim->id), ec);
      const auto trash = options_.root / "trash" / StrCat(victim->id, "-", RandomHex(4));
      std::filesystem::rename(LayerDir(victim->id), trash, ec);
      if (!ec) doomed.push_back(trash);
      total -= victim->meta.bytes;
      freed += victim->meta.bytes;
      log::Get("workspace")
          ->info("cache: removed layer {} ({} bytes)", victim->id, victim->meta.bytes);
      all.erase(victim);
    }
  }
  for (const auto& path : doomed) RemoveTreeQuietly(path);
  return freed;
}

}  // namespace nightshift::workspace
