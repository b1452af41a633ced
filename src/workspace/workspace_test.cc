// The workspace part against real git repositories in temp dirs, real mirrors, real overlay
// layers and real sandboxes (root only).

#include "workspace/workspace.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "gtest/gtest.h"
#include "tests/support/test_support.h"

namespace nightshift::workspace {
namespace {

constexpr uid_t kUid = 100123;

// Mirrors are plain git and run as any user; checkout layers (built in a private overlay mount)
// and sandboxes need root, and the tests that make them say so first.
#define SKIP_UNLESS_ROOT() \
  if (::geteuid() != 0) GTEST_SKIP() << "layers and sandboxes need root"

class WorkspaceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = dir_.path() / "data";
    std::filesystem::create_directories(data_);
    repo_ = dir_.path() / "repo";
    first_ = testing::MakeGitRepo(repo_, {{"README", "hello\n"},
                                          {"src/a.txt", "a1\n"},
                                          {"src/b.txt", "b1\n"},
                                          {"gone.txt", "bye\n"}});
    git_.home = dir_.path() / "home";
    std::filesystem::create_directories(git_.home);
    git_.log = [this](std::string_view, std::string_view line) {
      log_ += std::string(line) + "\n";
    };
  }

  WorkspaceOptions Options(int64_t cache_bytes = int64_t{1} << 30) {
    WorkspaceOptions options{.data_dir = data_, .cache_max_bytes = cache_bytes};
    options.sandbox.workspace = data_;
    options.sandbox.masked = {data_};
    options.sandbox.host_uid = kUid;
    options.sandbox.host_gid = kUid;
    return options;
  }

