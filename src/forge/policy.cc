#include "forge/policy.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <optional>

#include "core/secrets.h"

namespace nightshift::forge {

bool GlobMatchesUnder(std::string_view pattern, std::string_view dir) {
  if (dir.empty()) return !pattern.empty();
  // Whether `pattern` can match "/" + something: the rest of any glob can match some string.
  auto continues_with_slash = [](auto&& self, std::string_view p) -> bool {
    if (p.empty()) return false;
    if (p.substr(0, 2) == "**") return true;
    if (p.front() == '*') return self(self, p.substr(1));  // `*` matches nothing here
    return p.front() == '/' && p.size() > 1;
  };
  // Like GlobMatch, but a path that runs out may go on past a '/'.
  auto under = [&](auto&& self, std::string_view p, std::string_view path) -> bool {
    if (path.empty()) return continues_with_slash(continues_with_slash, p);
    if (p.empty()) return false;
    if (p.substr(0, 2) == "**") return true;  // it can take the rest of `path` and more
    if (p.front() == '*') {
      for (size_t i = 0; i <= path.size(); ++i) {
        if (self(self, p.substr(1), path.substr(i))) return true;
        if (i < path.size() && path[i] == '/') break;
      }
      return false;
    }
    if (p.front() == '?' ? path.front() != '/' : p.front() == path.front()) {
      return self(self, p.substr(1), path.substr(1));
    }
    return false;
  };
  return under(under, pattern, dir);
}

std::string DisplayPath(std::string_view path) {
  std::string out;
  for (char c : path) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      char escaped[5];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", u);
      out += escaped;
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// `name` without the code points HFS+ ignores in names (U+200C–200F, 202A–202E, 206A–206F,
// FEFF), as UTF-8.
std::string WithoutHfsIgnorables(std::string_view name) {
  std::string out;
  for (size_t i = 0; i < name.size();) {
    const auto b0 = static_cast<unsigned char>(name[i]);
    if (b0 == 0xe2 && i + 2 < name.size()) {
      const auto b1 = static_cast<unsigned char>(name[i + 1]);
      const auto b2 = static_cast<unsigned char>(name[i + 2]);
      const bool ignorable =
          (b1 == 0x80 && ((b2 >= 0x8c && b2 <= 0x8f) || (b2 >= 0xaa && b2 <= 0xae))) ||
          (b1 == 0x81 && b2 >= 0xaa && b2 <= 0xaf);
      if (ignorable) {
        i += 3;
        continue;
      }
    }
    if (b0 == 0xef && i + 2 < name.size() && static_cast<unsigned char>(name[i + 1]) == 0xbb &&
        static_cast<unsigned char>(name[i + 2]) == 0xbf) {
      i += 3;
      continue;
    }
    out += name[i++];
  }
  return out;
}

bool IsGitNameAlias(std::string_view component) {
  std::string name = Lower(WithoutHfsIgnorables(component));
  if (const size_t colon = name.find(':'); colon != std::string::npos) name.resize(colon);
  while (!name.empty() && (name.back() == '.' || name.back() == ' ')) name.pop_back();
  return name == ".git" || name == "git~1";
}

// The target of a symlink at `link` as a repository path, lexically; nullopt when it leaves the
// repository (absolute, or too many "..").
std::optional<std::string> ResolveLink(std::string_view link, std::string_view target) {
  if (target.empty() || target.front() == '/') return std::nullopt;
  std::vector<std::string_view> parts;
  const size_t slash = link.rfind('/');
  std::string_view dir = slash == std::string_view::npos ? "" : link.substr(0, slash);
  auto push = [&](std::string_view text) -> bool {
    size_t start = 0;
    while (start <= text.size()) {
      size_t end = text.find('/', start);
      if (end == std::string_view::npos) end = text.size();
      std::string_view part = text.substr(start, end - start);
      if (part == "..") {
        if (parts.empty()) return false;
        parts.pop_back();
      } else if (!part.empty() && part != ".") {
        parts.push_back(part);
      }
      start = end + 1;
    }
    return true;
  };
  if (!push(dir) || !push(target)) return std::nullopt;
  std::string out;
  for (std::string_view part : parts) out += StrCat(out.empty() ? "" : "/", part);
  return out;
}

bool IsBinary(std::string_view content) {
  return content.substr(0, 8000).find('\0') != std::string_view::npos;
}

}  // namespace

bool IsPathGitRefuses(std::string_view path) {
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view component = path.substr(start, end - start);
    if (component.empty() || component == "." || component == ".." || IsGitNameAlias(component)) {
      return true;
    }
    start = end + 1;
  }
  return false;
}

