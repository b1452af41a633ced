#include "core/clock.h"

#include <chrono>

namespace nightshift {

int64_t SystemClock::NowMs() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

SystemClock& SystemClock::Get() {
  static SystemClock* clock = new SystemClock();  // never destroyed: usable during shutdown
  return *clock;
}

int64_t MonotonicMs() { return MonotonicNs() / 1'000'000; }

int64_t MonotonicNs() {
  using namespace std::chrono;
  return duration_cast<nanoseconds>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace nightshift
