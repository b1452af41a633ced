// Agent runtime benchmark (issue 5): what the built-in agent itself costs, model latency
// excluded. A scripted model server on loopback answers at once with 20 tool calls (read_file,
// list_files, search, run_command, edit_file in turn) and then finish; the tools run in a real
// sandbox over a small workspace. Per run we time, with ns clocks:
//  - the whole loop; the model calls (HTTP to loopback included) and the tools (each a sandboxed
//    command) separately;
//  - so per step: wall − model = the runtime's overhead with tool execution, and
//    wall − model − tools = the loop's own bookkeeping (encoding, events, redaction, bounding).
// Usage: agent_bench [--runs N] [--json FILE]

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "agent/loop.h"
#include "agent/process_sandbox.h"
#include "bench/stats.h"
#include "core/clock.h"
#include "core/json.h"
#include "sandbox/pool.h"
#include "tests/support/model_server.h"
#include "tests/support/test_support.h"

namespace nightshift::bench {
namespace {

constexpr int kSteps = 20;

class TimedSandbox final : public agent::Sandbox {
 public:
  explicit TimedSandbox(sandbox::ProcessSpec base) : inner_(std::move(base)) {}
  StatusOr<Result> Run(const std::string& script, const std::map<std::string, std::string>& env,
                       const std::string& stdin_data, int64_t timeout_ms,
                       const CancelToken* cancel) override {
    const int64_t t0 = MonotonicNs();
    auto r = inner_.Run(script, env, stdin_data, timeout_ms, cancel);
    ns += MonotonicNs() - t0;
    return r;
  }
  int64_t ns = 0;

 private:
  agent::ProcessSandbox inner_;
};

class TimedClient final : public agent::ModelClient {
 public:
  explicit TimedClient(std::unique_ptr<agent::ModelClient> inner) : inner_(std::move(inner)) {}
  StatusOr<agent::ModelResponse> Complete(const agent::ModelRequest& request,
                                          const CancelToken* cancel) override {
    const int64_t t0 = MonotonicNs();
    auto r = inner_->Complete(request, cancel);
    ns += MonotonicNs() - t0;
    return r;
  }
  int64_t ns = 0;

 private:
  std::unique_ptr<agent::ModelClient> inner_;
};

class NullSink final : public agent::EventSink {
 public:
  void Emit(const api::EventRecord& event) override { bytes += event.Serialize().size(); }
  size_t bytes = 0;
};

Json Scenario() {
  Json steps = Json::array();
  const Json calls[] = {
      {{"name", "read_file"}, {"arguments", {{"path", "src/main.c"}}}},
      {{"name", "list_files"}, {"arguments", Json::object()}},
      {{"name", "search"}, {"arguments", {{"pattern", "main"}}}},
      {{"name", "run_command"}, {"arguments", {{"command", "wc -l src/main.c"}}}},
      {{"name", "edit_file"},
       {"arguments", {{"path", "notes.txt"}, {"old_string", "x"}, {"new_string", "x"}}}},
  };
  for (int i = 0; i < kSteps; ++i) {
    steps.push_back({{"respond", {{"tool_calls", Json::array({calls[i % 5]})}}}});
  }
  steps.push_back({{"respond",
                    {{"tool_calls", Json::array({{{"name", "finish"},
                                                  {"arguments", {{"summary", "done"}}}}})}}}});
  return {{"steps", steps}};
}

int Main(int argc, char** argv) {
  int runs = 10;
  std::string json_out;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) runs = std::stoi(argv[++i]);
    if (a == "--json" && i + 1 < argc) json_out = argv[++i];
  }
  if (::geteuid() != 0) {
    std::fprintf(stderr, "agent_bench: needs root (the tools run in the sandbox)\n");
    return 1;
  }
  testing::TempDir dir;
  std::filesystem::create_directories(dir.path() / "src");
  std::ofstream(dir.path() / "src/main.c") << "int main(void) { return 0; }\n";
  std::ofstream(dir.path() / "notes.txt") << "x\n";
  auto pool = sandbox::SandboxPool::Start(sandbox::SandboxSpec{.workspace = dir.path()}, 2);
  if (!pool.ok()) {
    std::fprintf(stderr, "agent_bench: %s\n", pool.status().ToString().c_str());
    return 1;
  }
  Json report;
  for (const std::string provider : {"openai", "anthropic"}) {
    std::vector<double> wall, model, tools, own, per_step_runtime, per_step_own;
    for (int r = 0; r < runs; ++r) {
      testing::ModelServer server(Scenario());
      agent::ModelConfig config{
          .name = "bench",
          .provider = provider,
          .base_url = provider == "openai" ? server.openai_base_url() : server.anthropic_base_url(),
          .model = "scripted",
          .api_key = "bench-key-123456"};
      TimedClient client(std::move(*agent::MakeModelClient(config)));
      sandbox::ProcessSpec base{.env = {{"PATH", "/usr/bin:/bin"}, {"HOME", "/tmp"}}};
      base.sandbox = sandbox::SandboxSpec{.workspace = dir.path()};
      base.pool = pool->get();
      TimedSandbox sandbox(base);
      NullSink sink;
      const int64_t t0 = MonotonicNs();
      agent::LoopResult result = agent::RunAgentLoop(
          client, agent::LoopInput{.task = "bench", .model = config}, sandbox, sink, nullptr);
      const double total = static_cast<double>(MonotonicNs() - t0) / 1e6;
      if (result.end != agent::LoopResult::End::kFinished || !server.errors().empty()) {
        std::fprintf(stderr, "run failed: %s %s\n", result.reason.c_str(),
                     server.errors().empty() ? "" : server.errors().front().c_str());
        return 1;
      }
      const double m = static_cast<double>(client.ns) / 1e6;
      const double t = static_cast<double>(sandbox.ns) / 1e6;
      wall.push_back(total);
      model.push_back(m);
      tools.push_back(t);
      own.push_back(total - m - t);
      per_step_runtime.push_back((total - m) / (kSteps + 1));
      per_step_own.push_back((total - m - t) / (kSteps + 1));
    }
    std::printf("%s: %d steps per run, median of %d runs\n", provider.c_str(), kSteps + 1, runs);
    std::printf(
        "  run wall %.1f ms: model calls (loopback HTTP) %.1f ms, tools in the sandbox "
        "%.1f ms, the loop itself %.1f ms\n",
        Median(wall), Median(model), Median(tools), Median(own));
    std::printf("  per step, model latency excluded: %.2f ms (of which the loop itself %.3f ms)\n",
                Median(per_step_runtime), Median(per_step_own));
    report[provider] = {{"run_wall_ms", Median(wall)},
                        {"model_ms", Median(model)},
                        {"tools_ms", Median(tools)},
                        {"loop_ms", Median(own)},
                        {"per_step_ms_excluding_model", Median(per_step_runtime)},
                        {"per_step_loop_ms", Median(per_step_own)}};
  }
  if (!json_out.empty()) std::ofstream(json_out) << report.dump(2) << "\n";
  return 0;
}

}  // namespace
}  // namespace nightshift::bench

int main(int argc, char** argv) { return nightshift::bench::Main(argc, argv); }
