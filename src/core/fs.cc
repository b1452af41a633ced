#include "core/fs.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <system_error>

namespace nightshift {

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) Reset(other.Release());
  return *this;
}

int UniqueFd::Release() {
  int fd = fd_;
  fd_ = -1;
  return fd;
}

void UniqueFd::Reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

namespace {

Status WriteAll(int fd, std::string_view content, const std::filesystem::path& path) {
  while (!content.empty()) {
    ssize_t n = ::write(fd, content.data(), content.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write", path.string());
    }
    content.remove_prefix(static_cast<size_t>(n));
  }
  return OkStatus();
}

}  // namespace

StatusOr<FileLock> FileLock::Acquire(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600));
  if (!fd.Valid()) return ErrnoError("open", path.string());
  while (::flock(fd.Get(), LOCK_EX) != 0) {
    if (errno != EINTR) return ErrnoError("flock", path.string());
  }
  return FileLock(std::move(fd));
}

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
  if (nonblocking_read) {
    int flags = ::fcntl(pipe.read.Get(), F_GETFL);
    if (flags < 0 || ::fcntl(pipe.read.Get(), F_SETFL, flags | O_NONBLOCK) != 0) {
      return ErrnoError("fcntl", "O_NONBLOCK");
    }
  }
  return pipe;
}

StatusOr<UniqueFd> MakeMemfdWith(std::string_view name, std::string_view content) {
  const std::string label(name);
  UniqueFd fd(::memfd_create(label.c_str(), MFD_CLOEXEC));
  if (!fd.Valid()) return ErrnoError("memfd_create", label);
  if (::write(fd.Get(), content.data(), content.size()) != static_cast<ssize_t>(content.size())) {
    return ErrnoError("write", label);
  }
  if (::lseek(fd.Get(), 0, SEEK_SET) != 0) return ErrnoError("lseek", label);
  return AboveStdio(std::move(fd));
}

StatusOr<std::string> ReadFile(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.Valid()) return ErrnoError("open", path.string());
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.Get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("read", path.string());
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Status WriteFileAtomic(const std::filesystem::path& path, std::string_view content, mode_t mode) {
  std::filesystem::path tmp = path;
  tmp += ".tmp-" + RandomHex(4);
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd.Valid()) return ErrnoError("create", tmp.string());
  Status st = WriteAll(fd.Get(), content, tmp);
  if (st.ok() && ::fsync(fd.Get()) != 0) st = ErrnoError("fsync", tmp.string());
  fd.Reset();
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) st = ErrnoError("rename", tmp.string());
  if (!st.ok()) ::unlink(tmp.c_str());
  return st;
}

Status CreateFileExclusive(const std::filesystem::path& path, std::string_view content,
                           mode_t mode) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd.Valid()) return ErrnoError("create", path.string());
  // The umask may have narrowed the mode; secrets must be exactly `mode`.
  if (::fchmod(fd.Get(), mode) != 0) return ErrnoError("chmod", path.string());
  RETURN_IF_ERROR(WriteAll(fd.Get(), content, path));
  if (::fsync(fd.Get()) != 0) return ErrnoError("fsync", path.string());
  return OkStatus();
}

StatusOr<std::filesystem::path> MakeTempDir(std::string_view prefix) {
  const char* tmpdir = std::getenv("TMPDIR");
  std::string pattern =
      std::string(tmpdir && *tmpdir ? tmpdir : "/tmp") + "/" + std::string(prefix) + "-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) return ErrnoError("mkdtemp", pattern);
  return std::filesystem::path(pattern);
}

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  size_t got = 0;
  while (got < bytes) {
    ssize_t n = ::getrandom(raw.data() + got, bytes - got, 0);
    if (n < 0) {
      NS_CHECK(errno == EINTR);
      continue;
    }
    got += static_cast<size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes * 2);
  for (unsigned char c : raw) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

void RemoveTreeQuietly(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

}  // namespace nightshift
