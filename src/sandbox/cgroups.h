#pragma once

// Resource limits for one sandbox through cgroups: cgroup v2 where the unified hierarchy has
// the controllers enabled, else the v1 controllers (memory, pids, cpu) — this project's
// machines have v1 memory/pids/cpu and an empty v2 hierarchy.

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "sandbox/contain_step.h"

namespace nightshift::sandbox {

struct CgroupLimits {
  int64_t memory_bytes = 0;  // 0 = unlimited; swap is limited to the same total where possible
  int64_t pids = 0;          // 0 = unlimited
  double cpus = 0;           // 0 = unlimited; 1.5 = one and a half cores (CFS quota)

  bool any() const { return memory_bytes > 0 || pids > 0 || cpus > 0; }
};

struct CgroupUsage {
  int64_t peak_memory_bytes = 0;  // v1 memory.max_usage_in_bytes / v2 memory.peak (if present)
  int64_t cpu_usec = 0;           // v1 cpuacct.usage / v2 cpu.stat usage_usec (0 if unknown)
  bool oom_killed = false;        // the kernel OOM-killed a process of this cgroup
  bool pids_limit_hit = false;    // a fork failed because of the pids limit
};

// Where a process's own cgroups are, from the text of its /proc/<pid>/mountinfo and
// /proc/<pid>/cgroup. A hierarchy counts only when the process's cgroup lies inside what is
// mounted (a mount's root may be a subdirectory of the hierarchy, as in containers). Exposed
// for tests; Cgroup::Create uses it on /proc/self.
struct CgroupHierarchies {
  std::filesystem::path v2_dir;                          // empty: no usable cgroup2 mount
  std::map<std::string, std::filesystem::path> v1_dirs;  // "memory" → the process's own group
};
CgroupHierarchies FindCgroupHierarchies(std::string_view mountinfo,
                                        std::string_view proc_self_cgroup);
// This process's own: FindCgroupHierarchies on /proc/self. Unavailable if those cannot be read.
StatusOr<CgroupHierarchies> OwnCgroupHierarchies();

// One cgroup (v2) or one cgroup per v1 controller, named `name`, under Nightshift's parent
// group ("nightshift" below the current process's own cgroup, or the hierarchy root).
// RAII: the destructor kills what is left in it and removes the directories.
// Not thread-safe; one owner.
class Cgroup {
 public:
  // Creates the cgroup(s) and applies `limits` (the controllers they need must exist; the others
  // are used where present). Unavailable when no usable hierarchy exists
  // (callers may then run with rlimits only); InvalidArgument for impossible limits.
  static StatusOr<std::unique_ptr<Cgroup>> Create(const std::string& name,
                                                  const CgroupLimits& limits);
  ~Cgroup();
  Cgroup(const Cgroup&) = delete;
  Cgroup& operator=(const Cgroup&) = delete;

  // Applies `limits` (0 fields are left as they are). For a group made ahead of its run (a
  // pooled sandbox's). Unavailable if a limit's controller is missing.
  Status SetLimits(const CgroupLimits& limits);
  // Moves `pid` into the cgroup(s).
  Status AddProcess(pid_t pid);
  // The cgroup.procs files, for a child to write its own pid into before exec (async-signal-
  // safe: the child only open()s and write()s). Writing "0" means "the writer" and needs no
  // formatting; a pid is read in the writer's PID namespace, so both work after CLONE_NEWPID.
  const std::vector<std::filesystem::path>& procs_files() const { return procs_files_; }

  // `limit_events`: also whether the OOM killer or the pids limit struck (two more files; left
  // false in the result otherwise).
  CgroupUsage ReadUsage(bool limit_events = true) const;
  // SIGKILLs every process in the cgroup(s) and waits (bounded) until they are gone.
  Status KillAll();
  bool is_v2() const { return v2_; }

  // Removes the sandbox groups a process that died without cleaning up left behind (a server
  // killed with SIGKILL): empty groups named sandbox-* under this process's "nightshift"
  // parents, older than `min_age_seconds` — a live process's group is empty only for the moment
  // between its making and its first process joining. Returns how many it removed.
  static int RemoveStale(int64_t min_age_seconds);

 private:
  Cgroup() = default;
  Status CreateV2(const std::filesystem::path& own, const std::string& name,
                  const CgroupLimits& limits);
  Status CreateV1(const std::map<std::string, std::filesystem::path>& own_dirs,
                  const std::string& name, const CgroupLimits& limits);
  // mkdir `parent`/`name` and records it in dirs_; NotFound if `parent` is gone (another
  // Cgroup's destructor may remove an empty parent at any time: callers retry).
  StatusOr<std::filesystem::path> MakeGroup(const std::filesystem::path& parent,
                                            const std::string& name);

  bool v2_ = false;
  std::vector<std::filesystem::path> dirs_;         // one (v2) or one per v1 controller
  std::vector<std::filesystem::path> procs_files_;  // dirs_[i] / "cgroup.procs"
  std::vector<std::filesystem::path> parents_;      // the "nightshift" groups, removed if empty
  // The group that carries each controller's files (all the same in v2); empty if absent.
  std::filesystem::path memory_dir_, pids_dir_, cpu_dir_, cpuacct_dir_;
};

namespace internal {

// A cgroup's cgroup.procs files (Cgroup::procs_files), opened for writing by a sandbox's PID 1
// before it clones the payload: the payload joins through them (JoinCgroup) while PID 1 mounts,
// and by path it could not — once PID 1 has pivoted, the host's cgroup mounts are gone from the
// namespace they share. The writer's permission is the opener's. NS_CHILD.
inline constexpr int kMaxCgroupFiles = 8;
struct CgroupFiles {
  int fds[kMaxCgroupFiles];
  int count = 0;
};
NS_CHILD ContainFailure OpenCgroupFiles(const char* const* procs_files, CgroupFiles* files);
NS_CHILD void CloseCgroupFiles(const CgroupFiles& files);

// In the payload, first thing: joins the cgroup, so everything started in the sandbox is
// accounted there. Closes the files.
NS_CHILD ContainFailure JoinCgroup(const CgroupFiles& files);

}  // namespace internal
}  // namespace nightshift::sandbox
