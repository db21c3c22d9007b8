// nutcracker (twemproxy 0.5) as the lab's proxy: a YAML pool with ketama
// and auto_eject_hosts, and a stats port.

#include <sstream>

#include "tools/lab/process.h"
#include "tools/lab/proxy_kind.h"

namespace ringwatch::lab {
namespace {

class Nutcracker final : public ProxyKind {
 public:
  const char* program() const override { return "nutcracker"; }
  std::filesystem::path locate() const override { return find_program("nutcracker"); }
  spec::ProxyKind spec_kind() const override { return spec::ProxyKind::twemproxy; }
  const char* config_extension() const override { return ".yml"; }
  bool has_stats_port() const override { return true; }
  const char* healthy_hash() const override { return "fnv1a_64"; }

  const std::vector<std::string>& hashes() const override {
    // nutcracker 0.5.0's hash functions (nc_conf.h HASH_CODEC).
    static const std::vector<std::string> names{"one_at_a_time", "md5",     "crc16",    "crc32",
                                                "crc32a",        "fnv1_64", "fnv1a_64", "fnv1_32",
                                                "fnv1a_32",      "hsieh",   "murmur",   "jenkins"};
    return names;
  }

  std::string config_text(const ProxyConfig& config) const override {
    std::ostringstream out;
    out << "# written by ringwatch lab for " << config.proxy
        << "; `ringwatch lab heal` restores the healthy version\n"
        << config.pool << ":\n"
        << "  listen: " << config.address << ":" << config.port << "\n"
        << "  hash: " << config.hash << "\n"
        << "  distribution: ketama\n"
        << "  auto_eject_hosts: true\n"
        << "  server_retry_timeout: 10000\n"
        // Two failures before an eject, and 600 ms per reply (below the spec's
        // 1000 ms io deadline, so a stalled backend shows as a proxy error, not
        // as a proxy timeout): one slow reply on a loaded machine must not eject.
        << "  server_failure_limit: 2\n"
        << "  timeout: 600\n"
        << "  preconnect: false\n"
        << "  servers:\n";
    // Named servers: the ketama ring hashes the name, so pointing a server at
    // another address keeps its place on the ring, as a DNS change would.
    for (const auto& server : config.servers)
      out << "    - " << server.host << ":" << server.port << ":" << server.weight << " "
          << server.name << "\n";
    return out.str();
  }

  std::vector<std::string> check_argv(const std::filesystem::path& program,
                                      const std::filesystem::path& config) const override {
    return {program.string(), "-t", "-c", config.string()};
  }

  std::vector<std::string> argv(const std::filesystem::path& program, const ProxyConfig& config,
                                const std::filesystem::path& config_file,
                                const std::filesystem::path& log) const override {
    return {program.string(), "-c", config_file.string(), "-a", config.address, "-s",
            std::to_string(config.stats_port), "-i", "1000",
            // Debian's nutcracker otherwise logs to /var/log/nutcracker/.
            "-o", log.string()};
  }

  std::optional<ConfigReload> reload() const override { return std::nullopt; }
  UnreachableBackend unreachable_backend() const override { return UnreachableBackend::ejected; }
};

}  // namespace

const ProxyKind& nutcracker() {
  static const Nutcracker kind;
  return kind;
}

}  // namespace ringwatch::lab
