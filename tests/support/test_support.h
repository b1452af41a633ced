#pragma once

// Shared helpers for tests: temporary directories, shell commands and real git repositories.

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace nightshift::testing {

// A fresh directory removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

struct ShellResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr, interleaved
};

// Runs `command` with /bin/sh; stdout and stderr are captured together.
ShellResult Shell(const std::string& command);

// Quotes `s` for /bin/sh.
std::string ShellQuote(const std::string& s);

// True while `pid` exists and is not a zombie (a killed process whose parent has not reaped it
// yet is gone for our purposes: it runs no code and holds no resources but its pid).
bool ProcessAlive(int pid);

// Polls until none of `pids` is alive (true) or `deadline` passes (false).
bool AllGoneBy(const std::vector<int>& pids, std::chrono::steady_clock::time_point deadline);

// Creates a git repository at `dir` with branch `main` holding `files` (path → content) in one
// commit; returns the commit sha. Aborts the test binary on failure.
std::string MakeGitRepo(const std::filesystem::path& dir,
                        const std::map<std::string, std::string>& files);

// Commits `files` on top of the current branch of `dir`; returns the new sha.
std::string CommitFiles(const std::filesystem::path& dir,
                        const std::map<std::string, std::string>& files,
                        const std::string& message);

}  // namespace nightshift::testing
