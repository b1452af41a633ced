#include "sandbox/launch.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>  // glibc 2.36: also the new mount API (open_tree, mount_setattr)
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "sandbox/raw_syscall.h"

namespace nightshift::sandbox::internal {
namespace {

constexpr uint64_t kBlobMagic = 0x6e733a6c61756e31;  // "ns:laun1"

// The blob: this header, `slot_count` uint64 slots (offsets from the blob's start, 0 = the
// null terminating a list), then NUL-terminated strings.
struct BlobHeader {
  uint64_t magic;
  uint64_t size;
  uint64_t argv, envp, candidates, masks;  // index of each list's first slot
  uint64_t hostname, working_dir;          // offsets of strings
  uint64_t slot_count;
};
static_assert(sizeof(char*) == sizeof(uint64_t));

// The command as the child sees it, once the blob's offsets are pointers.
struct Command {
  char* const* argv;
  char* const* envp;
  const char* const* candidates;
  const char* const* masks;
  const char* hostname;
  const char* working_dir;
};

// In the child. Turns offsets into pointers in place (the mapping is private). False if the blob
// is not one of ours.
bool FixupBlob(char* base, size_t size, Command* command) {
  if (size < sizeof(BlobHeader)) return false;
  auto* header = reinterpret_cast<BlobHeader*>(base);
  if (header->magic != kBlobMagic || header->size != size) return false;
  auto* slots = reinterpret_cast<uint64_t*>(base + sizeof(BlobHeader));
  if (sizeof(BlobHeader) + header->slot_count * sizeof(uint64_t) > size) return false;
  for (uint64_t i = 0; i < header->slot_count; ++i) {
    if (slots[i] >= size) return false;
    slots[i] = slots[i] == 0 ? 0 : reinterpret_cast<uint64_t>(base + slots[i]);
  }
  if (header->hostname >= size || header->working_dir >= size) return false;
  command->argv = reinterpret_cast<char* const*>(slots + header->argv);
  command->envp = reinterpret_cast<char* const*>(slots + header->envp);
  command->candidates = reinterpret_cast<const char* const*>(slots + header->candidates);
  command->masks = reinterpret_cast<const char* const*>(slots + header->masks);
  command->hostname = base + header->hostname;
  command->working_dir = base + header->working_dir;
  return true;
}

// The signal PID 1 of a sandbox last received, to forward to the rest of its namespace.
volatile sig_atomic_t g_forward_signal = 0;
void RecordSignal(int sig) { g_forward_signal = sig; }

// Raw: the payload and PID 1 share errno (raw_syscall.h).
bool SendAll(int fd, const void* data, size_t size) {
  return RawSyscall(SYS_sendto, fd, reinterpret_cast<long>(data), static_cast<long>(size),
                    MSG_NOSIGNAL, 0, 0) == static_cast<long>(size);
}

// One message of up to `size` bytes, retried on EINTR: its length, 0 at EOF, or -errno.
long ReceiveSome(int fd, void* data, size_t size) {
  long n;
  while ((n = RawSyscall(SYS_recvfrom, fd, reinterpret_cast<long>(data), static_cast<long>(size), 0,
                         0, 0)) == -EINTR) {
  }
  return n;
}

[[noreturn]] void FailWarm(int control, ContainStep step, int error) {
  ChildFailure failure{static_cast<int32_t>(step), error};
  SendAll(control, &failure, sizeof failure);
  ::_exit(kChildFailedExitCode);
}

// PID 1 once the command runs. It holds nothing the supervisor waits on: the status pipe and
// the output pipes are the command's alone.
[[noreturn]] void BeInit(pid_t payload, int control) {
  int quiet = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (quiet >= 0) {
    ::dup2(quiet, STDOUT_FILENO);
    ::dup2(quiet, STDERR_FILENO);
  }
  struct sigaction forward {};
  forward.sa_handler = RecordSignal;
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) ::sigaction(sig, &forward, nullptr);
  // Raw waits: until it execs, the payload shares our errno, and an EINTR here must not turn
  // its failed execve of one PATH candidate into another error, nor its errors into ours.
  for (;;) {
    int status = 0;
    const long r = RawSyscall(SYS_wait4, -1, reinterpret_cast<long>(&status), 0, 0);
    if (r == payload) {
      const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      // Reap what already died; if nothing else is left, say so before our own (slow) exit.
      // Otherwise leaving kills whatever still runs in the namespace, and the supervisor waits
      // for that.
      long other;
      while ((other = RawSyscall(SYS_wait4, -1, 0, WNOHANG, 0)) > 0) {
      }
      if (other == -ECHILD) {
        struct rusage usage {};
        ::getrusage(RUSAGE_CHILDREN, &usage);
        FinalReport report{'R', code, usage.ru_utime.tv_sec * 1'000'000 + usage.ru_utime.tv_usec,
                           usage.ru_stime.tv_sec * 1'000'000 + usage.ru_stime.tv_usec,
                           usage.ru_maxrss};
        SendAll(control, &report, sizeof report);
      }
      ::_exit(code);
    }
    if (r == -EINTR) {
      if (int sig = g_forward_signal; sig != 0) {
        g_forward_signal = 0;
        RawSyscall(SYS_kill, -1, sig);
      }
    } else if (r < 0) {
      ::_exit(kChildFailedExitCode);
    }
  }
}

constexpr size_t kPayloadStackBytes = 64 * 1024;
constexpr int kInitFds = 2;     // to PID 1: blob, workspace
constexpr int kPayloadFds = 4;  // to the payload: stdout, stderr, status, stdin (if any)

// What the payload gets from PID 1 when cloned (it shares PID 1's memory, on a stack of its own).
struct PayloadArgs {
  const SeccompProgram* seccomp;
  int control;                // PID 1's socket to the supervisor: the payload closes its copy
  int direct;                 // the payload's own socket to the supervisor
  int init;                   // the payload's end of its socket to PID 1
  int init_peer;              // PID 1's end: the payload closes its copy
  const cpu_set_t* affinity;  // to restore once set up, if PID 1 pinned it to another CPU
  int policy;                 // the command's scheduling policy, or -1 to keep PID 1's
  const Command* command;     // PID 1's, decoded from the launch; read once PID 1 says "W"
};

bool SendFds(int socket, char tag, const int* fds, int count) {
  struct iovec iov {
    &tag, 1
  };
  alignas(struct cmsghdr) char buffer[CMSG_SPACE(sizeof(int) * kPayloadFds)] = {};
  struct msghdr message {};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  message.msg_control = buffer;
  message.msg_controllen = CMSG_SPACE(sizeof(int) * static_cast<size_t>(count));
  struct cmsghdr* cmsg = CMSG_FIRSTHDR(&message);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int) * static_cast<size_t>(count));
  std::memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * static_cast<size_t>(count));
  return ::sendmsg(socket, &message, MSG_NOSIGNAL) == 1;
}

