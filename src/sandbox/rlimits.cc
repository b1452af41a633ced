#include "sandbox/rlimits.h"

#include <sys/resource.h>

#include "sandbox/raw_syscall.h"

namespace nightshift::sandbox::internal {

ContainFailure ApplyRlimits() {
  const struct rlimit no_core { 0, 0 };
  RETURN_IF_FAILED(Check(ContainStep::kRlimits, sys::Prlimit(RLIMIT_CORE, &no_core, nullptr)));
  struct rlimit files {};
  RETURN_IF_FAILED(Check(ContainStep::kRlimits, sys::Prlimit(RLIMIT_NOFILE, nullptr, &files)));
  // Raising the hard limit would need CAP_SYS_RESOURCE on the host.
  const rlim_t wanted = files.rlim_max < kSandboxOpenFiles ? files.rlim_max : kSandboxOpenFiles;
  files = {wanted, wanted};
  return Check(ContainStep::kRlimits, sys::Prlimit(RLIMIT_NOFILE, &files, nullptr));
}

}  // namespace nightshift::sandbox::internal
