// Fuzz target: the cluster spec (lib/spec). Every input is a spec or a
// SpecError with a bounded message, and a spec written back reads the same.
#include "fuzz/fuzz.h"
#include "lib/spec/cluster_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ringwatch;
  try {
    const spec::ClusterSpec parsed =
        spec::parse_cluster_spec(fuzz::text(data, size), "cluster.json");
    const std::string written = spec::to_json(parsed);
    if (spec::parse_cluster_spec(written, "written.json") != parsed) {
      fuzz::broken("to_json does not read back as the same spec", written);
    }
  } catch (const spec::SpecError& error) {
    fuzz::expect_bounded_message(error.what());
  }
  return 0;
}
