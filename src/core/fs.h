#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "core/status.h"

namespace nightshift {

// Owns a file descriptor; closes it on destruction. Move-only.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }

  int Get() const { return fd_; }
  bool Valid() const { return fd_ >= 0; }
  int Release();
  void Reset(int fd = -1);

 private:
  int fd_ = -1;
};

// An exclusive flock(2) on a lock file, held while the object lives: serializes threads (each
// acquisition opens the file anew) and processes alike. Blocks until acquired.
class FileLock {
 public:
  static StatusOr<FileLock> Acquire(const std::filesystem::path& path);

 private:
  explicit FileLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;  // closing releases the lock
};

// `fd` itself if it is above the standard descriptors, else a close-on-exec duplicate that is (a
// child's dup2() onto 0/1/2 must not clobber one of its own sources, possible when the process
// runs with 0-2 closed).
StatusOr<UniqueFd> AboveStdio(UniqueFd fd);

// A pipe for a child's stdio, both ends close-on-exec and above the standard descriptors; the
// read end (ours) non-blocking if asked — O_NONBLOCK lives on the open file description, so
// only on the end the child does not share.
struct Pipe {
  UniqueFd read;
  UniqueFd write;
};
StatusOr<Pipe> MakePipe(bool nonblocking_read);

// An anonymous file (memfd) named `name` holding `content`, positioned at its start: a child's
// stdin. Close-on-exec, above the standard descriptors.
StatusOr<UniqueFd> MakeMemfdWith(std::string_view name, std::string_view content);

StatusOr<std::string> ReadFile(const std::filesystem::path& path);

// Writes through a temporary file and rename(2), so readers see the old or the new content.
Status WriteFileAtomic(const std::filesystem::path& path, std::string_view content,
                       mode_t mode = 0644);

// Creates `path` exclusively with `mode`; AlreadyExists if it is there.
Status CreateFileExclusive(const std::filesystem::path& path, std::string_view content,
                           mode_t mode);

// A fresh directory under $TMPDIR (or /tmp) named prefix-XXXXXX.
StatusOr<std::filesystem::path> MakeTempDir(std::string_view prefix);

// `bytes` random bytes from the kernel, hex-encoded.
std::string RandomHex(size_t bytes);

// Removes a directory tree; errors are ignored (best effort clean-up).
void RemoveTreeQuietly(const std::filesystem::path& path);

}  // namespace nightshift
