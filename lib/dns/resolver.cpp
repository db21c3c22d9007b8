#include "lib/dns/resolver.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <string_view>

#include "lib/dns/answer.h"

namespace ringwatch::dns {

namespace {

// More than a name should ever have; extra records are dropped by c-ares.
constexpr int kMaxAddresses = 64;

long long ms_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::ceil<std::chrono::milliseconds>(to - from).count();
}

// ares_library_init is not thread-safe and must run before any channel
// exists; c-ares is never cleaned up (other threads may still resolve at exit).
int library_status() {
  static std::once_flag once;
  static int status = ARES_SUCCESS;
  std::call_once(once, [] { status = ares_library_init(ARES_LIB_INIT_ALL); });
  return status;
}

// What the server's sockets saw, so that c-ares' catch-all ECONNREFUSED (its
// status for every query that ends without a reply: a refused connection, but
// also a TCP answer the server cut short) can be told apart. Filled by the
// socket functions below, which do what c-ares' own would and take notes.
struct Transport {
  std::map<ares_socket_t, bool> is_tcp;
  bool refused = false;                   // ECONNREFUSED on a connect, send or receive
  std::size_t tcp_bytes = 0;              // received over TCP
  std::optional<std::size_t> tcp_closed;  // the server closed a TCP connection after N bytes
};

Transport& notes(void* user_data) {
  return *static_cast<Transport*>(user_data);
}

ares_socket_t open_socket(int family, int type, int protocol, void* user_data) {
  const int fd = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd >= 0) notes(user_data).is_tcp[fd] = type == SOCK_STREAM;
  return fd >= 0 ? fd : ARES_SOCKET_BAD;
}

int close_socket(ares_socket_t fd, void* user_data) {
  notes(user_data).is_tcp.erase(fd);
  return ::close(fd);
}

int connect_socket(ares_socket_t fd, const sockaddr* address, ares_socklen_t length,
                   void* user_data) {
  const int result = ::connect(fd, address, length);
  if (result < 0 && errno == ECONNREFUSED) notes(user_data).refused = true;
  return result;
}

ares_ssize_t receive_socket(ares_socket_t fd, void* buffer, size_t length, int flags,
                            sockaddr* from, ares_socklen_t* from_length, void* user_data) {
  const ssize_t got = ::recvfrom(fd, buffer, length, flags, from, from_length);
  Transport& transport = notes(user_data);
  const bool tcp = transport.is_tcp[fd];
  if (got < 0 && errno == ECONNREFUSED) transport.refused = true;
  if (got > 0 && tcp) transport.tcp_bytes += static_cast<std::size_t>(got);
  if (got == 0 && tcp) transport.tcp_closed = transport.tcp_bytes;
  return got;
}

ares_ssize_t send_socket(ares_socket_t fd, const iovec* parts, int count, void* user_data) {
  const ssize_t sent = ::writev(fd, parts, count);
  if (sent < 0 && errno == ECONNREFUSED) notes(user_data).refused = true;
  return sent;
}

const ares_socket_functions kSocketFunctions = {open_socket, close_socket, connect_socket,
                                                receive_socket, send_socket};

// Why a query ended in c-ares' ECONNREFUSED, from what the sockets saw.
TypeResult ended_without_reply(const Transport& transport, const std::string& server) {
  if (transport.refused) {
    return {Outcome::connection_refused,
            "connection refused by " + server + " (nothing listens there)",
            {}};
  }
  if (transport.tcp_closed) {
    return {Outcome::other,
            *transport.tcp_closed == 0
                ? server + " closed the TCP connection without an answer"
                : server + " closed the TCP connection in the middle of an answer (after " +
                      std::to_string(*transport.tcp_closed) + " bytes)",
            {}};
  }
  return {Outcome::other, "no usable answer from " + server, {}};
}

TypeResult failure(Outcome outcome, std::string message) {
  TypeResult result;
  result.outcome = outcome;
  result.message = std::move(message);
  return result;
}

