// Webhook ingest (issue 14): signed GitHub push deliveries posted by 1, 8 and 32 concurrent
// keep-alive senders to POST /hooks/github of a server in this process (no runner, so runs stay
// queued). Figures: deliveries per second answered 202 (each stored durably first), p50/p99 of
// the request, and p50/p99 from sending a delivery to its run being queued by the trigger
// service (the run's created time, on the same clock).
// Usage: webhook_bench [--seconds S] [--json FILE] [--paced-only]

#include <httplib.h>
#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "server/server.h"
#include "tests/support/test_support.h"

namespace nightshift::bench {
namespace {

constexpr char kSecret[] = "bench-secret";

double Percentile(std::vector<int64_t> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return static_cast<double>(v[i]);
}

std::string Sign(const std::string& body) {
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_state state;
  crypto_auth_hmacsha256_init(&state, reinterpret_cast<const unsigned char*>(kSecret),
                              sizeof kSecret - 1);
  crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(body.data()),
                                body.size());
  crypto_auth_hmacsha256_final(&state, mac);
  char hex[2 * sizeof mac + 1];
  sodium_bin2hex(hex, sizeof hex, mac, sizeof mac);
  return StrCat("sha256=", hex);
}

struct Sent {
  int64_t event_id;
  int64_t sent_ms;  // wall clock
};

// `rate`: deliveries per second offered by all senders together, paced; 0: as fast as they go.
Json IngestBench(server::Server& server, int senders, double seconds, int round, double rate) {
  std::vector<std::vector<int64_t>> request_us(static_cast<size_t>(senders));
  std::vector<std::vector<Sent>> sent(static_cast<size_t>(senders));
  std::atomic<int64_t> errors{0};
  std::atomic<bool> go{false}, stop{false};
  std::vector<std::thread> threads;
  for (int c = 0; c < senders; ++c) {
    threads.emplace_back([&, c] {
      httplib::Client client("127.0.0.1", server.port());
      client.set_keep_alive(true);
      client.set_tcp_nodelay(true);
      while (!go) std::this_thread::yield();
      const int64_t begin = MonotonicNs();
      const double interval_ns = rate > 0 ? 1e9 * senders / rate : 0;
      for (int64_t n = 0; !stop; ++n) {
        if (interval_ns > 0) {
          const int64_t due = begin + static_cast<int64_t>(interval_ns * static_cast<double>(n)) +
                              static_cast<int64_t>(interval_ns * c / senders);
          while (!stop && MonotonicNs() < due) {
            std::this_thread::sleep_for(std::chrono::nanoseconds(due - MonotonicNs()));
          }
          if (stop) break;
        }
        const std::string id = StrCat(round, "-", c, "-", n);
        // A push as GitHub sends it, in short: each to its own commit, so each is a run.
        const std::string body = Json{
            {"ref", "refs/heads/main"},
            {"before", "0000000000000000000000000000000000000000"},
            {"after", id},
            {"repository",
             {{"full_name", "acme/bench"}, {"clone_url", "https://github.com/acme/bench.git"}}},
            {"pusher", {{"name", "mona"}}},
            {"sender",
             {{"login", "mona"}}}}.dump();
        httplib::Headers headers{{"X-GitHub-Event", "push"},
                                 {"X-GitHub-Delivery", id},
                                 {"X-Hub-Signature-256", Sign(body)}};
        const int64_t sent_ms = SystemClock::Get().NowMs();
        const int64_t t0 = MonotonicNs();
        auto r = client.Post("/hooks/github", headers, body, "application/json");
        const int64_t t1 = MonotonicNs();
        if (!r || r->status != 202) {
          ++errors;
          continue;
        }
        request_us[static_cast<size_t>(c)].push_back((t1 - t0) / 1000);
        sent[static_cast<size_t>(c)].push_back(
            {Json::parse(r->body)["event_id"].get<int64_t>(), sent_ms});
      }
    });
  }
  const int64_t start = MonotonicNs();
  go = true;
  std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)));
  stop = true;
  for (auto& t : threads) t.join();
  const double elapsed = static_cast<double>(MonotonicNs() - start) / 1e9;
  // Wait until the trigger service has processed every delivery.
  store::Store& store = server.store();
  for (int i = 0; i < 6000; ++i) {
    auto pending = store.ListIncoming({.state = store::IncomingState::kPending, .limit = 1});
    if (pending.ok() && pending->empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::vector<int64_t> all_request;
  std::vector<int64_t> to_queued_ms;
  int64_t started = 0;
  for (int c = 0; c < senders; ++c) {
    all_request.insert(all_request.end(), request_us[static_cast<size_t>(c)].begin(),
                       request_us[static_cast<size_t>(c)].end());
    for (const Sent& s : sent[static_cast<size_t>(c)]) {
      auto event = store.GetIncoming(s.event_id);
      if (!event.ok()) continue;
      Json outcome = Json::parse(event->outcome, nullptr, false);
      if (!outcome.is_array() || outcome.empty() || !outcome[0].contains("run_id")) continue;
      auto run = store.GetRun(outcome[0]["run_id"].get<int64_t>());
      if (!run.ok()) continue;
      ++started;
      to_queued_ms.push_back(run->created_ms - s.sent_ms);
    }
  }
  const double per_second = static_cast<double>(all_request.size()) / elapsed;
  Json out{{"senders", senders},
           {"offered_per_second", rate},
           {"deliveries", all_request.size()},
           {"deliveries_per_second", per_second},
           {"request_p50_ms", Percentile(all_request, 0.5) / 1000},
           {"request_p99_ms", Percentile(all_request, 0.99) / 1000},
           {"runs_queued", started},
           {"to_queued_p50_ms", Percentile(to_queued_ms, 0.5)},
           {"to_queued_p99_ms", Percentile(to_queued_ms, 0.99)},
           {"errors", errors.load()}};
  std::printf(
      "webhook ingest, %2d senders, %s: %7.0f deliveries/s stored (%zu), request p50 %.2f ms "
      "p99 %.2f ms; to run queued p50 %.0f ms p99 %.0f ms (%lld runs), errors %lld\n",
      senders,
      rate > 0 ? StrCat("paced at ", static_cast<int64_t>(rate), "/s").c_str() : "flat out",
      per_second, all_request.size(), Percentile(all_request, 0.5) / 1000,
      Percentile(all_request, 0.99) / 1000, Percentile(to_queued_ms, 0.5),
      Percentile(to_queued_ms, 0.99), static_cast<long long>(started),
      static_cast<long long>(errors.load()));
  std::fflush(stdout);
  return out;
}

}  // namespace
}  // namespace nightshift::bench

