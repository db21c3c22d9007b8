// Fuzz target: twemproxy's stats document (probes/connections). Any input is
// a view or a ViewError; a malformed one never crashes, recurses or hangs.
#include "fuzz/fuzz.h"
#include "probes/connections/proxy_adapters.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ringwatch::probes::connections;
  const auto view = parse_twemproxy_stats(ringwatch::fuzz::text(data, size), "alpha");
  if (!view) ringwatch::fuzz::expect_bounded_message(view.error().message);
  return 0;
}
