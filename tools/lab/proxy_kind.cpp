// The lab's proxy kinds, by the name `--proxy-kind` and lab.json use.

#include "tools/lab/proxy_kind.h"

namespace ringwatch::lab {

const ProxyKind& proxy_kind(LabProxyKind kind) {
  switch (kind) {
    case LabProxyKind::twemproxy:
      return nutcracker();
    case LabProxyKind::memcached:
      return memcached_proxy();
  }
  return nutcracker();
}

const char* to_string(LabProxyKind kind) {
  switch (kind) {
    case LabProxyKind::twemproxy:
      return "twemproxy";
    case LabProxyKind::memcached:
      return "memcached";
  }
  return "twemproxy";
}

std::optional<LabProxyKind> parse_lab_proxy_kind(std::string_view name) {
  for (const auto kind : {LabProxyKind::twemproxy, LabProxyKind::memcached})
    if (name == to_string(kind)) return kind;
  return std::nullopt;
}

}  // namespace ringwatch::lab
