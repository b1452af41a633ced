#include "sandbox/launch.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <tuple>

#include "sandbox/netns.h"
#include "sandbox/raw_syscall.h"

namespace nightshift::sandbox::internal {
namespace {

constexpr size_t kStackBytes = 64 * 1024;  // each, for PID 1 and the payload
constexpr int kPayloadFds = 4;             // to the payload: stdout, stderr, status, stdin (if any)
static_assert(kPayloadFds <= kMaxReceivedFds);
constexpr char kReady = 'r';           // PID 1 → supervisor: waiting for its command
constexpr char kLaunch = 'L';          // supervisor → PID 1, with the workspace
constexpr char kGo = 'G';              // supervisor → payload, with its descriptors
constexpr char kWorkspaceReady = 'W';  // PID 1 → payload: the workspace is attached
constexpr int kReapBatch = 64;         // zombies PID 1 reaps before it looks at signals

std::atomic<int> g_setting_up{0};  // sandboxes of this process being set up (SetupSlot)

// --- In the sandbox's processes: NS_CHILD, system calls only (raw_syscall.h). ---

// What PID 1 gives the payload it clones, on PID 1's stack (which it shares).
struct PayloadStart {
  const SeccompProgram* seccomp;
  const CgroupFiles* cgroup;  // the sandbox's cgroup.procs files, opened by PID 1
  int control;                // PID 1's socket to the supervisor: the payload closes its copy
  int direct;                 // the payload's own socket to the supervisor
  int link;                   // the payload's end of its socket to PID 1
  int link_peer;              // PID 1's end: the payload closes its copy
  const cpu_set_t* affinity;  // to restore once set up, if it was pinned for its set-up
  int policy;                 // the command's scheduling policy, or -1 to keep PID 1's
  const Command* command;     // in SandboxMemory; read once PID 1 says the workspace is ready
  const SandboxMemory::InheritedLaunch* inherited;  // a cold start's descriptors, if any
};

[[noreturn]] NS_CHILD void Fail(int socket, const ChildFailure& failure) {
  SendFailure(socket, failure);
  sys::Exit(kChildFailedExitCode);
}

[[noreturn]] NS_CHILD void Fail(int socket, ContainStep step, long result) {
  Fail(socket, ChildFailure{static_cast<int32_t>(step), RawError(result)});
}

// The command's process, cloned by PID 1 first thing, in the supervisor's memory too. It runs
// its half of the checklist (ContainPayload: its own namespaces, filter, credentials) while
// PID 1 mounts, then waits. Its pipes come straight from the supervisor — inherited by a cold
// start, sent at a pooled sandbox's launch — so PID 1 never holds them and they reach EOF the
// moment the command is done with them; once PID 1 says the workspace is in place it execs.
// Doing all the rest ahead of time is what makes a warm launch cheap.
NS_CHILD int RunPayload(void* arg) {
  const auto& start = *static_cast<const PayloadStart*>(arg);
  sys::Close(start.control);  // never the command's: a fake FinalReport must be impossible
  sys::Close(start.link_peer);
  if (auto failed = ContainPayload(start.seccomp, *start.cgroup, start.direct, start.link)) {
    Fail(start.link, *failed);
  }
  if (start.affinity != nullptr) {  // the command gets the CPUs the supervisor had
    sys::SchedSetaffinity(0, sizeof(cpu_set_t), start.affinity);
  }
  if (start.policy >= 0) {  // and its scheduling policy, not the pool thread's SCHED_BATCH
    const struct sched_param normal {};
    RawSyscall(SYS_sched_setscheduler, 0, start.policy, sys::Arg(&normal));
  }

  // A cold start's descriptors were inherited; a pooled sandbox's come with its launch.
  int fds[kPayloadFds] = {start.inherited->fds[0], start.inherited->fds[1], start.inherited->fds[2],
                          start.inherited->fds[3]};
  if (fds[2] < 0) {
    int received = 0;
    if (ReceiveFds(start.direct, fds, kPayloadFds - 1, kPayloadFds, &received) != kGo) {
      sys::Exit(0);  // let go, or not ours
    }
    if (received < kPayloadFds) fds[3] = -1;
  }
  // No stdin descriptor: no input (RedirectStdio opens /dev/null).
  const int stdout_fd = fds[0], stderr_fd = fds[1], failure_fd = fds[2], stdin_fd = fds[3];
  if (auto failed = AwaitTag(start.link, kWorkspaceReady, int32_t(ContainStep::kLaunch))) {
    FailChild(failure_fd, failed->step, failed->error);
  }
  sys::Close(start.link);
  sys::Close(start.direct);
  RedirectStdio(stdin_fd, stdout_fd, stderr_fd, failure_fd);
  // PID 1 blocks every signal (it waits for them with sigwait); the command starts with none.
  const sys::KernelSigset none = 0;
  sys::Sigprocmask(SIG_SETMASK, &none);
  const Command& command = *start.command;
  const char* cwd = command.working_dir[0] == '\0' ? "/workspace" : command.working_dir;
  if (int error = RawError(sys::Chdir(cwd)); error != 0) {
    FailChild(failure_fd, int32_t(ChildStep::kChdir), error);
  }
  ExecOrFail(command.candidates, command.argv, command.envp, failure_fd);
}

// PID 1 once the command runs: reaps whatever exits, forwards SIGTERM, SIGINT and SIGHUP to
// everything else in the sandbox, and exits with the command's status once it has exited. It
// holds nothing the supervisor waits on: the status and output pipes are the command's alone.
// Every signal stays blocked; the ones it acts on are taken with sigwait, so no handler runs in
// the supervisor's memory.
[[noreturn]] NS_CHILD void BeInit(pid_t payload, int control) {
  const sys::KernelSigset waited = sys::SignalBit(SIGCHLD) | sys::SignalBit(SIGTERM) |
                                   sys::SignalBit(SIGINT) | sys::SignalBit(SIGHUP);
  for (;;) {
    int status = 0, payload_status = 0;
    bool payload_done = false;
    long r;
    // A bounded batch: under a fork bomb, orphans can die as fast as they are reaped, and the
    // loop would never get back to forwarding a signal, nor to leaving once the command is gone.
    int reaped = 0;
    for (; reaped < kReapBatch; ++reaped) {
      if ((r = sys::Wait4(-1, &status, WNOHANG, nullptr)) <= 0) break;
      if (r == payload) {
        payload_done = true;
        payload_status = status;
      }
    }
    if (payload_done) {
      const int code =
          WIFEXITED(payload_status) ? WEXITSTATUS(payload_status) : 128 + WTERMSIG(payload_status);
      // Nothing else left: say so before our own (slow) exit. Otherwise (or in a storm of
      // orphans: r > 0) leaving kills whatever still runs in the namespace, and the supervisor
      // waits for that.
      if (r == -ECHILD) {
        struct rusage usage {};
        sys::Getrusage(RUSAGE_CHILDREN, &usage);
        const FinalReport report{
            'R', code, usage.ru_utime.tv_sec * 1'000'000 + usage.ru_utime.tv_usec,
            usage.ru_stime.tv_sec * 1'000'000 + usage.ru_stime.tv_usec, usage.ru_maxrss};
        sys::Send(control, &report, sizeof report, MSG_NOSIGNAL);
      }
      sys::Exit(code);
    }
    if (r < 0 && r != -ECHILD) sys::Exit(kChildFailedExitCode);
    // A cut batch leaves zombies whose SIGCHLD was already taken: only look for a signal then.
    const long signal = sys::Sigwait(&waited, /*poll=*/reaped == kReapBatch);
    if (signal == SIGTERM || signal == SIGINT || signal == SIGHUP) {
      sys::Kill(-1, static_cast<int>(signal));
    }
  }
}

// PID 1's half of a launch: the workspace and hostname (ContainLaunch), then the word to the
// payload — "the workspace is ready", or why not.
NS_CHILD void Launch(int tag, int workspace, const Command& command, int link) {
  const ContainFailure failed =
      tag == kLaunch ? ContainLaunch(workspace, command) : Failed(ContainStep::kLaunch, EPROTO);
  if (failed) {
    SendFailure(link, *failed);
  } else {
    SendTag(link, kWorkspaceReady);
  }
}

// PID 1 of a sandbox, cloned by Start into the supervisor's memory. Sets up its half, waits for
// the command, launches it, becomes init.
NS_CHILD int RunInit(void* arg) {
  const SandboxMemory& memory = *static_cast<const SandboxMemory*>(arg);
  const int control = memory.control;
  // No handler of the supervisor's may ever run here: every disposition back to the default.
  // Signals stay blocked as Start blocked them (BeInit waits for the ones it wants).
  const sys::KernelSigaction default_action{SIG_DFL, 0, nullptr, 0};
  for (int signal = 1; signal <= sys::kKernelSignals; ++signal) {
    if (signal != SIGKILL && signal != SIGSTOP) sys::Sigaction(signal, &default_action);
  }
  // PID 1 never execs, so close-on-exec protects nothing: none of the supervisor's descriptors
  // (its data-dir lock, listening socket, database, stdio) may stay open in a waiting sandbox.
  const long dev_null = sys::Open("/dev/null", O_RDWR | O_CLOEXEC);
  if (dev_null < 0) Fail(control, ContainStep::kLaunch, dev_null);
  for (int fd = 0; fd <= STDERR_FILENO; ++fd) sys::Dup3(static_cast<int>(dev_null), fd, 0);
  const auto& inherited = memory.inherited;
  const int keep[] = {control,          memory.direct,    inherited.workspace, inherited.fds[0],
                      inherited.fds[1], inherited.fds[2], inherited.fds[3]};
  CloseAllBut(keep, 7);
  if (long r = sys::Setsid(); r < 0) Fail(control, ContainStep::kLaunch, r);
  if (long r = sys::Prctl(PR_SET_PDEATHSIG, SIGKILL); r < 0) Fail(control, ContainStep::kLaunch, r);
  // PID 1 never joins the sandbox's cgroup: it runs in the supervisor's memory, and the kernel's
  // OOM killer kills every process sharing its victim's memory. The payload joins it, through
  // descriptors opened here.
  CgroupFiles cgroup;
  if (auto failed = OpenCgroupFiles(memory.cgroup_procs_ptrs.data(), &cgroup)) {
    Fail(control, *failed);
  }

  // The payload first, so its set-up overlaps our mounts.
  int pair[2];
  if (long r = sys::Socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair); r < 0) {
    Fail(control, ContainStep::kInitFork, r);
  }
  const int link = pair[0];
  const bool pinned = memory.payload_cpu >= 0;
  const PayloadStart start{memory.seccomp,
                           &cgroup,
                           control,
                           memory.direct,
                           pair[1],
                           link,
                           pinned ? &memory.affinity : nullptr,
                           memory.command_policy,
                           &memory.command,
                           &inherited};
  const long payload = RawCloneOnStack(CLONE_VM | SIGCHLD, memory.payload_stack.top(), RunPayload,
                                       const_cast<PayloadStart*>(&start));
  if (payload < 0) Fail(control, ContainStep::kUserns, payload);
  if (pinned) {  // best effort
    cpu_set_t cpu;
    CPU_ZERO(&cpu);
    CPU_SET(memory.payload_cpu, &cpu);
    sys::SchedSetaffinity(static_cast<pid_t>(payload), sizeof cpu, &cpu);
  }
  sys::Close(pair[1]);
  // The payload's descriptors are the payload's. Should it die before its exec, the status pipe
  // must reach EOF only after we have said why: we keep its write end until the payload is
  // ready, and memory.direct (where a pooled sandbox's launch would stay queued) until BeInit.
  for (int i = 0; i < kPayloadFds; ++i) {
    if (i != 2 && inherited.fds[i] >= 0) sys::Close(inherited.fds[i]);
  }
  CloseCgroupFiles(cgroup);