// One query in flight; c-ares calls on_reply with it as `arg`.
struct Query {
  TypeResult* result = nullptr;
  Lookup* lookup = nullptr;
  int* lookup_pending = nullptr;  // queries of this lookup still in flight
  int* channel_pending = nullptr;
  int type = ns_t_a;
  Clock::time_point started;
  long long budget_ms = 0;  // for the timeout message
  std::string server;
  const Transport* transport = nullptr;
};

TypeResult parse_reply(int type, unsigned char* abuf, int alen) {
  // c-ares drops address records it cannot read and calls what is left an
  // empty answer; a record of the asked type that is broken makes the reply
  // malformed.
  if (const auto problem = answer_problem(
          std::string_view(reinterpret_cast<const char*>(abuf), static_cast<std::size_t>(alen)),
          type == ns_t_a ? kTypeA : kTypeAaaa)) {
    return failure(Outcome::other, "malformed reply: " + *problem);
  }
  TypeResult result;
  result.outcome = Outcome::noerror;
  int count = kMaxAddresses;
  hostent* host = nullptr;
  int status = ARES_SUCCESS;
  if (type == ns_t_a) {
    ares_addrttl ttls[kMaxAddresses];
    status = ares_parse_a_reply(abuf, alen, &host, ttls, &count);
    if (status == ARES_SUCCESS) {
      for (int i = 0; i < count; ++i) {
        Answer answer;
        std::memcpy(answer.address.bytes, &ttls[i].ipaddr, 4);
        answer.ttl_s = static_cast<std::uint32_t>(std::max(ttls[i].ttl, 0));
        result.answers.push_back(answer);
      }
    }
  } else {
    ares_addr6ttl ttls[kMaxAddresses];
    status = ares_parse_aaaa_reply(abuf, alen, &host, ttls, &count);
    if (status == ARES_SUCCESS) {
      for (int i = 0; i < count; ++i) {
        Answer answer;
        answer.address.v6 = true;
        std::memcpy(answer.address.bytes, &ttls[i].ip6addr, 16);
        answer.ttl_s = static_cast<std::uint32_t>(std::max(ttls[i].ttl, 0));
        result.answers.push_back(answer);
      }
    }
  }
  if (host != nullptr) ares_free_hostent(host);
  // ENODATA: NOERROR whose answer section holds no record of this type (only
  // a CNAME, say); an empty NOERROR, not a failure.
  if (status != ARES_SUCCESS && status != ARES_ENODATA) {
    return failure(Outcome::other, std::string("malformed reply: ") + ares_strerror(status));
  }
  return result;
}

void on_reply(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
  Query& query = *static_cast<Query*>(arg);
  TypeResult& result = *query.result;
  switch (status) {
    case ARES_SUCCESS:
      result = parse_reply(query.type, abuf, alen);
      break;
    case ARES_ENODATA:
      result = {Outcome::noerror, "", {}};
      break;  // NOERROR, no answers
    case ARES_ENOTFOUND:
      result = {Outcome::nxdomain, "", {}};
      break;
    case ARES_ESERVFAIL:
      result = {Outcome::servfail, "", {}};
      break;
    case ARES_EREFUSED:
      result = {Outcome::refused, "", {}};
      break;
    case ARES_ETIMEOUT:
    case ARES_ECANCELLED:  // cancelled by us at the deadline
    case ARES_EDESTRUCTION:
      result = failure(Outcome::timeout, "no reply from " + query.server + " within " +
                                             std::to_string(query.budget_ms) + " ms");
      break;
    case ARES_ECONNREFUSED:
      result = ended_without_reply(*query.transport, query.server);
      break;
    default:
      result = failure(Outcome::other, std::string(ares_strerror(status)));
      break;
  }
  --*query.channel_pending;
  if (--*query.lookup_pending == 0) query.lookup->elapsed = Clock::now() - query.started;
}

std::string format_server(const ares_addr_port_node& node) {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(node.family, &node.addr, text, sizeof text);
  const int port = node.udp_port ? node.udp_port : NS_DEFAULTPORT;
  return node.family == AF_INET6 ? "[" + std::string(text) + "]:" + std::to_string(port)
                                 : std::string(text) + ":" + std::to_string(port);
}

