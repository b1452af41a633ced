#pragma once

// `nightshift sandbox exec`: runs one command in a sandbox on this machine, without a server.
// The one verb the `nightshift` binary runs itself (main.cc); the full CLI (commands.h) has it
// too, with the same options.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace CLI {
class App;
}  // namespace CLI

namespace nightshift::cli {

struct SandboxExecArgs {
  std::string workspace;  // default: the current directory
  std::string rootfs;
  std::vector<std::string> layers;
  std::vector<std::string> host_paths;  // more of the host in the root, read-only
  bool read_only_workspace = false;     // /workspace read-only: the uid need only read it
  std::string memory;                   // bytes, or with a k/m/g suffix
  int64_t pids = 0;
  double cpus = 0;
  double timeout_seconds = 0;
  std::vector<std::string> env;  // K=V
  int64_t uid = -1;              // host uid root maps to; -1: the workspace's owner, else 100000
  std::string hostname = "sandbox";
  std::vector<std::string> command;
  std::string data_dir;  // masked inside the sandbox
};

// "4096", "512k", "64m", "2g" → bytes; "" → 0. InvalidArgument otherwise.
StatusOr<int64_t> ParseByteSize(const std::string& text);

// A host path as given on the command line (--host-path, --sandbox-host-path), as the sandbox
// takes it: absolute (from the current directory), normal, with no trailing slash.
std::filesystem::path HostPathArgument(const std::string& text);

// Returns the command's exit status (128 + signal when killed), or 125 with one line on stderr
// when the sandbox could not be set up (bad spec, missing path, no privileges) — among them a
// workspace the sandbox's user could not write (or, with read_only_workspace, read), checked
// before anything starts.
int SandboxExec(const SandboxExecArgs& args);

// Adds the `exec` command and its options to `sandbox` (the `sandbox` command); parsing fills
// `args`, but for `command` and `data_dir`: the caller takes the command from after "--", which
// CLI11 never sees, and the data dir from the global --data-dir.
CLI::App* AddSandboxExecCommand(CLI::App& sandbox, SandboxExecArgs& args);

// `nightshift sandbox exec [OPTIONS] -- CMD ARGS...` parsed as the full CLI parses it and run:
// the command's exit status (SandboxExec's). nullopt, having run and printed nothing, when the
// command line is anything else — help, a usage error, no command — for the full CLI to answer.
std::optional<int> RunSandboxExecAlone(int argc, char** argv);

}  // namespace nightshift::cli
