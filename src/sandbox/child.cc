#include "sandbox/child.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace nightshift::sandbox::internal {

std::string_view ChildStepName(ChildStep step) {
  switch (step) {
    case ChildStep::kSetsid:
      return "setsid";
    case ChildStep::kDeathSignal:
      return "prctl(PR_SET_PDEATHSIG)";
    case ChildStep::kDevNull:
      return "open /dev/null";
    case ChildStep::kRedirect:
      return "dup2";
    case ChildStep::kChdir:
      return "chdir";
    case ChildStep::kExec:
      return "execve";
    case ChildStep::kMount:
      return "mount the private overlay";
  }
  return "child set-up";
}

void FailChild(int failure_fd, int32_t step, int error) {
  ChildFailure failure{step, error};
  ssize_t written = ::write(failure_fd, &failure, sizeof failure);  // atomic: < PIPE_BUF
  (void)written;
  ::_exit(kChildFailedExitCode);
}

namespace {

// dup2(), except that a descriptor already in place must lose its close-on-exec flag (dup2 of
// a descriptor onto itself is a no-op that keeps the flag).
bool MoveFd(int fd, int target) {
  if (fd == target) return ::fcntl(target, F_SETFD, 0) == 0;
  while (::dup2(fd, target) < 0) {
    if (errno != EINTR && errno != EBUSY) return false;
  }
  return true;
}

}  // namespace

void RedirectStdio(int stdin_fd, int stdout_fd, int stderr_fd, int failure_fd) {
  int dev_null = stdin_fd >= 0 ? stdin_fd : ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (dev_null < 0) FailChild(failure_fd, static_cast<int32_t>(ChildStep::kDevNull), errno);
  // stdin first: if /dev/null landed on 1 or 2, those are overwritten next.
  if (!MoveFd(dev_null, STDIN_FILENO) || !MoveFd(stdout_fd, STDOUT_FILENO) ||
      !MoveFd(stderr_fd, STDERR_FILENO)) {
    FailChild(failure_fd, static_cast<int32_t>(ChildStep::kRedirect), errno);
  }
  // Descriptors the supervisor's other threads opened without O_CLOEXEC (sockets, files) must not
  // leak into the command. Before Linux 5.11 this fails with EINVAL and we rely on O_CLOEXEC.
  ::close_range(STDERR_FILENO + 1, ~0U, CLOSE_RANGE_CLOEXEC);
}

void ExecOrFail(const char* const* candidates, char* const* argv, char* const* envp,
                int failure_fd) {
  // No /bin/sh fallback for ENOEXEC: a script without "#!" is not executable.
  bool saw_eacces = false;
  for (; *candidates != nullptr; ++candidates) {
    ::execve(*candidates, argv, envp);
    int error = errno;
    if (error == EACCES) {
      saw_eacces = true;
    } else if (error != ENOENT && error != ENOTDIR && error != ESTALE && error != ENODEV &&
               error != ETIMEDOUT && error != ELOOP && error != ENAMETOOLONG) {
      FailChild(failure_fd, static_cast<int32_t>(ChildStep::kExec), error);
    }
  }
  FailChild(failure_fd, static_cast<int32_t>(ChildStep::kExec), saw_eacces ? EACCES : ENOENT);
}

void CloseAllBut(const int* keep, int count) {
  int sorted[8];
  count = std::min(count, 8);
  for (int i = 0; i < count; ++i) {  // insertion sort: no library call in a forked child
    int j = i;
    for (; j > 0 && sorted[j - 1] > keep[i]; --j) sorted[j] = sorted[j - 1];
    sorted[j] = keep[i];
  }
  unsigned int next = STDERR_FILENO + 1;
  for (int i = 0; i < count; ++i) {
    auto fd = static_cast<unsigned int>(sorted[i]);
    if (fd > next) ::close_range(next, fd - 1, 0);
    if (fd + 1 > next) next = fd + 1;
  }
  ::close_range(next, ~0U, 0);
}

}  // namespace nightshift::sandbox::internal
