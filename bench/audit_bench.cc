// The audit log (issue 15): appends per second with the hash chain and group commit, from 1 and
// 8 threads into a real store on disk, and the time `audit verify` takes per million records
// (every hash recomputed, every checkpoint's signature checked), measured over what was appended.
// Usage: audit_bench [--seconds S]

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "policy/audit.h"
#include "store/sqlite_store.h"
#include "tests/support/test_support.h"

int main(int argc, char** argv) {
  using namespace nightshift;
  double seconds = 3;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string_view(argv[i]) == "--seconds") seconds = std::atof(argv[i + 1]);
  }
  testing::TempDir dir;
  auto store = store::OpenSqliteStore(dir.path() / "db", SystemClock::Get());
  auto log = policy::AuditLog::Open(**store, dir.path() / "audit-key", SystemClock::Get());
  if (!store.ok() || !log.ok()) return 1;
  for (int threads : {1, 8, 32}) {
    std::atomic<bool> stop{false};
    std::atomic<int64_t> appended{0};
    std::vector<std::thread> workers;
    const auto start = std::chrono::steady_clock::now();
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        for (int64_t n = 0; !stop; ++n) {
          auto seq = (*log)->Append({.actor = StrCat("user:u", t),
                                     .action = "POST /api/v1/runs",
                                     .resource = StrCat("/api/v1/runs/", n),
                                     .detail = Json{{"status", 201}, {"from", "10.0.0.7"}}});
          if (seq.ok()) ++appended;
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)));
    stop = true;
    for (auto& w : workers) w.join();
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("audit append, %2d threads: %8.0f records/s (%lld records)\n", threads,
                static_cast<double>(appended.load()) / elapsed,
                static_cast<long long>(appended.load()));
  }
  const auto start = std::chrono::steady_clock::now();
  policy::AuditVerdict verdict = (*log)->Verify();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("audit verify: %lld records, %lld checkpoints in %.2f s: %.1f s per million (%s)\n",
              static_cast<long long>(verdict.records), static_cast<long long>(verdict.checkpoints),
              elapsed, elapsed * 1e6 / static_cast<double>(std::max<int64_t>(verdict.records, 1)),
              verdict.ok ? "intact" : verdict.reason.c_str());
  return verdict.ok ? 0 : 1;
}
