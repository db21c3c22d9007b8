#pragma once
// The connection audit (invariant 3). Being written; see issue 4.

#include "probes/probe.h"

namespace ringwatch::probes::connections {

class ConnectionsProbe final : public Probe {
 public:
  std::string_view name() const override { return "connections"; }
  void run(const spec::ClusterSpec& spec, report::Report& report) override;
};

}  // namespace ringwatch::probes::connections
