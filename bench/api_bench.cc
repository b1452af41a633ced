// Control-plane benchmarks (issue 2):
//  1. durable run creations through the HTTP API with 1, 8 and 64 concurrent keep-alive clients:
//     throughput and p50/p99 latency;
//  2. event appends into the store, one per transaction and in batches;
//  3. SSE fan-out: 100 subscribers on one run, latency from append to delivery;
//  4. RSS of an idle `nightshift serve` process.
// The server runs in this process (the fan-out needs its store) except for the RSS probe.
// Usage: api_bench [--seconds S] [--json FILE]

#include <httplib.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "server/server.h"
#include "store/sqlite_store.h"
#include "tests/support/server_process.h"
#include "tests/support/test_support.h"

namespace nightshift::bench {
namespace {

double Percentile(std::vector<int64_t>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return static_cast<double>(v[i]) / 1e6;  // ns → ms
}

Json CreationBench(int port, const std::string& token, int clients, double seconds) {
  std::vector<std::vector<int64_t>> latencies(static_cast<size_t>(clients));
  std::atomic<int64_t> errors{0};
  std::atomic<bool> go{false}, stop{false};
  std::vector<std::thread> threads;
  const std::string body = R"({"repo":"bench","recipe":"make test","ref":"main"})";
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      httplib::Client client("127.0.0.1", port);
      client.set_bearer_token_auth(token);
      client.set_keep_alive(true);
      client.set_tcp_nodelay(true);
      auto& lat = latencies[static_cast<size_t>(c)];
      lat.reserve(100'000);
      while (!go) std::this_thread::yield();
      while (!stop) {
        int64_t t0 = MonotonicNs();
        auto r = client.Post("/api/v1/runs", body, "application/json");
        int64_t t1 = MonotonicNs();
        if (!r || r->status != 201) {
          ++errors;
          continue;
        }
        lat.push_back(t1 - t0);
      }
    });
  }
  int64_t start = MonotonicNs();
  go = true;
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  double elapsed = static_cast<double>(MonotonicNs() - start) / 1e9;
  std::vector<int64_t> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  double rate = static_cast<double>(all.size()) / elapsed;
  Json j = {
      {"clients", clients}, {"creations", all.size()},         {"errors", errors.load()},
      {"per_second", rate}, {"p50_ms", Percentile(all, 0.50)}, {"p99_ms", Percentile(all, 0.99)}};
  std::printf("create runs  clients=%-3d  %8.0f/s  p50 %6.2f ms  p99 %6.2f ms  (errors %lld)\n",
              clients, rate, j["p50_ms"].get<double>(), j["p99_ms"].get<double>(),
              static_cast<long long>(errors.load()));
  return j;
}

Json AppendBench(store::Store& store, int64_t run_id, int batch, double seconds) {
  std::vector<store::NewEvent> events(
      static_cast<size_t>(batch),
      {"log", R"({"stream":"stdout","line":"a typical line of build output"})"});
  int64_t n = 0;
  int64_t start = MonotonicNs();
  int64_t end = start + static_cast<int64_t>(seconds * 1e9);
  while (MonotonicNs() < end) {
    if (!store.AppendEvents(run_id, events).ok()) break;
    n += batch;
  }
  double rate = static_cast<double>(n) / (static_cast<double>(MonotonicNs() - start) / 1e9);
  std::printf("append events  batch=%-4d %10.0f events/s\n", batch, rate);
  return {{"batch", batch}, {"events_per_second", rate}};
}

Json FanoutBench(store::Store& store, int port, const std::string& token, int64_t run_id,
                 int subscribers, int events) {
  int64_t base_seq = store.GetRun(run_id)->last_event_seq;
  std::vector<int64_t> sent_at(static_cast<size_t>(events) + 1, 0);
  std::vector<std::vector<int64_t>> received(static_cast<size_t>(subscribers));
  std::atomic<int> connected{0};
  std::vector<std::thread> threads;
  for (int s = 0; s < subscribers; ++s) {
    threads.emplace_back([&, s] {
      httplib::Client client("127.0.0.1", port);
      client.set_bearer_token_auth(token);
      client.set_read_timeout(60, 0);
      auto& got = received[static_cast<size_t>(s)];
      got.assign(static_cast<size_t>(events) + 1, 0);
      std::string buf;
      bool counted = false;
      httplib::Headers headers = {{"Last-Event-ID", std::to_string(base_seq)}};
      auto result = client.Get(
          "/api/v1/runs/" + std::to_string(run_id) + "/events", headers,
          [&](const httplib::Response&) {
            ++connected;
            counted = true;
            return true;
          },
          [&](const char* data, size_t len) {
            int64_t now = MonotonicNs();
            buf.append(data, len);
            size_t at;
            while ((at = buf.find("\n\n")) != std::string::npos) {
              std::string frame = buf.substr(0, at);
              buf.erase(0, at + 2);
              if (frame.rfind("id: ", 0) == 0) {
                int64_t seq = std::stoll(frame.substr(4)) - base_seq;
                if (seq >= 1 && seq <= events) got[static_cast<size_t>(seq)] = now;
              }
              if (frame.find("event: end") != std::string::npos) return false;
            }
            return got[static_cast<size_t>(events)] == 0;
          });
      if (!counted) {
        ++connected;
        std::fprintf(stderr, "subscriber %d: %s\n", s, httplib::to_string(result.error()).c_str());
      }
    });
  }
  while (connected < subscribers) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  int64_t start = MonotonicNs();
  for (int i = 1; i <= events; ++i) {
    sent_at[static_cast<size_t>(i)] = MonotonicNs();
    (void)store.AppendEvents(run_id, {{"log", R"({"stream":"stdout","line":"fan-out"})"}});
    std::this_thread::sleep_for(std::chrono::microseconds(1000));
  }
  for (auto& t : threads) t.join();
  double total_s = static_cast<double>(MonotonicNs() - start) / 1e9;
  std::vector<int64_t> lat;
  int64_t missing = 0;
  for (auto& got : received) {
    for (int i = 1; i <= events; ++i) {
      if (got[static_cast<size_t>(i)] == 0) {
        ++missing;
      } else {
        lat.push_back(got[static_cast<size_t>(i)] - sent_at[static_cast<size_t>(i)]);
      }
    }
  }
  double deliveries = static_cast<double>(lat.size()) / total_s;
  Json j = {{"subscribers", subscribers},
            {"events", events},
            {"deliveries", lat.size()},
            {"missing", missing},
            {"deliveries_per_second", deliveries},
            {"p50_ms", Percentile(lat, 0.5)},
            {"p99_ms", Percentile(lat, 0.99)}};
  std::printf(
      "sse fan-out  %d subscribers x %d events: %.0f deliveries/s, append→delivery "
      "p50 %.2f ms p99 %.2f ms, missing %lld\n",
      subscribers, events, deliveries, j["p50_ms"].get<double>(), j["p99_ms"].get<double>(),
      static_cast<long long>(missing));
  return j;
}

