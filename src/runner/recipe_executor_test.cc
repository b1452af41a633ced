#include "runner/recipe_executor.h"

#include "gtest/gtest.h"

namespace nightshift::runner {
namespace {

TEST(ValidateRef, AcceptsBranchesTagsAndShas) {
  for (const char* ok : {"", "main", "feature/x-1", "v1.2.3", "release/2026.11",
                         "3f1c2a9b8e7d6c5b4a39281706f5e4d3c2b1a098"}) {
    EXPECT_TRUE(ValidateRef(ok).ok()) << ok;
  }
}

TEST(ValidateRef, RejectsWhatGitRejects) {
  for (const char* bad :
       {"-rf", "a..b", "a b", "a~1",    "a^",   "a:b", "a?",    "a*",      "a[",        "a\\b",
        "/a",  "a/",   "a.",  "a.lock", "a//b", "@",   "a@{1}", ".hidden", "a/.hidden", "x\ny"}) {
    Status st = ValidateRef(bad);
    EXPECT_TRUE(IsInvalidArgument(st)) << bad;
  }
  EXPECT_FALSE(ValidateRef(std::string(300, 'a')).ok());
}

}  // namespace
}  // namespace nightshift::runner