// Receives one tagged message with `min_count` to `max_count` descriptors (their number in
// *received, if not null). Returns the tag, 0 at EOF, or -1 for anything else.
NS_CHILD_NO_ASAN int ReceiveFds(int socket, int* fds, int min_count, int max_count,
                                int* received = nullptr) {
  char tag = 0;
  struct iovec iov {
    &tag, 1
  };
  alignas(struct cmsghdr) char buffer[CMSG_SPACE(sizeof(int) * kPayloadFds)];
  struct msghdr message {};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  message.msg_control = buffer;
  message.msg_controllen = sizeof buffer;
  long n;
  while ((n = RawSyscall(SYS_recvmsg, socket, reinterpret_cast<long>(&message),
                         MSG_CMSG_CLOEXEC)) == -EINTR) {
  }
  if (n == 0) return 0;
  if (n != 1 || (message.msg_flags & MSG_CTRUNC) != 0) return -1;
  struct cmsghdr* cmsg = CMSG_FIRSTHDR(&message);
  if (cmsg == nullptr || cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS ||
      cmsg->cmsg_len < CMSG_LEN(0)) {
    return -1;
  }
  const auto count = static_cast<int>((cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int));
  if (count < min_count || count > max_count) return -1;
  std::memcpy(fds, CMSG_DATA(cmsg), sizeof(int) * static_cast<size_t>(count));
  if (received != nullptr) *received = count;
  return static_cast<unsigned char>(tag);
}