  // Runs `script` in a sandbox whose /workspace is `layers` under a fresh upper dir.
  std::string InWorkspace(const std::vector<std::filesystem::path>& layers,
                          const std::string& script, int* exit_code = nullptr) {
    const auto run = dir_.path() / ("run-" + std::to_string(++runs_));
    std::filesystem::create_directories(run / "upper");
    std::filesystem::create_directories(run / "work");
    EXPECT_EQ(::chown((run / "upper").c_str(), kUid, kUid), 0);
    sandbox::ProcessSpec spec{.argv = {"/bin/sh", "-c", script},
                              .env = {{"PATH", "/usr/bin:/bin"}, {"HOME", "/tmp"}},
                              .timeout_ms = 60'000};
    spec.sandbox = sandbox::SandboxSpec{
        .workspace = run / "upper", .masked = {data_}, .host_uid = kUid, .host_gid = kUid};
    spec.sandbox->workspace_layers = layers;
    spec.sandbox->workspace_work = run / "work";
    std::string out;
    auto r = sandbox::RunProcess(
        spec, [&](std::string_view, std::string_view line) { out += std::string(line) + "\n"; });
    EXPECT_TRUE(r.ok()) << r.status();
    if (exit_code != nullptr) *exit_code = r.ok() ? r->exit_code : -1;
    return out;
  }

  testing::TempDir dir_;
  std::filesystem::path data_, repo_;
  std::string first_;
  GitContext git_;
  std::string log_;
  int runs_ = 0;
};

// --- Mirrors ---

TEST_F(WorkspaceTest, MirrorIsCreatedThenFetchedAndResolvesRefs) {
  Mirrors mirrors(data_ / "mirrors");
  auto mirror = mirrors.Sync("1", repo_.string(), git_);
  ASSERT_TRUE(mirror.ok()) << mirror.status();
  EXPECT_EQ(*Mirrors::Resolve(*mirror, "main", git_), first_);
  EXPECT_EQ(*Mirrors::Resolve(*mirror, "", git_), first_);
  const std::string second = testing::CommitFiles(repo_, {{"src/a.txt", "a2\n"}}, "second");
  testing::Shell("git -C " + repo_.string() + " tag v2");
  ASSERT_TRUE(mirrors.Sync("1", repo_.string(), git_).ok());
  EXPECT_EQ(*Mirrors::Resolve(*mirror, "main", git_), second);
  EXPECT_EQ(*Mirrors::Resolve(*mirror, "v2", git_), second);
  EXPECT_EQ(*Mirrors::Resolve(*mirror, first_.substr(0, 10), git_), first_);
  auto unknown = Mirrors::Resolve(*mirror, "no-such-branch", git_);
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  EXPECT_NE(unknown.status().message().find("no-such-branch"), std::string::npos);
}

TEST_F(WorkspaceTest, UnreachableUrlIsAClearErrorAndLeavesNothing) {
  Mirrors mirrors(data_ / "mirrors");
  auto mirror = mirrors.Sync("1", (dir_.path() / "nowhere").string(), git_);
  EXPECT_EQ(mirror.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(mirror.status().message().find("cannot fetch"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(mirrors.PathOf("1")));
  EXPECT_EQ(testing::Shell("ls -A " + (data_ / "mirrors").string() + " | grep -v lock").output, "");
}

TEST_F(WorkspaceTest, CorruptMirrorIsRecreated) {
  SKIP_UNLESS_ROOT();
  Workspaces spaces(Options());
  Mirrors mirrors(data_ / "mirrors");
  auto mirror = spaces.Fetch("1", repo_.string(), git_);
  ASSERT_TRUE(mirror.ok()) << mirror.status();
  // Lose every object: the fetch is a no-op, the checkout finds out and clones again.
  testing::Shell("rm -rf " + (*mirror / "objects").string() + "/* ");
  ASSERT_TRUE(spaces.Fetch("1", repo_.string(), git_).ok());
  auto ws = spaces.Checkout("1", repo_.string(), *mirror, "main", git_);
  ASSERT_TRUE(ws.ok()) << ws.status();
  EXPECT_EQ(ws->commit, first_);
  // A broken HEAD.
  std::ofstream(*mirror / "HEAD") << "garbage\n";
  ASSERT_TRUE(mirrors.Sync("1", repo_.string(), git_).ok());
  EXPECT_EQ(*Mirrors::Resolve(*mirror, "main", git_), first_);
}

TEST_F(WorkspaceTest, ConcurrentSyncsShareOneMirror) {
  Mirrors mirrors(data_ / "mirrors");
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      GitContext git = git_;
      git.log = nullptr;
      if (mirrors.Sync("1", repo_.string(), git).ok()) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 8);
  EXPECT_EQ(testing::Shell("ls -d " + (data_ / "mirrors").string() + "/*.git | wc -l").output,
            "1\n");
}

// --- Checkout layers ---

TEST_F(WorkspaceTest, CheckoutIsAGitWorkTreeOwnedByTheSandbox) {
  SKIP_UNLESS_ROOT();
  Workspaces spaces(Options());
  auto mirror = spaces.Fetch("1", repo_.string(), git_);
  ASSERT_TRUE(mirror.ok()) << mirror.status();
  auto ws = spaces.Checkout("1", repo_.string(), *mirror, "main", git_);
  ASSERT_TRUE(ws.ok()) << ws.status() << log_;
  ASSERT_EQ(ws->checkout.dirs().size(), 1u);
  const auto layer = ws->checkout.dirs().front();
  struct stat st {};
  ASSERT_EQ(::stat((layer / "src/a.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kUid);
  int code = 0;
  std::string out = InWorkspace(ws->checkout.dirs(),
                                "cat src/a.txt; git status --porcelain; git rev-parse HEAD; "
                                "git log --oneline | wc -l; git remote get-url origin; "
                                "echo new >> src/a.txt; git -c user.name=t -c user.email=t@t "
                                "commit -qam edit && git diff --stat HEAD~1 | tail -1",
                                &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(out,
            "a1\n" + first_ + "\n1\n" + repo_.string() + "\n 1 file changed, 1 insertion(+)\n");
  // The layer itself is untouched.
  EXPECT_EQ(testing::Shell("cat " + (layer / "src/a.txt").string()).output, "a1\n");
}

TEST_F(WorkspaceTest, ANewCommitIsADeltaHoldingOnlyWhatChanged) {
  SKIP_UNLESS_ROOT();
  Workspaces spaces(Options());
  auto mirror = spaces.Fetch("1", repo_.string(), git_);
  ASSERT_TRUE(mirror.ok());
  auto base = spaces.Checkout("1", repo_.string(), *mirror, "main", git_);
  ASSERT_TRUE(base.ok()) << base.status();
  testing::Shell("cd " + repo_.string() + " && git rm -q gone.txt && git commit -qm rm");
  const std::string second =
      testing::CommitFiles(repo_, {{"src/a.txt", "a2\n"}, {"new.txt", "n\n"}}, "second");
  ASSERT_TRUE(spaces.Fetch("1", repo_.string(), git_).ok());
  auto next = spaces.Checkout("1", repo_.string(), *mirror, "main", git_);
  ASSERT_TRUE(next.ok()) << next.status() << log_;
  ASSERT_EQ(next->checkout.dirs().size(), 2u);  // the delta over the first checkout
  const auto delta = next->checkout.dirs().front();
  EXPECT_TRUE(std::filesystem::exists(delta / "src/a.txt"));
  EXPECT_TRUE(std::filesystem::exists(delta / "new.txt"));
  EXPECT_FALSE(std::filesystem::exists(delta / "src/b.txt"));  // unchanged: only below
  EXPECT_FALSE(std::filesystem::exists(delta / "README"));
  EXPECT_TRUE(std::filesystem::is_character_file(delta / "gone.txt"));  // a whiteout
  int code = 0;
  std::string out = InWorkspace(next->checkout.dirs(),
                                "cat src/a.txt src/b.txt new.txt; ls gone.txt 2>/dev/null; "
                                "git status --porcelain; git rev-parse HEAD origin/main; "
                                "git log --oneline | wc -l; git diff-files --name-only; "
                                "idx=$(stat -c %Y .git/index); git ls-files --debug | "
                                "awk -v idx=$idx '/mtime:/ {split($2, t, \":\"); "
                                "if (t[1] >= idx) n++} END {print n + 0}'",
                                &code);
  EXPECT_EQ(code, 0) << out;
  // The new objects are there (log, origin/main), nothing is racily clean.
  EXPECT_EQ(out, "a2\nb1\nn\n" + second + "\n" + second + "\n3\n0\n");
  // The first commit's layers are unchanged and still usable.
  EXPECT_EQ(InWorkspace(base->checkout.dirs(), "cat src/a.txt gone.txt; git status --porcelain"),
            "a1\nbye\n");
}

// A force-push, then gc in the mirror: the cached checkout's commit is gone, so the next commit
// cannot be a delta over it. It becomes a full checkout.
TEST_F(WorkspaceTest, ADeltaWhoseBaseIsGoneFromTheMirrorBecomesAFullCheckout) {
  SKIP_UNLESS_ROOT();
  Workspaces spaces(Options());
  auto mirror = spaces.Fetch("1", repo_.string(), git_);
  ASSERT_TRUE(spaces.Checkout("1", repo_.string(), *mirror, "main", git_).ok());
  ASSERT_EQ(testing::Shell("cd " + repo_.string() +
                           " && echo rewritten > README && git add -A && "
                           "git -c user.name=t -c user.email=t@t commit -q --amend -m rewritten && "
                           "git reflog expire --all --expire=now && git gc -q --prune=now")
                .exit_code,
            0);
  ASSERT_TRUE(spaces.Fetch("1", repo_.string(), git_).ok());
  ASSERT_EQ(
      testing::Shell("git -C " + mirror->string() + " reflog expire --all --expire=now && git -C " +
                     mirror->string() + " gc -q --prune=now")
          .exit_code,
      0);
  auto ws = spaces.Checkout("1", repo_.string(), *mirror, "main", git_);
  ASSERT_TRUE(ws.ok()) << ws.status() << log_;
  EXPECT_EQ(ws->checkout.dirs().size(), 1u);
  EXPECT_EQ(InWorkspace(ws->checkout.dirs(), "cat README; git status --porcelain"), "rewritten\n");
}

TEST_F(WorkspaceTest, GitDoesNotRehashTheCheckout) {
  SKIP_UNLESS_ROOT();
  Workspaces spaces(Options());
  auto mirror = spaces.Fetch("1", repo_.string(), git_);
  auto ws = spaces.Checkout("1", repo_.string(), *mirror, "main", git_);
  ASSERT_TRUE(ws.ok()) << ws.status();
  // No entry is "racily clean" (dated no earlier than the index itself: git would re-hash it on
  // every status), and the stat data matches what the sandbox sees.
  EXPECT_EQ(InWorkspace(ws->checkout.dirs(),
                        "idx=$(stat -c %Y .git/index); git ls-files --debug | "
                        "awk -v idx=$idx '/mtime:/ {split($2, t, \":\"); if (t[1] >= idx) n++} "
                        "END {print n + 0}'; git diff-files --name-only"),
            "0\n");
}

// A prebuild is made in a sandbox whose root is the host's system directories and the spec's
// host paths: one made with other host paths (or none) is not reused.
TEST_F(WorkspaceTest, PrebuildKeyDependsOnTheSandboxsHostPaths) {
  const EnvironmentSpec environment{.setup = {"make deps"}};
  Workspaces plain(Options());
  WorkspaceOptions with_go = Options();
  with_go.sandbox.host_paths = {"/usr/share"};
  Workspaces go(std::move(with_go));
  EXPECT_EQ(plain.PrebuildKey(environment, {}), Workspaces(Options()).PrebuildKey(environment, {}));
  EXPECT_NE(plain.PrebuildKey(environment, {}), go.PrebuildKey(environment, {}));
}

TEST_F(WorkspaceTest, GcRemovesLeastRecentlyUsedLayersButNeverOneInUse) {
  SKIP_UNLESS_ROOT();
  Workspaces spaces(Options(/*cache_bytes=*/1));  // everything over budget
  auto mirror = spaces.Fetch("1", repo_.string(), git_);
  auto first = spaces.Checkout("1", repo_.string(), *mirror, first_, git_);
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string second = testing::CommitFiles(repo_, {{"src/a.txt", "a2\n"}}, "2");
  ASSERT_TRUE(spaces.Fetch("1", repo_.string(), git_).ok());
  auto next = spaces.Checkout("1", repo_.string(), *mirror, second, git_);
  ASSERT_TRUE(next.ok()) << next.status();
  // Both in use (the delta's parent too): nothing may go.
  spaces.cache().Collect();
  EXPECT_EQ(spaces.cache().List().size(), 2u);
  for (const auto& dir : next->checkout.dirs()) EXPECT_TRUE(std::filesystem::exists(dir));
  // The delta released: it goes; its parent is still leased by `first`.
  const auto delta = next->checkout.dirs().front();
  next = StatusOr<RunWorkspace>(InternalError("released"));
  spaces.cache().Collect();
  EXPECT_FALSE(std::filesystem::exists(delta));
  EXPECT_TRUE(std::filesystem::exists(first->checkout.dirs().front()));
  first = StatusOr<RunWorkspace>(InternalError("released"));
  spaces.cache().Collect();
  EXPECT_TRUE(spaces.cache().List().empty());
}

// --- Environments and prebuilds ---

class PrebuildTest : public WorkspaceTest {
 protected:
  void SetUp() override {
    SKIP_UNLESS_ROOT();
    WorkspaceTest::SetUp();
  }
  // Prepares a run of `ref` through the environment phase.
  StatusOr<RunWorkspace> Prepare(Workspaces& spaces, bool force = false) {
    ASSIGN_OR_RETURN(auto mirror, spaces.Fetch("1", repo_.string(), git_));
    ASSIGN_OR_RETURN(RunWorkspace ws, spaces.Checkout("1", repo_.string(), mirror, "main", git_));
    RETURN_IF_ERROR(spaces.Environment(
        ws, "1", /*build=*/true, force,
        [this](std::string_view, std::string_view line) { log_ += std::string(line) + "\n"; },
        nullptr));
    return ws;
  }
  // Lines of `text` that are exactly `line` (setup's own output, not the "[setup …]" header).
  static int Count(const std::string& text, const std::string& line) {
    int n = 0;
    for (size_t at = 0; at < text.size();) {
      size_t end = text.find('\n', at);
      if (end == std::string::npos) end = text.size();
      if (text.compare(at, end - at, line) == 0) ++n;
      at = end + 1;
    }
    return n;
  }
};

TEST_F(PrebuildTest, SetupRunsOnceAndIsReusedUntilTheSpecChanges) {
  testing::CommitFiles(
      repo_,
      {{".nightshift/environment.yml",
        "setup:\n  - mkdir -p deps && echo installed > deps/lib && echo SETUP-RAN\n"
        "env:\n  GREETING: hi\n"}},
      "env");
  Workspaces spaces(Options());
  auto ws = Prepare(spaces);
  ASSERT_TRUE(ws.ok()) << ws.status() << log_;
  EXPECT_EQ(ws->prebuild_status, "built") << log_;
  EXPECT_FALSE(ws->setup_pending);
  EXPECT_EQ(Count(log_, "SETUP-RAN"), 1);
  EXPECT_EQ(ws->environment.env.at("GREETING"), "hi");
  EXPECT_EQ(InWorkspace(ws->layers(), "cat deps/lib; git status --porcelain --ignored | wc -l"),
            "installed\n1\n");  // deps/ is the one untracked entry

  auto again = Prepare(spaces);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->prebuild_status, "reused");
  EXPECT_EQ(again->prebuild_id, ws->prebuild_id);
  EXPECT_EQ(Count(log_, "SETUP-RAN"), 1) << "setup ran again";

  // A new commit that does not touch the environment or lock files keeps the prebuild.
  testing::CommitFiles(repo_, {{"src/a.txt", "a3\n"}}, "code only");
  auto code_only = Prepare(spaces);
  ASSERT_TRUE(code_only.ok());
  EXPECT_EQ(code_only->prebuild_status, "reused");

  // A lock file change invalidates it, and so does a spec change.
  testing::CommitFiles(repo_, {{"package-lock.json", "{}\n"}}, "lock");
  auto locked = Prepare(spaces);
  ASSERT_TRUE(locked.ok());
  EXPECT_EQ(locked->prebuild_status, "built");
  EXPECT_NE(locked->prebuild_id, ws->prebuild_id);
  testing::CommitFiles(repo_,
                       {{".nightshift/environment.yml",
                         "setup: mkdir -p deps && echo v2 > deps/lib && echo SETUP-RAN\n"}},
                       "env v2");
  auto changed = Prepare(spaces);
  ASSERT_TRUE(changed.ok());
  EXPECT_EQ(changed->prebuild_status, "built");
  EXPECT_EQ(Count(log_, "SETUP-RAN"), 3);
  EXPECT_EQ(InWorkspace(changed->layers(), "cat deps/lib"), "v2\n");
}

TEST_F(PrebuildTest, AFailedSetupFailsThePrebuildAndRunsFallBackToSetup) {
  testing::CommitFiles(repo_,
                       {{".nightshift/environment.yml", "setup:\n  - echo trying && exit 3\n"}},
                       "broken env");
  Workspaces spaces(Options());
  auto ws = Prepare(spaces);
  ASSERT_TRUE(ws.ok()) << ws.status();
  EXPECT_TRUE(ws->setup_pending);
  EXPECT_NE(ws->prebuild_status.find("exited with status 3"), std::string::npos)
      << ws->prebuild_status;
  EXPECT_EQ(Count(log_, "trying"), 1);
  // Not retried for the same key; nothing half-built is cached.
  auto again = Prepare(spaces);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->setup_pending);
  EXPECT_EQ(Count(log_, "trying"), 1);
  EXPECT_FALSE(std::filesystem::exists(data_ / "cache/layers" / ws->prebuild_id));
  // An explicit prebuild retries.
  auto forced = Prepare(spaces, /*force=*/true);
  ASSERT_TRUE(forced.ok());
  EXPECT_EQ(Count(log_, "trying"), 2);
}

TEST_F(PrebuildTest, DevcontainerSubsetIsHonoured) {
  testing::CommitFiles(
      repo_,
      {{".devcontainer/devcontainer.json",
        "{\n  // comments are fine\n  \"image\": \"ignored\",\n"
        "  \"containerEnv\": {\"TOOL_HOME\": \"/workspace/.tool\"},\n"
        "  \"onCreateCommand\": \"mkdir -p .tool && echo oncreate > .tool/log\",\n"
        "  \"postCreateCommand\": [\"sh\", \"-c\", \"echo post >> .tool/log\"],\n}\n"}},
      "devcontainer");
  Workspaces spaces(Options());
  auto ws = Prepare(spaces);
  ASSERT_TRUE(ws.ok()) << ws.status() << log_;
  EXPECT_EQ(ws->prebuild_status, "built") << log_;
  EXPECT_EQ(ws->environment.env.at("TOOL_HOME"), "/workspace/.tool");
  EXPECT_EQ(InWorkspace(ws->layers(), "cat .tool/log"), "oncreate\npost\n");
}

TEST_F(PrebuildTest, AnInvalidEnvironmentFileNamesTheLine) {
  testing::CommitFiles(repo_, {{".nightshift/environment.yml", "setup:\n  - ok\nsetpu: typo\n"}},
                       "typo");
  Workspaces spaces(Options());
  auto ws = Prepare(spaces);
  ASSERT_EQ(ws.status().code(), StatusCode::kInvalidArgument) << ws.status();
  EXPECT_NE(ws.status().message().find(".nightshift/environment.yml:3:"), std::string::npos)
      << ws.status();
}

}  // namespace
}  // namespace nightshift::workspace
