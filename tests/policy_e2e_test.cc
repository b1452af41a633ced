// The policy engine end to end, through the CLI and the API against the real `nightshift serve`
// with a config whose `policy:` names a rules file: a run start forbidden for one repository
// (403 naming the rule), a recipe whose command line a rule forbids (blocked before it runs, its
// side effect never made), an audited command (allowed, and recorded with its rule), every
// decision in the audit log; `nightshift policy test` on fixtures; `config check` on a broken
// rules file. As root, also the delivery: a write into a forbidden path blocks the run whatever
// wrote it, and a merge outside the rules is refused.

#include "core/fs.h"
#include "gtest/gtest.h"
#include "tests/support/server_fixture.h"
#include "tests/support/test_support.h"

namespace nightshift {
namespace {

using testing::Shell;
using testing::ShellQuote;

constexpr std::string_view kRules = R"(rules:
  - id: frozen-repositories
    effect: forbid
    action: run.start
    resource: {repository: "frozen*"}
    description: this repository takes no automated changes
  - id: no-network-tools
    effect: forbid
    action: exec
    when: 'context.command like "*curl *" || context.command like "*wget *"'
    description: the network is reached through the egress proxy only
  - id: audit-make
    effect: audit
    principal: agent
    action: exec
    when: 'context.command like "make*"'
  - id: no-infra
    effect: forbid
    action: file.write
    resource: {path: "infra/**"}
    description: infrastructure changes are made by people
  - id: merges-by-release-managers
    effect: forbid
    principal: user
    action: cr.merge
    unless: 'principal.name in ["rita"]'
)";

class PolicyEndToEnd : public ::testing::Test, protected testing::ServerFixture {
 protected:
  void Start(const std::vector<std::string>& extra) {
    std::filesystem::create_directories(dir_.path() / "policies");
    ASSERT_TRUE(WriteFileAtomic(dir_.path() / "policies" / "team.yml", kRules).ok());
    ASSERT_TRUE(WriteFileAtomic(dir_.path() / "nightshift.yml",
                                "policy:\n  files: [policies/team.yml]\n"
                                "budgets:\n  repositories:\n    capped: {max_concurrent: 1}\n")
                    .ok());
    std::vector<std::string> args = {"--config", (dir_.path() / "nightshift.yml").string(),
                                     "--log-level", "warn"};
    args.insert(args.end(), extra.begin(), extra.end());
    ASSERT_TRUE(StartServer(dir_.path() / "data", args));
    testing::MakeGitRepo(dir_.path() / "repo", {{"README", "x\n"}, {"Makefile", "all:\n\ttrue\n"}});
    ASSERT_EQ(Cli("repo add app " + (dir_.path() / "repo").string()).exit_code, 0);
    ASSERT_EQ(Cli("repo add frozen-app " + (dir_.path() / "repo").string()).exit_code, 0);
  }

