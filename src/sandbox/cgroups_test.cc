#include "sandbox/cgroups.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/fs.h"
#include "gtest/gtest.h"

namespace nightshift::sandbox {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kMiB = int64_t{1} << 20;

// Why the tests on real cgroups cannot run here, or "" when they can. Only the absence of any
// hierarchy (or of the rights to use one) skips: a hierarchy Create cannot use is a failure.
std::string NoCgroupsReason() {
  if (::geteuid() != 0) return "not root: creating cgroups needs root";
  auto mountinfo = ReadFile("/proc/self/mountinfo");
  if (!mountinfo.ok()) return mountinfo.status().ToString();
  if (mountinfo->find(" - cgroup") == std::string::npos) {
    return "no cgroup or cgroup2 file system is mounted";
  }
  return "";
}

#define SKIP_WITHOUT_CGROUPS()                    \
  do {                                            \
    const std::string reason = NoCgroupsReason(); \
    if (!reason.empty()) GTEST_SKIP() << reason;  \
  } while (0)

std::string UniqueName() { return "test-" + RandomHex(6); }

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The first of the cgroup's directories that has `file`, trimmed.
std::optional<std::string> ReadControl(const Cgroup& cgroup, const std::string& file) {
  for (const fs::path& procs : cgroup.procs_files()) {
    auto text = ReadFile(procs.parent_path() / file);
    if (text.ok()) return Trimmed(*text);
  }
  return std::nullopt;
}

// The pids in the cgroup, read independently of Cgroup.
std::set<pid_t> Members(const Cgroup& cgroup) {
  std::set<pid_t> pids;
  for (const fs::path& procs : cgroup.procs_files()) {
    auto text = ReadFile(procs);
    EXPECT_TRUE(text.ok()) << text.status();
    if (!text.ok()) continue;
    size_t start = 0;
    while (start < text->size()) {
      size_t end = text->find('\n', start);
      if (end == std::string::npos) end = text->size();
      if (end > start) pids.insert(std::stoi(text->substr(start, end - start)));
      start = end + 1;
    }
  }
  return pids;
}

// A child that waits for Start() before it execs `argv`, so that the test can put it into the
// cgroup before it runs anything: either the test calls AddProcess, or (`join`) the child
// writes itself into the cgroup.procs files, as the sandbox does. It leads a process group of
// its own, which is SIGKILLed when the HeldChild goes: nothing outlives a failed test (the
// group dies with the test too: PR_SET_PDEATHSIG for the leader, and short sleeps).
class HeldChild {
 public:
  HeldChild(const std::vector<std::string>& argv, const std::vector<fs::path>* join = nullptr,
            int stdout_fd = -1) {
    // Everything the child needs is allocated before fork().
    std::vector<char*> args;
    for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    std::vector<const char*> join_paths;
    if (join != nullptr) {
      for (const fs::path& path : *join) join_paths.push_back(path.c_str());
    }
    int go[2];
    if (::pipe2(go, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::setpgid(0, 0);
      ::close(go[1]);
      char byte = 0;
      ssize_t n;
      do {
        n = ::read(go[0], &byte, 1);
      } while (n < 0 && errno == EINTR);
      if (n != 1) ::_exit(124);
      for (const char* path : join_paths) {
        int fd = ::open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || ::write(fd, "0", 1) != 1) ::_exit(125);  // "0": the writing process
        ::close(fd);
      }
      if (stdout_fd >= 0 && ::dup2(stdout_fd, 1) < 0) ::_exit(126);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(go[0]);
    go_.Reset(go[1]);
    if (pid_ > 0) ::setpgid(pid_, pid_);  // also here, so that it holds before Start()
    pgid_ = pid_;
  }
  ~HeldChild() {
    if (pgid_ > 0) ::kill(-pgid_, SIGKILL);
    if (pid_ <= 0) return;
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  HeldChild(const HeldChild&) = delete;
  HeldChild& operator=(const HeldChild&) = delete;

  bool ok() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  void Start() {
    ASSERT_EQ(::write(go_.Get(), "g", 1), 1);
    go_.Reset();
  }
  // The wait status, or nullopt if the child still runs after `timeout_ms`.
  std::optional<int> Wait(int64_t timeout_ms = 20000) {
    const int64_t give_up = MonotonicMs() + timeout_ms;
    for (;;) {
      int status = 0;
      pid_t got = ::waitpid(pid_, &status, WNOHANG);
      if (got == pid_) {
        pid_ = -1;
        return status;
      }
      if (got < 0 && errno != EINTR) return std::nullopt;
      if (MonotonicMs() >= give_up) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

 private:
  pid_t pid_ = -1;  // -1 once reaped
  pid_t pgid_ = -1;
  UniqueFd go_;
};

bool KilledBy(int status, int sig) { return WIFSIGNALED(status) && WTERMSIG(status) == sig; }

// --- Finding the hierarchies (no root needed) ---

TEST(FindCgroupHierarchies, HybridV1WithCoMountedAndNestedGroups) {
  const std::string mountinfo =
      "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
      "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup "
      "rw,cpu,cpuacct\n"
      "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
      "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
      "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
      "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
  const std::string own =
      "9:name=systemd:/\n"
      "8:pids:/\n"
      "4:memory:/process_api/ea10\n"
      "1:cpu,cpuacct:/a/b\n"
      "0::/\n";
  CgroupHierarchies found = FindCgroupHierarchies(mountinfo, own);
  EXPECT_EQ(found.v2_dir, "/sys/fs/cgroup/unified");
  EXPECT_EQ(found.v1_dirs["memory"], "/sys/fs/cgroup/memory/process_api/ea10");
  EXPECT_EQ(found.v1_dirs["pids"], "/sys/fs/cgroup/pids");
  EXPECT_EQ(found.v1_dirs["cpu"], "/sys/fs/cgroup/cpu,cpuacct/a/b");
  EXPECT_EQ(found.v1_dirs["cpuacct"], "/sys/fs/cgroup/cpu,cpuacct/a/b");
  EXPECT_EQ(found.v1_dirs["name=systemd"], "/sys/fs/cgroup/systemd");
}

TEST(FindCgroupHierarchies, V2Only) {
  const std::string mountinfo =
      "25 30 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
      "rw,nsdelegate,memory_recursiveprot\n";
  CgroupHierarchies found =
      FindCgroupHierarchies(mountinfo, "0::/system.slice/nightshift.service\n");
  EXPECT_EQ(found.v2_dir, "/sys/fs/cgroup/system.slice/nightshift.service");
  EXPECT_TRUE(found.v1_dirs.empty());
}

TEST(FindCgroupHierarchies, MountOfASubtreeAndEscapedMountPoint) {
  // A container sees only its own subtree, mounted at a path with a space in it.
  const std::string mountinfo =
      "50 40 0:30 /docker/abc /cg\\040root rw - cgroup cgroup rw,memory\n"
      "51 40 0:31 /docker/abc /cg2 rw - cgroup cgroup rw,pids\n"
      "52 40 0:32 /other /cg3 rw - cgroup2 cgroup2 rw\n";
  const std::string own = "3:memory:/docker/abc/job\n2:pids:/docker/abcd\n0::/docker/abc\n";
  CgroupHierarchies found = FindCgroupHierarchies(mountinfo, own);
  EXPECT_EQ(found.v1_dirs["memory"], "/cg root/job");
  EXPECT_FALSE(found.v1_dirs.contains("pids"));  // "/docker/abcd" is not below "/docker/abc"
  EXPECT_TRUE(found.v2_dir.empty());             // the process's v2 group is not mounted
}

TEST(FindCgroupHierarchies, NothingMounted) {
  CgroupHierarchies found =
      FindCgroupHierarchies("22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n", "0::/\n");
  EXPECT_TRUE(found.v2_dir.empty());
  EXPECT_TRUE(found.v1_dirs.empty());
}

// --- Real cgroups ---

TEST(Cgroup, RejectsImpossibleLimitsAndNames) {
  auto expect_invalid = [](const std::string& name, const CgroupLimits& limits) {
    auto cgroup = Cgroup::Create(name, limits);
    EXPECT_TRUE(!cgroup.ok() && IsInvalidArgument(cgroup.status()))
        << name << ": " << (cgroup.ok() ? "created" : cgroup.status().ToString());
  };
  const std::string name = UniqueName();
  expect_invalid(name, {.memory_bytes = -1});
  expect_invalid(name, {.memory_bytes = 1000});
  expect_invalid(name, {.memory_bytes = kMiB - 1});
  expect_invalid(name, {.pids = -5});
  expect_invalid(name, {.cpus = -0.5});
  expect_invalid(name, {.cpus = 0.001});
  expect_invalid(name, {.cpus = std::nan("")});
  expect_invalid(name, {.cpus = INFINITY});
  expect_invalid("", {});
  expect_invalid("..", {});
  expect_invalid("a/b", {});
}

TEST(Cgroup, CreateWritesLimitsAndDestroyLeavesNothing) {
  SKIP_WITHOUT_CGROUPS();
  std::vector<fs::path> dirs;
  {
    auto cgroup =
        Cgroup::Create(UniqueName(), {.memory_bytes = 64 * kMiB, .pids = 16, .cpus = 0.5});
    ASSERT_TRUE(cgroup.ok()) << cgroup.status();
    ASSERT_FALSE((*cgroup)->procs_files().empty());
    for (const fs::path& procs : (*cgroup)->procs_files()) {
      EXPECT_TRUE(fs::exists(procs)) << procs;
      dirs.push_back(procs.parent_path());
    }
    const Cgroup& cg = **cgroup;
    if (cg.is_v2()) {
      EXPECT_EQ(ReadControl(cg, "memory.max"), "67108864");
      if (auto swap = ReadControl(cg, "memory.swap.max")) {
        EXPECT_EQ(*swap, "0");
      }
      EXPECT_EQ(ReadControl(cg, "pids.max"), "16");
      EXPECT_EQ(ReadControl(cg, "cpu.max"), "50000 100000");
    } else {
      EXPECT_EQ(ReadControl(cg, "memory.limit_in_bytes"), "67108864");
      if (auto memsw = ReadControl(cg, "memory.memsw.limit_in_bytes")) {
        EXPECT_EQ(*memsw, "67108864");
      }
      EXPECT_EQ(ReadControl(cg, "pids.max"), "16");
      EXPECT_EQ(ReadControl(cg, "cpu.cfs_quota_us"), "50000");
      EXPECT_EQ(ReadControl(cg, "cpu.cfs_period_us"), "100000");
    }
    CgroupUsage usage = cg.ReadUsage();
    EXPECT_FALSE(usage.oom_killed);
    EXPECT_FALSE(usage.pids_limit_hit);
  }
  for (const fs::path& dir : dirs) EXPECT_FALSE(fs::exists(dir)) << dir;
}

TEST(Cgroup, RemoveStaleTakesOnlyOldEmptySandboxGroups) {
  // What a server killed with SIGKILL leaves: sandbox groups nobody will remove.
  SKIP_WITHOUT_CGROUPS();
  auto anchor = Cgroup::Create(UniqueName(), {});  // for the "nightshift" parents' paths
  ASSERT_TRUE(anchor.ok()) << anchor.status();
  const std::string id = RandomHex(6);
  std::vector<fs::path> stale, fresh, busy;
  for (const fs::path& procs : (*anchor)->procs_files()) {
    const fs::path parent = procs.parent_path().parent_path();
    for (auto [list, name] :
         {std::pair{&stale, "sandbox-stale-"}, std::pair{&fresh, "sandbox-fresh-"},
          std::pair{&busy, "sandbox-busy-"}}) {
      const fs::path dir = parent / (name + id);
      ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0) << dir;
      list->push_back(dir);
    }
  }
  const struct timespec old[2] = {{::time(nullptr) - 120, 0}, {::time(nullptr) - 120, 0}};
  for (const auto& dir : stale) ASSERT_EQ(::utimensat(AT_FDCWD, dir.c_str(), old, 0), 0) << dir;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::pause();
    ::_exit(0);
  }
  ASSERT_GT(pid, 0);
  for (const auto& dir : busy) {
    ASSERT_EQ(::utimensat(AT_FDCWD, dir.c_str(), old, 0), 0) << dir;
    std::ofstream(dir / "cgroup.procs") << pid;
  }
  EXPECT_GE(Cgroup::RemoveStale(60), static_cast<int>(stale.size()));
  for (const auto& dir : stale) EXPECT_FALSE(fs::exists(dir)) << dir;
  for (const auto& dir : fresh) EXPECT_TRUE(fs::exists(dir)) << dir;
  for (const auto& dir : busy) EXPECT_TRUE(fs::exists(dir)) << dir;
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  for (const auto& dir : fresh) ::rmdir(dir.c_str());
  for (int i = 0; i < 100; ++i) {
    bool left = false;
    for (const auto& dir : busy) left |= ::rmdir(dir.c_str()) != 0 && errno != ENOENT;
    if (!left) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

TEST(Cgroup, UnlimitedLeavesTheKernelDefaults) {
  SKIP_WITHOUT_CGROUPS();
  auto cgroup = Cgroup::Create(UniqueName(), {});
  ASSERT_TRUE(cgroup.ok()) << cgroup.status();
  const Cgroup& cg = **cgroup;
  EXPECT_EQ(ReadControl(cg, "pids.max").value_or("max"), "max");
  if (cg.is_v2()) {
    EXPECT_EQ(ReadControl(cg, "memory.max").value_or("max"), "max");
  } else if (auto quota = ReadControl(cg, "cpu.cfs_quota_us")) {
    EXPECT_EQ(*quota, "-1");
  }
}

TEST(Cgroup, LimitsSetAfterCreationApplyAndBadOnesAreRefused) {
  // A pooled sandbox's cgroup is made empty and gets its run's limits at launch.
  SKIP_WITHOUT_CGROUPS();
  auto cgroup = Cgroup::Create(UniqueName(), {});
  ASSERT_TRUE(cgroup.ok()) << cgroup.status();
  Cgroup& cg = **cgroup;
  ASSERT_TRUE(cg.SetLimits({.memory_bytes = 32 * kMiB, .pids = 9}).ok());
  EXPECT_EQ(ReadControl(cg, "pids.max"), "9");
  EXPECT_EQ(ReadControl(cg, cg.is_v2() ? "memory.max" : "memory.limit_in_bytes"), "33554432");
  Status bad = cg.SetLimits({.pids = -1});
  EXPECT_TRUE(IsInvalidArgument(bad)) << bad;
  EXPECT_EQ(ReadControl(cg, "pids.max"), "9") << "a refused limit must change nothing";
}

TEST(Cgroup, SameNameTwiceIsAlreadyExistsAndKeepsTheFirst) {
  SKIP_WITHOUT_CGROUPS();
  const std::string name = UniqueName();
  auto first = Cgroup::Create(name, {.pids = 4});
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = Cgroup::Create(name, {.pids = 4});
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(IsAlreadyExists(second.status())) << second.status();
  for (const fs::path& procs : (*first)->procs_files()) EXPECT_TRUE(fs::exists(procs)) << procs;
}

TEST(Cgroup, PidsLimitStopsForks) {
  SKIP_WITHOUT_CGROUPS();
  constexpr int64_t kLimit = 8;
  auto cgroup = Cgroup::Create(UniqueName(), {.pids = kLimit});
  ASSERT_TRUE(cgroup.ok()) << cgroup.status();
  auto tmp = MakeTempDir("cgroups-test");
  ASSERT_TRUE(tmp.ok()) << tmp.status();
  const fs::path log = *tmp / "started";
  UniqueFd out(::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  ASSERT_TRUE(out.Valid());

  // Each background job that could be forked says so, then becomes a sleep. dash stops at the
  // first failed fork ("Cannot fork"); a shell that went on would only start fewer.
  HeldChild shell({"/bin/sh", "-c",
                   "i=0; while [ $i -lt 40 ]; do (echo started; exec sleep 5) & i=$((i+1)); done"},
                  nullptr, out.Get());
  ASSERT_TRUE(shell.ok());
  ASSERT_TRUE((*cgroup)->AddProcess(shell.pid()).ok());
  shell.Start();
  std::optional<int> status = shell.Wait();
  ASSERT_TRUE(status.has_value()) << "the shell did not finish";

  // The shell may exit before its last jobs have written their line: wait until every member
  // (all jobs, now that the shell is gone) has reported.
  auto count_started = [&log] {
    auto text = ReadFile(log);
    EXPECT_TRUE(text.ok()) << text.status();
    int64_t n = 0;
    for (size_t at = text.ok() ? text->find("started") : std::string::npos; at != std::string::npos;
         at = text->find("started", at + 1)) {
      ++n;
    }
    return n;
  };
  int64_t started = count_started();
  for (int64_t give_up = MonotonicMs() + 5000;
       started < static_cast<int64_t>(Members(**cgroup).size()) && MonotonicMs() < give_up;
       started = count_started()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_LE(static_cast<int64_t>(Members(**cgroup).size()), kLimit);
  EXPECT_GE(started, 1);
  EXPECT_LE(started, kLimit - 1);  // the shell itself is one of the kLimit
  EXPECT_TRUE((*cgroup)->ReadUsage().pids_limit_hit);

  EXPECT_TRUE((*cgroup)->KillAll().ok());
  EXPECT_TRUE(Members(**cgroup).empty());
  RemoveTreeQuietly(*tmp);
}

TEST(Cgroup, MemoryLimitOomKills) {
  SKIP_WITHOUT_CGROUPS();
  constexpr int64_t kLimit = 64 * kMiB;
  ASSERT_EQ(::access("/usr/bin/perl", X_OK), 0) << "needs /usr/bin/perl (Debian's perl-base)";
  auto cgroup = Cgroup::Create(UniqueName(), {.memory_bytes = kLimit});
  ASSERT_TRUE(cgroup.ok()) << cgroup.status();

  // 200 MB, every page written. The child joins through procs_files(), as the sandbox does.
  HeldChild hog({"/usr/bin/perl", "-e", "my $x = 'a' x (200 * 1024 * 1024); print length($x);"},
                &(*cgroup)->procs_files());
  ASSERT_TRUE(hog.ok());
  hog.Start();
  std::optional<int> status = hog.Wait();
  ASSERT_TRUE(status.has_value()) << "the allocating child did not end";
  EXPECT_TRUE(KilledBy(*status, SIGKILL)) << "wait status " << *status;

  CgroupUsage usage = (*cgroup)->ReadUsage();
  EXPECT_TRUE(usage.oom_killed);
  EXPECT_GE(usage.peak_memory_bytes, kLimit * 3 / 4);
  EXPECT_LE(usage.peak_memory_bytes, kLimit + kMiB);
}

TEST(Cgroup, CpuQuotaThrottles) {
  SKIP_WITHOUT_CGROUPS();
  auto cgroup = Cgroup::Create(UniqueName(), {.cpus = 0.2});
  ASSERT_TRUE(cgroup.ok()) << cgroup.status();
  HeldChild spin({"/bin/sh", "-c", "while :; do :; done"});
  ASSERT_TRUE(spin.ok());
  ASSERT_TRUE((*cgroup)->AddProcess(spin.pid()).ok());
  spin.Start();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const int64_t cpu_usec = (*cgroup)->ReadUsage().cpu_usec;
  EXPECT_TRUE((*cgroup)->KillAll().ok());

  // Unthrottled, the loop would take about a full second of CPU.
  EXPECT_LE(cpu_usec, 350'000);
  EXPECT_GE(cpu_usec, 50'000);  // and it did run, and the usage was read
}

TEST(Cgroup, KillAllKillsWhatIgnoresSigterm) {
  SKIP_WITHOUT_CGROUPS();
  auto cgroup = Cgroup::Create(UniqueName(), {});
  ASSERT_TRUE(cgroup.ok()) << cgroup.status();
  int ready[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  UniqueFd ready_read(ready[0]);
  UniqueFd ready_write(ready[1]);
  HeldChild shell({"/bin/sh", "-c", "trap '' TERM; sleep 60 & sleep 60 & echo ready; wait"},
                  nullptr, ready_write.Get());
  ASSERT_TRUE(shell.ok());
  ready_write.Reset();
  ASSERT_TRUE((*cgroup)->AddProcess(shell.pid()).ok());
  shell.Start();
  pollfd pfd = {ready_read.Get(), POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, 10000), 1) << "the shell did not get ready";

  std::set<pid_t> members = Members(**cgroup);
  ASSERT_EQ(members.size(), 3u);  // the shell and two sleeps
  for (pid_t pid : members) ::kill(pid, SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ASSERT_EQ(Members(**cgroup), members) << "SIGTERM is ignored, so nothing should have died";

  Status killed = (*cgroup)->KillAll();
  EXPECT_TRUE(killed.ok()) << killed;
  EXPECT_TRUE(Members(**cgroup).empty());
  std::optional<int> status = shell.Wait(2000);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(KilledBy(*status, SIGKILL)) << "wait status " << *status;
}

}  // namespace
}  // namespace nightshift::sandbox
