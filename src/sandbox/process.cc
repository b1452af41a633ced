#include "sandbox/process.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
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
#include <span>
#include <system_error>
#include <thread>
#include <utility>

#include "core/clock.h"
#include "sandbox/cgroups.h"
#include "sandbox/contain_internal.h"
#include "sandbox/launch.h"
#include "sandbox/pool.h"
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

using internal::ChildFailure;
using internal::ChildStep;
using internal::ExecOrFail;
using internal::FailChild;
using internal::kChildFailedExitCode;
using internal::RedirectStdio;

namespace {

constexpr int64_t kOrphanGraceMs = 200;        // pipes stay open this long after the leader exits
constexpr int64_t kGroupGoneTimeoutMs = 5000;  // give up on a group that survives SIGKILL
constexpr int64_t kGroupPollSleepMs = 5;
constexpr int64_t kNoPidfdPollMs = 10;    // waitpid polling when pidfd_open is unavailable
constexpr int64_t kNoEventfdPollMs = 50;  // IsCancelled polling when the token has no eventfd
constexpr size_t kReadChunkBytes = 64 * 1024;
constexpr int kFinalDrainChunks = 16;  // bound (1 MiB) on draining pipes we are about to close
constexpr int kNotFoundExitCode = 127;
constexpr int kCannotRunExitCode = 126;
constexpr const char* kDefaultPath = "/usr/local/bin:/usr/bin:/bin";

constexpr std::array<std::string_view, 2> kStreamNames = {"stdout", "stderr"};

// Everything the child needs, built before fork(): after fork in a multi-threaded process the
// child may only make async-signal-safe calls (another thread may have held the malloc lock).
struct ExecPlan {
  std::vector<std::string> argv_strings;
  std::vector<std::string> env_strings;
  std::vector<std::string> candidates;          // paths to try with execve, in order
  std::vector<const char*> candidate_ptrs;      // null-terminated
  std::vector<char*> argv;                      // null-terminated
  std::vector<char*> envp;                      // null-terminated
  std::string working_dir;                      // empty = inherit
  std::string overlay_target, overlay_options;  // a PrivateOverlay, if any
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
  if (spec.private_overlay && spec.sandbox) {
    return InvalidArgumentError("process spec: private_overlay is for plain processes");
  }
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
  for (const std::string& c : plan.candidates) plan.candidate_ptrs.push_back(c.c_str());
  plan.candidate_ptrs.push_back(nullptr);
  for (std::string& arg : plan.argv_strings) plan.argv.push_back(arg.data());
  plan.argv.push_back(nullptr);
  for (std::string& var : plan.env_strings) plan.envp.push_back(var.data());
  plan.envp.push_back(nullptr);
  plan.working_dir = spec.working_dir.native();
  if (spec.private_overlay) {
    const auto& o = *spec.private_overlay;
    std::string lower;
    for (const auto& layer : o.lowers) lower += (lower.empty() ? "" : ":") + layer.string();
    plan.overlay_options = StrCat("lowerdir=", lower, ",upperdir=", o.upper.string(),
                                  ",workdir=", o.work.string(), ",", kOverlayPlainOptions);
    plan.overlay_target = o.target.string();
  }
  plan.parent_pid = ::getpid();
  plan.default_action.sa_handler = SIG_DFL;
  sigemptyset(&plan.default_action.sa_mask);
  sigemptyset(&plan.empty_mask);
  return plan;
}

// --- In the child: async-signal-safe calls only. ---

[[noreturn]] void RunChild(const ExecPlan& plan, int stdin_fd, int stdout_fd, int stderr_fd,
                           int failure_fd) {
  // A new session makes us the leader of a new process group (pgid == pid), so the whole tree
  // can be signalled with kill(-pid) and no terminal signals reach it.
  if (::setsid() < 0) FailChild(failure_fd, int32_t(ChildStep::kSetsid), errno);
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
    FailChild(failure_fd, int32_t(ChildStep::kDeathSignal), errno);
  // The supervisor may have died between fork() and prctl(): the death signal will never come,
  // and we have been re-parented.
  if (::getppid() != plan.parent_pid) ::_exit(kChildFailedExitCode);

  // Dispositions first, then the mask: a signal that arrived since fork() (all were blocked
  // around it) is delivered with its default action, never to a handler of the supervisor.
  // sigaction() fails harmlessly for SIGKILL, SIGSTOP and glibc's internal signals.
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &plan.default_action, nullptr);
  ::sigprocmask(SIG_SETMASK, &plan.empty_mask, nullptr);

