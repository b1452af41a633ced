#include "sandbox/seccomp.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

#include "core/fs.h"
#include "gtest/gtest.h"
#include "sandbox/seccomp_rules.h"

extern char** environ;

namespace nightshift::sandbox {
namespace {

// Probes run in a forked child, after the filter is installed (or not, for the control run).
// They make raw syscalls and allocate nothing, so that neither libc wrappers nor the sanitizer
// runtimes add syscalls of their own, and they return the errno of the probed call (0 when it
// succeeded). Arguments are chosen like bubblewrap's try-syscall: without the filter the kernel
// rejects them with an errno other than the filter's (EBADF, EFAULT, EINVAL, ENOENT, ...) or the
// call succeeds harmlessly in the child, so each denial test can tell the filter's answer from
// the kernel's.
using Probe = int (*)();

int ErrnoOf(long rc) { return rc == -1 ? errno : 0; }

constexpr int kWrongResultBase = 10000;   // 10000 + what a probe saw instead of what it wanted
constexpr pid_t kNoSuchPid = 0x7fffffff;  // above any pid_max

// Success of a clone-like call must not leave the probe running twice.
int ErrnoOfFork(long rc) {
  if (rc == 0) _exit(0);
  if (rc > 0) {
    ::waitpid(static_cast<pid_t>(rc), nullptr, __WALL);
    return 0;
  }
  return errno;
}

template <unsigned long kFlags>
int CloneProbe() {
  return ErrnoOfFork(::syscall(SYS_clone, kFlags, 0, 0, 0, 0));
}

// struct clone_args up to CLONE_ARGS_SIZE_VER0; <linux/sched.h> would clash with <sched.h>.
struct CloneArgsV0 {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

int Clone3NewNsProbe() {
  CloneArgsV0 args{};
  args.flags = CLONE_NEWNS;
  args.exit_signal = SIGCHLD;
  return ErrnoOfFork(::syscall(SYS_clone3, &args, sizeof args));
}

template <unsigned long kPersona>
int PersonalityProbe() {
  return ErrnoOf(::syscall(SYS_personality, kPersona));
}

template <unsigned long kRequest>
int IoctlOnBadFdProbe() {
  return ErrnoOf(::syscall(SYS_ioctl, -1, kRequest, 0));
}

// vhangup() as root hangs up the controlling terminal: leave it first, so that the control run
// (no filter) cannot hang up the terminal the tests run in.
int VhangupProbe() {
  if (::setsid() < 0) return kWrongResultBase + errno;
  return ErrnoOf(::syscall(SYS_vhangup));
}

#if defined(__x86_64__)
// A syscall through the i386 entry point (int 0x80), which works from a 64-bit process when the
// kernel has IA32 emulation; seccomp sees it as AUDIT_ARCH_I386 with i386 numbers.
long I386Syscall(long nr, long a = 0, long b = 0, long c = 0) {
  long ret = 0;
  asm volatile("int $0x80"
               : "=a"(ret)
               : "a"(nr), "b"(a), "c"(b), "d"(c)
               : "memory", "r8", "r9", "r10", "r11");
  return ret;
}

template <long kNr, long kA = 0, long kB = 0, long kC = 0>
int I386Probe() {
  const int ret = static_cast<int>(I386Syscall(kNr, kA, kB, kC));
  return ret < 0 && ret > -4096 ? -ret : 0;
}

// i386 syscall numbers (arch/x86/entry/syscalls/syscall_32.tbl).
constexpr long kI386Mount = 21;
constexpr long kI386Umount = 22;  // oldumount: the one-argument umount that x86-64 lacks
constexpr long kI386Stime = 25;
constexpr long kI386Ptrace = 26;
constexpr long kI386Ioctl = 54;
constexpr long kI386Clone = 120;
constexpr long kI386Personality = 136;
constexpr long kI386Unshare = 310;
constexpr long kI386ClockSettime64 = 404;
constexpr long kI386Clone3 = 435;

// x32 syscalls are x86-64 syscalls with bit 30 set; the filter must treat them as such even on
// kernels built without x32 (where, unfiltered, they fail with ENOSYS).
constexpr long kX32SyscallBit = 0x40000000;
#endif

enum class Abi { kNative, kI386, kX32 };

struct DeniedCase {
  const char* name;
  Probe probe;
  int want;  // the errno the filter answers with
  Abi abi = Abi::kNative;
};

void PrintTo(const DeniedCase& c, std::ostream* os) { *os << c.name; }

constexpr unsigned long kBadFlags = 0x80000000;

const DeniedCase kDeniedCases[] = {
    {"mount",
     [] { return ErrnoOf(::syscall(SYS_mount, "none", "/nonexistent/ns", "tmpfs", 0, 0)); }, EPERM},
    {"umount2", [] { return ErrnoOf(::syscall(SYS_umount2, "/", kBadFlags)); }, EPERM},
    {"pivot_root", [] { return ErrnoOf(::syscall(SYS_pivot_root, nullptr, nullptr)); }, EPERM},
    {"move_mount", [] { return ErrnoOf(::syscall(SYS_move_mount, -1, "", -1, "", kBadFlags)); },
     EPERM},
    {"open_tree", [] { return ErrnoOf(::syscall(SYS_open_tree, -1, "", kBadFlags)); }, EPERM},
    {"fsopen", [] { return ErrnoOf(::syscall(SYS_fsopen, nullptr, kBadFlags)); }, EPERM},
    {"fsconfig", [] { return ErrnoOf(::syscall(SYS_fsconfig, -1, 0, nullptr, nullptr, 0)); },
     EPERM},
    {"fsmount", [] { return ErrnoOf(::syscall(SYS_fsmount, -1, kBadFlags, 0)); }, EPERM},
    {"fspick", [] { return ErrnoOf(::syscall(SYS_fspick, -1, "", kBadFlags)); }, EPERM},
    {"mount_setattr",
     [] { return ErrnoOf(::syscall(SYS_mount_setattr, -1, "", kBadFlags, nullptr, 0)); }, EPERM},
    {"unshare_newuser", [] { return ErrnoOf(::syscall(SYS_unshare, CLONE_NEWUSER)); }, EPERM},
    {"unshare_invalid",
     [] { return ErrnoOf(::syscall(SYS_unshare, CLONE_NEWUSER | CLONE_SETTLS)); }, EPERM},
    {"setns", [] { return ErrnoOf(::syscall(SYS_setns, -1, 0)); }, EPERM},
    // Succeeds without the filter (as root).
    {"clone_newns", CloneProbe<CLONE_NEWNS | SIGCHLD>, EPERM},
    // CLONE_THREAD without CLONE_SIGHAND: EINVAL without the filter, whatever the privileges.
    {"clone_newns_invalid", CloneProbe<CLONE_NEWNS | CLONE_THREAD>, EPERM},
    {"clone_newuser_invalid", CloneProbe<CLONE_NEWUSER | CLONE_THREAD>, EPERM},
    {"clone_newpid_invalid", CloneProbe<CLONE_NEWPID | CLONE_THREAD>, EPERM},
    {"clone_newnet_invalid", CloneProbe<CLONE_NEWNET | CLONE_THREAD>, EPERM},
    {"clone_newuts_invalid", CloneProbe<CLONE_NEWUTS | CLONE_THREAD>, EPERM},
    {"clone_newipc_invalid", CloneProbe<CLONE_NEWIPC | CLONE_THREAD>, EPERM},
    {"clone_newcgroup_invalid", CloneProbe<CLONE_NEWCGROUP | CLONE_THREAD>, EPERM},
    {"clone3_newns", Clone3NewNsProbe, ENOSYS},
    {"clone3_invalid", [] { return ErrnoOf(::syscall(SYS_clone3, nullptr, 0)); }, ENOSYS},
    {"ptrace_traceme", [] { return ErrnoOf(::syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0)); },
     EPERM},
    {"ptrace_attach",
     [] { return ErrnoOf(::syscall(SYS_ptrace, PTRACE_ATTACH, kNoSuchPid, 0, 0)); }, EPERM},
    {"process_vm_readv",
     [] { return ErrnoOf(::syscall(SYS_process_vm_readv, kNoSuchPid, nullptr, 0, nullptr, 0, 1)); },
     EPERM},
    {"process_vm_writev",
     [] {
       return ErrnoOf(::syscall(SYS_process_vm_writev, kNoSuchPid, nullptr, 0, nullptr, 0, 1));
     },
     EPERM},
    {"pidfd_getfd", [] { return ErrnoOf(::syscall(SYS_pidfd_getfd, -1, 0, 0)); }, EPERM},
    {"bpf", [] { return ErrnoOf(::syscall(SYS_bpf, 0x7fffffff, nullptr, 0)); }, EPERM},
    {"perf_event_open",
     [] { return ErrnoOf(::syscall(SYS_perf_event_open, nullptr, 0, -1, -1, 0)); }, EPERM},
    {"userfaultfd", [] { return ErrnoOf(::syscall(SYS_userfaultfd, kBadFlags)); }, EPERM},
    {"keyctl", [] { return ErrnoOf(::syscall(SYS_keyctl, 0x7fffffff, 0, 0, 0, 0)); }, EPERM},
    {"add_key", [] { return ErrnoOf(::syscall(SYS_add_key, nullptr, nullptr, nullptr, 0, 0)); },
     EPERM},
    {"request_key",
     [] { return ErrnoOf(::syscall(SYS_request_key, nullptr, nullptr, nullptr, 0)); }, EPERM},
    {"init_module", [] { return ErrnoOf(::syscall(SYS_init_module, nullptr, 0, "")); }, EPERM},
    {"finit_module", [] { return ErrnoOf(::syscall(SYS_finit_module, -1, "", kBadFlags)); }, EPERM},
    {"delete_module", [] { return ErrnoOf(::syscall(SYS_delete_module, nullptr, 0)); }, EPERM},
    {"kexec_load", [] { return ErrnoOf(::syscall(SYS_kexec_load, 0, 0xffff, nullptr, 0)); }, EPERM},
    {"kexec_file_load",
     [] { return ErrnoOf(::syscall(SYS_kexec_file_load, -1, -1, 0, nullptr, kBadFlags)); }, EPERM},
    // Magic numbers of 0: rejected with EINVAL even as root, never a reboot.
    {"reboot", [] { return ErrnoOf(::syscall(SYS_reboot, 0, 0, 0, nullptr)); }, EPERM},
    {"swapon", [] { return ErrnoOf(::syscall(SYS_swapon, nullptr, kBadFlags)); }, EPERM},
    {"swapoff", [] { return ErrnoOf(::syscall(SYS_swapoff, nullptr)); }, EPERM},
    {"settimeofday",
     [] {
       const struct timeval invalid = {0, 2000000};
       return ErrnoOf(::syscall(SYS_settimeofday, &invalid, nullptr));
     },
     EPERM},
    {"clock_settime", [] { return ErrnoOf(::syscall(SYS_clock_settime, 0x7fffffff, nullptr)); },
     EPERM},
    {"clock_adjtime", [] { return ErrnoOf(::syscall(SYS_clock_adjtime, 0x7fffffff, nullptr)); },
     EPERM},
    {"adjtimex", [] { return ErrnoOf(::syscall(SYS_adjtimex, nullptr)); }, EPERM},
    {"acct", [] { return ErrnoOf(::syscall(SYS_acct, "/nonexistent/ns-acct")); }, EPERM},
    {"quotactl", [] { return ErrnoOf(::syscall(SYS_quotactl, 0xff, nullptr, 0, nullptr)); }, EPERM},
    {"quotactl_fd", [] { return ErrnoOf(::syscall(SYS_quotactl_fd, -1, 0xff, 0, nullptr)); },
     EPERM},
    {"syslog", [] { return ErrnoOf(::syscall(SYS_syslog, 999, nullptr, 0)); }, EPERM},
    {"vhangup", VhangupProbe, EPERM},
    {"iopl", [] { return ErrnoOf(::syscall(SYS_iopl, 4)); }, EPERM},
    {"ioperm", [] { return ErrnoOf(::syscall(SYS_ioperm, 0x10000, 1, 1)); }, EPERM},
    {"open_by_handle_at", [] { return ErrnoOf(::syscall(SYS_open_by_handle_at, -1, nullptr, 0)); },
     EPERM},
    {"name_to_handle_at",
     [] { return ErrnoOf(::syscall(SYS_name_to_handle_at, -1, nullptr, nullptr, nullptr, 0)); },
     EPERM},
    {"lookup_dcookie", [] { return ErrnoOf(::syscall(SYS_lookup_dcookie, 0, nullptr, 0)); }, EPERM},
    {"nfsservctl", [] { return ErrnoOf(::syscall(SYS_nfsservctl, 0, nullptr, nullptr)); }, EPERM},
    {"uselib", [] { return ErrnoOf(::syscall(SYS_uselib, nullptr)); }, EPERM},
    // Succeeds without the filter, in the child only.
    {"personality_no_aslr", PersonalityProbe<ADDR_NO_RANDOMIZE>, EPERM},
    {"personality_no_aslr_linux32", PersonalityProbe<unsigned{PER_LINUX32} | ADDR_NO_RANDOMIZE>,
     EPERM},
    {"personality_all_but_one_bit", PersonalityProbe<0xfffffffeUL>, EPERM},
    // The kernel ignores the upper half of the register; the filter must too.
    {"personality_no_aslr_high_bits", PersonalityProbe<(1UL << 32) | ADDR_NO_RANDOMIZE>, EPERM},
    {"ioctl_tiocsti", IoctlOnBadFdProbe<TIOCSTI>, EPERM},
    {"ioctl_tiocsti_high_bits", IoctlOnBadFdProbe<(1UL << 32) | TIOCSTI>, EPERM},
    {"ioctl_tioclinux", IoctlOnBadFdProbe<TIOCLINUX>, EPERM},
#if defined(__x86_64__)
    {"i386_mount", I386Probe<kI386Mount>, EPERM, Abi::kI386},
    {"i386_umount", I386Probe<kI386Umount>, EPERM, Abi::kI386},
    {"i386_stime", I386Probe<kI386Stime>, EPERM, Abi::kI386},
    {"i386_ptrace_attach", I386Probe<kI386Ptrace, PTRACE_ATTACH, kNoSuchPid>, EPERM, Abi::kI386},
    {"i386_ioctl_tiocsti", I386Probe<kI386Ioctl, -1, TIOCSTI>, EPERM, Abi::kI386},
    {"i386_clone_newns_invalid", I386Probe<kI386Clone, CLONE_NEWNS | CLONE_THREAD>, EPERM,
     Abi::kI386},
    {"i386_personality_no_aslr", I386Probe<kI386Personality, ADDR_NO_RANDOMIZE>, EPERM, Abi::kI386},
    {"i386_unshare_invalid", I386Probe<kI386Unshare, CLONE_NEWUSER | CLONE_SETTLS>, EPERM,
     Abi::kI386},
    {"i386_clock_settime64", I386Probe<kI386ClockSettime64, 0x7fffffff>, EPERM, Abi::kI386},
    {"i386_clone3_invalid", I386Probe<kI386Clone3>, ENOSYS, Abi::kI386},
    {"x32_unshare",
     [] { return ErrnoOf(::syscall(kX32SyscallBit | SYS_unshare, CLONE_NEWUSER | CLONE_SETTLS)); },
     EPERM, Abi::kX32},
    {"x32_mount",
     [] {
       return ErrnoOf(
           ::syscall(kX32SyscallBit | SYS_mount, "none", "/nonexistent/ns", "tmpfs", 0, 0));
     },
     EPERM, Abi::kX32},
#endif
};

// What the child reported, or nullopt when it died without reporting.
struct ProbeReport {
  int32_t install_error = 0;  // InstallSeccompProgram's result; the probe ran only if 0
  int32_t result = 0;         // the probe's errno, 0 for success
};

std::optional<ProbeReport> RunProbe(const SeccompProgram* program, Probe probe,
                                    int* wait_status = nullptr) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2: " << std::strerror(errno);
    return std::nullopt;
  }
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    return std::nullopt;
  }
  if (pid == 0) {
    // A probe that faults must die of it (AddressSanitizer's handler would exit 1 instead): a
    // kernel without the i386 entry point answers int 0x80 with SIGSEGV.
    ::signal(SIGSEGV, SIG_DFL);
    ProbeReport report;
    if (program != nullptr) report.install_error = InstallSeccompProgram(*program);
    if (report.install_error == 0) report.result = probe();
    const ssize_t written = ::write(write_end.Get(), &report, sizeof report);
    _exit(written == sizeof report ? 0 : 1);
  }
  write_end.Reset();
  ProbeReport report;
  ssize_t n;
  do {
    n = ::read(read_end.Get(), &report, sizeof report);
  } while (n < 0 && errno == EINTR);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (wait_status != nullptr) *wait_status = status;
  if (n != sizeof report) return std::nullopt;
  return report;
}