// The servers the system resolver configuration gave the channel.
std::string describe_system(ares_channel channel) {
  ares_addr_port_node* servers = nullptr;
  std::string text;
  if (ares_get_servers_ports(channel, &servers) == ARES_SUCCESS) {
    for (auto* node = servers; node != nullptr; node = node->next) {
      text += (text.empty() ? "" : ", ") + format_server(*node);
    }
  }
  if (servers != nullptr) ares_free_data(servers);
  return text.empty() ? "system resolver" : "system resolver " + text;
}

// Drives `channel` until nothing is pending or the deadline passes; then
// cancels what is left (its callbacks report a timeout).
void drive(ares_channel channel, const int& pending, Clock::time_point deadline) {
  while (pending > 0) {
    const Clock::time_point now = Clock::now();
    if (now >= deadline) break;
    ares_socket_t sockets[ARES_GETSOCK_MAXNUM];
    const int bits = ares_getsock(channel, sockets, ARES_GETSOCK_MAXNUM);
    pollfd fds[ARES_GETSOCK_MAXNUM];
    nfds_t count = 0;
    for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
      const bool readable = ARES_GETSOCK_READABLE(bits, i);
      const bool writable = ARES_GETSOCK_WRITABLE(bits, i);
      if (!readable && !writable) continue;
      fds[count++] = {sockets[i],
                      static_cast<short>((readable ? POLLIN : 0) | (writable ? POLLOUT : 0)), 0};
    }
    // Wake for c-ares' own retry timer or the deadline, whichever is first.
    const auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - now);
    timeval max_wait{static_cast<time_t>(left.count() / 1000000),
                     static_cast<suseconds_t>(left.count() % 1000000)};
    timeval wait{};
    const timeval* next = ares_timeout(channel, &max_wait, &wait);
    const int wait_ms = static_cast<int>(next->tv_sec * 1000 + (next->tv_usec + 999) / 1000);
    const int ready = poll(fds, count, wait_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      break;  // cannot wait: what is pending becomes a timeout below
    }
    if (ready == 0) {
      ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // retries and timeouts
      continue;
    }
    for (nfds_t i = 0; i < count; ++i) {
      // POLLERR on a connected UDP socket is a pending ICMP error (port
      // unreachable): let c-ares read it and fail the query.
      const bool read = fds[i].revents & (POLLIN | POLLERR | POLLHUP);
      const bool write = fds[i].revents & POLLOUT;
      if (!read && !write) continue;
      ares_process_fd(channel, read ? fds[i].fd : ARES_SOCKET_BAD,
                      write ? fds[i].fd : ARES_SOCKET_BAD);
    }
  }
  if (pending > 0) ares_cancel(channel);
}

}  // namespace

const char* to_string(Outcome outcome) {
  switch (outcome) {
    case Outcome::noerror:
      return "NOERROR";
    case Outcome::nxdomain:
      return "NXDOMAIN";
    case Outcome::servfail:
      return "SERVFAIL";
    case Outcome::refused:
      return "REFUSED";
    case Outcome::timeout:
      return "timeout";
    case Outcome::connection_refused:
      return "connection refused";
    case Outcome::other:
      return "error";
  }
  return "error";
}

bool is_reply(Outcome outcome) {
  return outcome == Outcome::noerror || outcome == Outcome::nxdomain ||
         outcome == Outcome::servfail || outcome == Outcome::refused;
}

std::vector<Answer> Lookup::answers() const {
  std::vector<Answer> all = a.answers;
  all.insert(all.end(), aaaa.answers.begin(), aaaa.answers.end());
  return all;
}

std::string describe(const spec::DnsServer& server) {
  return server.address ? server.address->to_string() : "system resolver";
}

std::vector<Lookup> Resolver::resolve_all(const std::vector<std::string>& names,
                                          const spec::DnsServer& server,
                                          Clock::time_point deadline) {
  std::vector<Lookup> lookups;
  lookups.reserve(names.size());
  for (const std::string& name : names) lookups.push_back(resolve(name, server, deadline));
  return lookups;
}

