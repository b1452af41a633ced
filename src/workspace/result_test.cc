// The run's result read as data, without root: a real repository gives the checked-out tree,
// and the "upper dir" is written by hand with plain files, directories and symlinks (whiteouts
// and opaque directories need a real overlay: tests/result_property_test.cc).

#include "workspace/result.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "gtest/gtest.h"
#include "tests/support/test_support.h"

namespace nightshift::workspace {
namespace {

using testing::Shell;
using testing::ShellQuote;

class ResultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = dir_.path() / "repo";
    commit_ = testing::MakeGitRepo(repo_, {{"README", "hello\n"},
                                           {"src/main.c", "int main;\n"},
                                           {"src/util.c", "util\n"},
                                           {".gitignore", "*.log\nbuild/\n"},
                                           {"docs/.gitignore", "!keep.log\n"}});
    upper_ = dir_.path() / "upper";
    std::filesystem::create_directories(upper_);
  }

  void Write(const std::string& path, const std::string& content) {
    const auto full = upper_ / path;
    std::filesystem::create_directories(full.parent_path());
    std::ofstream(full, std::ios::binary) << content;
  }

  StatusOr<RunResult> Collect(std::vector<std::filesystem::path> lowers = {},
                              ResultLimits limits = {}) {
    if (lowers.empty()) lowers = {repo_};
    GitContext git;
    return CollectRunResult(
        upper_, lowers,
        [&](const std::vector<std::string>& tops) {
          ++base_reads_;
          return ListTree(git, repo_ / ".git", commit_, tops);
        },
        "sha1", limits);
  }

  // "A path", "M path", "D path" per change.
  static std::vector<std::string> Summary(const RunResult& result) {
    std::vector<std::string> out;
    for (const auto& c : result.changes) {
      out.push_back(StrCat(c.added() ? "A " : c.deleted() ? "D " : "M ", c.path));
    }
    return out;
  }

  std::string BlobOf(const std::string& content) {
    auto r = Shell("printf %s " + ShellQuote(content) + " | git hash-object --stdin");
    return r.output.substr(0, r.output.find('\n'));
  }

  testing::TempDir dir_;
  std::filesystem::path repo_, upper_;
  std::string commit_;
  int base_reads_ = 0;
};

TEST_F(ResultTest, NothingWrittenCostsOneDirectoryRead) {
  auto result = Collect();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->changes.empty());
  EXPECT_EQ(base_reads_, 0);
  // The run's own git activity (index, objects, commits, hooks) is not part of the result.
  Write(".git/index", "junk");
  Write(".git/hooks/pre-push", "#!/bin/sh\ntouch /tmp/pwned\n");
  Write(".git/config", "[core]\n\thooksPath = /tmp\n");
  result = Collect();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->changes.empty());
  EXPECT_EQ(base_reads_, 0);
}

TEST_F(ResultTest, ModifiedAddedAndUnchangedFiles) {
  Write("README", "hello, world\n");  // modified
  Write("src/util.c", "util\n");      // copied up, same bytes: unchanged
  Write("src/new.c", "new\n");        // added
  auto result = Collect();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(Summary(*result), (std::vector<std::string>{"M README", "A src/new.c"}));
  const FileChange& readme = result->changes[0];
  EXPECT_EQ(readme.old_mode, kModeFile);
  EXPECT_EQ(readme.new_mode, kModeFile);
  EXPECT_EQ(readme.old_oid, BlobOf("hello\n"));
  EXPECT_EQ(readme.new_oid, BlobOf("hello, world\n"));
  EXPECT_EQ(readme.content, "hello, world\n");
  EXPECT_EQ(base_reads_, 1);
}

TEST_F(ResultTest, AnExecutableBitAloneIsAChange) {
  Write("src/main.c", "int main;\n");
  ASSERT_EQ(::chmod((upper_ / "src/main.c").c_str(), 0755), 0);
  auto result = Collect();
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(Summary(*result), std::vector<std::string>{"M src/main.c"});
  EXPECT_EQ(result->changes[0].old_mode, kModeFile);
  EXPECT_EQ(result->changes[0].new_mode, kModeExecutable);
}

TEST_F(ResultTest, IgnoredFilesAreLeftOutAsGitAddWould) {
  Write("debug.log", "x");             // *.log
  Write("build/out/a.o", "x");         // build/
  Write("docs/keep.log", "kept");      // re-included by docs/.gitignore
  Write("src/tmp/.gitignore", "*\n");  // a new .gitignore ignores itself and its directory
  Write("src/tmp/junk", "x");
  Write("notes.txt", "n\n");
  auto result = Collect();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(Summary(*result), (std::vector<std::string>{"A docs/keep.log", "A notes.txt"}));
}

TEST_F(ResultTest, AGitignoreTheRunChangedIsTheOneThatCounts) {
  Write(".gitignore", "*.log\n");  // build/ no longer ignored
  Write("build/out", "o\n");
  auto result = Collect();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(Summary(*result), (std::vector<std::string>{"M .gitignore", "A build/out"}));
}

TEST_F(ResultTest, SetupProductsAreNotTheRunsWork) {
  const auto setup = dir_.path() / "setup";
  std::filesystem::create_directories(setup / "node_modules/x");
  std::ofstream(setup / "node_modules/x/index.js") << "module\n";
  std::ofstream(setup / ".deps") << "ok\n";
  Write("node_modules/x/index.js", "patched\n");  // the run touched a setup product
  Write(".deps", "again\n");
  Write("node_modules/x/new.js", "new\n");  // but this one is its own
  auto result = Collect({repo_, setup});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(Summary(*result), std::vector<std::string>{"A node_modules/x/new.js"});
}

