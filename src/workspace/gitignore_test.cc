#include "workspace/gitignore.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/fs.h"
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
const std::vector<WildCase>& GitsOwnCases() {
  static const auto* cases = new std::vector<WildCase>{
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
  };
  return *cases;
}

TEST(WildMatch, AgreesWithGitsOwnCases) {
  for (const WildCase& c : GitsOwnCases()) {
    EXPECT_EQ(WildMatch(c.pattern, c.text), c.match)
        << "pattern '" << c.pattern << "' text '" << c.text << "'";
  }
}

// The same cases behind a literal directory long enough that the automaton's positions cross
// from one 64-bit word into the next at every place in the pattern.
TEST(WildMatch, AgreesWithGitsOwnCasesAcrossWordBoundaries) {
  for (size_t length = 56; length <= 68; ++length) {
    const std::string dir = std::string(length, 'x') + "/";
    for (const WildCase& c : GitsOwnCases()) {
      EXPECT_EQ(WildMatch(dir + c.pattern, dir + c.text), c.match)
          << "pattern '" << dir << c.pattern << "' text '" << dir << c.text << "'";
    }
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

  // Whole lines in the first kMaxBytes count; not the one the limit cuts, nor any after it.
  const std::string filler = "#" + std::string(IgnoreFile::kMaxBytes - 6, 'x') + "\n";
  file = IgnoreFile::Parse(filler + "ab\ncd\nef\n");
  EXPECT_TRUE(file.truncated());
  EXPECT_EQ(file.Match("ab", kFile), kIgnored);
  EXPECT_EQ(file.Match("cd", kFile), kNone);
  EXPECT_EQ(file.Match("ef", kFile), kNone);
  // Exactly kMaxBytes: a last line without its newline may be a reader's cut.
  file = IgnoreFile::Parse(filler + "ab\nc");
  EXPECT_TRUE(file.truncated());
  EXPECT_EQ(file.Match("c", kFile), kNone);
  file = IgnoreFile::Parse(filler + "abc\n");
  EXPECT_FALSE(file.truncated());
  EXPECT_EQ(file.Match("abc", kFile), kIgnored);

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

TEST(IgnoreMatcher, SaysWhenAFileWasCut) {
  FakeTree tree{
      .files = {{"", "*.o\n"}, {"a", std::string(IgnoreFile::kMaxPatternBytes + 1, 'x')}}};
  IgnoreMatcher matcher = tree.Matcher();
  EXPECT_FALSE(matcher.IsIgnored("b/c", kFile));
  EXPECT_FALSE(matcher.truncated());
  EXPECT_FALSE(matcher.IsIgnored("a/c", kFile));
  EXPECT_TRUE(matcher.truncated());
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

// ---- against git ---------------------------------------------------------------------------
//
// Random trees with random .gitignore files, written to a real repository: the files git would
// add (`git ls-files --others --exclude-standard`, what `git add -A` takes) must be exactly the
// ones IsIgnored keeps, and `git check-ignore` must agree with IsIgnored on every file and
// directory. NIGHTSHIFT_GITIGNORE_SEED=N replays one seed; NIGHTSHIFT_GITIGNORE_ITERATIONS=N
// runs N seeds (from 1, or from NIGHTSHIFT_GITIGNORE_SEED).

using Rng = std::mt19937_64;

bool Chance(Rng& rng, double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; }

size_t Uniform(Rng& rng, size_t lo, size_t hi) {
  return std::uniform_int_distribution<size_t>(lo, hi)(rng);
}

// File and directory names: glob characters, dots, spaces, brackets, backslashes, UTF-8 and
// invalid UTF-8, and names real trees ignore. Half of the draws come from the first few, so
// that patterns often name what the tree has.
// clang-format off
constexpr std::string_view kNames[] = {
    "a", "b", "ab", "a.b", "a ", "build", "x.log",
    "ba", "b.a", ".a", "a b", " a", "[a]", "a*", "*", "?", "a?", "x[ab]", "a\\b", "\\", "!a",
    "#a", "-", "]", "a-b", "1", "A", "B", "\xc3\xa9", "\xe2\x98\x83", "\xff", "foo", "foobar",
    "**", "node_modules", ".cache", "a.log", "keep.log"};
// clang-format on
constexpr size_t kCommonNames = 7;

std::string Name(Rng& rng) {
  const size_t last = Chance(rng, 0.5) ? kCommonNames - 1 : std::size(kNames) - 1;
  return std::string(kNames[Uniform(rng, 0, last)]);
}

// Pattern pieces beyond plain names.
// clang-format off
constexpr std::string_view kGlobs[] = {
    "*", "?", "a*", "*a", "*.b", "*.log", "b*", ".*", "?*", "*?", "[ab]", "[!a]", "[^.]*",
    "[a-c]*", "[[:alpha:]]", "[[:alpha:]]*", "[]a]", "[*]", "[[:punct:]]*", "[[:space:]]*",
    "*[!b]", "\\*", "\\[a]", "[\\]]", "[", "[[:bogus:]]", "a\\", "a\\ ", "*\\ ", "\\ a", "\\?",
    "[\xc3][\xa9]", "\xc3?", "??", "*\xff", "foo*", "*bar", "f*o*", "a[!/]b", "[/]", "[A-Z]",
    "*[[:upper:]]*"};
// clang-format on

// A name escaped to match literally; now and then an ordinary byte (often a space) too.
std::string Escape(Rng& rng, std::string_view name) {
  std::string out;
  for (char c : name) {
    if (std::string_view("*?[\\").find(c) != std::string_view::npos ||
        Chance(rng, c == ' ' ? 0.5 : 0.1)) {
      out += '\\';
    }
    out += c;
  }
  return out;
}

std::string Component(Rng& rng) {
  std::string component;
  for (int pieces = Chance(rng, 0.15) ? 2 : 1; pieces > 0; --pieces) {
    const double kind = std::uniform_real_distribution<double>(0, 1)(rng);
    component += kind < 0.45  ? Name(rng)
                 : kind < 0.6 ? Escape(rng, Name(rng))
                              : std::string(kGlobs[Uniform(rng, 0, std::size(kGlobs) - 1)]);
  }
  return component;
}

// git 2.51 and older match a `**` right after a pathname pattern's literal prefix as `**/`
// (IgnoreFile.DoubleStarAfterALiteralPrefixIsAStar); such patterns are not drawn for them.
bool OldGitReadsDoubleStarDifferently(std::string_view core) {
  const size_t first = core.find_first_of("*?[\\");
  return first != std::string_view::npos && first > 0 && core[first - 1] != '/' &&
         core.substr(first, 2) == "**";
}

std::string PatternLine(Rng& rng, bool old_git) {
  if (Chance(rng, 0.05)) return "#" + Name(rng);
  if (Chance(rng, 0.04)) return "";
  std::string core;
  do {
    core.clear();
    const size_t count = Chance(rng, 0.4) ? 1 : Chance(rng, 0.6) ? 2 : 3;
    for (size_t i = 0; i < count; ++i) {
      if (i > 0) core += '/';
      core += Chance(rng, 0.15) ? "**" : Component(rng);
    }
  } while (old_git && OldGitReadsDoubleStarDifferently(core));
  std::string line;
  if (Chance(rng, 0.2)) line += '!';
  if (Chance(rng, 0.2)) line += '/';
  line += core;
  if (Chance(rng, 0.25)) line += '/';
  if (Chance(rng, 0.08)) line += "  ";
  return line;
}

std::string GitignoreText(Rng& rng, bool old_git) {
  const char* newline = Chance(rng, 0.1) ? "\r\n" : "\n";
  std::string text;
  for (size_t lines = Uniform(rng, 1, 6); lines > 0; --lines) {
    text += PatternLine(rng, old_git);
    if (lines > 1 || Chance(rng, 0.8)) text += newline;
  }
  return text;
}

struct RandomTree {
  std::vector<std::string> files;  // .gitignore files included
  std::vector<std::string> dirs;
  std::map<std::string, std::string> gitignores;  // directory → text
};

std::string Join(const std::string& dir, const std::string& name) {
  return dir.empty() ? name : dir + "/" + name;
}

void Grow(Rng& rng, bool old_git, const std::string& dir, int depth, RandomTree* tree) {
  std::set<std::string> used;
  if (Chance(rng, depth == 0 ? 0.8 : 0.4)) {
    used.insert(".gitignore");
    tree->gitignores[dir] = GitignoreText(rng, old_git);
    tree->files.push_back(Join(dir, ".gitignore"));
  }
  for (size_t entries = Uniform(rng, depth == 0 ? 5 : 0, depth == 0 ? 11 : 5); entries > 0;
       --entries) {
    const std::string name = Name(rng);
    if (!used.insert(name).second) continue;
    const std::string path = Join(dir, name);
    if (depth < 3 && Chance(rng, 0.4)) {
      tree->dirs.push_back(path);
      Grow(rng, old_git, path, depth + 1, tree);
    } else {
      tree->files.push_back(path);
    }
  }
}

void WriteTree(const std::filesystem::path& root, const RandomTree& tree) {
  for (const auto& entry : std::filesystem::directory_iterator(root)) {
    if (entry.path().filename() != ".git") std::filesystem::remove_all(entry.path());
  }
  for (const std::string& dir : tree.dirs) std::filesystem::create_directories(root / dir);
  for (const std::string& file : tree.files) {
    const std::string dir =
        file.find('/') == std::string::npos ? std::string() : file.substr(0, file.rfind('/'));
    auto it = tree.gitignores.find(dir);
    const bool is_gitignore = file == Join(dir, ".gitignore") && it != tree.gitignores.end();
    std::ofstream(root / file, std::ios::binary) << (is_gitignore ? it->second : file);
  }
}

std::set<std::string> SplitNul(const std::string& all) {
  std::set<std::string> paths;
  for (size_t start = 0, end; (end = all.find('\0', start)) != std::string::npos; start = end + 1) {
    paths.insert(all.substr(start, end - start));
  }
  return paths;
}

// git in one repository, with the environment RunGit gives it (GitEnvironment: no system or
// global config, HOME a scratch directory), started through the shell: `check-ignore -z`
// takes its paths on stdin, which RunGit has not, and the output is NUL-separated, not lines.
class GitIgnoreOracle {
 public:
  explicit GitIgnoreOracle(const std::filesystem::path& dir)
      : dir_(dir), repo_(dir / "repo"), home_(dir / "home") {
    std::filesystem::create_directories(repo_);
    std::filesystem::create_directories(home_);
  }

  // False when git is not there to ask.
  bool Init() {
    const GitResult version = Git({"--version"}, "", "version");
    if (version.status != 0) return false;
    int major = 0, minor = 0;
    std::sscanf(version.out.c_str(), "git version %d.%d", &major, &minor);
    old_git_ = major < 2 || (major == 2 && minor < 52);
    if (Git({"init", "-q"}, "", "init").status != 0) return false;
    std::filesystem::remove(repo_ / ".git" / "info" / "exclude");
    return true;
  }

  // Before 2.52 (IgnoreFile.DoubleStarAfterALiteralPrefixIsAStar).
  bool IsOldGit() const { return old_git_; }
  const std::filesystem::path& repo() const { return repo_; }

  // The untracked files git would add.
  std::set<std::string> Kept() {
    const GitResult result =
        Git({"-c", "core.excludesFile=/dev/null", "-c", "core.untrackedCache=false", "ls-files",
             "-z", "--others", "--exclude-standard"},
            "", "ls-files");
    EXPECT_EQ(result.status, 0) << "git ls-files: " << result.err;
    return SplitNul(result.out);
  }

  // Those of `paths` git calls ignored.
  std::set<std::string> Ignored(const std::vector<std::string>& paths) {
    std::string in;
    for (const std::string& path : paths) in += path + '\0';
    const GitResult result = Git(
        {"-c", "core.excludesFile=/dev/null", "check-ignore", "-z", "--stdin"}, in, "check-ignore");
    // 1: none of them is ignored.
    EXPECT_TRUE(result.status == 0 || result.status == 1) << "git check-ignore: " << result.err;
    return SplitNul(result.out);
  }

 private:
  struct GitResult {
    int status = -1;
    std::string out;
    std::string err;
  };

  // Runs git with `input` as its stdin. `name` names the scratch files (calls may run side by
  // side).
  GitResult Git(const std::vector<std::string>& args, std::string_view input,
                const std::string& name) {
    const std::filesystem::path in_file = dir_ / (name + ".in");
    const std::filesystem::path out_file = dir_ / (name + ".out");
    std::ofstream(in_file, std::ios::binary) << input;
    GitContext context;
    context.home = home_;
    std::string command = "cd " + testing::ShellQuote(repo_) + " && exec env -i";
    for (const auto& [key, value] : GitEnvironment(context)) {
      command += ' ';
      command += testing::ShellQuote(std::string(key).append("=").append(value));
    }
    command += " git";
    for (const std::string& arg : args) command += " " + testing::ShellQuote(arg);
    command += " <" + testing::ShellQuote(in_file) + " >" + testing::ShellQuote(out_file);
    testing::ShellResult shell = testing::Shell(command);
    StatusOr<std::string> out = ReadFile(out_file);
    return {.status = shell.exit_code,
            .out = out.ok() ? *std::move(out) : "",
            .err = std::move(shell.output)};
  }

  std::filesystem::path dir_;
  std::filesystem::path repo_;
  std::filesystem::path home_;
  bool old_git_ = false;
};

std::string Describe(const RandomTree& tree) {
  std::ostringstream out;
  for (const auto& [dir, text] : tree.gitignores) {
    out << "  " << (dir.empty() ? "." : Printable(dir)) << "/.gitignore: \"" << Printable(text)
        << "\"\n";
  }
  return out.str();
}

uint64_t EnvNumber(const char* name, uint64_t fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? std::strtoull(value, nullptr, 10) : fallback;
}

TEST(IgnoreMatcherAgainstGit, RandomTreesKeepWhatGitAddTakes) {
  testing::TempDir temp;
  GitIgnoreOracle git(temp.path());
  if (!git.Init()) GTEST_SKIP() << "git is not available";
  const bool one_seed = std::getenv("NIGHTSHIFT_GITIGNORE_SEED") != nullptr;
  const uint64_t first = EnvNumber("NIGHTSHIFT_GITIGNORE_SEED", 1);
  const uint64_t count = EnvNumber("NIGHTSHIFT_GITIGNORE_ITERATIONS", one_seed ? 1 : 200);
  for (uint64_t seed = first; seed < first + count; ++seed) {
    Rng rng(seed);
    RandomTree tree;
    Grow(rng, git.IsOldGit(), "", 0, &tree);
    WriteTree(git.repo(), tree);

    std::map<std::string, int> reads;
    IgnoreMatcher matcher([&](const std::string& dir) -> std::optional<std::string> {
      ++reads[dir];
      auto it = tree.gitignores.find(dir);
      if (it == tree.gitignores.end()) return std::nullopt;
      return it->second;
    });
    std::set<std::string> kept;
    std::set<std::string> ignored;
    for (const std::string& file : tree.files) {
      if (matcher.IsIgnored(file, /*is_dir=*/false)) {
        ignored.insert(file);
      } else {
        kept.insert(file);
      }
    }
    for (const std::string& dir : tree.dirs) {
      if (matcher.IsIgnored(dir, /*is_dir=*/true)) ignored.insert(dir);
    }

    std::vector<std::string> all = tree.files;
    all.insert(all.end(), tree.dirs.begin(), tree.dirs.end());
    // The two git commands only read the tree: run them side by side.
    std::future<std::set<std::string>> git_kept_later =
        std::async(std::launch::async, [&] { return git.Kept(); });
    const std::set<std::string> git_ignored = git.Ignored(all);
    const std::set<std::string> git_kept = git_kept_later.get();
    if (kept != git_kept || ignored != git_ignored) {
      std::ostringstream out;
      for (const std::string& path : all) {
        const bool is_dir = std::find(tree.dirs.begin(), tree.dirs.end(), path) != tree.dirs.end();
        const bool ours = ignored.count(path) != 0;
        const bool theirs = git_ignored.count(path) != 0;
        const bool git_adds = git_kept.count(path) != 0;
        if (ours != theirs || (!is_dir && ours == git_adds)) {
          out << "  " << (is_dir ? "dir  " : "file ") << "\"" << Printable(path) << "\": ours "
              << (ours ? "ignored" : "kept") << ", git check-ignore "
              << (theirs ? "ignored" : "kept");
          if (!is_dir) out << ", git ls-files " << (git_adds ? "kept" : "ignored");
          out << "\n";
        }
      }
      FAIL() << "seed " << seed << " (NIGHTSHIFT_GITIGNORE_SEED=" << seed
             << " replays it) disagrees with git:\n"
             << out.str() << "with\n"
             << Describe(tree);
    }
    for (const auto& [dir, n] : reads) {
      ASSERT_EQ(n, 1) << "seed " << seed << ": " << Printable(dir) << " read again";
      ASSERT_EQ(ignored.count(dir), 0u) << "seed " << seed << ": " << Printable(dir) << " read";
    }
  }
}

// ---- hostile patterns ----------------------------------------------------------------------

// Patterns that make a backtracking matcher (git's before 2.41 among them) take exponential
// time, in shapes the cheap prefix/suffix/length tests do not reject, so the automaton runs.
TEST(WildMatch, HostilePatternsFinishQuickly) {
  const auto start = std::chrono::steady_clock::now();
  const std::string as(10000, 'a');
  EXPECT_FALSE(WildMatch("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", as));
  EXPECT_FALSE(WildMatch("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*c*", as));
  EXPECT_TRUE(WildMatch("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*", as));
  EXPECT_FALSE(WildMatch("**/*a*a*a*a*a*a*a*a*a*a*a*a*?c*", as));
  std::string deep;
  for (int i = 0; i < 2000; ++i) deep += "a/";
  deep += "a";
  EXPECT_FALSE(WildMatch("**/a/**/a/**/a/**/a/**/a/**/a/**/a/**/a/**/b/**", deep));
  EXPECT_TRUE(WildMatch("**/a/**/a/**/a/**/a/**/a/**/a/**/a/**/a/**/a", deep));
  std::string stars;
  while (stars.size() < 3000) stars += "**/";
  EXPECT_FALSE(WildMatch(stars + "b/**", deep));
  EXPECT_TRUE(WildMatch(stars + "a", deep));

  // The longest pattern Parse keeps, of the worst shape, against a long name.
  std::string longest;
  while (longest.size() + 5 <= IgnoreFile::kMaxPatternBytes) longest += "*a";
  longest += "*c*";
  IgnoreFile file = IgnoreFile::Parse(longest + "\n" + longest + "\n");
  EXPECT_EQ(file.pattern_count(), 2u);
  EXPECT_EQ(file.Match(std::string(IgnoreFile::kMaxPatternBytes, 'a'), kFile), kNone);

  // As many such patterns as Parse takes, against a name of NAME_MAX bytes.
  const std::string hostile = "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*c*";
  std::string text;
  while (text.size() + hostile.size() + 1 <= IgnoreFile::kMaxBytes) text += hostile + "\n";
  file = IgnoreFile::Parse(text);
  EXPECT_FALSE(file.truncated());
  EXPECT_EQ(file.Match(std::string(255, 'a'), kFile), kNone);

  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

}  // namespace
}  // namespace nightshift::workspace
