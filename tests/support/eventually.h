#pragma once
// Polls a condition until it holds or a timeout passes: the one way tests wait
// for something another thread or process does. The timeout is a bound on a
// hang, not an assertion about speed: make it generous.

#include <chrono>
#include <thread>

namespace ringwatch::testing {

template <class Condition>
bool eventually(Condition condition,
                std::chrono::milliseconds timeout = std::chrono::milliseconds(20000),
                std::chrono::milliseconds poll = std::chrono::milliseconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(poll);
  }
  return condition();
}

}  // namespace ringwatch::testing
