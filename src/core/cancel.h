#pragma once

// A cancellation signal shared between the thread that decides to stop something (a run's
// cancel, a lost lease) and the threads doing it: a process supervisor, a model request, a git
// command. Every part that can be stopped takes a `const CancelToken*` (null: never cancelled).

#include <atomic>

#include "core/fs.h"

namespace nightshift {

// Wakes a waiting loop from another thread. Backed by an eventfd, so that a poll(2) that includes
// fd() returns at once when cancelled. Thread-safe; Cancel() is idempotent. If the eventfd cannot
// be created (fd() < 0), waiters fall back to checking IsCancelled() periodically (RunProcess
// does every 50 ms).
class CancelToken {
 public:
  CancelToken();
  void Cancel();
  bool IsCancelled() const { return cancelled_.load(); }
  // Readable once cancelled, and stays so (it is never drained: the token may be shared).
  int fd() const { return fd_.Get(); }

 private:
  std::atomic<bool> cancelled_{false};
  UniqueFd fd_;
};

}  // namespace nightshift