  RedirectStdio(stdin_fd, stdout_fd, stderr_fd, failure_fd);

  if (!plan.overlay_target.empty()) {
    if (::unshare(CLONE_NEWNS) != 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("overlay", plan.overlay_target.c_str(), "overlay", MS_NOSUID | MS_NODEV,
                plan.overlay_options.c_str()) != 0) {
      FailChild(failure_fd, int32_t(ChildStep::kMount), errno);
    }
  }
  if (!plan.working_dir.empty() && ::chdir(plan.working_dir.c_str()) != 0) {
    FailChild(failure_fd, int32_t(ChildStep::kChdir), errno);
  }

  ExecOrFail(plan.candidate_ptrs.data(), plan.argv.data(), plan.envp.data(), failure_fd);
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
//
// A sandbox's PID 1 runs in the supervisor's memory (`memory`, launch.h): it is freed only once
// PID 1 has been reaped, here or by the background reaper.
class ChildProcess {
 public:
  explicit ChildProcess(pid_t pid, std::unique_ptr<internal::SandboxMemory> memory = nullptr)
      : pid_(pid), memory_(std::move(memory)) {}
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() {
    if (report_ && !handed_off_) HandOff(nullptr);
    if (handed_off_) return;
    if (!reaped_) {
      // kill(pid) too: if we got here before the child's setsid(), there is no group yet. The
      // pid cannot have been recycled, since we have not reaped it.
      ::kill(-pid_, SIGKILL);
      ::kill(pid_, SIGKILL);
      (void)Wait(/*block=*/true);
    }
    if (!group_done_) (void)KillGroupAndWait(kGroupGoneTimeoutMs);
  }

  // A sandbox's PID 1 reported the command's end with nothing left running (launch.h): the
  // leader counts as reaped, with the reported status and usage, and its group as gone. The
  // process itself is reaped in the background by HandOff.
  void Finished(const internal::FinalReport& report) {
    report_ = true;
    reaped_ = true;
    group_done_ = true;
    wait_status_ = W_EXITCODE(report.exit_code & 0xff, 0);
    rusage_.ru_utime = {report.user_us / 1'000'000, report.user_us % 1'000'000};
    rusage_.ru_stime = {report.system_us / 1'000'000, report.system_us % 1'000'000};
    rusage_.ru_maxrss = report.max_rss_kb;
    pidfd_.Reset();
  }
  bool finished_by_report() const { return report_; }
  void HandOff(std::unique_ptr<Cgroup> cgroup) {
    handed_off_ = true;
    internal::ReapInBackground(pid_, std::move(cgroup), std::move(memory_));
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
  pid_t pid() const { return pid_; }
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
    if (report_) return OkStatus();  // the sandbox said it is empty
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
  std::unique_ptr<internal::SandboxMemory> memory_;  // after the destructor has reaped
  UniqueFd pidfd_;
  bool report_ = false;
  bool handed_off_ = false;
  bool reaped_ = false;
  bool group_done_ = false;
  int wait_status_ = 0;
  struct rusage rusage_ = {};
};

// Turns the command's two byte streams into lines for the sink, enforcing max_line_bytes and
// max_output_bytes.
class LineSplitter {
 public:
  LineSplitter(size_t max_line_bytes, size_t max_output_bytes, const LineSink& sink,
               std::string* raw_stdout)
      : max_line_bytes_(max_line_bytes),
        max_output_bytes_(max_output_bytes),
        sink_(sink),
        raw_stdout_(raw_stdout) {}