// Maps the launch blob privately and turns it into a Command; false if it is not one of ours.
NS_CHILD_NO_ASAN bool MapBlob(int blob_fd, Command* command) {
  struct stat st {};
  if (::fstat(blob_fd, &st) != 0) return false;
  void* mapped = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ | PROT_WRITE,
                        MAP_PRIVATE, blob_fd, 0);
  ::close(blob_fd);
  if (mapped == MAP_FAILED) return false;
  return FixupBlob(static_cast<char*>(mapped), static_cast<size_t>(st.st_size), command);
}

[[noreturn]] NS_CHILD_NO_ASAN void FailPayload(int init, ContainStep step, int error) {
  ChildFailure failure{static_cast<int32_t>(step), error};
  SendAll(init, &failure, sizeof failure);
  ::_exit(kChildFailedExitCode);
}

// The command's process, cloned by PID 1 first thing, in new user and cgroup namespaces, sharing
// PID 1's memory. It makes the sandbox's network namespace, becomes unprivileged root inside,
// installs the seccomp filter and says "r" to PID 1. At launch the supervisor sends it the command
// and its pipes directly (PID 1 never holds them, so they reach EOF the moment the command is done
// with them); once PID 1 says the workspace is in place ("W") it execs. Doing all the rest ahead of
// time is what makes a warm launch cheap. System calls only.
NS_CHILD_NO_ASAN int RunPayload(void* arg) {
  const auto& args = *static_cast<const PayloadArgs*>(arg);
  ::close(args.control);  // never the command's: a fake FinalReport must be impossible
  ::close(args.init_peer);
  const int init = args.init;
  // All of this while PID 1 mounts. First the sandbox's network namespace (the kernel takes
  // ~0.4 ms to set one up): "n" tells PID 1 it can join it. Then the bounding set and the filter.
  if (auto failed = ContainPayloadNet()) FailPayload(init, failed->first, failed->second);
  if (!SendAll(init, "n", 1)) ::_exit(kChildFailedExitCode);
  if (auto failed = ContainPayloadBounding()) FailPayload(init, failed->first, failed->second);
  if (args.seccomp != nullptr) {
    if (int error = InstallSeccompProgram(*args.seccomp); error != 0) {
      FailPayload(init, ContainStep::kSeccomp, error);
    }
  } else if (int error = RawError(RawSyscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1)); error != 0) {
    FailPayload(init, ContainStep::kSeccomp, error);
  }
  // Then the maps, from PID 1: root inside, no capabilities.
  if (auto failed = ContainPayload(init)) FailPayload(init, failed->first, failed->second);
  if (!SendAll(init, "r", 1)) ::_exit(kChildFailedExitCode);
  if (args.affinity != nullptr) {  // the command gets the CPUs the supervisor had
    RawSyscall(SYS_sched_setaffinity, 0, sizeof(cpu_set_t), reinterpret_cast<long>(args.affinity));
  }
  if (args.policy >= 0) {  // and its scheduling policy, not the pool thread's SCHED_BATCH
    const struct sched_param normal {};
    RawSyscall(SYS_sched_setscheduler, 0, args.policy, reinterpret_cast<long>(&normal));
  }

  int fds[kPayloadFds];
  int received = 0;
  if (ReceiveFds(args.direct, fds, kPayloadFds - 1, kPayloadFds, &received) != 'G') {
    ::_exit(0);  // let go, or not ours
  }
  // No stdin descriptor: no input (RedirectStdio opens /dev/null).
  const int stdout_fd = fds[0], stderr_fd = fds[1], failure_fd = fds[2],
            stdin_fd = received == kPayloadFds ? fds[3] : -1;
  // PID 1's word: "W" once /workspace is attached and the command decoded (in the memory we
  // share), or why it could not be.
  ChildFailure failure{};
  const long n = ReceiveSome(init, &failure, sizeof failure);
  if (n == sizeof failure) FailChild(failure_fd, failure.step, failure.error);
  if (n != 1 || reinterpret_cast<const char*>(&failure)[0] != 'W') {
    FailChild(failure_fd, int32_t(ContainStep::kLaunch), EPROTO);
  }
  ::close(init);
  ::close(args.direct);
  RedirectStdio(stdin_fd, stdout_fd, stderr_fd, failure_fd);
  const Command& command = *args.command;
  const char* cwd = command.working_dir[0] == '\0' ? "/workspace" : command.working_dir;
  if (::chdir(cwd) != 0) FailChild(failure_fd, int32_t(ChildStep::kChdir), errno);
  ExecOrFail(command.candidates, command.argv, command.envp, failure_fd);
}

