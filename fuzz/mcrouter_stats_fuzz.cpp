// Fuzz target: mcrouter's stats (probes/connections): the input is up to
// three replies separated by NUL bytes (`stats servers`, `stats
// suspect_servers`, `stats`), each parsed as stat lines, then judged.
#include "fuzz/fuzz.h"
#include "fuzz/replies.h"
#include "probes/connections/proxy_adapters.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ringwatch::probes::connections;
  const auto parts = ringwatch::fuzz::stat_replies(ringwatch::fuzz::text(data, size), 3);
  if (!parts) return 0;
  const auto view = parse_mcrouter_stats((*parts)[0], (*parts)[1], (*parts)[2]);
  if (!view) ringwatch::fuzz::expect_bounded_message(view.error().message);
  return 0;
}
