// `nightshift policy test`: policies decided offline, as the server would decide them.

#include <iostream>

#include "cli/verbs.h"
#include "core/config_node.h"
#include "core/fs.h"
#include "policy/engine.h"

namespace nightshift::cli {
namespace {

struct PolicyTestArgs {
  std::vector<std::string> files;
  std::string config;
  bool baseline = false;
  std::vector<std::string> requests;
  bool json = false;
};

int Fail(std::string_view message) {
  std::cerr << "nightshift: " << message << '\n';
  return 1;
}

int PolicyTest(const PolicyTestArgs& args) {
  policy::PolicySet set;
  std::vector<std::string> errors;
  if (!args.config.empty()) {
    // The server's own rules: its config's `policy:` section, baseline and files.
    auto text = ReadFile(args.config);
    if (!text.ok()) return Fail(text.status().message());
    ConfigErrors config_errors(args.config);
    const ConfigNode root = ParseYamlConfig(*text, config_errors);
    policy::PolicyConfig config;
    if (config_errors.empty()) {
      const ConfigNode* section = root.IsMapping() ? root.Find("policy") : nullptr;
      ReadPolicyConfig(section != nullptr ? *section : ConfigNode(), config, config_errors);
    }
    for (auto& line : config_errors.Lines()) errors.push_back(std::move(line));
    if (config_errors.empty()) {
      auto loaded = policy::LoadPolicies(config.files, config.baseline);
      if (loaded.ok()) set = std::move(*loaded);
    }
  } else if (args.baseline) {
    set = std::move(*policy::LoadPolicies({}, true));
  }
  std::vector<policy::PolicyCase> cases;
  for (const auto& file : args.files) {
    auto text = ReadFile(file);
    if (!text.ok()) {
      errors.push_back(text.status().message());  // "open FILE: why"
      continue;
    }
    ConfigErrors file_errors(file);
    const ConfigNode root = ParseYamlConfig(*text, file_errors);
    if (file_errors.empty()) set.Add(root, file_errors);
    if (file_errors.empty()) {
      for (auto& c : policy::ReadPolicyCases(root, file_errors)) cases.push_back(std::move(c));
    }
    for (auto& line : file_errors.Lines()) errors.push_back(std::move(line));
  }
  for (size_t i = 0; i < args.requests.size(); ++i) {
    auto json = ParseJson(args.requests[i]);
    auto request =
        json.ok() ? policy::RequestFromJson(*json) : StatusOr<policy::Request>(json.status());
    if (!request.ok()) {
      errors.push_back(StrCat("--request ", i + 1, ": ", request.status().message()));
      continue;
    }
    cases.push_back({.name = StrCat("--request ", i + 1), .request = std::move(*request)});
  }
  if (!errors.empty()) {
    for (const auto& line : errors) std::cerr << "nightshift: " << line << '\n';
    return 1;
  }
  if (cases.empty()) return Fail("nothing to decide: no cases in the files and no --request");
  int failed = 0;
  for (const auto& test : cases) {
    const policy::Decision decision = set.Decide(test.request);
    const auto problem = policy::CheckCase(test, decision);
    if (problem) ++failed;
    if (args.json) {
      Json line = policy::DecisionToJson(decision);
      line["case"] = test.name;
      if (!test.where.empty()) line["where"] = test.where;
      line["request"] = policy::RequestToJson(test.request);
      if (problem) line["failure"] = *problem;
      std::cout << line.dump() << '\n';
      continue;
    }
    const bool tested = test.want_allowed || test.want_rules;
    std::cout << (problem  ? "FAIL "
                  : tested ? "ok   "
                           : "     ")
              << test.name << ": " << (decision.allowed ? "allow" : "deny");
    if (!decision.rules.empty()) {
      std::cout << " by";
      for (const auto& id : decision.rules) std::cout << ' ' << id;
    }
    if (decision.audit) std::cout << " (audited)";
    std::cout << " — " << decision.reason << '\n';
    if (problem) std::cout << "     " << test.where << ": " << *problem << '\n';
    for (const auto& error : decision.errors) std::cout << "     error in " << error << '\n';
  }
  if (!args.json) {
    std::cout << cases.size() << (cases.size() == 1 ? " case" : " cases") << ", " << failed
              << " failed\n";
  }
  return failed == 0 ? 0 : 1;
}

}  // namespace

void AddPolicyVerbs(CommandLine& cli) {
  CLI::App* policy = cli.app().add_subcommand("policy", "the policy engine (docs/governance.md)");
  policy->require_subcommand(1);
  auto& args = cli.Own<PolicyTestArgs>();
  CLI::App* test = policy->add_subcommand(
      "test",
      "decide requests offline: each FILE's rules together, then each FILE's cases (and each "
      "--request); print every decision and the rules that made it; exit 1 when a case does "
      "not decide as it wants");
  test->add_option("FILE", args.files, "policy files (YAML: rules:, cases:)");
  test->add_option("--config", args.config,
                   "also the rules a server with this config decides with (its policy: section)")
      ->type_name("FILE");
  test->add_flag("--baseline", args.baseline,
                 "also the baseline rules (what a server starts with)");
  test->add_option("--request", args.requests,
                   "a request as JSON: {\"principal\": \"agent:NAME\", \"action\": \"exec\", "
                   "\"resource\": {…}, \"context\": {…}}")
      ->type_name("JSON");
  test->add_flag("--json", args.json, "one JSON object per decision");
  cli.OnLocal(test, [&args] { return PolicyTest(args); });
}

}  // namespace nightshift::cli