// What PID 1's ContainWarm hooks need.
struct WarmState {
  const PreparedSandbox* prepared;
  pid_t payload;
  int init;
};

// Once the sandbox's /proc is mounted: the payload's maps, then "m".
ContainFailure WritePayloadMaps(void* arg) {
  const auto& state = *static_cast<const WarmState*>(arg);
  if (auto failed = ContainPayloadMaps(*state.prepared, state.payload)) return failed;
  if (!SendAll(state.init, "m", 1)) return std::make_pair(ContainStep::kUserns, EPIPE);
  return std::nullopt;
}

// After pivot_root: wait for the payload's "n" (or its failure), then join its network namespace.
ContainFailure JoinPayloadNet(void* arg) {
  const auto& state = *static_cast<const WarmState*>(arg);
  ChildFailure failure{};
  const long n = ReceiveSome(state.init, &failure, sizeof failure);
  if (n == sizeof failure) {
    return std::make_pair(static_cast<ContainStep>(failure.step), failure.error);
  }
  if (n != 1 || reinterpret_cast<const char*>(&failure)[0] != 'n') {
    return std::make_pair(ContainStep::kNet, EPROTO);
  }
  return ContainJoinNet(state.payload);
}

// The child of Spawn: PID 1. Async-signal-safe only.
[[noreturn]] void RunWarmChild(const PreparedSandbox& prepared, const SeccompProgram* seccomp,
                               const char* const* cgroup_procs, int control, int direct,
                               bool pin_payload, int command_policy) {
  // PID 1 never execs, so close-on-exec protects nothing here: close every descriptor of the
  // supervisor (its data-dir lock, listening socket, database) but the two sockets, or a
  // waiting sandbox would hold them.
  const int keep[] = {control, direct};
  CloseAllBut(keep, 2);
  if (::setsid() < 0) FailWarm(control, ContainStep::kLaunch, errno);
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) FailWarm(control, ContainStep::kLaunch, errno);
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &default_action, nullptr);
  sigset_t empty;
  sigemptyset(&empty);
  ::sigprocmask(SIG_SETMASK, &empty, nullptr);

  // Into the sandbox's cgroup before anything else, so everything started here is accounted
  // there and the payload's cgroup namespace is rooted at it. "0" is the writer.
  for (; *cgroup_procs != nullptr; ++cgroup_procs) {
    int fd = ::open(*cgroup_procs, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::write(fd, "0", 1) != 1) FailWarm(control, ContainStep::kCgroup, errno);
    ::close(fd);
  }
  // The payload first: it makes the network namespace on the other core while we mount.
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    FailWarm(control, ContainStep::kInitFork, errno);
  }
  const int init = pair[0];
  void* stack = ::mmap(nullptr, kPayloadStackBytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) FailWarm(control, ContainStep::kInitFork, errno);
  // The scheduler keeps a new process on its parent's CPU, where it would only run once we
  // block: pin the payload to another CPU for its set-up, so the two halves really overlap.
  // Only when no other sandbox is being set up (Spawn): under load the other CPU is busy too,
  // and pinning would only cost throughput (~15% measured with two threads starting sandboxes).
  cpu_set_t affinity;
  CPU_ZERO(&affinity);
  const bool pin = pin_payload && ::sched_getaffinity(0, sizeof affinity, &affinity) == 0 &&
                   CPU_COUNT(&affinity) > 1;
  Command command{};  // filled in at launch, for the payload too
  const PayloadArgs args{seccomp,        control, direct, pair[1], init, pin ? &affinity : nullptr,
                         command_policy, &command};
  const int payload = ::clone(RunPayload, static_cast<char*>(stack) + kPayloadStackBytes,
                              CLONE_VM | CLONE_NEWUSER | CLONE_NEWCGROUP | SIGCHLD,
                              const_cast<PayloadArgs*>(&args));
  if (payload < 0) FailWarm(control, ContainStep::kUserns, errno);
  if (pin) {
    const int here = ::sched_getcpu();
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (cpu == here || !CPU_ISSET(cpu, &affinity)) continue;
      cpu_set_t other;
      CPU_ZERO(&other);
      CPU_SET(cpu, &other);
      ::sched_setaffinity(payload, sizeof other, &other);  // best effort
      break;
    }
  }
  ::close(pair[1]);
  ::close(direct);

  WarmState state{&prepared, payload, init};
  const WarmHooks hooks{WritePayloadMaps, JoinPayloadNet, &state};
  if (auto failed = ContainWarm(prepared, hooks)) FailWarm(control, failed->first, failed->second);
  ChildFailure failure{};
  const long got = ReceiveSome(init, &failure, sizeof failure);
  if (got == sizeof failure)
    FailWarm(control, static_cast<ContainStep>(failure.step), failure.error);
  if (got != 1) FailWarm(control, ContainStep::kInitFork, EPROTO);
  if (!SendAll(control, "r", 1)) ::_exit(kChildFailedExitCode);

  // Wait for the command. EOF: the pool let us go (our exit takes the payload with it).
  int fds[kInitFds];
  const int tag = ReceiveFds(control, fds, kInitFds, kInitFds);
  if (tag == 0) ::_exit(0);
  // From here on a failure goes to the payload, which reports it on the status pipe; PID 1 then
  // waits for it like for any command.
  ContainFailure failed;
  if (tag != 'L' || !MapBlob(fds[0], &command)) {
    failed = std::make_pair(ContainStep::kLaunch, EPROTO);
  } else {
    failed = ContainLaunch(fds[1], command.masks, command.hostname);
  }
  if (failed) {
    const ChildFailure report{static_cast<int32_t>(failed->first), failed->second};
    SendAll(init, &report, sizeof report);
  } else {
    SendAll(init, "W", 1);
  }
  ::close(init);
  BeInit(payload, control);
}