  if (auto failed = ContainInit(*memory.prepared, static_cast<pid_t>(payload), link, control)) {
    Fail(control, *failed);
  }
  if (pinned) sys::SchedSetaffinity(0, sizeof memory.affinity, &memory.affinity);
  // A cold start's command came with us: attach its workspace now, so the payload finds the
  // word waiting as soon as it is ready, and execs without another wake-up. A failure from here
  // on goes to the payload, which reports it on the status pipe; PID 1 then waits for it like
  // for any command.
  const bool launched = inherited.workspace >= 0;
  if (launched) Launch(kLaunch, inherited.workspace, memory.command, link);
  if (auto failed = AwaitPayloadReady(link)) Fail(control, *failed);
  if (inherited.fds[2] >= 0) sys::Close(inherited.fds[2]);
  if (!SendTag(control, kReady)) sys::Exit(kChildFailedExitCode);
  if (!launched) {
    // Wait for the command. EOF: the pool let us go (our exit takes the payload with it).
    int workspace = -1;
    const int tag = ReceiveFds(control, &workspace, 1, 1);
    if (tag == 0) sys::Exit(0);
    Launch(tag, workspace, memory.command, link);
  }
  sys::Close(link);
  sys::Close(memory.direct);
  BeInit(static_cast<pid_t>(payload), control);
}

// --- In the supervisor. ---

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

// A socket pair, both ends above the standard descriptors (PID 1 puts /dev/null on those).
StatusOr<std::pair<UniqueFd, UniqueFd>> SocketPair(std::string_view what) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
    return ErrnoError("socketpair", what);
  }
  UniqueFd first(fds[0]), second(fds[1]);
  ASSIGN_OR_RETURN(first, AboveStdio(std::move(first)));
  ASSIGN_OR_RETURN(second, AboveStdio(std::move(second)));
  return std::make_pair(std::move(first), std::move(second));
}

