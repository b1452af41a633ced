#include "sandbox/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <system_error>
#include <thread>

#include "core/clock.h"
#include "sandbox/cgroups.h"
#include "sandbox/contain_internal.h"
#include "sandbox/seccomp.h"

namespace nightshift::sandbox {

std::string_view EndReasonName(EndReason reason) {
  switch (reason) {
    case EndReason::kExited:
      return "exited";
    case EndReason::kSignaled:
      return "killed by a signal";
    case EndReason::kTimedOut:
      return "timed out";
    case EndReason::kCancelled:
      return "cancelled";
    case EndReason::kOom:
      return "out of memory";
    case EndReason::kPidsLimit:
      return "hit the process limit";
  }
  return "unknown";
}

CancelToken::CancelToken() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

void CancelToken::Cancel() {
  cancelled_.store(true);
  if (!fd_.Valid()) return;
  uint64_t one = 1;
  // Can only fail with EAGAIN when the counter is about to overflow, and then it is readable
  // anyway; the flag is the source of truth, the eventfd only wakes poll().
  ssize_t written = ::write(fd_.Get(), &one, sizeof one);
  (void)written;
}

namespace {

constexpr int64_t kOrphanGraceMs = 200;        // pipes stay open this long after the leader exits
constexpr int64_t kGroupGoneTimeoutMs = 5000;  // give up on a group that survives SIGKILL
constexpr int64_t kGroupPollSleepMs = 5;
constexpr int64_t kNoPidfdPollMs = 10;    // waitpid polling when pidfd_open is unavailable
constexpr int64_t kNoEventfdPollMs = 50;  // IsCancelled polling when the token has no eventfd
constexpr size_t kReadChunkBytes = 64 * 1024;
constexpr int kFinalDrainChunks = 16;  // bound (1 MiB) on draining pipes we are about to close
constexpr int kChildFailedExitCode = 127;
constexpr int kNotFoundExitCode = 127;
constexpr int kCannotRunExitCode = 126;
constexpr const char* kDefaultPath = "/usr/local/bin:/usr/bin:/bin";

constexpr std::array<std::string_view, 2> kStreamNames = {"stdout", "stderr"};

// What the child reports through the close-on-exec pipe when it cannot reach execve().
enum class ChildStep : int32_t { kSetsid = 1, kDeathSignal, kDevNull, kRedirect, kChdir, kExec };

struct ChildFailure {
  int32_t step;
  int32_t error;
};

std::string_view ChildStepName(ChildStep step) {
  switch (step) {
    case ChildStep::kSetsid:
      return "setsid";
    case ChildStep::kDeathSignal:
      return "prctl(PR_SET_PDEATHSIG)";
    case ChildStep::kDevNull:
      return "open /dev/null";
    case ChildStep::kRedirect:
      return "dup2";
    case ChildStep::kChdir:
      return "chdir";
    case ChildStep::kExec:
      return "execve";
  }
  return "child set-up";
}

// Everything the child needs, built before fork(): after fork in a multi-threaded process the
// child may only make async-signal-safe calls (another thread may have held the malloc lock).
struct ExecPlan {
  std::vector<std::string> argv_strings;
  std::vector<std::string> env_strings;
  std::vector<std::string> candidates;  // paths to try with execve, in order
  std::vector<char*> argv;              // null-terminated
  std::vector<char*> envp;              // null-terminated
  std::string working_dir;              // empty = inherit
  pid_t parent_pid = 0;
  struct sigaction default_action = {};
  sigset_t empty_mask = {};
};

Status ValidateSpec(const ProcessSpec& spec) {
  auto has_nul = [](std::string_view s) { return s.find('\0') != std::string_view::npos; };
  if (spec.argv.empty() || spec.argv[0].empty()) {
    return InvalidArgumentError("process spec: argv[0] is empty");
  }
  for (const std::string& arg : spec.argv) {
    if (has_nul(arg)) return InvalidArgumentError("process spec: an argument contains a NUL byte");
  }
  for (const auto& [name, value] : spec.env) {
    if (name.empty() || name.find('=') != std::string::npos || has_nul(name)) {
      return InvalidArgumentError(StrCat("process spec: invalid environment name \"", name, "\""));
    }
    if (has_nul(value)) {
      return InvalidArgumentError(
          StrCat("process spec: environment value of ", name, " contains a NUL byte"));
    }
  }
  if (has_nul(spec.working_dir.native())) {
    return InvalidArgumentError("process spec: working_dir contains a NUL byte");
  }
  if (spec.timeout_ms < 0 || spec.kill_grace_ms < 0) {
    return InvalidArgumentError("process spec: timeout_ms and kill_grace_ms must be >= 0");
  }
  if (spec.max_line_bytes == 0) return InvalidArgumentError("process spec: max_line_bytes is 0");
  return OkStatus();
}

// The execve() candidates for `name`, searched like execvp() but in the PATH the child will
// have, not the supervisor's (glibc's execvpe looks at the caller's environ).
std::vector<std::string> ExecCandidates(const std::string& name,
                                        const std::map<std::string, std::string>& env) {
  if (name.find('/') != std::string::npos) return {name};
  std::string path = kDefaultPath;
  if (auto it = env.find("PATH"); it != env.end()) {
    path = it->second;
  } else if (const char* supervisor_path = std::getenv("PATH"); supervisor_path != nullptr) {
    path = supervisor_path;
  }
  std::vector<std::string> candidates;
  size_t begin = 0;
  for (;;) {
    size_t end = path.find(':', begin);
    std::string dir = path.substr(begin, end == std::string::npos ? end : end - begin);
    // An empty PATH element means the current directory.
    candidates.push_back(dir.empty() ? name : StrCat(dir, dir.back() == '/' ? "" : "/", name));
    if (end == std::string::npos) break;
    begin = end + 1;
  }
  return candidates;
}

ExecPlan MakeExecPlan(const ProcessSpec& spec) {
  ExecPlan plan;
  plan.argv_strings = spec.argv;
  for (const auto& [name, value] : spec.env) plan.env_strings.push_back(StrCat(name, "=", value));
  plan.candidates = ExecCandidates(spec.argv[0], spec.env);
  // Pointers are taken only once the strings will no longer move.
  for (std::string& arg : plan.argv_strings) plan.argv.push_back(arg.data());
  plan.argv.push_back(nullptr);
  for (std::string& var : plan.env_strings) plan.envp.push_back(var.data());
  plan.envp.push_back(nullptr);
  plan.working_dir = spec.working_dir.native();
  plan.parent_pid = ::getpid();
  plan.default_action.sa_handler = SIG_DFL;
  sigemptyset(&plan.default_action.sa_mask);
  sigemptyset(&plan.empty_mask);
  return plan;
}

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

// Moves `fd` above the standard descriptors, so that the child's dup2() onto 0/1/2 cannot
// clobber one of its own sources (possible when the supervisor runs with 0-2 closed).
StatusOr<UniqueFd> AboveStdio(UniqueFd fd) {
  if (fd.Get() > STDERR_FILENO) return fd;
  int moved = ::fcntl(fd.Get(), F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
  if (moved < 0) return ErrnoError("fcntl", "F_DUPFD_CLOEXEC");
  return UniqueFd(moved);
}

StatusOr<Pipe> MakePipe(bool nonblocking_read) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoError("pipe2", "O_CLOEXEC");
  Pipe pipe;
  ASSIGN_OR_RETURN(pipe.read, AboveStdio(UniqueFd(fds[0])));
  ASSIGN_OR_RETURN(pipe.write, AboveStdio(UniqueFd(fds[1])));
  // Only our end: O_NONBLOCK lives on the open file description, which the child's dup2 shares.
  if (nonblocking_read) {
    int flags = ::fcntl(pipe.read.Get(), F_GETFL);
    if (flags < 0 || ::fcntl(pipe.read.Get(), F_SETFL, flags | O_NONBLOCK) != 0) {
      return ErrnoError("fcntl", "O_NONBLOCK");
    }
  }
  return pipe;
}

// --- In the child: async-signal-safe calls only. ---

[[noreturn]] void FailChild(int failure_fd, ChildStep step, int error) {
  ChildFailure failure{static_cast<int32_t>(step), error};
  ssize_t written = ::write(failure_fd, &failure, sizeof failure);  // atomic: < PIPE_BUF
  (void)written;
  ::_exit(kChildFailedExitCode);
}

// dup2(), except that a descriptor already in place must lose its close-on-exec flag (dup2 of
// a descriptor onto itself is a no-op that keeps the flag).
bool MoveFd(int fd, int target) {
  if (fd == target) return ::fcntl(target, F_SETFD, 0) == 0;
  while (::dup2(fd, target) < 0) {
    if (errno != EINTR && errno != EBUSY) return false;
  }
  return true;
}

[[noreturn]] void ExecOrFail(const ExecPlan& plan, int failure_fd);

// stdin from /dev/null, stdout and stderr onto the pipes, and every other descriptor marked
// close-on-exec.
void RedirectStdio(int stdout_fd, int stderr_fd, int failure_fd) {
  int dev_null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (dev_null < 0) FailChild(failure_fd, ChildStep::kDevNull, errno);
  // stdin first: if /dev/null landed on 1 or 2, those are overwritten next.
  if (!MoveFd(dev_null, STDIN_FILENO) || !MoveFd(stdout_fd, STDOUT_FILENO) ||
      !MoveFd(stderr_fd, STDERR_FILENO)) {
    FailChild(failure_fd, ChildStep::kRedirect, errno);
  }
  // Descriptors the supervisor's other threads opened without O_CLOEXEC (sockets, files) must not
  // leak into the command. Before Linux 5.11 this fails with EINVAL and we rely on O_CLOEXEC.
  ::close_range(STDERR_FILENO + 1, ~0U, CLOSE_RANGE_CLOEXEC);
}

[[noreturn]] void RunChild(const ExecPlan& plan, int stdout_fd, int stderr_fd, int failure_fd) {
  // A new session makes us the leader of a new process group (pgid == pid), so the whole tree
  // can be signalled with kill(-pid) and no terminal signals reach it.
  if (::setsid() < 0) FailChild(failure_fd, ChildStep::kSetsid, errno);
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
    FailChild(failure_fd, ChildStep::kDeathSignal, errno);
  // The supervisor may have died between fork() and prctl(): the death signal will never come,
  // and we have been re-parented.
  if (::getppid() != plan.parent_pid) ::_exit(kChildFailedExitCode);

  // Dispositions first, then the mask: a signal that arrived since fork() (all were blocked
  // around it) is delivered with its default action, never to a handler of the supervisor.
  // sigaction() fails harmlessly for SIGKILL, SIGSTOP and glibc's internal signals.
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &plan.default_action, nullptr);
  ::sigprocmask(SIG_SETMASK, &plan.empty_mask, nullptr);

