// Workspace benchmark (issue 4): from "run leased" to "the agent's command starts in a sandbox
// with the repository at the ref and setup done", on a generated repository of 5,000 files /
// 50 MB whose environment's setup takes ~5 s:
//  - cold: a fresh server (mirror clone, full checkout, prebuild with the 5 s setup);
//  - warm: the same commit again (mirror fetch, cached checkout and prebuild);
//  - new commit: one changed file on the warm branch (a delta checkout layer);
//  - baseline, in the same run: `git clone` + setup + `bwrap … true`;
//  - the run's end (issue 12): from its command's exit (the "agent" phase's end) to its final
//    state, when nothing changed (the result read from the run's upper dir) and when one file
//    changed (read, the platform's commit, policy, push and change request); beside it, in the
//    same run, what the old way cost: `git add -A -N . && git diff HEAD` over a checkout.
// The two ends are the run's own events: the state event into "preparing" (the lease) and the
// "agent" phase's start. Usage: workspace_bench [--warm N] [--commits N] [--json FILE]

#include <httplib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "bench/stats.h"
#include "core/clock.h"
#include "core/json.h"
#include "tests/support/server_process.h"
#include "tests/support/test_support.h"

namespace nightshift::bench {
namespace {

constexpr char kSetup[] = "sleep 5 && mkdir -p .deps && echo ready > .deps/ready";

// "…THH:MM:SS.mmmZ" → milliseconds of the day.
int64_t DayMs(const std::string& ts) {
  size_t t = ts.find('T');
  if (t == std::string::npos) return 0;
  int h = 0, m = 0, s = 0, ms = 0;
  std::sscanf(ts.c_str() + t + 1, "%d:%d:%d.%d", &h, &m, &s, &ms);
  return ((h * 60 + m) * 60 + s) * 1000 + ms;
}

struct Timing {
  double ready_ms = -1;  // leased → agent phase started
  double end_ms = -1;    // agent phase ended (the command exited) → the run's final state
  std::map<std::string, double> phases;
  std::string state;
};

class Bench {
 public:
  Bench(const std::filesystem::path& data) : server_(data, {"--log-level", "warn"}) {}

  bool Start() {
    if (!server_.Start()) {
      std::fprintf(stderr, "server: %s\n", server_.error().c_str());
      return false;
    }
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_.port());
    client_->set_bearer_token_auth(server_.token());
    client_->set_read_timeout(120, 0);
    return true;
  }

  Json Api(const std::string& method, const std::string& path, const std::string& body = "") {
    auto r = method == "GET" ? client_->Get(path) : client_->Post(path, body, "application/json");
    if (!r || r->body.empty()) return Json();
    return Json::parse(r->body, nullptr, false);
  }

