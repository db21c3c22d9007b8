#pragma once
// Small helpers for raw file descriptors.

#include <string_view>

namespace ringwatch::util {

// Writes all of `text` to `fd`, retrying short writes and EINTR. False (errno
// set) when a write fails.
bool write_all(int fd, std::string_view text);

}  // namespace ringwatch::util
