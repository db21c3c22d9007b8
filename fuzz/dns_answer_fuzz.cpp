// Fuzz target: the DNS answer-section check (lib/dns/answer) that decides
// whether a reply's address records are usable; c-ares parses the rest.
#include "fuzz/fuzz.h"
#include "lib/dns/answer.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ringwatch;
  for (const auto type : {dns::kTypeA, dns::kTypeAaaa}) {
    if (auto problem = dns::answer_problem(fuzz::text(data, size), type)) {
      fuzz::expect_bounded_message(*problem);
    }
  }
  return 0;
}
