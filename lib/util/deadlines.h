#pragma once
// How long a network call may take: to connect (name resolution included
// where there is one), and for the I/O of the exchange. Every client of ours
// (memcached, TCP stats, HTTP) takes these; a cluster spec's `timeouts` give
// the probes' values.

#include <chrono>

namespace ringwatch::util {

struct Deadlines {
  std::chrono::milliseconds connect{250};
  std::chrono::milliseconds io{1000};
  friend bool operator==(const Deadlines&, const Deadlines&) = default;
};

}  // namespace ringwatch::util
