#pragma once
// The lab's faults (eject, dns, hash, kill, stall, restart) and heal; the
// interface is inject() and heal() in tools/lab/lab.h, the mechanics of each
// fault are specified there. Internal to tools/lab.

#include <string>

#include "tools/lab/state.h"

namespace ringwatch::lab {

// One active fault, as `ringwatch lab status` shows it.
std::string describe(const State& state, const FaultRecord& fault);

}  // namespace ringwatch::lab
