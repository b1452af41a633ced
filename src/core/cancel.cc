#include "core/cancel.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>

namespace nightshift {

CancelToken::CancelToken() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

void CancelToken::Cancel() {
  cancelled_.store(true);
  if (!fd_.Valid()) return;
  uint64_t one = 1;
  // Can only fail with EAGAIN when the counter is about to overflow, and then it is readable
  // anyway; the flag is the source of truth, the eventfd only wakes poll().
  ssize_t written = ::write(fd_.Get(), &one, sizeof one);
  (void)written;
}

}  // namespace nightshift
