#pragma once
// What one proxy's own config says, as far as a cluster spec cares: where
// clients talk to it, which pool, and the servers of that pool. One reader
// per config format (nutcracker YAML, mcrouter JSON); spec_import.h merges
// the proxies into one spec.
//
// A config the reader cannot use throws: SpecError for the file itself
// (unreadable, invalid JSON, "<file>: <pointer>: ...", lib/spec/json_cursor.h)
// or ImportError for YAML ("<file>:<line>: ..."). Messages are in
// docs/spec.md, "Importing"; tests compare them word for word. Pure apart from
// reading the file; thread-safe.

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "lib/net/address.h"
#include "lib/spec/cluster_spec.h"

namespace ringwatch::spec::import {

// A config that cannot be imported. what(): "<file>:<line>: <message>" (YAML,
// line from 1), or "<file>: <message>" about the whole file.
class ImportError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One proxy to import, from the command line (see parse_source()).
struct Source {
  ProxyKind kind = ProxyKind::twemproxy;
  std::string proxy;                    // the proxy's name in the spec
  std::string config;                   // its config file
  std::optional<std::string> pool;      // pool=: which pool of the config
  std::optional<net::Endpoint> client;  // client=: where clients talk to it
  std::optional<net::Endpoint> stats;   // stats=: its stats endpoint
};

struct ProxyConfig {
  Source source;
  std::string pool;  // the pool read
  net::Endpoint client;
  std::optional<net::Endpoint> stats;
  // How the proxy places keys, where the config says ("" where it does not).
  std::string hash, distribution;

  struct Server {
    net::Endpoint endpoint;  // canonical address and port
    std::string name;        // the config's name for it; "" when unnamed
    std::string weight;      // as written; "" when the format has none
    std::string where;       // "tw1.yml:12" or "mc.json: /pools/A/servers/0"
  };
  std::vector<Server> servers;  // in the config's order
};

// twemproxy (nutcracker) YAML: a mapping of pool names to pools. The pool is
// `pool=`, else the only one, else the one named `default_pool` (the
// cluster's name when given). The client address is the pool's `listen`
// (`client=` overrides it, and is needed when `listen` is a wildcard); the
// stats endpoint is `stats=`, else the client's host on port 22222.
ProxyConfig read_nutcracker(const Source& source, const std::optional<std::string>& default_pool);

// mcrouter JSON (comments and trailing commas allowed; macros and @import
// are not expanded): `pools` maps pool names to objects with `servers`
// ("host:port" strings). The pool is chosen as for nutcracker; `client=` is
// required (an mcrouter's port is on its command line, not in its config).
// The hash is the pool's PoolRoute `hash` (`hash_func`, default Ch3), and
// weights the WeightedCh3 `weights` (or the pool's `hash_weights`).
ProxyConfig read_mcrouter(const Source& source, const std::optional<std::string>& default_pool);

// The pool a config's `pools` (in file order) offers for `source`; throws
// ImportError "<where>: ..." naming the pools when none fits.
std::string choose_pool(const std::vector<std::string>& pools, const Source& source,
                        const std::optional<std::string>& default_pool, const std::string& where);

}  // namespace ringwatch::spec::import
