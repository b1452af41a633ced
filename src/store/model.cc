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

namespace {

template <typename E, size_t N>
std::string_view NameOf(const std::array<std::pair<E, std::string_view>, N>& names, E value) {
  for (const auto& [v, name] : names) {
    if (v == value) return name;
  }
  return "unknown";
}

template <typename E, size_t N>
std::optional<E> ValueOf(const std::array<std::pair<E, std::string_view>, N>& names,
                         std::string_view name) {
  for (const auto& [v, n] : names) {
    if (n == name) return v;
  }
  return std::nullopt;
}

constexpr std::array<std::pair<RunKind, std::string_view>, 3> kKindNames{{
    {RunKind::kRecipe, "recipe"},
    {RunKind::kAgent, "agent"},
    {RunKind::kPrebuild, "prebuild"},
}};
constexpr std::array<std::pair<CrState, std::string_view>, 3> kCrStateNames{{
    {CrState::kOpen, "open"},
    {CrState::kMerged, "merged"},
    {CrState::kClosed, "closed"},
}};
constexpr std::array<std::pair<CrReview, std::string_view>, 2> kCrReviewNames{{
    {CrReview::kPending, "pending"},
    {CrReview::kApproved, "approved"},
}};
constexpr std::array<std::pair<IncomingState, std::string_view>, 2> kIncomingStateNames{{
    {IncomingState::kPending, "pending"},
    {IncomingState::kDone, "done"},
}};

}  // namespace

std::string_view RunStateName(RunState state) { return NameOf(kStateNames, state); }
std::optional<RunState> ParseRunState(std::string_view name) { return ValueOf(kStateNames, name); }
std::string_view RunKindName(RunKind kind) { return NameOf(kKindNames, kind); }
std::optional<RunKind> ParseRunKind(std::string_view name) { return ValueOf(kKindNames, name); }
std::string_view CrStateName(CrState state) { return NameOf(kCrStateNames, state); }
std::optional<CrState> ParseCrState(std::string_view name) { return ValueOf(kCrStateNames, name); }
std::string_view CrReviewName(CrReview review) { return NameOf(kCrReviewNames, review); }
std::optional<CrReview> ParseCrReview(std::string_view name) {
  return ValueOf(kCrReviewNames, name);
}

std::string_view IncomingStateName(IncomingState state) {
  return NameOf(kIncomingStateNames, state);
}
std::optional<IncomingState> ParseIncomingState(std::string_view name) {
  return ValueOf(kIncomingStateNames, name);
}

bool IsTerminal(RunState state) {
  return state == RunState::kSucceeded || state == RunState::kFailed ||
         state == RunState::kCancelled || state == RunState::kTimedOut ||
         state == RunState::kBlockedByPolicy;
}

}  // namespace nightshift::store