TEST_F(ResultTest, SymlinksAreTheirTargetsNeverFollowed) {
  ASSERT_EQ(::symlink("/etc/passwd", (upper_ / "passwd").c_str()), 0);
  ASSERT_EQ(::symlink("/etc", (upper_ / "etc").c_str()), 0);
  auto result = Collect();
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(Summary(*result), (std::vector<std::string>{"A etc", "A passwd"}));
  EXPECT_EQ(result->changes[1].new_mode, kModeSymlink);
  EXPECT_EQ(result->changes[1].content, "/etc/passwd");
  EXPECT_EQ(result->changes[1].new_oid, BlobOf("/etc/passwd"));
}

TEST_F(ResultTest, ASymlinkedGitignoreIsNotRead) {
  std::ofstream(dir_.path() / "outside") << "*\n";  // would ignore everything
  std::filesystem::create_directories(upper_ / "lib");
  ASSERT_EQ(::symlink((dir_.path() / "outside").c_str(), (upper_ / "lib/.gitignore").c_str()), 0);
  Write("lib/code.c", "c\n");
  auto result = Collect();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(Summary(*result), (std::vector<std::string>{"A lib/.gitignore", "A lib/code.c"}));
}

TEST_F(ResultTest, ANestedRepositoryIsOneGitlinkChange) {
  Write("vendor/lib/.git/HEAD", "ref: refs/heads/main\n");
  Write("vendor/lib/a.c", "a\n");
  Write("x/.GIT/config", "c");  // any spelling
  auto result = Collect();
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(Summary(*result), (std::vector<std::string>{"A vendor/lib", "A x"}));
  EXPECT_EQ(result->changes[0].new_mode, kModeGitlink);
  EXPECT_EQ(result->changes[1].new_mode, kModeGitlink);
}

TEST_F(ResultTest, WritingIntoASubmoduleIsAGitlinkChange) {
  ASSERT_EQ(
      Shell("cd " + ShellQuote(repo_.string()) + " && git update-index --add --cacheinfo 160000," +
            commit_ + ",sub && git -c user.name=t -c user.email=t@t commit -qm sub")
          .exit_code,
      0);
  commit_ = Shell("git -C " + ShellQuote(repo_.string()) + " rev-parse HEAD").output.substr(0, 40);
  Write("sub/file", "x\n");
  auto result = Collect();
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(Summary(*result), std::vector<std::string>{"M sub"});
  EXPECT_EQ(result->changes[0].old_mode, kModeGitlink);
  EXPECT_EQ(result->changes[0].new_mode, kModeGitlink);
}

TEST_F(ResultTest, NamesAreBytes) {
  for (const std::string name :
       {"a\"b", "new\nline", "tab\there", "\xc3\xa9t\xc3\xa9", " lead", "{x => y}", "\xff\xfe"}) {
    Write(name, name);
  }
  auto result = Collect();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->changes.size(), 7u);
  for (const auto& change : result->changes) EXPECT_EQ(change.content, change.path);
}

TEST_F(ResultTest, AFifoHidesWhatItReplacesAndIsNotContent) {
  ASSERT_EQ(::mkfifo((upper_ / "README").c_str(), 0644), 0);
  auto result = Collect();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(Summary(*result), std::vector<std::string>{"D README"});
}

TEST_F(ResultTest, AFileReplacingADirectoryDeletesWhatWasIn) {
  Write("src", "now a file\n");
  auto result = Collect();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(Summary(*result), (std::vector<std::string>{"A src", "D src/main.c", "D src/util.c"}));
}

TEST_F(ResultTest, LimitsMakeTheResultTooLargeToReview) {
  for (int i = 0; i < 20; ++i) Write(StrCat("f", i), "0123456789");
  auto entries = Collect({}, ResultLimits{.max_entries = 10});
  EXPECT_EQ(entries.status().code(), StatusCode::kResourceExhausted) << entries.status();
  auto bytes = Collect({}, ResultLimits{.max_bytes = 100});
  EXPECT_EQ(bytes.status().code(), StatusCode::kResourceExhausted) << bytes.status();
  EXPECT_TRUE(Collect({}, ResultLimits{.max_bytes = 200}).ok());
}

TEST_F(ResultTest, AbsurdNestingIsTooLargeNotAStackOverflow) {
  // Made one level at a time: the whole path is longer than the kernel takes at once.
  ASSERT_EQ(Shell("cd " + ShellQuote(upper_.string()) +
                  " && for i in $(seq 1 300); do mkdir d && cd d || exit 1; done && echo x > f")
                .exit_code,
            0);
  auto result = Collect();
  EXPECT_EQ(result.status().code(), StatusCode::kResourceExhausted) << result.status();
  ASSERT_EQ(Shell("cd " + ShellQuote(upper_.string()) + " && rm -rf d").exit_code, 0);
}

TEST(GitBlobId, AsGitHashesIt) {
  EXPECT_EQ(GitBlobId("", "sha1"), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
  EXPECT_EQ(GitBlobId("hello\n", "sha1"), "ce013625030ba8dba906f756967f9e9ca394464a");
  EXPECT_EQ(GitBlobId("", "sha256"),
            "473a0f4c3be8a93681a267e3b1e9a7dcda1185436fe141f7749120a303721813");
}

}  // namespace
}  // namespace nightshift::workspace