StatusOr<UniqueFd> MakeMemfd(const std::string& content) {
  UniqueFd fd(::memfd_create("nightshift-launch", MFD_CLOEXEC));
  if (!fd.Valid()) return ErrnoError("memfd_create", "launch");
  if (::write(fd.Get(), content.data(), content.size()) != static_cast<ssize_t>(content.size())) {
    return ErrnoError("write", "launch memfd");
  }
  return fd;
}

// The workspace as a detached mount: a recursive bind of the host directory, nosuid and nodev.
StatusOr<UniqueFd> DetachedBind(const std::filesystem::path& dir) {
  UniqueFd fd(
      ::open_tree(AT_FDCWD, dir.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE));
  if (!fd.Valid()) return ErrnoError("open_tree", dir.string());
  struct mount_attr attr {};
  attr.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  if (::mount_setattr(fd.Get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) != 0) {
    return ErrnoError("mount_setattr", dir.string());
  }
  return fd;
}

// The workspace as a detached overlay: read-only `layers` (top first) under the writable
// `upper`. Built with the new mount API, so nothing is mounted in the supervisor's namespace.
StatusOr<UniqueFd> DetachedOverlay(const std::vector<std::filesystem::path>& layers,
                                   const std::filesystem::path& upper,
                                   const std::filesystem::path& work) {
  UniqueFd fs(::fsopen("overlay", FSOPEN_CLOEXEC));
  if (!fs.Valid()) return ErrnoError("fsopen", "overlay");
  // fsconfig takes strings of at most 256 bytes: name each directory by a descriptor instead
  // (/proc/self/fd/N, resolved now, in this process).
  std::vector<UniqueFd> held;
  auto short_name = [&](const std::filesystem::path& dir) -> StatusOr<std::string> {
    UniqueFd fd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!fd.Valid()) return ErrnoError("open", dir.string());
    std::string name = StrCat("/proc/self/fd/", fd.Get());
    held.push_back(std::move(fd));
    return name;
  };
  std::string lower;
  for (const auto& layer : layers) {
    ASSIGN_OR_RETURN(std::string name, short_name(layer));
    lower += (lower.empty() ? "" : ":") + name;
  }
  ASSIGN_OR_RETURN(std::string upper_name, short_name(upper));
  ASSIGN_OR_RETURN(std::string work_name, short_name(work));
  for (const auto& [key, value] : std::vector<std::pair<const char*, std::string>>{
           {"lowerdir", lower}, {"upperdir", upper_name}, {"workdir", work_name}}) {
    if (::fsconfig(fs.Get(), FSCONFIG_SET_STRING, key, value.c_str(), 0) != 0) {
      return ErrnoError("overlay option", StrCat(key, "=", value));
    }
  }
  if (::fsconfig(fs.Get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
    return ErrnoError("mount", StrCat("the workspace overlay over ", upper.string()));
  }
  UniqueFd mount(::fsmount(fs.Get(), FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV));
  if (!mount.Valid()) return ErrnoError("fsmount", "workspace overlay");
  return mount;
}

