#include "workspace/gitignore.h"

#include <algorithm>
#include <array>
#include <bit>
#include <bitset>
#include <cstdint>
#include <utility>

namespace nightshift::workspace {
namespace {

using ByteSet = std::bitset<256>;

unsigned char Byte(char c) { return static_cast<unsigned char>(c); }

ByteSet Range(int lo, int hi) {
  ByteSet set;
  for (int b = lo; b <= hi; ++b) set.set(b);
  return set;
}

// The POSIX classes of a bracket expression as git's wildmatch has them: ASCII only and
// locale-independent (git's own ctype table), so no byte >= 0x80 is in any class, and space is
// exactly \t \n \r and ' ' (not \v or \f). nullopt for an unknown name.
std::optional<ByteSet> ClassSet(std::string_view name) {
  const ByteSet upper = Range('A', 'Z');
  const ByteSet lower = Range('a', 'z');
  const ByteSet digit = Range('0', '9');
  if (name == "alnum") return upper | lower | digit;
  if (name == "alpha") return upper | lower;
  if (name == "blank") return Range(' ', ' ') | Range('\t', '\t');
  if (name == "cntrl") return Range(0, 31) | Range(127, 127);
  if (name == "digit") return digit;
  if (name == "graph") return Range(0x21, 0x7e);
  if (name == "lower") return lower;
  if (name == "print") return Range(0x20, 0x7e);
  if (name == "punct")
    return Range(0x21, 0x2f) | Range(0x3a, 0x40) | Range(0x5b, 0x60) | Range(0x7b, 0x7e);
  if (name == "space") return Range('\t', '\n') | Range('\r', '\r') | Range(' ', ' ');
  if (name == "upper") return upper;
  if (name == "xdigit") return digit | Range('a', 'f') | Range('A', 'F');
  return std::nullopt;
}

// Parses the bracket expression that starts at pattern[*pos] == '[' the way git's wildmatch
// reads it, and moves *pos past its closing ']'. nullopt when it is malformed (no closing ']',
// an unknown [:class:], a trailing '\'): git then fails every match that reaches it.
//  - The first member (after an optional '!' or '^') may be ']'.
//  - '\' makes the next byte a member, also as a range's end.
//  - 'a-z' is a range when '-' follows a single member and is not last; after a range or a
//    class, or first, '-' is a member.
//  - '[:' not closed by ':]' before the next ']' makes '[' an ordinary member.
std::optional<ByteSet> ParseBracket(std::string_view pattern, size_t* pos) {
  const size_t size = pattern.size();
  auto at = [&](size_t i) { return i < size ? int{Byte(pattern[i])} : -1; };
  size_t i = *pos + 1;
  bool negated = false;
  if (at(i) == '!' || at(i) == '^') {
    negated = true;
    ++i;
  }
  ByteSet set;
  int prev = 0;  // the member a '-' would start a range from; 0: none (patterns hold no NUL)
  do {
    int c = at(i);
    if (c < 0) return std::nullopt;
    if (c == '\\') {
      c = at(++i);
      if (c < 0) return std::nullopt;
      set.set(c);
      prev = c;
    } else if (c == '-' && prev != 0 && at(i + 1) >= 0 && at(i + 1) != ']') {
      int hi = at(++i);
      if (hi == '\\') {
        hi = at(++i);
        if (hi < 0) return std::nullopt;
      }
      if (prev <= hi) set |= Range(prev, hi);
      prev = 0;
    } else if (c == '[' && at(i + 1) == ':') {
      const size_t name = i + 2;
      const size_t close = pattern.find(']', name);
      if (close == std::string_view::npos) return std::nullopt;
      if (close == name || pattern[close - 1] != ':') {
        set.set('[');
        prev = '[';
      } else {
        std::optional<ByteSet> cls = ClassSet(pattern.substr(name, close - 1 - name));
        if (!cls) return std::nullopt;
        set |= *cls;
        prev = 0;
        i = close;
      }
    } else {
      set.set(c);
      prev = c;
    }
    ++i;
  } while (at(i) != ']');
  *pos = i + 1;
  if (negated) set.flip();
  set.reset('/');  // WM_PATHNAME: no bracket expression matches '/'
  return set;
}

// A compiled wildmatch pattern, matched by simulating its automaton over the text: a set of
// positions in the token list, advanced one text byte at a time. git's own matcher backtracks
// (with cut-offs); this never does, so a hostile pattern costs at most O(tokens × text).
class Glob {
 public:
  static Glob Compile(std::string_view pattern);
  bool Matches(std::string_view text) const;

