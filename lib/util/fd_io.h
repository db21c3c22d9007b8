#pragma once
// Small helpers for raw file descriptors.

#include <unistd.h>

#include <string_view>

namespace ringwatch::util {

// Owns one file descriptor (or none, -1) and closes it.
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

// Writes all of `text` to `fd`, retrying short writes and EINTR. False (errno
// set) when a write fails.
bool write_all(int fd, std::string_view text);

}  // namespace ringwatch::util