// A launch's descriptors: ours (the read ends of the pipes) and the sandbox's (the workspace
// mount for PID 1; the write ends and stdin for the payload), all above the standard
// descriptors.
struct LaunchFds {
  Pipe out, err, status;
  UniqueFd workspace, input;
  // The payload's: stdout, stderr, status, stdin (-1: none).
  std::array<int, kPayloadFds> payload() const {
    return {out.write.Get(), err.write.Get(), status.write.Get(), input.Get()};
  }
};

StatusOr<LaunchFds> MakeLaunchFds(const LaunchRequest& request) {
  LaunchFds fds;
  ASSIGN_OR_RETURN(fds.workspace,
                   WorkspaceMount(request.workspace, request.workspace_layers,
                                  request.workspace_work, request.workspace_read_only));
  ASSIGN_OR_RETURN(fds.workspace, AboveStdio(std::move(fds.workspace)));
  ASSIGN_OR_RETURN(fds.out, MakePipe(/*nonblocking_read=*/true));
  ASSIGN_OR_RETURN(fds.err, MakePipe(/*nonblocking_read=*/true));
  ASSIGN_OR_RETURN(fds.status, MakePipe(/*nonblocking_read=*/false));
  // stdin: the request's data in a memfd; none: /dev/null, opened inside.
  if (!request.stdin_data.empty()) {
    ASSIGN_OR_RETURN(fds.input, MakeMemfdWith("nightshift-stdin", request.stdin_data));
  }
  return fds;
}

