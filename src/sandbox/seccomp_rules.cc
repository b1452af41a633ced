#include "sandbox/seccomp_rules.h"

#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <string_view>

#include "core/fs.h"

namespace nightshift::sandbox {
namespace {

// Denied whatever the arguments. Names rather than numbers: libseccomp maps a name to its number
// on every architecture in the filter and leaves out an architecture that lacks the call
// (kexec_file_load on i386, nfsservctl and uselib on x32), so i386-only names such as umount and
// stime are listed here too: without them the 32-bit entry point would be a way around umount2
// and settimeofday.
constexpr auto kDeniedSyscalls = std::to_array<const char*>(
    {// Replacing or extending the running kernel.
     "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
     // Kernel attack surface no build needs.
     "bpf", "perf_event_open", "userfaultfd", "lookup_dcookie", "nfsservctl", "uselib",
     // Keyrings are not namespaced: keys would be shared with the host.
     "keyctl", "add_key", "request_key",
     // The mount table, through the old and the new (fsopen/fsmount) API.
     "mount", "umount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen", "fsconfig",
     "fsmount", "fspick", "mount_setattr",
     // New namespaces, or joining someone else's. clone with namespace flags is handled below.
     "unshare", "setns",
     // Reaching into other processes.
     "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd",
     // Machine-wide state: power, swap, clocks, accounting, quotas, the kernel log, the tty.
     "reboot", "swapon", "swapoff", "settimeofday", "stime", "clock_settime", "clock_settime64",
     "clock_adjtime", "clock_adjtime64", "adjtimex", "acct", "quotactl", "quotactl_fd", "syslog",
     "vhangup",
     // Raw I/O port access.
     "iopl", "ioperm",
     // Opening files by handle walks around path-based confinement (the "shocker" escape).
     "open_by_handle_at", "name_to_handle_at"});

// clone() flags that create namespaces. CLONE_NEWTIME is left out on purpose: its bit (0x80)
// lies inside CSIGNAL, the exit-signal byte of clone(), so clone() cannot request it (only
// clone3() and unshare() can, and both are refused outright).
constexpr std::array<uint64_t, 7> kNamespaceCloneFlags = {
    CLONE_NEWNS,  CLONE_NEWUSER, CLONE_NEWPID,    CLONE_NEWNET,
    CLONE_NEWUTS, CLONE_NEWIPC,  CLONE_NEWCGROUP,
};

// Terminal input injection (TIOCSTI pushes bytes into the controlling terminal's input queue;
// TIOCLINUX's selection commands do the same on a virtual console).
constexpr std::array<uint64_t, 2> kDeniedIoctls = {TIOCSTI, TIOCLINUX};

// The ioctl request is an unsigned int to the kernel, which ignores the upper half of the
// 64-bit register; seccomp sees the whole register. Comparing only the lower half closes the
// "TIOCSTI | 1 << 32" bypass (CVE-2019-10063 in flatpak).
constexpr uint64_t kLower32Bits = 0xffffffff;

// personality(0xffffffff) only queries the current persona; it has every bit set, including
// ADDR_NO_RANDOMIZE, and must keep working (ThreadSanitizer runtimes query it at start-up).
constexpr uint64_t kPersonalityQuery = 0xffffffff;

struct FilterContextRelease {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using FilterContext = std::unique_ptr<void, FilterContextRelease>;

// libseccomp returns -errno.
Status LibseccompError(std::string_view operation, std::string_view subject, int rc) {
  return ErrnoError(StrCat("libseccomp ", operation), subject, -rc);
}

// The 32-bit ABIs the kernel also accepts from a process of the native one (int 0x80 and the
// x32 syscall bit on x86-64, AArch32 on arm64). Without these in the filter their syscalls
// would meet the bad-architecture action instead of the rules.
Status AddArchitectures(scmp_filter_ctx ctx) {
#if defined(__x86_64__)
  constexpr std::array<uint32_t, 3> kArches = {SCMP_ARCH_X86_64, SCMP_ARCH_X86, SCMP_ARCH_X32};
#elif defined(__aarch64__)
  constexpr std::array<uint32_t, 2> kArches = {SCMP_ARCH_AARCH64, SCMP_ARCH_ARM};
#else
  constexpr std::array<uint32_t, 0> kArches = {};
#endif
  for (uint32_t arch : kArches) {
    if (seccomp_arch_exist(ctx, arch) == 0) continue;  // the native one
    if (int rc = seccomp_arch_add(ctx, arch); rc < 0) {
      return LibseccompError("seccomp_arch_add", StrCat("arch ", arch), rc);
    }
  }
  return OkStatus();
}

// A name this libseccomp does not know (a syscall newer than the library) is skipped rather than
// failing the whole filter: the rest of the list still applies. Debian's 2.5.4 knows them all.
Status AddRule(scmp_filter_ctx ctx, uint32_t action, const char* name,
               const scmp_arg_cmp* comparison = nullptr) {
  const int nr = seccomp_syscall_resolve_name(name);
  if (nr == __NR_SCMP_ERROR) return OkStatus();
  int rc = comparison == nullptr ? seccomp_rule_add(ctx, action, nr, 0)
                                 : seccomp_rule_add(ctx, action, nr, 1, *comparison);
  if (rc < 0) return LibseccompError("seccomp_rule_add", name, rc);
  return OkStatus();
}

Status AddRules(scmp_filter_ctx ctx) {
  const uint32_t deny = SCMP_ACT_ERRNO(EPERM);
  for (const char* name : kDeniedSyscalls) RETURN_IF_ERROR(AddRule(ctx, deny, name));

  // A rule's comparisons are ANDed and rules are ORed; libseccomp has no "masked not equal", so
  // "any namespace flag set" is one rule per flag.
  for (uint64_t flag : kNamespaceCloneFlags) {
    const scmp_arg_cmp has_flag = SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag);
    RETURN_IF_ERROR(AddRule(ctx, deny, "clone", &has_flag));
  }

