// The policy engine (issue 15): one decision's latency, p50 and p99, at 10 and 1,000 rules.
// Two shapes of 1,000: "spread", rules over every action, principal kind and a hundred
// repositories, as a platform team's policies would be; and "one bucket", every rule on the
// action and principal kind of the request (exec by an agent), so that each decision evaluates
// all 1,000 — principal, resource and a condition with a `like` over the command line.
// Usage: policy_bench [--decisions N]

#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "bench/stats.h"
#include "policy/engine.h"

namespace {

using namespace nightshift;

std::string Rules(int n, bool one_bucket, std::mt19937& random) {
  auto pick = [&](int k) { return static_cast<int>(random() % static_cast<unsigned>(k)); };
  std::string yaml = "rules:\n";
  const char* effects[] = {"permit", "forbid", "audit"};
  for (int i = 0; i < n; ++i) {
    yaml += StrCat("  - id: rule-", i, "\n    effect: ",
                   effects[i % 10 == 0    ? 1
                           : pick(3) == 2 ? 2
                                          : 0],
                   "\n");
    if (one_bucket) {
      yaml += StrCat("    principal: \"agent:team-", pick(50), "/*\"\n    action: exec\n");
    } else {
      const char* kinds[] = {"agent", "user", "trigger", "schedule"};
      yaml += StrCat("    principal: ", kinds[pick(4)], "\n    action: ",
                     policy::kActions[static_cast<size_t>(pick(policy::kActions.size()))], "\n");
    }
    yaml +=
        StrCat("    resource: {repository: \"acme/svc-", pick(100), pick(2) ? "*" : "", "\"}\n");
    switch (pick(4)) {
      case 0:
        yaml += StrCat("    when: 'context.command like \"*tool-", pick(1000), " *\"'\n");
        break;
      case 1:
        yaml += StrCat("    when: 'context.diff_lines > ", pick(2000),
                       " || any context.paths glob \"infra/**\"'\n");
        break;
      case 2:
        yaml += "    when: 'context.hour >= 8 && context.hour < 18'\n";
        break;
      default:
        break;
    }
  }
  return yaml;
}

std::vector<policy::Request> Requests(int n, std::mt19937& random) {
  std::vector<policy::Request> out;
  for (int i = 0; i < n; ++i) {
    policy::Request r{
        .principal = {.kind = "agent", .name = StrCat("team-", random() % 50, "/fixer")},
        .action = "exec",
        .resource = {{"repository", StrCat("acme/svc-", random() % 100)}}};
    r.context["command"] =
        StrCat("cd src && make test -j2 TOOL=tool-", random() % 1000, " && ./scripts/check --all");
    r.context["diff_lines"] = static_cast<int64_t>(random() % 3000);
    r.context["paths"] = policy::Value(std::vector<std::string>{"src/a.cc", "docs/b.md"});
    r.context["hour"] = static_cast<int64_t>(random() % 24);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int decisions = 200'000;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string_view(argv[i]) == "--decisions") decisions = std::atoi(argv[i + 1]);
  }
  std::mt19937 random(15);
  const auto requests = Requests(1000, random);
  struct Shape {
    const char* name;
    int rules;
    bool one_bucket;
  };
  for (const Shape& shape : {Shape{"spread", 10, false}, Shape{"spread", 1000, false},
                             Shape{"one bucket", 10, true}, Shape{"one bucket", 1000, true}}) {
    ConfigErrors errors("bench.yml");
    const ConfigNode root = ParseYamlConfig(Rules(shape.rules, shape.one_bucket, random), errors);
    policy::PolicySet set;
    set.Add(root, errors);
    if (!errors.empty()) {
      std::fprintf(stderr, "%s\n", errors.Lines().front().c_str());
      return 1;
    }
    std::vector<double> us;
    us.reserve(static_cast<size_t>(decisions));
    int denied = 0;
    for (int i = 0; i < decisions; ++i) {
      const auto& request = requests[static_cast<size_t>(i) % requests.size()];
      const auto start = std::chrono::steady_clock::now();
      const policy::Decision d = set.Decide(request);
      const auto end = std::chrono::steady_clock::now();
      us.push_back(std::chrono::duration<double, std::micro>(end - start).count());
      denied += d.allowed ? 0 : 1;
    }
    std::printf(
        "policy decision, %-10s %4d rules: p50 %6.2f us  p99 %6.2f us  (%d decisions, "
        "%.0f%% denied)\n",
        shape.name, shape.rules, bench::Median(us), bench::Percentile(us, 0.99), decisions,
        100.0 * denied / decisions);
  }
  return 0;
}