StatusOr<std::pair<UniqueFd, UniqueFd>> Pipe2() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoError("pipe2", "sandbox");
  return std::make_pair(UniqueFd(fds[0]), UniqueFd(fds[1]));
}

Status SetNonblocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    return ErrnoError("fcntl", "O_NONBLOCK");
  }
  return OkStatus();
}

}  // namespace

std::string BuildLaunchBlob(const LaunchRequest& request) {
  std::vector<uint64_t> slots;
  std::string strings;
  const uint64_t slot_base = sizeof(BlobHeader);
  // String offsets are fixed once the slot count is known: collect first, place after.
  std::vector<std::pair<size_t, size_t>> pending;  // slot index → offset within `strings`
  auto add_string = [&](const std::string& s) {
    size_t at = strings.size();
    strings.append(s);
    strings.push_back('\0');
    return at;
  };
  auto add_list = [&](const std::vector<std::string>& list) {
    uint64_t first = slots.size();
    for (const std::string& s : list) {
      pending.push_back({slots.size(), add_string(s)});
      slots.push_back(0);
    }
    slots.push_back(0);  // the terminating null
    return first;
  };
  BlobHeader header{};
  header.magic = kBlobMagic;
  header.argv = add_list(request.argv);
  header.envp = add_list(request.env);
  header.candidates = add_list(request.candidates);
  header.masks = add_list(request.workspace_masks);
  const size_t hostname_at = add_string(request.hostname);
  const size_t working_dir_at = add_string(request.working_dir);
  header.slot_count = slots.size();
  const uint64_t strings_base = slot_base + slots.size() * sizeof(uint64_t);
  for (const auto& [slot, at] : pending) slots[slot] = strings_base + at;
  header.hostname = strings_base + hostname_at;
  header.working_dir = strings_base + working_dir_at;
  header.size = strings_base + strings.size();
  std::string blob(reinterpret_cast<const char*>(&header), sizeof header);
  blob.append(reinterpret_cast<const char*>(slots.data()), slots.size() * sizeof(uint64_t));
  blob.append(strings);
  return blob;
}

