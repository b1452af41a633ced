#include "store/model.h"

#include <array>
#include <utility>

namespace nightshift::store {

namespace {
constexpr std::array<std::pair<RunState, std::string_view>, 8> kStateNames{{
    {RunState::kQueued, "queued"},
    {RunState::kPreparing, "preparing"},
    {RunState::kRunning, "running"},
    {RunState::kSucceeded, "succeeded"},
    {RunState::kFailed, "failed"},
    {RunState::kCancelled, "cancelled"},
    {RunState::kTimedOut, "timed_out"},
    {RunState::kBlockedByPolicy, "blocked_by_policy"},
}};
}  // namespace

std::string_view RunStateName(RunState state) {
  for (const auto& [s, name] : kStateNames) {
    if (s == state) return name;
  }
  return "unknown";
}

std::optional<RunState> ParseRunState(std::string_view name) {
  for (const auto& [s, n] : kStateNames) {
    if (n == name) return s;
  }
  return std::nullopt;
}

bool IsTerminal(RunState state) {
  return state == RunState::kSucceeded || state == RunState::kFailed ||
         state == RunState::kCancelled || state == RunState::kTimedOut ||
         state == RunState::kBlockedByPolicy;
}

}  // namespace nightshift::store
