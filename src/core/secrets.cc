#include "core/secrets.h"

#include <algorithm>
#include <optional>
#include <string>

namespace nightshift {
namespace {

// Why this is linear: the scan moves left to right and, after a match, resumes past it. A token
// shape is only tried where a word (a run of [A-Za-z0-9_-]) starts, and its body never leaves
// that word, so each word is read a constant number of times. A keyword shape (BEGIN marker,
// aws_secret_access_key, Authorization) reads past its keyword only over separators that belong
// to that one keyword occurrence, and over a value whose failure is bounded (fewer than 40 or
// 16 bytes) or whose success is skipped. A BEGIN marker searches forward once for its END: found,
// the scan resumes after it; not found, the match takes the rest of the text.

constexpr size_t kUnbounded = static_cast<size_t>(-1);

// A set of bytes, written as inside a regex bracket: "A-Za-z0-9_-".
struct ByteSet {
  constexpr explicit ByteSet(std::string_view spec) {
    for (size_t i = 0; i < spec.size(); ++i) {
      if (i + 2 < spec.size() && spec[i + 1] == '-') {
        for (int c = static_cast<unsigned char>(spec[i]);
             c <= static_cast<unsigned char>(spec[i + 2]); ++c) {
          bits[c] = true;
        }
        i += 2;
      } else {
        bits[static_cast<unsigned char>(spec[i])] = true;
      }
    }
  }
  constexpr bool Contains(char c) const { return bits[static_cast<unsigned char>(c)]; }
  constexpr void Add(char c) { bits[static_cast<unsigned char>(c)] = true; }