// The command into the sandbox's memory, where PID 1 and the payload read it.
void WriteCommand(const LaunchRequest& request, SandboxMemory& memory) {
  memory.argv = request.argv;
  memory.env = request.env;
  memory.candidates = request.candidates;
  memory.masks = request.workspace_masks;
  memory.hostname = request.hostname;
  memory.working_dir = request.working_dir;
  // Pointers only once the strings will no longer move.
  auto pointers = [](auto& strings, auto& out) {
    out.clear();
    for (auto& s : strings) out.push_back(s.data());
    out.push_back(nullptr);
  };
  pointers(memory.argv, memory.argv_ptrs);
  pointers(memory.env, memory.env_ptrs);
  pointers(memory.candidates, memory.candidate_ptrs);
  pointers(memory.masks, memory.mask_ptrs);
  memory.command =
      Command{memory.argv_ptrs.data(), memory.env_ptrs.data(),  memory.candidate_ptrs.data(),
              memory.mask_ptrs.data(), memory.hostname.c_str(), memory.working_dir.c_str()};
}

// recv() on a socket to PID 1. ECONNRESET only says PID 1 exited with a message of ours unread
// (the network namespace, when it failed setting up before it read it); the error is reported
// once, ahead of what PID 1 sent before it went, so read again.
ssize_t ReceiveFromInit(int control, void* data, size_t size, int flags) {
  ssize_t n;
  while ((n = ::recv(control, data, size, flags)) < 0 && (errno == EINTR || errno == ECONNRESET)) {
  }
  return n;
}

Status SetupError(const ChildFailure& failure) {
  return ErrnoError("sandbox:", ContainStepName(static_cast<ContainStep>(failure.step)),
                    failure.error);
}

}  // namespace

StatusOr<ChildStack> ChildStack::Make(size_t bytes) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t size = (bytes + page - 1) / page * page + page;
  void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) return ErrnoError("mmap", "sandbox stack");
  ChildStack stack;
  stack.base_ = static_cast<char*>(base);
  stack.size_ = size;
  if (::mprotect(base, page, PROT_NONE) != 0) return ErrnoError("mprotect", "sandbox stack");
  return stack;
}

