#include "sandbox/cgroups.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <optional>
#include <set>
#include <system_error>
#include <thread>
#include <utility>

#include "core/clock.h"
#include "core/fs.h"
#include "core/log.h"
#include "sandbox/raw_syscall.h"

namespace nightshift::sandbox {
namespace {

namespace fs = std::filesystem;

constexpr const char* kParentName = "nightshift";
constexpr int64_t kMinMemoryBytes = int64_t{1} << 20;
constexpr int64_t kCfsPeriodUsec = 100000;
constexpr int64_t kMinCfsQuotaUsec = 1000;  // the kernel refuses quotas below 1 ms
constexpr double kMaxCpus = 1 << 20;
constexpr int64_t kKillTimeoutMs = 5000;
constexpr int64_t kKillPollMs = 10;
constexpr int64_t kRmdirTimeoutMs = 1000;
constexpr int64_t kRmdirPollMs = 20;
constexpr int kCreateAttempts = 5;

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    size_t end = s.find(sep, start);
    if (end == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

std::optional<int64_t> ParseInt64(std::string_view s) {
  s = Trim(s);
  int64_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return value;
}

// mountinfo writes space, tab, newline and backslash in paths as \ooo (octal).
std::string UnescapeMountField(std::string_view s) {
  auto octal = [](char c) { return c >= '0' && c <= '7'; };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && octal(s[i + 1]) && octal(s[i + 2]) && octal(s[i + 3])) {
      out.push_back(
          static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Where the group `path` (as /proc/self/cgroup names it, relative to the hierarchy root) is
// found below a mount of that hierarchy whose root is `root`; nullopt if the mount does not
// show it (a container may mount only its own subtree).
std::optional<fs::path> DirInMount(const fs::path& mount_point, std::string_view root,
                                   std::string_view path) {
  if (root.size() > 1 && root.back() == '/') root.remove_suffix(1);
  std::string_view rest;
  if (root == "/") {
    rest = path;
  } else if (path == root) {
    rest = "";
  } else if (path.size() > root.size() && path.substr(0, root.size()) == root &&
             path[root.size()] == '/') {
    rest = path.substr(root.size());
  } else {
    return std::nullopt;
  }
  while (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
  return rest.empty() ? mount_point : mount_point / rest;
}

bool Exists(const fs::path& path) { return ::access(path.c_str(), F_OK) == 0; }

// 0 or an errno value.
int WriteRaw(const fs::path& path, std::string_view value) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.Valid()) return errno;
  for (;;) {
    ssize_t n = ::write(fd.Get(), value.data(), value.size());
    if (n >= 0) return static_cast<size_t>(n) == value.size() ? 0 : EIO;
    if (errno != EINTR) return errno;
  }
}

Status WriteControl(const fs::path& path, std::string_view value) {
  int err = WriteRaw(path, value);
  if (err == 0) return OkStatus();
  return ErrnoError(StrCat("write \"", value, "\" to"), path.string(), err);
}

std::optional<int64_t> ReadInt64File(const fs::path& path) {
  auto text = ReadFile(path);
  if (!text.ok()) return std::nullopt;
  return ParseInt64(*text);
}

// The value of `key` in a flat-keyed file ("key value" lines: memory.events, cpu.stat, ...).
std::optional<int64_t> ReadKeyedValue(const fs::path& path, std::string_view key) {
  auto text = ReadFile(path);
  if (!text.ok()) return std::nullopt;
  for (std::string_view line : Split(*text, '\n')) {
    size_t space = line.find(' ');
    if (space != std::string_view::npos && line.substr(0, space) == key) {
      return ParseInt64(line.substr(space + 1));
    }
  }
  return std::nullopt;
}

StatusOr<std::set<std::string, std::less<>>> ReadWords(const fs::path& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  std::set<std::string, std::less<>> words;
  for (std::string_view word : Split(Trim(text), ' ')) {
    if (!Trim(word).empty()) words.emplace(Trim(word));
  }
  return words;
}

// Failing to make our groups for lack of rights means "no usable hierarchy" to callers, who
// may then fall back to rlimits.
Status SetupError(std::string_view operation, const fs::path& path, int err) {
  Status st = ErrnoError(operation, path.string(), err);
  if (err == EACCES || err == EPERM || err == EROFS) {
    return UnavailableError(StrCat(st.message(), " (cgroups need root or a delegated hierarchy)"));
  }
  return st;
}

Status ValidateName(const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.size() > 200 ||
      name.find_first_of(std::string_view("/\0\n", 3)) != std::string::npos) {
    return InvalidArgumentError(StrCat("invalid cgroup name \"", name, "\""));
  }
  return OkStatus();
}

int64_t CfsQuotaUsec(double cpus) { return std::llround(cpus * kCfsPeriodUsec); }

Status ValidateLimits(const CgroupLimits& limits) {
  if (limits.memory_bytes < 0) {
    return InvalidArgumentError(StrCat("negative memory limit ", limits.memory_bytes));
  }
  if (limits.memory_bytes > 0 && limits.memory_bytes < kMinMemoryBytes) {
    return InvalidArgumentError(StrCat("impossible limit: memory ", limits.memory_bytes,
                                       " bytes is below the minimum of 1 MiB"));
  }
  if (limits.pids < 0) return InvalidArgumentError(StrCat("negative pids limit ", limits.pids));
  if (!std::isfinite(limits.cpus) || limits.cpus < 0) {
    return InvalidArgumentError(StrCat("invalid cpus limit ", limits.cpus));
  }
  if (limits.cpus > kMaxCpus) {
    return InvalidArgumentError(StrCat("impossible limit: ", limits.cpus, " cpus"));
  }
  if (limits.cpus > 0 && CfsQuotaUsec(limits.cpus) < kMinCfsQuotaUsec) {
    return InvalidArgumentError(
        StrCat("impossible limit: ", limits.cpus, " cpus is below the minimum of 0.01"));
  }
  return OkStatus();
}

// v2: the controllers are usable below `dir` only if they are in its cgroup.controllers.
bool V2HasControllers(const fs::path& dir) {
  auto controllers = ReadWords(dir / "cgroup.controllers");
  return controllers.ok() && controllers->contains("memory") && controllers->contains("pids");
}

// v2: makes `controllers` available to the children of `dir`.
Status EnableControllers(const fs::path& dir, const std::vector<std::string>& controllers) {
  const fs::path file = dir / "cgroup.subtree_control";
  auto enabled = ReadWords(file);
  if (!enabled.ok()) return enabled.status();
  std::string add;
  for (const std::string& c : controllers) {
    if (!enabled->contains(c)) add += StrCat(add.empty() ? "" : " ", "+", c);
  }
  if (add.empty()) return OkStatus();
  int err = WriteRaw(file, add);
  if (err == 0) return OkStatus();
  if (err == EBUSY) {
    // The "no internal processes" rule: a non-root v2 group that has processes of its own
    // cannot hand controllers down to children.
    return UnavailableError(
        StrCat("cannot enable ", add, " in ", file.string(),
               ": the group has processes of its own, and cgroup v2 then refuses controllers to "
               "its children; run nightshift in a leaf group below a delegated one"));
  }
  return SetupError(StrCat("write \"", add, "\" to"), file, err);
}

std::set<pid_t> ReadMembers(const std::vector<fs::path>& procs_files) {
  std::set<pid_t> pids;
  for (const fs::path& file : procs_files) {
    auto text = ReadFile(file);
    if (!text.ok()) continue;
    for (std::string_view line : Split(*text, '\n')) {
      if (auto pid = ParseInt64(line); pid && *pid > 0) pids.insert(static_cast<pid_t>(*pid));
    }
  }
  return pids;
}

}  // namespace

CgroupHierarchies FindCgroupHierarchies(std::string_view mountinfo,
                                        std::string_view proc_self_cgroup) {
  // /proc/self/cgroup: "ID:controller,controller:/path" per v1 hierarchy, "0::/path" for v2.
  std::optional<std::string> v2_path;
  std::map<std::string, std::string, std::less<>> v1_paths;
  for (std::string_view line : Split(proc_self_cgroup, '\n')) {
    size_t first = line.find(':');
    size_t second = first == std::string_view::npos ? first : line.find(':', first + 1);
    if (second == std::string_view::npos) continue;
    std::string_view id = line.substr(0, first);
    std::string_view controllers = line.substr(first + 1, second - first - 1);
    std::string_view path = line.substr(second + 1);
    if (id == "0" && controllers.empty()) {
      v2_path = std::string(path);
      continue;
    }
    for (std::string_view c : Split(controllers, ',')) {
      if (!c.empty()) v1_paths.emplace(std::string(c), std::string(path));
    }
  }

  // mountinfo: "ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER".
  CgroupHierarchies out;
  for (std::string_view line : Split(mountinfo, '\n')) {
    std::vector<std::string_view> fields = Split(line, ' ');
    auto dash = std::find(fields.begin(), fields.end(), "-");
    if (dash == fields.end() || dash - fields.begin() < 6 || fields.end() - dash < 4) continue;
    std::string_view fstype = dash[1];
    std::string root = UnescapeMountField(fields[3]);
    fs::path mount_point = UnescapeMountField(fields[4]);
    if (fstype == "cgroup2") {
      if (!v2_path || !out.v2_dir.empty()) continue;
      if (auto dir = DirInMount(mount_point, root, *v2_path)) out.v2_dir = *dir;
    } else if (fstype == "cgroup") {
      for (std::string_view option : Split(dash[3], ',')) {
        auto path = v1_paths.find(option);
        if (path == v1_paths.end() || out.v1_dirs.contains(path->first)) continue;
        if (auto dir = DirInMount(mount_point, root, path->second)) {
          out.v1_dirs.emplace(path->first, *dir);
        }
      }
    }
  }
  return out;
}

StatusOr<CgroupHierarchies> OwnCgroupHierarchies() {
  auto mountinfo = ReadFile("/proc/self/mountinfo");
  if (!mountinfo.ok()) return UnavailableError(mountinfo.status().message());
  auto own = ReadFile("/proc/self/cgroup");
  if (!own.ok()) return UnavailableError(own.status().message());
  return FindCgroupHierarchies(*mountinfo, *own);
}

StatusOr<std::unique_ptr<Cgroup>> Cgroup::Create(const std::string& name,
                                                 const CgroupLimits& limits) {
  RETURN_IF_ERROR(ValidateName(name));
  RETURN_IF_ERROR(ValidateLimits(limits));
  ASSIGN_OR_RETURN(const CgroupHierarchies found, OwnCgroupHierarchies());

  // Not make_unique: the constructor is private. On failure the destructor removes what was made.
  std::unique_ptr<Cgroup> cgroup(new Cgroup());
  Status st = !found.v2_dir.empty() && V2HasControllers(found.v2_dir)
                  ? cgroup->CreateV2(found.v2_dir, name, limits)
                  : cgroup->CreateV1(found.v1_dirs, name, limits);
  if (st.ok()) st = cgroup->SetLimits(limits);
  if (!st.ok()) return st.WithContext(StrCat("cgroup ", name));
  return cgroup;
}

StatusOr<fs::path> Cgroup::MakeGroup(const fs::path& parent, const std::string& name) {
  fs::path dir = parent / name;
  if (::mkdir(dir.c_str(), 0755) != 0) {
    int err = errno;
    if (err == ENOENT) return NotFoundError(StrCat("mkdir ", dir.string(), ": parent is gone"));
    return SetupError("mkdir", dir, err);
  }
  dirs_.push_back(dir);
  procs_files_.push_back(dir / "cgroup.procs");
  if (std::find(parents_.begin(), parents_.end(), parent) == parents_.end()) {
    parents_.push_back(parent);
  }
  return dir;
}

Status Cgroup::CreateV2(const fs::path& own, const std::string& name, const CgroupLimits& limits) {
  v2_ = true;
  ASSIGN_OR_RETURN(auto available, ReadWords(own / "cgroup.controllers"));
  std::vector<std::string> controllers = {"memory", "pids"};
  if (available.contains("cpu")) {
    controllers.push_back("cpu");
  } else if (limits.cpus > 0) {
    return UnavailableError(
        StrCat("the cgroup v2 group ", own.string(), " has no cpu controller (for the cpu limit)"));
  }
  const fs::path parent = own / kParentName;
  fs::path dir;
  for (int attempt = 0; dir.empty(); ++attempt) {
    // Each step may find the parent removed by another Cgroup's destructor: then start over.
    RETURN_IF_ERROR(EnableControllers(own, controllers));
    if (::mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST) {
      return SetupError("mkdir", parent, errno);
    }
    Status st = EnableControllers(parent, controllers);
    if (st.ok()) {
      auto made = MakeGroup(parent, name);
      if (made.ok()) {
        dir = *made;
        break;
      }
      st = made.status();
    }
    if (!IsNotFound(st) || attempt + 1 == kCreateAttempts) return st;
  }
  memory_dir_ = pids_dir_ = cpu_dir_ = cpuacct_dir_ = dir;
  if (!available.contains("cpu")) cpu_dir_.clear();
  return OkStatus();
}

Status Cgroup::CreateV1(const std::map<std::string, fs::path>& own_dirs, const std::string& name,
                        const CgroupLimits& limits) {
  v2_ = false;
  struct Controller {
    const char* name;
    bool needed;
    const char* for_what;
    fs::path* dir;
  };
  const Controller controllers[] = {
      {"memory", limits.memory_bytes > 0, "the memory limit", &memory_dir_},
      {"pids", limits.pids > 0, "the pids limit", &pids_dir_},
      {"cpu", limits.cpus > 0, "the cpu limit", &cpu_dir_},
      {"cpuacct", false, "cpu usage", &cpuacct_dir_},
  };
  bool any = false;
  for (const Controller& c : controllers) {
    if (own_dirs.contains(c.name)) {
      any = true;
    } else if (c.needed) {
      return UnavailableError(StrCat("the cgroup v1 ", c.name, " controller is not mounted (",
                                     "needed for ", c.for_what, ") and cgroup v2 has no usable ",
                                     "memory and pids controllers"));
    }
  }
  if (!any) {
    return UnavailableError(
        "no usable cgroup hierarchy: no cgroup2 mount with the memory and pids controllers, and "
        "none of the cgroup v1 controllers memory, pids, cpu, cpuacct is mounted");
  }

  // Co-mounted controllers ("cpu,cpuacct") share one directory.
  std::map<fs::path, fs::path> made;  // own group → our group below it
  for (const Controller& c : controllers) {
    auto own = own_dirs.find(c.name);
    if (own == own_dirs.end()) continue;
    if (!made.contains(own->second)) {
      const fs::path parent = own->second / kParentName;
      for (int attempt = 0;; ++attempt) {
        std::error_code ec;
        fs::create_directories(parent, ec);
        if (ec) return SetupError("mkdir", parent, ec.value());
        auto dir = MakeGroup(parent, name);
        if (dir.ok()) {
          made.emplace(own->second, *dir);
          break;
        }
        if (!IsNotFound(dir.status()) || attempt + 1 == kCreateAttempts) return dir.status();
      }
    }
    *c.dir = made.at(own->second);
  }

  return OkStatus();
}

Status Cgroup::SetLimits(const CgroupLimits& limits) {
  RETURN_IF_ERROR(ValidateLimits(limits));
  auto missing = [](const char* controller, const char* for_what) {
    return UnavailableError(
        StrCat("this cgroup has no ", controller, " controller (needed for ", for_what, ")"));
  };
  if (limits.memory_bytes > 0) {
    if (memory_dir_.empty()) return missing("memory", "the memory limit");
    const std::string bytes = std::to_string(limits.memory_bytes);
    if (v2_) {
      RETURN_IF_ERROR(WriteControl(memory_dir_ / "memory.max", bytes));
      // Absent when the kernel does not account swap; then there is no swap to limit either.
      const fs::path swap = memory_dir_ / "memory.swap.max";
      if (Exists(swap)) RETURN_IF_ERROR(WriteControl(swap, "0"));
    } else {
      RETURN_IF_ERROR(WriteControl(memory_dir_ / "memory.limit_in_bytes", bytes));
      // memory+swap; must not be below limit_in_bytes, hence second. Absent without swap
      // accounting.
      const fs::path memsw = memory_dir_ / "memory.memsw.limit_in_bytes";
      if (Exists(memsw)) RETURN_IF_ERROR(WriteControl(memsw, bytes));
    }
  }
  if (limits.pids > 0) {
    if (pids_dir_.empty()) return missing("pids", "the pids limit");
    RETURN_IF_ERROR(WriteControl(pids_dir_ / "pids.max", std::to_string(limits.pids)));
  }
  if (limits.cpus > 0) {
    if (cpu_dir_.empty()) return missing("cpu", "the cpu limit");
    if (v2_) {
      RETURN_IF_ERROR(WriteControl(cpu_dir_ / "cpu.max",
                                   StrCat(CfsQuotaUsec(limits.cpus), " ", kCfsPeriodUsec)));
    } else {
      RETURN_IF_ERROR(WriteControl(cpu_dir_ / "cpu.cfs_period_us", std::to_string(kCfsPeriodUsec)));
      RETURN_IF_ERROR(
          WriteControl(cpu_dir_ / "cpu.cfs_quota_us", std::to_string(CfsQuotaUsec(limits.cpus))));
    }
  }
  return OkStatus();
}

int Cgroup::RemoveStale(int64_t min_age_seconds) {
  auto found = OwnCgroupHierarchies();
  if (!found.ok()) return 0;
  std::vector<fs::path> parents;
  if (!found->v2_dir.empty()) parents.push_back(found->v2_dir / kParentName);
  for (const auto& [controller, dir] : found->v1_dirs) parents.push_back(dir / kParentName);
  const auto now = std::chrono::system_clock::now();
  int removed = 0;
  for (const fs::path& parent : parents) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(parent, ec)) {
      const std::string name = entry.path().filename().string();
      if (!name.starts_with("sandbox-") || !entry.is_directory()) continue;
      struct stat st {};
      if (::stat(entry.path().c_str(), &st) != 0) continue;
      const auto made = std::chrono::system_clock::from_time_t(st.st_mtime);
      if (now - made < std::chrono::seconds(min_age_seconds)) continue;
      auto procs = ReadFile(entry.path() / "cgroup.procs");
      if (!procs.ok() || !Trim(*procs).empty()) continue;
      if (::rmdir(entry.path().c_str()) == 0) ++removed;
    }
  }
  return removed;
}

