#include "workspace/result.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <optional>
#include <set>

#include "workspace/gitignore.h"
#include "workspace/layered_tree.h"

namespace nightshift::workspace {
namespace {

constexpr size_t kMaxIgnoreFileBytes = size_t{1} << 20;
// Far deeper than any repository; bounds the walk's recursion on the host.
constexpr int kMaxDepth = 256;

bool IsGitDirName(std::string_view name) {
  if (name.size() != 4) return false;
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower == ".git";
}

std::string Join(std::string_view dir, std::string_view name) {
  return dir.empty() ? std::string(name) : StrCat(dir, "/", name);
}

// The names in the directory open at `fd` (not "." or ".."), sorted.
StatusOr<std::vector<std::string>> ListDirectory(int fd, std::string_view name_for_errors) {
  const int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (dup < 0) return ErrnoError("dup", name_for_errors);
  DIR* dir = ::fdopendir(dup);
  if (dir == nullptr) {
    ::close(dup);
    return ErrnoError("read directory", name_for_errors);
  }
  // The duplicate shares the descriptor's offset, which an earlier listing left at the end.
  ::rewinddir(dir);
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* entry = ::readdir(dir)) {
    std::string_view name = entry->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
    errno = 0;
  }
  const int err = errno;
  ::closedir(dir);
  if (err != 0) return ErrnoError("read directory", name_for_errors, err);
  std::sort(names.begin(), names.end());
  return names;
}

class Collector {
 public:
  Collector(const std::map<std::string, TreeEntry>& base, const LayerStack& lowers,
            const LayerStack& merged, std::string_view object_format, const ResultLimits& limits)
      : base_(base),
        lowers_(lowers),
        merged_(merged),
        object_format_(object_format),
        limits_(limits),
        ignore_([this](const std::string& dir) -> std::optional<std::string> {
          auto text = merged_.ReadFile(Join(dir, ".gitignore"), kMaxIgnoreFileBytes);
          if (!text.ok()) return std::nullopt;  // absent, or not a regular file: git skips it
          return *std::move(text);
        }) {}

  // Walks the directory open at `fd`, `path` relative to the repository root ("" = root).
  Status Walk(int fd, const std::string& path, int depth = 0) {
    if (depth > kMaxDepth) {
      return ResourceExhaustedError(
          StrCat("the run's workspace nests directories deeper than ", kMaxDepth));
    }
    ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirectory(fd, Shown(path)));
    if (!path.empty()) {
      // A directory with a .git of its own is a nested repository: git would add it as a
      // gitlink, never its files.
      for (const std::string& name : names) {
        if (IsGitDirName(name)) {
          AddGitlinkChange(path);
          return OkStatus();
        }
      }
    }
    for (const std::string& name : names) {
      if (++result_.entries_read > limits_.max_entries) {
        return ResourceExhaustedError(StrCat("the run's workspace holds more than ",
                                             limits_.max_entries, " changed entries"));
      }
      const std::string child = Join(path, name);
      if (path.empty() && name == ".git") continue;  // the checkout's own, not content
      if (path.empty() && IsGitDirName(name)) {
        AddGitlinkChange(child);  // a case variant of .git: refused later
        continue;
      }
      struct stat st {};
      if (::fstatat(fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return ErrnoError("stat", Shown(child));
      }
      switch (TypeOf(st)) {
        case EntryType::kDirectory:
          RETURN_IF_ERROR(VisitDirectory(fd, name, child, depth + 1));
          break;
        case EntryType::kFile:
        case EntryType::kSymlink:
          RETURN_IF_ERROR(VisitFile(fd, name, child, st));
          break;
        case EntryType::kWhiteout:
        case EntryType::kOther:
          // A whiteout deletes what is below; a FIFO, socket or device is nothing git can hold,
          // so it too only hides what it replaced.
          Hide(child, /*and_itself=*/true);
          break;
      }
    }
    return OkStatus();
  }

  // Deletions: every base entry hidden by the walk and not shown again.
  Status Finish() {
    for (const auto& [prefix, and_itself] : hidden_) {
      if (and_itself) Delete(prefix);
      const std::string under = prefix + "/";
      for (auto it = base_.lower_bound(under); it != base_.end() && it->first.starts_with(under);
           ++it) {
        Delete(it->first);
      }
    }
    for (auto& [path, change] : changes_) result_.changes.push_back(std::move(change));
    return OkStatus();
  }

