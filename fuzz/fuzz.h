#pragma once
// What every fuzz target shares: the input as text, and the properties an
// input may break (a crash, a hang, a sanitizer report or one of these is a
// finding). Each target is one LLVMFuzzerTestOneInput: built with libFuzzer
// by tools/test.sh when clang is present (fuzz/CMakeLists.txt), and replayed
// over its seed corpus and its regressions by a normal test in every build.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace ringwatch::fuzz {

inline std::string_view text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// A property the code under test promised and broke: abort, so libFuzzer
// (and the replay test) report the input.
[[noreturn]] inline void broken(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz: %s: %.2000s\n", what, detail.c_str());
  std::abort();
}

// Error messages echo bounded values (issue 12, point 8): none may grow with
// the input.
inline void expect_bounded_message(const std::string& message) {
  constexpr std::size_t kMaxMessage = 4096;
  if (message.size() > kMaxMessage) broken("an unbounded message", message.substr(0, 300));
}

}  // namespace ringwatch::fuzz