AresResolver::AresResolver(std::string resolv_conf) : resolv_conf_(std::move(resolv_conf)) {
  library_status();
}

Lookup AresResolver::resolve(const std::string& name, const spec::DnsServer& server,
                             Clock::time_point deadline) {
  return resolve_all({name}, server, deadline).front();
}

std::vector<Lookup> AresResolver::resolve_all(const std::vector<std::string>& names,
                                              const spec::DnsServer& server,
                                              Clock::time_point deadline) {
  const Clock::time_point started = Clock::now();
  std::vector<Lookup> lookups(names.size());
  for (std::size_t i = 0; i < names.size(); ++i) {
    lookups[i].name = names[i];
    lookups[i].server = describe(server);
  }
  auto fail_all = [&](Outcome outcome, const std::string& message) {
    for (Lookup& lookup : lookups) lookup.a = lookup.aaaa = failure(outcome, message);
    return lookups;
  };
  if (names.empty()) return lookups;
  if (const int status = library_status(); status != ARES_SUCCESS) {
    return fail_all(Outcome::other, std::string("c-ares init: ") + ares_strerror(status));
  }

  const long long budget_ms = std::max<long long>(ms_between(started, deadline), 0);
  ares_options options{};
  // NOCHECKRESP: report SERVFAIL/REFUSED as the server's answer instead of
  // retrying it (there is only one server per vantage point to ask).
  options.flags = ARES_FLAG_NOCHECKRESP;
  options.timeout = static_cast<int>(std::max<long long>(budget_ms / 3, 1));
  options.tries = 2;
  options.resolvconf_path = const_cast<char*>(resolv_conf_.c_str());  // c-ares copies it
  ares_channel channel = nullptr;
  if (const int status = ares_init_options(
          &channel, &options,
          ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_RESOLVCONF);
      status != ARES_SUCCESS) {
    return fail_all(Outcome::other, std::string("c-ares channel: ") + ares_strerror(status));
  }
  // Frees the channel however this returns (before `transport`, which its
  // sockets' functions write to).
  Transport transport;
  struct ChannelGuard {
    ares_channel channel;
    ~ChannelGuard() { ares_destroy(channel); }
  } guard{channel};
  ares_set_socket_functions(channel, &kSocketFunctions, &transport);

  std::string server_text;
  if (server.address) {
    const auto address = net::IpAddress::parse(server.address->host);
    if (!address) {
      return fail_all(Outcome::other, "not an address literal: " + server.address->host);
    }
    ares_addr_port_node node{};
    node.family = address->v6 ? AF_INET6 : AF_INET;
    std::memcpy(&node.addr, address->bytes, address->v6 ? 16 : 4);
    node.udp_port = node.tcp_port = server.address->port;
    if (const int status = ares_set_servers_ports(channel, &node); status != ARES_SUCCESS) {
      return fail_all(Outcome::other, std::string("c-ares servers: ") + ares_strerror(status));
    }
    server_text = server.address->to_string();
  } else {
    server_text = describe_system(channel);
  }

  int channel_pending = 2 * static_cast<int>(names.size());
  std::vector<int> lookup_pending(names.size(), 2);
  std::vector<Query> queries(2 * names.size());  // stable addresses for c-ares' `arg`
  for (std::size_t i = 0; i < names.size(); ++i) {
    lookups[i].server = server_text;
    for (int t = 0; t < 2; ++t) {
      Query& query = queries[2 * i + t];
      query.result = t == 0 ? &lookups[i].a : &lookups[i].aaaa;
      query.lookup = &lookups[i];
      query.lookup_pending = &lookup_pending[i];
      query.channel_pending = &channel_pending;
      query.type = t == 0 ? ns_t_a : ns_t_aaaa;
      query.started = started;
      query.budget_ms = budget_ms;
      query.server = server_text;
      query.transport = &transport;
      // ares_query (not ares_search): the name as written, no search domains.
      ares_query(channel, names[i].c_str(), ns_c_in, query.type, on_reply, &query);
    }
  }
  drive(channel, channel_pending, deadline);
  return lookups;
}

}  // namespace ringwatch::dns
