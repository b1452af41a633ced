#include "sandbox/netns.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "core/log.h"
#include "sandbox/raw_syscall.h"

namespace nightshift::sandbox::internal {
namespace {

// A new namespace starts with its loopback down.
Status BringLoopbackUp() {
  UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.Valid()) return ErrnoError("socket", "loopback");
  struct ifreq ifr {};
  std::memcpy(ifr.ifr_name, "lo", 3);
  if (::ioctl(fd.Get(), SIOCGIFFLAGS, &ifr) != 0) return ErrnoError("SIOCGIFFLAGS", "lo");
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (::ioctl(fd.Get(), SIOCSIFFLAGS, &ifr) != 0) return ErrnoError("SIOCSIFFLAGS", "lo");
  return OkStatus();
}

}  // namespace

StatusOr<UniqueFd> MakeLoopbackNetns() {
  // unshare and setns change the calling thread's namespace only.
  UniqueFd own(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!own.Valid()) return ErrnoError("open", "/proc/thread-self/ns/net");
  if (::unshare(CLONE_NEWNET) != 0) return ErrnoError("unshare", "network namespace");
  Status up = BringLoopbackUp();
  UniqueFd made(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  const int made_errno = errno;
  if (::setns(own.Get(), CLONE_NEWNET) != 0) {
    // We hold the namespace we came from and are root: this cannot fail, and if it did, this
    // thread's sockets would be the sandbox's.
    log::Get("sandbox")->critical("{}", ErrnoError("setns",
                                                   "back to the supervisor's network "
                                                   "namespace")
                                            .ToString());
    std::abort();
  }
  RETURN_IF_ERROR(up);
  if (!made.Valid()) return ErrnoError("open", "the new network namespace", made_errno);
  return made;
}

ContainFailure JoinNetns(int netns) {
  const long r = sys::Setns(netns, CLONE_NEWNET);
  sys::Close(netns);
  return Check(ContainStep::kNet, r);
}

}  // namespace nightshift::sandbox::internal
