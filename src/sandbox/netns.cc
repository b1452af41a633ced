#include "sandbox/netns.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

namespace nightshift::sandbox::internal {
namespace {

// The loopback of the calling thread's network namespace: up, so local servers work.
Status LoopbackUp() {
  UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.Valid()) return ErrnoError("socket", "loopback");
  struct ifreq ifr {};
  std::memcpy(ifr.ifr_name, "lo", 3);
  if (::ioctl(fd.Get(), SIOCGIFFLAGS, &ifr) != 0) return ErrnoError("SIOCGIFFLAGS", "lo");
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (::ioctl(fd.Get(), SIOCSIFFLAGS, &ifr) != 0) return ErrnoError("SIOCSIFFLAGS", "lo");
  return OkStatus();
}

class Maker {
 public:
  static Maker& Get() {
    static auto* maker = new Maker();  // never destroyed: used until exit
    return *maker;
  }
  std::future<StatusOr<UniqueFd>> Request() {
    std::promise<StatusOr<UniqueFd>> promise;
    auto future = promise.get_future();
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(promise));
    }
    wake_.notify_one();
    return future;
  }

 private:
  Maker() {
    std::thread([this] { Loop(); }).detach();
  }

  // Runs on the maker's thread, whose namespace it changes: nothing else runs there.
  StatusOr<UniqueFd> MakeOne() {
    if (!home_.Valid()) {
      home_.Reset(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
      if (!home_.Valid()) return ErrnoError("open", "/proc/thread-self/ns/net");
    }
    if (::unshare(CLONE_NEWNET) != 0) return ErrnoError("unshare", "a network namespace");
    UniqueFd made(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    Status up = made.Valid() ? LoopbackUp() : ErrnoError("open", "/proc/thread-self/ns/net");
    // Back home, so the thread does not keep the sandbox's namespace alive.
    if (::setns(home_.Get(), CLONE_NEWNET) != 0) {
      return ErrnoError("setns", "back to the supervisor's network namespace");
    }
    if (!up.ok()) return up;
    return made;
  }

  void Loop() {
    for (;;) {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [&] { return !queue_.empty(); });
      auto promise = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      promise.set_value(MakeOne());
    }
  }

  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::promise<StatusOr<UniqueFd>>> queue_;
  UniqueFd home_;  // the maker thread's only
};

}  // namespace

std::future<StatusOr<UniqueFd>> MakeNetworkNamespace() { return Maker::Get().Request(); }

}  // namespace nightshift::sandbox::internal
