#include "policy/engine.h"

#include <filesystem>
#include <random>

#include "core/fs.h"
#include "gtest/gtest.h"
#include "tests/support/test_support.h"

namespace nightshift::policy {
namespace {

namespace fs = std::filesystem;

PolicySet Parse(std::string_view yaml, std::vector<std::string>* lines = nullptr) {
  ConfigErrors errors("policy.yml");
  const ConfigNode root = ParseYamlConfig(yaml, errors);
  PolicySet set;
  set.Add(root, errors);
  if (lines != nullptr) {
    *lines = errors.Lines();
  } else {
    EXPECT_TRUE(errors.empty()) << errors.Lines().front();
  }
  return set;
}

// Every file under testdata/: its rules (the baseline's for baseline.yml) and its cases.
TEST(PolicyFixtures, EveryCaseDecidesAsWritten) {
  int files = 0, cases = 0;
  for (const auto& entry : fs::directory_iterator(NIGHTSHIFT_POLICY_FIXTURES)) {
    if (entry.path().extension() != ".yml") continue;
    ++files;
    SCOPED_TRACE(entry.path().string());
    auto text = ReadFile(entry.path());
    ASSERT_TRUE(text.ok());
    ConfigErrors errors(entry.path().filename().string());
    const ConfigNode root = ParseYamlConfig(*text, errors);
    auto set = entry.path().filename() == "baseline.yml" ? LoadPolicies({}, true)
                                                         : StatusOr<PolicySet>(PolicySet{});
    ASSERT_TRUE(set.ok());
    set->Add(root, errors);
    const auto tests = ReadPolicyCases(root, errors);
    ASSERT_TRUE(errors.empty()) << errors.Lines().front();
    ASSERT_FALSE(tests.empty());
    for (const auto& test : tests) {
      ++cases;
      const Decision decision = set->Decide(test.request);
      const auto problem = CheckCase(test, decision);
      EXPECT_FALSE(problem.has_value())
          << test.where << " " << test.name << ": " << *problem << " (" << decision.reason << ")";
    }
  }
  EXPECT_GE(files, 4);
  EXPECT_GE(cases, 25);
}

TEST(PolicyEngine, ReasonsNameTheRuleAndItsDescription) {
  const PolicySet set = Parse(R"(
rules:
  - id: no-main
    effect: forbid
    action: repo.push
    resource: {branch: main}
    description: agents never push to main
  - id: audit-exec
    effect: audit
    principal: agent
    action: exec
)");
  Request push{.principal = {.kind = "agent", .name = "fixer"},
               .action = "repo.push",
               .resource = {{"branch", "main"}}};
  Decision d = set.Decide(push);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.reason, "forbidden by rule 'no-main': agents never push to main");
  push.resource["branch"] = "nightshift/x";
  d = set.Decide(push);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.reason, "no rule permits agent 'fixer' to repo.push");
  d = set.Decide({.principal = {.kind = "agent", .name = "fixer"}, .action = "exec"});
  EXPECT_TRUE(d.allowed);
  EXPECT_TRUE(d.audit);
  EXPECT_EQ(d.rules, std::vector<std::string>{"audit-exec"});
  d = set.Decide({.principal = {.kind = "agent"}, .action = "no.such"});
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.reason, "unknown action 'no.such'");
}

