#pragma once
// The DNS audit (invariant 4): every backend's dns_name, asked for A and AAAA
// at every vantage point (spec.dns_servers), must resolve inside the
// backend's expected_cidr, to its configured address, and the same at every
// vantage point. The audit only resolves: it never connects to an answer.
//
// Not applicable (an INFO finding, the status unchanged): a backend without a
// dns_name (the proxies know it by address), and every name when the spec
// lists no dns servers. With neither names nor servers the check says so in
// its summary and is OK.
//
// Findings (check "dns"; subject.backend = backend, subject.node = DNS name,
// subject.vantage = vantage point):
//   dns_outside_range      CRITICAL  an answer outside expected_cidr (an AAAA
//                                    answer against a v4 range is outside)
//   dns_no_answer          CRITICAL  NXDOMAIN, SERVFAIL, REFUSED, or NOERROR
//                                    with neither A nor AAAA records
//   dns_disagreement       CRITICAL  vantage points see different answer sets
//                                    (subject.vantage empty; the summary and
//                                    evidence name each vantage point)
//   dns_unexpected_address WARNING   inside the range, but not the backend's
//                                    configured address
//   dns_timeout            UNKNOWN   a vantage point did not reply in time; one
//   dns_unreachable        UNKNOWN   finding per vantage point (connection
//                                    refused, or another transport error), its
//                                    names left unchecked there
//   dns_unknown_vantage    UNKNOWN   only_vantage names no vantage point
//   dns_not_applicable     INFO      backends without a dns_name (one finding
//                                    naming them; subject.backend when one),
//                                    or names and no dns servers to ask
// A name counts as answered when at least one type has records; a SERVFAIL or
// REFUSED on the other type is then only evidence (dnsmasq REFUSEs AAAA for
// names it holds only A records for unless it is authoritative).
//
// Figures: dns_names, dns_vantage_points, dns_lookups (name x vantage point,
// each A + AAAA), dns_lookups_undecided, dns_answers_outside, dns_ms, and per
// backend and vantage point `dns_answer_expected/<backend>/<vantage>`: 1 when
// the name resolved there and every answer is inside expected_cidr, 0 when an
// answer is outside or the name does not resolve, absent when undecided
// (timeout, unreachable). '/' never occurs in a spec name.
//
// Deadline: all vantage points are asked in parallel, every name of one
// vantage point at once, all bounded by one spec.timeouts.dns.
//
// The answers outside a backend's range are told to the round
// (RoundContext::dns) for the diagnosis.
//
// Thread-safety: as every Probe (one thread at a time); the Resolver it is
// given must allow concurrent calls for different vantage points.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lib/dns/resolver.h"
#include "probes/probe.h"

namespace ringwatch {
class WorkerPool;
}

namespace ringwatch::probes::dns {

class DnsProbe final : public Probe {
 public:
  // `only_vantage`: audit from that one vantage point (one node's view, e.g.
  // `ringwatch probe --vantage p2-resolver`); an unknown name makes the check
  // UNKNOWN (validate earlier with vantage_points()). `resolver`: null for the
  // real c-ares resolver; tests hand in a scripted one.
  explicit DnsProbe(std::optional<std::string> only_vantage = std::nullopt,
                    std::shared_ptr<ringwatch::dns::Resolver> resolver = nullptr);
  ~DnsProbe() override;

  std::string_view name() const override { return report::checks::kDns; }
  void run(const spec::ClusterSpec& spec, RoundContext& round, report::Report& report) override;

  const std::optional<std::string>& only_vantage() const { return only_vantage_; }

 private:
  // Every name at every vantage point: [vantage][name], each vantage point
  // bounded by one spec.timeouts.dns.
  std::vector<std::vector<ringwatch::dns::Lookup>> resolve(
      const spec::ClusterSpec& spec, const std::vector<spec::DnsServer>& vantages,
      const std::vector<std::string>& names);

  std::optional<std::string> only_vantage_;
  std::shared_ptr<ringwatch::dns::Resolver> resolver_;
  std::unique_ptr<WorkerPool> pool_;
};

// The vantage points a round asks: spec.dns_servers (none when the spec
// lists none: the check is then not applicable); only `only_vantage` if
// given. Throws std::invalid_argument if `only_vantage` names none of them:
//   no DNS vantage point named "x" in the spec (known: lab-dns, system)
//   no DNS vantage point named "x" in the spec (it lists no dns servers)
std::vector<spec::DnsServer> vantage_points(const spec::ClusterSpec& spec,
                                            const std::optional<std::string>& only_vantage);

}  // namespace ringwatch::probes::dns
