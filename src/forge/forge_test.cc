#include <random>

#include "forge/config.h"
#include "forge/policy.h"
#include "gtest/gtest.h"

namespace nightshift::forge {
namespace {

using workspace::FileChange;
using workspace::kModeExecutable;
using workspace::kModeFile;
using workspace::kModeGitlink;
using workspace::kModeSymlink;

FileChange Added(std::string path, std::string content = "x\n", uint32_t mode = kModeFile) {
  return FileChange{.path = std::move(path), .new_mode = mode, .content = std::move(content)};
}
FileChange Deleted(std::string path, uint32_t mode = kModeFile) {
  return FileChange{.path = std::move(path), .old_mode = mode, .old_oid = "0123"};
}
FileChange Modified(std::string path, std::string content, uint32_t old_mode = kModeFile,
                    uint32_t new_mode = kModeFile) {
  return FileChange{.path = std::move(path),
                    .old_mode = old_mode,
                    .old_oid = "0123",
                    .new_mode = new_mode,
                    .content = std::move(content)};
}

std::vector<std::string> Check(const ReviewPolicy& policy, const std::vector<FileChange>& changes,
                               const std::map<std::string, LineCount>& lines = {},
                               const std::string& old = "") {
  return CheckChanges(policy, changes, lines,
                      [&](const FileChange&) -> StatusOr<std::string> { return old; });
}

std::string Joined(const std::vector<std::string>& reasons) {
  std::string out;
  for (const auto& r : reasons) out += r + "\n";
  return out;
}

TEST(CheckChanges, EachRuleCanBlock) {
  ReviewPolicy policy;
  policy.max_files = 2;
  policy.max_lines = 10;
  policy.max_binary_bytes = 100;
  EXPECT_TRUE(Check(policy, {Added("src/a.c")}, {{"src/a.c", {1, 1}}}).empty());
  auto protected_path = Check(policy, {Added(".github/workflows/ci.yml")});
  ASSERT_EQ(protected_path.size(), 1u);
  EXPECT_EQ(protected_path[0],
            "changes a protected path: .github/workflows/ci.yml (.github/workflows/**)");
  EXPECT_EQ(Check(policy, {Added("a"), Added("b"), Added("c")}),
            std::vector<std::string>{"changes 3 files (at most 2)"});
  EXPECT_EQ(Check(policy, {Added("a")}, {{"a", {8, 5}}}),
            std::vector<std::string>{"changes 13 lines (at most 10)"});
  // A binary file counts by its newlines.
  EXPECT_EQ(Check(policy, {Added("lines.bin", std::string("\0", 1) + std::string(12, '\n'))},
                  {{"lines.bin", {-1, -1}}}),
            std::vector<std::string>{"changes 12 lines (at most 10)"});
  EXPECT_EQ(Check(policy, {Added("big.bin", std::string(500, '\0'))}),
            std::vector<std::string>{"adds a binary file of 500 bytes: big.bin (at most 100)"});
  EXPECT_EQ(Check(policy, {Added("cfg", "token = ghp_abcdefghijklmnopqrstuvwxyz0123456789\n")})
                .at(0)
                .rfind("adds something that looks like a secret (", 0),
            0u);
  // A removed secret is fine.
  EXPECT_TRUE(Check(policy, {Deleted("cfg")}).empty());
}

// Renames are a deletion and an addition, and both sides are checked: moving a workflow in or
// out is caught, and so is a mode change alone.
TEST(CheckChanges, BothSidesOfEveryChange) {
  ReviewPolicy policy;
  EXPECT_FALSE(Check(policy, {Deleted("foo/x.yml"), Added(".github/workflows/x.yml")}).empty());
  EXPECT_FALSE(Check(policy, {Deleted(".github/workflows/ci.yml"), Added("ci.yml")}).empty());
  EXPECT_FALSE(
      Check(policy, {Modified(".github/workflows/ci.yml", "x\n", kModeFile, kModeExecutable)})
          .empty());
  EXPECT_TRUE(Check(policy, {Deleted("foo/x.yml"), Added("bar/x.yml")}).empty());
}

// Paths are bytes, whatever they hold: quotes, newlines, tabs, unicode.
TEST(CheckChanges, QuotedAndUnicodePathsAreMatchedAsThemselves) {
  ReviewPolicy policy;
  for (const std::string path :
       {".github/workflows/a\"b.yml", ".github/workflows/new\nline.yml",
        ".github/workflows/tab\there.yml", ".github/workflows/\xc3\xbc.yml",
        ".github/workflows/ {x => y}.yml", ".nightshift/\\back"}) {
    auto reasons = Check(policy, {Added(path)});
    ASSERT_FALSE(reasons.empty()) << path;
    EXPECT_EQ(reasons[0].find('\n'), std::string::npos) << reasons[0];
  }
}

TEST(CheckChanges, SymlinksNamedAsOrPointingIntoProtectedPathsTouchThem) {
  ReviewPolicy policy;
  auto link = [](std::string path, std::string target) {
    return Added(std::move(path), std::move(target), kModeSymlink);
  };
  // Named as a protected directory.
  EXPECT_EQ(Check(policy, {link(".nightshift", "src")}),
            std::vector<std::string>{"changes a protected path: .nightshift (.nightshift/**)"});
  EXPECT_FALSE(Check(policy, {link(".github", "somewhere")}).empty());
  // Pointing into one, or at a directory above one.
  EXPECT_FALSE(Check(policy, {link("docs/ci", "../.github/workflows")}).empty());
  EXPECT_FALSE(Check(policy, {link("gh", ".github")}).empty());
  EXPECT_FALSE(Check(policy, {link("owners", "CODEOWNERS")}).empty());
  EXPECT_FALSE(Check(policy, {link("a/b/root", "../..")}).empty());
  // Out of the repository.
  EXPECT_EQ(Check(policy, {link("etc", "/etc")}),
            std::vector<std::string>{"adds a symlink pointing out of the repository: etc -> /etc"});
  EXPECT_FALSE(Check(policy, {link("a/up", "../../x")}).empty());
  // A deleted symlink named as a protected directory touches it too.
  EXPECT_FALSE(Check(policy, {Deleted(".nightshift", kModeSymlink)}).empty());
  // Harmless ones pass.
  EXPECT_TRUE(Check(policy, {link("docs/readme", "../README.md")}).empty());
  EXPECT_TRUE(Check(policy, {link("a/b", "c/d")}).empty());
  EXPECT_FALSE(Check(policy, {link(".gitmodules", "x")}).empty());
}

TEST(CheckChanges, SubmodulesAndNestedRepositoriesNeverPass) {
  ReviewPolicy policy;
  EXPECT_EQ(Check(policy, {Added("vendor/lib", "", kModeGitlink)}),
            std::vector<std::string>{"changes a submodule or nested repository: vendor/lib (only "
                                     "files can be delivered)"});
  EXPECT_FALSE(Check(policy, {Deleted("sub", kModeGitlink)}).empty());
  EXPECT_FALSE(Check(policy, {Modified("sub", "x", kModeGitlink, kModeFile)}).empty());
}

TEST(CheckChanges, PathsGitRefusesNeverPass) {
  ReviewPolicy policy;
  for (const std::string path :
       {".GIT/hooks/pre-push", "a/.git/config", "a/.Git/HEAD", "git~1/config", ".git./x", ".git /x",
        ".g\xe2\x80\x8cit/hooks/x", "\xef\xbb\xbf.git/x", ".git::$INDEX_ALLOCATION/x"}) {
    EXPECT_TRUE(IsPathGitRefuses(path)) << path;
    EXPECT_FALSE(Check(policy, {Added(path)}).empty()) << path;
  }
  EXPECT_FALSE(IsPathGitRefuses(".github/x"));
  EXPECT_FALSE(IsPathGitRefuses("src/.gitignore"));
  EXPECT_FALSE(IsPathGitRefuses("a.git/x"));
}

TEST(CheckChanges, SecretsInWholeContentsNewOnesOnly) {
  ReviewPolicy policy;
  const std::string pem =
      "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\nabcdef\n-----END RSA PRIVATE KEY-----\n";
  EXPECT_FALSE(Check(policy, {Added("deploy/key.pem", pem)}).empty());
  // In a binary file, by its bytes.
  std::string binary("\0\x01\x02", 3);
  binary += "AKIAABCDEFGHIJKLMNOP";
  binary += std::string("\0\xff", 2);
  EXPECT_FALSE(Check(policy, {Added("blob.bin", binary)}).empty());
  // A secret the file already had is not new; one added beside it is.
  const std::string token = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
  EXPECT_TRUE(
      Check(policy, {Modified("cfg", "old " + token + "\nmore\n")}, {}, "old " + token).empty());
  EXPECT_FALSE(
      Check(policy, {Modified("cfg", token + "\nAKIAABCDEFGHIJKLMNOP\n")}, {}, token).empty());
  policy.scan_secrets = false;
  EXPECT_TRUE(Check(policy, {Added("deploy/key.pem", pem)}).empty());
}

TEST(GlobMatchesUnder, DirectoriesThatCouldHoldAMatch) {
  EXPECT_TRUE(GlobMatchesUnder(".github/workflows/**", ".github"));
  EXPECT_TRUE(GlobMatchesUnder(".github/workflows/**", ".github/workflows"));
  EXPECT_TRUE(GlobMatchesUnder(".github/workflows/**", ".github/workflows/a"));
  EXPECT_FALSE(GlobMatchesUnder(".github/workflows/**", ".github/other"));
  EXPECT_FALSE(GlobMatchesUnder("CODEOWNERS", "docs"));
  EXPECT_TRUE(GlobMatchesUnder("docs/CODEOWNERS", "docs"));
  EXPECT_TRUE(GlobMatchesUnder("**/migrations/**", "anything"));
  EXPECT_TRUE(GlobMatchesUnder("*/x", "a"));
  EXPECT_FALSE(GlobMatchesUnder("*.yml", "a"));
  EXPECT_TRUE(GlobMatchesUnder("CODEOWNERS", ""));
}

// A property over random change sets: whatever the paths hold, a change that puts a protected
// path's name on either side is blocked, and a set with none is not (for that reason).
TEST(CheckChanges, RandomChangeSetsTouchingAProtectedPathAreAlwaysBlocked) {
  ReviewPolicy policy;
  std::mt19937 rng(20261207);
  const std::vector<std::string> segments = {
      "src",         "a b",     "x\"y",          "\xc3\xa9t\xc3\xa9",
      "new\nline",   ".github", "workflows",     "docs",
      ".nightshift", "ci.yml",  "CODEOWNERS",    "{a => b}",
      "-",           "..x",     ".gitlab-ci.yml"};
  const std::vector<std::string> protected_samples = {".github/workflows/ci.yml",
                                                      ".gitlab-ci.yml",
                                                      ".nightshift/environment.yml",
                                                      "CODEOWNERS",
                                                      "docs/CODEOWNERS",
                                                      ".github/CODEOWNERS",
                                                      ".devcontainer/devcontainer.json",
                                                      ".gitmodules"};
  for (int round = 0; round < 2000; ++round) {
    std::vector<FileChange> changes;
    bool touches = false;
    const int n = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < n; ++i) {
      std::string path;
      if (rng() % 4 == 0) {
        path = protected_samples[rng() % protected_samples.size()];
        touches = true;
      } else {
        const int depth = 1 + static_cast<int>(rng() % 3);
        for (int d = 0; d < depth; ++d) {
          path += (d ? "/" : "") + segments[rng() % segments.size()] + std::to_string(rng() % 3);
        }
      }
      switch (rng() % 3) {
        case 0:
          changes.push_back(Added(path));
          break;
        case 1:
          changes.push_back(Deleted(path));
          break;
        default:
          changes.push_back(Modified(path, "y\n", kModeFile, kModeExecutable));
      }
    }
    const auto reasons = Check(policy, changes);
    const bool blocked_for_path = Joined(reasons).find("protected path") != std::string::npos;
    if (touches) {
      EXPECT_TRUE(blocked_for_path) << "round " << round << ": " << Joined(reasons);
    } else {
      EXPECT_FALSE(blocked_for_path) << "round " << round << ": " << Joined(reasons);
    }
  }
}

// The forge's sections, as config/config.h hands them over (every case of the whole file is in
// tests/config_cases).
TEST(ForgeConfig, ReviewPoliciesGlobalAndPerRepository) {
  ConfigErrors errors("nightshift.yml");
  ConfigNode root = ParseYamlConfig(
      "review:\n  max_files: 3\nreview_repositories:\n  app:\n    "
      "protected_paths: [\"db/**\"]\n",
      errors);
  const ReviewPolicy global = ParseReviewPolicy(*root.Find("review"), ReviewPolicy{}, errors);
  auto policies = ParseReviewPolicies(*root.Find("review_repositories"), global, errors);
  ASSERT_TRUE(errors.empty()) << errors.Lines().front();
  EXPECT_EQ(global.max_files, 3);
  EXPECT_EQ(global.protected_paths, ReviewPolicy{}.protected_paths);
  EXPECT_EQ(policies.at("app").max_files, 3);  // inherits the global one
  EXPECT_EQ(policies.at("app").protected_paths, std::vector<std::string>{"db/**"});

  ConfigErrors bad("nightshift.yml");
  ParseReviewPolicy(*ParseYamlConfig("review:\n  max_flies: 3\n", bad).Find("review"),
                    ReviewPolicy{}, bad);
  EXPECT_EQ(bad.Lines(),
            std::vector<std::string>{
                "nightshift.yml:2:3: unknown key 'max_flies' in review (expected protected_paths, "
                "max_files, max_lines, max_binary_bytes, scan_secrets)"});
}

TEST(ForgeConfig, IdentityAndForgeLinks) {
  ConfigErrors errors("nightshift.yml");
  ConfigNode root = ParseYamlConfig(
      "identity:\n  email: bot@example.com\n"
      "forges:\n  app:\n    type: github\n    project: acme/app\n    token_env: TOKEN\n"
      "    labels: [bot]\n",
      errors);
  const Identity identity = ParseIdentity(*root.Find("identity"), errors);
  auto links = ParseForgeLinks(*root.Find("forges"), {{"TOKEN", "ghp_x"}}, errors);
  ASSERT_TRUE(errors.empty()) << errors.Lines().front();
  EXPECT_EQ(identity.name, Identity{}.name);
  EXPECT_EQ(identity.email, "bot@example.com");
  const ForgeLink& link = links.at("app");
  EXPECT_EQ(link.type, "github");
  EXPECT_EQ(link.options.token, "ghp_x");
  EXPECT_EQ(link.labels, std::vector<std::string>{"bot"});
  EXPECT_TRUE(link.draft);
  EXPECT_TRUE(MakeRemoteForge(link).ok());

  // The client's own checks are the config's: a token the HTTP header could not carry.
  ConfigErrors bad("nightshift.yml");
  ParseForgeLinks(*root.Find("forges"), {{"TOKEN", "ghp x"}}, bad);
  EXPECT_EQ(bad.Lines(), std::vector<std::string>{
                             "nightshift.yml:4:3: forges.app: github: the token contains spaces "
                             "or control characters"});
  EXPECT_FALSE(MakeRemoteForge(ForgeLink{.type = "bitbucket"}).ok());
}

}  // namespace
}  // namespace nightshift::forge
