#include "sandbox/seccomp.h"

#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <iterator>

#include "sandbox/raw_syscall.h"

namespace nightshift::sandbox {
namespace {

// seccomp_compile's output for this build: BuildDefaultSeccompProgram() (seccomp_rules.h).
constexpr sock_filter kDefaultProgram[] = {
#include "sandbox/default_seccomp.inc"
};

}  // namespace

const SeccompProgram& DefaultSeccompProgram() {
  static const auto* program =
      new SeccompProgram{{std::begin(kDefaultProgram), std::end(kDefaultProgram)}};
  return *program;
}

int InstallSeccompProgram(const SeccompProgram& program) {
  const size_t count = program.instructions.size();
  if (count == 0 || count > BPF_MAXINSNS) return EINVAL;
  sock_fprog fprog{};
  fprog.len = static_cast<unsigned short>(count);
  // The kernel copies the program and does not write to it.
  fprog.filter = const_cast<sock_filter*>(program.instructions.data());
  // Required for an unprivileged filter, and wanted anyway: setuid binaries must not gain
  // privileges under a filter that could mislead them.
  if (int error = internal::RawError(internal::RawSyscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1));
      error != 0) {
    return error;
  }
  return internal::RawError(internal::RawSyscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0,
                                                 reinterpret_cast<long>(&fprog)));
}

}  // namespace nightshift::sandbox
