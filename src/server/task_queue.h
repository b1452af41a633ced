#pragma once

#include <httplib.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>

namespace nightshift::server {

// The HTTP server's thread pool. It starts empty and grows with demand up to `max_threads`, so
// an idle server holds no worker stacks, while every accepted connection — an event stream may
// hold one for hours — still gets a thread of its own at once. Workers idle for `idle_ms` exit.
// Thread-safe.
class ElasticTaskQueue final : public httplib::TaskQueue {
 public:
  explicit ElasticTaskQueue(size_t max_threads, int64_t idle_ms = 30'000)
      : max_threads_(max_threads), idle_ms_(idle_ms) {}
  ~ElasticTaskQueue() override { shutdown(); }

  void enqueue(std::function<void()> fn) override;
  // Runs what is queued, then waits for every worker to exit.
  void shutdown() override;

  size_t live_threads() const;

 private:
  void Worker();

  const size_t max_threads_;
  const int64_t idle_ms_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable done_cv_;
  std::deque<std::function<void()>> jobs_;  // GUARDED_BY(mu_)
  size_t live_ = 0;                         // GUARDED_BY(mu_)
  size_t idle_ = 0;                         // GUARDED_BY(mu_) workers waiting for a job
  bool shutdown_ = false;                   // GUARDED_BY(mu_)
};

}  // namespace nightshift::server