// The peer for the HTTP figures: the same creations straight into the store, one thread, with
// SQLite's synchronous=NORMAL (our default: survives any process crash) and FULL (also survives
// power loss: an fsync per commit).
Json StoreCreationBench(const std::filesystem::path& dir, const std::string& repo_url,
                        bool full_sync, double seconds) {
  auto store = store::OpenSqliteStore(dir / (full_sync ? "full.db" : "normal.db"),
                                      SystemClock::Get(), {.synchronous_full = full_sync});
  if (!store.ok()) return nullptr;
  (void)(*store)->AddRepository("bench", repo_url);
  int64_t n = 0;
  int64_t start = MonotonicNs();
  int64_t end = start + static_cast<int64_t>(seconds * 1e9);
  while (MonotonicNs() < end) {
    if (!(*store)->CreateRun({.repo = "bench", .ref = "main", .recipe = "make test"}).ok()) break;
    ++n;
  }
  double rate = static_cast<double>(n) / (static_cast<double>(MonotonicNs() - start) / 1e9);
  std::printf("create runs  store direct, synchronous=%-6s %8.0f/s\n",
              full_sync ? "FULL" : "NORMAL", rate);
  return {{"synchronous", full_sync ? "FULL" : "NORMAL"}, {"per_second", rate}};
}

int64_t RssKb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

Json IdleRss() {
  testing::TempDir dir;
  testing::ServerProcess server(dir.path() / "data", {"--log-level", "warn"});
  if (!server.Start()) {
    std::printf("idle rss: %s\n", server.error().c_str());
    return nullptr;
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  int64_t idle = RssKb(server.pid());
  // After some traffic the pool grows; once idle again its workers exit.
  {
    httplib::Client c("127.0.0.1", server.port());
    c.set_bearer_token_auth(server.token());
    for (int i = 0; i < 200; ++i) c.Get("/api/v1/runs");
  }
  int64_t after = RssKb(server.pid());
  std::printf("idle serve RSS: %.1f MB at start, %.1f MB after 200 requests\n", idle / 1024.0,
              after / 1024.0);
  return {{"idle_rss_mb", idle / 1024.0}, {"after_requests_rss_mb", after / 1024.0}};
}

int Main(int argc, char** argv) {
  double seconds = 3;
  std::string json_out;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--seconds" && i + 1 < argc) seconds = std::stod(argv[++i]);
    if (a == "--json" && i + 1 < argc) json_out = argv[++i];
  }
  ::signal(SIGPIPE, SIG_IGN);
  log::SetLevel("warn");
  testing::TempDir dir;
  auto repo = dir.path() / "repo";
  testing::MakeGitRepo(repo, {{"README.md", "bench\n"}});
  const config::ServerConfig config;  // the defaults, as with no config file
  auto server = server::Server::Open(
      {.host = "127.0.0.1", .port = 0, .data_dir = dir.path() / "data", .runner_slots = 0}, config);
  if (!server.ok()) {
    std::fprintf(stderr, "open: %s\n", server.status().ToString().c_str());
    return 1;
  }
  if (Status st = (*server)->Start(); !st.ok()) {
    std::fprintf(stderr, "start: %s\n", st.ToString().c_str());
    return 1;
  }
  auto& store = (*server)->store();
  (void)store.AddRepository("bench", repo.string());
  Json report;
  report["machine"] = {{"cores", std::thread::hardware_concurrency()}};
  for (int clients : {1, 8, 64}) {
    report["create"].push_back(
        CreationBench((*server)->port(), (*server)->admin_token(), clients, seconds));
  }
  report["create_store_direct"].push_back(
      StoreCreationBench(dir.path(), repo.string(), false, seconds));
  report["create_store_direct"].push_back(
      StoreCreationBench(dir.path(), repo.string(), true, seconds));
  auto run = store.CreateRun({.repo = "bench", .recipe = "noop"});
  report["append"].push_back(AppendBench(store, run->id, 1, seconds));
  report["append"].push_back(AppendBench(store, run->id, 100, seconds));
  auto fan = store.CreateRun({.repo = "bench", .recipe = "noop"});
  report["fanout"] =
      FanoutBench(store, (*server)->port(), (*server)->admin_token(), fan->id, 100, 500);
  (*server)->Stop();
  report["rss"] = IdleRss();
  if (!json_out.empty()) std::ofstream(json_out) << report.dump(2) << "\n";
  return 0;
}

}  // namespace
}  // namespace nightshift::bench

int main(int argc, char** argv) { return nightshift::bench::Main(argc, argv); }
