// The agent runtime against real things: the scripted model server (tests/support/
// model_server.h) speaking both providers' HTTP protocols on loopback, replaying the scenario
// files in tests/scenarios; the tools in a host directory standing for /workspace
// (tests/support/host_dir_sandbox.h), which any user can run, and again in a real sandbox over
// a temp workspace when root.

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <memory>

#include "agent/config.h"
#include "agent/loop.h"
#include "agent/model.h"
#include "agent/process_sandbox.h"
#include "agent/tools.h"
#include "gtest/gtest.h"
#include "tests/support/host_dir_sandbox.h"
#include "tests/support/model_server.h"
#include "tests/support/test_support.h"

namespace nightshift::agent {
namespace {

constexpr uid_t kUid = 100123;

// Tools run in a real sandbox with `dir` at /workspace.
class TempSandbox final : public ProcessSandbox {
 public:
  explicit TempSandbox(const std::filesystem::path& dir) : ProcessSandbox(Spec(dir)) {}

 private:
  static sandbox::ProcessSpec Spec(const std::filesystem::path& dir) {
    sandbox::ProcessSpec spec{.env = {{"PATH", "/usr/bin:/bin"}, {"HOME", "/tmp"}}};
    spec.sandbox = sandbox::SandboxSpec{.workspace = dir, .host_uid = kUid, .host_gid = kUid};
    return spec;
  }
};

class RecordingSink final : public EventSink {
 public:
  void Emit(const api::EventRecord& event) override {
    events.push_back({std::string(event.kind()), event.data()});
  }
  std::vector<std::pair<std::string, Json>> events;
  int Count(const std::string& kind) const {
    int n = 0;
    for (const auto& [k, d] : events) n += k == kind;
    return n;
  }
};

// Where the tools run: a host directory (any user) or the real sandbox (root only).
enum class Where { kHostDir, kSandbox };

class AgentFixture : public ::testing::Test {
 protected:
  // A workspace with a failing test; for the real sandbox, owned by its user.
  void MakeWorkspace(Where where) {
    where_ = where;
    ws_ = dir_.path() / "ws";
    std::filesystem::create_directories(ws_);
    Write("calc.sh", "add() { echo $(( $1 - $2 )); }\n");
    Write("test.sh",
          ". ./calc.sh\n[ \"$(add 2 3)\" = 5 ] && echo 'tests passed' || "
          "{ echo \"FAIL: add 2 3 = $(add 2 3)\"; exit 1; }\n");
    std::filesystem::create_symlink("/etc", ws_ / "escape");
    Chown();
  }
  std::unique_ptr<Sandbox> MakeSandbox() const {
    if (where_ == Where::kSandbox) return std::make_unique<TempSandbox>(ws_);
    return std::make_unique<testing::HostDirSandbox>(ws_);
  }
  void Write(const std::string& path, const std::string& content) {
    std::filesystem::create_directories((ws_ / path).parent_path());
    std::ofstream(ws_ / path, std::ios::binary) << content;
  }
  // Files the test wrote belong to the sandbox's user, as a checkout's would.
  void Chown() {
    if (where_ != Where::kSandbox) return;
    testing::Shell("chown -R -h " + std::to_string(kUid) + ":" + std::to_string(kUid) + " " +
                   ws_.string());
  }
  std::string Read(const std::string& path) {
    std::ifstream in(ws_ / path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  Tools::Result Call(const std::string& name, const std::string& arguments) {
    std::unique_ptr<Sandbox> sandbox = MakeSandbox();
    Tools tools(*sandbox, Redactor({"super-secret-api-key-123"}), 2048, 10'000);
    auto r = tools.Call(ToolCall{.id = "1", .name = name, .arguments = arguments}, nullptr);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : Tools::Result{};
  }
  ModelConfig Model(const testing::ModelServer& server, const std::string& provider) {
    return ModelConfig{
        .name = "default",
        .provider = provider,
        .base_url = provider == "openai" ? server.openai_base_url() : server.anthropic_base_url(),
        .model = "scripted-1",
        .api_key = "test-key-abcdefgh",
        .input_cost_per_mtok = 3.0,
        .output_cost_per_mtok = 15.0,
        .timeout_ms = 5000,
        .max_retries = 3,
        .retry_base_ms = 10,
        .retry_max_ms = 200};
  }
  Json Scenario(const std::string& name) {
    auto s = testing::ModelServer::LoadScenario(std::filesystem::path(SCENARIOS_DIR) / name);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : Json();
  }
  LoopResult RunLoop(const std::string& scenario, const std::string& provider, Budgets budgets = {},
                     std::vector<std::string>* errors = nullptr) {
    testing::ModelServer server(Scenario(scenario));
    EXPECT_TRUE(server.ok());
    auto client = MakeModelClient(Model(server, provider));
    std::unique_ptr<Sandbox> sandbox = MakeSandbox();
    LoopResult result = RunAgentLoop(**client,
                                     LoopInput{.task = "Fix the failing test (sh test.sh).",
                                               .model = Model(server, provider),
                                               .budgets = budgets},
                                     *sandbox, sink_, nullptr);
    if (errors != nullptr) {
      *errors = server.errors();
    } else {
      for (const auto& e : server.errors()) ADD_FAILURE() << "model server: " << e;
    }
    return result;
  }

  testing::TempDir dir_;
  std::filesystem::path ws_;
  Where where_ = Where::kHostDir;
  RecordingSink sink_;
};

// The tools, in a host directory and (as root) in the real sandbox: the same scripts, the same
// answers.
class AgentTest : public AgentFixture, public ::testing::WithParamInterface<Where> {
 protected:
  void SetUp() override {
    if (GetParam() == Where::kSandbox && ::geteuid() != 0) {
      GTEST_SKIP() << "the real sandbox needs root";
    }
    MakeWorkspace(GetParam());
  }
};

// --- Tools ---

TEST_P(AgentTest, ReadWriteEditKeepExactBytes) {
  Write("no-newline.txt", "first\nsecond");
  Chown();
  EXPECT_EQ(Call("read_file", R"({"path": "no-newline.txt"})").output,
            "     1\tfirst\n     2\tsecond\n");
  EXPECT_EQ(Call("read_file", R"({"path": "/workspace/no-newline.txt", "start_line": 2})").output,
            "     2\tsecond\n");
  auto edited = Call("edit_file",
                     R"({"path": "no-newline.txt", "old_string": "second", "new_string": "2nd"})");
  EXPECT_FALSE(edited.is_error) << edited.output;
  EXPECT_EQ(Read("no-newline.txt"), "first\n2nd");  // no newline added
  auto written = Call("write_file", R"({"path": "new/dir/file.txt", "content": "a\n\tb"})");
  EXPECT_FALSE(written.is_error) << written.output;
  EXPECT_EQ(Read("new/dir/file.txt"), "a\n\tb");
  struct stat st {};
  ASSERT_EQ(::stat((ws_ / "new/dir/file.txt").c_str(), &st), 0);
  if (GetParam() == Where::kSandbox) {
    EXPECT_EQ(st.st_uid, kUid);  // written from inside it
  }
}

TEST_P(AgentTest, EditNeedsOneExactMatch) {
  Write("twice.txt", "x = 1\nx = 1\n");
  Chown();
  auto twice =
      Call("edit_file", R"({"path": "twice.txt", "old_string": "x = 1", "new_string": "y"})");
  EXPECT_TRUE(twice.is_error);
  EXPECT_NE(twice.output.find("more than once"), std::string::npos);
  auto missing =
      Call("edit_file", R"({"path": "twice.txt", "old_string": "z", "new_string": "y"})");
  EXPECT_TRUE(missing.is_error);
  EXPECT_EQ(Read("twice.txt"), "x = 1\nx = 1\n");
}

TEST_P(AgentTest, BadCallsAreToolErrors) {
  struct Case {
    const char* name;
    const char* args;
    const char* says;
  };
  for (const Case& c : std::vector<Case>{
           {"read_file", "{oops", "invalid JSON arguments"},
           {"read_file", "[1, 2]", "must be a JSON object"},
           {"rm_rf", "{}", "unknown tool 'rm_rf'"},
           {"read_file", "{}", "missing required argument 'path'"},
           {"read_file", R"({"path": 7})", "argument 'path' must be a string"},
           {"read_file", R"({"path": "/etc/passwd"})", "path outside /workspace"},
           {"read_file", R"({"path": "a/../../x"})", "path outside /workspace"},
           {"read_file", R"({"path": "escape/passwd"})", "leaves /workspace"},
           {"write_file", R"({"path": "escape/evil", "content": "x"})", "leaves /workspace"},
           {"read_file", R"({"path": "nope.txt"})", "no such file"},
           {"read_file", R"({"path": "calc.sh", "start_line": -1})", "non-negative integer"},
           {"search", R"({"pattern": ""})", "pattern is empty"},
       }) {
    auto r = Call(c.name, c.args);
    EXPECT_TRUE(r.is_error) << c.name << " " << c.args << ": " << r.output;
    EXPECT_NE(r.output.find(c.says), std::string::npos) << c.args << " → " << r.output;
  }
  EXPECT_FALSE(std::filesystem::exists("/etc/evil"));
}

TEST_P(AgentTest, ListSearchAndRunCommand) {
  EXPECT_EQ(Call("list_files", "{}").output, "calc.sh\nescape\ntest.sh\n");
  EXPECT_EQ(Call("list_files", R"({"pattern": "t*.sh"})").output, "test.sh\n");
  EXPECT_EQ(Call("search", R"J({"pattern": "add\\(\\)"})J").output,
            "calc.sh:1:add() { echo $(( $1 - $2 )); }\n");
  EXPECT_EQ(Call("search", R"({"pattern": "nothing-here"})").output, "no matches");
  auto failing = Call("run_command", R"({"command": "sh test.sh"})");
  EXPECT_FALSE(failing.is_error);  // a failing command is a result, not a tool error
  EXPECT_EQ(failing.output, "exit code 1\nFAIL: add 2 3 = -1\n");
  auto slow = Call("run_command", R"({"command": "sleep 30", "timeout_seconds": 1})");
  EXPECT_EQ(slow.output.rfind("timed out after 1 s", 0), 0u) << slow.output;
}

TEST_P(AgentTest, OutputIsBoundedHeadAndTailAndSecretsAreRedacted) {
  auto big = Call("run_command", R"({"command": "seq 1 5000"})");
  EXPECT_LT(big.output.size(), 2200u);
  EXPECT_EQ(big.output.rfind("exit code 0\n1\n2\n3\n", 0), 0u);
  EXPECT_NE(big.output.find("bytes cut"), std::string::npos);
  EXPECT_NE(big.output.find("4999\n5000\n"), std::string::npos);
  Write(".env",
        "API_KEY=super-secret-api-key-123\nGITHUB=ghp_abcdefghijklmnopqrstuvwxyz0123456789\n"
        "AWS=AKIAABCDEFGHIJKLMNOP\n");
  Chown();
  auto read = Call("read_file", R"({"path": ".env"})");
  EXPECT_EQ(read.output.find("super-secret"), std::string::npos) << read.output;
  EXPECT_EQ(read.output.find("ghp_"), std::string::npos) << read.output;
  EXPECT_EQ(read.output.find("AKIA"), std::string::npos) << read.output;
  EXPECT_NE(read.output.find("API_KEY=[REDACTED]"), std::string::npos) << read.output;
}

// Policy on the tools: a denied command or write is the tool's error, naming the rule, and
// nothing runs or is written; what the rules allow goes ahead.
TEST_P(AgentTest, PolicyDecidesCommandsAndWritesBeforeTheyRun) {
  ConfigErrors errors("policy.yml");
  const ConfigNode root = ParseYamlConfig(R"(
rules:
  - id: agents-work
    effect: permit
    principal: agent
    action: [exec, file.write]
  - id: no-network
    effect: forbid
    action: exec
    when: 'context.command like "*curl*"'
    description: the network is reached through the egress proxy only
  - id: no-ci-config
    effect: forbid
    action: file.write
    resource: {path: ".github/**"}
)",
                                          errors);
  policy::PolicySet set;
  set.Add(root, errors);
  ASSERT_TRUE(errors.empty()) << errors.Lines().front();
  std::vector<std::string> asked;
  Authorize authorize = [&](const std::string& action, policy::Attributes resource,
                            policy::Attributes context) {
    policy::Request request{.principal = {.kind = "agent", .name = "fixer"},
                            .action = action,
                            .resource = std::move(resource),
                            .context = std::move(context)};
    asked.push_back(RequestToJson(request).dump());
    return set.Decide(request);
  };
  std::unique_ptr<Sandbox> sandbox = MakeSandbox();
  Tools tools(*sandbox, Redactor(), 2048, 10'000, authorize);
  auto call = [&](const std::string& name, const std::string& arguments) {
    auto r = tools.Call(ToolCall{.id = "1", .name = name, .arguments = arguments}, nullptr);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : Tools::Result{};
  };
  auto denied = call("run_command", R"({"command": "touch ran && curl http://x"})");
  EXPECT_TRUE(denied.is_error);
  EXPECT_NE(denied.output.find("denied by policy: forbidden by rule 'no-network': the network is "
                               "reached through the egress proxy only"),
            std::string::npos)
      << denied.output;
  EXPECT_FALSE(std::filesystem::exists(ws_ / "ran"));
  auto written = call("write_file", R"({"path": "./.github/workflows/ci.yml", "content": "x"})");
  EXPECT_TRUE(written.is_error);
  EXPECT_NE(written.output.find("forbidden by rule 'no-ci-config'"), std::string::npos)
      << written.output;
  EXPECT_FALSE(std::filesystem::exists(ws_ / ".github"));
  EXPECT_TRUE(call("edit_file", R"({"path": "/workspace/.github/x", "old_string": "a",
                                   "new_string": "b"})")
                  .is_error);
  EXPECT_FALSE(call("write_file", R"({"path": "src/ok.txt", "content": "fine"})").is_error);
  EXPECT_EQ(Read("src/ok.txt"), "fine");
  EXPECT_EQ(call("run_command", R"({"command": "cat src/ok.txt"})").output, "exit code 0\nfine\n");
  // The path the rule saw is relative to the workspace, normalized.
  EXPECT_NE(asked[1].find(R"("path":".github/workflows/ci.yml")"), std::string::npos) << asked[1];
}

INSTANTIATE_TEST_SUITE_P(Where, AgentTest, ::testing::Values(Where::kHostDir, Where::kSandbox),
                         [](const auto& info) {
                           return info.param == Where::kSandbox ? "Sandbox" : "HostDir";
                         });

TEST(Redactor, RedactsGivenValuesAndEveryTokenShape) {
  const Redactor redact({"my-own-api-key-42", "short"});
  EXPECT_EQ(redact("key=my-own-api-key-42; short stays"), "key=[REDACTED]; short stays");
  // Its encodings too: base64 (alone, URL-safe, and inside a longer stream), hex, percent.
  const Redactor encoded({"s3cr3t/v@lue+x"});
  EXPECT_EQ(encoded("b64 czNjcjN0L3ZAbHVlK3g= url czNjcjN0L3ZAbHVlK3g hex 7333637233742f7640"
                    "6c75652b78 HEX 7333637233742F76406C75652B78 pct s3cr3t%2Fv%40lue%2Bx"),
            "b64 [REDACTED] url [REDACTED] hex [REDACTED] HEX [REDACTED] pct [REDACTED]");
  // base64 of "ab" followed by the value: the part only the value decides is cut out.
  EXPECT_EQ(encoded("YWJzM2NyM3QvdkBsdWUreA=="), "YWJ[REDACTED]A==");
  EXPECT_EQ(redact("AWS_ACCESS_KEY_ID=ASIAY34FZKBOKMUTVV7A\n"
                   "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
                   "NPM_TOKEN=npm_abcdefghijklmnopqrstuvwxyzABCDEF0123\n"
                   "STRIPE=sk_live_4eC39HqLyjWDarjtT1zdp7dc rk_live_51H8abcdefGHIJKLmnopQRST\n"
                   "OPENAI=sk-proj-Ab3dEf_Gh1-jKlMnOpQrStUv\n"
                   "ANTHROPIC=sk-ant-api03-abcdefghijklmnop_QRSTUV-0123456789xyz\n"
                   "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln==\n"),
            "AWS_ACCESS_KEY_ID=[REDACTED]\n"
            "aws_secret_access_key = [REDACTED]\n"
            "NPM_TOKEN=[REDACTED]\n"
            "STRIPE=[REDACTED] [REDACTED]\n"
            "OPENAI=[REDACTED]\n"
            "ANTHROPIC=[REDACTED]\n"
            "Authorization: Bearer [REDACTED]\n");
}

TEST(Redactor, RemovesAWholePrivateKeyBlockAndLeavesWordsAlone) {
  const Redactor redact;
  EXPECT_EQ(redact("before\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE=\n"
                   "-----END OPENSSH PRIVATE KEY-----\nafter"),
            "before\n[REDACTED]\nafter");
  EXPECT_EQ(redact(R"({"private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQ==\n)"
                   R"(-----END PRIVATE KEY-----\n"})"),
            R"({"private_key": "[REDACTED]\n"})");
  EXPECT_EQ(redact("cat id_rsa\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA3Tz2"),
            "cat id_rsa\n[REDACTED]");  // no END (say, cut by Bound): all after BEGIN goes
  const std::string words =
      "disk-cache-configuration-value-0123456789 task_sk-0123456789abcdefghijklmnop "
      "mask-0123456789abcdefghijklmnop";
  EXPECT_EQ(redact(words), words);
  const std::string binary("\0\xff ghp_abcdefghijklmnopqrstuvwxyz0123456789\0\xc3", 45);
  EXPECT_EQ(redact(binary), std::string("\0\xff [REDACTED]\0\xc3", 15));
}

TEST(WorkspacePath, ConfinesPaths) {
  EXPECT_EQ(*WorkspacePath("a/b"), "/workspace/a/b");
  EXPECT_EQ(*WorkspacePath("./a/../b/"), "/workspace/b");
  EXPECT_EQ(*WorkspacePath("/workspace/x"), "/workspace/x");
  EXPECT_EQ(*WorkspacePath(""), "/workspace");
  for (const char* bad : {"..", "../x", "/etc", "/workspace/../etc", "/workspacex/y"}) {
    EXPECT_FALSE(WorkspacePath(bad).ok()) << bad;
  }
}

TEST(RetryAfter, SecondsAndDates) {
  EXPECT_EQ(RetryAfterMs("3", 0), 3000);
  EXPECT_EQ(RetryAfterMs("", 0), -1);
  EXPECT_EQ(RetryAfterMs("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470000), 10'000);
  EXPECT_EQ(RetryAfterMs("soon", 0), -1);
}

// The agent's sections, as config/config.h hands them over (every case of the whole file is
// in tests/config_cases).
TEST(Config, ParsesModelsAndBudgetsAndRejectsMistakes) {
  ConfigErrors errors("nightshift.yml");
  ConfigNode root = ParseYamlConfig(
      "models:\n  default:\n    provider: anthropic\n    model: claude-x\n    api_key_env: KEY\n"
      "    input_cost_per_mtok: 3\nagent:\n  max_steps: 7\n  max_cost_usd: 0.5\n",
      errors);
  auto models = ParseModels(*root.Find("models"), {{"KEY", "k-123"}}, errors);
  AgentConfig config;
  ParseAgentLimits(*root.Find("agent"), config, errors);
  ASSERT_TRUE(errors.empty()) << errors.Lines().front();
  const ModelConfig& m = models.at("default");
  EXPECT_EQ(m.base_url, "https://api.anthropic.com");
  EXPECT_EQ(m.api_key, "k-123");
  EXPECT_EQ(m.input_cost_per_mtok, 3);
  EXPECT_EQ(config.budgets.max_steps, 7);
  EXPECT_EQ(config.budgets.max_cost_usd, 0.5);
  EXPECT_EQ(config.budgets.max_tokens, AgentConfig{}.budgets.max_tokens);

  // The models' errors, all of them, for a YAML text of `models:`.
  auto model_errors = [](const std::string& yaml) {
    ConfigErrors errors("nightshift.yml");
    ConfigNode root = ParseYamlConfig(yaml, errors);
    ParseModels(*root.Find("models"), {}, errors);
    return errors.Lines();
  };
  EXPECT_EQ(
      model_errors(
          "models:\n  default:\n    provider: openai\n    model: m\n    api_key_env: NOPE\n"),
      std::vector<std::string>{"nightshift.yml:5:18: models.default.api_key_env: the environment "
                               "variable NOPE is not set"});
  EXPECT_EQ(model_errors("models:\n  d:\n    provider: gemini\n    model: m\n"),
            std::vector<std::string>{
                "nightshift.yml:3:15: models.d.provider must be openai or anthropic"});
  EXPECT_EQ(
      model_errors("models:\n  d:\n"),
      (std::vector<std::string>{"nightshift.yml:2:3: models.d.provider must be openai or anthropic",
                                "nightshift.yml:2:3: models.d.model is required"}));
}

// --- The loop, against the scripted model server, for both providers ---

// The loop sees only the Sandbox interface: its tools run in a host directory, as any user.
class AgentLoopTest : public AgentFixture, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override { MakeWorkspace(Where::kHostDir); }
};

TEST_P(AgentLoopTest, FixesTheFailingTestAndFinishes) {
  LoopResult r = RunLoop("fix_add.json", GetParam());
  EXPECT_EQ(r.end, LoopResult::End::kFinished) << r.reason;
  EXPECT_EQ(r.summary, "Fixed add() in calc.sh (it subtracted); sh test.sh passes.");
  EXPECT_EQ(r.steps, 5);
  EXPECT_EQ(r.usage.input_tokens, 1200 + 1400 + 1600 + 1700 + 1800);
  EXPECT_EQ(r.usage.output_tokens, 40 + 30 + 60 + 30 + 50);
  EXPECT_NEAR(r.cost_usd, (7700 * 3.0 + 210 * 15.0) / 1e6, 1e-9);
  EXPECT_EQ(Read("calc.sh"), "add() { echo $(( $1 + $2 )); }\n");
  // The transcript: every request, response, call and result.
  EXPECT_EQ(sink_.Count("model_request"), 5);
  EXPECT_EQ(sink_.Count("model_response"), 5);
  EXPECT_EQ(sink_.Count("tool_call"), 5);
  EXPECT_EQ(sink_.Count("tool_result"), 5);
  EXPECT_EQ(sink_.Count("agent_end"), 1);
}

TEST_P(AgentLoopTest, MalformedToolCallsGoBackToTheModelAsErrors) {
  LoopResult r = RunLoop("malformed.json", GetParam());
  EXPECT_EQ(r.end, LoopResult::End::kFinished) << r.reason;
  EXPECT_EQ(r.steps, 8);
  EXPECT_EQ(Read("calc.sh"), "add() { echo $(( $1 - $2 )); }\n");  // nothing changed
}

TEST_P(AgentLoopTest, TheStepBudgetEndsTheRunKeepingItsWork) {
  LoopResult r = RunLoop("budget.json", GetParam(), Budgets{.max_steps = 3});
  EXPECT_EQ(r.end, LoopResult::End::kBudget);
  EXPECT_EQ(r.reason, "step budget of 3 used up");
  EXPECT_EQ(Read("notes.txt"), "step 1\nstep 2\nstep 3\n");
}

TEST_P(AgentLoopTest, TheCostBudgetEndsTheRun) {
  // fix_add's first answer costs 1200 × $3/M + 40 × $15/M = $0.0042.
  std::vector<std::string> errors;
  LoopResult r = RunLoop("fix_add.json", GetParam(), Budgets{.max_cost_usd = 0.004}, &errors);
  EXPECT_EQ(r.end, LoopResult::End::kBudget);
  EXPECT_EQ(r.steps, 1);
  EXPECT_NE(r.reason.find("cost budget"), std::string::npos) << r.reason;
}

TEST_P(AgentLoopTest, RetriesA429A503AndABadBody) {
  LoopResult r = RunLoop("flaky_api.json", GetParam());
  EXPECT_EQ(r.end, LoopResult::End::kFinished) << r.reason;
  EXPECT_EQ(r.summary, "done after retries");
  bool four_attempts = false;
  for (const auto& [kind, data] : sink_.events) {
    if (kind == "model_response" && data.value("attempts", 0) == 4) four_attempts = true;
  }
  EXPECT_TRUE(four_attempts);
}

TEST_P(AgentLoopTest, AnApiThatStaysDownFailsWithTheReason) {
  testing::ModelServer server(Scenario("api_down.json"));
  ModelConfig model = Model(server, GetParam());
  model.max_retries = 2;
  auto client = MakeModelClient(model);
  std::unique_ptr<Sandbox> sandbox = MakeSandbox();
  LoopResult r = RunAgentLoop(**client, LoopInput{.task = "anything", .model = model}, *sandbox,
                              sink_, nullptr);
  EXPECT_EQ(r.end, LoopResult::End::kModelError);
  EXPECT_EQ(r.reason, "model API: HTTP 500: internal error (after 3 attempts)");
  EXPECT_EQ(server.steps_served(), 3);
}

INSTANTIATE_TEST_SUITE_P(Providers, AgentLoopTest, ::testing::Values("openai", "anthropic"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace nightshift::agent