class SeccompTest : public ::testing::Test {
 protected:
  // The program every sandbox installs: the one embedded at build time.
  void SetUp() override { program_ = DefaultSeccompProgram(); }

  // Runs an allowed-path probe under the filter; its result must be 0.
  void ExpectAllowed(Probe probe) {
    int status = 0;
    auto report = RunProbe(&program_, probe, &status);
    ASSERT_TRUE(report.has_value()) << "probe child died, wait status " << status;
    ASSERT_EQ(report->install_error, 0) << std::strerror(report->install_error);
    EXPECT_EQ(report->result, 0) << "errno or " << kWrongResultBase << "+unexpected value";
  }

  SeccompProgram program_;
};

TEST_F(SeccompTest, ProgramFitsTheKernelLimit) {
  EXPECT_FALSE(program_.instructions.empty());
  EXPECT_LE(program_.instructions.size(), size_t{BPF_MAXINSNS});
}

bool SameProgram(const SeccompProgram& a, const SeccompProgram& b) {
  return a.instructions.size() == b.instructions.size() &&
         std::memcmp(a.instructions.data(), b.instructions.data(),
                     a.instructions.size() * sizeof(sock_filter)) == 0;
}

TEST(SeccompRules, BuildIsDeterministic) {
  auto first = BuildDefaultSeccompProgram();
  auto again = BuildDefaultSeccompProgram();
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(SameProgram(*first, *again));
}

