#include "core/glob.h"

#include <algorithm>

namespace nightshift {

Pattern Pattern::Glob(std::string_view pattern) {
  Pattern p;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '*' && i + 1 < pattern.size() && pattern[i + 1] == '*') {
      if (i + 2 < pattern.size() && pattern[i + 2] == '/') {
        // `**/`: nothing, or anything that ends with '/'.
        const auto skip = static_cast<uint32_t>(p.states_.size());
        p.states_.push_back({.kind = State::kSkip});
        p.states_.push_back({.kind = State::kAny});
        p.states_.push_back({.kind = State::kByte, .byte = '/'});
        p.states_[skip].to = static_cast<uint32_t>(p.states_.size());
        i += 2;
      } else {
        p.states_.push_back({.kind = State::kAny});
        ++i;
      }
    } else if (c == '*') {
      p.states_.push_back({.kind = State::kStar});
    } else if (c == '?') {
      p.states_.push_back({.kind = State::kOne});
    } else {
      p.states_.push_back({.kind = State::kByte, .byte = c});
    }
  }
  p.Compile();
  return p;
}

Pattern Pattern::Like(std::string_view pattern) {
  Pattern p;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size() && (pattern[i + 1] == '*' || pattern[i + 1] == '\\')) {
      p.states_.push_back({.kind = State::kByte, .byte = pattern[++i]});
    } else if (c == '*') {
      if (p.states_.empty() || p.states_.back().kind != State::kAny) {
        p.states_.push_back({.kind = State::kAny});
      }
    } else {
      p.states_.push_back({.kind = State::kByte, .byte = c});
    }
  }
  p.Compile();
  return p;
}

void Pattern::Compile() {
  // A plain value, or a plain prefix followed by anything: no automaton needed.
  const auto plain = [](const State& s) { return s.kind == State::kByte; };
  if (std::all_of(states_.begin(), states_.end(), plain)) {
    shape_ = Shape::kExact;
  } else if (states_.back().kind == State::kAny &&
             std::all_of(states_.begin(), states_.end() - 1, plain)) {
    shape_ = Shape::kPrefix;
  }
  if (shape_ != Shape::kAutomaton) {
    for (const State& s : states_) {
      if (s.kind == State::kByte) literal_ += s.byte;
    }
    states_.clear();
    return;
  }
  if (states_.size() > 63) return;
  const size_t n = states_.size();
  closure_.assign(n + 1, 0);
  // From the last state backwards, a state's closure is itself and what it may skip to.
  closure_[n] = uint64_t{1} << n;
  for (size_t k = n; k-- > 0;) {
    const State& s = states_[k];
    uint64_t c = uint64_t{1} << k;
    if (s.kind == State::kStar || s.kind == State::kAny || s.kind == State::kSkip) {
      c |= closure_[k + 1];
    }
    if (s.kind == State::kSkip) c |= closure_[s.to];
    closure_[k] = c;
  }
}

bool Pattern::Match(std::string_view text) const {
  switch (shape_) {
    case Shape::kExact:
      return text == literal_;
    case Shape::kPrefix:
      return text.starts_with(literal_);
    case Shape::kAutomaton:
      return closure_.empty() ? Simulate(text) : SimulateSmall(text);
  }
  return false;
}

bool Pattern::SimulateSmall(std::string_view text) const {
  const size_t n = states_.size();
  uint64_t current = closure_[0];
  for (char c : text) {
    uint64_t next = 0;
    for (uint64_t bits = current & ((uint64_t{1} << n) - 1); bits != 0; bits &= bits - 1) {
      const auto i = static_cast<size_t>(__builtin_ctzll(bits));
      const State& s = states_[i];
      switch (s.kind) {
        case State::kByte:
          if (c == s.byte) next |= closure_[i + 1];
          break;
        case State::kOne:
          if (c != '/') next |= closure_[i + 1];
          break;
        case State::kStar:
          if (c != '/') next |= closure_[i];
          break;
        case State::kAny:
          next |= closure_[i];
          break;
        case State::kSkip:
          break;
      }
    }
    if (next == 0) return false;
    current = next;
  }
  return (current >> n) & 1;
}

namespace {

// Adds `i` and what it reaches without consuming to `set`.
template <typename States>
void Close(const States& states, std::vector<uint8_t>& set, uint32_t i) {
  while (i < states.size() && !set[i]) {
    set[i] = 1;
    const auto& s = states[i];
    using Kind = std::decay_t<decltype(s.kind)>;
    if (s.kind == Kind::kSkip) Close(states, set, s.to);
    if (s.kind == Kind::kStar || s.kind == Kind::kAny || s.kind == Kind::kSkip) {
      ++i;
      continue;
    }
    return;
  }
  if (i == states.size()) set[i] = 1;  // the accepting state
}

}  // namespace

bool Pattern::Simulate(std::string_view text) const {
  const size_t n = states_.size();
  std::vector<uint8_t> current(n + 1, 0), next(n + 1, 0);
  Close(states_, current, 0);
  for (char c : text) {
    std::fill(next.begin(), next.end(), 0);
    bool any = false;
    for (uint32_t i = 0; i < n; ++i) {
      if (!current[i]) continue;
      const State& s = states_[i];
      switch (s.kind) {
        case State::kByte:
          if (c == s.byte) Close(states_, next, i + 1), any = true;
          break;
        case State::kOne:
          if (c != '/') Close(states_, next, i + 1), any = true;
          break;
        case State::kStar:
          if (c != '/') Close(states_, next, i), any = true;
          break;
        case State::kAny:
          Close(states_, next, i), any = true;
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

bool GlobMatch(std::string_view pattern, std::string_view path) {
  return Pattern::Glob(pattern).Match(path);
}

bool LikeMatch(std::string_view pattern, std::string_view text) {
  return Pattern::Like(pattern).Match(text);
}

}  // namespace nightshift
