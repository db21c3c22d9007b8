#pragma once
// Exit codes of every ringwatch command: the monitoring-plugin convention,
// the same numbers as report::Status.

namespace ringwatch {

constexpr int kExitOk = 0;
constexpr int kExitWarning = 1;
constexpr int kExitCritical = 2;
constexpr int kExitUnknown = 3;  // bad configuration, bad usage, cannot run

}  // namespace ringwatch