  RunResult Take() { return std::move(result_); }

 private:
  static std::string Shown(const std::string& path) {
    return path.empty() ? std::string("/workspace") : StrCat("/workspace/", path);
  }

  const TreeEntry* Base(const std::string& path) const {
    auto it = base_.find(path);
    return it == base_.end() ? nullptr : &it->second;
  }

  // The gitlink of the checked-out commit that `path` lies in, if any.
  std::optional<std::string> InsideGitlink(const std::string& path) const {
    for (size_t slash = path.find('/'); slash != std::string::npos;
         slash = path.find('/', slash + 1)) {
      const std::string prefix = path.substr(0, slash);
      const TreeEntry* entry = Base(prefix);
      if (entry == nullptr || entry->mode != kModeTree) {
        if (entry != nullptr && entry->mode == kModeGitlink) return prefix;
        return std::nullopt;
      }
    }
    return std::nullopt;
  }

  void Hide(const std::string& path, bool and_itself) { hidden_.emplace_back(path, and_itself); }

  // `path` of the checked-out commit is gone from the result, unless the result shows it.
  void Delete(const std::string& path) {
    const TreeEntry* entry = Base(path);
    if (entry == nullptr || entry->mode == kModeTree) return;
    if (written_.contains(path) || changed_.contains(path)) return;
    changes_[path] = FileChange{.path = path, .old_mode = entry->mode, .old_oid = entry->oid};
    changed_.insert(path);
  }

  void AddGitlinkChange(const std::string& path) {
    if (changed_.contains(path)) return;
    const TreeEntry* old = Base(path);
    FileChange change{.path = path, .new_mode = kModeGitlink};
    if (old != nullptr && old->mode != kModeTree) {
      change.old_mode = old->mode;
      change.old_oid = old->oid;
    }
    written_.insert(path);
    changed_.insert(path);
    changes_[path] = std::move(change);
  }

  Status VisitDirectory(int parent_fd, const std::string& name, const std::string& path,
                        int depth) {
    ASSIGN_OR_RETURN(UniqueFd fd, OpenEntry(parent_fd, name, O_RDONLY | O_DIRECTORY, Shown(path)));
    ASSIGN_OR_RETURN(bool opaque, IsOpaqueDirectory(fd.Get(), Shown(path)));
    const TreeEntry* base = Base(path);
    if (base != nullptr && base->mode == kModeGitlink) {
      // Written into a submodule's directory: a change of the submodule, never its files.
      AddGitlinkChange(path);
      return OkStatus();
    }
    if (base != nullptr && base->mode != kModeTree) {
      Hide(path, /*and_itself=*/true);  // a file replaced by a directory
    } else if (opaque) {
      Hide(path, /*and_itself=*/false);  // what was below is gone; what is here comes back
    }
    if (base == nullptr && ignore_.IsIgnored(path, /*is_dir=*/true)) {
      return OkStatus();  // an ignored directory that holds nothing tracked: git skips it
    }
    return Walk(fd.Get(), path, depth);
  }