// The program embedded at build time is what libseccomp compiles from the rules here and now
// (a libseccomp upgrade without a rebuild, or a stale build, would show).
TEST_F(SeccompTest, TheEmbeddedProgramIsTheRulesCompiled) {
  auto compiled = BuildDefaultSeccompProgram();
  ASSERT_TRUE(compiled.ok()) << compiled.status();
  EXPECT_TRUE(SameProgram(program_, *compiled));
  EXPECT_EQ(&DefaultSeccompProgram(), &DefaultSeccompProgram());
}

TEST(SeccompInstall, RejectsAnEmptyProgramWithoutTouchingTheProcess) {
  EXPECT_EQ(InstallSeccompProgram(SeccompProgram{}), EINVAL);
}

TEST_F(SeccompTest, ProcessRunsInFilterMode) {
  ExpectAllowed([] {
    const int fd = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    char buf[16384];
    size_t size = 0;
    ssize_t n;
    while ((n = ::read(fd, buf + size, sizeof buf - 1 - size)) > 0) size += static_cast<size_t>(n);
    const int err = errno;
    ::close(fd);
    if (n < 0) return err;
    buf[size] = '\0';
    return std::strstr(buf, "\nSeccomp:\t2\n") != nullptr ? 0 : kWrongResultBase;
  });
}