 private:
  enum class Op : uint8_t {
    kByte,      // one given byte
    kOne,       // '?': any byte but '/'
    kSet,       // a bracket expression
    kStar,      // '*': any run of bytes without '/'
    kStarStar,  // a `**` component: any run of bytes
    kSkipDirs,  // before the kStarStar of a `**/`: consumes nothing, may skip both (no dirs)
  };
  struct Token {
    Op op;
    unsigned char byte = 0;
    uint32_t set = 0;  // kSet: index in sets_
  };

  void Close(uint64_t* states) const;

  std::vector<Token> tokens_;
  std::vector<ByteSet> sets_;
  std::optional<std::string> literal_;  // set when every token is kByte
  bool never_ = false;                  // a malformed bracket or a trailing '\'
};

Glob Glob::Compile(std::string_view pattern) {
  Glob glob;
  const size_t size = pattern.size();
  size_t i = 0;
  while (i < size) {
    const unsigned char c = Byte(pattern[i]);
    if (c == '\\') {
      if (i + 1 == size) {
        glob.never_ = true;
        return glob;
      }
      glob.tokens_.push_back({.op = Op::kByte, .byte = Byte(pattern[i + 1])});
      i += 2;
    } else if (c == '?') {
      glob.tokens_.push_back({.op = Op::kOne});
      ++i;
    } else if (c == '*') {
      const size_t start = i;
      while (i < size && pattern[i] == '*') ++i;
      // A run of two or more stars spans directories only as a whole component: at the start
      // or after a '/', and at the end or before a '/' (also an escaped one). Only before a
      // plain '/' may it match zero directories, that '/' included (git tries the rest of the
      // pattern after the '/' first).
      const bool component = i - start >= 2 && (start == 0 || pattern[start - 1] == '/');
      if (component && i < size && pattern[i] == '/') {
        glob.tokens_.push_back({.op = Op::kSkipDirs});
        glob.tokens_.push_back({.op = Op::kStarStar});
      } else if (component &&
                 (i == size || (pattern[i] == '\\' && i + 1 < size && pattern[i + 1] == '/'))) {
        glob.tokens_.push_back({.op = Op::kStarStar});
      } else {
        glob.tokens_.push_back({.op = Op::kStar});
      }
    } else if (c == '[') {
      std::optional<ByteSet> set = ParseBracket(pattern, &i);
      if (!set) {
        glob.never_ = true;
        return glob;
      }
      glob.tokens_.push_back({.op = Op::kSet, .set = static_cast<uint32_t>(glob.sets_.size())});
      glob.sets_.push_back(*set);
    } else {
      glob.tokens_.push_back({.op = Op::kByte, .byte = c});
      ++i;
    }
  }
  if (std::all_of(glob.tokens_.begin(), glob.tokens_.end(),
                  [](const Token& t) { return t.op == Op::kByte; })) {
    glob.literal_.emplace();
    for (const Token& t : glob.tokens_) glob.literal_->push_back(static_cast<char>(t.byte));
  }
  return glob;
}

// Adds to `states` the positions reachable without consuming a byte: past each star (it may
// match nothing), and from a kSkipDirs into its `**` or past that and its '/'. These only go
// forward, so one ascending pass reaches them all.
void Glob::Close(uint64_t* states) const {
  const size_t n = tokens_.size();
  const size_t words = n / 64 + 1;
  for (size_t w = 0; w < words; ++w) {
    uint64_t pending = states[w];
    while (pending != 0) {
      const size_t k = w * 64 + std::countr_zero(pending);
      pending &= pending - 1;
      if (k >= n) continue;
      const Token& token = tokens_[k];
      if (token.op != Op::kStar && token.op != Op::kStarStar && token.op != Op::kSkipDirs) {
        continue;
      }
      for (size_t next : {k + 1, token.op == Op::kSkipDirs ? k + 3 : k + 1}) {
        const uint64_t bit = uint64_t{1} << (next % 64);
        if ((states[next / 64] & bit) != 0) continue;
        states[next / 64] |= bit;
        if (next / 64 == w) pending |= bit;
      }
    }
  }
}

bool Glob::Matches(std::string_view text) const {
  if (never_) return false;
  if (literal_) return text == *literal_;
  const size_t n = tokens_.size();
  const size_t words = n / 64 + 1;  // one bit per position 0..n; n: all tokens matched
  std::array<uint64_t, 16> inline_states{};
  std::vector<uint64_t> heap_states;
  uint64_t* current = inline_states.data();
  if (2 * words > inline_states.size()) {
    heap_states.assign(2 * words, 0);
    current = heap_states.data();
  }
  uint64_t* next = current + words;
  current[0] = 1;
  Close(current);
  for (char ch : text) {
    const unsigned char c = Byte(ch);
    std::fill(next, next + words, 0);
    bool alive = false;
    auto set = [&](size_t k) {
      next[k / 64] |= uint64_t{1} << (k % 64);
      alive = true;
    };
    for (size_t w = 0; w < words; ++w) {
      for (uint64_t bits = current[w]; bits != 0; bits &= bits - 1) {
        const size_t k = w * 64 + std::countr_zero(bits);
        if (k >= n) continue;
        const Token& token = tokens_[k];
        switch (token.op) {
          case Op::kByte:
            if (c == token.byte) set(k + 1);
            break;
          case Op::kOne:
            if (c != '/') set(k + 1);
            break;
          case Op::kSet:
            if (sets_[token.set].test(c)) set(k + 1);
            break;
          case Op::kStar:
            if (c != '/') set(k);
            break;
          case Op::kStarStar:
            set(k);
            break;
          case Op::kSkipDirs:
            break;
        }
      }
    }
    if (!alive) return false;
    Close(next);
    std::swap(current, next);
  }
  return (current[n / 64] >> (n % 64) & 1) != 0;
}

// Drops trailing spaces as git does: not one escaped with '\' (the '\' stays, and the pattern
// matches a literal space), and none at all after a trailing unpaired '\'.
std::string_view TrimTrailingSpaces(std::string_view line) {
  size_t cut = std::string_view::npos;
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == ' ') {
      if (cut == std::string_view::npos) cut = i;
      continue;
    }
    if (line[i] == '\\' && ++i == line.size()) return line;
    cut = std::string_view::npos;
  }
  return line.substr(0, cut);
}

}  // namespace