  RedirectStdio(stdout_fd, stderr_fd, failure_fd);

  if (!plan.working_dir.empty() && ::chdir(plan.working_dir.c_str()) != 0) {
    FailChild(failure_fd, ChildStep::kChdir, errno);
  }

  ExecOrFail(plan, failure_fd);
}

[[noreturn]] void ExecOrFail(const ExecPlan& plan, int failure_fd) {
  // Like execvp(): keep looking past entries that do not exist, remember EACCES, stop at any
  // other error. No /bin/sh fallback for ENOEXEC: a script without "#!" is not executable.
  bool saw_eacces = false;
  for (const std::string& candidate : plan.candidates) {
    ::execve(candidate.c_str(), plan.argv.data(), plan.envp.data());
    int error = errno;
    if (error == EACCES) {
      saw_eacces = true;
    } else if (error != ENOENT && error != ENOTDIR && error != ESTALE && error != ENODEV &&
               error != ETIMEDOUT && error != ELOOP && error != ENAMETOOLONG) {
      FailChild(failure_fd, ChildStep::kExec, error);
    }
  }
  FailChild(failure_fd, ChildStep::kExec, saw_eacces ? EACCES : ENOENT);
}

// The signal PID 1 of a sandbox last received, to forward to the rest of its namespace.
volatile sig_atomic_t g_forward_signal = 0;
void RecordSignal(int sig) { g_forward_signal = sig; }

[[noreturn]] void FailContain(int failure_fd, internal::ContainStep step, int error) {
  ChildFailure failure{static_cast<int32_t>(step), error};
  ssize_t written = ::write(failure_fd, &failure, sizeof failure);
  (void)written;
  ::_exit(kChildFailedExitCode);
}

// The child of clone() into fresh mount/PID/net/UTS/IPC/cgroup namespaces: builds the sandbox
// (Contain), then becomes its PID 1: forks the command, reaps every orphan, forwards SIGTERM,
// SIGINT and SIGHUP, and exits with the command's status (128 + signal when it was killed).
[[noreturn]] void RunSandboxChild(const ExecPlan& plan, const internal::PreparedSandbox& prepared,
                                  const SeccompProgram* seccomp, int stdout_fd, int stderr_fd,
                                  int failure_fd, int to_parent, int from_parent) {
  using internal::ContainStep;
  // PID 1 never execs, so close-on-exec protects nothing here: close every descriptor of the
  // supervisor (its data-dir lock, listening socket, database) but our five pipes at once, or
  // a lingering sandbox would hold them.
  {
    int keep[] = {stdout_fd, stderr_fd, failure_fd, to_parent, from_parent};
    std::sort(std::begin(keep), std::end(keep));
    unsigned int next = STDERR_FILENO + 1;
    for (int fd : keep) {
      if (static_cast<unsigned int>(fd) > next)
        ::close_range(next, static_cast<unsigned int>(fd) - 1, 0);
      next = static_cast<unsigned int>(fd) + 1;
    }
    ::close_range(next, ~0U, 0);
  }
  if (::setsid() < 0) FailChild(failure_fd, ChildStep::kSetsid, errno);
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
    FailChild(failure_fd, ChildStep::kDeathSignal, errno);
  }
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &plan.default_action, nullptr);
  ::sigprocmask(SIG_SETMASK, &plan.empty_mask, nullptr);
  // The parent puts us into the cgroup first; EOF instead of "g" means it died meanwhile
  // (getppid() cannot tell: the parent is outside our PID namespace).
  if (internal::ReadSyncByte(from_parent) != 'g') ::_exit(kChildFailedExitCode);
  if (auto failed = internal::Contain(prepared, to_parent, from_parent)) {
    FailContain(failure_fd, failed->first, failed->second);
  }
  ::close(to_parent);
  ::close(from_parent);

  RedirectStdio(stdout_fd, stderr_fd, failure_fd);  // the sandbox's own /dev/null now
  const char* cwd = plan.working_dir.empty() ? "/workspace" : plan.working_dir.c_str();
  if (::chdir(cwd) != 0) FailChild(failure_fd, ChildStep::kChdir, errno);

  // A raw clone: glibc's fork() runs atfork handlers, which are not async-signal-safe.
  const long payload = ::syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
  if (payload < 0) FailContain(failure_fd, ContainStep::kInitFork, errno);
  if (payload == 0) {
    if (seccomp != nullptr) {
      if (int error = InstallSeccompProgram(*seccomp); error != 0) {
        FailContain(failure_fd, ContainStep::kSeccomp, error);
      }
    } else if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
      FailContain(failure_fd, ContainStep::kSeccomp, errno);
    }
    ExecOrFail(plan, failure_fd);
  }

  // PID 1. It holds nothing the supervisor waits on: the status pipe and the output pipes are
  // the command's alone.
  ::close(failure_fd);
  ::close(stdout_fd);
  ::close(stderr_fd);
  int quiet = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (quiet >= 0) {
    ::dup2(quiet, STDOUT_FILENO);
    ::dup2(quiet, STDERR_FILENO);
  }
  struct sigaction forward {};
  forward.sa_handler = RecordSignal;
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) ::sigaction(sig, &forward, nullptr);
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(-1, &status, 0);
    if (r == payload) {
      // Leaving kills whatever else still runs in the namespace.
      ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    }
    if (r < 0 && errno == EINTR) {
      if (int sig = g_forward_signal; sig != 0) {
        g_forward_signal = 0;
        ::kill(-1, sig);
      }
    } else if (r < 0) {
      ::_exit(kChildFailedExitCode);
    }
  }
}

