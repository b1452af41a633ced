#include "sandbox/userns.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <sys/prctl.h>

#include <cerrno>
#include <cstring>

#include "core/status.h"
#include "sandbox/raw_syscall.h"

namespace nightshift::sandbox::internal {

IdMaps MapRootTo(uid_t host_uid, gid_t host_gid) {
  return {StrCat("0 ", host_uid, " 1\n"), StrCat("0 ", host_gid, " 1\n")};
}

namespace {

// "<proc>/<pid>/<file>" into `out` (no allocation); false if it does not fit.
NS_CHILD bool ProcFilePath(const char* proc, pid_t pid, const char* file, char (&out)[256]) {
  char digits[16];
  int n = 0;
  for (auto v = static_cast<unsigned>(pid); n == 0 || v > 0; v /= 10) {
    digits[n++] = static_cast<char>('0' + v % 10);
  }
  size_t at = 0;
  auto put = [&](char c) {
    if (at + 1 < sizeof out) out[at++] = c;
  };
  for (const char* c = proc; *c != '\0'; ++c) put(*c);
  put('/');
  while (n > 0) put(digits[--n]);
  put('/');
  for (const char* c = file; *c != '\0'; ++c) put(*c);
  out[at] = '\0';
  return at + 1 < sizeof out;
}

NS_CHILD ContainFailure WriteProcFile(const char* proc, pid_t pid, const char* file,
                                      const char* content, size_t size) {
  char path[256];
  if (!ProcFilePath(proc, pid, file, path)) return Failed(ContainStep::kUserns, ENAMETOOLONG);
  const long fd = sys::Open(path, O_WRONLY | O_CLOEXEC);
  RETURN_IF_FAILED(Check(ContainStep::kUserns, fd));
  const long written = sys::Write(static_cast<int>(fd), content, size);
  sys::Close(static_cast<int>(fd));
  RETURN_IF_FAILED(Check(ContainStep::kUserns, written));
  if (static_cast<size_t>(written) != size) return Failed(ContainStep::kUserns, EIO);
  return std::nullopt;
}

}  // namespace

ContainFailure WriteIdMaps(const char* proc, pid_t payload, const IdMaps& maps) {
  // setgroups must be denied before an unprivileged gid_map would be accepted; for root it also
  // keeps the sandbox from dropping into supplementary groups it was never given.
  RETURN_IF_FAILED(WriteProcFile(proc, payload, "setgroups", "deny", 4));
  RETURN_IF_FAILED(
      WriteProcFile(proc, payload, "uid_map", maps.uid_map.data(), maps.uid_map.size()));
  return WriteProcFile(proc, payload, "gid_map", maps.gid_map.data(), maps.gid_map.size());
}

ContainFailure DropSupplementaryGroups() {
  // The raw call changes this process alone (glibc's would signal every thread it knows of).
  return Check(ContainStep::kSetId, sys::Setgroups(0, nullptr));
}

ContainFailure DropBoundingSet() {
  for (long cap = 0; cap <= 63; ++cap) {
    const int error = RawError(sys::Prctl(PR_CAPBSET_DROP, cap));
    if (error == EINVAL) break;  // past the last capability this kernel knows
    if (error != 0) return Failed(ContainStep::kCaps, error);
  }
  return std::nullopt;
}

ContainFailure BecomeRoot() {
  // Raw calls also because glibc's setresuid() signals every thread it believes the process has
  // (POSIX per-process credentials), and in a child of a multi-threaded supervisor those threads
  // do not exist here: it would wait for them forever.
  RETURN_IF_FAILED(Check(ContainStep::kSetId, sys::Setresgid(0)));
  return Check(ContainStep::kSetId, sys::Setresuid(0));
}

ContainFailure ClearCapabilities() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
  std::memset(data, 0, sizeof data);
  RETURN_IF_FAILED(
      Check(ContainStep::kCaps, RawSyscall(SYS_capset, sys::Arg(&header), sys::Arg(data))));
  sys::Prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL);  // empty already once permitted is
  return std::nullopt;
}

}  // namespace nightshift::sandbox::internal
