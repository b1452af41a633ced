#pragma once

// Buffers a run's events and appends them to the store in batches: at most every
// `flush_interval_ms`, or as soon as `max_batch` events are waiting. A background thread
// flushes on time, so a lone line never waits for the next one.

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#include "api/events.h"
#include "runner/lease_source.h"

namespace nightshift::runner {

class EventWriter {
 public:
  EventWriter(LeaseSource& source, int64_t run_id, int64_t flush_interval_ms = 50,
              size_t max_batch = 256);
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;
  // Flushes what is left.
  ~EventWriter();

  // Thread-safe. Log is Emit of a `log` event.
  void Log(std::string_view stream, std::string_view line);
  void Emit(const api::EventRecord& event);
  // Appends everything buffered now; returns the first error met since the last Flush.
  Status Flush();

 private:
  void FlusherLoop();
  Status AppendPending();

  LeaseSource& source_;
  const int64_t run_id_;
  const int64_t flush_interval_ms_;
  const size_t max_batch_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<store::NewEvent> pending_;  // GUARDED_BY(mu_)
  bool stopping_ = false;                 // GUARDED_BY(mu_)
  Status error_;                          // GUARDED_BY(mu_)
  std::mutex append_mu_;                  // keeps batches in order; taken before mu_
  std::thread flusher_;
};

}  // namespace nightshift::runner