StatusOr<std::unique_ptr<WarmSandbox>> WarmSandbox::Spawn(const SandboxSpec& shape,
                                                          const SeccompProgram* seccomp,
                                                          bool with_cgroup, int command_policy) {
  std::unique_ptr<WarmSandbox> warm(new WarmSandbox());
  ASSIGN_OR_RETURN(warm->prepared_, PrepareSandbox(shape));
  std::vector<const char*> cgroup_procs;
  if (with_cgroup) {
    // Random, not the pid: a group a dead supervisor left behind may carry any pid.
    ASSIGN_OR_RETURN(warm->cgroup_,
                     Cgroup::Create(StrCat("sandbox-", RandomHex(8)), CgroupLimits{}));
    for (const auto& file : warm->cgroup_->procs_files()) cgroup_procs.push_back(file.c_str());
  }
  cgroup_procs.push_back(nullptr);
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    return ErrnoError("socketpair", "sandbox control");
  }
  warm->control_ = UniqueFd(pair[0]);
  UniqueFd child_end(pair[1]);
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    return ErrnoError("socketpair", "sandbox payload");
  }
  warm->direct_ = UniqueFd(pair[0]);
  UniqueFd payload_end(pair[1]);

  // Every signal blocked across clone(), so none reaches a supervisor handler in the child
  // before it restores the defaults.
  sigset_t all_signals, saved_mask;
  sigfillset(&all_signals);
  ::pthread_sigmask(SIG_SETMASK, &all_signals, &saved_mask);
  // The network namespace is the payload's to make (RunPayload), in parallel with the mounts.
  constexpr unsigned long kNamespaces = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC;
  // How many sandboxes are being set up by this process right now, this one included.
  static std::atomic<int> spawning{0};
  struct Counted {
    Counted() { ++spawning; }
    ~Counted() { --spawning; }
  } counted;
  const bool alone = spawning.load() == 1;
  const long pid = ::syscall(SYS_clone, kNamespaces | SIGCHLD, 0, 0, 0, 0);
  if (pid == 0) {
    RunWarmChild(*warm->prepared_, seccomp, cgroup_procs.data(), child_end.Get(), payload_end.Get(),
                 alone, command_policy);
  }
  const int clone_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &saved_mask, nullptr);
  if (pid < 0) return ErrnoError("clone", "sandbox", clone_errno);
  warm->pid_ = static_cast<pid_t>(pid);
  child_end.Reset();
  payload_end.Reset();

  ChildFailure failure{};
  ssize_t n;
  while ((n = ::recv(warm->control_.Get(), &failure, sizeof failure, 0)) < 0 && errno == EINTR) {
  }
  if (n == 1 && reinterpret_cast<const char*>(&failure)[0] == 'r') return warm;
  if (n == sizeof failure) {
    return ErrnoError(StrCat("sandbox: ", ContainStepName(static_cast<ContainStep>(failure.step))),
                      "", failure.error);
  }
  return InternalError("sandbox: the child died while setting up");
}