TEST_F(SeccompTest, AllowsOrdinaryCalls) {
  ExpectAllowed([] {
    if (::syscall(SYS_getpid) != ::getpid()) return kWrongResultBase;
    int fds[2];
    if (::pipe(fds) != 0) return errno;
    char c = 'x';
    if (::write(fds[1], &c, 1) != 1) return errno;
    int available = 0;
    if (::syscall(SYS_ioctl, fds[0], FIONREAD, &available) != 0) return errno;
    if (available != 1) return kWrongResultBase + available;
    if (::read(fds[0], &c, 1) != 1) return errno;
    // Other terminal ioctls reach the kernel, which says the pipe is not a terminal.
    struct winsize ws {};
    if (::syscall(SYS_ioctl, fds[0], TIOCGWINSZ, &ws) != -1 || errno != ENOTTY) {
      return kWrongResultBase + errno;
    }
    ::close(fds[0]);
    ::close(fds[1]);
    return 0;
  });
}

TEST_F(SeccompTest, AllowsPersonalityQueriesAndHarmlessPersonas) {
  ExpectAllowed([] {
    const long current = ::syscall(SYS_personality, 0xffffffffUL);
    if (current == -1) return errno;
    if (::syscall(SYS_personality, PER_LINUX32) == -1) return errno;
    if (::syscall(SYS_personality, PER_LINUX) == -1) return errno;
    return 0;
  });
}

