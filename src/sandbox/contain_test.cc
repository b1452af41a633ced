// The sandbox, tested for real: every test starts a real sandbox and tries something from
// inside. The escape battery has one test per attempt; each would pass if the sandbox leaked.

#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "core/fs.h"
#include "gtest/gtest.h"
#include "sandbox/cgroups.h"
#include "sandbox/pool.h"
#include "sandbox/process.h"
#include "tests/support/test_support.h"

namespace nightshift::sandbox {
namespace {

constexpr uid_t kUid = 100123;

// A fresh directory of the host's under `parent` (/srv, /opt: outside every path a sandbox gets
// by default; `parent` is made if the host has none), removed with all it holds at the end.
class HostScratch {
 public:
  explicit HostScratch(const std::filesystem::path& parent) {
    made_parent_ = std::filesystem::create_directories(parent);
    path_ = parent / ("nightshift-test-" + RandomHex(6));
    std::filesystem::create_directories(path_);
  }
  ~HostScratch() {
    RemoveTreeQuietly(path_);
    if (made_parent_) ::rmdir(path_.parent_path().c_str());
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  bool made_parent_ = false;
};

// What the host has of DefaultHostPaths, by name: "usr" → true for a directory, false for a
// symlink (anything else is not given to a sandbox).
std::map<std::string, bool> AllowedHostEntries() {
  std::map<std::string, bool> entries;
  for (const std::string& path : DefaultHostPaths()) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode) || S_ISLNK(st.st_mode)) entries[path.substr(1)] = S_ISDIR(st.st_mode);
  }
  return entries;
}

// Every test runs twice: a sandbox started cold, and one taken from a pool of pre-forked ones
// (the parameter), which must be exactly as tight.
class SandboxTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root";
    workspace_ = dir_.path() / "ws";
    std::filesystem::create_directories(workspace_);
    ASSERT_EQ(::chown(workspace_.c_str(), kUid, kUid), 0);
    // The probe goes into the workspace: the build tree may be under the host's /tmp, which a
    // sandbox replaces with its own.
    ASSERT_TRUE(std::filesystem::copy_file(TRY_SYSCALL_PATH, workspace_ / "try_syscall"));
  }

  struct Ran {
    ProcessResult result;
    std::string out, err;
  };

  Ran Run(const std::string& script, SandboxSpec box = {}, int64_t timeout_ms = 30'000) {
    if (box.workspace.empty()) box.workspace = workspace_;
    box.host_uid = kUid;
    box.host_gid = kUid;
    box.hostname = "run-42";
    ProcessSpec spec{
        .argv = {"/bin/sh", "-c", script},
        .env = {{"PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"}, {"HOME", "/tmp"}},
        .timeout_ms = timeout_ms};
    spec.stdin_data = stdin_;
    std::unique_ptr<SandboxPool> pool;
    if (warm()) {
      auto started = SandboxPool::Start(box, 1);
      EXPECT_TRUE(started.ok()) << started.status();
      if (!started.ok()) return {};
      pool = std::move(*started);
      spec.pool = pool.get();
    }
    spec.sandbox = std::move(box);
    Ran ran;
    auto r = RunProcess(spec, [&](std::string_view stream, std::string_view line) {
      (stream == "stdout" ? ran.out : ran.err) += std::string(line) + "\n";
    });
    EXPECT_TRUE(r.ok()) << r.status();
    if (r.ok()) ran.result = *r;
    if (pool) {
      EXPECT_EQ(pool->stats().taken, 1) << "the run did not start warm";
    }
    return ran;
  }

  bool warm() const { return GetParam(); }
  std::string Probe() const { return "/workspace/try_syscall"; }

  testing::TempDir dir_;
  std::filesystem::path workspace_;
  std::string stdin_;  // the next Run's stdin
};

// --- Functional ---

TEST_P(SandboxTest, RunsInWorkspaceWithHostnameAndExitCode) {
  Ran r = Run("pwd; hostname; id -u; exit 3");
  EXPECT_EQ(r.result.exit_code, 3);
  EXPECT_EQ(r.result.reason, EndReason::kExited);
  EXPECT_EQ(r.out, "/workspace\nrun-42\n0\n") << r.err;
}

// PID 1 reports the end itself when nothing else is left (the namespaces are torn down after
// the call returns): the status and the command's CPU time still arrive.
TEST_P(SandboxTest, ReportsStatusAndCpuTimeOfTheCommand) {
  Ran r = Run("i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; exit 7");
  EXPECT_EQ(r.result.exit_code, 7);
  EXPECT_EQ(r.result.reason, EndReason::kExited);
  EXPECT_GT(r.result.cpu_ms, 0);
  EXPECT_GT(r.result.peak_memory_bytes, 0);
}

// When the command leaves a process behind, the call returns only once the sandbox has killed
// it: nothing runs when RunProcess returns, without waiting.
TEST_P(SandboxTest, ABackgroundProcessLeftBehindIsGoneOnReturn) {
  Ran r = Run("sleep 3013 & echo started; exit 0");
  EXPECT_EQ(r.result.exit_code, 0);
  EXPECT_EQ(r.out, "started\n");
  EXPECT_EQ(testing::Shell("pgrep -f 'sleep 301[3]' | wc -l").output, "0\n");
}

