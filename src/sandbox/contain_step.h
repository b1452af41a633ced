#pragma once

// The steps of building a sandbox, as a failure names them: each facility's functions (mounts,
// userns, netns, rlimits, seccomp, cgroups) return the step that failed and its errno, and the
// supervisor turns them into "sandbox: <step>: <error>". Internal to src/sandbox.

#include <cstdint>
#include <optional>
#include <string_view>

#include "sandbox/child.h"

namespace nightshift::sandbox::internal {

enum class ContainStep : int32_t {
  kMountPrivate = 100,
  kMountStaging,
  kMountOverlay,
  kMountWorkspace,
  kMountProc,
  kMountSys,
  kMountDev,
  kMountTmp,
  kMask,
  kPivotRoot,
  kNet,
  kHostname,
  kRlimits,
  kUserns,
  kSetId,
  kCaps,
  kSeccomp,
  kCgroup,
  kInitFork,
  kLaunch,
  kIpc,
  kRootLayout,
  kMountHost,
};

std::string_view ContainStepName(ContainStep step);

// A failed step and its errno; nullopt is success.
using ContainFailure = std::optional<ChildFailure>;

NS_CHILD inline ContainFailure Failed(ContainStep step, int error) {
  return ChildFailure{static_cast<int32_t>(step), error};
}

// `result` of a RawSyscall: nullopt, or the failure of `step` with its errno.
NS_CHILD inline ContainFailure Check(ContainStep step, long result) {
  if (result < 0 && result > -4096) return Failed(step, static_cast<int>(-result));
  return std::nullopt;
}

// The checklists' one control structure (nsjail's RETURN_ON_FAILURE).
#define RETURN_IF_FAILED(expr)                 \
  do {                                         \
    if (auto failed_ = (expr)) return failed_; \
  } while (0)

}  // namespace nightshift::sandbox::internal
