#include "probes/views.h"

#include <algorithm>
#include <map>
#include <string_view>
#include <utility>

namespace ringwatch::probes {
namespace {

std::string canary_side(const CanaryRound& canary, const std::string& proxy,
                        const std::string& backend) {
  const bool backend_down =
      std::any_of(canary.unreachable_backends.begin(), canary.unreachable_backends.end(),
                  [&](const CanaryRound::UnreachableBackend& b) { return b.backend == backend; });
  const auto routed = canary.routed.find(proxy);
  if (backend_down || canary.unreachable_proxies.contains(proxy) || routed == canary.routed.end()) {
    return "unknown";
  }
  return routed->second.contains(backend) ? "routed" : "not_routed";
}

// One colour for the cell: what is wrong wins over what is fine.
std::string link_state(const report::LinkView& link) {
  if (link.proxy_side == "ejected") return "ejected";
  if (link.canary == "not_routed" || link.proxy_side == "missing" ||
      link.backend_side == "missing") {
    return "missing";
  }
  if (link.canary == "routed" || link.proxy_side == "connected" ||
      link.backend_side == "connected") {
    return "ok";
  }
  if (link.proxy_side == "idle") return "idle";
  return "unknown";
}

}  // namespace

void describe_views(const spec::ClusterSpec& spec, const RoundContext& round,
                    report::Report& report) {
  if (round.canary || round.connections) {
    // The audit's cells by link, looked up once per link: a scan per link
    // was P·B x P·B string compares (7 s a round at 1000x50). A link listed
    // twice keeps its last cell, as the scan did.
    std::map<std::pair<std::string_view, std::string_view>, const ConnectionsRound::Cell*> cells;
    if (round.connections) {
      for (const auto& cell : round.connections->cells) {
        cells.insert_or_assign(
            std::pair<std::string_view, std::string_view>(cell.link.proxy, cell.link.backend),
            &cell);
      }
    }
    // Reserved: at 1000x50 (50,000 links), growing the vector link by link
    // spent 5% of ringwatchd's CPU moving links into each larger buffer.
    report.links.reserve(report.links.size() + spec.proxies.size() * spec.backends.size());
    for (const spec::Proxy& proxy : spec.proxies) {
      for (const spec::Backend& backend : spec.backends) {
        report::LinkView link{proxy.name, backend.name, "", "", "", ""};
        if (round.canary) link.canary = canary_side(*round.canary, proxy.name, backend.name);
        const auto found = cells.find({proxy.name, backend.name});
        if (found != cells.end()) {
          link.proxy_side = found->second->proxy_side;
          link.backend_side = found->second->backend_side;
        }
        link.state = link_state(link);
        report.links.push_back(std::move(link));
      }
    }
  }
  if (round.dns) {
    for (const auto& answer : round.dns->answers) {
      report.dns_answers.push_back(
          {answer.backend, answer.node, answer.vantage, answer.addresses, answer.verdict});
    }
  }
}

}  // namespace ringwatch::probes
