// Sandbox benchmarks (issue 3), each against its peer in the same run:
//  1. start-to-exit latency of `true` in our sandbox vs `bwrap --ro-bind / / --unshare-all
//     --die-with-parent true`, interleaved so both see the same machine;
//     and the same from a warm pool (pre-forked sandboxes, pool.h), each taken once the pool is
//     full again, and the cold ones measured once its refill is done; both also with memory and
//     pids limits, as the server runs them;
//  2. sandboxes started (and finished) per second with 2 threads, cold and with a pool;
//  3. memory per idle sandbox (PSS of its processes), and per sandbox waiting in a pool.
// Usage: sandbox_bench [--runs N] [--seconds S] [--json FILE]

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <thread>
#include <vector>

#include "bench/stats.h"
#include "core/clock.h"
#include "core/json.h"
#include "sandbox/pool.h"
#include "sandbox/process.h"
#include "tests/support/test_support.h"

namespace nightshift::bench {
namespace {

sandbox::ProcessSpec Ours(const std::filesystem::path& ws, std::vector<std::string> argv,
                          bool seccomp) {
  sandbox::ProcessSpec spec{.argv = std::move(argv), .env = {{"PATH", "/usr/bin:/bin"}}};
  spec.sandbox = sandbox::SandboxSpec{.workspace = ws, .seccomp = seccomp};
  return spec;
}

// Milliseconds from the call to the reaped exit.
double TimeOne(const sandbox::ProcessSpec& spec) {
  int64_t t0 = MonotonicNs();
  auto r = sandbox::RunProcess(spec, nullptr);
  double ms = static_cast<double>(MonotonicNs() - t0) / 1e6;
  if (!r.ok() || r->exit_code != 0) {
    std::fprintf(stderr, "run failed: %s\n",
                 r.ok() ? "non-zero exit" : r.status().ToString().c_str());
    return -1;
  }
  return ms;
}

int64_t PssKb(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Pss:", 0) == 0) return std::stoll(line.substr(4));
  }
  return 0;
}

int Main(int argc, char** argv) {
  int runs = 40;
  double seconds = 5;
  std::string json_out;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) runs = std::stoi(argv[++i]);
    if (a == "--seconds" && i + 1 < argc) seconds = std::stod(argv[++i]);
    if (a == "--json" && i + 1 < argc) json_out = argv[++i];
  }
  if (::geteuid() != 0) {
    std::fprintf(stderr, "sandbox_bench: needs root\n");
    return 1;
  }
  testing::TempDir dir;
  auto ws = dir.path() / "ws";
  std::filesystem::create_directories(ws);
  const bool have_bwrap = testing::Shell("command -v bwrap").exit_code == 0;
  sandbox::ProcessSpec bwrap{
      .argv = {"bwrap", "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"},
      .env = {{"PATH", "/usr/bin:/bin"}}};
  sandbox::ProcessSpec plain{.argv = {"true"}, .env = {{"PATH", "/usr/bin:/bin"}}};
  auto ours = Ours(ws, {"true"}, true);
  auto ours_no_seccomp = Ours(ws, {"true"}, false);

  auto pool = sandbox::SandboxPool::Start(*ours.sandbox, 2);
  if (!pool.ok()) {
    std::fprintf(stderr, "sandbox_bench: %s\n", pool.status().ToString().c_str());
    return 1;
  }
  auto ours_warm = ours;
  ours_warm.pool = pool->get();
  // As the server runs them: with memory and pids limits, so each has a cgroup (a pooled
  // sandbox's is made ahead; a cold one makes its own).
  auto ours_limited = ours;
  ours_limited.sandbox->limits = {.memory_bytes = int64_t{512} << 20, .pids = 256};
  auto ours_warm_limited = ours_limited;
  ours_warm_limited.pool = pool->get();

  // Warm up the page cache and the kernel's structures for both.
  for (int i = 0; i < 3; ++i) {
    TimeOne(ours);
    if (have_bwrap) TimeOne(bwrap);
  }
  std::vector<double> t_ours, t_ours_ns, t_bwrap, t_plain, t_warm, t_limited, t_warm_limited;
  for (int i = 0; i < runs; ++i) {
    // A refill starts once a warm run is over: each run waits for it, or it would compete.
    (*pool)->WaitFull(5000);
    t_warm.push_back(TimeOne(ours_warm));
    (*pool)->WaitFull(5000);
    t_warm_limited.push_back(TimeOne(ours_warm_limited));
    (*pool)->WaitFull(5000);
    t_ours.push_back(TimeOne(ours));
    t_limited.push_back(TimeOne(ours_limited));
    t_ours_ns.push_back(TimeOne(ours_no_seccomp));
    if (have_bwrap) t_bwrap.push_back(TimeOne(bwrap));
    t_plain.push_back(TimeOne(plain));
  }
  Json report;
  report["latency_ms"] = {
      {"nightshift", {{"p50", Median(t_ours)}, {"p90", Percentile(t_ours, 0.9)}}},
      {"nightshift_no_seccomp", {{"p50", Median(t_ours_ns)}}},
      {"nightshift_warm_pool", {{"p50", Median(t_warm)}, {"p90", Percentile(t_warm, 0.9)}}},
      {"nightshift_with_limits", {{"p50", Median(t_limited)}}},
      {"nightshift_warm_pool_with_limits", {{"p50", Median(t_warm_limited)}}},
      {"plain_fork_exec", {{"p50", Median(t_plain)}}}};
  std::printf("start-to-exit of `true` (median of %d, ms):\n", runs);
  std::printf("  nightshift sandbox        %6.2f  (p90 %.2f)\n", Median(t_ours),
              Percentile(t_ours, 0.9));
  std::printf("  nightshift, no seccomp    %6.2f\n", Median(t_ours_ns));
  std::printf("  nightshift, warm pool     %6.2f  (p90 %.2f)\n", Median(t_warm),
              Percentile(t_warm, 0.9));
  std::printf("  with memory+pids limits   %6.2f  (warm pool: %.2f)\n", Median(t_limited),
              Median(t_warm_limited));
  if (have_bwrap) {
    report["latency_ms"]["bwrap"] = {{"p50", Median(t_bwrap)}, {"p90", Percentile(t_bwrap, 0.9)}};
    report["ratio_to_bwrap"] = Median(t_ours) / Median(t_bwrap);
    report["warm_ratio_to_bwrap"] = Median(t_warm) / Median(t_bwrap);
    std::printf("  bwrap --unshare-all       %6.2f  (p90 %.2f)\n", Median(t_bwrap),
                Percentile(t_bwrap, 0.9));
    std::printf("  ratio nightshift/bwrap    %6.2f  (warm pool: %.2f)\n",
                Median(t_ours) / Median(t_bwrap), Median(t_warm) / Median(t_bwrap));
  } else {
    std::printf("  bwrap: not installed (scripts/install-deps --bench installs it)\n");
  }
  std::printf("  plain fork+exec           %6.2f\n", Median(t_plain));

  // Throughput: two threads starting sandboxes back to back, cold, then taking from a pool of 4
  // that its own thread refills meanwhile (on the same 2 cores).
  auto throughput = [&](const sandbox::ProcessSpec& spec) {
    std::atomic<int64_t> done{0};
    std::atomic<bool> stop{false};
    int64_t start = MonotonicNs();
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&] {
        while (!stop) {
          if (sandbox::RunProcess(spec, nullptr).ok()) ++done;
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
    for (auto& t : threads) t.join();
    return static_cast<double>(done) / (static_cast<double>(MonotonicNs() - start) / 1e9);
  };
  double per_second = throughput(ours);
  report["sandboxes_per_second_2_threads"] = per_second;
  std::printf("sandboxes started and finished per second (2 threads): %.0f\n", per_second);
  pool->reset();
  pool = sandbox::SandboxPool::Start(*ours.sandbox, 4);
  ours_warm.pool = pool->get();
  double warm_per_second = throughput(ours_warm);
  auto stats = (*pool)->stats();
  report["sandboxes_per_second_2_threads_pool"] = warm_per_second;
  std::printf("  with a pool of 4: %.0f (%lld of %lld taken warm)\n", warm_per_second,
              static_cast<long long>(stats.taken),
              static_cast<long long>(stats.taken + stats.missed));

  // Memory of sandboxes waiting in the pool: the pool's children.
  (*pool)->WaitFull(5000);
  int64_t waiting_pss = 0;
  std::string waiting = testing::Shell("pgrep -P " + std::to_string(::getpid())).output;
  int waiting_count = 0;
  for (size_t at = 0; at < waiting.size();) {
    size_t nl = waiting.find('\n', at);
    int pid = std::atoi(waiting.substr(at, nl - at).c_str());
    if (pid > 0 && PssKb(pid) > 0) {
      waiting_pss += PssKb(pid);
      ++waiting_count;
    }
    if (nl == std::string::npos) break;
    at = nl + 1;
  }
  if (waiting_count > 0) {
    report["waiting_pool_sandbox_pss_kb"] = static_cast<double>(waiting_pss) / waiting_count;
    std::printf("memory per sandbox waiting in the pool (PSS, %d waiting): %.0f KiB\n",
                waiting_count, static_cast<double>(waiting_pss) / waiting_count);
  }
  pool->reset();

  // Memory: 10 idle sandboxes (`sleep`), PSS of every process in them.
  constexpr int kIdle = 10;
  std::vector<std::thread> idle;
  auto sleeper = Ours(ws, {"sleep", "3.0777"}, true);
  for (int i = 0; i < kIdle; ++i)
    idle.emplace_back([&] { (void)sandbox::RunProcess(sleeper, nullptr); });
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  int64_t pss = 0;
  int processes = 0;
  std::string pids = testing::Shell("pgrep -f 'sleep 3[.]0777'").output;
  for (size_t at = 0; at < pids.size();) {
    size_t nl = pids.find('\n', at);
    int pid = std::atoi(pids.substr(at, nl - at).c_str());
    if (pid > 0) {
      int ppid = 0;
      std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
      std::string s;
      std::getline(stat, s);
      std::sscanf(s.c_str() + s.rfind(')') + 2, "%*c %d", &ppid);
      pss += PssKb(pid) + PssKb(ppid);  // the command and its sandbox's PID 1
      processes += 2;
    }
    if (nl == std::string::npos) break;
    at = nl + 1;
  }
  for (auto& t : idle) t.join();
  double per_sandbox_kb = static_cast<double>(pss) / kIdle;
  report["idle_sandbox_pss_kb"] = per_sandbox_kb;
  std::printf("memory per idle sandbox (PSS of PID 1 + the command, %d processes): %.0f KiB\n",
              processes, per_sandbox_kb);
  if (!json_out.empty()) std::ofstream(json_out) << report.dump(2) << "\n";
  return 0;
}

}  // namespace
}  // namespace nightshift::bench

int main(int argc, char** argv) { return nightshift::bench::Main(argc, argv); }
