#include "core/glob.h"

#include <cstdint>
#include <vector>

namespace nightshift {
namespace {

// One state of a pattern's automaton. A loop state (kStar, kAny) consumes what it may and
// stays, or is left without consuming; kSkip is left without consuming, to the next state or
// to `to`.
struct State {
  enum Kind : uint8_t { kByte, kOne, kStar, kAny, kSkip } kind = kByte;
  char byte = 0;
  uint32_t to = 0;  // kSkip's other way
};

// Adds `i` and what it reaches without consuming to `set`.
void Close(const std::vector<State>& states, std::vector<uint8_t>& set, uint32_t i) {
  while (i < states.size() && !set[i]) {
    set[i] = 1;
    const State& s = states[i];
    if (s.kind == State::kSkip) Close(states, set, s.to);
    if (s.kind == State::kStar || s.kind == State::kAny || s.kind == State::kSkip) {
      ++i;
      continue;
    }
    return;
  }
  if (i == states.size()) set[i] = 1;  // the accepting state
}

bool Simulate(const std::vector<State>& states, std::string_view text) {
  const size_t n = states.size();
  std::vector<uint8_t> current(n + 1, 0), next(n + 1, 0);
  Close(states, current, 0);
  for (char c : text) {
    std::fill(next.begin(), next.end(), 0);
    bool any = false;
    for (uint32_t i = 0; i < n; ++i) {
      if (!current[i]) continue;
      const State& s = states[i];
      switch (s.kind) {
        case State::kByte:
          if (c == s.byte) Close(states, next, i + 1), any = true;
          break;
        case State::kOne:
          if (c != '/') Close(states, next, i + 1), any = true;
          break;
        case State::kStar:
          if (c != '/') Close(states, next, i), any = true;
          break;
        case State::kAny:
          Close(states, next, i), any = true;
          break;
        case State::kSkip:
          break;
      }
    }
    if (!any) return false;
    current.swap(next);
  }
  return current[n] != 0;
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view path) {
  std::vector<State> states;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '*' && i + 1 < pattern.size() && pattern[i + 1] == '*') {
      if (i + 2 < pattern.size() && pattern[i + 2] == '/') {
        // `**/`: nothing, or anything that ends with '/'.
        const auto skip = static_cast<uint32_t>(states.size());
        states.push_back({.kind = State::kSkip});
        states.push_back({.kind = State::kAny});
        states.push_back({.kind = State::kByte, .byte = '/'});
        states[skip].to = static_cast<uint32_t>(states.size());
        i += 2;
      } else {
        states.push_back({.kind = State::kAny});
        ++i;
      }
    } else if (c == '*') {
      states.push_back({.kind = State::kStar});
    } else if (c == '?') {
      states.push_back({.kind = State::kOne});
    } else {
      states.push_back({.kind = State::kByte, .byte = c});
    }
  }
  return Simulate(states, path);
}

bool LikeMatch(std::string_view pattern, std::string_view text) {
  // The common shapes without an automaton: a plain value, and a prefix followed by `*`.
  const size_t special = pattern.find_first_of("*\\");
  if (special == std::string_view::npos) return pattern == text;
  if (special == pattern.size() - 1 && pattern.back() == '*') {
    return text.starts_with(pattern.substr(0, special));
  }
  std::vector<State> states;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size() && (pattern[i + 1] == '*' || pattern[i + 1] == '\\')) {
      states.push_back({.kind = State::kByte, .byte = pattern[++i]});
    } else if (c == '*') {
      if (states.empty() || states.back().kind != State::kAny) {
        states.push_back({.kind = State::kAny});
      }
    } else {
      states.push_back({.kind = State::kByte, .byte = c});
    }
  }
  return Simulate(states, text);
}

}  // namespace nightshift