  void Append(size_t stream, std::string_view bytes) {
    if (truncated_) return;
    std::string_view kept = bytes.substr(0, max_output_bytes_ - total_bytes_);
    total_bytes_ += kept.size();
    if (stream == 0 && raw_stdout_ != nullptr) {
      raw_stdout_->append(kept);
    } else {
      Split(stream, kept);
    }
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
  std::string* const raw_stdout_;  // stdout kept byte for byte, when asked
  std::array<std::string, 2> partial_;
  size_t total_bytes_ = 0;
  bool truncated_ = false;
};

enum class ReadOutcome { kData, kAgain, kEof };

StatusOr<ReadOutcome> ReadChunk(int fd, size_t stream, std::span<char> buffer,
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

// Tells the pool when a run from it is over: it refills between runs, or once kRefillHold has
// passed (a refill's clone() and mounts would slow a short command on a small machine).
class LaunchGuard {
 public:
  LaunchGuard() = default;
  LaunchGuard(const LaunchGuard&) = delete;
  LaunchGuard& operator=(const LaunchGuard&) = delete;
  ~LaunchGuard() {
    if (pool_ != nullptr) pool_->LaunchDone();
  }
  void Hold(SandboxPool* pool) { pool_ = pool; }
  SandboxPool* Release() { return std::exchange(pool_, nullptr); }

 private:
  SandboxPool* pool_ = nullptr;
};

// A command StartProcess could not execute: what Supervise reports, like a shell would.
struct NotExecuted {
  std::string line;  // the reason, as a "stderr" line
  int exit_code = 0;
};

// The "stderr" line and exit code for a child that failed at `failure` (a step before or at
// exec), or an error for a failure of the supervisor's own set-up.
StatusOr<NotExecuted> DescribeFailure(const ProcessSpec& spec, const ChildFailure& failure) {
  const auto step = static_cast<ChildStep>(failure.step);
  const int error = failure.error;
  if (step == ChildStep::kExec && error == ENOENT) {
    return NotExecuted{StrCat("command not found: ", spec.argv[0]), kNotFoundExitCode};
  }
  if (step == ChildStep::kExec && error == EACCES) {
    return NotExecuted{StrCat("permission denied: ", spec.argv[0]), kCannotRunExitCode};
  }
  if (step == ChildStep::kExec) {
    return NotExecuted{ErrnoError("cannot execute", spec.argv[0], error).message(),
                       kCannotRunExitCode};
  }
  if (static_cast<int32_t>(step) >= static_cast<int32_t>(internal::ContainStep::kMountPrivate)) {
    return ErrnoError(
        StrCat("sandbox: ", internal::ContainStepName(static_cast<internal::ContainStep>(step))),
        StrCat("for ", spec.argv[0]), error);
  }
  if (step != ChildStep::kChdir) {
    return ErrnoError(internal::ChildStepName(step), StrCat("in the child for ", spec.argv[0]),
                      error);
  }
  if (!spec.sandbox) {
    return NotExecuted{
        ErrnoError("cannot change directory to", spec.working_dir.string(), error).message(),
        kCannotRunExitCode};
  }
  std::string line =
      ErrnoError("cannot change directory to",
                 spec.working_dir.empty() ? "/workspace" : spec.working_dir.string(), error)
          .message();
  if (error == EACCES) {
    line += StrCat(" (the sandbox runs as host uid ", spec.sandbox->host_uid,
                   ", which needs access to ", spec.sandbox->workspace.string(), ")");
  }
  return NotExecuted{std::move(line), kCannotRunExitCode};
}

}  // namespace

// Everything a started command holds until Supervise is done with it. Members are destroyed in
// reverse order: `child` first (its destructor kills and reaps whatever is left of the tree),
// then the pipes and the cgroup; the pool hears that the run is over before the spent warm
// sandbox goes.
struct StartedProcess::State {
  State(pid_t pid, std::unique_ptr<internal::SandboxMemory> memory)
      : child(pid, std::move(memory)) {}

