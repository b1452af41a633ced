#include "workspace/gitignore.h"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/test_support.h"
#include "workspace/git.h"

namespace nightshift::workspace {
namespace {

using Verdict = IgnoreFile::Verdict;

// ---- wildmatch ----------------------------------------------------------------------------

struct WildCase {
  bool match;
  const char* text;
  const char* pattern;
};

// git's t/t3070-wildmatch.sh, the `wildmatch` column (WM_PATHNAME, case-sensitive); "XXX/" at
// the start of a text or pattern there stands for "/".
TEST(WildMatch, AgreesWithGitsOwnCases) {
  for (const WildCase& c : std::vector<WildCase>{
           // Basic wildmatch features
           {true, "foo", "foo"},
           {false, "foo", "bar"},
           {true, "", ""},
           {true, "foo", "???"},
           {false, "foo", "??"},
           {true, "foo", "*"},
           {true, "foo", "f*"},
           {false, "foo", "*f"},
           {true, "foo", "*foo*"},
           {true, "foobar", "*ob*a*r*"},
           {true, "aaaaaaabababab", "*ab"},
           {true, "foo*", "foo\\*"},
           {false, "foobar", "foo\\*bar"},
           {true, "f\\oo", "f\\\\oo"},
           {false, "foo\\", "foo\\"},
           {true, "ball", "*[al]?"},
           {false, "ten", "[ten]"},
           {true, "ten", "**[!te]"},
           {false, "ten", "**[!ten]"},
           {true, "ten", "t[a-g]n"},
           {false, "ten", "t[!a-g]n"},
           {true, "ton", "t[!a-g]n"},
           {true, "ton", "t[^a-g]n"},
           {true, "a]b", "a[]]b"},
           {true, "a-b", "a[]-]b"},
           {true, "a]b", "a[]-]b"},
           {false, "aab", "a[]-]b"},
           {true, "aab", "a[]a-]b"},
           {true, "]", "]"},
           // Extended slash-matching features
           {false, "foo/baz/bar", "foo*bar"},
           {false, "foo/baz/bar", "foo**bar"},
           {true, "foobazbar", "foo**bar"},
           {true, "foo/baz/bar", "foo/**/bar"},
           {true, "foo/baz/bar", "foo/**/**/bar"},
           {true, "foo/b/a/z/bar", "foo/**/bar"},
           {true, "foo/b/a/z/bar", "foo/**/**/bar"},
           {true, "foo/bar", "foo/**/bar"},
           {true, "foo/bar", "foo/**/**/bar"},
           {false, "foo/bar", "foo?bar"},
           {false, "foo/bar", "foo[/]bar"},
           {false, "foo/bar", "foo[^a-z]bar"},
           {false, "foo/bar", "f[^eiu][^eiu][^eiu][^eiu][^eiu]r"},
           {true, "foo-bar", "f[^eiu][^eiu][^eiu][^eiu][^eiu]r"},
           {true, "foo", "**/foo"},
           {true, "/foo", "**/foo"},
           {true, "bar/baz/foo", "**/foo"},
           {false, "bar/baz/foo", "*/foo"},
           {false, "foo/bar/baz", "**/bar*"},
           {true, "deep/foo/bar/baz", "**/bar/*"},
           {false, "deep/foo/bar/baz/", "**/bar/*"},
           {true, "deep/foo/bar/baz/", "**/bar/**"},
           {false, "deep/foo/bar", "**/bar/*"},
           {true, "deep/foo/bar/", "**/bar/**"},
           {false, "foo/bar/baz", "**/bar**"},
           {true, "foo/bar/baz/x", "*/bar/**"},
           {false, "deep/foo/bar/baz/x", "*/bar/**"},
           {true, "deep/foo/bar/baz/x", "**/bar/*/*"},
           // Various additional tests
           {false, "acrt", "a[c-c]st"},
           {true, "acrt", "a[c-c]rt"},
           {false, "]", "[!]-]"},
           {true, "a", "[!]-]"},
           {false, "", "\\"},
           {false, "\\", "\\"},
           {false, "/\\", "*/\\"},
           {true, "/\\", "*/\\\\"},
           {true, "foo", "foo"},
           {true, "@foo", "@foo"},
           {false, "foo", "@foo"},
           {true, "[ab]", "\\[ab]"},
           {true, "[ab]", "[[]ab]"},
           {true, "[ab]", "[[:]ab]"},
           {false, "[ab]", "[[::]ab]"},
           {true, "[ab]", "[[:digit]ab]"},
           {true, "[ab]", "[\\[:]ab]"},
           {true, "?a?b", "\\??\\?b"},
           {true, "abc", "\\a\\b\\c"},
           {false, "foo", ""},
           {true, "foo/bar/baz/to", "**/t[o]"},
           // Character class tests
           {true, "a1B", "[[:alpha:]][[:digit:]][[:upper:]]"},
           {false, "a", "[[:digit:][:upper:][:space:]]"},
           {true, "A", "[[:digit:][:upper:][:space:]]"},
           {true, "1", "[[:digit:][:upper:][:space:]]"},
           {false, "1", "[[:digit:][:upper:][:spaci:]]"},
           {true, " ", "[[:digit:][:upper:][:space:]]"},
           {false, ".", "[[:digit:][:upper:][:space:]]"},
           {true, ".", "[[:digit:][:punct:][:space:]]"},
           {true, "5", "[[:xdigit:]]"},
           {true, "f", "[[:xdigit:]]"},
           {true, "D", "[[:xdigit:]]"},
           {true, "_",
            "[[:alnum:][:alpha:][:blank:][:cntrl:][:digit:][:graph:][:lower:][:print:][:punct:][:"
            "space:][:upper:][:xdigit:]]"},
           {true, ".",
            "[^[:alnum:][:alpha:][:blank:][:cntrl:][:digit:][:lower:][:space:][:upper:][:xdigit:]"
            "]"},
           {true, "5", "[a-c[:digit:]x-z]"},
           {true, "b", "[a-c[:digit:]x-z]"},
           {true, "y", "[a-c[:digit:]x-z]"},
           {false, "q", "[a-c[:digit:]x-z]"},
           // Additional tests, including some malformed wildmatch patterns
           {true, "]", "[\\\\-^]"},
           {false, "[", "[\\\\-^]"},
           {true, "-", "[\\-_]"},
           {true, "]", "[\\]]"},
           {false, "\\]", "[\\]]"},
           {false, "\\", "[\\]]"},
           {false, "ab", "a[]b"},
           {false, "a[]b", "a[]b"},
           {false, "ab[", "ab["},
           {false, "ab", "[!"},
           {false, "ab", "[-"},
           {true, "-", "[-]"},
           {false, "-", "[a-"},
           {false, "-", "[!a-"},
           {true, "-", "[--A]"},
           {true, "5", "[--A]"},
           {true, " ", "[ --]"},
           {true, "$", "[ --]"},
           {true, "-", "[ --]"},
           {false, "0", "[ --]"},
           {true, "-", "[---]"},
           {true, "-", "[------]"},
           {false, "j", "[a-e-n]"},
           {true, "-", "[a-e-n]"},
           {true, "a", "[!------]"},
           {false, "[", "[]-a]"},
           {true, "^", "[]-a]"},
           {false, "^", "[!]-a]"},
           {true, "[", "[!]-a]"},
           {true, "^", "[a^bc]"},
           {true, "-b]", "[a-]b]"},
           {false, "\\", "[\\]"},
           {true, "\\", "[\\\\]"},
           {false, "\\", "[!\\\\]"},
           {true, "G", "[A-\\\\]"},
           {false, "aaabbb", "b*a"},
           {false, "aabcaa", "*ba*"},
           {true, ",", "[,]"},
           {true, ",", "[\\\\,]"},
           {true, "\\", "[\\\\,]"},
           {true, "-", "[,-.]"},
           {false, "+", "[,-.]"},
           {false, "-.]", "[,-.]"},
           {true, "2", "[\\1-\\3]"},
           {true, "3", "[\\1-\\3]"},
           {false, "4", "[\\1-\\3]"},
           {true, "\\", "[[-\\]]"},
           {true, "[", "[[-\\]]"},
           {true, "]", "[[-\\]]"},
           {false, "-", "[[-\\]]"},
           // Test recursion
           {true, "-adobe-courier-bold-o-normal--12-120-75-75-m-70-iso8859-1",
            "-*-*-*-*-*-*-12-*-*-*-m-*-*-*"},
           {false, "-adobe-courier-bold-o-normal--12-120-75-75-X-70-iso8859-1",
            "-*-*-*-*-*-*-12-*-*-*-m-*-*-*"},
           {false, "-adobe-courier-bold-o-normal--12-120-75-75-/-70-iso8859-1",
            "-*-*-*-*-*-*-12-*-*-*-m-*-*-*"},
           {true, "/adobe/courier/bold/o/normal//12/120/75/75/m/70/iso8859/1",
            "/*/*/*/*/*/*/12/*/*/*/m/*/*/*"},
           {false, "/adobe/courier/bold/o/normal//12/120/75/75/X/70/iso8859/1",
            "/*/*/*/*/*/*/12/*/*/*/m/*/*/*"},
           {true, "abcd/abcdefg/abcdefghijk/abcdefghijklmnop.txt", "**/*a*b*g*n*t"},
           {false, "abcd/abcdefg/abcdefghijk/abcdefghijklmnop.txtz", "**/*a*b*g*n*t"},
           {false, "foo", "*/*/*"},
           {false, "foo/bar", "*/*/*"},
           {true, "foo/bba/arr", "*/*/*"},
           {false, "foo/bb/aa/rr", "*/*/*"},
           {true, "foo/bb/aa/rr", "**/**/**"},
           {true, "abcXdefXghi", "*X*i"},
           {false, "ab/cXd/efXg/hi", "*X*i"},
           {true, "ab/cXd/efXg/hi", "*/*X*/*/*i"},
           {true, "ab/cXd/efXg/hi", "**/*X*/**/*i"},
           // Extra pathmatch tests
           {false, "foo", "fo"},
           {true, "foo/bar", "foo/bar"},
           {true, "foo/bar", "foo/*"},
           {false, "foo/bba/arr", "foo/*"},
           {true, "foo/bba/arr", "foo/**"},
           {false, "foo/bba/arr", "foo*"},
           {false, "foo/bba/arr", "foo**"},
           {false, "foo/bba/arr", "foo/*arr"},
           {false, "foo/bba/arr", "foo/**arr"},
           {false, "foo/bba/arr", "foo/*z"},
           {false, "foo/bba/arr", "foo/**z"},
           {false, "foo/bar", "foo?bar"},
           {false, "foo/bar", "foo[/]bar"},
           {false, "foo/bar", "foo[^a-z]bar"},
           {false, "ab/cXd/efXg/hi", "*Xg*i"},
           // Extra case-sensitivity tests
           {false, "a", "[A-Z]"},
           {true, "A", "[A-Z]"},
           {false, "A", "[a-z]"},
           {true, "a", "[a-z]"},
           {false, "a", "[[:upper:]]"},
           {true, "A", "[[:upper:]]"},
           {false, "A", "[[:lower:]]"},
           {true, "a", "[[:lower:]]"},
           {false, "A", "[B-Za]"},
           {true, "a", "[B-Za]"},
           {false, "A", "[B-a]"},
           {true, "a", "[B-a]"},
           {false, "z", "[Z-y]"},
           {true, "Z", "[Z-y]"},
       }) {
    EXPECT_EQ(WildMatch(c.pattern, c.text), c.match)
        << "pattern '" << c.pattern << "' text '" << c.text << "'";
  }
}

TEST(WildMatch, DoubleStarSpansDirectoriesOnlyAsAComponent) {
  for (const WildCase& c : std::vector<WildCase>{
           {true, "a/b/c", "**"},
           {true, "a", "**/a"},
           {true, "x/y/a", "**/a"},
           {false, "a", "a/**"},
           {true, "a/b/c", "a/**"},
           {true, "a/b", "a/**/b"},
           {false, "a/xb", "a/**/b"},
           {true, "a/x/y/b", "a/**/b"},
           {true, "a/x/y/b", "a/***/b"},
           {false, "a/b", "**\\/a/b"},  // an escaped '/' after `**` needs one
           {true, "x/a/b", "**\\/a/b"},
           {true, "foo/bar", "foo**/bar"},  // after a literal, `**` is a `*`
           {true, "foox/bar", "foo**/bar"},
           {false, "foo/x/bar", "foo**/bar"},
           {false, "foobar", "foo**/bar"},
           {false, "a/b", "a**"},
           {false, "x/a/b", "**a/b"},
       }) {
    EXPECT_EQ(WildMatch(c.pattern, c.text), c.match)
        << "pattern '" << c.pattern << "' text '" << c.text << "'";
  }
}

TEST(WildMatch, ComparesBytes) {
  for (const WildCase& c : std::vector<WildCase>{
           {false, "\xc3\xa9", "?"},  // é is two bytes
           {true, "\xc3\xa9", "??"},
           {true, "\xc3\xa9", "\xc3?"},
           {false, "\xc3\xa9", "[[:alpha:]]*"},  // the classes are ASCII only
           {true, "\xc3\xa9", "[\xc3][\x80-\xbf]"},
           {true, "a\xff", "*\xff"},
           {false, "A", "a"},
           {false, "\x0b", "[[:space:]]"},  // git's space is \t \n \r and ' '
           {true, "\r", "[[:space:]]"},
           {false, "", "?"},
           {true, "", "*"},
           {false, "a\\", "a\\"},  // a trailing backslash matches nothing
           {true, "a/b", "a\\/b"},
       }) {
    EXPECT_EQ(WildMatch(c.pattern, c.text), c.match)
        << "pattern '" << c.pattern << "' text '" << c.text << "'";
  }
}

// ---- one .gitignore ---------------------------------------------------------------------

constexpr Verdict kNone = Verdict::kNone;
constexpr Verdict kIgnored = Verdict::kIgnored;
constexpr Verdict kIncluded = Verdict::kIncluded;
constexpr bool kDir = true;
constexpr bool kFile = false;

std::string Printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  return out;
}

struct FileCase {
  std::string gitignore;
  std::string path;
  bool is_dir;
  Verdict want;
};

void ExpectVerdicts(const std::vector<FileCase>& cases) {
  for (const FileCase& c : cases) {
    EXPECT_EQ(IgnoreFile::Parse(c.gitignore).Match(c.path, c.is_dir), c.want)
        << ".gitignore \"" << Printable(c.gitignore) << "\", " << (c.is_dir ? "dir" : "file")
        << " \"" << Printable(c.path) << "\"";
  }
}

TEST(IgnoreFile, SkipsBlankLinesAndComments) {
  ExpectVerdicts({
      {"\n\n", "a", kFile, kNone},
      {"#a\n", "#a", kFile, kNone},
      {"\\#a\n", "#a", kFile, kIgnored},
      {" #a\n", " #a", kFile, kIgnored},  // only a '#' in the first column starts a comment
      {"#a\na\n", "a", kFile, kIgnored},
      {"   \n", " ", kFile, kNone},
  });
}

TEST(IgnoreFile, DropsUnescapedTrailingSpaces) {
  ExpectVerdicts({
      {"a  \n", "a", kFile, kIgnored},
      {"a  \n", "a  ", kFile, kNone},
      {"a\\ \n", "a ", kFile, kIgnored},
      {"a\\ \n", "a", kFile, kNone},
      {"a\\  \n", "a ", kFile, kIgnored},
      {"a \\ \n", "a  ", kFile, kIgnored},
      {" a\n", " a", kFile, kIgnored},
      {"a\t\n", "a\t", kFile, kIgnored},  // tabs stay
      {"a\t\n", "a", kFile, kNone},
      {"a \\\n", "a ", kFile, kNone},  // a trailing backslash: nothing trimmed, nothing matched
  });
}

TEST(IgnoreFile, ReadsLineEndingsByteOrderMarkAndNul) {
  ExpectVerdicts({
      {"a\r\nb\r\n", "a", kFile, kIgnored},
      {"a\r\nb", "b", kFile, kIgnored},
      {"a\r\r\n", "a\r", kFile, kIgnored},  // one CR goes
      {"a \r\n", "a", kFile, kIgnored},
      {"\xEF\xBB\xBF"
       "a\n",
       "a", kFile, kIgnored},
      {"\xEF\xBB\xBF#a\n", "#a", kFile, kNone},
      {"b\n\xEF\xBB\xBF"
       "a\n",
       "\xEF\xBB\xBF"
       "a",
       kFile, kIgnored},                                 // a BOM counts only at the start
      {std::string("a\0b\n", 4), "a", kFile, kIgnored},  // git reads up to a NUL
      {std::string("a\0b\n", 4), "ab", kFile, kNone},
  });
}

TEST(IgnoreFile, NegationIncludesAgain) {
  ExpectVerdicts({
      {"*.log\n!keep.log\n", "keep.log", kFile, kIncluded},
      {"*.log\n!keep.log\n", "x.log", kFile, kIgnored},
      {"!keep.log\n*.log\n", "keep.log", kFile, kIgnored},
      {"!keep.log\n", "keep.log", kFile, kIncluded},
      {"\\!a\n", "!a", kFile, kIgnored},
      {"!!a\n", "!a", kFile, kIncluded},
      {"!\n", "!", kFile, kNone},
  });
}

TEST(IgnoreFile, TrailingSlashMatchesDirectoriesOnly) {
  ExpectVerdicts({
      {"build/\n", "build", kDir, kIgnored},
      {"build/\n", "build", kFile, kNone},
      {"build/\n", "a/build", kDir, kIgnored},
      {"a/build/\n", "a/build", kDir, kIgnored},
      {"a/build/\n", "x/a/build", kDir, kNone},
      {"build//\n", "build", kDir, kNone},
      {"*/\n", "a", kDir, kIgnored},
      {"*/\n", "a", kFile, kNone},
      {"!build/\n", "build", kDir, kIncluded},
      {"/\n", "a", kDir, kNone},
  });
}

TEST(IgnoreFile, SlashAnchorsToTheFilesDirectory) {
  ExpectVerdicts({
      {"/a\n", "a", kFile, kIgnored},
      {"/a\n", "b/a", kFile, kNone},
      {"a\n", "b/c/a", kFile, kIgnored},
      {"*.c\n", "x/y.c", kFile, kIgnored},
      {"a/b\n", "a/b", kFile, kIgnored},
      {"a/b\n", "x/a/b", kFile, kNone},
      {"a/*\n", "a/b", kFile, kIgnored},
      {"a/*\n", "a/b/c", kFile, kNone},
      {"*/b\n", "a/b", kFile, kIgnored},
      {"*/b\n", "x/a/b", kFile, kNone},
      {"a\\/b\n", "a/b", kFile, kIgnored},  // an escaped '/' anchors too
      {"a\\/b\n", "x/a/b", kFile, kNone},
      {"a[/]b\n", "a/b", kFile, kNone},  // and no bracket matches '/'
      {"//a\n", "a", kFile, kNone},
  });
}

TEST(IgnoreFile, DoubleStar) {
  ExpectVerdicts({
      {"**/a\n", "a", kFile, kIgnored},
      {"**/a\n", "x/y/a", kFile, kIgnored},
      {"**/a/b\n", "a/b", kFile, kIgnored},
      {"**/a/b\n", "x/a/b", kFile, kIgnored},
      {"a/**\n", "a", kDir, kNone},
      {"a/**\n", "a/x", kFile, kIgnored},
      {"a/**\n", "a/x/y", kFile, kIgnored},
      {"a/**/b\n", "a/b", kFile, kIgnored},
      {"a/**/b\n", "a/x/y/b", kFile, kIgnored},
      {"a/**/\n", "a/b", kDir, kIgnored},
      {"a/**/\n", "a/b", kFile, kNone},
      {"a**b\n", "axyb", kFile, kIgnored},
      {"x/a**b\n", "x/a/b", kFile, kNone},
      {"**\n", "a/b", kFile, kIgnored},
      {"**\\/a\n", "a", kFile, kNone},
      {"**\\/a\n", "x/a", kFile, kIgnored},
  });
}

// git 2.52 and later (commit 1940a02dc1): gitignore(5)'s "other consecutive asterisks are
// regular asterisks". git 2.51 and older also ignore foo/x/bar and foobar here.
TEST(IgnoreFile, DoubleStarAfterALiteralPrefixIsAStar) {
  ExpectVerdicts({
      {"foo**/bar\n", "foo/bar", kFile, kIgnored},
      {"foo**/bar\n", "foox/bar", kFile, kIgnored},
      {"foo**/bar\n", "foo/x/bar", kFile, kNone},
      {"foo**/bar\n", "foobar", kFile, kNone},
  });
}

TEST(IgnoreFile, BracketExpressions) {
  ExpectVerdicts({
      {"[ab]\n", "a", kFile, kIgnored},
      {"[!ab]\n", "c", kFile, kIgnored},
      {"[^ab]\n", "a", kFile, kNone},
      {"[]]\n", "]", kFile, kIgnored},
      {"[a-c]x\n", "bx", kFile, kIgnored},
      {"[[:digit:]]\n", "7", kFile, kIgnored},
      {"[[:bogus:]]\n", "b", kFile, kNone},
      {"[ab\n", "[ab", kFile, kNone},
      {"x/[!a]\n", "x/b", kFile, kIgnored},
  });
}

TEST(IgnoreFile, BackslashEscapes) {
  ExpectVerdicts({
      {"\\*\n", "*", kFile, kIgnored},
      {"\\*\n", "a", kFile, kNone},
      {"\\?\n", "?", kFile, kIgnored},
      {"\\[a]\n", "[a]", kFile, kIgnored},
      {"\\a\n", "a", kFile, kIgnored},
      {"a\\\\\n", "a\\", kFile, kIgnored},
      {"a\\\n", "a\\", kFile, kNone},
      {"a\\\n", "a", kFile, kNone},
  });
}

TEST(IgnoreFile, LastMatchingPatternWins) {
  ExpectVerdicts({
      {"a\n!a\na\n", "a", kFile, kIgnored},
      {"*\n!*.c\n", "x.c", kFile, kIncluded},
      {"*\n!*.c\n", "x.h", kFile, kIgnored},
      {"!*.c\n*\n", "x.c", kFile, kIgnored},
      {"b\n", "a", kFile, kNone},
  });
}

TEST(IgnoreFile, BoundsWhatItTakesFromUntrustedText) {
  std::string many;
  for (size_t i = 0; i < IgnoreFile::kMaxPatterns + 2; ++i) many += "p" + std::to_string(i) + "\n";
  IgnoreFile file = IgnoreFile::Parse(many);
  EXPECT_TRUE(file.truncated());
  EXPECT_EQ(file.pattern_count(), IgnoreFile::kMaxPatterns);
  EXPECT_EQ(file.Match("p0", kFile), kIgnored);
  EXPECT_EQ(file.Match("p" + std::to_string(IgnoreFile::kMaxPatterns), kFile), kNone);

  const std::string longest(IgnoreFile::kMaxPatternBytes, 'a');
  file = IgnoreFile::Parse(longest + "\n" + longest + "b\nc\n");
  EXPECT_TRUE(file.truncated());
  EXPECT_EQ(file.pattern_count(), 2u);
  EXPECT_EQ(file.Match(longest, kFile), kIgnored);
  EXPECT_EQ(file.Match("c", kFile), kIgnored);

  std::string big;
  while (big.size() < IgnoreFile::kMaxBytes - 2) big += "#" + std::string(99, 'x') + "\n";
  file = IgnoreFile::Parse(big + "a\nb\n");
  EXPECT_TRUE(file.truncated());
  EXPECT_EQ(file.Match("a", kFile), kNone);  // a line cut by the limit is dropped whole
  EXPECT_EQ(file.Match("b", kFile), kNone);

  file = IgnoreFile::Parse("a\nb\n");
  EXPECT_FALSE(file.truncated());
  EXPECT_EQ(file.pattern_count(), 2u);
}

// ---- a tree of .gitignore files -----------------------------------------------------------

// .gitignore texts by directory, counting how often each directory is asked for.
struct FakeTree {
  std::map<std::string, std::string> files;
  std::map<std::string, int> reads;