int main(int argc, char** argv) {
  using namespace nightshift;
  double seconds = 3;
  std::string json_path;
  bool paced_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--paced-only") paced_only = true;
    if (arg == "--seconds" && i + 1 < argc) seconds = std::atof(argv[++i]);
    if (arg == "--json" && i + 1 < argc) json_path = argv[++i];
  }
  log::SetLevel("warn");
  testing::TempDir dir;
  ConfigErrors errors("bench.yml");
  config::ServerConfig config =
      config::ParseServerConfig(R"(
webhooks:
  github: {secret_env: BENCH_SECRET}
agents:
  on-push:
    recipe: "make test COMMIT={{event.sha}}"
    repositories: ["acme/*"]
    triggers: [{github: {event: push}}]
    concurrency: {key: "{{event.sha}}"}
)",
                                {{"BENCH_SECRET", "bench-secret"}}, errors);
  if (!errors.empty()) {
    std::fprintf(stderr, "%s\n", errors.Lines().front().c_str());
    return 1;
  }
  auto server = server::Server::Open(
      {.port = 0, .data_dir = dir.path() / "data", .runner_slots = 0, .sandbox = "off"},
      std::move(config));
  if (!server.ok() || !(*server)->Start().ok()) {
    std::fprintf(stderr, "cannot start the server\n");
    return 1;
  }
  (void)(*server)->store().AddRepository("bench", "https://github.com/acme/bench.git");
  Json results = Json::array();
  int round = 0;
  // Flat out: how many deliveries per second the endpoint stores, and its latency.
  for (int senders : {1, 8, 32}) {
    if (paced_only) break;
    results.push_back(bench::IngestBench(**server, senders, seconds, round++, 0));
  }
  // At the goal's rate: how long from a delivery to its run, while they keep coming.
  for (int senders : {8, 32}) {
    results.push_back(bench::IngestBench(**server, senders, seconds, round++, 2000));
  }
  (*server)->Stop();
  if (!json_path.empty()) std::ofstream(json_path) << results.dump(2) << '\n';
  return 0;
}