Cgroup::~Cgroup() {
  // The logger only on error: a sandbox's cgroup may go on the background reaper's thread while
  // the process exits and its loggers are being destroyed.
  auto log = [] { return log::Get("sandbox"); };
  Status st = KillAll();
  if (!st.ok()) log()->error("{}", st.ToString());
  for (auto dir = dirs_.rbegin(); dir != dirs_.rend(); ++dir) {
    // A group whose last process has just died can be busy for a moment.
    const int64_t give_up = MonotonicMs() + kRmdirTimeoutMs;
    while (::rmdir(dir->c_str()) != 0) {
      if (errno == ENOENT) break;
      if (errno != EBUSY || MonotonicMs() >= give_up) {
        log()->error("{}", ErrnoError("rmdir", dir->string()).ToString());
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(kRmdirPollMs));
    }
  }
  // The shared parents go when the last sandbox does; while others use them this fails (EBUSY)
  // and that is fine.
  for (const fs::path& parent : parents_) ::rmdir(parent.c_str());
}

Status Cgroup::AddProcess(pid_t pid) {
  if (pid <= 0) return InvalidArgumentError(StrCat("invalid pid ", pid));
  for (const fs::path& file : procs_files_) {
    int err = WriteRaw(file, std::to_string(pid));
    if (err != 0) return ErrnoError(StrCat("add process ", pid, " to"), file.string(), err);
  }
  return OkStatus();
}

