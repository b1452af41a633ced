#include "sandbox/netns.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstring>

#include "sandbox/raw_syscall.h"

namespace nightshift::sandbox::internal {

ContainFailure MakeLoopbackNetns() {
  RETURN_IF_FAILED(Check(ContainStep::kNet, sys::Unshare(CLONE_NEWNET)));
  // A new namespace starts with its loopback down.
  const long fd = sys::Socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  RETURN_IF_FAILED(Check(ContainStep::kNet, fd));
  struct ifreq ifr {};
  std::memcpy(ifr.ifr_name, "lo", 3);
  long r = sys::Ioctl(static_cast<int>(fd), SIOCGIFFLAGS, &ifr);
  if (r == 0) {
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    r = sys::Ioctl(static_cast<int>(fd), SIOCSIFFLAGS, &ifr);
  }
  sys::Close(static_cast<int>(fd));
  return Check(ContainStep::kNet, r);
}

ContainFailure JoinNetnsOf(pid_t pid) {
  char path[32] = "/proc/";
  size_t at = 6;
  char digits[16];
  int n = 0;
  for (auto v = static_cast<unsigned>(pid); n == 0 || v > 0; v /= 10) {
    digits[n++] = static_cast<char>('0' + v % 10);
  }
  while (n > 0) path[at++] = digits[--n];
  std::memcpy(path + at, "/ns/net", 8);
  const long fd = sys::Open(path, O_RDONLY | O_CLOEXEC);
  RETURN_IF_FAILED(Check(ContainStep::kNet, fd));
  const long r = sys::Setns(static_cast<int>(fd), CLONE_NEWNET);
  sys::Close(static_cast<int>(fd));
  return Check(ContainStep::kNet, r);
}

}  // namespace nightshift::sandbox::internal