TEST(PolicyEngine, ErrorsNameTheFileLineAndWhatIsWrong) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"rules:\n  - id: a\n    effect: allow\n    action: exec\n",
       "policy.yml:3:13: rules[0].effect must be permit, forbid or audit"},
      {"rules:\n  - id: a\n    effect: permit\n    action: exec.run\n",
       "unknown action 'exec.run'"},
      {"rules:\n  - effect: permit\n    action: exec\n", "rules[0].id is required"},
      {"rules:\n  - id: a\n    effect: permit\n    action: exec\n  - id: a\n    effect: forbid\n"
       "    action: exec\n",
       "rule id 'a' is used twice"},
      {"rules:\n  - id: a\n    effect: permit\n    action: exec\n    when: 'context.x >'\n",
       "policy.yml:5:11: rules[0].when: expected a value at column 12 of the condition"},
      {"rules:\n  - id: a\n    effect: permit\n    action: exec\n    when: 'context.x == \"a'\n",
       "unterminated string"},
      {"rules:\n  - id: a\n    effect: permit\n    action: exec\n    when: 'contxt.x == 1'\n",
       "not 'contxt.x'"},
      {"rules:\n  - id: a\n    effect: permit\n    action: exec\n    when: 'context.x like 3'\n",
       "'like' needs a string pattern"},
      {"rules:\n  - id: a\n    effect: permit\n    action: exec\n    principal: 'agent:'\n",
       "must be KIND or KIND:NAME"},
      {"rules:\n  - id: a\n    effect: permit\n    action: exec\n    colour: red\n",
       "unknown key 'colour'"},
      {"rules: {}\n", "rules must be a list of rules"},
      {"rules:\n  - id: a\n    effect: permit\n    action: exec\n    when: '" +
           std::string(200, '(') + "true" + std::string(200, ')') + "'\n",
       "nested too deeply"},
  };
  for (const auto& [yaml, want] : cases) {
    std::vector<std::string> lines;
    Parse(yaml, &lines);
    ASSERT_FALSE(lines.empty()) << yaml;
    EXPECT_NE(lines.front().find(want), std::string::npos) << lines.front();
  }
}

TEST(PolicyEngine, RequestsFromJsonRefuseWhatTheyCannotCarry) {
  EXPECT_FALSE(RequestFromJson(Json::array()).ok());
  EXPECT_FALSE(RequestFromJson(Json{{"action", "exec"}}).ok());
  EXPECT_FALSE(RequestFromJson(Json{{"principal", "agent:x"}, {"action", "fly"}}).ok());
  EXPECT_FALSE(
      RequestFromJson(Json{{"principal", "agent:x"}, {"action", "exec"}, {"context", 3}}).ok());
  Json deep = 1;
  for (int i = 0; i < 100; ++i) deep = Json::array({deep});
  EXPECT_FALSE(RequestFromJson(
                   Json{{"principal", "agent:x"}, {"action", "exec"}, {"context", {{"x", deep}}}})
                   .ok());
  auto r = RequestFromJson(Json{{"principal", {{"kind", "user"}, {"name", "bob"}, {"team", "sec"}}},
                                {"action", "cr.approve"},
                                {"resource", {{"labels", {"a", "b"}}}},
                                {"context", {{"hour", 9}, {"spend", 1.5}}}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->principal.Describe(), "user:bob");
  EXPECT_EQ(r->principal.attributes.at("team"), Value("sec"));
  EXPECT_EQ(r->context.at("hour"), Value(9));
  EXPECT_EQ(RequestToJson(*r)["resource"]["labels"], Json({"a", "b"}));
}

// ---- Properties --------------------------------------------------------------------------

struct Generator {
  std::mt19937 random;
  explicit Generator(unsigned seed) : random(seed) {}

  size_t Pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(random); }
  template <typename T>
  const T& Of(const std::vector<T>& from) {
    return from[Pick(from.size())];
  }

  const std::vector<std::string> kinds = {"agent", "user", "trigger", "*"};
  const std::vector<std::string> names = {"fixer", "deps", "alice", "a*", "*"};
  const std::vector<std::string> repos = {"acme/api", "acme/web", "acme/*", "other/x"};
  const std::vector<std::string> conditions = {
      "context.n > 3",
      "context.n <= 10 && context.s like \"a*\"",
      "any context.paths glob \"src/**\"",
      "all context.paths glob \"docs/**\"",
      "context has n || resource.repository == \"acme/api\"",
      "!(context.s contains \"x\")",
      "context.missing == 1",
      "context.n in [1, 2, 3]",
      "context.s < 3",  // a type error
      "true",
      "false"};

  std::string Rule(int id, const char* effect) {
    std::string out = StrCat("  - id: r", id, "\n    effect: ", effect, "\n");
    if (Pick(3) != 0) {
      const std::string& kind = Of(kinds);
      out += StrCat("    principal: \"", kind,
                    kind == "*" || Pick(2) == 0 ? "" : StrCat(":", Of(names)), "\"\n");
    }
    out += StrCat("    action: ", Pick(4) == 0 ? "\"*\"" : std::string(kActions[Pick(3)]), "\n");
    if (Pick(2) == 0) out += StrCat("    resource: {repository: \"", Of(repos), "\"}\n");
    if (Pick(2) == 0) out += StrCat("    when: '", Of(conditions), "'\n");
    return out;
  }

  Request Random() {
    Request r;
    r.principal.kind = std::vector<std::string>{"agent", "user", "trigger"}[Pick(3)];
    r.principal.name = std::vector<std::string>{"fixer", "deps", "alice", "ab"}[Pick(4)];
    r.action = std::string(kActions[Pick(3)]);
    if (Pick(4) != 0)
      r.resource["repository"] =
          std::vector<std::string>{"acme/api", "acme/web", "other/x"}[Pick(3)];
    if (Pick(4) != 0) r.context["n"] = static_cast<int64_t>(Pick(12));
    if (Pick(4) != 0) r.context["s"] = std::vector<std::string>{"abc", "xyz", "a"}[Pick(3)];
    if (Pick(4) != 0) {
      const std::vector<std::vector<std::string>> paths = {
          {}, {"src/a.cc"}, {"docs/x.md"}, {"docs/a.md", "src/b"}, {"docs/a.md", "docs/c"}};
      r.context["paths"] = Value(Of(paths));
    }
    return r;
  }
};

