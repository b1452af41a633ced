#include "sandbox/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/fs.h"
#include "gtest/gtest.h"

namespace nightshift::sandbox {
namespace {

// Lines as the sink saw them, per stream and in arrival order.
struct Output {
  std::vector<std::string> out;
  std::vector<std::string> err;

  LineSink Sink() {
    return [this](std::string_view stream, std::string_view line) {
      if (stream == "stdout") {
        out.emplace_back(line);
      } else {
        ASSERT_EQ(stream, "stderr");
        err.emplace_back(line);
      }
    };
  }
};

ProcessSpec Spec(std::vector<std::string> argv) {
  ProcessSpec spec;
  spec.argv = std::move(argv);
  const char* path = std::getenv("PATH");
  spec.env["PATH"] = path != nullptr ? path : "/usr/bin:/bin";
  return spec;
}

// An independent check from /proc: is any process of group `pgid` still running (not a zombie)?
bool GroupHasRunningProcess(pid_t pgid) {
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/proc", ec), end; !ec && it != end;
       it.increment(ec)) {
    auto stat = ReadFile(it->path() / "stat");
    if (!stat.ok()) continue;
    size_t close = stat->rfind(')');
    if (close == std::string::npos) continue;
    char state = 0;
    int ppid = 0;
    int pgrp = 0;
    if (std::sscanf(stat->c_str() + close + 1, " %c %d %d", &state, &ppid, &pgrp) != 3) continue;
    if (pgrp == pgid && state != 'Z' && state != 'X') return true;
  }
  return false;
}

// kill(-pgid, 0) fails with ESRCH once the last member has also been reaped, which for members
// re-parented to init is up to init; wait for it a bounded time.
bool GroupGoneWithin(pid_t pgid, int64_t timeout_ms) {
  const int64_t give_up = MonotonicMs() + timeout_ms;
  for (;;) {
    if (::kill(-pgid, 0) != 0 && errno == ESRCH) return true;
    if (MonotonicMs() >= give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// The first stdout line of the commands below is `echo $$`: the shell's pid, which is the
// process group id since the shell is the leader.
pid_t PgidFrom(const Output& output) {
  if (output.out.empty()) return 0;
  return static_cast<pid_t>(std::stol(output.out[0]));
}

// A shell that ignores SIGTERM, as do its two children (ignored dispositions survive exec).
constexpr const char* kTermIgnoringTree = "echo $$; trap '' TERM; sleep 100 & sleep 100; wait";

class TempDir {
 public:
  TempDir() {
    auto dir = MakeTempDir("ns-process-test");
    EXPECT_TRUE(dir.ok()) << dir.status();
    if (dir.ok()) path_ = *dir;
  }
  ~TempDir() { RemoveTreeQuietly(path_); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

TEST(RunProcess, StreamsLinesInOrderPerStream) {
  Output output;
  auto result =
      RunProcess(Spec({"sh", "-c",
                       "echo out1; echo err1 >&2; echo out2; echo err2 >&2; echo; printf partial"}),
                 output.Sink());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason, EndReason::kExited);
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_FALSE(result->output_truncated);
  EXPECT_EQ(output.out, (std::vector<std::string>{"out1", "out2", "", "partial"}));
  EXPECT_EQ(output.err, (std::vector<std::string>{"err1", "err2"}));
}

TEST(RunProcess, PropagatesExitCode) {
  Output output;
  auto result = RunProcess(Spec({"sh", "-c", "exit 3"}), output.Sink());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason, EndReason::kExited);
  EXPECT_EQ(result->exit_code, 3);
  EXPECT_GE(result->wall_ms, 0);
}

TEST(RunProcess, ReportsDeathBySignal) {
  Output output;
  auto result = RunProcess(Spec({"sh", "-c", "kill -KILL $$"}), output.Sink());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason, EndReason::kSignaled);
  EXPECT_EQ(result->exit_code, 128 + SIGKILL);
}

TEST(RunProcess, MissingCommandExits127) {
  Output output;
  auto result = RunProcess(Spec({"nightshift-no-such-command", "arg"}), output.Sink());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason, EndReason::kExited);
  EXPECT_EQ(result->exit_code, 127);
  EXPECT_TRUE(output.out.empty());
  EXPECT_EQ(output.err,
            (std::vector<std::string>{"command not found: nightshift-no-such-command"}));
}

TEST(RunProcess, NonExecutableFileExits126) {
  TempDir dir;
  auto script = dir.path() / "script";
  ASSERT_TRUE(WriteFileAtomic(script, "#!/bin/sh\necho ran\n", 0644).ok());
  Output output;
  auto result = RunProcess(Spec({script.string()}), output.Sink());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 126);
  EXPECT_TRUE(output.out.empty());
  EXPECT_EQ(output.err, (std::vector<std::string>{"permission denied: " + script.string()}));
}

TEST(RunProcess, LooksCommandUpInTheChildsPath) {
  TempDir dir;
  ASSERT_TRUE(
      CreateFileExclusive(dir.path() / "nightshift-probe", "#!/bin/sh\necho probe\n", 0755).ok());
  ProcessSpec spec = Spec({"nightshift-probe"});
  spec.env["PATH"] = dir.path().string() + ":/usr/bin:/bin";
  Output output;
  auto result = RunProcess(spec, output.Sink());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_EQ(output.out, (std::vector<std::string>{"probe"}));
}

TEST(RunProcess, EnvironmentIsExactlyTheSpec) {
  ProcessSpec spec;
  spec.argv = {"env"};  // found through the supervisor's PATH, since env has none
  spec.env = {{"A", "1"}, {"B", "two words"}};
  Output output;
  auto result = RunProcess(spec, output.Sink());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_EQ(output.out, (std::vector<std::string>{"A=1", "B=two words"}));
  EXPECT_TRUE(output.err.empty());
}

TEST(RunProcess, HonoursWorkingDir) {
  TempDir dir;
  ProcessSpec spec = Spec({"pwd"});
  spec.working_dir = dir.path();
  Output output;
  auto result = RunProcess(spec, output.Sink());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_EQ(output.out,
            (std::vector<std::string>{std::filesystem::canonical(dir.path()).string()}));
}

TEST(RunProcess, MissingWorkingDirExits126) {
  ProcessSpec spec = Spec({"pwd"});
  spec.working_dir = "/nonexistent/nightshift-dir";
  Output output;
  auto result = RunProcess(spec, output.Sink());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 126);
  EXPECT_TRUE(output.out.empty());
  ASSERT_EQ(output.err.size(), 1u);
  EXPECT_EQ(output.err[0].rfind("cannot change directory to /nonexistent/nightshift-dir: ", 0), 0u)
      << output.err[0];
}