bool WildMatch(std::string_view pattern, std::string_view text) {
  return Glob::Compile(pattern).Matches(text);
}

struct IgnoreFile::Pattern {
  Glob glob;
  bool negated = false;
  bool dir_only = false;
  bool basename_only = false;  // no '/' but a trailing one: matches the basename at any depth
};

IgnoreFile::IgnoreFile() = default;
IgnoreFile::IgnoreFile(IgnoreFile&&) noexcept = default;
IgnoreFile& IgnoreFile::operator=(IgnoreFile&&) noexcept = default;
IgnoreFile::~IgnoreFile() = default;

size_t IgnoreFile::pattern_count() const { return patterns_.size(); }

IgnoreFile IgnoreFile::Parse(std::string_view text) {
  IgnoreFile file;
  if (text.size() > kMaxBytes) {
    const size_t last_newline = text.rfind('\n', kMaxBytes - 1);
    text = text.substr(0, last_newline == std::string_view::npos ? 0 : last_newline + 1);
    file.truncated_ = true;
  }
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  while (!text.empty()) {
    const size_t newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    // Like git: a comment is a '#' in the very first column, before any other processing.
    if (line.empty() || line.front() == '#') continue;
    if (line.back() == '\r') line.remove_suffix(1);
    line = line.substr(0, line.find('\0'));  // git reads each line as a C string
    line = TrimTrailingSpaces(line);
    if (line.size() > kMaxPatternBytes) {
      file.truncated_ = true;
      continue;
    }
    Pattern pattern;
    if (line.starts_with('!')) {
      pattern.negated = true;
      line.remove_prefix(1);
    }
    if (line.ends_with('/')) {
      pattern.dir_only = true;
      line.remove_suffix(1);
    }
    pattern.basename_only = line.find('/') == std::string_view::npos;
    if (!pattern.basename_only && line.starts_with('/')) line.remove_prefix(1);
    // An empty pattern matches no path; "!", "/" and a line of spaces come to this.
    if (line.empty()) continue;
    if (file.patterns_.size() == kMaxPatterns) {
      file.truncated_ = true;
      break;
    }
    pattern.glob = Glob::Compile(line);
    file.patterns_.push_back(std::move(pattern));
  }
  return file;
}

