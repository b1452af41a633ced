// A property over random trees: what the platform reads from a run's overlay upper dir (as
// data, never running git there) is exactly what `git add -A` in the merged view would commit;
// the platform's own commit of it has exactly the tree git would write; and a change that
// touches a protected path, on either side, is always blocked.
//
// Each round makes a random repository (nested directories; names with spaces, quotes, unicode,
// a newline; executable files; symlinks; a .gitignore), checks it out as a lower layer, runs
// random operations (writes, appends, deletions, renames of files and directories, mode
// changes, symlinks, files and directories replacing each other, copies of unchanged content,
// ignored files, nested repositories) in a real overlay, then asks git in that overlay for the
// oracle. Needs root (the overlay).

#include <unistd.h>

#include <map>
#include <random>
#include <sstream>

#include "core/fs.h"
#include "forge/builtin.h"
#include "forge/delivery.h"
#include "forge/policy.h"
#include "gtest/gtest.h"
#include "sandbox/process.h"
#include "tests/support/test_support.h"
#include "workspace/result.h"

namespace nightshift {
namespace {

using testing::Shell;
using testing::ShellQuote;

struct OracleEntry {
  uint32_t old_mode = 0, new_mode = 0;
  std::string new_oid;
};

// `git diff --cached --raw -z` records: ":old new oldsha newsha S\0path\0".
std::map<std::string, OracleEntry> ParseRaw(const std::string& raw) {
  std::map<std::string, OracleEntry> out;
  size_t at = 0;
  while (at < raw.size()) {
    const size_t meta_end = raw.find('\0', at);
    if (meta_end == std::string::npos) break;
    std::istringstream meta(raw.substr(at + 1, meta_end - at - 1));
    std::string old_mode, new_mode, old_oid, new_oid, status;
    meta >> old_mode >> new_mode >> old_oid >> new_oid >> status;
    const size_t path_end = raw.find('\0', meta_end + 1);
    const std::string path = raw.substr(meta_end + 1, path_end - meta_end - 1);
    out[path] = OracleEntry{static_cast<uint32_t>(std::stoul(old_mode, nullptr, 8)),
                            static_cast<uint32_t>(std::stoul(new_mode, nullptr, 8)),
                            new_mode == "000000" ? "" : new_oid};
    at = path_end + 1;
  }
  return out;
}

class Round {
 public:
  explicit Round(uint32_t seed) : rng_(seed) {}

  std::string Pick(const std::vector<std::string>& from) { return from[rng_() % from.size()]; }

  // A random path: 0–2 directories, then a file name.
  std::string RandomPath() {
    static const std::vector<std::string> dirs = {
        "src", "docs", "a b", "\xc3\xbc", "x\"q", ".github/workflows", ".nightshift", "lib/deep"};
    static const std::vector<std::string> files = {"f1",     "f 2",    "\xc3\xa9t\xc3\xa9.txt",
                                                   "q\"t",   "ci.yml", "CODEOWNERS",
                                                   "n\nl",   "x.log",  "build",
                                                   "keep.c", "-dash",  "{a => b}"};
    std::string path;
    const int depth = static_cast<int>(rng_() % 3);
    for (int i = 0; i < depth; ++i) path += Pick(dirs) + "/";
    return path + Pick(files);
  }

  std::map<std::string, std::string> RandomBase() {
    std::map<std::string, std::string> files = {{".gitignore", "*.log\nbuild/\n"}};
    const int n = 6 + static_cast<int>(rng_() % 12);
    for (int i = 0; i < n; ++i) {
      std::string path = RandomPath();
      if (path.ends_with(".log") || path.find("build/") != std::string::npos) continue;
      bool clash = false;  // a file may not also be a directory of another
      for (const auto& [other, _] : files) {
        if (other.starts_with(path + "/") || path.starts_with(other + "/")) clash = true;
      }
      if (!clash) files[path] = StrCat("content ", rng_() % 1000, "\n");
    }
    return files;
  }

  std::string Content() { return StrCat("v", rng_() % 5, "\nline\n"); }

