// Fuzz target: a backend's `stats conns` (probes/connections/backend_peers).
#include "fuzz/fuzz.h"
#include "probes/connections/backend_peers.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ringwatch::probes::connections;
  const auto entries = parse_stats_conns(ringwatch::fuzz::text(data, size));
  if (!entries) {
    ringwatch::fuzz::expect_bounded_message(entries.error().message);
    return 0;
  }
  for (const ConnEntry& entry : entries.value()) (void)entry.describe();
  return 0;
}