  int64_t StartRun(const std::string& repo, const std::string& recipe) {
    int status = 0;
    Json run =
        Api("POST", "/api/v1/runs", Json{{"repo", repo}, {"recipe", recipe}}.dump(), &status);
    EXPECT_EQ(status, 201) << run.dump();
    return run.value("id", int64_t{0});
  }
};

TEST_F(PolicyEndToEnd, RunStartsCommandsAndTheAuditLog) {
  Start({"--sandbox", "off"});
  // A run on a frozen repository: refused with the rule, by the API and by the CLI.
  int status = 0;
  Json refused =
      Api("POST", "/api/v1/runs", Json{{"repo", "frozen-app"}, {"recipe", "true"}}.dump(), &status);
  EXPECT_EQ(status, 403);
  EXPECT_EQ(refused["error"].value("code", ""), "permission_denied") << refused.dump();
  EXPECT_EQ(refused["error"].value("message", ""),
            "run.start: forbidden by rule 'frozen-repositories': this repository takes no "
            "automated changes");
  auto cli = Cli("run --repo frozen-app --recipe true");
  EXPECT_NE(cli.exit_code, 0);
  EXPECT_NE(cli.output.find("forbidden by rule 'frozen-repositories'"), std::string::npos)
      << cli.output;
  Json runs = Api("GET", "/api/v1/runs?repo=frozen-app");
  EXPECT_TRUE(runs["runs"].empty()) << runs.dump();

  // A recipe that would fetch from the network: blocked before anything ran.
  const auto marker = dir_.path() / "ran";
  const int64_t curl = StartRun("app", "touch " + marker.string() + " && curl -s http://x");
  Json blocked = WaitFinished(curl);
  EXPECT_EQ(blocked.value("state", ""), "blocked_by_policy") << blocked.dump();
  EXPECT_NE(blocked.value("reason", "").find("forbidden by rule 'no-network-tools'"),
            std::string::npos)
      << blocked.dump();
  EXPECT_FALSE(std::filesystem::exists(marker));

  // An audited command runs, and its allow is recorded with the rule.
  const int64_t make = StartRun("app", "make");
  EXPECT_EQ(WaitFinished(make).value("state", ""), "succeeded");
  // Any other command: the baseline permits it, nothing is recorded.
  const int64_t plain = StartRun("app", "true");
  EXPECT_EQ(WaitFinished(plain).value("state", ""), "succeeded");

  auto audit = Cli("audit -n 200");
  ASSERT_EQ(audit.exit_code, 0) << audit.output;
  EXPECT_NE(audit.output.find("admin  deny  run.start  frozen-app  rules frozen-repositories"),
            std::string::npos)
      << audit.output;
  EXPECT_NE(audit.output.find(
                StrCat("agent:adhoc  deny  exec  app  run ", curl, "  rules no-network-tools")),
            std::string::npos)
      << audit.output;
  EXPECT_NE(audit.output.find(StrCat("agent:adhoc  allow  exec  app  run ", make,
                                     "  rules baseline.agent-workspace,audit-make")),
            std::string::npos)
      << audit.output;
  EXPECT_EQ(audit.output.find(StrCat("run ", plain, " ")), std::string::npos) << audit.output;
  Json records = Api("GET", StrCat("/api/v1/audit?run=", curl));
  ASSERT_FALSE(records["records"].empty());
  const Json& detail = records["records"][0]["detail"];
  EXPECT_EQ(detail["rules"], Json({"no-network-tools"}));
  EXPECT_NE(detail["context"]["command"].get<std::string>().find("curl"), std::string::npos);
  EXPECT_EQ(Cli("audit verify").exit_code, 0);

  // A budget's cap: the second run at once on a repository capped at one is refused, naming it.
  ASSERT_EQ(Cli("repo add capped " + (dir_.path() / "repo").string()).exit_code, 0);
  const int64_t first = StartRun("capped", "sleep 2");
  Json over =
      Api("POST", "/api/v1/runs", Json{{"repo", "capped"}, {"recipe", "true"}}.dump(), &status);
  EXPECT_EQ(status, 429) << over.dump();
  EXPECT_EQ(over["error"].value("message", ""),
            "the cap of 1 concurrent runs for repository capped is reached: 1 queued or running");
  EXPECT_EQ(WaitFinished(first).value("state", ""), "succeeded");
  StartRun("capped", "true");  // room again
}

TEST_F(PolicyEndToEnd, TheServerRefusesABrokenRulesFile) {
  std::filesystem::create_directories(dir_.path() / "p");
  ASSERT_TRUE(WriteFileAtomic(dir_.path() / "p" / "bad.yml",
                              "rules:\n  - id: x\n    effect: permit\n    action: exec\n"
                              "    when: 'context.command like'\n")
                  .ok());
  ASSERT_TRUE(WriteFileAtomic(dir_.path() / "config.yml", "policy:\n  files: [p/bad.yml]\n").ok());
  auto check = Shell(StrCat(ShellQuote(testing::NightshiftBin()), " config check ",
                            ShellQuote((dir_.path() / "config.yml").string()), " 2>&1"));
  EXPECT_EQ(check.exit_code, 1);
  EXPECT_NE(check.output.find("p/bad.yml:5:11: rules[0].when: expected a value at column 21"),
            std::string::npos)
      << check.output;
  auto serve = Shell(StrCat("timeout 20 ", ShellQuote(testing::NightshiftBin()),
                            " serve --listen 127.0.0.1:0 --sandbox off --data-dir ",
                            ShellQuote((dir_.path() / "d").string()), " --config ",
                            ShellQuote((dir_.path() / "config.yml").string()), " 2>&1"));
  EXPECT_NE(serve.exit_code, 0);
  EXPECT_NE(serve.output.find("bad.yml:5:11"), std::string::npos) << serve.output;
}

TEST(PolicyCli, TestDecidesCasesAndFailsOnAMismatch) {
  testing::TempDir dir;
  const auto good = dir.path() / "good.yml";
  ASSERT_TRUE(WriteFileAtomic(good, StrCat(kRules, R"(cases:
  - name: curl is forbidden
    principal: agent:fixer
    action: exec
    context: {command: "curl http://x"}
    want: deny
    rules: [no-network-tools]
  - name: make is audited
    principal: agent:fixer
    action: exec
    context: {command: make test}
    want: allow
    rules: [audit-make]
)"))
                  .ok());
  const std::string bin = ShellQuote(testing::NightshiftBin());
  auto passed = Shell(StrCat(bin, " policy test ", ShellQuote(good.string()), " 2>&1"));
  EXPECT_EQ(passed.exit_code, 0) << passed.output;
  EXPECT_NE(passed.output.find("ok   curl is forbidden: deny by no-network-tools — forbidden by "
                               "rule 'no-network-tools': the network is reached through the "
                               "egress proxy only"),
            std::string::npos)
      << passed.output;
  EXPECT_NE(passed.output.find("ok   make is audited: allow by audit-make (audited)"),
            std::string::npos)
      << passed.output;
  EXPECT_NE(passed.output.find("2 cases, 0 failed"), std::string::npos) << passed.output;

  // A request on the command line, with the baseline: decided and printed, nothing wanted.
  auto request = Shell(StrCat(
      bin, " policy test --baseline --request ",
      ShellQuote(
          R"({"principal": "agent:x", "action": "repo.push", "resource": {"branch": "main"}})"),
      " 2>&1"));
  EXPECT_EQ(request.exit_code, 0) << request.output;
  EXPECT_NE(request.output.find("--request 1: deny — no rule permits agent 'x' to repo.push"),
            std::string::npos)
      << request.output;

  const auto wrong = dir.path() / "wrong.yml";
  ASSERT_TRUE(WriteFileAtomic(wrong, StrCat(kRules, R"(cases:
  - name: make is forbidden, says someone
    principal: agent:fixer
    action: exec
    context: {command: make}
    want: deny
)"))
                  .ok());
  auto failed = Shell(StrCat(bin, " policy test ", ShellQuote(wrong.string()), " 2>&1"));
  EXPECT_EQ(failed.exit_code, 1) << failed.output;
  EXPECT_NE(failed.output.find("FAIL make is forbidden, says someone: allow by audit-make"),
            std::string::npos)
      << failed.output;
  EXPECT_NE(failed.output.find("wrong.yml:"), std::string::npos) << failed.output;
  EXPECT_NE(failed.output.find(": want deny, got allow"), std::string::npos) << failed.output;

  auto bad_json = Shell(StrCat(bin, " policy test --request '{\"principal\": 3}' 2>&1"));
  EXPECT_EQ(bad_json.exit_code, 1);
  EXPECT_NE(bad_json.output.find("nightshift: --request 1: principal must be"), std::string::npos)
      << bad_json.output;
  auto missing = Shell(StrCat(bin, " policy test /nonexistent.yml 2>&1"));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("nightshift: open /nonexistent.yml: No such file or directory"),
            std::string::npos)
      << missing.output;
}

// As root, with the sandbox: what the run wrote is decided at delivery whatever wrote it, and
// merges by the rules.
TEST_F(PolicyEndToEnd, DeliveryAndMergeAreDecided) {
  if (::geteuid() != 0) GTEST_SKIP() << "delivery needs the sandbox, which needs root";
  Start({"--sandbox", "on", "--warm-sandboxes", "0"});
  const int64_t infra = StartRun("app",
                                 "mkdir -p infra && echo x > infra/main.tf && "
                                 "echo y > notes.txt");
  Json blocked = WaitFinished(infra);
  EXPECT_EQ(blocked.value("state", ""), "blocked_by_policy") << blocked.dump();
  EXPECT_NE(blocked.value("reason", "").find("infra/main.tf: forbidden by rule 'no-infra'"),
            std::string::npos)
      << blocked.dump();
  Json crs = Api("GET", "/api/v1/change-requests");
  EXPECT_TRUE(crs["change_requests"].empty()) << crs.dump();

  const int64_t ok = StartRun("app", "echo y > notes.txt");
  Json done = WaitFinished(ok);
  ASSERT_EQ(done.value("state", ""), "succeeded") << done.dump();
  crs = Api("GET", "/api/v1/change-requests");
  ASSERT_EQ(crs["change_requests"].size(), 1u) << crs.dump();
  const int64_t cr = crs["change_requests"][0].value("id", int64_t{0});

  for (const char* name : {"uma", "rita"}) {
    ASSERT_EQ(Shell(StrCat("printf 'correct horse battery\\n' | NIGHTSHIFT_SERVER=", server_->url(),
                           " NIGHTSHIFT_DATA_DIR=", ShellQuote((dir_.path() / "data").string()),
                           " ", ShellQuote(testing::NightshiftBin()), " user add ", name,
                           " --scope crs:review,crs:merge,runs:read,runs:write"))
                  .exit_code,
              0);
  }
  auto as = [&](const std::string& name, const std::string& args) {
    auto login =
        Shell(StrCat("printf 'correct horse battery\\n' | NIGHTSHIFT_SERVER=", server_->url(), " ",
                     ShellQuote(testing::NightshiftBin()), " login ", name, " 2>/dev/null"));
    const std::string token = login.output.substr(0, login.output.find('\n'));
    return Shell(StrCat("NIGHTSHIFT_SERVER=", server_->url(), " NIGHTSHIFT_TOKEN=", token, " ",
                        ShellQuote(testing::NightshiftBin()), " ", args, " 2>&1"));
  };
  ASSERT_EQ(as("uma", StrCat("cr approve ", cr)).exit_code, 0);
  auto refused = as("uma", StrCat("cr merge ", cr));
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.output.find("cr.merge of change request " + std::to_string(cr) +
                                ": forbidden by rule 'merges-by-release-managers'"),
            std::string::npos)
      << refused.output;
  auto merged = as("rita", StrCat("cr merge ", cr));
  EXPECT_EQ(merged.exit_code, 0) << merged.output;
  // The platform's push and change request for the run are in the audit log.
  auto audited = Cli(StrCat("audit --run ", ok));
  EXPECT_NE(audited.output.find(
                StrCat("agent:adhoc  allow  repo.push  app@nightshift/recipe/", ok, "  run ", ok)),
            std::string::npos)
      << audited.output;
  EXPECT_NE(audited.output.find("agent:adhoc  allow  cr.open  app@nightshift/recipe/"),
            std::string::npos)
      << audited.output;

  // Attribution: a run uma asked for is authored by uma, committed by the platform, and its
  // trailers name the run, the agent and who asked.
  auto started = as("uma", "run --repo app --recipe 'echo z > z.txt' --json");
  ASSERT_EQ(started.exit_code, 0) << started.output;
  const int64_t by_uma =
      Json::parse(started.output.substr(started.output.find('{'))).value("id", int64_t{0});
  ASSERT_EQ(WaitFinished(by_uma).value("state", ""), "succeeded");
  auto log = Shell(StrCat("git -C ", ShellQuote((dir_.path() / "repo").string()),
                          " log -1 --format='%an <%ae>|%cn <%ce>|%B' nightshift/recipe/", by_uma));
  ASSERT_EQ(log.exit_code, 0) << log.output;
  EXPECT_NE(log.output.find("uma <uma@users.localhost>|Nightshift <nightshift@localhost>|"),
            std::string::npos)
      << log.output;
  EXPECT_NE(log.output.find(StrCat("Nightshift-Run: ", by_uma,
                                   "\nNightshift-Agent: adhoc\n"
                                   "Nightshift-Requested-By: user:uma")),
            std::string::npos)
      << log.output;
  Json crs_now = Api("GET", "/api/v1/change-requests");
  const std::string body = Api("GET", StrCat("/api/v1/change-requests/",
                                             crs_now["change_requests"][0].value("id", int64_t{0})))
                               .dump();
  EXPECT_NE(body.find("**Requested by**\\n\\nuser:uma (agent adhoc)"), std::string::npos) << body;
}

}  // namespace
}  // namespace nightshift
