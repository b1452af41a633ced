#include "workspace/gitignore.h"

#include <algorithm>
#include <array>
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

// A compiled wildmatch pattern, matched by simulating its automaton over the text: the set of
// positions in the token list reached so far, one bit each, advanced one text byte at a time
// with word-wide operations (Shift-And). git's own matcher backtracks, with cut-offs; this
// never does, so a hostile pattern costs O(text × tokens / 64) word operations at worst.
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
  // Position masks, words_ each, one after the other in masks_.
  enum Mask { kOneMask, kLoopMask, kLoopOnSlashMask, kEpsilon1Mask, kEpsilon3Mask, kMasks };

  void Prepare();
  const uint64_t* Words(Mask m) const { return masks_.data() + m * words_; }
  void AddAcceptMask(unsigned char c, std::vector<uint64_t>* out) const;
  void Close(uint64_t* states) const;

  std::vector<Token> tokens_;
  std::vector<ByteSet> sets_;
  bool never_ = false;  // a malformed bracket or a trailing '\'
  // Cheap tests first: the bytes every match starts and ends with, and its least length.
  bool literal_ = false;  // every token is kByte: the pattern is prefix_
  std::string prefix_;
  std::string suffix_;
  size_t min_length_ = 0;
  // The automaton: bit k of a state set is "tokens [0, k) matched"; bit tokens_.size() accepts.
  size_t words_ = 0;
  std::vector<uint64_t> masks_;
  std::vector<std::pair<unsigned char, uint32_t>> bytes_;     // kByte (byte, position), sorted
  std::vector<std::pair<uint32_t, uint32_t>> set_positions_;  // kSet (position, set index)
};

Glob Glob::Compile(std::string_view pattern) {
  Glob glob;
  std::vector<Token>& tokens = glob.tokens_;
  const size_t size = pattern.size();
  size_t i = 0;
  while (i < size) {
    const unsigned char c = Byte(pattern[i]);
    if (c == '\\') {
      if (i + 1 == size) {
        glob.never_ = true;
        return glob;
      }
      tokens.push_back({.op = Op::kByte, .byte = Byte(pattern[i + 1])});
      i += 2;
    } else if (c == '?') {
      tokens.push_back({.op = Op::kOne});
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
        const size_t n = tokens.size();
        if (n >= 3 && tokens[n - 3].op == Op::kSkipDirs) {
          ++i;  // `**/**/` is `**/`; merged, no chain of skips slows Close down
        } else {
          tokens.push_back({.op = Op::kSkipDirs});
          tokens.push_back({.op = Op::kStarStar});
        }
      } else if (component &&
                 (i == size || (pattern[i] == '\\' && i + 1 < size && pattern[i + 1] == '/'))) {
        tokens.push_back({.op = Op::kStarStar});
      } else {
        tokens.push_back({.op = Op::kStar});
      }
    } else if (c == '[') {
      std::optional<ByteSet> set = ParseBracket(pattern, &i);
      if (!set) {
        glob.never_ = true;
        return glob;
      }
      tokens.push_back({.op = Op::kSet, .set = static_cast<uint32_t>(glob.sets_.size())});
      glob.sets_.push_back(*set);
    } else {
      tokens.push_back({.op = Op::kByte, .byte = c});
      ++i;
    }
  }
  glob.Prepare();
  return glob;
}

void Glob::Prepare() {
  const size_t n = tokens_.size();
  size_t prefix = 0;
  while (prefix < n && tokens_[prefix].op == Op::kByte) {
    prefix_.push_back(static_cast<char>(tokens_[prefix++].byte));
  }
  literal_ = prefix == n;
  if (literal_) return;

  // The suffix starts after the last wildcard and after the last '/' a `**/` may skip.
  size_t floor = 0;
  for (size_t k = 0; k < n; ++k) {
    const Op op = tokens_[k].op;
    if (op == Op::kByte || op == Op::kOne || op == Op::kSet) {
      ++min_length_;
    } else {
      floor = std::max(floor, k + 1);
    }
    if (op == Op::kSkipDirs) {
      --min_length_;
      floor = std::max(floor, k + 3);
    }
  }
  for (size_t k = n; k > floor && tokens_[k - 1].op == Op::kByte; --k) {
    suffix_.insert(suffix_.begin(), static_cast<char>(tokens_[k - 1].byte));
  }

  words_ = n / 64 + 1;
  masks_.assign(kMasks * words_, 0);
  auto set = [&](Mask m, size_t k) { masks_[m * words_ + k / 64] |= uint64_t{1} << (k % 64); };
  for (size_t k = 0; k < n; ++k) {
    switch (tokens_[k].op) {
      case Op::kByte:
        bytes_.emplace_back(tokens_[k].byte, k);
        break;
      case Op::kOne:
        set(kOneMask, k);
        break;
      case Op::kSet:
        set_positions_.emplace_back(k, tokens_[k].set);
        break;
      case Op::kStar:
        set(kLoopMask, k);
        set(kEpsilon1Mask, k);
        break;
      case Op::kStarStar:
        set(kLoopMask, k);
        set(kLoopOnSlashMask, k);
        set(kEpsilon1Mask, k);
        break;
      case Op::kSkipDirs:
        set(kEpsilon1Mask, k);
        set(kEpsilon3Mask, k);
        break;
    }
  }
  std::sort(bytes_.begin(), bytes_.end());
}