  IgnoreMatcher Matcher() {
    return IgnoreMatcher([this](const std::string& dir) -> std::optional<std::string> {
      ++reads[dir];
      auto it = files.find(dir);
      if (it == files.end()) return std::nullopt;
      return it->second;
    });
  }
};

TEST(IgnoreMatcher, DeeperFileOverridesShallower) {
  FakeTree tree{.files = {{"", "*.log\n"}, {"a", "!keep.log\n/only\n"}, {"a/b", "keep.log\n"}}};
  IgnoreMatcher matcher = tree.Matcher();
  EXPECT_TRUE(matcher.IsIgnored("x.log", kFile));
  EXPECT_TRUE(matcher.IsIgnored("keep.log", kFile));
  EXPECT_FALSE(matcher.IsIgnored("a/keep.log", kFile));
  EXPECT_TRUE(matcher.IsIgnored("a/x.log", kFile));  // a's file says nothing: the root's decides
  EXPECT_TRUE(matcher.IsIgnored("a/b/keep.log", kFile));
  EXPECT_TRUE(matcher.IsIgnored("c/keep.log", kFile));
  // Anchored patterns are relative to the directory of their file.
  EXPECT_TRUE(matcher.IsIgnored("a/only", kFile));
  EXPECT_FALSE(matcher.IsIgnored("only", kFile));
  EXPECT_FALSE(matcher.IsIgnored("a/b/only", kFile));
  EXPECT_FALSE(matcher.IsIgnored("a", kDir));
  EXPECT_FALSE(matcher.IsIgnored("a/b", kDir));
}

TEST(IgnoreMatcher, NothingInsideAnIgnoredDirectoryComesBack) {
  FakeTree tree{.files = {{"", "build/\n!build/keep\ncache/*\n!cache/keep\n"},
                          {"build", "!*\n"},
                          {"build/sub", "!*\n"}}};
  IgnoreMatcher matcher = tree.Matcher();
  EXPECT_TRUE(matcher.IsIgnored("build", kDir));
  EXPECT_FALSE(matcher.IsIgnored("build", kFile));
  EXPECT_TRUE(matcher.IsIgnored("build/keep", kFile));
  EXPECT_TRUE(matcher.IsIgnored("build/sub/x", kFile));
  EXPECT_TRUE(matcher.IsIgnored("build/sub", kDir));
  EXPECT_TRUE(matcher.IsIgnored("x/build/y", kFile));
  // cache itself is not ignored, only what is in it: a negation brings a file back.
  EXPECT_FALSE(matcher.IsIgnored("cache", kDir));
  EXPECT_FALSE(matcher.IsIgnored("cache/keep", kFile));
  EXPECT_TRUE(matcher.IsIgnored("cache/x", kFile));
  EXPECT_TRUE(matcher.IsIgnored("cache/d/keep", kFile));
  // git never reads a .gitignore inside an ignored directory.
  EXPECT_EQ(tree.reads.count("build"), 0u);
  EXPECT_EQ(tree.reads.count("build/sub"), 0u);
}

TEST(IgnoreMatcher, ReadsEachFileAtMostOnce) {
  FakeTree tree{.files = {{"", "*.o\n"}, {"a", "x\n"}}};
  IgnoreMatcher matcher = tree.Matcher();
  for (int i = 0; i < 3; ++i) {
    for (const char* path : {"a/b/c.o", "a/b/d", "a/x", "a/b", "e", "a/b/c/d/e"}) {
      matcher.IsIgnored(path, kFile);
      matcher.IsIgnored(path, kDir);
    }
  }
  EXPECT_EQ(tree.reads, (std::map<std::string, int>{
                            {"", 1}, {"a", 1}, {"a/b", 1}, {"a/b/c", 1}, {"a/b/c/d", 1}}));
}

// ---- hostile patterns ----------------------------------------------------------------------

TEST(WildMatch, HostilePatternsFinishQuickly) {
  const auto start = std::chrono::steady_clock::now();
  const std::string as(10000, 'a');
  EXPECT_FALSE(WildMatch("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", as));
  EXPECT_TRUE(WildMatch("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a", as));
  EXPECT_FALSE(WildMatch("**/*a*a*a*a*a*a*a*a*a*a*a*a*b", as));
  std::string deep;
  for (int i = 0; i < 2000; ++i) deep += "a/";
  deep += "a";
  EXPECT_FALSE(WildMatch("**/a/**/a/**/a/**/a/**/a/**/a/**/a/**/a/**/b", deep));
  EXPECT_TRUE(WildMatch("**/a/**/a/**/a/**/a/**/a/**/a/**/a/**/a/**/a", deep));
  // The longest pattern Parse keeps, of the worst shape, against a long name.
  std::string hostile;
  while (hostile.size() + 3 <= IgnoreFile::kMaxPatternBytes) hostile += "*a";
  hostile += "*b";
  const IgnoreFile file = IgnoreFile::Parse(hostile + "\n" + hostile + "\n");
  EXPECT_EQ(file.pattern_count(), 2u);
  EXPECT_EQ(file.Match(std::string(IgnoreFile::kMaxPatternBytes, 'a'), kFile), kNone);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_LT(elapsed, std::chrono::seconds(5));
}

}  // namespace
}  // namespace nightshift::workspace
