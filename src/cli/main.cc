// The `nightshift` command. `sandbox exec`, which needs nothing but this machine's kernel, runs
// in this small binary: it links the core and sandbox parts and no library beyond the C and C++
// runtimes, so its start costs the dynamic loader little. Every other verb, and every command
// line `sandbox exec` does not parse (help, usage errors), is the full CLI's: this process
// becomes nightshift-full, which lies beside it, with execv — the same pid, arguments,
// environment and descriptors (docs/performance.md has what the split saves).

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "cli/sandbox_exec.h"

namespace {

constexpr int kCannotRun = 1;

// Replaces this process with nightshift-full, given the same arguments; returns only on failure.
int RunFullCli(char** argv) {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) {
    std::fprintf(stderr, "nightshift: cannot find this binary (/proc/self/exe): %s\n",
                 ec.message().c_str());
    return kCannotRun;
  }
  const std::string full = (self.parent_path() / "nightshift-full").string();
  ::execv(full.c_str(), argv);
  std::fprintf(stderr, "nightshift: cannot run %s: %s\n", full.c_str(), std::strerror(errno));
  return kCannotRun;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::string_view(argv[1]) == "sandbox" && std::string_view(argv[2]) == "exec") {
    if (std::optional<int> status = nightshift::cli::RunSandboxExecAlone(argc, argv)) {
      return *status;
    }
  }
  return RunFullCli(argv);
}