// Whatever else a set holds, adding a forbid that applies to a request denies it, and names the
// forbid among the rules that decided.
TEST(PolicyProperties, AMatchingForbidAlwaysWins) {
  Generator g(20261207);
  for (int round = 0; round < 400; ++round) {
    std::string yaml = "rules:\n";
    const int n = 1 + static_cast<int>(g.Pick(12));
    const size_t forbid_at = g.Pick(static_cast<size_t>(n) + 1);
    const Request request = g.Random();
    for (int i = 0; i <= n; ++i) {
      if (static_cast<size_t>(i) == forbid_at) {
        // Written to apply to exactly this request, by one of several shapes.
        std::string forbid =
            StrCat("  - id: the-forbid\n    effect: forbid\n    action: ", request.action, "\n");
        switch (g.Pick(3)) {
          case 0:
            forbid += StrCat("    principal: \"", request.principal.Describe(), "\"\n");
            break;
          case 1:
            forbid += StrCat("    principal: \"", request.principal.kind, ":*\"\n",
                             "    when: 'principal.name == \"", request.principal.name, "\"'\n");
            break;
          default:
            forbid += "    when: 'true || context.missing'\n";
            break;
        }
        yaml += forbid;
      }
      if (i < n)
        yaml += g.Rule(i, std::vector<const char*>{"permit", "forbid", "audit"}[g.Pick(3)]);
    }
    const PolicySet set = Parse(yaml);
    const Decision d = set.Decide(request);
    ASSERT_FALSE(d.allowed) << yaml << RequestToJson(request).dump();
    ASSERT_NE(std::find(d.rules.begin(), d.rules.end(), "the-forbid"), d.rules.end()) << yaml;
  }
}

// Without forbids, an agent is allowed exactly when some permit or audit rule applies, and the
// decision does not depend on the rules' order.
TEST(PolicyProperties, PermitsAreOrderFreeAndAgentsDefaultToDeny) {
  Generator g(7);
  for (int round = 0; round < 300; ++round) {
    std::vector<std::string> rules;
    const int n = static_cast<int>(g.Pick(10));
    for (int i = 0; i < n; ++i) rules.push_back(g.Rule(i, g.Pick(2) ? "permit" : "audit"));
    const Request request = g.Random();
    std::string forward = "rules:\n", backward = "rules:\n";
    for (const auto& r : rules) forward += r;
    for (auto it = rules.rbegin(); it != rules.rend(); ++it) backward += *it;
    const Decision a = Parse(n ? forward : "rules: []\n").Decide(request);
    const Decision b = Parse(n ? backward : "rules: []\n").Decide(request);
    ASSERT_EQ(a.allowed, b.allowed) << forward;
    auto ra = a.rules, rb = b.rules;
    std::sort(ra.begin(), ra.end());
    std::sort(rb.begin(), rb.end());
    ASSERT_EQ(ra, rb);
    if (request.principal.kind == "agent") {
      ASSERT_EQ(a.allowed, !a.rules.empty()) << forward;
    } else {
      ASSERT_TRUE(a.allowed);
    }
  }
}