WarmSandbox::~WarmSandbox() {
  if (pid_ > 0 && !released_) {
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
}

bool WarmSandbox::Alive() const {
  if (pid_ <= 0 || released_) return false;
  // A waiting sandbox never writes; a readable or hung-up socket means it died.
  struct pollfd p {
    control_.Get(), POLLIN, 0
  };
  return ::poll(&p, 1, 0) == 0;
}

StatusOr<Launched> WarmSandbox::Launch(const LaunchRequest& request) {
  if (released_ || !control_.Valid()) return FailedPreconditionError("sandbox already launched");
  if (request.limits.any()) {
    if (cgroup_ == nullptr) {
      return FailedPreconditionError("sandbox: limits for a sandbox spawned without a cgroup");
    }
    RETURN_IF_ERROR(cgroup_->SetLimits(request.limits));
  }
  ASSIGN_OR_RETURN(UniqueFd blob, MakeMemfd(BuildLaunchBlob(request)));
  UniqueFd workspace;
  if (request.workspace_layers.empty()) {
    ASSIGN_OR_RETURN(workspace, DetachedBind(request.workspace));
  } else {
    ASSIGN_OR_RETURN(workspace, DetachedOverlay(request.workspace_layers, request.workspace,
                                                request.workspace_work));
  }
  ASSIGN_OR_RETURN(auto out, Pipe2());
  ASSIGN_OR_RETURN(auto err, Pipe2());
  ASSIGN_OR_RETURN(auto status, Pipe2());
  RETURN_IF_ERROR(SetNonblocking(out.first.Get()));
  RETURN_IF_ERROR(SetNonblocking(err.first.Get()));

  // stdin: the request's data in a memfd, read from its start; none: /dev/null, opened inside.
  UniqueFd input;
  if (!request.stdin_data.empty()) {
    ASSIGN_OR_RETURN(input, MakeMemfd(request.stdin_data));
    if (::lseek(input.Get(), 0, SEEK_SET) != 0) return ErrnoError("lseek", "stdin memfd");
  }
  // PID 1 first: it decodes the command and attaches the workspace while the payload takes its
  // descriptors.
  const int to_init[kInitFds] = {blob.Get(), workspace.Get()};
  const int to_payload[kPayloadFds] = {out.second.Get(), err.second.Get(), status.second.Get(),
                                       input.Get()};
  if (!SendFds(control_.Get(), 'L', to_init, kInitFds) ||
      !SendFds(direct_.Get(), 'G', to_payload, input.Valid() ? kPayloadFds : kPayloadFds - 1)) {
    return ErrnoError("sendmsg", "sandbox launch");
  }
  direct_.Reset();
  // Only the sandbox holds the write ends now, so the pipes reach EOF when it is done.
  Launched launched;
  launched.stdout_read = std::move(out.first);
  launched.stderr_read = std::move(err.first);
  launched.failure_read = std::move(status.first);
  launched.cgroup = std::move(cgroup_);
  launched.control = std::move(control_);
  return launched;
}

std::optional<FinalReport> ReadFinalReport(int control) {
  FinalReport report{};
  ssize_t n;
  while ((n = ::recv(control, &report, sizeof report, MSG_DONTWAIT)) < 0 && errno == EINTR) {
  }
  if (n != sizeof report || report.tag != 'R') return std::nullopt;
  return report;
}

namespace {

// One thread for the whole process, started on first use: sandboxes' PID 1s that reported
// and are exiting, with the cgroups they are still in.
class BackgroundReaper {
 public:
  static BackgroundReaper& Get() {
    static auto* reaper = new BackgroundReaper();  // never destroyed: used until exit
    return *reaper;
  }
  void Add(pid_t pid, std::unique_ptr<Cgroup> cgroup) {
    {
      std::lock_guard lock(mu_);
      queue_.push_back({pid, std::move(cgroup)});
    }
    wake_.notify_one();
  }

 private:
  BackgroundReaper() {
    std::thread([this] { Loop(); }).detach();
  }
  void Loop() {
    for (;;) {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [&] { return !queue_.empty(); });
      auto [pid, cgroup] = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      cgroup.reset();
    }
  }
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::pair<pid_t, std::unique_ptr<Cgroup>>> queue_;
};

}  // namespace

void ReapInBackground(pid_t pid, std::unique_ptr<Cgroup> cgroup) {
  BackgroundReaper::Get().Add(pid, std::move(cgroup));
}

}  // namespace nightshift::sandbox::internal
