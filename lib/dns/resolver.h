#pragma once
// DNS lookups for the DNS audit (invariant 4): for a name and one vantage
// point (a DNS server at host:port, or the system resolver from
// /etc/resolv.conf), ask for A and AAAA and return what came back, per type:
// the outcome (rcode or transport failure), the addresses with their TTLs, and
// the time it took. Resolving only: nothing here ever connects to an answer.
//
// The audit classifies Lookups; it gets them through the one-method Resolver
// interface so tests can script answers. AresResolver is the real one (c-ares,
// UDP, no search domains, no /etc/hosts, no retry on another server after a
// SERVFAIL/REFUSED: the audit wants the vantage point's own answer).
//
// Deadlines are absolute: every query of a call is cancelled at `deadline`
// and reported as a timeout, so a call never outlives it by more than a few
// milliseconds whatever the server does.
//
// Thread-safety: AresResolver holds no state between calls (one c-ares channel
// per call) and may be used from several threads at once.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "lib/net/address.h"
#include "lib/spec/cluster_spec.h"

namespace ringwatch::dns {

using Clock = std::chrono::steady_clock;

// How one query (one name, one type) ended. The first four are replies from
// the server; the rest mean the server's view is unknown.
enum class Outcome {
  noerror,             // NOERROR, possibly with no records of the type
  nxdomain,            // the name does not exist
  servfail,            // the server failed to resolve it
  refused,             // the server refuses to answer (e.g. not its zone, no recursion)
  timeout,             // no reply before the per-try timeouts ran out or the deadline
  connection_refused,  // ICMP port unreachable: nothing listens at the server's address
  other,               // any other failure (FORMERR, NOTIMP, a malformed reply, ...)
};
// "NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED", "timeout", "connection refused", "error"
const char* to_string(Outcome outcome);
// True for the outcomes that are a reply from the server (noerror..refused).
bool is_reply(Outcome outcome);

struct Answer {
  net::IpAddress address;
  std::uint32_t ttl_s = 0;
  friend bool operator==(const Answer&, const Answer&) = default;
};

// One query's result.
struct TypeResult {
  Outcome outcome = Outcome::other;
  std::string message;  // why, for the failures; empty for replies
  std::vector<Answer> answers;
  friend bool operator==(const TypeResult&, const TypeResult&) = default;
};

struct Lookup {
  std::string name;
  std::string server;  // "127.10.0.53:5353", or "system resolver 10.0.0.2:53"
  TypeResult a, aaaa;
  Clock::duration elapsed{};  // until both queries ended

  // The A answers followed by the AAAA answers.
  std::vector<Answer> answers() const;
};

class Resolver {
 public:
  virtual ~Resolver() = default;
  // A and AAAA for `name` at `server`, both ended by `deadline`.
  virtual Lookup resolve(const std::string& name, const spec::DnsServer& server,
                         Clock::time_point deadline) = 0;
  // Every name at one server, by the same deadline, results in the order of
  // `names`. The default asks one name after another; AresResolver asks all
  // at once on one channel.
  virtual std::vector<Lookup> resolve_all(const std::vector<std::string>& names,
                                          const spec::DnsServer& server,
                                          Clock::time_point deadline);
};

// The real resolver over c-ares. The per-try timeout is a third of the time
// left (two tries: t + 2t with c-ares' backoff), so a lost UDP datagram is
// retried once within the deadline.
class AresResolver final : public Resolver {
 public:
  // Initialises the c-ares library once per process. `resolv_conf` is where
  // the system resolver's configuration is read from (tests point it at a
  // file naming a loopback server, so no query ever leaves the machine).
  explicit AresResolver(std::string resolv_conf = "/etc/resolv.conf");
  Lookup resolve(const std::string& name, const spec::DnsServer& server,
                 Clock::time_point deadline) override;
  std::vector<Lookup> resolve_all(const std::vector<std::string>& names,
                                  const spec::DnsServer& server,
                                  Clock::time_point deadline) override;

 private:
  std::string resolv_conf_;
};

// "127.10.0.53:5353" for a server with an address, else "system resolver".
std::string describe(const spec::DnsServer& server);

}  // namespace ringwatch::dns