ChildStack::ChildStack(ChildStack&& other) noexcept
    : base_(std::exchange(other.base_, nullptr)), size_(std::exchange(other.size_, 0)) {}

ChildStack& ChildStack::operator=(ChildStack&& other) noexcept {
  if (this != &other) {
    if (base_ != nullptr) ::munmap(base_, size_);
    base_ = std::exchange(other.base_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

ChildStack::~ChildStack() {
  if (base_ != nullptr) ::munmap(base_, size_);
}

SetupSlot SetupSlot::Take() {
  SetupSlot slot;
  slot.held_ = true;
  slot.alone_ = g_setting_up.fetch_add(1) == 0;
  return slot;
}

SetupSlot& SetupSlot::operator=(SetupSlot&& other) noexcept {
  if (this != &other) {
    Release();
    held_ = std::exchange(other.held_, false);
    alone_ = other.alone_;
  }
  return *this;
}

void SetupSlot::Release() {
  if (held_) g_setting_up.fetch_sub(1);
  held_ = false;
}

namespace {

// Everything of a sandbox's memory but its launch and sockets.
StatusOr<std::unique_ptr<SandboxMemory>> NewMemory(const SandboxSpec& shape,
                                                   const SeccompProgram* seccomp,
                                                   const Cgroup* cgroup, int command_policy) {
  auto memory = std::make_unique<SandboxMemory>();
  ASSIGN_OR_RETURN(memory->prepared, PrepareSandbox(shape));
  memory->seccomp = seccomp;
  memory->command_policy = command_policy;
  ASSIGN_OR_RETURN(memory->init_stack, ChildStack::Make(kStackBytes));
  ASSIGN_OR_RETURN(memory->payload_stack, ChildStack::Make(kStackBytes));
  if (cgroup != nullptr) {
    for (const auto& file : cgroup->procs_files()) memory->cgroup_procs.push_back(file.string());
  }
  for (const auto& file : memory->cgroup_procs) memory->cgroup_procs_ptrs.push_back(file.c_str());
  memory->cgroup_procs_ptrs.push_back(nullptr);
  return memory;
}

// Random, not the pid: a group a dead supervisor left behind may carry any pid.
StatusOr<std::unique_ptr<Cgroup>> NewCgroup(const CgroupLimits& limits) {
  return Cgroup::Create(StrCat("sandbox-", RandomHex(8)), limits);
}

}  // namespace

StatusOr<std::unique_ptr<WarmSandbox>> WarmSandbox::Start(const SandboxSpec& shape,
                                                          const SeccompProgram* seccomp,
                                                          bool with_cgroup, int command_policy) {
  std::unique_ptr<Cgroup> cgroup;
  if (with_cgroup) {
    ASSIGN_OR_RETURN(cgroup, NewCgroup(CgroupLimits{}));
  }
  ASSIGN_OR_RETURN(auto memory, NewMemory(shape, seccomp, cgroup.get(), command_policy));
  return Clone(std::move(memory), std::move(cgroup));
}

StatusOr<Launched> WarmSandbox::StartLaunched(const SandboxSpec& shape,
                                              const SeccompProgram* seccomp,
                                              const LaunchRequest& request) {
  std::unique_ptr<Cgroup> cgroup;
  if (request.limits.any()) {
    ASSIGN_OR_RETURN(cgroup, NewCgroup(request.limits));
  }
  ASSIGN_OR_RETURN(auto memory, NewMemory(shape, seccomp, cgroup.get(), -1));
  // Everything the launch needs, before the clone: PID 1 and the payload inherit it. Ours go
  // when this returns, so only the sandbox holds the write ends.
  ASSIGN_OR_RETURN(LaunchFds fds, MakeLaunchFds(request));
  WriteCommand(request, *memory);
  memory->inherited.workspace = fds.workspace.Get();
  const auto payload = fds.payload();
  std::copy(payload.begin(), payload.end(), memory->inherited.fds);
  ASSIGN_OR_RETURN(auto warm, Clone(std::move(memory), std::move(cgroup)));
  return warm->HandOver(std::move(fds.out.read), std::move(fds.err.read),
                        std::move(fds.status.read));
}

Launched WarmSandbox::HandOver(UniqueFd stdout_read, UniqueFd stderr_read, UniqueFd status_read) {
  Launched launched;
  launched.pid = pid_;
  launched.stdout_read = std::move(stdout_read);
  launched.stderr_read = std::move(stderr_read);
  launched.failure_read = std::move(status_read);
  launched.cgroup = std::move(cgroup_);
  launched.control = std::move(control_);
  launched.memory = std::move(memory_);
  launched.setup = std::move(setup_);
  released_ = true;
  return launched;
}

StatusOr<std::unique_ptr<WarmSandbox>> WarmSandbox::Clone(std::unique_ptr<SandboxMemory> memory,
                                                          std::unique_ptr<Cgroup> cgroup) {
  std::unique_ptr<WarmSandbox> warm(new WarmSandbox());
  warm->cgroup_ = std::move(cgroup);
  ASSIGN_OR_RETURN(auto control, SocketPair("sandbox control"));
  ASSIGN_OR_RETURN(auto direct, SocketPair("sandbox payload"));
  warm->control_ = std::move(control.first);
  warm->direct_ = std::move(direct.first);
  memory->control = control.second.Get();
  memory->direct = direct.second.Get();
  warm->setup_ = SetupSlot::Take();
  // Three things to do at once on a small machine: our thread makes the network namespace, PID 1
  // mounts, the payload sets itself up and waits for the namespace. Left to the scheduler, PID 1
  // stays on our CPU and only starts when we block. So when no other sandbox is being set up
  // (under load the other CPUs are busy too, and pinning only costs throughput: ~15% measured
  // with two threads starting sandboxes), PID 1 goes to another CPU and the payload to ours,
  // and both get back all of ours before the command runs.
  int other_cpu = -1;
  if (warm->setup_.alone() &&
      ::sched_getaffinity(0, sizeof memory->affinity, &memory->affinity) == 0 &&
      CPU_COUNT(&memory->affinity) > 1) {
    const int here = ::sched_getcpu();
    for (int cpu = 0; cpu < CPU_SETSIZE && other_cpu < 0; ++cpu) {
      if (cpu != here && CPU_ISSET(cpu, &memory->affinity)) other_cpu = cpu;
    }
    if (here >= 0 && other_cpu >= 0) memory->payload_cpu = here;
  }

  // Every signal blocked across clone(), so none reaches a supervisor handler in PID 1 before
  // it restores the defaults; PID 1 keeps them blocked.
  sigset_t all_signals, saved_mask;
  sigfillset(&all_signals);
  ::pthread_sigmask(SIG_SETMASK, &all_signals, &saved_mask);
  // CLONE_VM: no copy of the supervisor's page tables (~0.1 ms, and the copy-on-write faults
  // after it on both sides).
  // PID 1 needs no IPC namespace of its own: the payload makes one for the command.
  constexpr int kFlags = CLONE_VM | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS;
  const int pid = ::clone(RunInit, memory->init_stack.top(), kFlags | SIGCHLD, memory.get());
  const int clone_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &saved_mask, nullptr);
  if (pid < 0) return ErrnoError("clone", "sandbox", clone_errno);
  warm->pid_ = pid;
  warm->memory_ = std::move(memory);
  if (warm->memory_->payload_cpu >= 0) {  // best effort
    cpu_set_t cpu;
    CPU_ZERO(&cpu);
    CPU_SET(other_cpu, &cpu);
    ::sched_setaffinity(pid, sizeof cpu, &cpu);
  }
  // While PID 1 mounts and the payload joins its cgroup: their network namespace (netns.h).
  ASSIGN_OR_RETURN(UniqueFd netns, MakeLoopbackNetns());
  const int netns_fd = netns.Get();
  if (!SendFds(warm->control_.Get(), kNetnsMessage, &netns_fd, 1) ||
      !SendFds(warm->direct_.Get(), kNetnsMessage, &netns_fd, 1)) {
    const int error = errno;
    // PID 1 may have failed setting up, and gone, before we got here: its reason.
    if (auto failure = ReadSetupFailure(warm->control_.Get())) return SetupError(*failure);
    return ErrnoError("sendmsg", "sandbox network namespace", error);
  }
  return warm;
}

WarmSandbox::~WarmSandbox() {
  if (pid_ > 0 && !released_) {
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
}

Status WarmSandbox::WaitReady() {
  ChildFailure failure{};
  const ssize_t n = ReceiveFromInit(control_.Get(), &failure, sizeof failure, 0);
  setup_.Release();
  if (n == 1 && reinterpret_cast<const char*>(&failure)[0] == kReady) return OkStatus();
  if (n == sizeof failure) return SetupError(failure);
  return InternalError("sandbox: the child died while setting up");
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
  if (released_ || !control_.Valid() || memory_ == nullptr) {
    return FailedPreconditionError("sandbox already launched");
  }
  if (request.limits.any()) {
    if (cgroup_ == nullptr) {
      return FailedPreconditionError("sandbox: limits for a sandbox started without a cgroup");
    }
    RETURN_IF_ERROR(cgroup_->SetLimits(request.limits));
  }
  ASSIGN_OR_RETURN(LaunchFds fds, MakeLaunchFds(request));
  // Before either is told: they read it from our memory.
  WriteCommand(request, *memory_);
  // PID 1 first: it attaches the workspace while the payload takes its descriptors.
  const int workspace_fd = fds.workspace.Get();
  const auto to_payload = fds.payload();
  if (!SendFds(control_.Get(), kLaunch, &workspace_fd, 1) ||
      !SendFds(direct_.Get(), kGo, to_payload.data(),
               fds.input.Valid() ? kPayloadFds : kPayloadFds - 1)) {
    return ErrnoError("sendmsg", "sandbox launch");
  }
  direct_.Reset();
  // Only the sandbox holds the write ends now (ours go with `fds`), so the pipes reach EOF when
  // it is done.
  return HandOver(std::move(fds.out.read), std::move(fds.err.read), std::move(fds.status.read));
}

InitReport ReadFinalReport(int control) {
  for (;;) {
    FinalReport report{};
    const ssize_t n = ReceiveFromInit(control, &report, sizeof report, MSG_DONTWAIT);
    if (n < 0 && errno == EAGAIN) return {InitReport::kPending, {}};
    // A cold start's "ready" may come after its command started: not a report.
    if (n == 1 && reinterpret_cast<const char*>(&report)[0] == kReady) continue;
    if (n != sizeof report || report.tag != 'R') return {InitReport::kGone, {}};
    return {InitReport::kReport, report};
  }
}

std::optional<ChildFailure> ReadSetupFailure(int control) {
  // Peek first: a fast command's FinalReport may already follow "ready", and must stay queued.
  ChildFailure failure{};
  const ssize_t n =
      ReceiveFromInit(control, &failure, sizeof failure, MSG_DONTWAIT | MSG_PEEK | MSG_TRUNC);
  const bool ready = n == 1 && reinterpret_cast<const char*>(&failure)[0] == kReady;
  if (!ready && n != sizeof failure) return std::nullopt;
  ReceiveFromInit(control, &failure, sizeof failure, MSG_DONTWAIT);
  if (ready) return std::nullopt;
  return failure;
}

namespace {

// One thread for the whole process, started on first use: sandboxes' PID 1s that reported
// and are exiting, with the cgroups they are still in and the memory they ran in. The process
// waits for it at exit (a few milliseconds at most: each PID 1 is already on its way out), or
// the cgroups of its last runs would stay behind.
class BackgroundReaper {
 public:
  using Remains = std::tuple<pid_t, std::unique_ptr<Cgroup>, std::unique_ptr<SandboxMemory>>;
  static BackgroundReaper& Get() {
    static auto* reaper = [] {
      auto* made = new BackgroundReaper();  // never destroyed: used until exit
      std::atexit(+[] { Get().Drain(); });
      return made;
    }();
    return *reaper;
  }
  void Add(Remains remains) {
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(remains));
      ++pending_;
    }
    wake_.notify_one();
  }
  void Drain() {
    std::unique_lock lock(mu_);
    idle_.wait(lock, [&] { return pending_ == 0; });
  }

 private:
  BackgroundReaper() {
    std::thread([this] { Loop(); }).detach();
  }
  void Loop() {
    for (;;) {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [&] { return !queue_.empty(); });
      auto [pid, cgroup, memory] = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      cgroup.reset();
      memory.reset();
      lock.lock();
      --pending_;
      idle_.notify_all();
    }
  }
  std::mutex mu_;
  std::condition_variable wake_, idle_;
  std::deque<Remains> queue_;
  int pending_ = 0;  // queued or being reaped
};

}  // namespace

void ReapInBackground(pid_t pid, std::unique_ptr<Cgroup> cgroup,
                      std::unique_ptr<SandboxMemory> memory) {
  BackgroundReaper::Get().Add({pid, std::move(cgroup), std::move(memory)});
}

}  // namespace nightshift::sandbox::internal
