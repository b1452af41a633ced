#pragma once

// `nightshift sandbox exec`: runs one command in a sandbox on this machine, without a server.

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace nightshift::cli {

struct SandboxExecArgs {
  std::string workspace;  // default: the current directory
  std::string rootfs;
  std::vector<std::string> layers;
  std::string memory;  // bytes, or with a k/m/g suffix
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

// Returns the command's exit status (128 + signal when killed), or 125 with one line on stderr
// when the sandbox could not be set up (bad spec, missing path, no privileges).
int SandboxExec(const SandboxExecArgs& args);

}  // namespace nightshift::cli
