// Fuzz target: ringwatchd's fleet file (daemon/fleet), inline specs and all.
// Every input is a fleet or a SpecError with a bounded message.
#include "daemon/fleet.h"
#include "fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ringwatch;
  try {
    daemon::parse_fleet(fuzz::text(data, size), RINGWATCH_FUZZ_DATA "/fleet.json");
  } catch (const spec::SpecError& error) {
    fuzz::expect_bounded_message(error.what());
  }
  return 0;
}
