#pragma once

// `nightshift sandbox exec`: runs one command in a sandbox on this machine, without a server.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/status.h"

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

}  // namespace nightshift::cli