// Appends the positions whose token consumes byte `c`.
void Glob::AddAcceptMask(unsigned char c, std::vector<uint64_t>* out) const {
  const size_t at = out->size();
  if (c == '/') {
    out->resize(at + words_, 0);
  } else {
    out->insert(out->end(), Words(kOneMask), Words(kOneMask) + words_);
  }
  uint64_t* accept = out->data() + at;
  auto set = [&](size_t k) { accept[k / 64] |= uint64_t{1} << (k % 64); };
  auto byte = std::lower_bound(bytes_.begin(), bytes_.end(), std::make_pair(c, uint32_t{0}));
  for (; byte != bytes_.end() && byte->first == c; ++byte) set(byte->second);
  for (const auto& [k, index] : set_positions_) {
    if (sets_[index].test(c)) set(k);
  }
}

// Adds to `states` the positions reachable without consuming a byte: past each star (it may
// match nothing), and from a kSkipDirs into its `**` or past that and its '/'. Such chains are
// at most three steps long (stars come in runs of one token, and `**/**/` is merged), so the
// loop settles within four rounds.
void Glob::Close(uint64_t* states) const {
  const uint64_t* epsilon1 = Words(kEpsilon1Mask);
  const uint64_t* epsilon3 = Words(kEpsilon3Mask);
  for (bool grew = true; grew;) {
    grew = false;
    uint64_t carry1 = 0;
    uint64_t carry3 = 0;
    for (size_t w = 0; w < words_; ++w) {
      const uint64_t step1 = states[w] & epsilon1[w];
      const uint64_t step3 = states[w] & epsilon3[w];
      const uint64_t reached = (step1 << 1) | carry1 | (step3 << 3) | carry3;
      carry1 = step1 >> 63;
      carry3 = step3 >> 61;
      if ((reached & ~states[w]) != 0) {
        states[w] |= reached;
        grew = true;
      }
    }
  }
}

bool Glob::Matches(std::string_view text) const {
  if (never_) return false;
  if (literal_) return text == prefix_;
  if (text.size() < min_length_ || !text.starts_with(prefix_) || !text.ends_with(suffix_)) {
    return false;
  }
  text.remove_prefix(prefix_.size());

  std::vector<uint64_t> states(2 * words_, 0);
  uint64_t* current = states.data();
  uint64_t* next = current + words_;
  current[prefix_.size() / 64] = uint64_t{1} << (prefix_.size() % 64);
  Close(current);
  // Each distinct byte's accept mask, built when the text first has it.
  std::array<uint16_t, 256> accept_index{};  // 1 + its index in `accepts`; 0: not built yet
  std::vector<uint64_t> accepts;
  for (char ch : text) {
    const unsigned char c = Byte(ch);
    if (accept_index[c] == 0) {
      AddAcceptMask(c, &accepts);
      accept_index[c] = static_cast<uint16_t>(accepts.size() / words_);
    }
    const uint64_t* accept = accepts.data() + (accept_index[c] - 1) * words_;
    const uint64_t* loop = Words(c == '/' ? kLoopOnSlashMask : kLoopMask);
    uint64_t carry = 0;
    uint64_t alive = 0;
    for (size_t w = 0; w < words_; ++w) {
      const uint64_t advancing = current[w] & accept[w];
      next[w] = (advancing << 1) | carry | (current[w] & loop[w]);
      carry = advancing >> 63;
      alive |= next[w];
    }
    if (alive == 0) return false;
    Close(next);
    std::swap(current, next);
  }
  const size_t n = tokens_.size();
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
  bool basename_only = false;  // no '/' (a trailing one aside): the basename, at any depth
};

IgnoreFile::IgnoreFile() = default;
IgnoreFile::IgnoreFile(IgnoreFile&&) noexcept = default;
IgnoreFile& IgnoreFile::operator=(IgnoreFile&&) noexcept = default;
IgnoreFile::~IgnoreFile() = default;

size_t IgnoreFile::pattern_count() const { return patterns_.size(); }

IgnoreFile IgnoreFile::Parse(std::string_view text) {
  IgnoreFile file;
  // At the limit, a last line without its newline may have been cut by the reader: drop it.
  if (text.size() >= kMaxBytes) {
    const size_t last_newline = text.rfind('\n', kMaxBytes - 1);
    const size_t kept = last_newline == std::string_view::npos ? 0 : last_newline + 1;
    file.truncated_ = kept < text.size();
    text = text.substr(0, kept);
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
    if (std::optional<std::string> text = read_(dir)) {
      it->second = IgnoreFile::Parse(*text);
      truncated_ = truncated_ || it->second->truncated();
    }
  }
  return it->second ? &*it->second : nullptr;
}

}  // namespace nightshift::workspace
