// memcached's built-in proxy (1.6.38, --enable-proxy) as the lab's proxy:
// a route config for the routelib.lua that ships beside the binary
// (tools/build-memcached-proxy.sh), one pool over the lab's backends and one
// route to it.
//
// Measured on the live program (see probes/connections/README.md):
//   - routelib's pool distributes keys by jump hash (xxhash of the key) over
//     the backends in the order listed, so proxies with the same list agree,
//     and a backend pointed at another address keeps its place: the eject
//     fault's backend keeps its keys, which then fail with SERVER_ERROR
//     ("backend failure") instead of moving; leaving a backend out moves most
//     keys;
//   - a backend it cannot connect to is marked bad after
//     backend_failure_limit failed connects (well under a second when refused)
//     and listed in `stats proxybe` as `bad_<label> <worker threads>`;
//   - SIGHUP reloads the config at the next once-a-second clock tick; `stats`
//     counts it in proxy_config_reloads (counted when the reload begins) and
//     proxy_config_reload_fails; backends whose label, host and port stay the
//     same keep their connections.
//   - backends are named only by a "host:port label" string whose label is
//     letters only, so they are written as tables with a `label`.

#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <sstream>
#include <stdexcept>

#include "tools/lab/proxy_kind.h"

namespace ringwatch::lab {
namespace {

namespace fs = std::filesystem;

constexpr const char* kVersionDir = "memcached-proxy-1.6.38";

// The pool options each hash fault writes (routelib passes them to mcp.pool).
// "jump" is routelib's default and what a healthy proxy uses.
const char* pool_options(const std::string& hash) {
  if (hash == "ring") return "{ dist = mcp.dist_ring_hash }";
  if (hash == "ketama")
    return R"({ dist = mcp.dist_ring_hash, omode = "ketama", hash = mcp.dist_ring_hash.hash })";
  if (hash == "seeded") return R"({ seed = "ringwatch-lab" })";
  return nullptr;
}

// A Lua string literal for text the lab wrote itself (names, addresses).
std::string lua_string(const std::string& text) {
  return "\"" + text + "\"";
}

class MemcachedProxy final : public ProxyKind {
 public:
  const char* program() const override { return "memcached (with its proxy)"; }

  fs::path locate() const override {
    fs::path binary;
    if (const char* set = std::getenv("RINGWATCH_MEMCACHED_PROXY"); set && *set) {
      binary = set;
    } else {
      const char* cache = std::getenv("RINGWATCH_CACHE_DIR");
      binary =
          fs::path(cache && *cache ? cache : "/var/cache/ringwatch") / kVersionDir / "memcached";
    }
    std::error_code ec;
    if (!fs::is_regular_file(binary, ec) || !fs::is_regular_file(routelib(binary), ec))
      throw std::runtime_error(
          "memcached with its built-in proxy is not at " + binary.string() + " (with " +
          routelib(binary).filename().string() +
          " beside it); build it with tools/install-deps.sh, or set RINGWATCH_MEMCACHED_PROXY "
          "to its path");
    return fs::absolute(binary);
  }

  spec::ProxyKind spec_kind() const override { return spec::ProxyKind::memcached_proxy; }
  const char* config_extension() const override { return ".lua"; }
  bool has_stats_port() const override { return false; }
  const char* healthy_hash() const override { return "jump"; }

  const std::vector<std::string>& hashes() const override {
    static const std::vector<std::string> names{"jump", "ring", "ketama", "seeded"};
    return names;
  }

  std::string config_text(const ProxyConfig& config) const override {
    std::ostringstream out;
    out << "-- written by ringwatch lab for " << config.proxy
        << "; `ringwatch lab heal` restores the healthy version\n"
        // Below the spec's 1000 ms io deadline, so a stalled backend shows as
        // the proxy's SERVER_ERROR, not as a proxy timeout; a backend that was
        // down is retried every second.
        << "settings{ backend_connect_timeout = 0.6, backend_read_timeout = 0.6,\n"
        << "          backend_retry_waittime = 1 }\n"
        << "pools{ [" << lua_string(config.pool) << "] = {\n";
    if (const char* options = pool_options(config.hash)) out << "  options = " << options << ",\n";
    out << "  backends = {\n";
    for (const auto& server : config.servers)
      out << "    { host = " << lua_string(server.host) << ", port = " << server.port
          << ", label = " << lua_string(server.name) << " },\n";
    out << "  } } }\n"
        << "routes{ default = route_direct{ child = " << lua_string(config.pool) << " } }\n";
    return out.str();
  }

  std::vector<std::string> check_argv(const fs::path&, const fs::path&) const override {
    return {};  // memcached has no config check; a config it rejects fails its start
  }

  std::vector<std::string> argv(const fs::path& program, const ProxyConfig& config,
                                const fs::path& config_file, const fs::path&) const override {
    std::vector<std::string> argv{program.string()};
    // memcached refuses to run as root without a user to run as.
    if (::geteuid() == 0) argv.insert(argv.end(), {"-u", "root"});
    argv.insert(argv.end(), {"-l", config.address, "-p", std::to_string(config.port), "-U", "0",
                             "-t", "2", "-m", "16", "-c", "1024", "-o",
                             "proxy_config=" + routelib(program).string() +
                                 ",proxy_arg=" + fs::absolute(config_file).string()});
    return argv;
  }

  std::optional<ConfigReload> reload() const override {
    return ConfigReload{SIGHUP, "proxy_config_reloads", "proxy_config_reload_fails"};
  }

  UnreachableBackend unreachable_backend() const override { return UnreachableBackend::marked_bad; }

 private:
  static fs::path routelib(const fs::path& binary) { return binary.parent_path() / "routelib.lua"; }
};

}  // namespace

const ProxyKind& memcached_proxy() {
  static const MemcachedProxy kind;
  return kind;
}

}  // namespace ringwatch::lab