  // What supervising needs of the spec.
  std::string command;  // argv[0], for messages
  int64_t timeout_ms = 0;
  int64_t kill_grace_ms = 0;
  size_t max_line_bytes = 0;
  size_t max_output_bytes = 0;
  bool capture_stdout = false;
  bool sandboxed = false;
  bool limits = false;  // sandboxed with cgroup limits
  int64_t start_ms = 0;

  std::optional<NotExecuted> not_executed;  // reaped already; Supervise only reports it
  std::unique_ptr<internal::WarmSandbox> warm;
  LaunchGuard launch_guard;
  std::unique_ptr<Cgroup> cgroup;
  std::array<UniqueFd, 2> pipes;  // stdout, stderr
  UniqueFd sandbox_control;       // the FinalReport of a sandbox's PID 1
  ChildProcess child;
};

StartedProcess::StartedProcess(std::unique_ptr<State> state) : state_(std::move(state)) {}
StartedProcess::StartedProcess(StartedProcess&&) noexcept = default;
StartedProcess& StartedProcess::operator=(StartedProcess&&) noexcept = default;
StartedProcess::~StartedProcess() = default;

pid_t StartedProcess::pid() const { return state_ ? state_->child.pid() : 0; }

StatusOr<StartedProcess> StartProcess(const ProcessSpec& spec) {
  RETURN_IF_ERROR(ValidateSpec(spec));
  const int64_t start_ms = MonotonicMs();
  const ExecPlan plan = MakeExecPlan(spec);
  // Until `state` owns the child, an early return cleans these up (in reverse order).
  std::unique_ptr<internal::WarmSandbox> warm;
  LaunchGuard launch_guard;
  std::unique_ptr<Cgroup> cgroup;
  UniqueFd stdout_read, stderr_read, failure_read;
  UniqueFd sandbox_control;
  std::unique_ptr<internal::SandboxMemory> sandbox_memory;
  internal::SetupSlot setup_slot;
  pid_t pid = 0;
  if (spec.sandbox) {
    if (spec.pool != nullptr) warm = spec.pool->Take(*spec.sandbox);
    if (warm) launch_guard.Hold(spec.pool);
    internal::LaunchRequest request{
        .argv = plan.argv_strings,
        .env = plan.env_strings,
        .candidates = plan.candidates,
        .working_dir = plan.working_dir,
        .hostname = spec.sandbox->hostname.substr(0, 64),
        .workspace = spec.sandbox->workspace,
        .workspace_layers = spec.sandbox->workspace_layers,
        .workspace_work = spec.sandbox->workspace_work,
        .workspace_read_only = spec.sandbox->workspace_read_only,
        .workspace_masks = internal::WorkspaceMasks(*spec.sandbox),
        .limits = spec.sandbox->limits,
        .stdin_data = spec.stdin_data,
    };
    internal::Launched launched;
    if (warm) {
      ASSIGN_OR_RETURN(launched, warm->Launch(request));
    } else {
      // Cold: started and launched in one, without waiting for the set-up (launch.h).
      const SeccompProgram* seccomp = spec.sandbox->seccomp ? &DefaultSeccompProgram() : nullptr;
      ASSIGN_OR_RETURN(launched,
                       internal::WarmSandbox::StartLaunched(*spec.sandbox, seccomp, request));
    }
    pid = launched.pid;
    sandbox_memory = std::move(launched.memory);
    setup_slot = std::move(launched.setup);
    cgroup = std::move(launched.cgroup);
    stdout_read = std::move(launched.stdout_read);
    stderr_read = std::move(launched.stderr_read);
    failure_read = std::move(launched.failure_read);
    sandbox_control = std::move(launched.control);
  } else {
    ASSIGN_OR_RETURN(Pipe out, MakePipe(/*nonblocking_read=*/true));
    ASSIGN_OR_RETURN(Pipe err, MakePipe(/*nonblocking_read=*/true));
    ASSIGN_OR_RETURN(Pipe failure, MakePipe(/*nonblocking_read=*/false));
    UniqueFd input;  // stdin_data in a memfd, read from its start
    if (!spec.stdin_data.empty()) {
      ASSIGN_OR_RETURN(input, MakeMemfdWith("nightshift-stdin", spec.stdin_data));
    }
    // Block every signal across fork() so that none is handled in the child by one of the
    // supervisor's handlers before the child has restored the default dispositions.
    sigset_t all_signals;
    sigset_t saved_mask;
    sigfillset(&all_signals);
    ::pthread_sigmask(SIG_SETMASK, &all_signals, &saved_mask);
    pid = ::fork();
    if (pid == 0) {
      RunChild(plan, input.Get(), out.write.Get(), err.write.Get(), failure.write.Get());
    }
    const int fork_errno = errno;
    ::pthread_sigmask(SIG_SETMASK, &saved_mask, nullptr);
    if (pid < 0) return ErrnoError("fork", spec.argv[0], fork_errno);
    // Our copies of the write ends must go, or the pipes would never reach EOF.
    stdout_read = std::move(out.read);
    stderr_read = std::move(err.read);
    failure_read = std::move(failure.read);
  }
  auto state = std::make_unique<StartedProcess::State>(pid, std::move(sandbox_memory));
  state->command = spec.argv[0];
  state->timeout_ms = spec.timeout_ms;
  state->kill_grace_ms = spec.kill_grace_ms;
  state->max_line_bytes = spec.max_line_bytes;
  state->max_output_bytes = spec.max_output_bytes;
  state->capture_stdout = spec.capture_stdout;
  state->sandboxed = spec.sandbox.has_value();
  state->limits = spec.sandbox && spec.sandbox->limits.any();
  state->start_ms = start_ms;
  state->warm = std::move(warm);
  state->launch_guard.Hold(launch_guard.Release());
  state->cgroup = std::move(cgroup);
  state->pipes = {std::move(stdout_read), std::move(stderr_read)};
  state->sandbox_control = std::move(sandbox_control);
  ChildProcess& child = state->child;

  auto read_failure = ReadChildFailure(failure_read.Get());
  failure_read.Reset();
  setup_slot.Release();
  if (!read_failure.ok()) return read_failure.status();
  std::optional<ChildFailure> child_failure = *read_failure;
  // The status pipe also reaches EOF when a sandbox died setting up: PID 1 said why first.
  if (!child_failure && state->sandbox_control.Valid()) {
    child_failure = internal::ReadSetupFailure(state->sandbox_control.Get());
  }
  if (child_failure.has_value()) {
    RETURN_IF_ERROR(child.Wait(/*block=*/true));
    RETURN_IF_ERROR(child.KillGroupAndWait(kGroupGoneTimeoutMs));
    ASSIGN_OR_RETURN(state->not_executed, DescribeFailure(spec, *child_failure));
  }
  return StartedProcess(std::move(state));
}

StatusOr<ProcessResult> Supervise(StartedProcess&& started, const LineSink& sink,
                                  const CancelToken* cancel) {
  // Ours from here: whatever is left of it goes with this call.
  const std::unique_ptr<StartedProcess::State> state = std::move(started.state_);
  NS_CHECK(state != nullptr);  // not a moved-from StartedProcess
  ProcessResult result;
  if (state->not_executed.has_value()) {
    if (sink) sink("stderr", state->not_executed->line);
    result.exit_code = state->not_executed->exit_code;
    result.wall_ms = MonotonicMs() - state->start_ms;
    return result;
  }

  ChildProcess& child = state->child;
  std::array<UniqueFd, 2>& pipes = state->pipes;
  UniqueFd& sandbox_control = state->sandbox_control;
  const bool have_pidfd = child.OpenPidfd();
  LineSplitter lines(state->max_line_bytes, state->max_output_bytes, sink,
                     state->capture_stdout ? &result.stdout_data : nullptr);
  // Not zeroed: read() writes what is used, and a command that prints little touches few pages.
  const auto buffer_memory = std::make_unique_for_overwrite<char[]>(kReadChunkBytes);
  const std::span<char> buffer(buffer_memory.get(), kReadChunkBytes);

  // 0 = no deadline (a plain integer: GCC's -Wmaybe-uninitialized misfires on optional here).
  const int64_t deadline_ms = state->timeout_ms > 0 ? state->start_ms + state->timeout_ms : 0;
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
    if (stop_reason.has_value() && !kill_sent && now_ms >= term_sent_ms + state->kill_grace_ms) {
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
    if (stop_reason.has_value() && !kill_sent) wake_at(term_sent_ms + state->kill_grace_ms);
    if (orphan_grace_start_ms.has_value()) wake_at(*orphan_grace_start_ms + kOrphanGraceMs);
    if (!child.reaped() && !have_pidfd) wake_at(now_ms + kNoPidfdPollMs);
    if (cancel != nullptr && !cancel_seen && cancel->fd() < 0) wake_at(now_ms + kNoEventfdPollMs);

    std::array<pollfd, 5> fds = {};
    fds[0] = {pipes[0].Get(), POLLIN, 0};
    fds[1] = {pipes[1].Get(), POLLIN, 0};
    // The eventfd stays readable once cancelled (we do not drain it: the token may be shared),
    // so it leaves the set once seen.
    fds[2] = {cancel != nullptr && !cancel_seen ? cancel->fd() : -1, POLLIN, 0};
    fds[3] = {child.reaped() ? -1 : child.pidfd(), POLLIN, 0};
    fds[4] = {child.reaped() ? -1 : sandbox_control.Get(), POLLIN, 0};
    const int timeout = static_cast<int>(std::min<int64_t>(wait_ms, INT_MAX));
    if (::poll(fds.data(), fds.size(), timeout) < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("poll", StrCat("output of ", state->command));
    }
    if (fds[4].fd >= 0 && fds[4].revents != 0) {
      // The command is done and the sandbox empty: its PID 1 is on its way out.
      const internal::InitReport read = internal::ReadFinalReport(sandbox_control.Get());
      if (read.state == internal::InitReport::kReport) child.Finished(read.report);
      if (read.state != internal::InitReport::kPending) sandbox_control.Reset();
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
                      (state->sandboxed && result.exit_code > 128 && result.exit_code < 128 + NSIG);
  if (stop_reason.has_value()) {
    result.reason = *stop_reason;
  } else if (killed) {
    result.reason = EndReason::kSignaled;
  } else {
    result.reason = EndReason::kExited;
  }
  if (state->cgroup && state->limits) {
    // Read before the hand-off below: the cgroup goes once its last process (PID 1) has. (A
    // pooled sandbox has a cgroup even for a run without limits; such a run reports what a cold
    // one does, from PID 1's report.) Whether a limit struck matters only for a failed command.
    const bool failed = !stop_reason.has_value() && result.exit_code != 0;
    CgroupUsage cg = state->cgroup->ReadUsage(/*limit_events=*/failed);
    if (cg.cpu_usec > 0) result.cpu_ms = cg.cpu_usec / 1000;
    if (cg.peak_memory_bytes > 0) result.peak_memory_bytes = cg.peak_memory_bytes;
    if (failed) {
      if (cg.oom_killed) {
        result.reason = EndReason::kOom;
      } else if (cg.pids_limit_hit) {
        result.reason = EndReason::kPidsLimit;
      }
    }
  }
  if (child.finished_by_report()) child.HandOff(std::move(state->cgroup));
  result.output_truncated = lines.truncated();
  result.wall_ms = MonotonicMs() - state->start_ms;
  return result;
}

StatusOr<ProcessResult> RunProcess(const ProcessSpec& spec, const LineSink& sink,
                                   const CancelToken* cancel) {
  RETURN_IF_ERROR(ValidateSpec(spec));
  if (cancel != nullptr && cancel->IsCancelled()) {
    ProcessResult result;
    result.reason = EndReason::kCancelled;
    result.exit_code = 128 + SIGKILL;
    return result;
  }
  ASSIGN_OR_RETURN(StartedProcess started, StartProcess(spec));
  return Supervise(std::move(started), sink, cancel);
}

}  // namespace nightshift::sandbox