  bool bits[256] = {};  // indexed by the byte as unsigned char
};

constexpr ByteSet kWord("A-Za-z0-9_-");  // a token may not start right after one of these
constexpr ByteSet kUpperDigit("0-9A-Z");
constexpr ByteSet kAlnum("A-Za-z0-9");
constexpr ByteSet kAlnumUnderscore("A-Za-z0-9_");
constexpr ByteSet kAlnumDash("A-Za-z0-9-");
constexpr ByteSet kNotDigit = [] {
  ByteSet set("0-9");
  for (bool& bit : set.bits) bit = !bit;
  return set;
}();
constexpr ByteSet kAwsSecret("A-Za-z0-9/+=");
constexpr ByteSet kBearerToken("A-Za-z0-9._~+/-");
constexpr ByteSet kSpaceOrQuote(" \t'\"");
constexpr ByteSet kSpaceQuoteOrNewline(" \t\r\n\v\f'\"");
constexpr ByteSet kWhitespace(" \t\r\n\v\f");

// A credential recognised by a literal prefix and a run of body bytes.
struct TokenShape {
  std::string_view kind;
  std::string_view prefix;  // literal and case-sensitive, except "[…]" is one of the listed bytes
  const ByteSet* body;
  size_t min_body;
  size_t max_body;         // kUnbounded: the match takes the whole run of body bytes
  bool exact_run = false;  // the run of body bytes must end at max_body (AKIA…: exactly 16)
  bool needs_digit = false;
};

// The catalogue. Tried in order; the first that matches wins, so longer prefixes come first.
constexpr TokenShape kTokenShapes[] = {
    {"aws-access-key-id", "AKIA", &kUpperDigit, 16, 16, /*exact_run=*/true},
    {"aws-access-key-id", "ASIA", &kUpperDigit, 16, 16, /*exact_run=*/true},
    {"github-token", "gh[pousr]_", &kAlnum, 30, kUnbounded},
    {"github-token", "github_pat_", &kAlnumUnderscore, 40, kUnbounded},
    {"gitlab-token", "glpat-", &kWord, 20, kUnbounded},
    {"slack-token", "xox[abprs]-", &kAlnumDash, 10, kUnbounded},
    {"anthropic-api-key", "sk-ant-", &kWord, 20, kUnbounded, false, /*needs_digit=*/true},
    {"openai-api-key", "sk-proj-", &kWord, 20, kUnbounded, false, /*needs_digit=*/true},
    {"openai-api-key", "sk-", &kWord, 20, kUnbounded, false, /*needs_digit=*/true},
    {"stripe-key", "sk_live_", &kAlnum, 20, kUnbounded},
    {"stripe-key", "rk_live_", &kAlnum, 20, kUnbounded},
    {"npm-token", "npm_", &kAlnum, 36, 36},
    {"google-api-key", "AIza", &kWord, 35, 35},
};

constexpr std::string_view kAwsSecretKeyword = "aws_secret_access_key";
constexpr std::string_view kAuthorizationKeyword = "authorization";
constexpr std::string_view kBearerKeyword = "bearer";
constexpr std::string_view kBeginMarker = "-----BEGIN ";
constexpr std::string_view kEndMarker = "-----END ";
constexpr std::string_view kMarkerDashes = "-----";
constexpr std::string_view kPrivateKeyLabel = "PRIVATE KEY";
constexpr std::string_view kPgpPrivateKeyLabel = "PGP PRIVATE KEY BLOCK";
constexpr ByteSet kPemLabel("A-Z0-9 ");

// Bytes at which a token can start, and bytes after which one can (see AtTokenBoundary; 'n',
// 'r' and 't' may end an escape). Bytes at which a keyword shape starts: the BEGIN marker's dash
// and the first letter of aws_secret_access_key and authorization, in any case.
constexpr ByteSet kTokenStartBytes = [] {
  ByteSet set("");
  for (const TokenShape& shape : kTokenShapes) set.Add(shape.prefix[0]);
  return set;
}();
constexpr ByteSet kTokenMayFollowBytes = [] {
  ByteSet set("nrt");
  for (int c = 0; c < 256; ++c) set.bits[c] = set.bits[c] || !kWord.bits[c];
  return set;
}();
constexpr ByteSet kKeywordStartBytes("-aA");
constexpr ByteSet kStartBytes = [] {
  ByteSet set = kKeywordStartBytes;
  for (int c = 0; c < 256; ++c) set.bits[c] = set.bits[c] || kTokenStartBytes.bits[c];
  return set;
}();

// The first offset at or after `at` where a shape may start, or text.size(); MatchAt decides.
// The scan's hot loop, over plain arrays so that it stays fast in unoptimized sanitizer builds.
size_t NextCandidate(std::string_view text, size_t at) {
  const auto* const begin = reinterpret_cast<const unsigned char*>(text.data());
  const auto* const end = begin + text.size();
  for (const auto* p = begin + at; p != end; ++p) {
    if (!kStartBytes.bits[*p]) continue;
    if (kKeywordStartBytes.bits[*p]) return p - begin;
    if (kTokenStartBytes.bits[*p] && (p == begin || kTokenMayFollowBytes.bits[p[-1]])) {
      return p - begin;
    }
  }
  return text.size();
}

char AsciiLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool StartsWithIgnoringCase(std::string_view text, size_t at, std::string_view lower_keyword) {
  if (text.size() - at < lower_keyword.size()) return false;
  for (size_t i = 0; i < lower_keyword.size(); ++i) {
    if (AsciiLower(text[at + i]) != lower_keyword[i]) return false;
  }
  return true;
}

// The offset of the first byte at or after `at` that is not in `set`, or text.size(); looks at
// most `max` bytes. A plain loop over plain arrays, as a long token or a whole file may pass here.
size_t SkipWhile(std::string_view text, size_t at, const ByteSet& set, size_t max = kUnbounded) {
  const auto* const begin = reinterpret_cast<const unsigned char*>(text.data());
  const auto* const end = begin + at + std::min(max, text.size() - at);
  const auto* p = begin + at;
  while (p != end && set.bits[*p]) ++p;
  return p - begin;
}

// Whether a token may start at `at`: at the start, after a byte that cannot be part of a token,
// or right after an escape such as `\n` or `\t` (a token on its own line inside a JSON string).
bool AtTokenBoundary(std::string_view text, size_t at) {
  if (at == 0 || !kWord.Contains(text[at - 1])) return true;
  if (at < 2 || text[at - 2] != '\\') return false;
  const char escape = text[at - 1];
  return escape == 'n' || escape == 'r' || escape == 't';
}

// The length of `prefix` (see TokenShape) matched at text[at], or 0.
size_t MatchPrefix(std::string_view text, size_t at, std::string_view prefix) {
  size_t i = at;
  for (size_t p = 0; p < prefix.size(); ++p, ++i) {
    if (i >= text.size()) return 0;
    if (prefix[p] == '[') {
      const size_t close = prefix.find(']', p);
      if (prefix.substr(p + 1, close - p - 1).find(text[i]) == std::string_view::npos) return 0;
      p = close;
    } else if (prefix[p] != text[i]) {
      return 0;
    }
  }
  return i - at;
}

std::optional<SecretMatch> MatchToken(const TokenShape& shape, std::string_view text, size_t at) {
  const size_t prefix_length = MatchPrefix(text, at, shape.prefix);
  if (prefix_length == 0) return std::nullopt;
  const size_t body_start = at + prefix_length;
  const size_t end = SkipWhile(text, body_start, *shape.body, shape.max_body);
  if (end - body_start < shape.min_body) return std::nullopt;
  if (shape.exact_run && end < text.size() && shape.body->Contains(text[end])) return std::nullopt;
  if (shape.needs_digit && SkipWhile(text, body_start, kNotDigit, end - body_start) == end) {
    return std::nullopt;
  }
  return SecretMatch{.offset = at, .length = end - at, .kind = shape.kind};
}

// `-----BEGIN <LABEL>PRIVATE KEY-----` or `-----BEGIN PGP PRIVATE KEY BLOCK-----`, through its
// `-----END …-----` with the same label, or through the end of the text.
std::optional<SecretMatch> MatchPrivateKey(std::string_view text, size_t at) {
  if (text.substr(at, kBeginMarker.size()) != kBeginMarker) return std::nullopt;
  const size_t label_start = at + kBeginMarker.size();
  const size_t label_end = SkipWhile(text, label_start, kPemLabel);
  const std::string_view label = text.substr(label_start, label_end - label_start);
  if (!label.ends_with(kPrivateKeyLabel) && label != kPgpPrivateKeyLabel) return std::nullopt;
  if (text.substr(label_end, kMarkerDashes.size()) != kMarkerDashes) return std::nullopt;
  const size_t begin_end = label_end + kMarkerDashes.size();

  std::string end_marker;
  end_marker.reserve(kEndMarker.size() + label.size() + kMarkerDashes.size());
  end_marker.append(kEndMarker).append(label).append(kMarkerDashes);
  const size_t end_at = text.find(end_marker, begin_end);
  const size_t end = end_at == std::string_view::npos ? text.size() : end_at + end_marker.size();
  return SecretMatch{.offset = at, .length = end - at, .kind = "private-key"};
}

// `aws_secret_access_key` in any case, optional spaces or quotes, `=` or `:`, optional spaces or
// quotes, then the value: 40 or more of [A-Za-z0-9/+=]. The match is the value.
std::optional<SecretMatch> MatchAwsSecretKey(std::string_view text, size_t at) {
  if (!StartsWithIgnoringCase(text, at, kAwsSecretKeyword)) return std::nullopt;
  size_t i = SkipWhile(text, at + kAwsSecretKeyword.size(), kSpaceOrQuote);
  if (i >= text.size() || (text[i] != '=' && text[i] != ':')) return std::nullopt;
  const size_t value = SkipWhile(text, i + 1, kSpaceOrQuote);
  const size_t end = SkipWhile(text, value, kAwsSecret);
  if (end - value < 40) return std::nullopt;
  return SecretMatch{.offset = value, .length = end - value, .kind = "aws-secret-access-key"};
}

// `authorization` in any case, optional whitespace or quotes, `:`, optional whitespace or
// quotes, `bearer` in any case, whitespace, then 16 or more of [A-Za-z0-9._~+/-] and any `=`
// padding. The match is the token.
std::optional<SecretMatch> MatchBearer(std::string_view text, size_t at) {
  if (!StartsWithIgnoringCase(text, at, kAuthorizationKeyword)) return std::nullopt;
  size_t i = SkipWhile(text, at + kAuthorizationKeyword.size(), kSpaceQuoteOrNewline);
  if (i >= text.size() || text[i] != ':') return std::nullopt;
  i = SkipWhile(text, i + 1, kSpaceQuoteOrNewline);
  if (!StartsWithIgnoringCase(text, i, kBearerKeyword)) return std::nullopt;
  i += kBearerKeyword.size();
  const size_t token = SkipWhile(text, i, kWhitespace);
  if (token == i) return std::nullopt;
  size_t end = SkipWhile(text, token, kBearerToken);
  if (end - token < 16) return std::nullopt;
  while (end < text.size() && text[end] == '=') ++end;
  return SecretMatch{.offset = token, .length = end - token, .kind = "bearer-token"};
}

std::optional<SecretMatch> MatchAt(std::string_view text, size_t at) {
  const char c = text[at];
  if (kTokenStartBytes.Contains(c) && AtTokenBoundary(text, at)) {
    for (const TokenShape& shape : kTokenShapes) {
      if (shape.prefix[0] != c) continue;
      if (auto match = MatchToken(shape, text, at)) return match;
    }
  }
  if (c == '-') return MatchPrivateKey(text, at);
  if (c == 'a' || c == 'A') {
    if (auto match = MatchAwsSecretKey(text, at)) return match;
    return MatchBearer(text, at);
  }
  return std::nullopt;
}

}  // namespace

std::vector<SecretMatch> FindSecrets(std::string_view text) {
  std::vector<SecretMatch> found;
  for (size_t at = NextCandidate(text, 0); at < text.size(); at = NextCandidate(text, at)) {
    if (std::optional<SecretMatch> match = MatchAt(text, at)) {
      found.push_back(*match);
      at = match->offset + match->length;
    } else {
      ++at;
    }
  }
  return found;
}

bool ConstantTimeEquals(std::string_view given, std::string_view want) {
  unsigned char diff = given.size() == want.size() ? 0 : 1;
  for (size_t i = 0; i < want.size(); ++i) {
    const unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    diff |= static_cast<unsigned char>(g ^ static_cast<unsigned char>(want[i]));
  }
  return diff == 0;
}

}  // namespace nightshift
