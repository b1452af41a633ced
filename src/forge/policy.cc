#include "forge/policy.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <optional>

#include "core/fs.h"
#include "core/secrets.h"
#include "forge/builtin.h"

namespace nightshift::forge {

bool GlobMatch(std::string_view pattern, std::string_view path) {
  // Iterative matcher with backtracking for * (one segment) and ** (any).
  if (pattern.empty()) return path.empty();
  if (pattern.substr(0, 2) == "**") {
    std::string_view rest = pattern.substr(2);
    if (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
    for (size_t i = 0; i <= path.size(); ++i) {
      if (GlobMatch(rest, path.substr(i))) return true;
    }
    return false;
  }
  if (pattern.front() == '*') {
    for (size_t i = 0; i <= path.size(); ++i) {
      if (GlobMatch(pattern.substr(1), path.substr(i))) return true;
      if (i < path.size() && path[i] == '/') break;
    }
    return false;
  }
  if (path.empty()) return false;
  if (pattern.front() == '?' ? path.front() != '/' : pattern.front() == path.front()) {
    return GlobMatch(pattern.substr(1), path.substr(1));
  }
  return false;
}

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

namespace {

Status Bad(std::string_view file, const YAML::Node& node, std::string_view reason) {
  return InvalidArgumentError(
      StrCat(file, ":", node.Mark().line + 1, ":", node.Mark().column + 1, ": ", reason));
}

StatusOr<ReviewPolicy> ParsePolicy(const YAML::Node& node, std::string_view file,
                                   ReviewPolicy policy) {
  if (!node.IsMap()) return Bad(file, node, "a review policy must be a mapping");
  for (const auto& entry : node) {
    const std::string key = entry.first.Scalar();
    const YAML::Node& v = entry.second;
    try {
      if (key == "protected_paths") {
        if (!v.IsSequence()) return Bad(file, v, "protected_paths must be a list of globs");
        policy.protected_paths = v.as<std::vector<std::string>>();
      } else if (key == "max_files") {
        policy.max_files = v.as<int>();
      } else if (key == "max_lines") {
        policy.max_lines = v.as<int64_t>();
      } else if (key == "max_binary_bytes") {
        policy.max_binary_bytes = v.as<int64_t>();
      } else if (key == "scan_secrets") {
        policy.scan_secrets = v.as<bool>();
      } else {
        return Bad(file, entry.first, StrCat("unknown key '", key, "' in a review policy"));
      }
    } catch (const YAML::Exception&) {
      return Bad(file, v, StrCat(key, " has the wrong type"));
    }
  }
  if (policy.max_files < 1 || policy.max_lines < 1 || policy.max_binary_bytes < 0) {
    return Bad(file, node, "review limits must be positive");
  }
  return policy;
}

// The config file's YAML; a syntax error as "FILE:LINE:COLUMN: reason".
StatusOr<YAML::Node> LoadYaml(std::string_view yaml, std::string_view file) {
  try {
    return YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(
        StrCat(file, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
  }
}

}  // namespace

StatusOr<Identity> ParseIdentity(std::string_view yaml, std::string_view file) {
  Identity identity;
  ASSIGN_OR_RETURN(YAML::Node root, LoadYaml(yaml, file));
  try {
    if (!root.IsMap() || !root["identity"]) return identity;
    const YAML::Node node = root["identity"];
    if (!node.IsMap()) return Bad(file, node, "identity must be a mapping of name and email");
    if (node["name"]) identity.name = node["name"].as<std::string>();
    if (node["email"]) identity.email = node["email"].as<std::string>();
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(
        StrCat(file, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
  }
  if (identity.name.empty() || identity.email.find('@') == std::string::npos) {
    return InvalidArgumentError(StrCat(file, ": identity needs a name and an email address"));
  }
  return identity;
}

StatusOr<std::map<std::string, ForgeLink>> ParseForgeLinks(
    std::string_view yaml, std::string_view file,
    const std::map<std::string, std::string>& environment) {
  std::map<std::string, ForgeLink> out;
  ASSIGN_OR_RETURN(YAML::Node root, LoadYaml(yaml, file));
  if (!root.IsMap() || !root["forges"]) return out;
  const YAML::Node forges = root["forges"];
  if (!forges.IsMap()) return Bad(file, forges, "forges must map repository names to forges");
  for (const auto& entry : forges) {
    const std::string repo = entry.first.Scalar();
    const YAML::Node& node = entry.second;
    if (!node.IsMap()) return Bad(file, node, StrCat("forge of ", repo, " must be a mapping"));
    ForgeLink link;
    try {
      for (const auto& kv : node) {
        const std::string key = kv.first.Scalar();
        const YAML::Node& v = kv.second;
        if (key == "type") {
          link.type = v.as<std::string>();
        } else if (key == "api_url") {
          link.options.api_url = v.as<std::string>();
        } else if (key == "project") {
          link.options.project = v.as<std::string>();
        } else if (key == "token_env" || key == "app_id" || key == "installation_id" ||
                   key == "private_key_file") {
          const std::string value = v.as<std::string>();
          if (key == "token_env") {
            auto it = environment.find(value);
            if (it == environment.end() || it->second.empty()) {
              return Bad(file, v,
                         StrCat("forge of ", repo, ": the environment variable ", value,
                                " (token_env) is not set"));
            }
            link.options.token = it->second;
          } else if (key == "app_id") {
            link.options.app_id = value;
          } else if (key == "installation_id") {
            link.options.installation_id = value;
          } else {
            auto pem = ReadFile(value);
            if (!pem.ok())
              return Bad(file, v, StrCat("forge of ", repo, ": ", pem.status().message()));
            link.options.private_key_pem = *pem;
          }
        } else if (key == "labels") {
          link.labels = v.as<std::vector<std::string>>();
        } else if (key == "draft") {
          link.draft = v.as<bool>();
        } else {
          return Bad(file, kv.first, StrCat("unknown key '", key, "' in the forge of ", repo));
        }
      }
    } catch (const YAML::Exception&) {
      return Bad(file, node, StrCat("forge of ", repo, ": a value has the wrong type"));
    }
    if (link.type != "github" && link.type != "gitlab") {
      return Bad(file, node, StrCat("forge of ", repo, ": type must be github or gitlab"));
    }
    out[repo] = std::move(link);
  }
  return out;
}

StatusOr<std::map<std::string, ReviewPolicy>> ParseReviewPolicies(std::string_view yaml,
                                                                  std::string_view file) {
  std::map<std::string, ReviewPolicy> out;
  ASSIGN_OR_RETURN(YAML::Node root, LoadYaml(yaml, file));
  out[""] = ReviewPolicy{};
  if (!root.IsMap()) return out;
  if (root["review"]) {
    ASSIGN_OR_RETURN(out[""], ParsePolicy(root["review"], file, ReviewPolicy{}));
  }
  if (const YAML::Node repos = root["review_repositories"]; repos) {
    if (!repos.IsMap()) return Bad(file, repos, "review_repositories must be a mapping");
    for (const auto& entry : repos) {
      ASSIGN_OR_RETURN(out[entry.first.Scalar()], ParsePolicy(entry.second, file, out[""]));
    }
  }
  return out;
}

}  // namespace nightshift::forge
