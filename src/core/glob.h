#pragma once

// Glob patterns over untrusted text, in time linear in the text for a given pattern (an NFA
// simulation, no backtracking): a path or a command line from a run cannot make matching slow,
// whatever the pattern's stars. A Pattern is compiled once and matched many times (the policy
// engine's rules); GlobMatch and LikeMatch compile and match in one call.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace nightshift {

class Pattern {
 public:
  // Paths separated by '/': `*` matches within a segment, `?` one character but '/', `**`
  // anything (across segments), and `**/` zero or more whole directories ("**/CODEOWNERS"
  // matches "CODEOWNERS" and "a/b/CODEOWNERS"). Everything else is itself.
  static Pattern Glob(std::string_view pattern);
  // Cedar's `like`: `*` matches any sequence of bytes ('/' and newlines included), `\*` is a
  // literal star and `\\` a backslash; everything else is itself.
  static Pattern Like(std::string_view pattern);

  bool Match(std::string_view text) const;

 private:
  struct State {
    enum Kind : uint8_t { kByte, kOne, kStar, kAny, kSkip } kind = kByte;
    char byte = 0;
    uint32_t to = 0;  // kSkip's other way
  };
  enum class Shape : uint8_t { kExact, kPrefix, kAutomaton };

  void Compile();  // the shape, and the closures for small automata
  bool Simulate(std::string_view text) const;
  bool SimulateSmall(std::string_view text) const;

  Shape shape_ = Shape::kAutomaton;
  std::string literal_;  // kExact, kPrefix
  std::vector<State> states_;
  // For automata of at most 63 states: each state's closure (what it reaches without
  // consuming) as a bit set, the accepting state being bit states_.size().
  std::vector<uint64_t> closure_;
};

// Pattern::Glob(pattern).Match(path).
bool GlobMatch(std::string_view pattern, std::string_view path);

// Pattern::Like(pattern).Match(text).
bool LikeMatch(std::string_view pattern, std::string_view text);

}  // namespace nightshift
