// Governance end to end, through the CLI against the real `nightshift serve`: a user added and
// signed in with a password on standard input, a token narrower than its maker, runs requested
// by the user, and the audit log — listed, verified, then tampered with in the database file
// behind the server's back and found broken at the record changed. No root (--sandbox off).

#include <chrono>
#include <iostream>
#include <thread>

#include "core/fs.h"
#include "gtest/gtest.h"
#include "tests/support/server_fixture.h"
#include "tests/support/test_support.h"

namespace nightshift {
namespace {

using testing::Shell;
using testing::ShellQuote;

class GovernanceEndToEnd : public ::testing::Test, protected testing::ServerFixture {
 protected:
  void SetUp() override {
    ASSERT_TRUE(StartServer(dir_.path() / "data", {"--sandbox", "off", "--log-level", "warn"}));
  }

  // The CLI under the admin token with `input` on standard input.
  testing::ShellResult WithInput(const std::string& args, const std::string& input) {
    const auto file = dir_.path() / "stdin";
    EXPECT_TRUE(WriteFileAtomic(file, input, 0600).ok());
    return Cli(StrCat(args, " < ", ShellQuote(file.string()), " 2>&1"));
  }
};

TEST_F(GovernanceEndToEnd, UsersTokensAndAnAuditLogThatShowsTampering) {
  auto added = WithInput("user add alice --scope runs:read,runs:write", "correct horse battery\n");
  ASSERT_EQ(added.exit_code, 0) << added.output;
  EXPECT_EQ(WithInput("user add bob --scope runs:read", "short\n").exit_code, 1);
  EXPECT_EQ(WithInput("user add carol --scope root", "correct horse battery\n").exit_code, 1);

  const std::string server_url = server_->url();
  auto login = Shell(StrCat("printf 'correct horse battery\\n' | NIGHTSHIFT_SERVER=", server_url,
                            " NIGHTSHIFT_TOKEN= NIGHTSHIFT_DATA_DIR=/nonexistent ",
                            ShellQuote(testing::NightshiftBin()), " login alice 2>/dev/null"));
  ASSERT_EQ(login.exit_code, 0) << login.output;
  const std::string session = login.output.substr(0, login.output.find('\n'));
  ASSERT_TRUE(session.starts_with("nst_")) << login.output;
  auto as_alice = [&](const std::string& args) {
    return Shell(StrCat("NIGHTSHIFT_SERVER=", server_url, " NIGHTSHIFT_TOKEN=", session, " ",
                        ShellQuote(testing::NightshiftBin()), " ", args, " 2>&1"));
  };
  // Alice may not make herself an admin, nor read the audit log.
  auto escalate = as_alice("token create mine --scope admin");
  EXPECT_EQ(escalate.exit_code, 1);
  EXPECT_NE(escalate.output.find("cannot grant scope 'admin'"), std::string::npos)
      << escalate.output;
  EXPECT_EQ(as_alice("audit").exit_code, 1);
  EXPECT_EQ(as_alice("token create ci --scope runs:read").exit_code, 0);

  const auto repo = dir_.path() / "repo";
  testing::MakeGitRepo(repo, {{"README", "x\n"}});
  ASSERT_EQ(Cli("repo add app " + repo.string()).exit_code, 0);
  auto run = as_alice("run --repo app --recipe true");
  ASSERT_EQ(run.exit_code, 0) << run.output;

  auto audit = Cli("audit -n 100");
  ASSERT_EQ(audit.exit_code, 0) << audit.output;
  EXPECT_NE(audit.output.find("user:alice  allow  POST /api/v1/runs"), std::string::npos)
      << audit.output;
  EXPECT_NE(audit.output.find("user:alice  deny  POST /api/v1/tokens"), std::string::npos)
      << audit.output;
  EXPECT_NE(audit.output.find("admin  allow  POST /api/v1/users"), std::string::npos)
      << audit.output;
  // No password and no token secret is ever in the log.
  auto exported = Cli("audit export");
  ASSERT_EQ(exported.exit_code, 0);
  EXPECT_EQ(exported.output.find("correct horse"), std::string::npos);
  EXPECT_EQ(exported.output.find(session), std::string::npos);

  auto verified = Cli("audit verify");
  EXPECT_EQ(verified.exit_code, 0) << verified.output;
  EXPECT_NE(verified.output.find("audit log intact"), std::string::npos) << verified.output;

  // Someone with the database file rewrites who added a user.
  ASSERT_EQ(Shell(StrCat("sqlite3 ", ShellQuote((dir_.path() / "data/nightshift.db").string()),
                         " \"UPDATE audit_log SET actor = 'user:mallory' WHERE seq = 1\""))
                .exit_code,
            0);
  auto broken = Cli("audit verify");
  EXPECT_EQ(broken.exit_code, 1) << broken.output;
  EXPECT_NE(broken.output.find("audit log BROKEN at record 1: record 1: its content does not "
                               "match its hash"),
            std::string::npos)
      << broken.output;
}

// The kill switch: a pause stops the runs in its scope at once and refuses new ones, naming
// itself, until it is lifted.
TEST_F(GovernanceEndToEnd, TheKillSwitchStopsRunsAndRefusesNewOnesUntilResumed) {
  const auto repo = dir_.path() / "repo";
  testing::MakeGitRepo(repo, {{"README", "x\n"}});
  ASSERT_EQ(Cli("repo add app " + repo.string()).exit_code, 0);
  ASSERT_EQ(Cli("repo add other " + repo.string()).exit_code, 0);
  const auto marker = dir_.path() / "finished";
  int status = 0;
  Json run =
      Api("POST", "/api/v1/runs",
          Json{{"repo", "app"}, {"recipe", "sleep 5 && touch " + marker.string()}}.dump(), &status);
  ASSERT_EQ(status, 201);
  const int64_t id = run.value("id", int64_t{0});
  for (int i = 0;
       i < 200 && Api("GET", StrCat("/api/v1/runs/", id)).value("state", "") != "running"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const auto start = std::chrono::steady_clock::now();
  auto paused = Cli("pause --repo app");
  ASSERT_EQ(paused.exit_code, 0) << paused.output;
  EXPECT_NE(paused.output.find("paused repository app: no run starts there until 'nightshift "
                               "resume'; 1 run cancelled"),
            std::string::npos)
      << paused.output;
  Json stopped = WaitFinished(id, 10);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "the kill switch stopped a running run in " << seconds << " s\n";
  EXPECT_EQ(stopped.value("state", ""), "cancelled") << stopped.dump();
  EXPECT_NE(stopped.value("reason", "").find("repository app is paused (by admin)"),
            std::string::npos)
      << stopped.dump();
  EXPECT_LT(seconds, 5.0);  // generous; the figure is in docs/performance.md

  auto refused = Cli("run --repo app --recipe true");
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.output.find("paused: repository app is paused (by admin; nightshift resume "
                                "--repo app)"),
            std::string::npos)
      << refused.output;
  EXPECT_EQ(Cli("run --repo other --recipe true").exit_code, 0);  // another repository runs
  auto list = Cli("pause --list");
  EXPECT_NE(list.output.find("repository app  paused by admin"), std::string::npos) << list.output;

  // Bad input: one clear line, nothing changed.
  auto none = Cli("pause");
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.output.find("name one of --all, --repo NAME, --agent NAME"), std::string::npos);
  auto unknown = Cli("pause --repo nope");
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.output.find("unknown repository 'nope'"), std::string::npos) << unknown.output;
  auto not_paused = Cli("resume --agent nobody");
  EXPECT_EQ(not_paused.exit_code, 1);
  EXPECT_NE(not_paused.output.find("nothing is paused for agent nobody"), std::string::npos)
      << not_paused.output;
  // Only policies:admin may pull the switch.
  ASSERT_EQ(
      WithInput("user add rob --scope runs:read,runs:write", "correct horse battery\n").exit_code,
      0);
  auto login =
      Shell(StrCat("printf 'correct horse battery\\n' | NIGHTSHIFT_SERVER=", server_->url(), " ",
                   ShellQuote(testing::NightshiftBin()), " login rob 2>/dev/null"));
  const std::string token = login.output.substr(0, login.output.find('\n'));
  auto by_rob = Shell(StrCat("NIGHTSHIFT_SERVER=", server_->url(), " NIGHTSHIFT_TOKEN=", token, " ",
                             ShellQuote(testing::NightshiftBin()), " pause --all 2>&1"));
  EXPECT_EQ(by_rob.exit_code, 1);
  EXPECT_NE(by_rob.output.find("policies:admin"), std::string::npos) << by_rob.output;

  ASSERT_EQ(Cli("resume --repo app").exit_code, 0);
  EXPECT_EQ(Cli("run --repo app --recipe true").exit_code, 0);
  ASSERT_EQ(Cli("pause --all").exit_code, 0);
  auto all = Cli("run --repo other --recipe true");
  EXPECT_EQ(all.exit_code, 1);
  EXPECT_NE(all.output.find("paused: everything is paused"), std::string::npos) << all.output;
  ASSERT_EQ(Cli("resume --all").exit_code, 0);
  EXPECT_EQ(Cli("run --repo other --recipe true").exit_code, 0);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_FALSE(std::filesystem::exists(marker));  // the paused run never finished its work
}

}  // namespace
}  // namespace nightshift