TEST_P(SandboxTest, StdinReachesTheCommand) {
  stdin_ = std::string(200'000, 'x') + "\nlast line\n";
  Ran r = Run("wc -c; tail -1");
  EXPECT_EQ(r.out, "200011\nlast line\n");
  stdin_.clear();
  EXPECT_EQ(Run("cat; echo eof").out, "eof\n");
}

TEST_P(SandboxTest, MissingCommandIs127) {
  Ran r = Run("exec /no/such/command");
  EXPECT_EQ(r.result.exit_code, 127) << r.err;
}

TEST_P(SandboxTest, FilesInWorkspaceBelongToTheMappedHostUid) {
  Ran r = Run("echo made > made.txt && mkdir sub");
  ASSERT_EQ(r.result.exit_code, 0) << r.err;
  struct stat st {};
  ASSERT_EQ(::stat((workspace_ / "made.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kUid);
  EXPECT_EQ(st.st_gid, kUid);
}

TEST_P(SandboxTest, ToolchainWorksInside) {
  Ran r =
      Run("printf '#include <cstdio>\\nint main(){std::puts(\"compiled\");}\\n' > m.cc && "
          "g++ -o m m.cc && ./m && "
          "printf 'test:\\n\\t@echo make-ok\\n' > Makefile && make -s test && "
          "git init -q -b main . && git -c user.name=a -c user.email=a@b add -A && "
          "git -c user.name=a -c user.email=a@b commit -qm x && git log --oneline | wc -l");
  EXPECT_EQ(r.result.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "compiled\nmake-ok\n1\n") << r.err;
}

TEST_P(SandboxTest, EveryNamespaceIsTheSandboxsOwn) {
  // Mount, PID, UTS, IPC, network, user and cgroup: none is the host's (the supervisor's).
  std::string host;
  for (const char* ns : {"mnt", "pid", "uts", "ipc", "net", "user", "cgroup"}) {
    host += std::filesystem::read_symlink(std::string("/proc/self/ns/") + ns).string() + "\n";
  }
  Ran r = Run("for ns in mnt pid uts ipc net user cgroup; do readlink /proc/self/ns/$ns; done");
  ASSERT_EQ(r.result.exit_code, 0) << r.err;
  std::set<std::string> inside;
  for (size_t at = 0, nl; (nl = r.out.find('\n', at)) != std::string::npos; at = nl + 1) {
    inside.insert(r.out.substr(at, nl - at));
  }
  EXPECT_EQ(inside.size(), 7u) << r.out;
  for (size_t at = 0, nl; (nl = host.find('\n', at)) != std::string::npos; at = nl + 1) {
    EXPECT_EQ(inside.count(host.substr(at, nl - at)), 0u) << host.substr(at, nl - at);
  }
}

TEST_P(SandboxTest, LoopbackWorksInside) {
  Ran r =
      Run("ip -brief link show lo 2>/dev/null | grep -q UP && echo lo-up || "
          "cat /sys/class/net/lo/operstate");
  EXPECT_EQ(r.result.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("lo-up"), std::string::npos) << r.out << r.err;
}

TEST_P(SandboxTest, BadSpecsAreRefusedWithAReason) {
  SandboxSpec missing_ws{.workspace = dir_.path() / "nope"};
  EXPECT_TRUE(IsInvalidArgument(ValidateSandboxSpec(missing_ws)));
  SandboxSpec bad_root{.rootfs = dir_.path() / "no-root", .workspace = workspace_};
  Status st = ValidateSandboxSpec(bad_root);
  EXPECT_TRUE(IsInvalidArgument(st));
  EXPECT_NE(st.message().find("rootfs"), std::string::npos);
  SandboxSpec bad_layer{.layers = {dir_.path() / "no-layer"}, .workspace = workspace_};
  EXPECT_TRUE(IsInvalidArgument(ValidateSandboxSpec(bad_layer)));
  // A host path may not go through a symlink of the host but in its last component.
  HostScratch srv("/srv");
  std::filesystem::create_directories(srv.path() / "real" / "tool");
  std::filesystem::create_symlink(srv.path() / "real", srv.path() / "link");
  const std::string through_link = (srv.path() / "link" / "tool").string();
  for (const std::string& bad :
       {std::string("usr"), std::string("/"), std::string("/usr/"), std::string("/usr/../etc"),
        std::string("/no/such/path"), std::string("/tmp"), std::string("/proc/1"),
        std::string("/workspace/x"), through_link}) {
    SandboxSpec host_path{.host_paths = {bad}, .workspace = workspace_};
    st = ValidateSandboxSpec(host_path);
    EXPECT_TRUE(IsInvalidArgument(st)) << bad;
    EXPECT_NE(st.message().find("host path"), std::string::npos) << st;
  }
  EXPECT_TRUE(ValidateSandboxSpec(
                  SandboxSpec{.host_paths = {"/usr/share", "/etc/passwd", srv.path() / "link"},
                              .workspace = workspace_})
                  .ok());
  SandboxSpec tiny{.workspace = workspace_};
  tiny.limits.memory_bytes = 1000;
  EXPECT_TRUE(IsInvalidArgument(ValidateSandboxSpec(tiny)));
  // Its set-up runs in the supervisor's memory until the exec: the limit must leave room.
  tiny.limits.memory_bytes = kMinSandboxMemoryBytes - 1;
  EXPECT_TRUE(IsInvalidArgument(ValidateSandboxSpec(tiny)));
  tiny.limits.memory_bytes = kMinSandboxMemoryBytes;
  EXPECT_TRUE(ValidateSandboxSpec(tiny).ok());
}

TEST_P(SandboxTest, LayersAreVisibleAndWritesStayInTheSandbox) {
  auto layer = dir_.path() / "layer";
  std::filesystem::create_directories(layer / "opt/tool");
  std::ofstream(layer / "opt/tool/version") << "layer-1\n";
  // The root is read-only to the sandbox: root inside owns nothing of the host's files.
  Ran r =
      Run("cat /opt/tool/version; (echo changed > /opt/tool/version) 2>/dev/null || "
          "echo read-only; touch /usr/nightshift-escape 2>/dev/null || echo read-only; "
          "echo scratch > /tmp/t && cat /tmp/t",
          SandboxSpec{.layers = {layer}});
  EXPECT_EQ(r.result.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "layer-1\nread-only\nread-only\nscratch\n");
  std::string kept;
  std::getline(std::ifstream(layer / "opt/tool/version"), kept);
  EXPECT_EQ(kept, "layer-1");
  EXPECT_FALSE(std::filesystem::exists("/usr/nightshift-escape"));
}

// Sandboxes started from several threads at once: the child of clone() must not touch a lock
// or a per-thread structure of the multi-threaded parent (glibc's setresuid() did).
TEST_P(SandboxTest, ConcurrentStartsFromManyThreads) {
  std::atomic<int> ok{0};
  // Threads being created and torn down meanwhile, as in a busy server: glibc's thread list is
  // in flux at the moment of clone().
  std::atomic<bool> churn{true};
  std::thread churner([&] {
    while (churn) std::thread([] {}).join();
  });
  const SandboxSpec box{.workspace = workspace_, .host_uid = kUid, .host_gid = kUid};
  std::unique_ptr<SandboxPool> pool;
  if (warm()) pool = *SandboxPool::Start(box, 2);  // fewer than the threads: some start cold
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 8; ++i) {
        ProcessSpec spec{
            .argv = {"true"}, .env = {{"PATH", "/usr/bin:/bin"}}, .timeout_ms = 20'000};
        spec.sandbox = box;
        spec.pool = pool.get();
        auto r = RunProcess(spec, nullptr);
        if (r.ok() && r->exit_code == 0 && r->reason == EndReason::kExited) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  churn = false;
  churner.join();
  EXPECT_EQ(ok.load(), 32);
}

// The workspace as an overlay of read-only layers: the run sees their union and writes only to
// its upper dir.
TEST_P(SandboxTest, WorkspaceOverlayWritesOnlyToTheUpperDir) {
  auto lower = dir_.path() / "lower", base = dir_.path() / "base";
  auto upper = dir_.path() / "upper", work = dir_.path() / "work";
  for (const auto& d : {lower, base, upper, work}) std::filesystem::create_directories(d);
  std::ofstream(base / "a") << "base-a\n";
  std::ofstream(base / "c") << "base-c\n";
  std::ofstream(lower / "a") << "lower-a\n";  // the top layer wins
  ASSERT_EQ(testing::Shell("chown -R " + std::to_string(kUid) + ":" + std::to_string(kUid) + " " +
                           testing::ShellQuote(dir_.path().string()))
                .exit_code,
            0);
  SandboxSpec box{.workspace = upper};
  box.workspace_layers = {lower, base};
  box.workspace_work = work;
  Ran r = Run("pwd; cat a c; echo new > b; echo changed >> a; rm c; ls", box);
  EXPECT_EQ(r.result.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "/workspace\nlower-a\nbase-c\na\nb\n");
  std::string line;
  std::getline(std::ifstream(lower / "a"), line);
  EXPECT_EQ(line, "lower-a");
  EXPECT_TRUE(std::filesystem::exists(base / "c"));
  EXPECT_TRUE(std::filesystem::exists(upper / "b"));
  EXPECT_TRUE(std::filesystem::is_character_file(upper / "c"));  // the whiteout
}

TEST_P(SandboxTest, WorkspaceCanBeReadOnly) {
  SandboxSpec box;
  box.workspace_read_only = true;
  Ran r =
      Run("test -x try_syscall && echo readable; (touch new) 2>&1 | grep -o 'Read-only.*'", box);
  EXPECT_EQ(r.out, "readable\nRead-only file system\n") << r.err;
  EXPECT_FALSE(std::filesystem::exists(workspace_ / "new"));
}

// --- What the root holds of the host: an allow-list ---

TEST_P(SandboxTest, RootHoldsTheAllowedHostEntriesAndItsOwnOnly) {
  std::set<std::string> expected;
  for (const auto& [name, dir] : AllowedHostEntries()) expected.insert(name);
  for (const char* own : {"dev", "proc", "sys", "tmp", "var", "workspace"}) expected.insert(own);
  std::string want;
  for (const auto& name : expected) want += name + "\n";
  Ran r = Run("ls -A /; ls -A /var; readlink /var/tmp");
  EXPECT_EQ(r.out, want + "tmp\n/tmp\n") << r.err;
}

TEST_P(SandboxTest, TopLevelSymlinksOfTheHostAreSymlinksAndItsDirectoriesReadOnlyBinds) {
  std::string script, want;
  for (const auto& [name, dir] : AllowedHostEntries()) {
    const std::string path = "/" + name;
    if (dir) {
      // A directory, the host's (the same inode), read-only.
      struct stat st {};
      ASSERT_EQ(::stat(path.c_str(), &st), 0);
      script += StrCat("[ -d ", path, " ] && [ ! -L ", path, " ] && stat -c %i ", path, "; (touch ",
                       path, "/nightshift-probe) 2>&1 | grep -o 'Read-only.*'; ");
      want += StrCat(st.st_ino, "\nRead-only file system\n");
    } else {
      script += "[ -L " + path + " ] && readlink " + path + "; ";
      want += std::filesystem::read_symlink(path).string() + "\n";
    }
  }
  Ran r = Run(script + "true");
  EXPECT_EQ(r.out, want) << r.err;
}

TEST_P(SandboxTest, NothingElseOfTheHostIsThere) {
  // Files in fresh directories of /srv and /opt (where a server may keep other checkouts and
  // bare repositories), the usual places of a host's data and people, and this very build tree
  // (under /work here, with the repository): none is in the sandbox's root.
  HostScratch srv("/srv"), opt("/opt");
  std::ofstream(srv.path() / "secret") << "srv-secret\n";
  std::ofstream(opt.path() / "secret") << "opt-secret\n";
  const auto build_tree = std::filesystem::read_symlink("/proc/self/exe").parent_path();
  Ran r = Run("cat " + (srv.path() / "secret").string() + " " + (opt.path() / "secret").string() +
              " 2>/dev/null; for p in /srv /opt /home /root /run /mnt /media /boot /var/lib "
              "/var/log /var/cache /work " +
              build_tree.string() + "; do [ -e $p ] && echo $p; done; true");
  EXPECT_EQ(r.out, "") << r.err;
}

TEST_P(SandboxTest, HostPathsAreThereReadOnlyAndNothingBesideThem) {
  HostScratch opt("/opt");
  const auto go = opt.path() / "toolchains" / "go";
  std::filesystem::create_directories(go / "bin");
  std::ofstream(go / "bin" / "version") << "go-1\n";
  std::ofstream(opt.path() / "toolchains" / "not-added") << "not added\n";
  const auto file = opt.path() / "tool.conf";
  std::ofstream(file) << "a file\n";
  // Owned by the sandbox's uid: only the read-only mount keeps root inside from writing.
  ASSERT_EQ(
      testing::Shell("chown -R " + std::to_string(kUid) + " " + opt.path().string()).exit_code, 0);
  const std::string g = go.string(), f = file.string();
  Ran r = Run("cat " + g + "/bin/version " + f + "; ls -A " + (opt.path() / "toolchains").string() +
                  "; (touch " + g + "/bin/new) 2>&1 | grep -o 'Read-only.*'; (echo x >> " + f +
                  ") 2>&1 | grep -o 'Read-only.*'; ls -A " + opt.path().string(),
              SandboxSpec{.host_paths = {file, go}});
  EXPECT_EQ(r.out,
            "go-1\na file\ngo\nRead-only file system\nRead-only file system\ntool.conf\n"
            "toolchains\n")
      << r.err;
}

TEST_P(SandboxTest, UsrRunsAndEtcIsReadableWithoutItsSecrets) {
  // The spec's own masks (the platform's data dir) apply wherever the root shows them: here
  // under a host path.
  HostScratch srv("/srv");
  const auto data = srv.path() / "platform-data";
  std::filesystem::create_directories(data);
  std::ofstream(data / "admin-token") << "s3cret-token\n";
  std::ofstream(srv.path() / "visible") << "visible\n";
  Ran r = Run("/usr/bin/id -u; head -1 /etc/passwd | cut -d: -f1; cat " +
                  (srv.path() / "visible").string() + " " + (data / "admin-token").string() +
                  "; ls -A " + data.string() +
                  "; cat /etc/shadow; "
                  "for f in /etc/shadow /etc/shadow- /etc/gshadow /etc/gshadow- /etc/sudoers "
                  "/etc/krb5.keytab; do [ -f $f ] && echo $f; done; "
                  "for d in /etc/ssh /etc/sudoers.d /etc/ssl/private; do "
                  "[ -n \"$(ls -A $d 2>/dev/null)\" ] && echo $d; done; true",
              SandboxSpec{.host_paths = {srv.path()}, .masked = {data}});
  EXPECT_EQ(r.out, "0\nroot\nvisible\n") << r.err;
}

TEST_P(SandboxTest, LayersOverTheHostsDirectoriesMergeWithThem) {
  // A layer with files in /usr and /etc: an overlay of its directories over the host's, which
  // still show, masks and all; nothing else of the host appears.
  HostScratch srv("/srv");
  auto layer = dir_.path() / "layer";
  std::filesystem::create_directories(layer / "usr/share/nightshift-layer");
  std::filesystem::create_directories(layer / "etc");
  std::ofstream(layer / "usr/share/nightshift-layer/version") << "layer-usr\n";
  std::ofstream(layer / "etc/nightshift-layer.conf") << "layer-etc\n";
  Ran r =
      Run("cat /usr/share/nightshift-layer/version /etc/nightshift-layer.conf; "
          "/usr/bin/env true && echo host-usr; head -1 /etc/passwd | cut -d: -f1; "
          "[ -f /etc/shadow ] || echo shadow-masked; "
          "[ -e " +
              srv.path().string() +
              " ] || echo no-srv; "
              "(touch /usr/nightshift-escape) 2>&1 | grep -o 'Read-only.*'",
          SandboxSpec{.layers = {layer}});
  EXPECT_EQ(r.out,
            "layer-usr\nlayer-etc\nhost-usr\nroot\nshadow-masked\nno-srv\n"
            "Read-only file system\n")
      << r.err;
  EXPECT_FALSE(std::filesystem::exists("/usr/nightshift-escape"));
}

TEST_P(SandboxTest, ARootfsGetsTheHostPathsOnTop) {
  // A rootfs with the host's top-level symlinks and a file of its own; the host's directories
  // (/usr, /etc) come as host paths, mounted in it.
  auto rootfs = dir_.path() / "rootfs";
  std::filesystem::create_directories(rootfs);
  std::ofstream(rootfs / "rootfs-marker") << "from-rootfs\n";
  SandboxSpec box{.rootfs = rootfs};
  std::set<std::string> listed = {"dev", "proc", "rootfs-marker", "sys", "tmp", "workspace"};
  for (const auto& [name, dir] : AllowedHostEntries()) {
    listed.insert(name);
    if (dir) {
      box.host_paths.push_back("/" + name);
    } else {
      std::filesystem::create_symlink(std::filesystem::read_symlink("/" + name), rootfs / name);
    }
  }
  std::string want = "from-rootfs\nran\n";
  for (const auto& name : listed) want += name + "\n";
  Ran r = Run("cat /rootfs-marker; /usr/bin/env true && echo ran; ls -A /", box);
  EXPECT_EQ(r.out, want) << r.err;
}

// --- Escape battery ---

TEST_P(SandboxTest, MasksUnderSysApplyOverTheSandboxsSysfs) {
  // /sys is mounted last (after the network namespace is joined); masks below it come after.
  Ran r = Run("ls -A /sys/kernel | wc -l; cat /sys/kernel/mm/transparent_hugepage/enabled",
              SandboxSpec{.masked = {"/sys/kernel/mm"}});
  EXPECT_NE(r.out.substr(0, r.out.find('\n')), "0") << r.out;  // /sys/kernel itself is there
  EXPECT_EQ(r.out.find('['), std::string::npos) << "the masked file was readable: " << r.out;
}

// The platform's data dir may hold the workspace's parent, or lie inside the workspace: either
// way its files stay hidden, under / and under /workspace.
TEST_P(SandboxTest, MaskedDirInsideTheWorkspaceIsHiddenThere) {
  auto data = workspace_ / "nightshift-data";
  std::filesystem::create_directories(data);
  std::ofstream(data / "admin-token") << "s3cret-token\n";
  std::ofstream(workspace_ / "visible") << "visible\n";
  Ran r =
      Run("cat visible; cat nightshift-data/admin-token; ls -A nightshift-data; "
          "echo x > nightshift-data/planted",
          SandboxSpec{.masked = {data}});
  EXPECT_EQ(r.out, "visible\n") << r.out << r.err;
  EXPECT_FALSE(std::filesystem::exists(data / "planted"));
}

TEST_P(SandboxTest, CannotWriteOutsideWorkspace) {
  auto outside = dir_.path() / "outside";
  std::filesystem::create_directories(outside);
  Ran r = Run("echo x > " + (outside / "f").string() + "; echo y > /etc/nightshift-escape; true");
  EXPECT_FALSE(std::filesystem::exists(outside / "f"));
  EXPECT_FALSE(std::filesystem::exists("/etc/nightshift-escape"));
}

TEST_P(SandboxTest, CannotSeeOrSignalHostProcesses) {
  Ran r = Run("ls /proc | grep -c '^[0-9]'; " + Probe() + " kill " + std::to_string(::getpid()));
  // sh, ls, grep, the probe and PID 1 at most.
  EXPECT_LE(std::stoi(r.out), 5) << r.out;
  EXPECT_NE(r.out.find("ESRCH"), std::string::npos) << r.out;
}

TEST_P(SandboxTest, DevHasTheUsualDevicesAndNothingElse) {
  Ran r =
      Run("echo x > /dev/null && echo null-ok; head -c3 /dev/zero | od -An -tx1; "
          "head -c5 /dev/urandom | wc -c; head -c5 /dev/random | wc -c; "
          "(echo x > /dev/full) 2>/dev/null || echo full-is-full; "
          "stat -c '%A %t:%T' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty; "
          "ls /dev | tr '\\n' ' '; (touch /dev/new) 2>/dev/null || echo dev-read-only");
  EXPECT_EQ(r.out,
            "null-ok\n 00 00 00\n5\n5\nfull-is-full\n"
            "crw-rw-rw- 1:3\ncrw-rw-rw- 1:5\ncrw-rw-rw- 1:7\ncrw-rw-rw- 1:8\ncrw-rw-rw- 1:9\n"
            "crw-rw-rw- 5:0\n"
            "fd full null ptmx pts random shm stderr stdin stdout tty urandom zero dev-read-only\n")
      << r.err;
}

TEST_P(SandboxTest, SeesOnlyItsOwnLoopback) {
  // The network namespace is made on another thread and joined before /sys is mounted: sysfs
  // mounted earlier would list the host's interfaces.
  Ran r =
      Run("ls /sys/class/net; cat /sys/class/net/lo/operstate; ls /proc/net/dev >/dev/null && "
          "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '");
  EXPECT_EQ(r.out, "lo\nunknown\nlo\n") << r.err;
}

TEST_P(SandboxTest, CannotReachHostLoopbackServer) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  Ran r = Run("bash -c 'echo hi > /dev/tcp/127.0.0.1/" + std::to_string(port) +
              "' 2>/dev/null && echo reached || echo refused");
  ::close(fd);
  EXPECT_EQ(r.out, "refused\n");
}

TEST_P(SandboxTest, CannotMountOrRemount) {
  Ran r = Run(Probe() + " mount; " + Probe() + " remount_root_rw; " + Probe() + " unshare_mount; " +
              Probe() + " unshare_user; " + Probe() + " chroot; " + Probe() + " sethostname; " +
              Probe() + " setns_pid1_net");
  EXPECT_EQ(r.out.find("ok"), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 7) << r.out << r.err;
}

TEST_P(SandboxTest, SetuidBinaryGainsNothing) {
  // A setuid-root `cat` and a file only host root may read, both in the workspace.
  auto secret = workspace_ / "secret";
  std::ofstream(secret) << "root-only\n";
  ASSERT_EQ(::chmod(secret.c_str(), 0600), 0);
  ASSERT_TRUE(std::filesystem::copy_file("/bin/cat", workspace_ / "suid-cat"));
  ASSERT_EQ(::chmod((workspace_ / "suid-cat").c_str(), 04755), 0);
  Ran r = Run("./suid-cat secret; cat secret; id -u");
  EXPECT_EQ(r.out.find("root-only"), std::string::npos) << r.out;
}

TEST_P(SandboxTest, CannotWriteProcSysOrLoadModules) {
  Ran r = Run("echo 1 > /proc/sys/kernel/sysrq && echo wrote-sysrq; " + Probe() + " init_module; " +
              Probe() + " finit_module; " + Probe() + " bpf");
  EXPECT_EQ(r.out.find("wrote-sysrq"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("ok"), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 3) << r.out << r.err;
}

TEST_P(SandboxTest, CannotPtraceOutside) {
  Ran r = Run(Probe() + " ptrace_attach " + std::to_string(::getpid()) + "; " + Probe() +
              " ptrace_attach 1");
  EXPECT_EQ(r.out.find("ok"), std::string::npos) << r.out;
}

TEST_P(SandboxTest, CommandCannotSignalOrReadItsInit) {
  // PID 1 keeps the host's root for the mounts it makes at launch; the command runs under other
  // credentials, so it can neither signal PID 1 nor read its memory, descriptors or root.
  Ran r =
      Run("kill -0 1 2>/dev/null && echo signalled; "
          "cat /proc/1/environ >/dev/null 2>&1 && echo read-environ; "
          "ls /proc/1/fd >/dev/null 2>&1 && echo listed-fds; "
          "ls /proc/1/root/ >/dev/null 2>&1 && echo listed-root; "
          "head -c1 /proc/1/mem >/dev/null 2>&1 && echo read-mem; "
          // PID 1 runs in the supervisor's memory: its command line would be the supervisor's.
          "[ -n \"$(tr -d '\\000' < /proc/1/cmdline)\" ] && echo read-cmdline; echo done");
  EXPECT_EQ(r.out, "done\n") << r.err;
}

TEST_P(SandboxTest, CommandRunsOnAllTheSupervisorsCpus) {
  // The payload is pinned to another CPU while it sets up (launch.cc); the command is not.
  std::string host = testing::Shell("grep Cpus_allowed_list /proc/self/status").output;
  Ran r = Run("grep Cpus_allowed_list /proc/self/status");
  EXPECT_EQ(r.out, host) << r.err;
}

TEST_P(SandboxTest, CommandRunsWithTheNormalSchedulingPolicy) {
  // The pool's thread, and so a pooled sandbox's PID 1, runs SCHED_BATCH; the command does not.
  Ran r = Run("chrt -p $$ | head -1 | sed 's/.*: //'");
  EXPECT_EQ(r.out, "SCHED_OTHER\n") << r.err;
}

TEST_P(SandboxTest, CommandInheritsOnlyItsStdio) {
  // Not the control sockets of PID 1 and the supervisor, nor the launch's memfd: `ls` itself
  // holds 3 (the directory it lists).
  Ran r = Run("ls /proc/self/fd");
  EXPECT_EQ(r.out, "0\n1\n2\n3\n") << r.err;
}

TEST_P(SandboxTest, CommandHasNoSupplementaryGroupsOfTheSupervisor) {
  // A server started with sudo has root's groups (gid 0): unmapped inside, they would still
  // count on the host's files (the workspace's, the host paths').
  std::vector<gid_t> saved(static_cast<size_t>(::getgroups(0, nullptr)));
  ASSERT_EQ(::getgroups(static_cast<int>(saved.size()), saved.data()),
            static_cast<int>(saved.size()));
  const gid_t groups[] = {0, 4242};
  ASSERT_EQ(::setgroups(2, groups), 0);
  Ran r = Run("grep Groups /proc/self/status | wc -w");
  ASSERT_EQ(::setgroups(saved.size(), saved.data()), 0);
  EXPECT_EQ(r.out, "1\n") << r.err;  // "Groups:" alone
}

TEST_P(SandboxTest, CommandStartsWithTheSandboxsRlimits) {
  // The payload sets them itself: it is cloned before PID 1 sets anything up, so limits PID 1
  // set on itself would never reach the command.
  struct rlimit files {};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &files), 0);
  const auto expected_files = std::min<rlim_t>(files.rlim_max, 65536);
  Ran r = Run("ulimit -c; ulimit -n; ulimit -Hn");
  EXPECT_EQ(r.out, StrCat("0\n", expected_files, "\n", expected_files, "\n")) << r.err;
}

TEST_P(SandboxTest, CommandStartsWithNoSignalBlockedOrIgnored) {
  // PID 1 blocks every signal (it takes the ones it forwards with sigwait); the command must not
  // inherit that.
  Ran r = Run("grep -E '^Sig(Blk|Ign)' /proc/self/status");
  EXPECT_EQ(r.out, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n") << r.err;
}

std::atomic<int> g_supervisor_handler_calls{0};

TEST_P(SandboxTest, SupervisorSignalHandlersNeverRunInTheSandbox) {
  // PID 1 and the payload run in the supervisor's memory (CLONE_VM): a handler of ours run by
  // them would be seen here. The timeout sends SIGTERM to PID 1, which forwards it.
  struct sigaction counting {
  }, saved[3];
  counting.sa_handler = [](int) { ++g_supervisor_handler_calls; };
  const int signals[] = {SIGTERM, SIGINT, SIGHUP};
  for (int i = 0; i < 3; ++i) ASSERT_EQ(::sigaction(signals[i], &counting, &saved[i]), 0);
  g_supervisor_handler_calls = 0;
  Ran r = Run("sleep 30", {}, /*timeout_ms=*/300);
  for (int i = 0; i < 3; ++i) ::sigaction(signals[i], &saved[i], nullptr);
  EXPECT_EQ(r.result.reason, EndReason::kTimedOut);
  EXPECT_EQ(r.result.exit_code, 128 + SIGTERM) << "PID 1 forwarded SIGTERM to the command";
  EXPECT_EQ(g_supervisor_handler_calls.load(), 0);
}

TEST_P(SandboxTest, ForkBombStopsAtThePidsLimit) {
  SandboxSpec box;
  box.limits.pids = 64;
  Ran r = Run("bomb() { bomb | bomb & }; bomb; sleep 2; exit 1", box, /*timeout_ms=*/15'000);
  EXPECT_TRUE(r.result.reason == EndReason::kPidsLimit || r.result.reason == EndReason::kTimedOut)
      << EndReasonName(r.result.reason) << " " << r.result.exit_code;
  EXPECT_LT(r.result.wall_ms, 14'000);
}

TEST_P(SandboxTest, MemoryHogIsOomKilledAndReported) {
  SandboxSpec box;
  box.limits.memory_bytes = 64 << 20;
  Ran r = Run("head -c 400m /dev/zero | tail > /dev/null", box);
  EXPECT_EQ(r.result.reason, EndReason::kOom)
      << EndReasonName(r.result.reason) << " exit " << r.result.exit_code << " " << r.err;
  EXPECT_GT(r.result.peak_memory_bytes, 32 << 20);
}

TEST_P(SandboxTest, OnlyTheCommandIsInTheSandboxsCgroupNeverItsInit) {
  // PID 1 runs in the supervisor's memory, and the OOM killer kills every process sharing its
  // victim's: were PID 1 in the limited cgroup, a memory hog could take the supervisor with it.
  auto anchor = Cgroup::Create("anchor-" + RandomHex(6), {});  // for our "nightshift" parents
  if (!anchor.ok()) GTEST_SKIP() << "no cgroups here: " << anchor.status();
  std::vector<std::filesystem::path> parents;
  for (const auto& procs : (*anchor)->procs_files()) {
    parents.push_back(procs.parent_path().parent_path());
  }
  const pid_t self = ::getpid();
  auto parent_of = [](pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(stat, line);
    pid_t ppid = 0;
    const size_t close = line.rfind(')');
    if (close != std::string::npos) std::sscanf(line.c_str() + close + 2, "%*c %d", &ppid);
    return ppid;
  };
  std::atomic<bool> done{false};
  int commands_seen = 0, inits_seen = 0;
  std::thread watcher([&] {
    while (!done) {
      for (const auto& parent : parents) {
        std::error_code ec;
        for (const auto& group : std::filesystem::directory_iterator(parent, ec)) {
          std::ifstream procs(group.path() / "cgroup.procs");
          for (pid_t pid; procs >> pid;) {
            const pid_t ppid = parent_of(pid);
            if (ppid == self) ++inits_seen;  // one of our sandboxes' PID 1s
            if (ppid > 0 && parent_of(ppid) == self) ++commands_seen;  // one of their commands
          }
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  SandboxSpec box;
  box.limits.memory_bytes = 64 << 20;
  Ran r = Run("sleep 1", box);
  done = true;
  watcher.join();
  EXPECT_EQ(r.result.exit_code, 0) << r.err;
  EXPECT_GT(commands_seen, 0) << "the command was never seen in a cgroup of ours";
  EXPECT_EQ(inits_seen, 0);
}

TEST_P(SandboxTest, TimeoutKillsATreeThatIgnoresSigtermAndDoubleForks) {
  Ran r = Run("trap '' TERM; (trap '' TERM; sleep 3011 &) ; sleep 3012", {}, /*timeout_ms=*/1000);
  EXPECT_EQ(r.result.reason, EndReason::kTimedOut);
  EXPECT_LT(r.result.wall_ms, 5000);
  // Nothing left behind: the PID namespace dies with its init (the kernel reaps it
  // asynchronously, so allow it a moment).
  std::string left;
  for (int i = 0; i < 100; ++i) {
    left = testing::Shell("pgrep -f 'sleep 301[12]' | wc -l").output;
    if (left == "0\n") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(left, "0\n");
}

INSTANTIATE_TEST_SUITE_P(ColdAndWarm, SandboxTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Warm" : "Cold"; });

// --- The pool itself ---

class SandboxPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root";
    ASSERT_EQ(::chown(dir_.path().c_str(), kUid, kUid), 0);
  }
  SandboxSpec Shape() const {
    return SandboxSpec{.workspace = dir_.path(), .host_uid = kUid, .host_gid = kUid};
  }
  StatusOr<ProcessResult> RunTrue(SandboxPool* pool, SandboxSpec box) {
    ProcessSpec spec{.argv = {"true"}, .env = {{"PATH", "/usr/bin:/bin"}}, .timeout_ms = 20'000};
    spec.sandbox = std::move(box);
    spec.pool = pool;
    return RunProcess(spec, nullptr);
  }
  // The pids of our waiting sandboxes: children of this process in another PID namespace.
  static int WaitingSandboxes() {
    return std::stoi(
        testing::Shell("pgrep -P " + std::to_string(::getpid()) + " -x contain_test | wc -l")
            .output);
  }
  testing::TempDir dir_;
};

TEST_F(SandboxPoolTest, RefillsAfterEachTake) {
  auto pool = SandboxPool::Start(Shape(), 2);
  ASSERT_TRUE(pool.ok()) << pool.status();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE((*pool)->WaitFull(10'000));
    auto r = RunTrue(pool->get(), Shape());
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->exit_code, 0);
  }
  ASSERT_TRUE((*pool)->WaitFull(10'000));
  auto stats = (*pool)->stats();
  EXPECT_EQ(stats.taken, 3);
  EXPECT_EQ(stats.idle, 2);
  EXPECT_EQ(stats.spawned, 5);
}

TEST_F(SandboxPoolTest, OtherShapesStartCold) {
  auto pool = SandboxPool::Start(Shape(), 1);
  ASSERT_TRUE(pool.ok()) << pool.status();
  SandboxSpec other = Shape();
  other.masked = {"/opt"};
  EXPECT_FALSE((*pool)->Matches(other));
  // More of the host is another root.
  SandboxSpec more_of_the_host = Shape();
  more_of_the_host.host_paths = {"/usr/share"};
  EXPECT_FALSE((*pool)->Matches(more_of_the_host));
  SandboxSpec same = Shape();
  same.hostname = "other-run";
  same.limits.pids = 10;
  EXPECT_TRUE((*pool)->Matches(same));
  auto r = RunTrue(pool->get(), other);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ((*pool)->stats().taken, 0);
}

TEST_F(SandboxPoolTest, AWaitingSandboxThatDiedIsNotUsed) {
  auto pool = SandboxPool::Start(Shape(), 1);
  ASSERT_TRUE(pool.ok()) << pool.status();
  ASSERT_TRUE((*pool)->WaitFull(10'000));
  // Kill the waiting sandbox behind the pool's back (an operator, the OOM killer).
  testing::Shell("pkill -KILL -P " + std::to_string(::getpid()) + " -x contain_test");
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto r = RunTrue(pool->get(), Shape());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ((*pool)->stats().taken, 0);
  EXPECT_EQ((*pool)->stats().missed, 1);
}

TEST_F(SandboxPoolTest, DestroyingThePoolLeavesNoSandboxBehind) {
  {
    auto pool = SandboxPool::Start(Shape(), 3);
    ASSERT_TRUE(pool.ok()) << pool.status();
    ASSERT_TRUE((*pool)->WaitFull(10'000));
    EXPECT_EQ(WaitingSandboxes(), 3);
  }
  EXPECT_EQ(WaitingSandboxes(), 0);
}

TEST_F(SandboxPoolTest, AFailureInsideTheSandboxIsReportedColdAndWarm) {
  // A rootfs whose /proc is a file: the sandbox fails inside, mounting /proc. A cold start
  // launches before PID 1 is ready, so the failure comes back through the control socket.
  auto rootfs = dir_.path() / "rootfs";
  std::filesystem::create_directories(rootfs);
  std::ofstream(rootfs / "proc") << "not a directory\n";
  SandboxSpec bad = Shape();
  bad.rootfs = rootfs;
  auto cold = RunTrue(nullptr, bad);
  ASSERT_FALSE(cold.ok()) << cold->exit_code << " " << EndReasonName(cold->reason);
  EXPECT_NE(cold.status().message().find("sandbox: mount /proc"), std::string::npos)
      << cold.status();
  EXPECT_NE(cold.status().message().find("Not a directory"), std::string::npos) << cold.status();
  auto pool = SandboxPool::Start(bad, 1);
  EXPECT_FALSE(pool.ok());
  // Nothing is left of either attempt.
  EXPECT_EQ(WaitingSandboxes(), 0);
}

// The cgroup of a process's last run goes before the process exits, though its PID 1 is reaped
// in the background. The test runs itself in a child process, in a cgroup of the test's own.
TEST_F(SandboxPoolTest, TheLastRunsCgroupGoesBeforeTheProcessExits) {
  if (std::getenv("NIGHTSHIFT_EXIT_HELPER") != nullptr) {
    // In the child: a run with limits whose PID 1 is left to the background reaper, then
    // straight to exit. Its /tmp holds 48 MiB, which the kernel takes a while to free as PID 1
    // exits.
    ProcessSpec spec{.argv = {"/bin/sh", "-c", "head -c 48m /dev/zero > /tmp/big"},
                     .env = {{"PATH", "/usr/bin:/bin"}},
                     .timeout_ms = 20'000};
    spec.sandbox = Shape();
    spec.sandbox->limits.memory_bytes = 128 << 20;
    auto r = RunProcess(spec, nullptr);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->exit_code, 0);
    return;
  }
  auto outer = Cgroup::Create("exit-test-" + RandomHex(8), {});
  if (!outer.ok()) GTEST_SKIP() << "no cgroups here: " << outer.status();
  // A shell of its own, which joins the cgroup, so that the children it starts are in it.
  std::string script;
  for (const auto& file : (*outer)->procs_files()) {
    script += "echo $$ > " + testing::ShellQuote(file.string()) + " && ";
  }
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  // Several times: whether the process or the reaper gets to the end first is a race.
  script += "for i in 1 2 3 4 5; do NIGHTSHIFT_EXIT_HELPER=1 " + testing::ShellQuote(self) +
            " --gtest_filter=SandboxPoolTest." + test + " >/dev/null || exit 1; done";
  auto r = testing::Shell("/bin/sh -c " + testing::ShellQuote(script));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const auto& file : (*outer)->procs_files()) {
    const auto parent = file.parent_path() / "nightshift";
    std::vector<std::string> left;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(parent, ec)) {
      if (entry.is_directory()) left.push_back(entry.path().filename().string());
    }
    EXPECT_TRUE(left.empty()) << parent << " still holds " << left.size() << " groups";
    for (const auto& group : left) ::rmdir((parent / group).c_str());
    ::rmdir(parent.c_str());
  }
}

// The mount point of a host path is made and opened one component at a time, refusing symlinks:
// a rootfs (or a layer, or a host directory) whose /opt points elsewhere on the host must not
// get the host's root to make directories, or mount, there.
TEST_F(SandboxPoolTest, AHostPathIsNeverMountedThroughASymlink) {
  HostScratch opt("/opt");
  auto rootfs = dir_.path() / "rootfs", elsewhere = dir_.path() / "elsewhere";
  std::filesystem::create_directories(rootfs);
  std::filesystem::create_directories(elsewhere);
  std::filesystem::create_symlink(elsewhere, rootfs / "opt");
  SandboxSpec box = Shape();
  box.rootfs = rootfs;
  box.host_paths = {opt.path()};
  auto r = RunTrue(nullptr, box);
  ASSERT_FALSE(r.ok()) << r->exit_code;
  EXPECT_NE(r.status().message().find("sandbox: mount a host directory"), std::string::npos)
      << r.status();
  EXPECT_NE(r.status().message().find("symbolic links"), std::string::npos) << r.status();
  EXPECT_TRUE(std::filesystem::is_empty(elsewhere));
}

TEST_F(SandboxPoolTest, AShapeThatCannotWorkFailsAtStart) {
  SandboxSpec bad = Shape();
  bad.rootfs = dir_.path() / "missing";
  auto pool = SandboxPool::Start(bad, 1);
  EXPECT_TRUE(IsInvalidArgument(pool.status())) << pool.status();
  EXPECT_TRUE(IsInvalidArgument(SandboxPool::Start(Shape(), 0).status()));
}

}  // namespace
}  // namespace nightshift::sandbox
