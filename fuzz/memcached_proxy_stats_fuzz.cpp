// Fuzz target: memcached's built-in proxy stats (probes/connections): the
// input is two replies separated by a NUL byte (`stats`, `stats proxybe`),
// judged against fuzz/data/cluster.json's backends.
#include "fuzz/fuzz.h"
#include "fuzz/replies.h"
#include "probes/connections/proxy_adapters.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ringwatch;
  static const spec::ClusterSpec cluster =
      spec::load_cluster_spec(RINGWATCH_FUZZ_DATA "/cluster.json");
  const auto parts = fuzz::stat_replies(fuzz::text(data, size), 2);
  if (!parts) return 0;
  const auto view =
      probes::connections::parse_memcached_proxy_stats((*parts)[0], (*parts)[1], cluster);
  if (!view) fuzz::expect_bounded_message(view.error().message);
  return 0;
}
