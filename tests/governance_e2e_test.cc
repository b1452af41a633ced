// Governance end to end, through the CLI against the real `nightshift serve`: a user added and
// signed in with a password on standard input, a token narrower than its maker, runs requested
// by the user, and the audit log — listed, verified, then tampered with in the database file
// behind the server's back and found broken at the record changed. No root (--sandbox off).

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

}  // namespace
}  // namespace nightshift
