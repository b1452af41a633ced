// Sandbox benchmarks (issue 3), each against its peer in the same run:
//  1. start-to-exit latency of `true` in our sandbox vs `bwrap --ro-bind / / --unshare-all
//     --die-with-parent true`, interleaved so both see the same machine;
//     and the same from a warm pool (pre-forked sandboxes, pool.h), each taken once the pool is
//     full again, and the cold ones measured once its refill is done; both also with memory and
//     pids limits, as the server runs them;
//  2. sandboxes started (and finished) per second with 2 threads, cold and with a pool;
//  3. memory per idle sandbox and per sandbox waiting in a pool, as the memory cgroup counts it
//     (kernel memory included).
// Usage: sandbox_bench [--runs N] [--seconds S] [--json FILE]; --memory-only: part 3 alone, in
// this process's cgroup (Main runs it so, in a cgroup of its own).

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <thread>
#include <vector>

#include "bench/stats.h"
#include "core/clock.h"
#include "core/fs.h"
#include "core/json.h"
#include "sandbox/cgroups.h"
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

// The usage of this process's own memory cgroup (v1 memory.usage_in_bytes, else v2
// memory.current), or 0 when there is none.
int64_t OwnCgroupMemoryBytes() {
  auto found = sandbox::OwnCgroupHierarchies();
  if (!found.ok()) return 0;
  const auto v1 = found->v1_dirs.find("memory");
  const std::filesystem::path file = v1 != found->v1_dirs.end()
                                         ? v1->second / "memory.usage_in_bytes"
                                         : found->v2_dir / "memory.current";
  std::ifstream in(file);
  int64_t bytes = 0;
  return in >> bytes ? bytes : 0;
}

int64_t PssKb(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Pss:", 0) == 0) return std::stoll(line.substr(4));
  }
  return 0;
}

// Memory of sandboxes, as the memory cgroup of this process counts it: user pages and kernel
// memory (the namespaces, mounts, tmpfs and page tables a sandbox costs), with what the
// sandboxes' own cgroups hold (they are below ours). PSS would not do: PID 1 runs in this
// process's memory (CLONE_VM), so its PSS is ours, and PSS counts no kernel memory. Each figure
// is the growth while the sandboxes exist, settled for a second. Run in a fresh process, alone
// in a fresh cgroup (Main does that), so nothing else is counted.
int MeasureMemory(const std::filesystem::path& ws, const std::string& json_out) {
  Json report;
  const auto settled = [] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
    return OwnCgroupMemoryBytes();
  };
  if (OwnCgroupMemoryBytes() <= 0) {
    std::printf("memory: no memory cgroup to measure with\n");
    return 0;
  }
  auto ours = Ours(ws, {"true"}, true);
  (void)sandbox::RunProcess(ours, nullptr);  // the filter compiled, the reaper started
  // Sandboxes waiting in a pool of 8.
  const int64_t before_pool = settled();
  {
    auto pool = sandbox::SandboxPool::Start(*ours.sandbox, 8);
    if (pool.ok() && (*pool)->WaitFull(5000)) {
      const double per_waiting = static_cast<double>(settled() - before_pool) / 8 / 1024;
      report["waiting_pool_sandbox_kb"] = per_waiting;
      std::printf("memory per sandbox waiting in the pool (memory cgroup, 8 waiting): %.0f KiB\n",
                  per_waiting);
    }
  }
  // Idle sandboxes: 10 running `sleep`.
  constexpr int kIdle = 10;
  const int64_t before_idle = settled();
  std::vector<std::thread> idle;
  auto sleeper = Ours(ws, {"sleep", "3.0777"}, true);
  for (int i = 0; i < kIdle; ++i) {
    idle.emplace_back([&] { (void)sandbox::RunProcess(sleeper, nullptr); });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const int64_t with_idle = settled();
  // The commands' own share (PSS of `sleep`), for comparison with a plain process.
  int64_t command_pss = 0;
  std::string pids = testing::Shell("pgrep -f 'sleep 3[.]0777'").output;
  for (size_t at = 0; at < pids.size();) {
    size_t nl = pids.find('\n', at);
    command_pss += PssKb(std::atoi(pids.substr(at, nl - at).c_str()));
    if (nl == std::string::npos) break;
    at = nl + 1;
  }
  for (auto& t : idle) t.join();
  const double per_idle = static_cast<double>(with_idle - before_idle) / kIdle / 1024;
  report["idle_sandbox_kb"] = per_idle;
  report["idle_sandbox_command_pss_kb"] = static_cast<double>(command_pss) / kIdle;
  std::printf(
      "memory per idle sandbox (memory cgroup, %d running `sleep`): %.0f KiB, of which the "
      "command's own PSS %.0f KiB\n",
      kIdle, per_idle, static_cast<double>(command_pss) / kIdle);
  if (!json_out.empty()) std::ofstream(json_out) << report.dump(2) << "\n";
  return 0;
}

int Main(int argc, char** argv) {
  int runs = 40;
  double seconds = 5;
  std::string json_out;
  bool memory_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) runs = std::stoi(argv[++i]);
    if (a == "--seconds" && i + 1 < argc) seconds = std::stod(argv[++i]);
    if (a == "--json" && i + 1 < argc) json_out = argv[++i];
    if (a == "--memory-only") memory_only = true;
  }
  if (::geteuid() != 0) {
    std::fprintf(stderr, "sandbox_bench: needs root\n");
    return 1;
  }
  testing::TempDir dir;
  auto ws = dir.path() / "ws";
  std::filesystem::create_directories(ws);
  if (memory_only) return MeasureMemory(ws, json_out);
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

  // Memory, in a process of its own in a cgroup of its own (MeasureMemory).
  pool->reset();
  if (auto own = sandbox::Cgroup::Create("bench-memory-" + RandomHex(6), {}); own.ok()) {
    std::string script;
    for (const auto& file : (*own)->procs_files()) {
      script += "echo $$ > " + testing::ShellQuote(file.string()) + " && ";
    }
    const std::filesystem::path memory_json = dir.path() / "memory.json";
    const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
    script += "exec " + testing::ShellQuote(self) + " --memory-only --json " +
              testing::ShellQuote(memory_json.string());
    auto measured = testing::Shell("/bin/sh -c " + testing::ShellQuote(script));
    std::printf("%s", measured.output.c_str());
    if (auto text = ReadFile(memory_json); text.ok()) {
      Json memory = Json::parse(*text, nullptr, false);
      if (memory.is_object()) {
        for (auto& [key, value] : memory.items()) report[key] = value;
      }
    }
  } else {
    std::printf("memory: no cgroup to measure in (%s)\n", own.status().ToString().c_str());
  }
  if (!json_out.empty()) std::ofstream(json_out) << report.dump(2) << "\n";
  return 0;
}

}  // namespace
}  // namespace nightshift::bench

int main(int argc, char** argv) { return nightshift::bench::Main(argc, argv); }