  Status VisitFile(int parent_fd, const std::string& name, const std::string& path,
                   const struct stat& st) {
    const bool symlink = S_ISLNK(st.st_mode);
    const uint32_t mode = symlink                  ? kModeSymlink
                          : (st.st_mode & S_IXUSR) ? kModeExecutable
                                                   : kModeFile;
    Hide(path, /*and_itself=*/false);  // a directory replaced by this file, if one was there
    written_.insert(path);
    const TreeEntry* base = Base(path);
    if (base != nullptr && base->mode == kModeGitlink) {
      AddGitlinkChange(path);  // a submodule replaced by a file
      return OkStatus();
    }
    if (base == nullptr || base->mode == kModeTree) {
      if (base != nullptr) Hide(path, /*and_itself=*/false);
      if (auto gitlink = InsideGitlink(path)) {
        AddGitlinkChange(*gitlink);
        return OkStatus();
      }
      // Setup's products (a prebuild or setup layer below the checkout) are not the run's work,
      // even when the run touched them.
      if (base == nullptr && lowers_.Lookup(path).ok()) return OkStatus();
      if (ignore_.IsIgnored(path, /*is_dir=*/false)) return OkStatus();
    }
    const int64_t size = st.st_size;
    if (result_.content_bytes + size > limits_.max_bytes) {
      return ResourceExhaustedError(
          StrCat("the run's changes hold more than ", limits_.max_bytes, " bytes"));
    }
    std::string content;
    if (symlink) {
      std::string target(PATH_MAX + 1, '\0');
      const ssize_t n = ::readlinkat(parent_fd, name.c_str(), target.data(), target.size());
      if (n < 0) return ErrnoError("readlink", Shown(path));
      target.resize(static_cast<size_t>(n));
      content = std::move(target);
    } else {
      ASSIGN_OR_RETURN(UniqueFd fd, OpenEntry(parent_fd, name, O_RDONLY | O_NONBLOCK, Shown(path)));
      struct stat opened {};
      if (::fstat(fd.Get(), &opened) != 0 || !S_ISREG(opened.st_mode)) {
        return InternalError(StrCat(Shown(path), " changed while it was read"));
      }
      RETURN_IF_ERROR(CheckNotMetacopy(fd.Get(), Shown(path)));
      ASSIGN_OR_RETURN(
          content,
          ReadOpenFile(fd.Get(), static_cast<size_t>(limits_.max_bytes - result_.content_bytes),
                       Shown(path)));
    }
    result_.content_bytes += static_cast<int64_t>(content.size());
    std::string oid = GitBlobId(content, object_format_);
    if (base != nullptr && base->mode == mode && base->oid == oid) return OkStatus();  // same
    FileChange change{
        .path = path, .new_mode = mode, .content = std::move(content), .new_oid = std::move(oid)};
    if (base != nullptr && base->mode != kModeTree) {
      change.old_mode = base->mode;
      change.old_oid = base->oid;
    }
    changed_.insert(path);
    changes_[path] = std::move(change);
    return OkStatus();
  }

  const std::map<std::string, TreeEntry>& base_;
  const LayerStack& lowers_;
  const LayerStack& merged_;
  const std::string_view object_format_;
  const ResultLimits& limits_;
  IgnoreMatcher ignore_;
  std::vector<std::pair<std::string, bool>> hidden_;  // prefix, and the path itself
  std::set<std::string> written_;                     // paths the result shows
  std::set<std::string> changed_;
  std::map<std::string, FileChange> changes_;
  RunResult result_;
};

}  // namespace

std::string GitBlobId(std::string_view content, std::string_view object_format) {
  const EVP_MD* md = object_format == "sha256" ? EVP_sha256() : EVP_sha1();
  const std::string header = StrCat("blob ", content.size(), std::string_view("\0", 1));
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  // Fails only without memory or a digest OpenSSL always has: crash loudly.
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr || EVP_DigestInit_ex(ctx, md, nullptr) != 1 ||
      EVP_DigestUpdate(ctx, header.data(), header.size()) != 1 ||
      EVP_DigestUpdate(ctx, content.data(), content.size()) != 1 ||
      EVP_DigestFinal_ex(ctx, digest, &length) != 1) {
    std::abort();
  }
  EVP_MD_CTX_free(ctx);
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

StatusOr<RunResult> CollectRunResult(const std::filesystem::path& upper,
                                     const std::vector<std::filesystem::path>& lowers,
                                     const BaseTree& base, std::string_view object_format,
                                     const ResultLimits& limits) {
  UniqueFd root(::open(upper.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!root.Valid()) return ErrnoError("open", upper.string());
  ASSIGN_OR_RETURN(std::vector<std::string> tops, ListDirectory(root.Get(), "/workspace"));
  std::erase(tops, ".git");
  if (tops.empty()) return RunResult{};  // nothing written but (maybe) .git: nothing changed
  // The base tree under what the run wrote; past a few thousand names, all of it.
  std::map<std::string, TreeEntry> base_entries;
  if (tops.size() > 2000) {
    ASSIGN_OR_RETURN(base_entries, base({}));
  } else {
    ASSIGN_OR_RETURN(base_entries, base(tops));
  }
  ASSIGN_OR_RETURN(LayerStack below, LayerStack::Open(lowers));
  std::vector<std::filesystem::path> all = {upper};
  all.insert(all.end(), lowers.begin(), lowers.end());
  ASSIGN_OR_RETURN(LayerStack merged, LayerStack::Open(all));
  Collector collector(base_entries, below, merged, object_format, limits);
  RETURN_IF_ERROR(collector.Walk(root.Get(), ""));
  RETURN_IF_ERROR(collector.Finish());
  return collector.Take();
}

}  // namespace nightshift::workspace
