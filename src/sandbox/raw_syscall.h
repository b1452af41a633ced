#pragma once

// System calls that leave errno alone: each returns the kernel's result, -errno on failure.
//
// For the code a sandbox's PID 1 and its payload run (launch.h). Both are cloned with CLONE_VM:
// they run in the supervisor's memory, on stacks of their own but with the thread-local storage
// of the supervisor thread that cloned them. Anything that touches thread-local state — errno,
// malloc, glibc's cached rseq CPU number, the stack protector's canary — would race with that
// thread, or read it after the thread is gone. So code on those paths calls only these, and
// pure functions (memcpy, strlen), and is marked NS_CHILD (child.h). Internal to src/sandbox.

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>

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

// clone() with `flags` (CLONE_VM among them, with SIGCHLD or another exit signal), the child on
// the stack ending at `stack_top` (16-byte aligned): it runs fn(arg), then exits with its
// result. Returns the child's pid, or -errno. glibc's clone() does the same but sets errno on
// failure, which a process cloning from a CLONE_VM child must not.
inline long RawCloneOnStack(unsigned long flags, char* stack_top, int (*fn)(void*), void* arg) {
#if defined(__x86_64__)
  // The child pops fn and arg off its new stack; after both pops it is 16-byte aligned again,
  // as the call wants. clone(flags, newsp, parent_tid, child_tid, tls) on x86-64.
  auto** sp = reinterpret_cast<void**>(stack_top);
  *--sp = arg;
  *--sp = reinterpret_cast<void*>(fn);
  long ret;
  register long r10 __asm__("r10") = 0;
  register long r8 __asm__("r8") = 0;
  __asm__ volatile(
      "syscall\n\t"
      "testq %%rax, %%rax\n\t"
      "jnz 1f\n\t"
      "xorl %%ebp, %%ebp\n\t"
      "popq %%rax\n\t"
      "popq %%rdi\n\t"
      "callq *%%rax\n\t"
      "movl %%eax, %%edi\n\t"
      "movl %[exit_nr], %%eax\n\t"
      "syscall\n\t"
      "hlt\n"
      "1:"
      : "=a"(ret)
      : "a"(SYS_clone), "D"(flags), "S"(sp), "d"(0), "r"(r10), "r"(r8), [exit_nr] "i"(SYS_exit)
      : "rcx", "r11", "memory");
  return ret;
#elif defined(__aarch64__)
  // x10 and x11 survive the system call in both processes; clone(flags, newsp, parent_tid,
  // tls, child_tid) on arm64.
  register long x8 __asm__("x8") = SYS_clone;
  register long x0 __asm__("x0") = static_cast<long>(flags);
  register long x1 __asm__("x1") = reinterpret_cast<long>(stack_top);
  register long x2 __asm__("x2") = 0;
  register long x3 __asm__("x3") = 0;
  register long x4 __asm__("x4") = 0;
  register long x10 __asm__("x10") = reinterpret_cast<long>(fn);
  register long x11 __asm__("x11") = reinterpret_cast<long>(arg);
  __asm__ volatile(
      "svc 0\n\t"
      "cbnz x0, 1f\n\t"
      "mov x29, xzr\n\t"
      "mov x0, x11\n\t"
      "blr x10\n\t"
      "mov x8, %[exit_nr]\n\t"
      "svc 0\n"
      "1:"
      : "+r"(x0)
      : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x10), "r"(x11), [exit_nr] "i"(SYS_exit)
      : "memory");
  return x0;
#else
#error "RawCloneOnStack: add this architecture's clone sequence"
#endif
}

