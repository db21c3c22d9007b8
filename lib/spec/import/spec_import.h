#pragma once
// `ringwatch spec import`: a cluster spec from the configs operators already
// have, one per proxy (proxy_config.h reads them). The proxies are merged
// into one spec:
//
//   proxies   one per source, in the order given, with the client, stats and
//             pool its config (or the command line) gives;
//   backends  every server any proxy lists, once (by address and port), in
//             order of first appearance; named by the config's server name
//             where the first proxy listing it gives one, else after its
//             address: 10.0.0.1:11211 is "10.0.0.1-11211" (':' is not allowed
//             in a name; a v6 address keeps its other characters); no
//             dns_name (the configs list addresses), so the DNS check does
//             not apply to them;
//   name      --name, else the pool name every proxy shares.
//
// What the proxies do not agree on is imported anyway (the probe will find
// it) and listed in Imported::disagreements: a backend some proxies list and
// others do not, a backend named differently, a name used for two addresses,
// a server listed twice, weights, hash and distribution.
//
// Errors throw (exit 3 in the CLI): SpecError or ImportError from the
// readers, ImportError for what only the merge sees, std::invalid_argument
// from parse_source(). Messages: docs/spec.md, "Importing". Thread-safe.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/spec/cluster_spec.h"
#include "lib/spec/import/proxy_config.h"

namespace ringwatch::spec::import {

// One command-line source, "NAME=CONFIG[,client=ADDR][,stats=ADDR][,pool=POOL]".
// mcrouter needs client=. Throws std::invalid_argument with the reason.
Source parse_source(ProxyKind kind, std::string_view text);

struct Imported {
  ClusterSpec spec;
  std::vector<std::string> disagreements;  // one line each, for stderr
};

Imported import_spec(const std::vector<Source>& sources,
                     const std::optional<std::string>& cluster_name);

}  // namespace ringwatch::spec::import
