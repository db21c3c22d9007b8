#pragma once
// The DNS audit (invariant 4). Being written; see issue 4.

#include "probes/probe.h"

namespace ringwatch::probes::dns {

class DnsProbe final : public Probe {
 public:
  std::string_view name() const override { return "dns"; }
  void run(const spec::ClusterSpec& spec, report::Report& report) override;
};

}  // namespace ringwatch::probes::dns
