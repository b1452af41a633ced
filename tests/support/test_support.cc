#include "tests/support/test_support.h"

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "core/fs.h"
#include "core/shell.h"

namespace nightshift::testing {

TempDir::TempDir() {
  auto dir = MakeTempDir("nightshift-test");
  if (!dir.ok()) {
    std::fprintf(stderr, "TempDir: %s\n", dir.status().ToString().c_str());
    std::abort();
  }
  path_ = *dir;
}

TempDir::~TempDir() { RemoveTreeQuietly(path_); }

ShellResult Shell(const std::string& command) {
  ShellResult r;
  std::string full = "(" + command + ") 2>&1";
  FILE* p = ::popen(full.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

std::string ShellQuote(const std::string& s) { return nightshift::ShellQuote(s); }

bool ProcessAlive(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return false;
  // "pid (comm) S ..." — comm may contain spaces and parentheses; the state follows the last ')'.
  size_t close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size()) return false;
  char state = stat[close + 2];
  return state != 'Z' && state != 'X';
}

bool AllGoneBy(const std::vector<int>& pids, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    bool any = false;
    for (int pid : pids) any = any || ProcessAlive(pid);
    if (!any) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

namespace {

void MustShell(const std::string& command) {
  ShellResult r = Shell(command);
  if (r.exit_code != 0) {
    std::fprintf(stderr, "command failed (%d): %s\n%s\n", r.exit_code, command.c_str(),
                 r.output.c_str());
    std::abort();
  }
}

constexpr char kGitEnv[] =
    "GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=test GIT_AUTHOR_EMAIL=test@example.com "
    "GIT_COMMITTER_NAME=test GIT_COMMITTER_EMAIL=test@example.com ";

void WriteFiles(const std::filesystem::path& dir, const std::map<std::string, std::string>& files) {
  for (const auto& [path, content] : files) {
    auto full = dir / path;
    std::filesystem::create_directories(full.parent_path());
    std::ofstream(full, std::ios::binary) << content;
  }
}

}  // namespace

std::string MakeGitRepo(const std::filesystem::path& dir,
                        const std::map<std::string, std::string>& files) {
  std::filesystem::create_directories(dir);
  MustShell("git init -q -b main " + ShellQuote(dir.string()));
  return CommitFiles(dir, files, "initial");
}

std::string CommitFiles(const std::filesystem::path& dir,
                        const std::map<std::string, std::string>& files,
                        const std::string& message) {
  WriteFiles(dir, files);
  std::string q = ShellQuote(dir.string());
  MustShell(std::string(kGitEnv) + "git -C " + q + " add -A && " + kGitEnv + "git -C " + q +
            " commit -q -m " + ShellQuote(message));
  ShellResult sha = Shell("git -C " + q + " rev-parse HEAD");
  std::string out = sha.output;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

}  // namespace nightshift::testing