TEST(RunProcess, StdinIsDevNull) {
  Output output;
  auto result = RunProcess(Spec({"readlink", "/proc/self/fd/0"}), output.Sink());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(output.out, (std::vector<std::string>{"/dev/null"}));
}

TEST(RunProcess, InheritsNoDescriptorsBeyondStdio) {
  UniqueFd leaked(::fcntl(STDERR_FILENO, F_DUPFD, 50));  // deliberately without FD_CLOEXEC
  ASSERT_TRUE(leaked.Valid());
  Output output;
  auto result = RunProcess(Spec({"ls", "/proc/self/fd"}), output.Sink());
  ASSERT_TRUE(result.ok()) << result.status();
  // 0-2, plus the descriptor ls itself opens to list the directory.
  EXPECT_EQ(output.out, (std::vector<std::string>{"0", "1", "2", "3"}));
}

TEST(RunProcess, ResetsSignalMaskAndDispositions) {
  struct sigaction ignore = {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction saved_action = {};
  ASSERT_EQ(::sigaction(SIGUSR1, &ignore, &saved_action), 0);
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR2);
  sigset_t saved_mask;
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &block, &saved_mask), 0);

  Output output;
  auto result =
      RunProcess(Spec({"grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status"}), output.Sink());

  ::pthread_sigmask(SIG_SETMASK, &saved_mask, nullptr);
  ::sigaction(SIGUSR1, &saved_action, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(output.out.size(), 2u);
  EXPECT_EQ(output.out[0], "SigBlk:\t0000000000000000");
  // Signals 32 and 33 are glibc's own (thread cancellation, setxid): glibc's sigaction() refuses
  // to touch them, so an ignored disposition inherited from whoever started the test stays.
  // Everything a program can set must be back to default.
  ASSERT_TRUE(output.out[1].starts_with("SigIgn:\t")) << output.out[1];
  uint64_t ignored = std::stoull(output.out[1].substr(8), nullptr, 16);
  constexpr uint64_t kGlibcInternal = (uint64_t{1} << 31) | (uint64_t{1} << 32);
  EXPECT_EQ(ignored & ~kGlibcInternal, 0u) << output.out[1];
}