// Typed wrappers, named after the calls (the *at forms where only those exist on every
// architecture). Each returns what RawSyscall does.
namespace sys {

template <typename T>
inline long Arg(T* pointer) {
  return reinterpret_cast<long>(pointer);
}

inline long Open(const char* path, int flags, mode_t mode = 0) {
  return RawSyscall(SYS_openat, AT_FDCWD, Arg(path), flags, mode);
}
inline long Close(int fd) { return RawSyscall(SYS_close, fd); }
inline long CloseRange(unsigned first, unsigned last, unsigned flags) {
  return RawSyscall(SYS_close_range, first, last, flags);
}
inline long Write(int fd, const void* data, size_t size) {
  return RawSyscall(SYS_write, fd, Arg(data), static_cast<long>(size));
}
inline long Dup3(int fd, int target, int flags) { return RawSyscall(SYS_dup3, fd, target, flags); }
inline long Fcntl(int fd, int command, long arg) { return RawSyscall(SYS_fcntl, fd, command, arg); }

inline long Mount(const char* source, const char* target, const char* type, unsigned long flags,
                  const void* data) {
  return RawSyscall(SYS_mount, Arg(source), Arg(target), Arg(type), static_cast<long>(flags),
                    Arg(data));
}
inline long Umount2(const char* target, int flags) {
  return RawSyscall(SYS_umount2, Arg(target), flags);
}
inline long MoveMount(int from_dir, const char* from_path, int to_dir, const char* to_path,
                      unsigned flags) {
  return RawSyscall(SYS_move_mount, from_dir, Arg(from_path), to_dir, Arg(to_path), flags);
}
// `attr` is a struct mount_attr (<sys/mount.h>) of `size` bytes.
inline long MountSetattr(int dir, const char* path, unsigned flags, const void* attr, size_t size) {
  return RawSyscall(SYS_mount_setattr, dir, Arg(path), flags, Arg(attr), static_cast<long>(size));
}
inline long PivotRoot(const char* new_root, const char* put_old) {
  return RawSyscall(SYS_pivot_root, Arg(new_root), Arg(put_old));
}
inline long Mkdirat(int dir, const char* path, mode_t mode) {
  return RawSyscall(SYS_mkdirat, dir, Arg(path), mode);
}
inline long Mkdir(const char* path, mode_t mode) { return Mkdirat(AT_FDCWD, path, mode); }
inline long Mknodat(int dir, const char* path, mode_t mode, dev_t device) {
  return RawSyscall(SYS_mknodat, dir, Arg(path), mode, static_cast<long>(device));
}
inline long Mknod(const char* path, mode_t mode, dev_t device) {
  return Mknodat(AT_FDCWD, path, mode, device);
}
// `how` is a struct open_how (<linux/openat2.h>) of `size` bytes.
inline long Openat2(int dir, const char* path, const void* how, size_t size) {
  return RawSyscall(SYS_openat2, dir, Arg(path), Arg(how), static_cast<long>(size));
}
inline long OpenTree(int dir, const char* path, unsigned flags) {
  return RawSyscall(SYS_open_tree, dir, Arg(path), flags);
}
inline long Chmod(const char* path, mode_t mode) {
  return RawSyscall(SYS_fchmodat, AT_FDCWD, Arg(path), mode);
}
inline long Symlink(const char* target, const char* link) {
  return RawSyscall(SYS_symlinkat, Arg(target), AT_FDCWD, Arg(link));
}
inline long Lstat(const char* path, struct stat* st) {
  return RawSyscall(SYS_newfstatat, AT_FDCWD, Arg(path), Arg(st), AT_SYMLINK_NOFOLLOW);
}
inline long Chdir(const char* path) { return RawSyscall(SYS_chdir, Arg(path)); }

inline long Unshare(int flags) { return RawSyscall(SYS_unshare, flags); }
inline long Setns(int fd, int type) { return RawSyscall(SYS_setns, fd, type); }
inline long Sethostname(const char* name, size_t size) {
  return RawSyscall(SYS_sethostname, Arg(name), static_cast<long>(size));
}
inline long Setsid() { return RawSyscall(SYS_setsid); }
inline long Prctl(int option, long a2 = 0, long a3 = 0) {
  return RawSyscall(SYS_prctl, option, a2, a3, 0, 0);
}
inline long Setresuid(uid_t id) { return RawSyscall(SYS_setresuid, id, id, id); }
inline long Setresgid(gid_t id) { return RawSyscall(SYS_setresgid, id, id, id); }
inline long Setgroups(size_t count, const gid_t* groups) {
  return RawSyscall(SYS_setgroups, static_cast<long>(count), Arg(groups));
}
inline long Prlimit(int resource, const void* new_limit, void* old_limit) {
  return RawSyscall(SYS_prlimit64, 0, resource, Arg(new_limit), Arg(old_limit));
}
inline long SchedSetaffinity(pid_t pid, size_t size, const void* mask) {
  return RawSyscall(SYS_sched_setaffinity, pid, static_cast<long>(size), Arg(mask));
}
inline long Kill(pid_t pid, int signal) { return RawSyscall(SYS_kill, pid, signal); }
inline long Wait4(pid_t pid, int* status, int options, void* usage) {
  return RawSyscall(SYS_wait4, pid, Arg(status), options, Arg(usage));
}
inline long Getrusage(int who, void* usage) { return RawSyscall(SYS_getrusage, who, Arg(usage)); }
inline long Execve(const char* path, char* const* argv, char* const* envp) {
  return RawSyscall(SYS_execve, Arg(path), Arg(argv), Arg(envp));
}
[[noreturn]] inline void Exit(int code) {
  for (;;) RawSyscall(SYS_exit_group, code);
}

inline long Socketpair(int domain, int type, int protocol, int* fds) {
  return RawSyscall(SYS_socketpair, domain, type, protocol, Arg(fds));
}
inline long Send(int fd, const void* data, size_t size, int flags) {
  return RawSyscall(SYS_sendto, fd, Arg(data), static_cast<long>(size), flags, 0, 0);
}
inline long Recv(int fd, void* data, size_t size, int flags) {
  return RawSyscall(SYS_recvfrom, fd, Arg(data), static_cast<long>(size), flags, 0, 0);
}
inline long Recvmsg(int fd, void* message, int flags) {
  return RawSyscall(SYS_recvmsg, fd, Arg(message), flags);
}

// Signals as the kernel sees them: a 64-bit mask (bit n-1 for signal n) and its struct
// sigaction, not glibc's 128-byte sigset_t.
using KernelSigset = uint64_t;
inline constexpr KernelSigset SignalBit(int signal) { return KernelSigset{1} << (signal - 1); }
inline constexpr int kKernelSignals = 64;
struct KernelSigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)();
  KernelSigset mask;
};
inline long Sigaction(int signal, const KernelSigaction* action) {
  return RawSyscall(SYS_rt_sigaction, signal, Arg(action), 0, sizeof(KernelSigset));
}
inline long Sigprocmask(int how, const KernelSigset* set) {
  return RawSyscall(SYS_rt_sigprocmask, how, Arg(set), 0, sizeof(KernelSigset));
}
// Takes one of `set` (blocked) when pending, and returns its number; blocks until one is, unless
// `poll` (then -EAGAIN if none is).
inline long Sigwait(const KernelSigset* set, bool poll = false) {
  static constexpr struct timespec kNow = {0, 0};
  return RawSyscall(SYS_rt_sigtimedwait, Arg(set), 0, poll ? Arg(&kNow) : 0, sizeof(KernelSigset));
}

}  // namespace sys
}  // namespace nightshift::sandbox::internal