IgnoreFile::Verdict IgnoreFile::Match(std::string_view path, bool is_dir) const {
  const std::string_view basename = path.substr(path.rfind('/') + 1);
  for (auto it = patterns_.rbegin(); it != patterns_.rend(); ++it) {
    if (it->dir_only && !is_dir) continue;
    if (it->glob.Matches(it->basename_only ? basename : path)) {
      return it->negated ? Verdict::kIncluded : Verdict::kIgnored;
    }
  }
  return Verdict::kNone;
}

IgnoreMatcher::IgnoreMatcher(Reader read) : read_(std::move(read)) {}

bool IgnoreMatcher::IsIgnored(std::string_view path, bool is_dir) {
  // Top-down through the directories above `path`: git does not descend into an ignored one,
  // so the first ignored one settles it, and no .gitignore below it is read.
  for (size_t slash = path.find('/'); slash != std::string_view::npos;
       slash = path.find('/', slash + 1)) {
    std::string dir(path.substr(0, slash));
    auto it = dir_ignored_.find(dir);
    if (it == dir_ignored_.end()) {
      const bool ignored = OwnVerdict(dir, /*is_dir=*/true);
      it = dir_ignored_.emplace(std::move(dir), ignored).first;
    }
    if (it->second) return true;
  }
  return OwnVerdict(path, is_dir);
}

bool IgnoreMatcher::OwnVerdict(std::string_view path, bool is_dir) {
  // The .gitignore of the directory holding `path` first, then those above it: the first one
  // with a matching pattern decides.
  size_t slash = path.rfind('/');
  while (true) {
    const bool root = slash == std::string_view::npos;
    if (const IgnoreFile* file =
            FileIn(root ? std::string() : std::string(path.substr(0, slash)))) {
      const IgnoreFile::Verdict verdict = file->Match(root ? path : path.substr(slash + 1), is_dir);
      if (verdict != IgnoreFile::Verdict::kNone) return verdict == IgnoreFile::Verdict::kIgnored;
    }
    if (root) return false;
    slash = slash == 0 ? std::string_view::npos : path.rfind('/', slash - 1);
  }
}

const IgnoreFile* IgnoreMatcher::FileIn(const std::string& dir) {
  auto [it, inserted] = files_.try_emplace(dir);
  if (inserted) {
    if (std::optional<std::string> text = read_(dir)) it->second = IgnoreFile::Parse(*text);
  }
  return it->second ? &*it->second : nullptr;
}

}  // namespace nightshift::workspace