TEST(RunProcess, SplitsLongLines) {
  ProcessSpec spec =
      Spec({"sh", "-c", "printf '%s\\n%s\\n%s' 0123456789ABCDEFGHIJKLMNO 0123456789 tail"});
  spec.max_line_bytes = 10;
  Output output;
  auto result = RunProcess(spec, output.Sink());
  ASSERT_TRUE(result.ok()) << result.status();
  // A line of exactly max_line_bytes stays whole; the final partial line arrives at EOF.
  EXPECT_EQ(output.out,
            (std::vector<std::string>{"0123456789", "ABCDEFGHIJ", "KLMNO", "0123456789", "tail"}));
}

TEST(RunProcess, TruncatesOutputPastTheCapAndKeepsDraining) {
  ProcessSpec spec = Spec({"seq", "1", "200000"});  // ~1.3 MB: far more than a pipe holds
  spec.max_output_bytes = 1000;
  spec.timeout_ms = 20'000;
  Output output;
  auto result = RunProcess(spec, output.Sink());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason, EndReason::kExited);
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_TRUE(result->output_truncated);
  EXPECT_EQ(output.err,
            (std::vector<std::string>{"[nightshift: output truncated after 1000 bytes]"}));
  size_t bytes = 0;
  for (size_t i = 0; i < output.out.size(); ++i) {
    bytes += output.out[i].size() + 1;
    // The last line may have been cut at the cap.
    if (i + 1 < output.out.size()) {
      EXPECT_EQ(output.out[i], std::to_string(i + 1));
    }
  }
  EXPECT_LE(bytes, 1001u);
  EXPECT_GE(bytes, 990u);
}

TEST(RunProcess, TimeoutKillsTreeThatIgnoresSigterm) {
  ProcessSpec spec = Spec({"sh", "-c", kTermIgnoringTree});
  spec.timeout_ms = 300;
  spec.kill_grace_ms = 300;
  Output output;
  auto result = RunProcess(spec, output.Sink());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason, EndReason::kTimedOut);
  EXPECT_EQ(result->exit_code, 128 + SIGKILL);
  EXPECT_GE(result->wall_ms, 590);  // SIGTERM at 300 ms was ignored; SIGKILL came 300 ms later
  EXPECT_LT(result->wall_ms, 5000);
  const pid_t pgid = PgidFrom(output);
  ASSERT_GT(pgid, 1);
  EXPECT_FALSE(GroupHasRunningProcess(pgid));
  EXPECT_TRUE(GroupGoneWithin(pgid, 10'000));
}

TEST(RunProcess, CancelFromAnotherThreadKillsTreeThatIgnoresSigterm) {
  ProcessSpec spec = Spec({"sh", "-c", kTermIgnoringTree});
  spec.kill_grace_ms = 300;
  CancelToken token;
  std::atomic<int64_t> cancelled_at_ms{0};
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    cancelled_at_ms = MonotonicMs();
    token.Cancel();
  });
  Output output;
  auto result = RunProcess(spec, output.Sink(), &token);
  const int64_t returned_at_ms = MonotonicMs();
  canceller.join();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason, EndReason::kCancelled);
  EXPECT_EQ(result->exit_code, 128 + SIGKILL);
  EXPECT_LT(returned_at_ms - cancelled_at_ms.load(), 1000);
  const pid_t pgid = PgidFrom(output);
  ASSERT_GT(pgid, 1);
  EXPECT_FALSE(GroupHasRunningProcess(pgid));
  EXPECT_TRUE(GroupGoneWithin(pgid, 10'000));
}

TEST(RunProcess, AlreadyCancelledTokenStartsNothing) {
  TempDir dir;
  ProcessSpec spec = Spec({"sh", "-c", "touch started"});
  spec.working_dir = dir.path();
  CancelToken token;
  token.Cancel();
  token.Cancel();  // idempotent
  EXPECT_TRUE(token.IsCancelled());
  Output output;
  auto result = RunProcess(spec, output.Sink(), &token);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason, EndReason::kCancelled);
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "started"));
}

TEST(RunProcess, DoubleForkedGrandchildDoesNotBlockAndIsKilled) {
  Output output;
  const int64_t start_ms = MonotonicMs();
  auto result = RunProcess(Spec({"sh", "-c", "echo $$; (sleep 100 &); exit 0"}), output.Sink());
  const int64_t elapsed_ms = MonotonicMs() - start_ms;
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason, EndReason::kExited);
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_LT(elapsed_ms, 2000);
  const pid_t pgid = PgidFrom(output);
  ASSERT_GT(pgid, 1);
  EXPECT_FALSE(GroupHasRunningProcess(pgid));
  EXPECT_TRUE(GroupGoneWithin(pgid, 10'000));
}

TEST(RunProcess, BackgroundJobNotHoldingThePipesIsKilled) {
  Output output;
  auto result =
      RunProcess(Spec({"sh", "-c", "echo $$; sleep 100 >/dev/null 2>&1 & exit 0"}), output.Sink());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0);
  const pid_t pgid = PgidFrom(output);
  ASSERT_GT(pgid, 1);
  EXPECT_FALSE(GroupHasRunningProcess(pgid));
}

