#include "sandbox/child.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sandbox/raw_syscall.h"

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
  const ChildFailure failure{step, error};
  sys::Write(failure_fd, &failure, sizeof failure);  // atomic: < PIPE_BUF
  sys::Exit(kChildFailedExitCode);
}

namespace {

// dup2(), except that a descriptor already in place must lose its close-on-exec flag (dup2 of
// a descriptor onto itself is a no-op that keeps the flag). Returns 0 or an errno value.
NS_CHILD int MoveFd(int fd, int target) {
  if (fd == target) return RawError(sys::Fcntl(target, F_SETFD, 0));
  long r;
  while ((r = sys::Dup3(fd, target, 0)) == -EINTR || r == -EBUSY) {
  }
  return RawError(r);
}

}  // namespace

void RedirectStdio(int stdin_fd, int stdout_fd, int stderr_fd, int failure_fd) {
  const long dev_null = stdin_fd >= 0 ? stdin_fd : sys::Open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (int error = RawError(dev_null); error != 0) {
    FailChild(failure_fd, static_cast<int32_t>(ChildStep::kDevNull), error);
  }
  // stdin first: if /dev/null landed on 1 or 2, those are overwritten next.
  int error = MoveFd(static_cast<int>(dev_null), STDIN_FILENO);
  if (error == 0) error = MoveFd(stdout_fd, STDOUT_FILENO);
  if (error == 0) error = MoveFd(stderr_fd, STDERR_FILENO);
  if (error != 0) FailChild(failure_fd, static_cast<int32_t>(ChildStep::kRedirect), error);
  // Descriptors the supervisor's other threads opened without O_CLOEXEC (sockets, files) must not
  // leak into the command. Before Linux 5.11 this fails with EINVAL and we rely on O_CLOEXEC.
  sys::CloseRange(STDERR_FILENO + 1, ~0U, CLOSE_RANGE_CLOEXEC);
}

void ExecOrFail(const char* const* candidates, char* const* argv, char* const* envp,
                int failure_fd) {
  // No /bin/sh fallback for ENOEXEC: a script without "#!" is not executable.
  bool saw_eacces = false;
  for (; *candidates != nullptr; ++candidates) {
    const int error = RawError(sys::Execve(*candidates, argv, envp));
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
  int kept = 0;
  for (int i = 0; i < count && kept < 8; ++i) {  // insertion sort: no library call in a child
    if (keep[i] < 0) continue;                   // not a descriptor
    int j = kept++;
    for (; j > 0 && sorted[j - 1] > keep[i]; --j) sorted[j] = sorted[j - 1];
    sorted[j] = keep[i];
  }
  count = kept;
  unsigned int next = STDERR_FILENO + 1;
  for (int i = 0; i < count; ++i) {
    auto fd = static_cast<unsigned int>(sorted[i]);
    if (fd > next) sys::CloseRange(next, fd - 1, 0);
    if (fd + 1 > next) next = fd + 1;
  }
  sys::CloseRange(next, ~0U, 0);
}

int ReceiveFds(int socket, int* fds, int min_count, int max_count, int* received) {
  char tag = 0;
  struct iovec iov {
    &tag, 1
  };
  alignas(struct cmsghdr) char buffer[CMSG_SPACE(sizeof(int) * kMaxReceivedFds)];
  struct msghdr message {};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  message.msg_control = buffer;
  message.msg_controllen = sizeof buffer;
  long n;
  while ((n = sys::Recvmsg(socket, &message, MSG_CMSG_CLOEXEC)) == -EINTR) {
  }
  if (n == 0) return 0;
  if (n != 1 || (message.msg_flags & MSG_CTRUNC) != 0) return -1;
  struct cmsghdr* cmsg = CMSG_FIRSTHDR(&message);
  if (cmsg == nullptr || cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS ||
      cmsg->cmsg_len < CMSG_LEN(0)) {
    return -1;
  }
  const auto count = static_cast<int>((cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int));
  if (count < min_count || count > max_count) return -1;
  std::memcpy(fds, CMSG_DATA(cmsg), sizeof(int) * static_cast<size_t>(count));
  if (received != nullptr) *received = count;
  return static_cast<unsigned char>(tag);
}

bool SendTag(int socket, char tag) { return sys::Send(socket, &tag, 1, MSG_NOSIGNAL) == 1; }

bool SendFailure(int socket, const ChildFailure& failure) {
  return sys::Send(socket, &failure, sizeof failure, MSG_NOSIGNAL) == sizeof failure;
}

std::optional<ChildFailure> AwaitTag(int socket, char tag, int32_t fallback_step) {
  ChildFailure message{};
  long n;
  while ((n = sys::Recv(socket, &message, sizeof message, 0)) == -EINTR) {
  }
  if (n == 1 && reinterpret_cast<const char*>(&message)[0] == tag) return std::nullopt;
  if (n == sizeof message) return message;
  return ChildFailure{fallback_step, EPROTO};
}

}  // namespace nightshift::sandbox::internal