// --- In the supervisor. ---

// Blocks until the child has exec'd (EOF on the close-on-exec pipe) or reported why it could
// not. Waiting here also guarantees setsid() has run before we ever signal the group.
StatusOr<std::optional<ChildFailure>> ReadChildFailure(int fd) {
  ChildFailure failure{};
  auto* bytes = reinterpret_cast<char*>(&failure);
  size_t got = 0;
  while (got < sizeof failure) {
    ssize_t n = ::read(fd, bytes + got, sizeof failure - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("read", "child status pipe");
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got == 0) return std::optional<ChildFailure>();
  if (got != sizeof failure) return InternalError("short read from the child status pipe");
  return std::optional<ChildFailure>(failure);
}

// Parses /proc/<pid>/stat: "pid (comm) S ppid pgrp ...". comm may hold spaces and parentheses.
bool ParseProcStat(const std::string& stat, char* state, pid_t* pgrp) {
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return false;
  int ppid = 0;
  int group = 0;
  if (std::sscanf(stat.c_str() + close + 1, " %c %d %d", state, &ppid, &group) != 3) return false;
  *pgrp = group;
  return true;
}

bool AnyTaskAlive(const std::filesystem::path& proc_dir) {
  std::error_code ec;
  for (std::filesystem::directory_iterator it(proc_dir / "task", ec), end; !ec && it != end;
       it.increment(ec)) {
    StatusOr<std::string> stat = ReadFile(it->path() / "stat");
    char state = 0;
    pid_t pgrp = 0;
    if (stat.ok() && ParseProcStat(*stat, &state, &pgrp) && state != 'Z' && state != 'X') {
      return true;
    }
  }
  return false;
}

// Whether some process of group `pgid` is still running, as opposed to dead and waiting for its
// parent to reap it. kill(-pgid, 0) cannot tell the two apart. When /proc cannot be read we
// cannot tell either, and say yes.
bool GroupHasLiveMember(pid_t pgid) {
  std::error_code ec;
  std::filesystem::directory_iterator it("/proc", ec);
  if (ec) return true;
  for (std::filesystem::directory_iterator end; it != end; it.increment(ec)) {
    if (ec) return true;
    const std::string name = it->path().filename().string();
    if (name.empty() ||
        !std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    StatusOr<std::string> stat = ReadFile(it->path() / "stat");
    char state = 0;
    pid_t pgrp = 0;
    if (!stat.ok() || !ParseProcStat(*stat, &state, &pgrp)) continue;  // exited meanwhile
    if (pgrp != pgid) continue;
    if (state != 'Z' && state != 'X') return true;
    // A zombie thread-group leader whose other threads still run is alive.
    if (AnyTaskAlive(it->path())) return true;
  }
  return false;
}

// The command's leader process (whose pid is also the process group id, after setsid) and, once
// it has exited, its wait status. Until the leader has been reaped and the group is gone, the
// destructor SIGKILLs the group and reaps, so an early return never leaves processes behind.
class ChildProcess {
 public:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() {
    if (!reaped_) {
      // kill(pid) too: if we got here before the child's setsid(), there is no group yet. The
      // pid cannot have been recycled, since we have not reaped it.
      ::kill(-pid_, SIGKILL);
      ::kill(pid_, SIGKILL);
      (void)Wait(/*block=*/true);
    }
    if (!group_done_) (void)KillGroupAndWait(kGroupGoneTimeoutMs);
  }

  // A pidfd becomes readable when the leader exits, so poll() notices without SIGCHLD. Returns
  // false on kernels without pidfd_open (< 5.3); then the caller polls waitpid.
  bool OpenPidfd() {
    // The raw syscall: glibc 2.36's <sys/pidfd.h> lacks extern "C", so its wrapper cannot be
    // linked from C++.
    pidfd_.Reset(static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0)));
    return pidfd_.Valid();
  }
  int pidfd() const { return pidfd_.Get(); }
  bool reaped() const { return reaped_; }
  int wait_status() const { return wait_status_; }
  const struct rusage& rusage() const { return rusage_; }

  // ESRCH (the group is already empty) is fine. After the leader has been reaped the pgid stays
  // reserved as long as any member lives, so this cannot hit an unrelated process.
  void SignalGroup(int sig) const { ::kill(-pid_, sig); }

  // Reaps the leader if it has exited (or waits for that when `block`).
  Status Wait(bool block) {
    while (!reaped_) {
      int status = 0;
      pid_t r = ::wait4(pid_, &status, block ? 0 : WNOHANG, &rusage_);
      if (r == pid_) {
        reaped_ = true;
        wait_status_ = status;
        pidfd_.Reset();
      } else if (r == 0) {
        break;
      } else if (errno != EINTR) {
        int error = errno;
        // Someone else reaped it (SIGCHLD set to SIG_IGN, a waitpid(-1) elsewhere): the pid may
        // be recycled, so stop signalling it.
        reaped_ = true;
        group_done_ = true;
        return ErrnoError("waitpid", StrCat(pid_), error);
      }
    }
    return OkStatus();
  }

  // REQUIRES: the leader has been reaped (else waitpid(-pgid) could take its status).
  // SIGKILLs whatever runs in the group and waits until nothing does.
  Status KillGroupAndWait(int64_t timeout_ms) {
    group_done_ = true;
    const int64_t give_up_ms = MonotonicMs() + timeout_ms;
    for (;;) {
      ReapOwnGroupMembers();
      if (::kill(-pid_, 0) != 0 && errno == ESRCH) return OkStatus();
      if (!GroupHasLiveMember(pid_)) {
        // Only zombies are left; those that became ours since the first pass are reaped now.
        ReapOwnGroupMembers();
        return OkStatus();
      }
      SignalGroup(SIGKILL);
      if (MonotonicMs() >= give_up_ms) {
        return InternalError(
            StrCat("process group ", pid_, " still runs ", timeout_ms, " ms after SIGKILL"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(kGroupPollSleepMs));
    }
  }

 private:
  // Members orphaned inside the group are re-parented to the nearest child subreaper or init.
  // When that is us (the supervisor is PID 1 or a subreaper), nobody else will reap them and
  // they would keep the group alive as zombies.
  void ReapOwnGroupMembers() const {
    while (::waitpid(-pid_, nullptr, WNOHANG) > 0) {
    }
  }

  pid_t pid_;
  UniqueFd pidfd_;
  bool reaped_ = false;
  bool group_done_ = false;
  int wait_status_ = 0;
  struct rusage rusage_ = {};
};

// Turns the command's two byte streams into lines for the sink, enforcing max_line_bytes and
// max_output_bytes.
class LineSplitter {
 public:
  LineSplitter(const ProcessSpec& spec, const LineSink& sink)
      : max_line_bytes_(spec.max_line_bytes),
        max_output_bytes_(spec.max_output_bytes),
        sink_(sink) {}

  void Append(size_t stream, std::string_view bytes) {
    if (truncated_) return;
    std::string_view kept = bytes.substr(0, max_output_bytes_ - total_bytes_);
    total_bytes_ += kept.size();
    Split(stream, kept);
    if (kept.size() < bytes.size()) {
      truncated_ = true;
      // The cut lines will never be completed.
      Finish(0);
      Finish(1);
      Emit(1, StrCat("[nightshift: output truncated after ", max_output_bytes_, " bytes]"));
    }
  }

  // Emits what is left of a line without a final newline.
  void Finish(size_t stream) {
    std::string& partial = partial_[stream];
    if (partial.empty()) return;
    Emit(stream, partial);
    partial.clear();
  }

  bool truncated() const { return truncated_; }

 private:
  void Split(size_t stream, std::string_view bytes) {
    std::string& partial = partial_[stream];
    while (!bytes.empty()) {
      size_t newline = bytes.find('\n');
      std::string_view part = bytes.substr(0, newline);
      // Cut only past max_line_bytes, so a line of exactly max_line_bytes stays whole.
      while (partial.size() + part.size() > max_line_bytes_) {
        size_t take = max_line_bytes_ - partial.size();
        EmitJoined(stream, part.substr(0, take));
        part.remove_prefix(take);
      }
      if (newline == std::string_view::npos) {
        partial.append(part);
        return;
      }
      EmitJoined(stream, part);
      bytes.remove_prefix(newline + 1);
    }
  }

  // Emits partial_[stream] + tail as one line.
  void EmitJoined(size_t stream, std::string_view tail) {
    std::string& partial = partial_[stream];
    if (partial.empty()) {
      Emit(stream, tail);
      return;
    }
    partial.append(tail);
    Emit(stream, partial);
    partial.clear();
  }

  void Emit(size_t stream, std::string_view line) {
    if (sink_) sink_(kStreamNames[stream], line);
  }

  const size_t max_line_bytes_;
  const size_t max_output_bytes_;
  const LineSink& sink_;
  std::array<std::string, 2> partial_;
  size_t total_bytes_ = 0;
  bool truncated_ = false;
};

enum class ReadOutcome { kData, kAgain, kEof };

StatusOr<ReadOutcome> ReadChunk(int fd, size_t stream, std::vector<char>& buffer,
                                LineSplitter& lines) {
  ssize_t n = ::read(fd, buffer.data(), buffer.size());
  if (n > 0) {
    lines.Append(stream, std::string_view(buffer.data(), static_cast<size_t>(n)));
    return ReadOutcome::kData;
  }
  if (n == 0) return ReadOutcome::kEof;
  if (errno == EAGAIN || errno == EINTR) return ReadOutcome::kAgain;
  return ErrnoError("read", StrCat(kStreamNames[stream], " pipe"));
}

int ExitCode(int wait_status) {
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return WEXITSTATUS(wait_status);
}

}  // namespace

// The parent's half of a sandbox start: the child joins the cgroup before it runs anything,
// then gets its uid/gid maps once it has entered its user namespace. An EOF from the child
// means it failed; the status pipe says why.
Status HandshakeSandbox(pid_t pid, const internal::PreparedSandbox& prepared, Cgroup* cgroup,
                        int to_child, int from_child) {
  if (cgroup != nullptr) RETURN_IF_ERROR(cgroup->AddProcess(pid));
  if (::write(to_child, "g", 1) != 1) return OkStatus();
  char c = 0;
  ssize_t n;
  while ((n = ::read(from_child, &c, 1)) < 0 && errno == EINTR) {
  }
  if (n != 1 || c != 'u') return OkStatus();
  const std::string proc = StrCat("/proc/", pid, "/");
  // setgroups must be denied before an unprivileged gid_map would be accepted; for root it
  // also keeps the sandbox from dropping into supplementary groups it was never given.
  for (const auto& [file, content] : std::vector<std::pair<std::string, std::string>>{
           {"setgroups", "deny"}, {"uid_map", prepared.uid_map}, {"gid_map", prepared.gid_map}}) {
    UniqueFd fd(::open((proc + file).c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd.Valid() ||
        ::write(fd.Get(), content.data(), content.size()) != static_cast<ssize_t>(content.size())) {
      return ErrnoError("write", proc + file);
    }
  }
  if (::write(to_child, "m", 1) != 1) return ErrnoError("write", "sandbox sync pipe");
  return OkStatus();
}

StatusOr<ProcessResult> RunProcess(const ProcessSpec& spec, const LineSink& sink,
                                   const CancelToken* cancel) {
  RETURN_IF_ERROR(ValidateSpec(spec));
  const int64_t start_ms = MonotonicMs();
  ProcessResult result;
  if (cancel != nullptr && cancel->IsCancelled()) {
    result.reason = EndReason::kCancelled;
    result.exit_code = 128 + SIGKILL;
    return result;
  }

  // A sandbox is prepared here, in the parent: the child may not allocate.
  std::unique_ptr<internal::PreparedSandbox> prepared;
  std::unique_ptr<Cgroup> cgroup;
  std::optional<SeccompProgram> seccomp;
  Pipe to_child, from_child;
  struct RemoveStaging {
    internal::PreparedSandbox* p = nullptr;
    ~RemoveStaging() {
      if (p) internal::RemovePrepared(*p);
    }
  } remove_staging;
  if (spec.sandbox) {
    ASSIGN_OR_RETURN(prepared, internal::PrepareSandbox(*spec.sandbox));
    remove_staging.p = prepared.get();
    const CgroupLimits& limits = spec.sandbox->limits;
    if (limits.memory_bytes > 0 || limits.pids > 0 || limits.cpus > 0) {
      ASSIGN_OR_RETURN(cgroup, Cgroup::Create(prepared->staging.filename().string(), limits));
    }
    if (spec.sandbox->seccomp) {
      // The filter is the same for every sandbox: compile it once (~1 ms each time otherwise).
      static const auto* compiled = new StatusOr<SeccompProgram>(BuildDefaultSeccompProgram());
      if (!compiled->ok()) return compiled->status();
      seccomp = **compiled;
    }
    ASSIGN_OR_RETURN(to_child, MakePipe(/*nonblocking_read=*/false));
    ASSIGN_OR_RETURN(from_child, MakePipe(/*nonblocking_read=*/false));
  }

  const ExecPlan plan = MakeExecPlan(spec);
  ASSIGN_OR_RETURN(Pipe out, MakePipe(/*nonblocking_read=*/true));
  ASSIGN_OR_RETURN(Pipe err, MakePipe(/*nonblocking_read=*/true));
  ASSIGN_OR_RETURN(Pipe failure, MakePipe(/*nonblocking_read=*/false));

  // Block every signal across fork() so that none is handled in the child by one of the
  // supervisor's handlers before the child has restored the default dispositions.
  sigset_t all_signals;
  sigset_t saved_mask;
  sigfillset(&all_signals);
  ::pthread_sigmask(SIG_SETMASK, &all_signals, &saved_mask);
  pid_t pid = 0;
  if (prepared) {
    constexpr unsigned long kNamespaces =
        CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP;
    pid = static_cast<pid_t>(::syscall(SYS_clone, kNamespaces | SIGCHLD, 0, 0, 0, 0));
    if (pid == 0) {
      RunSandboxChild(plan, *prepared, seccomp ? &*seccomp : nullptr, out.write.Get(),
                      err.write.Get(), failure.write.Get(), from_child.write.Get(),
                      to_child.read.Get());
    }
  } else {
    pid = ::fork();
    if (pid == 0) RunChild(plan, out.write.Get(), err.write.Get(), failure.write.Get());
  }
  const int fork_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &saved_mask, nullptr);
  if (pid < 0) return ErrnoError("fork", spec.argv[0], fork_errno);

  ChildProcess child(pid);
  // Our copies of the write ends must go, or the pipes would never reach EOF.
  out.write.Reset();
  err.write.Reset();
  failure.write.Reset();
  if (prepared) {
    to_child.read.Reset();
    from_child.write.Reset();
    Status handshake =
        HandshakeSandbox(pid, *prepared, cgroup.get(), to_child.write.Get(), from_child.read.Get());
    to_child.write.Reset();
    from_child.read.Reset();
    if (!handshake.ok()) return handshake;  // ~ChildProcess kills the child
  }

  ASSIGN_OR_RETURN(std::optional<ChildFailure> child_failure, ReadChildFailure(failure.read.Get()));
  failure.read.Reset();
  if (child_failure.has_value()) {
    RETURN_IF_ERROR(child.Wait(/*block=*/true));
    RETURN_IF_ERROR(child.KillGroupAndWait(kGroupGoneTimeoutMs));
    const auto step = static_cast<ChildStep>(child_failure->step);
    const int error = child_failure->error;
    std::string line;
    if (step == ChildStep::kExec && error == ENOENT) {
      line = StrCat("command not found: ", spec.argv[0]);
      result.exit_code = kNotFoundExitCode;
    } else if (step == ChildStep::kExec && error == EACCES) {
      line = StrCat("permission denied: ", spec.argv[0]);
      result.exit_code = kCannotRunExitCode;
    } else if (step == ChildStep::kExec) {
      line = ErrnoError("cannot execute", spec.argv[0], error).message();
      result.exit_code = kCannotRunExitCode;
    } else if (static_cast<int32_t>(step) >=
               static_cast<int32_t>(internal::ContainStep::kMountPrivate)) {
      return ErrnoError(
          StrCat("sandbox: ", internal::ContainStepName(static_cast<internal::ContainStep>(step))),
          StrCat("for ", spec.argv[0]), error);
    } else if (step == ChildStep::kChdir) {
      if (spec.sandbox) {
        line =
            ErrnoError("cannot change directory to",
                       spec.working_dir.empty() ? "/workspace" : spec.working_dir.string(), error)
                .message();
        if (error == EACCES) {
          line += StrCat(" (the sandbox runs as host uid ", spec.sandbox->host_uid,
                         ", which needs access to ", spec.sandbox->workspace.string(), ")");
        }
      } else {
        line = ErrnoError("cannot change directory to", spec.working_dir.string(), error).message();
      }
      result.exit_code = kCannotRunExitCode;
    } else {
      return ErrnoError(ChildStepName(step), StrCat("in the child for ", spec.argv[0]), error);
    }
    if (sink) sink("stderr", line);
    result.wall_ms = MonotonicMs() - start_ms;
    return result;
  }

  const bool have_pidfd = child.OpenPidfd();
  LineSplitter lines(spec, sink);
  std::array<UniqueFd, 2> pipes = {std::move(out.read), std::move(err.read)};
  std::vector<char> buffer(kReadChunkBytes);

  // 0 = no deadline (a plain integer: GCC's -Wmaybe-uninitialized misfires on optional here).
  const int64_t deadline_ms = spec.timeout_ms > 0 ? start_ms + spec.timeout_ms : 0;
  std::optional<EndReason> stop_reason;  // set when we start stopping the group
  int64_t term_sent_ms = 0;
  bool kill_sent = false;
  std::optional<int64_t> orphan_grace_start_ms;
  bool cancel_seen = false;

  for (;;) {
    const int64_t now_ms = MonotonicMs();
    if (!child.reaped()) RETURN_IF_ERROR(child.Wait(/*block=*/false));
    if (!cancel_seen && cancel != nullptr && cancel->IsCancelled()) cancel_seen = true;

    // A deadline or cancel that comes after the leader's own exit changes nothing but the grace.
    if (!child.reaped() && !stop_reason.has_value()) {
      if (cancel_seen) {
        stop_reason = EndReason::kCancelled;
      } else if (deadline_ms > 0 && now_ms >= deadline_ms) {
        stop_reason = EndReason::kTimedOut;
      }
      if (stop_reason.has_value()) {
        child.SignalGroup(SIGTERM);
        term_sent_ms = now_ms;
      }
    }
    if (stop_reason.has_value() && !kill_sent && now_ms >= term_sent_ms + spec.kill_grace_ms) {
      child.SignalGroup(SIGKILL);
      kill_sent = true;
    }

    if (child.reaped()) {
      if (!pipes[0].Valid() && !pipes[1].Valid()) break;
      // Something other than the leader holds the pipes: group members it left behind, or
      // processes that escaped the group. Waiting for EOF could take forever.
      bool close_pipes = false;
      if (stop_reason.has_value()) {
        // Once all got SIGKILL, nothing more will be written: what is in the pipes is final.
        close_pipes = kill_sent;
      } else {
        if (!orphan_grace_start_ms.has_value()) orphan_grace_start_ms = now_ms;
        close_pipes = cancel_seen || now_ms >= *orphan_grace_start_ms + kOrphanGraceMs;
      }
      if (close_pipes) {
        child.SignalGroup(SIGKILL);  // before draining, so the drained output is complete
        for (size_t i = 0; i < pipes.size(); ++i) {
          if (!pipes[i].Valid()) continue;
          // Bounded: a writer that escaped the group may never stop.
          for (int chunk = 0; chunk < kFinalDrainChunks; ++chunk) {
            ASSIGN_OR_RETURN(ReadOutcome outcome, ReadChunk(pipes[i].Get(), i, buffer, lines));
            if (outcome != ReadOutcome::kData) break;
          }
          lines.Finish(i);
          pipes[i].Reset();
        }
        break;
      }
    }

    // Sleep until output, the leader's exit, a cancel, or the next point in time we act on.
    int64_t wait_ms = -1;
    auto wake_at = [&](int64_t at_ms) {
      int64_t delay = std::max<int64_t>(0, at_ms - now_ms);
      wait_ms = wait_ms < 0 ? delay : std::min(wait_ms, delay);
    };
    if (!child.reaped() && !stop_reason.has_value() && deadline_ms > 0) {
      wake_at(deadline_ms);
    }
    if (stop_reason.has_value() && !kill_sent) wake_at(term_sent_ms + spec.kill_grace_ms);
    if (orphan_grace_start_ms.has_value()) wake_at(*orphan_grace_start_ms + kOrphanGraceMs);
    if (!child.reaped() && !have_pidfd) wake_at(now_ms + kNoPidfdPollMs);
    if (cancel != nullptr && !cancel_seen && cancel->fd() < 0) wake_at(now_ms + kNoEventfdPollMs);

    std::array<pollfd, 4> fds = {};
    fds[0] = {pipes[0].Get(), POLLIN, 0};
    fds[1] = {pipes[1].Get(), POLLIN, 0};
    // The eventfd stays readable once cancelled (we do not drain it: the token may be shared),
    // so it leaves the set once seen.
    fds[2] = {cancel != nullptr && !cancel_seen ? cancel->fd() : -1, POLLIN, 0};
    fds[3] = {child.reaped() ? -1 : child.pidfd(), POLLIN, 0};
    const int timeout = static_cast<int>(std::min<int64_t>(wait_ms, INT_MAX));
    if (::poll(fds.data(), fds.size(), timeout) < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("poll", StrCat("output of ", spec.argv[0]));
    }
    for (size_t i = 0; i < pipes.size(); ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      ASSIGN_OR_RETURN(ReadOutcome outcome, ReadChunk(pipes[i].Get(), i, buffer, lines));
      if (outcome == ReadOutcome::kEof) {
        lines.Finish(i);
        pipes[i].Reset();
      }
    }
  }

  RETURN_IF_ERROR(child.KillGroupAndWait(kGroupGoneTimeoutMs));

  result.exit_code = ExitCode(child.wait_status());
  const struct rusage& usage = child.rusage();
  result.cpu_ms = (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000 +
                  (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1000;
  result.peak_memory_bytes = int64_t{usage.ru_maxrss} * 1024;
  // A sandbox's PID 1 exits with 128 + signal for a killed command.
  const bool killed = WIFSIGNALED(child.wait_status()) ||
                      (prepared && result.exit_code > 128 && result.exit_code < 128 + NSIG);
  if (stop_reason.has_value()) {
    result.reason = *stop_reason;
  } else if (killed) {
    result.reason = EndReason::kSignaled;
  } else {
    result.reason = EndReason::kExited;
  }
  if (cgroup) {
    CgroupUsage cg = cgroup->ReadUsage();
    if (cg.cpu_usec > 0) result.cpu_ms = cg.cpu_usec / 1000;
    if (cg.peak_memory_bytes > 0) result.peak_memory_bytes = cg.peak_memory_bytes;
    if (!stop_reason.has_value() && result.exit_code != 0) {
      if (cg.oom_killed) {
        result.reason = EndReason::kOom;
      } else if (cg.pids_limit_hit) {
        result.reason = EndReason::kPidsLimit;
      }
    }
  }
  result.output_truncated = lines.truncated();
  result.wall_ms = MonotonicMs() - start_ms;
  return result;
}

}  // namespace nightshift::sandbox
