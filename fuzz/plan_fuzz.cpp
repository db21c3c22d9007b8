// Fuzz target: the migration plan (migration/plan). Every input is a plan or
// a SpecError with a bounded message. "${lab}" names fuzz/data, where a
// cluster spec is, so a plan can get as far as loading it.
#include "fuzz/fuzz.h"
#include "migration/plan.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ringwatch;
  const migration::Vars vars = {{"lab", RINGWATCH_FUZZ_DATA}, {"ringwatch", "/bin/true"}};
  try {
    migration::parse_plan(fuzz::text(data, size), RINGWATCH_FUZZ_DATA "/plan.json", vars);
  } catch (const spec::SpecError& error) {
    fuzz::expect_bounded_message(error.what());
  }
  return 0;
}
