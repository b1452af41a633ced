#pragma once

// System calls that leave errno alone: the result is -errno on failure. For code that runs
// while another process shares its memory, and so its thread-local errno (the payload, cloned
// with CLONE_VM by a sandbox's PID 1, which works on at the same time: launch.cc). Internal to
// src/sandbox.

#include <sys/syscall.h>
#include <unistd.h>

namespace nightshift::sandbox::internal {

inline long RawSyscall(long nr, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0, long a5 = 0,
                       long a6 = 0) {
#if defined(__x86_64__)
  long ret;
  register long r10 __asm__("r10") = a4;
  register long r8 __asm__("r8") = a5;
  register long r9 __asm__("r9") = a6;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
#elif defined(__aarch64__)
  register long x8 __asm__("x8") = nr;
  register long x0 __asm__("x0") = a1;
  register long x1 __asm__("x1") = a2;
  register long x2 __asm__("x2") = a3;
  register long x3 __asm__("x3") = a4;
  register long x4 __asm__("x4") = a5;
  register long x5 __asm__("x5") = a6;
  __asm__ volatile("svc 0"
                   : "+r"(x0)
                   : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                   : "memory");
  return x0;
#else
#error "RawSyscall: add this architecture's system call sequence"
#endif
}

// The errno of a failed RawSyscall, or 0.
inline int RawError(long result) {
  return result < 0 && result > -4096 ? static_cast<int>(-result) : 0;
}

}  // namespace nightshift::sandbox::internal