  Timing RunOnce(const std::string& recipe) {
    Json run = Api("POST", "/api/v1/runs", Json{{"repo", "bench"}, {"recipe", recipe}}.dump());
    const int64_t id = run.value("id", int64_t{0});
    Timing timing;
    for (int i = 0; i < 6000; ++i) {
      Json now = Api("GET", "/api/v1/runs/" + std::to_string(id));
      timing.state = now.value("state", "");
      if (timing.state == "succeeded" || timing.state == "failed" || timing.state == "cancelled" ||
          timing.state == "timed_out" || timing.state == "blocked_by_policy") {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    Json events =
        Api("GET", "/api/v1/runs/" + std::to_string(id) + "/events?format=json")["events"];
    int64_t leased = -1, agent = -1, agent_end = -1, ended = -1;
    for (const Json& e : events) {
      const Json& d = e["data"];
      if (e["kind"] == "state" && d.value("to", "") == "preparing") leased = DayMs(e["ts"]);
      if (e["kind"] == "state" &&
          (d.value("to", "") == "succeeded" || d.value("to", "") == "failed" ||
           d.value("to", "") == "blocked_by_policy")) {
        ended = DayMs(e["ts"]);
      }
      if (e["kind"] == "phase" && d.value("name", "") == "agent" && d.contains("duration_ms")) {
        agent_end = DayMs(e["ts"]);
      }
      if (e["kind"] == "phase" && d.value("name", "") == "agent" &&
          d.value("status", "") == "started") {
        agent = DayMs(e["ts"]);
      }
      if (e["kind"] == "phase" && d.contains("duration_ms")) {
        timing.phases[d.value("name", "")] = d.value("duration_ms", 0.0);
      }
      if (e["kind"] == "result" && d.contains("read_ms")) {
        timing.phases["result"] = d.value("read_ms", 0.0);
      }
    }
    if (leased >= 0 && agent >= 0) timing.ready_ms = static_cast<double>(agent - leased);
    if (agent_end >= 0 && ended >= 0) timing.end_ms = static_cast<double>(ended - agent_end);
    if (timing.state != "succeeded") {
      std::fprintf(stderr, "run %lld ended %s: %s\n", static_cast<long long>(id),
                   timing.state.c_str(), run.dump().c_str());
    }
    return timing;
  }

 private:
  testing::ServerProcess server_;
  std::unique_ptr<httplib::Client> client_;
};

int Main(int argc, char** argv) {
  int warm_runs = 20, commits = 10;
  std::string json_out;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--warm" && i + 1 < argc) warm_runs = std::stoi(argv[++i]);
    if (a == "--commits" && i + 1 < argc) commits = std::stoi(argv[++i]);
    if (a == "--json" && i + 1 < argc) json_out = argv[++i];
  }
  if (::geteuid() != 0) {
    std::fprintf(stderr, "workspace_bench: needs root (the sandbox)\n");
    return 1;
  }
  testing::TempDir dir;
  const auto repo = dir.path() / "repo";
  std::filesystem::create_directories(repo);
  // 5,000 files of 10 KB (hex of random bytes, so git cannot compress them away): 50 MB.
  std::string make = "cd " + repo.string() +
                     " && git init -q -b main && mkdir -p .nightshift && "
                     "printf 'setup:\\n  - " +
                     std::string(kSetup) +
                     "\\n' > .nightshift/environment.yml && "
                     "for d in $(seq -w 0 99); do mkdir -p src/d$d; for f in $(seq -w 0 49); do "
                     "head -c 5000 /dev/urandom | od -An -tx1 -v | tr -d ' \\n' | head -c 10000 "
                     "> src/d$d/f$f.txt; done; done && git add -A && "
                     "git -c user.name=b -c user.email=b@b commit -qm init";
  std::printf("generating a 5,000-file / 50 MB repository...\n");
  if (testing::Shell(make).exit_code != 0) {
    std::fprintf(stderr, "cannot generate the repository\n");
    return 1;
  }
  std::printf("  %s", testing::Shell("du -sh --exclude=.git " + repo.string()).output.c_str());

  Json report;
  Bench bench(dir.path() / "data");
  if (!bench.Start()) return 1;
  bench.Api("POST", "/api/v1/repositories", Json{{"name", "bench"}, {"url", repo.string()}}.dump());
  const std::string recipe = "test -f .deps/ready && test -f src/d00/f00.txt";

  Timing cold = bench.RunOnce(recipe);
  std::printf(
      "cold  (clone, checkout, 5 s setup): %8.0f ms  [fetch %.0f, checkout %.0f, "
      "environment %.0f]\n",
      cold.ready_ms, cold.phases["fetch"], cold.phases["checkout"], cold.phases["environment"]);

  std::vector<double> warm, warm_fetch, warm_checkout, warm_env, warm_end;
  for (int i = 0; i < warm_runs; ++i) {
    Timing t = bench.RunOnce(recipe);
    warm.push_back(t.ready_ms);
    warm_end.push_back(t.end_ms);
    warm_fetch.push_back(t.phases["fetch"]);
    warm_checkout.push_back(t.phases["checkout"]);
    warm_env.push_back(t.phases["environment"]);
  }
  std::printf(
      "warm  (same commit), p50 of %d:     %8.1f ms  (p90 %.1f) [fetch %.0f, checkout "
      "%.0f, environment %.0f]\n",
      warm_runs, Median(warm), Percentile(warm, 0.9), Median(warm_fetch), Median(warm_checkout),
      Median(warm_env));

  std::printf("run's end after its command, nothing changed, p50 of %d: %5.1f ms  (p90 %.1f)\n",
              warm_runs, Median(warm_end), Percentile(warm_end, 0.9));

  // Delivery: one tracked file changed, so read, commit, policy, push and change request.
  std::vector<double> deliver_end, deliver_result, deliver_phase;
  for (int i = 0; i < commits; ++i) {
    Timing t = bench.RunOnce("echo delivered-" + std::to_string(i) + " > src/d01/f01.txt");
    if (t.state != "succeeded") continue;
    deliver_end.push_back(t.end_ms);
    deliver_result.push_back(t.phases["result"]);
    deliver_phase.push_back(t.phases["deliver"]);
  }
  std::printf(
      "run's end after its command, one file delivered, p50 of %zu: %5.1f ms  (p90 %.1f) "
      "[read + commit + diff %.0f, policy + push + change request %.0f]\n",
      deliver_end.size(), Median(deliver_end), Percentile(deliver_end, 0.9), Median(deliver_result),
      Median(deliver_phase));

  std::vector<double> fresh, fresh_checkout;
  for (int i = 0; i < commits; ++i) {
    testing::Shell("cd " + repo.string() + " && echo change-" + std::to_string(i) +
                   " >> src/d00/f00.txt && git -c user.name=b -c user.email=b@b commit -qam c" +
                   std::to_string(i));
    Timing t = bench.RunOnce(recipe);
    fresh.push_back(t.ready_ms);
    fresh_checkout.push_back(t.phases["checkout"]);
  }
  std::printf("new commit on the warm branch, p50 of %d: %6.1f ms  (p90 %.1f) [checkout %.0f]\n",
              commits, Median(fresh), Percentile(fresh, 0.9), Median(fresh_checkout));

  // Baseline: what a peer does per run.
  const bool have_bwrap = testing::Shell("command -v bwrap").exit_code == 0;
  std::vector<double> baseline;
  for (int i = 0; i < 3; ++i) {
    const auto target = dir.path() / ("baseline-" + std::to_string(i));
    int64_t t0 = MonotonicNs();
    auto r = testing::Shell(
        "git clone -q " + repo.string() + " " + target.string() + " && cd " + target.string() +
        " && sh -c '" + kSetup + "'" +
        (have_bwrap ? " && bwrap --ro-bind / / --bind " + target.string() + " " + target.string() +
                          " --chdir " + target.string() + " --unshare-all --die-with-parent true"
                    : std::string()));
    if (r.exit_code != 0) std::fprintf(stderr, "baseline failed: %s\n", r.output.c_str());
    baseline.push_back(static_cast<double>(MonotonicNs() - t0) / 1e6);
    testing::Shell("rm -rf " + target.string());
  }
  // The old way of finding what a run changed, on the same repository: git over the checkout.
  std::vector<double> old_diff;
  {
    const auto target = dir.path() / "old-diff";
    testing::Shell("git clone -q " + repo.string() + " " + target.string());
    for (int i = 0; i < 5; ++i) {
      int64_t t0 = MonotonicNs();
      testing::Shell("cd " + target.string() +
                     " && git add -A -N . >/dev/null 2>&1; git diff HEAD --numstat >/dev/null; "
                     "git diff HEAD >/dev/null");
      old_diff.push_back(static_cast<double>(MonotonicNs() - t0) / 1e6);
    }
    testing::Shell("rm -rf " + target.string());
  }
  std::printf("old way, git add -A -N + git diff HEAD on the checkout, median of 5: %5.1f ms\n",
              Median(old_diff));
  std::printf("baseline git clone + setup%s, median of 3: %8.0f ms\n",
              have_bwrap ? " + bwrap" : " (bwrap not installed)", Median(baseline));
  std::printf("warm speed-up over the baseline: %.0fx\n", Median(baseline) / Median(warm));

  report["cold_ms"] = cold.ready_ms;
  report["warm_ms"] = {{"p50", Median(warm)}, {"p90", Percentile(warm, 0.9)}};
  report["warm_phases_ms"] = {{"fetch", Median(warm_fetch)},
                              {"checkout", Median(warm_checkout)},
                              {"environment", Median(warm_env)}};
  report["new_commit_ms"] = {{"p50", Median(fresh)}, {"p90", Percentile(fresh, 0.9)}};
  report["end_nothing_changed_ms"] = {{"p50", Median(warm_end)},
                                      {"p90", Percentile(warm_end, 0.9)}};
  report["end_one_file_delivered_ms"] = {{"p50", Median(deliver_end)},
                                         {"p90", Percentile(deliver_end, 0.9)}};
  report["old_git_diff_ms"] = Median(old_diff);
  report["deliver_read_commit_diff_ms"] = Median(deliver_result);
  report["deliver_phase_ms"] = Median(deliver_phase);
  report["baseline_ms"] = Median(baseline);
  report["speedup_warm_vs_baseline"] = Median(baseline) / Median(warm);
  if (!json_out.empty()) std::ofstream(json_out) << report.dump(2) << "\n";
  return 0;
}

}  // namespace
}  // namespace nightshift::bench

int main(int argc, char** argv) { return nightshift::bench::Main(argc, argv); }