std::vector<std::string> CheckChanges(const ReviewPolicy& policy,
                                      const std::vector<workspace::FileChange>& changes,
                                      const std::map<std::string, LineCount>& lines,
                                      const OldContent& old_content) {
  std::vector<std::string> reasons;
  auto protected_by = [&](std::string_view path, bool as_directory) -> std::optional<std::string> {
    for (const std::string& glob : policy.protected_paths) {
      if (GlobMatch(glob, path) || (as_directory && GlobMatchesUnder(glob, path))) return glob;
    }
    return std::nullopt;
  };
  int64_t total_lines = 0;
  bool secret_found = false;
  for (const workspace::FileChange& change : changes) {
    const std::string shown = DisplayPath(change.path);
    // The path, on both sides. A symlink (before or after) may stand for a directory.
    const bool symlink =
        change.old_mode == workspace::kModeSymlink || change.new_mode == workspace::kModeSymlink;
    const bool gitlink =
        change.old_mode == workspace::kModeGitlink || change.new_mode == workspace::kModeGitlink;
    if (auto glob = protected_by(change.path, symlink || gitlink)) {
      reasons.push_back(StrCat("changes a protected path: ", shown, " (", *glob, ")"));
    }
    if (gitlink) {
      reasons.push_back(StrCat("changes a submodule or nested repository: ", shown,
                               " (only files can be delivered)"));
      continue;
    }
    if (IsPathGitRefuses(change.path)) {
      reasons.push_back(StrCat("adds a path git refuses to check out: ", shown));
      continue;
    }
    if (change.new_mode == workspace::kModeSymlink) {
      const std::string base = Lower(change.path.substr(change.path.rfind('/') + 1));
      if (base == ".gitmodules" || base == ".gitattributes" || base == ".gitignore" ||
          base == ".mailmap") {
        reasons.push_back(StrCat("adds ", shown, " as a symlink, which git refuses"));
      }
      auto target = ResolveLink(change.path, change.content);
      if (!target) {
        reasons.push_back(StrCat("adds a symlink pointing out of the repository: ", shown, " -> ",
                                 DisplayPath(change.content)));
      } else if (auto glob = protected_by(*target, /*as_directory=*/true)) {
        reasons.push_back(StrCat("adds a symlink into a protected path: ", shown, " -> ",
                                 DisplayPath(change.content), " (", *glob, ")"));
      }
    }
    if (auto it = lines.find(change.path); it != lines.end()) {
      if (it->second.added < 0 || it->second.removed < 0) {
        // Binary: what it adds, by its newlines (a last line without one counts too).
        const std::string& c = change.content;
        total_lines +=
            std::count(c.begin(), c.end(), '\n') + (!c.empty() && c.back() != '\n' ? 1 : 0);
      } else {
        total_lines += it->second.added + it->second.removed;
      }
    }
    if (change.deleted()) continue;
    if (change.new_mode != workspace::kModeSymlink && IsBinary(change.content) &&
        static_cast<int64_t>(change.content.size()) > policy.max_binary_bytes) {
      reasons.push_back(StrCat("adds a binary file of ", change.content.size(), " bytes: ", shown,
                               " (at most ", policy.max_binary_bytes, ")"));
    }
    if (policy.scan_secrets && !secret_found) {
      std::vector<SecretMatch> found = FindSecrets(change.content);
      if (!found.empty() && !change.added() && change.old_mode != workspace::kModeGitlink) {
        // Only what the change adds counts: a key the file already held is not new.
        auto old = old_content(change);
        if (old.ok()) {
          std::erase_if(found, [&](const SecretMatch& m) {
            return old->find(change.content.substr(m.offset, m.length)) != std::string::npos;
          });
        }
      }
      if (!found.empty()) {
        reasons.push_back(StrCat("adds something that looks like a secret (", found.front().kind,
                                 ") in ", shown));
        secret_found = true;
      }
    }
  }
  if (static_cast<int64_t>(changes.size()) > policy.max_files) {
    reasons.push_back(
        StrCat("changes ", changes.size(), " files (at most ", policy.max_files, ")"));
  }
  if (total_lines > policy.max_lines) {
    reasons.push_back(StrCat("changes ", total_lines, " lines (at most ", policy.max_lines, ")"));
  }
  return reasons;
}

}  // namespace nightshift::forge