  // clone3 takes its flags in a struct in memory, which seccomp cannot read. ENOSYS rather than
  // EPERM: glibc (2.34+) then falls back to clone(), whose flags the rules above do see.
  RETURN_IF_ERROR(AddRule(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3"));

  for (uint64_t request : kDeniedIoctls) {
    const scmp_arg_cmp is_request = SCMP_A1(SCMP_CMP_MASKED_EQ, kLower32Bits, request);
    RETURN_IF_ERROR(AddRule(ctx, deny, "ioctl", &is_request));
  }

  // Deny personality() when ADDR_NO_RANDOMIZE is set, except for the 0xffffffff query. A rule
  // may compare an argument only once, so "bit set and the lower 32 bits not all ones" becomes
  // one rule per other bit: "ADDR_NO_RANDOMIZE set and bit k clear". The upper half of the
  // register is ignored, as the kernel ignores it (the argument is an unsigned int).
  for (int bit = 0; bit < 32; ++bit) {
    const uint64_t other = uint64_t{1} << bit;
    if (other == ADDR_NO_RANDOMIZE) continue;
    static_assert((kPersonalityQuery & ADDR_NO_RANDOMIZE) != 0);
    const scmp_arg_cmp disables_aslr =
        SCMP_A0(SCMP_CMP_MASKED_EQ, ADDR_NO_RANDOMIZE | other, ADDR_NO_RANDOMIZE);
    RETURN_IF_ERROR(AddRule(ctx, deny, "personality", &disables_aslr));
  }
  return OkStatus();
}

// seccomp_export_bpf (libseccomp 2.5) only writes to a file descriptor; a memfd holds programs of
// any size, where a pipe would block past its buffer.
StatusOr<std::vector<sock_filter>> ExportBpf(scmp_filter_ctx ctx) {
  constexpr const char* kName = "nightshift-seccomp";
  UniqueFd fd(::memfd_create(kName, MFD_CLOEXEC));
  if (!fd.Valid()) return ErrnoError("memfd_create", kName);
  if (int rc = seccomp_export_bpf(ctx, fd.Get()); rc < 0) {
    return LibseccompError("seccomp_export_bpf", kName, rc);
  }
  struct stat st {};
  if (::fstat(fd.Get(), &st) != 0) return ErrnoError("fstat", kName);
  const auto size = static_cast<size_t>(st.st_size);
  if (size == 0 || size % sizeof(sock_filter) != 0) {
    return InternalError(
        StrCat("seccomp_export_bpf wrote ", size, " bytes, not whole instructions"));
  }
  std::vector<sock_filter> instructions(size / sizeof(sock_filter));
  auto* bytes = reinterpret_cast<char*>(instructions.data());
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(fd.Get(), bytes + done, size - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("pread", kName);
    if (n == 0) return InternalError(StrCat("pread ", kName, ": short read at ", done));
    done += static_cast<size_t>(n);
  }
  return instructions;
}

}  // namespace

StatusOr<SeccompProgram> BuildDefaultSeccompProgram() {
  FilterContext ctx(seccomp_init(SCMP_ACT_ALLOW));
  if (ctx == nullptr) return InternalError("libseccomp seccomp_init failed");
  // The bad-architecture action stays libseccomp's default, killing the thread: with every ABI
  // this kernel accepts added above, only a foreign ABI the kernel cannot run would meet it.
  // A binary tree of syscall numbers rather than a linear list: installing a filter makes the
  // kernel run it for every syscall number of every architecture (to cache the always-allowed
  // ones), which with a linear list cost ~0.3 ms per sandbox.
  if (int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2); rc < 0) {
    return LibseccompError("seccomp_attr_set", "SCMP_FLTATR_CTL_OPTIMIZE", rc);
  }
  RETURN_IF_ERROR(AddArchitectures(ctx.get()));
  RETURN_IF_ERROR(AddRules(ctx.get()));
  ASSIGN_OR_RETURN(auto instructions, ExportBpf(ctx.get()));
  if (instructions.size() > BPF_MAXINSNS) {
    return InternalError(StrCat("seccomp program has ", instructions.size(),
                                " instructions; the kernel accepts ", BPF_MAXINSNS));
  }
  return SeccompProgram{std::move(instructions)};
}

}  // namespace nightshift::sandbox
