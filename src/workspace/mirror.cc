#include "workspace/mirror.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <cerrno>
#include <map>
#include <optional>

#include "core/clock.h"
#include "core/fs.h"

namespace nightshift::workspace {
namespace {

constexpr const char* kUrlFile = "nightshift-url";
constexpr const char* kFetchedFile = "nightshift-fetched";  // its mtime: the last good fetch

const std::vector<std::string> kRefspecs = {"+refs/heads/*:refs/heads/*",
                                            "+refs/tags/*:refs/tags/*"};

bool FreshEnough(const std::filesystem::path& stamp, int64_t max_age_ms) {
  if (max_age_ms <= 0) return false;
  struct stat st {};
  if (::stat(stamp.c_str(), &st) != 0) return false;
  const int64_t age_ms = SystemClock::Get().NowMs() -
                         (int64_t{st.st_mtim.tv_sec} * 1000 + st.st_mtim.tv_nsec / 1'000'000);
  return age_ms >= 0 && age_ms < max_age_ms;
}

// The objects every ref points to are readable: catches a mirror whose packs were lost.
bool Intact(const std::filesystem::path& mirror, const GitContext& git) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(mirror / "HEAD", ec)) return false;
  auto r = RunGit(git, mirror, {"for-each-ref", "--format=%(objecttype)"});
  return r.ok() && r->exit_code == 0;
}

// For a repository on this machine (a path or file:// URL): its git dir, if it has one.
std::optional<std::filesystem::path> LocalGitDir(const std::string& url) {
  std::string path = url;
  if (path.starts_with("file://")) path = path.substr(7);
  if (path.empty() || path.front() != '/') return std::nullopt;
  std::error_code ec;
  if (std::filesystem::is_regular_file(std::filesystem::path(path) / ".git" / "HEAD", ec)) {
    return std::filesystem::path(path) / ".git";
  }
  if (std::filesystem::is_regular_file(std::filesystem::path(path) / "HEAD", ec)) {
    return std::filesystem::path(path);
  }
  return std::nullopt;
}

}  // namespace

std::map<std::string, std::string> ReadGitRefs(const std::filesystem::path& git_dir) {
  std::map<std::string, std::string> refs;
  if (auto packed = ReadFile(git_dir / "packed-refs"); packed.ok()) {
    size_t at = 0;
    while (at < packed->size()) {
      size_t end = packed->find('\n', at);
      if (end == std::string::npos) end = packed->size();
      std::string_view line(packed->data() + at, end - at);
      at = end + 1;
      if (line.size() < 42 || line[0] == '#' || line[0] == '^' || line[40] != ' ') continue;
      std::string name(line.substr(41));
      if (name.starts_with("refs/heads/") || name.starts_with("refs/tags/")) {
        refs[name] = std::string(line.substr(0, 40));
      }
    }
  }
  std::error_code ec;
  for (const char* dir : {"refs/heads", "refs/tags"}) {
    for (std::filesystem::recursive_directory_iterator it(git_dir / dir, ec), end; !ec && it != end;
         it.increment(ec)) {
      if (!it->is_regular_file(ec)) continue;
      auto sha = ReadFile(it->path());
      if (!sha.ok() || sha->size() < 40) continue;
      refs[it->path().lexically_relative(git_dir).generic_string()] = sha->substr(0, 40);
    }
  }
  return refs;
}

Status Mirrors::Create(const std::filesystem::path& path, const std::string& url,
                       const GitContext& git) {
  const std::filesystem::path tmp =
      root_ / StrCat(".tmp-", path.filename().string(), "-", RandomHex(4));
  auto cloned = RunGit(git, root_, {"clone", "--bare", "--quiet", "--", url, tmp.string()});
  if (!cloned.ok() || cloned->exit_code != 0) {
    RemoveTreeQuietly(tmp);
    if (!cloned.ok()) return cloned.status();
    return UnavailableError(
        StrCat("cannot fetch ", url, ": ",
               cloned->last_error.empty() ? "git clone failed" : cloned->last_error));
  }
  for (const auto& spec : kRefspecs) {
    auto r = RunGitOk(git, tmp, {"config", "--add", "remote.origin.fetch", spec}, "mirror config");
    if (!r.ok()) {
      RemoveTreeQuietly(tmp);
      return r.status();
    }
  }
  if (Status st = WriteFileAtomic(tmp / kUrlFile, url); !st.ok()) {
    RemoveTreeQuietly(tmp);
    return st;
  }
  (void)WriteFileAtomic(tmp / kFetchedFile, "");
  // Replace a broken one: out of the way first, so the new one appears in one rename.
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    const auto trash = root_ / StrCat(".trash-", path.filename().string(), "-", RandomHex(4));
    std::filesystem::rename(path, trash, ec);
    RemoveTreeQuietly(trash);
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    RemoveTreeQuietly(tmp);
    return InternalError(StrCat("cannot install mirror ", path.string(), ": ", ec.message()));
  }
  return OkStatus();
}

