#include "core/glob.h"

#include <random>
#include <string>

#include "gtest/gtest.h"

namespace nightshift {
namespace {

TEST(GlobMatch, SegmentsAndDoubleStars) {
  EXPECT_TRUE(GlobMatch(".github/workflows/**", ".github/workflows/ci.yml"));
  EXPECT_TRUE(GlobMatch(".github/workflows/**", ".github/workflows/a/b.yml"));
  EXPECT_FALSE(GlobMatch(".github/workflows/**", ".github/other.yml"));
  EXPECT_TRUE(GlobMatch("CODEOWNERS", "CODEOWNERS"));
  EXPECT_FALSE(GlobMatch("CODEOWNERS", "src/CODEOWNERS"));
  EXPECT_TRUE(GlobMatch("**/CODEOWNERS", "CODEOWNERS"));
  EXPECT_TRUE(GlobMatch("**/CODEOWNERS", "src/a/CODEOWNERS"));
  EXPECT_FALSE(GlobMatch("**/CODEOWNERS", "srcCODEOWNERS"));  // whole directories only
  EXPECT_TRUE(GlobMatch("src/*.c", "src/a.c"));
  EXPECT_FALSE(GlobMatch("src/*.c", "src/x/a.c"));
  EXPECT_TRUE(GlobMatch("src/**.c", "src/x/a.c"));
  EXPECT_TRUE(GlobMatch("?.txt", "a.txt"));
  EXPECT_FALSE(GlobMatch("?.txt", "/.txt"));
  EXPECT_TRUE(GlobMatch("", ""));
  EXPECT_FALSE(GlobMatch("", "a"));
  EXPECT_TRUE(GlobMatch("**", ""));
}

TEST(LikeMatch, StarsAcrossEverythingAndEscapes) {
  EXPECT_TRUE(LikeMatch("make test*", "make test -j2 ./a/b"));
  EXPECT_TRUE(LikeMatch("*curl*", "echo hi && curl http://x\nmore"));
  EXPECT_FALSE(LikeMatch("*curl*", "wget"));
  EXPECT_TRUE(LikeMatch("acme/*", "acme/api"));
  EXPECT_FALSE(LikeMatch("acme/*", "acmex/api"));
  EXPECT_TRUE(LikeMatch("a\\*b", "a*b"));
  EXPECT_FALSE(LikeMatch("a\\*b", "axb"));
  EXPECT_TRUE(LikeMatch("a\\\\b", "a\\b"));
  EXPECT_TRUE(LikeMatch("exact", "exact"));
  EXPECT_FALSE(LikeMatch("exact", "exactly"));
  EXPECT_TRUE(LikeMatch("*", ""));
  EXPECT_TRUE(LikeMatch("*.yml", "a/b.yml"));
}

// A backtracking reference with the same rules, for small inputs.
bool ReferenceGlob(std::string_view p, std::string_view s) {
  if (p.empty()) return s.empty();
  if (p.starts_with("**/")) {
    if (ReferenceGlob(p.substr(3), s)) return true;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '/' && ReferenceGlob(p.substr(3), s.substr(i + 1))) return true;
    }
    return false;
  }
  if (p.starts_with("**")) {
    for (size_t i = 0; i <= s.size(); ++i) {
      if (ReferenceGlob(p.substr(2), s.substr(i))) return true;
    }
    return false;
  }
  if (p[0] == '*') {
    for (size_t i = 0; i <= s.size(); ++i) {
      if (ReferenceGlob(p.substr(1), s.substr(i))) return true;
      if (i < s.size() && s[i] == '/') break;
    }
    return false;
  }
  if (s.empty()) return false;
  if (p[0] == '?' ? s[0] != '/' : p[0] == s[0]) return ReferenceGlob(p.substr(1), s.substr(1));
  return false;
}

TEST(GlobMatch, AgreesWithABacktrackingReference) {
  std::mt19937 random(7);
  const std::string alphabet = "ab/*?";
  auto draw = [&](std::string_view from, int max) {
    std::string out;
    for (int n = std::uniform_int_distribution<int>(0, max)(random); n > 0; --n) {
      out += from[std::uniform_int_distribution<size_t>(0, from.size() - 1)(random)];
    }
    return out;
  };
  for (int i = 0; i < 20000; ++i) {
    const std::string pattern = draw(alphabet, 7);
    const std::string path = draw("ab/", 8);
    ASSERT_EQ(GlobMatch(pattern, path), ReferenceGlob(pattern, path))
        << "pattern '" << pattern << "' path '" << path << "'";
  }
}

// Automata of more than 63 states take the general path; the answers are the same.
TEST(GlobMatch, LongPatternsMatchLikeShortOnes) {
  std::string pattern, text;
  for (int i = 0; i < 40; ++i) {
    pattern += "a*";
    text += "ab";
  }
  EXPECT_TRUE(LikeMatch(pattern, text));
  EXPECT_TRUE(GlobMatch(pattern, text));
  EXPECT_FALSE(LikeMatch(pattern + "c", text));
  EXPECT_FALSE(GlobMatch(pattern, text.substr(2)));
  EXPECT_TRUE(GlobMatch("**/" + pattern, "x/y/" + text));
  EXPECT_FALSE(GlobMatch(pattern, text + "/b"));  // `*` stays in its segment
  const Pattern compiled = Pattern::Like(pattern + "z");
  EXPECT_TRUE(compiled.Match(text + "z"));
  EXPECT_FALSE(compiled.Match(text));
}

// Many stars against a long text that almost matches: a backtracking matcher takes time
// exponential in the stars (this test would not end before ctest's timeout); this one is
// linear in the text.
TEST(GlobMatch, HostileTextStaysFast) {
  const std::string text(20000, 'a');
  EXPECT_FALSE(LikeMatch("*a*a*a*a*a*a*a*a*a*a*b", text));
  EXPECT_FALSE(GlobMatch("**a**a**a**a**a**a**a**b", text));
  EXPECT_FALSE(GlobMatch("*a*a*a*a*a*a*a*a*a*b", text));
}

}  // namespace
}  // namespace nightshift