// When the supervisor is a child subreaper (or PID 1), orphans of the group are re-parented to
// it; RunProcess must reap them, so that the group is gone, not just dead, when it returns.
TEST(RunProcess, SubreaperSupervisorReapsOrphansOfTheGroup) {
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  ProcessSpec spec = Spec({"sh", "-c", kTermIgnoringTree});
  spec.timeout_ms = 200;
  spec.kill_grace_ms = 100;
  Output output;
  auto result = RunProcess(spec, output.Sink());
  const int kill_result = ::kill(-PgidFrom(output), 0);
  const int kill_errno = errno;
  ::prctl(PR_SET_CHILD_SUBREAPER, 0);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason, EndReason::kTimedOut);
  ASSERT_GT(PgidFrom(output), 1);
  EXPECT_EQ(kill_result, -1);
  EXPECT_EQ(kill_errno, ESRCH);
}

TEST(RunProcess, RejectsInvalidSpecs) {
  Output output;
  EXPECT_TRUE(IsInvalidArgument(RunProcess(ProcessSpec{}, output.Sink()).status()));
  ProcessSpec bad_env = Spec({"true"});
  bad_env.env["A=B"] = "c";
  EXPECT_TRUE(IsInvalidArgument(RunProcess(bad_env, output.Sink()).status()));
  ProcessSpec bad_line = Spec({"true"});
  bad_line.max_line_bytes = 0;
  EXPECT_TRUE(IsInvalidArgument(RunProcess(bad_line, output.Sink()).status()));
}

// --- The two moves RunProcess is made of ---

TEST(StartProcess, ReturnsOnceTheCommandRunsAndSuperviseFollowsItToItsEnd) {
  TempDir dir;
  ProcessSpec spec = Spec({"sh", "-c", "touch started; read line; echo \"got $line\"; exit 4"});
  spec.working_dir = dir.path();
  spec.stdin_data = "hello\n";
  auto started = StartProcess(spec);
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_GT(started->pid(), 1);
  Output output;
  auto result = Supervise(*std::move(started), output.Sink());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason, EndReason::kExited);
  EXPECT_EQ(result->exit_code, 4);
  EXPECT_EQ(output.out, std::vector<std::string>{"got hello"});
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "started"));
}

TEST(StartProcess, ACommandThatCannotRunIsReportedBySupervise) {
  auto started = StartProcess(Spec({"nightshift-no-such-command"}));
  ASSERT_TRUE(started.ok()) << started.status();
  Output output;
  auto result = Supervise(*std::move(started), output.Sink());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 127);
  EXPECT_EQ(output.err,
            (std::vector<std::string>{"command not found: nightshift-no-such-command"}));
  EXPECT_TRUE(IsInvalidArgument(StartProcess(ProcessSpec{}).status()));
}

TEST(StartProcess, DroppingAnUnsupervisedCommandKillsItsWholeGroup) {
  TempDir dir;
  ProcessSpec spec = Spec({"sh", "-c", "trap '' TERM; sleep 100 & echo $! > child; wait"});
  spec.working_dir = dir.path();
  pid_t pgid = 0;
  {
    auto started = StartProcess(spec);
    ASSERT_TRUE(started.ok()) << started.status();
    pgid = started->pid();
    // The background child is running once its pid is written.
    const int64_t give_up = MonotonicMs() + 10'000;
    while (!std::filesystem::exists(dir.path() / "child") && MonotonicMs() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(GroupHasRunningProcess(pgid));
  }
  EXPECT_FALSE(GroupHasRunningProcess(pgid));
  EXPECT_TRUE(GroupGoneWithin(pgid, 10'000));
}

TEST(Supervise, TheDeadlineCountsFromTheStart) {
  ProcessSpec spec = Spec({"sleep", "100"});
  spec.timeout_ms = 300;
  auto started = StartProcess(spec);
  ASSERT_TRUE(started.ok()) << started.status();
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  const int64_t supervised_at_ms = MonotonicMs();
  Output output;
  auto result = Supervise(*std::move(started), output.Sink());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason, EndReason::kTimedOut);
  EXPECT_LT(MonotonicMs() - supervised_at_ms, 1000);  // SIGTERM at once: the deadline is past
  EXPECT_GE(result->wall_ms, 400);
}

}  // namespace
}  // namespace nightshift::sandbox