CgroupUsage Cgroup::ReadUsage(bool limit_events) const {
  CgroupUsage usage;
  if (v2_) {
    const fs::path& dir = memory_dir_;
    usage.peak_memory_bytes = ReadInt64File(dir / "memory.peak").value_or(0);
    if (limit_events) {
      usage.oom_killed = ReadKeyedValue(dir / "memory.events", "oom_kill").value_or(0) > 0;
      usage.pids_limit_hit = ReadKeyedValue(dir / "pids.events", "max").value_or(0) > 0;
    }
    usage.cpu_usec = ReadKeyedValue(dir / "cpu.stat", "usage_usec").value_or(0);
    return usage;
  }
  if (!memory_dir_.empty()) {
    usage.peak_memory_bytes = ReadInt64File(memory_dir_ / "memory.max_usage_in_bytes").value_or(0);
    // The OOM-kill counter (kernel 4.13+); failcnt only says the limit was reached, which
    // page-cache reclaim does all the time.
    if (limit_events) {
      usage.oom_killed =
          ReadKeyedValue(memory_dir_ / "memory.oom_control", "oom_kill").value_or(0) > 0;
    }
  }
  if (!pids_dir_.empty() && limit_events) {
    usage.pids_limit_hit = ReadKeyedValue(pids_dir_ / "pids.events", "max").value_or(0) > 0;
  }
  if (!cpuacct_dir_.empty()) {
    usage.cpu_usec = ReadInt64File(cpuacct_dir_ / "cpuacct.usage").value_or(0) / 1000;
  }
  return usage;
}

