#include "probes/connections/connections_probe.h"

namespace ringwatch::probes::connections {

void ConnectionsProbe::run(const spec::ClusterSpec&, report::Report& report) {
  report.checks.push_back({"connections", report::Status::unknown, "connection audit not built yet", 0});
}

}  // namespace ringwatch::probes::connections
