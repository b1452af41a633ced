#include "tests/support/server_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace nightshift::testing {

std::string NightshiftBin() {
  const char* bin = std::getenv("NIGHTSHIFT_BIN");
  return bin && *bin ? bin : "build/nightshift";
}

ServerProcess::ServerProcess(std::filesystem::path data_dir, std::vector<std::string> extra_args,
                             std::filesystem::path cwd)
    : data_dir_(std::move(data_dir)), extra_args_(std::move(extra_args)), cwd_(std::move(cwd)) {
  if (data_dir_.is_relative() && !cwd_.empty()) {
    // token() reads the file from this process's working directory.
    abs_data_dir_ = cwd_ / data_dir_;
  } else {
    abs_data_dir_ = data_dir_;
  }
}

ServerProcess::~ServerProcess() {
  if (pid_ <= 0) return;
  // Gracefully, as an operator would, so it removes its sandboxes' cgroups; SIGKILL if it hangs
  // (after it exited, the SIGKILL finds a zombie and Stop reaps it).
  ::kill(pid_, SIGTERM);
  siginfo_t info{};
  for (int i = 0; i < 1000; ++i) {
    info.si_pid = 0;
    if (::waitid(P_PID, pid_, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid_)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Stop(SIGKILL);
}

bool ServerProcess::Start() {
  std::vector<std::string> args = {NightshiftBin(), "serve",      "--listen",
                                   "127.0.0.1:0",   "--data-dir", data_dir_.string()};
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return false;
  pid_ = ::fork();
  if (pid_ == 0) {
    ::dup2(pipefd[1], STDOUT_FILENO);
    if (!cwd_.empty() && ::chdir(cwd_.c_str()) != 0) ::_exit(126);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(pipefd[1]);
  out_fd_ = pipefd[0];
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{out_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) > 0) {
      char buf[512];
      ssize_t n = ::read(out_fd_, buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
      auto at = out.find("listening on http://");
      auto nl = at == std::string::npos ? std::string::npos : out.find('\n', at);
      if (nl != std::string::npos) {
        url_ = out.substr(at + 13, nl - at - 13);
        port_ = std::atoi(url_.substr(url_.rfind(':') + 1).c_str());
        return true;
      }
    }
  }
  error_ = "server did not start; stdout: " + out;
  Stop(SIGKILL);
  return false;
}

int ServerProcess::Stop(int signal) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, signal);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  if (out_fd_ >= 0) ::close(out_fd_);
  out_fd_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string ServerProcess::token() const {
  std::ifstream in(abs_data_dir_ / "admin-token");
  std::string t;
  in >> t;
  return t;
}

}  // namespace nightshift::testing