  // Random operations over `known` paths (the base's) and new ones; each may fail harmlessly.
  std::string RandomOps(const std::vector<std::string>& known) {
    std::string script;
    const int n = 1 + static_cast<int>(rng_() % 8);
    for (int i = 0; i < n; ++i) {
      const std::string p = known.empty() || rng_() % 3 == 0 ? RandomPath() : Pick(known);
      const std::string q = RandomPath();
      const std::string qp = ShellQuote(p), qq = ShellQuote(q);
      const std::string dir_p = p.find('/') == std::string::npos ? "." : p.substr(0, p.rfind('/'));
      const std::string qd = ShellQuote(dir_p);
      switch (rng_() % 14) {
        case 0:
          script += StrCat("mkdir -p ", qd, " && printf %s ", ShellQuote(Content()), " > ", qp);
          break;
        case 1:
          script += StrCat("printf more >> ", qp);
          break;
        case 2:
          script += StrCat("rm -f ", qp);
          break;
        case 3:
          script += StrCat("rm -rf ", qd);
          break;
        case 4:
          script += StrCat("mkdir -p \"$(dirname ", qq, ")\" && mv ", qp, " ", qq);
          break;
        case 5:
          script += StrCat("mv ", qd, " moved-", rng_() % 3);
          break;
        case 6:
          script += StrCat("chmod ", rng_() % 2 ? "+x " : "-x ", qp);
          break;
        case 7:
          script += StrCat("mkdir -p \"$(dirname ", qq, ")\" && ln -s ",
                           ShellQuote(Pick({"../README", "/etc", "f1", ".github", "x/../../y"})),
                           " ", qq);
          break;
        case 8:
          script += StrCat("rm -f ", qp, " && mkdir -p ", qp, " && printf y > ", qp, "/inner");
          break;
        case 9:
          script += StrCat("rm -rf ", qd, " && printf z > ", qd);
          break;
        case 10:
          script += StrCat("cp ", qp, " \"$SCRATCH/t\" && rm ", qp, " && cp \"$SCRATCH/t\" ", qp);
          break;
        case 11:
          script += StrCat("touch ", qp, " && cat ", qp, " > /dev/null");
          break;
        case 12:
          script += "printf i > more.log && mkdir -p build && printf o > build/out";
          break;
        default:
          script += StrCat("mkdir -p ", qd, "/nest && git -C ", qd, "/nest init -q && git -C ", qd,
                           "/nest -c user.name=n -c user.email=n@n commit -q --allow-empty -m n");
      }
      script += " 2>/dev/null || true\n";
    }
    return script;
  }

