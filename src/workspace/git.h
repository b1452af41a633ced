#pragma once

// Running git on the host, for every part of the platform (mirrors, checkout layers, delivery,
// merges): one way, with one fixed, clean configuration. Trust rule: the host's git only ever
// works in repositories the platform owns — its mirrors, the checkout layers it builds, the
// repositories it lays out for a delivery or a merge — never in a directory a run wrote. And
// whatever those repositories hold, git reads no system or global config, runs no hook, takes
// no replacement objects, reads attributes from no file, recurses into no submodule and speaks
// only the transports the platform allows (file, git, http, https, ssh); no terminal prompts.

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "sandbox/process.h"

namespace nightshift::workspace {

struct GitContext {
  std::string git = "git";     // looked up in PATH
  std::filesystem::path home;  // HOME for git (credentials helpers, known_hosts)
  const CancelToken* cancel = nullptr;
  sandbox::LineSink log;  // git's stderr lines (progress, warnings); may be empty
  int64_t timeout_ms = 10 * 60 * 1000;
};

struct GitOutput {
  int exit_code = 0;
  std::vector<std::string> out;     // stdout lines (without GitCall::capture_stdout)
  std::string data;                 // stdout byte for byte (with GitCall::capture_stdout)
  std::string last_error;           // git's last stderr line
  std::vector<std::string> errors;  // every stderr line

  // Why git failed, whole, on one line: its stderr lines but hints, joined with "; ".
  std::string Reason() const;
};

// One git command: `git args...` in `cwd`.
struct GitCall {
  std::vector<std::string> args;
  std::string stdin_data;                        // empty: /dev/null
  bool capture_stdout = false;                   // stdout as bytes in GitOutput::data
  std::map<std::string, std::string> extra_env;  // on top of GitEnvironment
};

// Runs `call` in `cwd`. Errors: the process could not run, was cancelled (Cancelled) or timed
// out (DeadlineExceeded). A non-zero exit is not an error here: see exit_code.
StatusOr<GitOutput> RunGit(const GitContext& context, const std::filesystem::path& cwd,
                           const GitCall& call);
StatusOr<GitOutput> RunGit(const GitContext& context, const std::filesystem::path& cwd,
                           const std::vector<std::string>& args);

// RunGit, with a non-zero exit turned into an error `what: <git's last error line>`.
StatusOr<GitOutput> RunGitOk(const GitContext& context, const std::filesystem::path& cwd,
                             const GitCall& call, std::string_view what);
StatusOr<GitOutput> RunGitOk(const GitContext& context, const std::filesystem::path& cwd,
                             const std::vector<std::string>& args, std::string_view what);

// The environment git runs with: the fixed configuration above, as GIT_CONFIG_* variables
// (which override any repository's own config file).
std::map<std::string, std::string> GitEnvironment(const GitContext& context);

// The records of git's -z output, without their NUL terminators.
std::vector<std::string_view> NulRecords(std::string_view data);

// Extra `git push` arguments for pushing to `url`: for a local non-bare repository, its checked-
// out branch may be updated (with its working tree, when that is clean), as
// receive.denyCurrentBranch=updateInstead does; none otherwise.
std::vector<std::string> PushOptionsFor(const std::string& url);

// Git's file modes.
inline constexpr uint32_t kModeTree = 0040000;
inline constexpr uint32_t kModeFile = 0100644;
inline constexpr uint32_t kModeExecutable = 0100755;
inline constexpr uint32_t kModeSymlink = 0120000;
inline constexpr uint32_t kModeGitlink = 0160000;

// One entry of a commit's tree.
struct TreeEntry {
  uint32_t mode = 0;
  std::string oid;
};

// The entries of `commit`'s tree (trees, blobs, symlinks, gitlinks; recursively) at and under
// the top-level names `tops` — all of them when `tops` is empty — by path, from the repository
// `git_dir` (`git ls-tree -r -t -z`; names are literal, never globs).
StatusOr<std::map<std::string, TreeEntry>> ListTree(const GitContext& context,
                                                    const std::filesystem::path& git_dir,
                                                    const std::string& commit,
                                                    const std::vector<std::string>& tops);

}  // namespace nightshift::workspace
