#include "forge/policy.h"
#include "gtest/gtest.h"

namespace nightshift::forge {
namespace {

TEST(GlobMatch, SegmentsAndDoubleStars) {
  EXPECT_TRUE(GlobMatch(".github/workflows/**", ".github/workflows/ci.yml"));
  EXPECT_TRUE(GlobMatch(".github/workflows/**", ".github/workflows/a/b.yml"));
  EXPECT_FALSE(GlobMatch(".github/workflows/**", ".github/other.yml"));
  EXPECT_TRUE(GlobMatch("CODEOWNERS", "CODEOWNERS"));
  EXPECT_FALSE(GlobMatch("CODEOWNERS", "src/CODEOWNERS"));
  EXPECT_TRUE(GlobMatch("**/CODEOWNERS", "src/CODEOWNERS"));
  EXPECT_TRUE(GlobMatch("src/*.c", "src/a.c"));
  EXPECT_FALSE(GlobMatch("src/*.c", "src/x/a.c"));
  EXPECT_TRUE(GlobMatch("?.txt", "a.txt"));
}

TEST(CheckChanges, EachRuleCanBlock) {
  ReviewPolicy policy;
  policy.max_files = 2;
  policy.max_lines = 10;
  policy.max_binary_bytes = 100;
  EXPECT_TRUE(CheckChanges(policy, {{"src/a.c", 1, 1}}, "+int x;\n").empty());
  auto protected_path = CheckChanges(policy, {{".github/workflows/ci.yml", 1, 0}}, "");
  ASSERT_EQ(protected_path.size(), 1u);
  EXPECT_EQ(protected_path[0],
            "changes a protected path: .github/workflows/ci.yml (.github/workflows/**)");
  EXPECT_EQ(CheckChanges(policy, {{"a", 1, 0}, {"b", 1, 0}, {"c", 1, 0}}, "").size(), 1u);
  EXPECT_EQ(CheckChanges(policy, {{"a", 8, 5}}, "")[0], "changes 13 lines (at most 10)");
  EXPECT_EQ(CheckChanges(policy, {{"big.bin", -1, -1, 500}}, "")[0],
            "adds a binary file of 500 bytes: big.bin (at most 100)");
  EXPECT_EQ(CheckChanges(policy, {{"cfg", 1, 0}},
                         "+++ b/cfg\n+token = ghp_abcdefghijklmnopqrstuvwxyz0123456789\n")[0],
            "adds something that looks like a secret (a token or private key)");
  // A removed secret is fine.
  EXPECT_TRUE(
      CheckChanges(policy, {{"cfg", 0, 1}}, "-token = ghp_abcdefghijklmnopqrstuvwxyz0123456789\n")
          .empty());
}

TEST(ParseReviewPolicies, GlobalAndPerRepository) {
  auto policies = ParseReviewPolicies(
      "models: {}\nreview:\n  max_files: 3\nreview_repositories:\n  app:\n    "
      "protected_paths: [\"db/**\"]\n",
      "nightshift.yml");
  ASSERT_TRUE(policies.ok()) << policies.status();
  EXPECT_EQ(policies->at("").max_files, 3);
  EXPECT_EQ(policies->at("app").max_files, 3);  // inherits the global one
  EXPECT_EQ(policies->at("app").protected_paths, std::vector<std::string>{"db/**"});
  auto bad = ParseReviewPolicies("review:\n  max_flies: 3\n", "nightshift.yml");
  EXPECT_EQ(bad.status().message(),
            "nightshift.yml:2:3: unknown key 'max_flies' in a review policy");
}

}  // namespace
}  // namespace nightshift::forge