int WaitForExitCode(pid_t pid, int want) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return errno;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != want) return kWrongResultBase + status;
  return 0;
}

TEST_F(SeccompTest, AllowsPlainClone) {
  ExpectAllowed([] {
    const long pid = ::syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    if (pid < 0) return errno;
    if (pid == 0) _exit(7);
    return WaitForExitCode(static_cast<pid_t>(pid), 7);
  });
}

TEST_F(SeccompTest, AllowsForkAndExec) {
  ExpectAllowed([] {
    const pid_t pid = ::fork();
    if (pid < 0) return errno;
    if (pid == 0) {
      ::execl("/bin/true", "true", static_cast<char*>(nullptr));
      _exit(127);
    }
    return WaitForExitCode(pid, 0);
  });
}

// posix_spawn tries clone3 first; the filter's ENOSYS must send glibc to its clone() fallback.
TEST_F(SeccompTest, AllowsPosixSpawn) {
  ExpectAllowed([] {
    const char* argv[] = {"sh", "-c", "exit 3", nullptr};
    pid_t pid = 0;
    const int err =
        ::posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ);
    if (err != 0) return err;
    return WaitForExitCode(pid, 3);
  });
}

// pthread_create also starts with clone3.
TEST_F(SeccompTest, AllowsThreads) {
  ExpectAllowed([] {
    pthread_t thread;
    const int err = ::pthread_create(
        &thread, nullptr, [](void*) -> void* { return nullptr; }, nullptr);
    if (err != 0) return err;
    return ::pthread_join(thread, nullptr);
  });
}