// Conditions as a hostile or careless author might write them: random bytes and random token
// soups are refused with an error or parsed, never crash; what parses evaluates without crashing.
TEST(PolicyFuzz, ConditionsNeverCrashTheParserOrTheEvaluator) {
  Generator g(99);
  const std::vector<std::string> tokens = {"(",
                                           ")",
                                           "[",
                                           "]",
                                           ",",
                                           "!",
                                           "&&",
                                           "||",
                                           "==",
                                           "!=",
                                           "<",
                                           "<=",
                                           ">",
                                           ">=",
                                           "like",
                                           "glob",
                                           "in",
                                           "contains",
                                           "has",
                                           "any",
                                           "all",
                                           "true",
                                           "false",
                                           "null",
                                           "action",
                                           "principal.kind",
                                           "principal.name",
                                           "principal.team",
                                           "resource.repository",
                                           "context.n",
                                           "context.s",
                                           "context.paths",
                                           "context",
                                           "\"a*\"",
                                           "\"src/**\"",
                                           "\"\\*\"",
                                           "1",
                                           "-2",
                                           "3.5",
                                           "\"",
                                           "9999999999999999999999",
                                           " "};
  int parsed = 0;
  for (int round = 0; round < 4000; ++round) {
    std::string condition;
    if (round % 4 == 0) {
      for (size_t n = g.Pick(40); n > 0; --n) condition += static_cast<char>(g.Pick(256));
    } else {
      for (size_t n = 1 + g.Pick(12); n > 0; --n) condition += g.Of(tokens) + " ";
    }
    std::string quoted;
    for (char c : condition) {
      if (c == '\'') {
        quoted += "''";
      } else if (c == '\n' || c == '\r' || c == 0) {
        quoted += ' ';
      } else {
        quoted += c;
      }
    }
    const std::string yaml =
        StrCat("rules:\n  - id: f\n    effect: ", round % 2 ? "forbid" : "permit",
               "\n    action: \"*\"\n    when: '", quoted, "'\n");
    ConfigErrors errors("fuzz.yml");
    const ConfigNode root = ParseYamlConfig(yaml, errors);
    PolicySet set;
    if (errors.empty()) set.Add(root, errors);
    if (!errors.empty() || set.size() == 0) continue;
    ++parsed;
    for (int i = 0; i < 5; ++i) {
      const Decision d = set.Decide(g.Random());
      if (round % 2 == 1 && !d.errors.empty()) {
        ASSERT_FALSE(d.allowed);
      }
    }
  }
  EXPECT_GT(parsed, 100);
}

TEST(PolicyConfig, FilesRelativeToTheConfigAndTheirErrors) {
  testing::TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir.path() / "good.yml",
                              "rules:\n  - id: x\n    effect: forbid\n    action: exec\n")
                  .ok());
  ASSERT_TRUE(
      WriteFileAtomic(dir.path() / "bad.yml", "rules:\n  - id: y\n    effect: maybe\n").ok());
  {
    ConfigErrors errors((dir.path() / "nightshift.yml").string());
    const ConfigNode root = ParseYamlConfig("policy:\n  files: [good.yml]\n", errors);
    PolicyConfig config;
    ReadPolicyConfig(*root.Find("policy"), config, errors);
    ASSERT_TRUE(errors.empty()) << errors.Lines().front();
    ASSERT_NE(config.set, nullptr);
    EXPECT_EQ(config.set->size(), 4u);  // the baseline's three and x
    EXPECT_FALSE(config.set->Decide({.principal = {.kind = "agent"}, .action = "exec"}).allowed);
  }
  {
    ConfigErrors errors((dir.path() / "nightshift.yml").string());
    const ConfigNode root =
        ParseYamlConfig("policy:\n  files: [bad.yml, missing.yml]\n  baseline: false\n", errors);
    PolicyConfig config;
    ReadPolicyConfig(*root.Find("policy"), config, errors);
    const auto lines = errors.Lines();
    ASSERT_EQ(lines.size(), 3u);
    EXPECT_NE(lines[0].find("bad.yml:2:5: rules[0].action is required"), std::string::npos);
    EXPECT_NE(lines[1].find("bad.yml:3:13: rules[0].effect must be permit, forbid or audit"),
              std::string::npos)
        << lines[1];
    EXPECT_NE(lines[2].find("missing.yml"), std::string::npos) << lines[2];
    EXPECT_EQ(config.set, nullptr);
  }
}

}  // namespace
}  // namespace nightshift::policy