Status Cgroup::KillAll() {
  if (dirs_.empty()) return OkStatus();
  if (v2_) {
    // cgroup.kill (5.14+) kills atomically, forks in flight included; the loop below then only
    // waits. Without it, the loop does the killing.
    const fs::path kill_file = dirs_.front() / "cgroup.kill";
    if (Exists(kill_file)) (void)WriteRaw(kill_file, "1");
  }
  const int64_t give_up = MonotonicMs() + kKillTimeoutMs;
  for (;;) {
    std::set<pid_t> members = ReadMembers(procs_files_);
    if (members.empty()) return OkStatus();
    if (MonotonicMs() >= give_up) {
      return DeadlineExceededError(StrCat(members.size(), " process(es) still in ",
                                          dirs_.front().string(), " ", kKillTimeoutMs,
                                          " ms after SIGKILL, e.g. pid ", *members.begin()));
    }
    // A pid read from cgroup.procs may belong to an unrelated process by the time we signal it
    // (the member died and the number was reused). So: pin each process with a pidfd, then
    // check membership again, then signal through the pidfd.
    std::vector<std::pair<pid_t, UniqueFd>> pinned;
    for (pid_t pid : members) {
      UniqueFd fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
      if (fd.Valid()) {
        pinned.emplace_back(pid, std::move(fd));
      } else if (errno == ENOSYS) {
        ::kill(pid, SIGKILL);  // kernels before 5.3: accept the small reuse race
      }
    }
    const std::set<pid_t> still = ReadMembers(procs_files_);
    for (const auto& [pid, fd] : pinned) {
      if (still.contains(pid)) ::syscall(SYS_pidfd_send_signal, fd.Get(), SIGKILL, nullptr, 0);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(kKillPollMs));
  }
}

namespace internal {

ContainFailure OpenCgroupFiles(const char* const* procs_files, CgroupFiles* files) {
  files->count = 0;
  for (; *procs_files != nullptr; ++procs_files) {
    if (files->count == kMaxCgroupFiles) return Failed(ContainStep::kCgroup, E2BIG);
    const long fd = sys::Open(*procs_files, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      CloseCgroupFiles(*files);
      return Failed(ContainStep::kCgroup, RawError(fd));
    }
    files->fds[files->count++] = static_cast<int>(fd);
  }
  return std::nullopt;
}

void CloseCgroupFiles(const CgroupFiles& files) {
  for (int i = 0; i < files.count; ++i) sys::Close(files.fds[i]);
}

ContainFailure JoinCgroup(const CgroupFiles& files) {
  for (int i = 0; i < files.count; ++i) {
    const long written = sys::Write(files.fds[i], "0", 1);  // "0": the writer
    if (written < 0) {
      CloseCgroupFiles(files);
      return Failed(ContainStep::kCgroup, RawError(written));
    }
  }
  CloseCgroupFiles(files);
  return std::nullopt;
}

}  // namespace internal
}  // namespace nightshift::sandbox
