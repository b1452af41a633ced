#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace nightshift {

// Wall-clock time in milliseconds since the Unix epoch. Everything that stores or compares
// time (leases, timestamps) asks a Clock, so tests can move time with FakeClock.
// Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowMs() const override;
  // The process-wide instance; trivially destructible.
  static SystemClock& Get();
};

// A clock that only moves when told. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start_ms = 1'700'000'000'000) : now_ms_(start_ms) {}
  int64_t NowMs() const override { return now_ms_.load(); }
  void AdvanceMs(int64_t delta) { now_ms_ += delta; }

 private:
  std::atomic<int64_t> now_ms_;
};

// RFC 3339 UTC with milliseconds: "2026-11-25T12:00:00.123Z".
std::string FormatTimestampMs(int64_t ms);

// Monotonic milliseconds / nanoseconds, for measuring durations.
int64_t MonotonicMs();
int64_t MonotonicNs();

}  // namespace nightshift
