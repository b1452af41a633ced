// A probe for sandbox tests (after bubblewrap's try-syscall): makes one system call and prints
// "ok" or the errno name, so a test can tell "denied" from "not attempted".
// Usage: try_syscall NAME [ARG]

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: try_syscall NAME [ARG]\n");
    return 2;
  }
  std::string name = argv[1];
  long arg = argc > 2 ? std::atol(argv[2]) : 0;
  long r = -1;
  if (name == "mount") {
    r = ::mount("none", "/tmp", "tmpfs", 0, nullptr);
  } else if (name == "remount_root_rw") {
    r = ::mount(nullptr, "/", nullptr, MS_REMOUNT | MS_BIND, nullptr);
  } else if (name == "unshare_user") {
    r = ::unshare(CLONE_NEWUSER);
  } else if (name == "unshare_mount") {
    r = ::unshare(CLONE_NEWNS);
  } else if (name == "init_module") {
    r = ::syscall(SYS_init_module, nullptr, 0, "");
  } else if (name == "finit_module") {
    r = ::syscall(SYS_finit_module, 0, "", 0);
  } else if (name == "ptrace_attach") {
    r = ::ptrace(PTRACE_ATTACH, static_cast<pid_t>(arg), nullptr, nullptr);
  } else if (name == "kill") {
    r = ::kill(static_cast<pid_t>(arg), 0);
  } else if (name == "setns_pid1_net") {
    int fd = ::open("/proc/1/ns/net", O_RDONLY);
    r = fd < 0 ? -1 : ::setns(fd, 0);
  } else if (name == "bpf") {
    r = ::syscall(SYS_bpf, 0, nullptr, 0);
  } else if (name == "chroot") {
    r = ::chroot("/tmp");
  } else if (name == "sethostname") {
    r = ::sethostname("escaped", 7);
  } else {
    std::fprintf(stderr, "unknown probe %s\n", name.c_str());
    return 2;
  }
  if (r == 0) {
    std::printf("ok\n");
    return 0;
  }
  std::printf("%s\n", strerrorname_np(errno));
  return 1;
}
