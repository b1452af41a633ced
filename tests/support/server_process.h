#pragma once

// Starts `nightshift serve` as a real child process on a free loopback port, for end-to-end
// tests and benchmarks.

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace nightshift::testing {

// The nightshift binary under test: $NIGHTSHIFT_BIN (set by CTest), else build/nightshift.
std::string NightshiftBin();

class ServerProcess {
 public:
  // `extra_args` are appended to `serve --listen 127.0.0.1:0 --data-dir DIR`; the server starts
  // in `cwd` when given (so DIR may be relative to it).
  ServerProcess(std::filesystem::path data_dir, std::vector<std::string> extra_args = {},
                std::filesystem::path cwd = {});
  ~ServerProcess();  // SIGKILLs the server if still running

  // Starts the server and waits for its "listening on" line. False (with the output in
  // error()) if it exits or stays silent for 20 s.
  bool Start();
  // SIGTERM (graceful) or SIGKILL, then reaps; returns the exit status as a shell would.
  int Stop(int signal);

  const std::string& url() const { return url_; }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string token() const;
  const std::string& error() const { return error_; }
  const std::filesystem::path& data_dir() const { return data_dir_; }

 private:
  std::filesystem::path data_dir_;
  std::vector<std::string> extra_args_;
  std::filesystem::path cwd_;
  std::filesystem::path abs_data_dir_;
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string url_;
  int port_ = 0;
  std::string error_;
};

}  // namespace nightshift::testing