// The filter survives execve, and a shell under it can still run a pipeline.
TEST_F(SeccompTest, StaysInForceAcrossExec) {
  ExpectAllowed([] {
    const pid_t pid = ::fork();
    if (pid < 0) return errno;
    if (pid == 0) {
      ::execl("/bin/sh", "sh", "-c", "grep '^Seccomp:' /proc/self/status | grep -q '[[:space:]]2$'",
              static_cast<char*>(nullptr));
      _exit(127);
    }
    return WaitForExitCode(pid, 0);
  });
}

class DeniedSyscallTest : public SeccompTest, public ::testing::WithParamInterface<DeniedCase> {};

TEST_P(DeniedSyscallTest, FailsWithTheFilterErrno) {
  const DeniedCase& c = GetParam();
  int status = 0;
  auto unfiltered = RunProbe(nullptr, c.probe, &status);
  if (!unfiltered.has_value() && c.abi == Abi::kI386 && WIFSIGNALED(status)) {
    GTEST_SKIP() << "no i386 syscall entry here (int 0x80 killed the probe with signal "
                 << WTERMSIG(status) << ")";
  }
  ASSERT_TRUE(unfiltered.has_value()) << "unfiltered probe died, wait status " << status;

  auto filtered = RunProbe(&program_, c.probe, &status);
  ASSERT_TRUE(filtered.has_value()) << "filtered probe died, wait status " << status;
  ASSERT_EQ(filtered->install_error, 0) << std::strerror(filtered->install_error);
  EXPECT_EQ(filtered->result, c.want)
      << "got " << std::strerror(filtered->result) << ", without the filter "
      << std::strerror(unfiltered->result);

  if (unfiltered->result == c.want) {
    GTEST_SKIP() << "the kernel itself answers " << std::strerror(c.want)
                 << " here (missing privilege or support), so this run cannot tell the filter's "
                    "answer from the kernel's";
  }
}

INSTANTIATE_TEST_SUITE_P(DefaultProgram, DeniedSyscallTest, ::testing::ValuesIn(kDeniedCases),
                         [](const ::testing::TestParamInfo<DeniedCase>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace nightshift::sandbox
