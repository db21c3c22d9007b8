// ringwatchd: a shim into the daemon library (daemon/daemon.h).
#include "daemon/daemon.h"

int main(int argc, char** argv) {
  return ringwatch::daemon::run_ringwatchd(argc, argv);
}