 private:
  std::mt19937 rng_;
};

TEST(ResultProperty, TheResultIsWhatGitAddWouldCommitAndProtectedPathsAreAlwaysBlocked) {
  if (::geteuid() != 0) GTEST_SKIP() << "overlay mounts need root";
  const forge::ReviewPolicy policy;
  int rounds_with_changes = 0;
  for (uint32_t seed = 1; seed <= 60; ++seed) {
    SCOPED_TRACE(StrCat("seed ", seed));
    Round round(seed);
    testing::TempDir dir;
    const auto base_files = round.RandomBase();
    const auto origin = dir.path() / "origin";
    const std::string base = testing::MakeGitRepo(origin, base_files);
    // Executable bits and a symlink in the base too.
    std::string extra;
    for (const auto& [path, _] : base_files) {
      if (path.size() % 3 == 0) extra += StrCat("chmod +x ", ShellQuote(path), " && ");
    }
    const std::string commit =
        Shell(StrCat("cd ", ShellQuote(origin.string()), " && ", extra,
                     "ln -s README link && git add -A && git -c user.name=t -c user.email=t@t "
                     "commit -qm more && git rev-parse HEAD"))
            .output.substr(0, 40);
    ASSERT_EQ(commit.size(), 40u) << base;
    const auto checkout = dir.path() / "checkout";
    ASSERT_EQ(Shell(StrCat("git clone -q ", ShellQuote(origin.string()), " ",
                           ShellQuote(checkout.string())))
                  .exit_code,
              0);
    std::vector<std::string> known;
    for (const auto& [path, _] : base_files) known.push_back(path);
    const std::string ops = round.RandomOps(known);
    SCOPED_TRACE(ops);

    const auto upper = dir.path() / "upper", work = dir.path() / "work",
               merged = dir.path() / "merged", scratch = dir.path() / "scratch";
    for (const auto& d : {upper, work, merged, scratch}) std::filesystem::create_directories(d);
    sandbox::ProcessSpec spec{
        .argv = {"/bin/sh", "-c",
                 StrCat("cd \"$MERGED\" && {\n", ops,
                        "}\ncd \"$MERGED\" && git add -A 2>/dev/null; "
                        "git diff --cached --raw -z --no-renames --no-abbrev HEAD > "
                        "\"$SCRATCH/raw\" && git write-tree > \"$SCRATCH/tree\"")},
        .env = {{"PATH", "/usr/bin:/bin"},
                {"HOME", scratch.string()},
                {"MERGED", merged.string()},
                {"SCRATCH", scratch.string()},
                {"GIT_CONFIG_NOSYSTEM", "1"},
                {"GIT_CONFIG_GLOBAL", "/dev/null"}},
        .timeout_ms = 60'000};
    spec.private_overlay = sandbox::ProcessSpec::PrivateOverlay{
        .lowers = {checkout}, .upper = upper, .work = work, .target = merged};
    auto ran = sandbox::RunProcess(spec, nullptr);
    ASSERT_TRUE(ran.ok()) << ran.status();
    ASSERT_EQ(ran->exit_code, 0);
    const auto oracle = ParseRaw(*ReadFile(scratch / "raw"));

    workspace::GitContext git;
    auto result = workspace::CollectRunResult(
        upper, {checkout},
        [&](const std::vector<std::string>& tops) {
          return workspace::ListTree(git, checkout / ".git", commit, tops);
        },
        "sha1");
    ASSERT_TRUE(result.ok()) << result.status();

    // The same paths, modes and contents as git's own view.
    std::map<std::string, OracleEntry> ours;
    bool gitlinks = false;
    for (const auto& c : result->changes) {
      ours[c.path] = OracleEntry{c.old_mode, c.new_mode,
                                 c.new_mode == workspace::kModeGitlink ? "" : c.new_oid};
      gitlinks = gitlinks || c.new_mode == workspace::kModeGitlink ||
                 c.old_mode == workspace::kModeGitlink;
    }
    std::string want, got;
    for (const auto& [path, e] : oracle) {
      want += StrCat(forge::DisplayPath(path), " ", e.old_mode, ">", e.new_mode, " ",
                     e.new_mode == workspace::kModeGitlink ? "" : e.new_oid, "\n");
    }
    for (const auto& [path, e] : ours) {
      got +=
          StrCat(forge::DisplayPath(path), " ", e.old_mode, ">", e.new_mode, " ", e.new_oid, "\n");
    }
    ASSERT_EQ(got, want);
    if (result->changes.empty()) continue;
    ++rounds_with_changes;

    // The platform's commit has the tree git would write.
    auto repo =
        forge::DeliveryRepo::Create(dir.path() / "delivery.git", checkout / ".git", "sha1", git);
    ASSERT_TRUE(repo.ok()) << repo.status();
    auto made = repo->Commit(commit, result->changes, forge::Identity{}, forge::Identity{}, "m\n",
                             1700000000);
    ASSERT_TRUE(made.ok()) << made.status();
    if (!gitlinks) {
      const std::string tree = Shell(StrCat("git --git-dir ", ShellQuote(repo->dir().string()),
                                            " rev-parse ", *made, "^{tree}"))
                                   .output;
      EXPECT_EQ(tree, *ReadFile(scratch / "tree"));
    }

    // A change touching a protected path, on either side, is blocked.
    auto lines = repo->LineCounts(commit, *made);
    ASSERT_TRUE(lines.ok()) << lines.status();
    const auto reasons = forge::CheckChanges(
        policy, result->changes, *lines,
        [&](const workspace::FileChange& c) { return repo->ReadBlob(c.old_oid, 1 << 20); });
    bool touches = false;
    for (const auto& [path, _] : oracle) {
      for (const auto& glob : policy.protected_paths) touches |= GlobMatch(glob, path);
    }
    std::string all;
    for (const auto& r : reasons) all += r + "; ";
    if (touches) {
      EXPECT_NE(all.find("protected path"), std::string::npos) << all;
    }
    if (gitlinks) {
      EXPECT_NE(all.find("submodule or nested repository"), std::string::npos) << all;
    }
  }
  EXPECT_GT(rounds_with_changes, 30);
}

}  // namespace
}  // namespace nightshift
