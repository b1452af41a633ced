#pragma once

// git's ignore rules (gitignore(5)), evaluated by the host without running git: which new,
// untracked files of a run's workspace `git add -A` would take.
//
// Trust: the .gitignore files come from a run's workspace and are hostile input. Nothing here
// runs git or touches the filesystem. Patterns compile to automata that never backtrack: one
// pattern against one path costs O(path bytes × pattern bytes / 64) word operations at worst
// (most pairs are settled sooner by comparing the pattern's literal prefix, suffix and least
// length), and Parse bounds how much of a file it takes (IgnoreFile::kMax*). A path is
// matched against every .gitignore above it.
//
// Only the repository's .gitignore files count — never .git/info/exclude or core.excludesFile,
// which a run could write. Deliberately unlike git:
//  - Bytes are compared as bytes: core.ignoreCase is taken as false (git's default on Linux).
//  - A `**` right after a pathname pattern's literal prefix (`foo**/bar`) is an ordinary `*`,
//    as gitignore(5) says and git does since 2.52; an optimisation in git 2.51 and older lets
//    it span directories there (so they also ignore foo/x/bar and foobar).
//  - The bounds on untrusted text (IgnoreFile::kMax*); git reads a file of any size (since
//    2.46 it skips one over 100 MB).
//  - A .gitignore that is skip-worktree in a sparse checkout, which git reads from the index,
//    is whatever the Reader returns.
//
// What the caller's walk must do itself, as git does: skip entries named ".git"; not descend
// into a directory holding a ".git" (a nested repository, which `git add -A` records as a
// gitlink); pass is_dir false for a symbolic link, even to a directory; apply none of this to
// tracked files, which stay in the change whatever .gitignore says.

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace nightshift::workspace {

// git's wildmatch() with WM_PATHNAME, as .gitignore patterns use it: `*` and `?` never match
// '/', `[...]` bracket expressions (ranges, `!`/`^` negation, ASCII POSIX classes) never match
// '/', `\` escapes the next byte; `**` matches across '/' only as a whole component — a leading
// `**/`, a trailing `/**`, a middle `/**/` (zero or more directories) — and is `*` elsewhere.
// A malformed bracket or class, or a trailing `\`, makes the pattern match nothing.
bool WildMatch(std::string_view pattern, std::string_view text);

// One .gitignore file (gitignore(5)). Immutable once parsed; safe to share between threads.
class IgnoreFile {
 public:
  // Bounds on what Parse takes from untrusted text; far above real .gitignore files. Only the
  // whole lines in the first kMaxBytes are read (text of exactly kMaxBytes that does not end
  // in a newline loses its last line, which a reader may have cut), lines longer than
  // kMaxPatternBytes are skipped, and patterns past kMaxPatterns are dropped; truncated() then
  // says so. git has no such bounds.
  static constexpr size_t kMaxBytes = size_t{1} << 20;
  static constexpr size_t kMaxPatterns = 16 * 1024;
  static constexpr size_t kMaxPatternBytes = 4096;

  // Parses the file's text as git does: an optional UTF-8 BOM; LF or CRLF lines; blank lines
  // and lines starting with '#' skip; trailing spaces are dropped unless escaped with '\';
  // a leading '!' negates (`\!` and `\#` are literal); a trailing '/' matches directories
  // only; a pattern with a '/' elsewhere is anchored to the file's directory, one without is
  // matched against the basename at any depth below it.
  static IgnoreFile Parse(std::string_view text);

  IgnoreFile(IgnoreFile&&) noexcept;
  IgnoreFile& operator=(IgnoreFile&&) noexcept;
  ~IgnoreFile();

  enum class Verdict { kNone, kIgnored, kIncluded };

  // This file's verdict for `path` — relative to the directory holding the file, '/'-separated,
  // no leading slash — as a file (is_dir false) or a directory: the last matching pattern wins;
  // kIncluded when that pattern is a negation; kNone when none matches.
  Verdict Match(std::string_view path, bool is_dir) const;

  size_t pattern_count() const;
  bool truncated() const { return truncated_; }

 private:
  struct Pattern;

  IgnoreFile();

  std::vector<Pattern> patterns_;
  bool truncated_ = false;
};

// The .gitignore files of one tree, read on demand through `read(dir)` ("" is the root,
// "a/b" a subdirectory; nullopt when it has none), each read at most once, and never for a
// directory that is itself ignored (git does not look inside one). `read` returns the file as
// the run left it; like git, it should take only a regular file named .gitignore (git opens
// it with O_NOFOLLOW: a symbolic link counts as no file) and may stop reading after
// IgnoreFile::kMaxBytes. Not thread-safe; keeps every file it has read. Whether any of them
// was cut to IgnoreFile's bounds: truncated().
class IgnoreMatcher {
 public:
  using Reader = std::function<std::optional<std::string>(const std::string& dir)>;

  explicit IgnoreMatcher(Reader read);

  // Whether git would leave `path` (repository-relative, '/'-separated) out of `git add -A` as
  // an untracked file or directory: a deeper .gitignore overrides a shallower one, and a path
  // inside an ignored directory is ignored whatever deeper files say (git does not descend).
  // REQUIRES: `path` has no leading or trailing '/' and no empty, "." or ".." component.
  bool IsIgnored(std::string_view path, bool is_dir);

  // Whether a .gitignore read so far was cut to IgnoreFile's bounds (IgnoreFile::truncated):
  // then verdicts may differ from git's, and a caller may rather refuse the tree.
  bool truncated() const { return truncated_; }

 private:
  // The verdict of the deepest .gitignore above `path` that has one, ignoring whether an
  // ancestor directory is ignored.
  bool OwnVerdict(std::string_view path, bool is_dir);
  const IgnoreFile* FileIn(const std::string& dir);

  Reader read_;
  std::unordered_map<std::string, std::optional<IgnoreFile>> files_;
  std::unordered_map<std::string, bool> dir_ignored_;  // OwnVerdict of directories
  bool truncated_ = false;
};

}  // namespace nightshift::workspace