StatusOr<std::filesystem::path> Mirrors::Sync(const std::string& key, const std::string& url,
                                              const GitContext& git, bool recreate) {
  std::error_code ec;
  std::filesystem::create_directories(root_, ec);
  if (ec) return InternalError(StrCat("cannot create ", root_.string(), ": ", ec.message()));
  ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire(root_ / (key + ".lock")));
  const std::filesystem::path path = PathOf(key);
  auto recorded_url = ReadFile(path / kUrlFile);
  const bool exists = std::filesystem::is_regular_file(path / "HEAD", ec);
  if (!exists || recreate) {
    RETURN_IF_ERROR(Create(path, url, git));
    return path;
  }
  const bool same_url = recorded_url.ok() && *recorded_url == url;
  if (same_url && FreshEnough(path / kFetchedFile, max_age_ms_)) return path;
  // A repository on this machine whose branches and tags the mirror already has: nothing to
  // fetch, and reading two sets of ref files costs far less than a fetch.
  auto head = ReadFile(path / "HEAD");
  const bool sane_head =
      head.ok() && (head->starts_with("ref: refs/") ||
                    (head->size() >= 40 && head->find_first_not_of("0123456789abcdef") >= 40));
  if (same_url && sane_head) {
    if (auto origin = LocalGitDir(url)) {
      auto theirs = ReadGitRefs(*origin);
      if (!theirs.empty() && theirs == ReadGitRefs(path)) return path;
    }
  }
  if (!same_url) {
    auto r = RunGit(git, path, {"remote", "set-url", "origin", url});
    if (!r.ok()) return r.status();
    if (r->exit_code != 0 || !WriteFileAtomic(path / kUrlFile, url).ok()) {
      RETURN_IF_ERROR(Create(path, url, git));  // no usable origin: start again
      return path;
    }
  }
  // No maintenance run and no FETCH_HEAD: each costs a process or a write on every run's path.
  std::vector<std::string> args = {
      "fetch", "--prune", "--no-tags", "--quiet", "--no-auto-maintenance", "--no-write-fetch-head",
      "origin"};
  args.insert(args.end(), kRefspecs.begin(), kRefspecs.end());
  ASSIGN_OR_RETURN(GitOutput fetched, RunGit(git, path, args));
  if (fetched.exit_code == 0) {
    (void)WriteFileAtomic(path / kFetchedFile, "");
    return path;
  }
  if (!Intact(path, git)) {
    // Corrupt (lost objects, a broken HEAD or config): fetch it all again.
    RETURN_IF_ERROR(Create(path, url, git));
    return path;
  }
  return UnavailableError(StrCat("cannot fetch ", url, ": ",
                                 fetched.last_error.empty()
                                     ? StrCat("git fetch exited with status ", fetched.exit_code)
                                     : fetched.last_error));
}

StatusOr<std::string> Mirrors::Resolve(const std::filesystem::path& mirror, const std::string& ref,
                                       const GitContext& git) {
  std::vector<std::string> candidates;
  if (ref.empty()) {
    candidates = {"HEAD"};
  } else {
    candidates = {"refs/heads/" + ref, "refs/tags/" + ref, ref};
  }
  for (const std::string& candidate : candidates) {
    ASSIGN_OR_RETURN(GitOutput out, RunGit(git, mirror,
                                           {"rev-parse", "--verify", "--quiet", "--end-of-options",
                                            candidate + "^{commit}"}));
    if (out.exit_code == 0 && !out.out.empty()) return out.out.front();
    if (out.exit_code != 1) {
      return InternalError(StrCat("cannot resolve ref: ", out.last_error.empty()
                                                              ? "git rev-parse failed"
                                                              : out.last_error));
    }
  }
  // A ref the mirror has but whose commit git cannot read: the mirror is corrupt.
  const auto refs = ReadGitRefs(mirror);
  for (const std::string& name :
       {StrCat("refs/heads/", ref.empty() ? "main" : ref), StrCat("refs/tags/", ref)}) {
    if (refs.contains(name)) {
      return InternalError(
          StrCat("cannot resolve ref: the mirror has ", name, " but not its commit"));
    }
  }
  if (ref.empty() && !refs.empty()) {
    return InternalError("cannot resolve HEAD: the mirror's objects are unreadable");
  }
  return NotFoundError(StrCat("unknown ref '", ref.empty() ? "HEAD" : ref, "'"));
}

}  // namespace nightshift::workspace
