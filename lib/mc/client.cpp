#include "lib/mc/client.h"

#include <algorithm>
#include <limits>
#include <unordered_set>
#include <utility>

#include "lib/net/tcp.h"
#include "lib/util/deadlines.h"
#include "lib/util/text.h"

namespace ringwatch::mc {

const char* to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::connect_refused:
      return "connect_refused";
    case ErrorKind::timeout:
      return "timeout";
    case ErrorKind::protocol:
      return "protocol";
    case ErrorKind::server_error:
      return "server_error";
    case ErrorKind::other:
      return "other";
  }
  return "other";
}

namespace {

using Clock = std::chrono::steady_clock;

// Sets per batch in set_many: their replies (a few bytes each) stay far below
// the socket buffers, so the peer never blocks writing them while we write.
constexpr std::size_t kMaxSetBatch = 1024;
// Request bytes written at once.
constexpr std::size_t kSendChunk = 64 * 1024;
// Key bytes per get in get_many (see client.h).
constexpr std::size_t kMaxGetRequestBytes = 32 * 1024;
// The protocol's limits: a key on a command line, a reply line.
constexpr std::size_t kMaxKeyLength = 250;
constexpr std::size_t kMaxLine = 8 * 1024;
// A stats reply: memcached's `stats conns` for 20,000 connections is ~4 MiB.
constexpr std::size_t kMaxStatsReply = 8 * 1024 * 1024;
// Bytes read per receive.
constexpr std::size_t kReadChunk = 64 * 1024;

// Keys travel on the ASCII command line: printable, no spaces, <= 250 bytes.
std::optional<std::string> key_problem(std::string_view key) {
  if (key.empty()) return "empty key";
  if (key.size() > kMaxKeyLength) return "key longer than 250 bytes";
  for (const char c : key) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte >= 0x7f) return "key contains whitespace or non-printable bytes";
  }
  return std::nullopt;
}

std::optional<std::string> keys_problem(const std::vector<std::string>& keys) {
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (auto problem = key_problem(keys[i])) {
      return "invalid key #" + std::to_string(i) + ": " + *problem;
    }
  }
  return std::nullopt;
}

std::vector<std::string_view> split_words(std::string_view line) {
  std::vector<std::string_view> words;
  std::size_t pos = 0;
  while (pos < line.size()) {
    const std::size_t end = std::min(line.find(' ', pos), line.size());
    if (end > pos) words.push_back(line.substr(pos, end - pos));
    pos = end + 1;
  }
  return words;
}

// memcached's answer to a set it cannot store for size: not a failure of the
// set batch (the item is simply not there, as with NOT_STORED).
bool is_too_large(std::string_view message) {
  return message.starts_with("object too large");
}

// One call's bounds: the io deadline and the bytes it may still read.
struct Call {
  Clock::time_point io_deadline;
  std::size_t reply_cap = 0;
  std::size_t received = 0;
};

}  // namespace

// Owns the kept connection and the bytes read from it but not yet parsed
// (input_[consumed_..]). After any failed call both are dropped.
struct Client::Impl {
  Impl(const net::Endpoint& endpoint_in, util::Deadlines deadlines_in, Limits limits_in)
      : endpoint(endpoint_in),
        deadlines(deadlines_in),
        limits(limits_in),
        label(endpoint_in.to_string()),
        address_literal(net::IpAddress::parse(endpoint_in.host).has_value()) {}

  // Runs `op` within one call's bounds, on the kept connection or a new one;
  // retried once on a new connection when a kept one turns out closed.
  template <class Op>
  auto call(std::size_t reply_cap, Op op) -> decltype(op(std::declval<Call&>()));

  Result<Done, Error> set_many(Call& call, const std::vector<Item>& items,
                               std::chrono::seconds ttl);
  Result<Values, Error> get_many(Call& call, const std::vector<std::string>& keys);
  Result<Stats, Error> stats(Call& call, std::string_view group);

  std::optional<Error> connect();
  std::optional<Error> send(Call& call, std::string_view data);
  std::optional<Error> fill(Call& call, std::size_t bytes);
  Result<std::string, Error> read_line(Call& call);
  Result<std::string, Error> read_data(Call& call, std::size_t length);
  struct SetReplies {
    std::size_t server_errors = 0;
    std::string first_server_error;
  };
  Result<SetReplies, Error> read_set_replies(Call& call, std::size_t batch_size);
  std::optional<Error> read_value(Call& call, std::string_view line,
                                  const std::unordered_set<std::string_view>& asked,
                                  Values& values);
  void discard() {
    stream.close();
    input.clear();
    consumed = 0;
  }

  Error error(ErrorKind kind, const std::string& what) const {
    return Error{kind, label + ": " + what};
  }
  Error not_protocol(std::string_view what) const {
    return error(ErrorKind::protocol, "reply is not memcached protocol: " + util::printable(what));
  }
  Error transport(const net::TcpError& failure) const;
  // A reply line that is an error status, or else not memcached protocol.
  Error unexpected(std::string_view line) const;

  net::Endpoint endpoint;
  util::Deadlines deadlines;
  Limits limits;
  std::string label;
  bool address_literal;
  net::TcpStream stream;
  std::string input;
  std::size_t consumed = 0;
};

Error Client::Impl::transport(const net::TcpError& failure) const {
  switch (failure.kind) {
    case net::TcpErrorKind::refused:
      return Error{ErrorKind::connect_refused, failure.message};
    case net::TcpErrorKind::timeout:
      return Error{ErrorKind::timeout, failure.message};
    case net::TcpErrorKind::too_large:
    case net::TcpErrorKind::invalid:
    case net::TcpErrorKind::other:
      return Error{ErrorKind::other, failure.message};
  }
  return Error{ErrorKind::other, failure.message};
}

Error Client::Impl::unexpected(std::string_view line) const {
  if (line == "ERROR") return error(ErrorKind::server_error, "server error: ERROR");
  for (const std::string_view status : {"SERVER_ERROR", "CLIENT_ERROR"}) {
    if (line.starts_with(status) && (line.size() == status.size() || line[status.size()] == ' ')) {
      std::string_view message = line.substr(status.size());
      if (message.starts_with(' ')) message.remove_prefix(1);
      const std::string prefix = status == "SERVER_ERROR" ? "server error" : "client error";
      return error(ErrorKind::server_error,
                   message.empty() ? prefix : prefix + ": " + util::printable(message));
    }
  }
  return not_protocol(line);
}

std::optional<Error> Client::Impl::connect() {
  if (!address_literal) {
    return error(ErrorKind::other, "host is not an IP address literal (names are never resolved)");
  }
  auto opened = net::TcpStream::open(endpoint, deadlines.connect);
  if (!opened) return transport(opened.error());
  stream = std::move(opened).value();
  return std::nullopt;
}

std::optional<Error> Client::Impl::send(Call& call, std::string_view data) {
  auto failed = stream.send_all(data, call.io_deadline);
  if (!failed) return std::nullopt;
  if (failed->kind == net::TcpErrorKind::timeout) {
    return error(ErrorKind::timeout,
                 "no reply within " + std::to_string(deadlines.io.count()) + " ms");
  }
  return transport(*failed);
}

// Makes at least `bytes` unread bytes available, within the call's bounds.
std::optional<Error> Client::Impl::fill(Call& call, std::size_t bytes) {
  while (input.size() - consumed < bytes) {
    if (call.received >= call.reply_cap) {
      return error(ErrorKind::protocol,
                   "reply larger than " + std::to_string(call.reply_cap) + " bytes");
    }
    if (consumed > 0 && consumed >= input.size() / 2) {
      input.erase(0, consumed);
      consumed = 0;
    }
    const std::size_t want = std::min(kReadChunk, call.reply_cap - call.received);
    auto got = stream.receive(input, want, call.io_deadline);
    if (!got) {
      if (got.error().kind != net::TcpErrorKind::timeout) return transport(got.error());
      return error(ErrorKind::timeout,
                   "no reply within " + std::to_string(deadlines.io.count()) + " ms");
    }
    if (got.value() == 0) return error(ErrorKind::connect_refused, "connection closed by peer");
    call.received += got.value();
  }
  return std::nullopt;
}

Result<std::string, Error> Client::Impl::read_line(Call& call) {
  std::size_t scanned = 0;  // unread bytes known to hold no line end
  for (;;) {
    const std::size_t eol = input.find("\r\n", consumed + scanned);
    const std::size_t unread = input.size() - consumed;
    if ((eol == std::string::npos && unread > kMaxLine + 1) ||
        (eol != std::string::npos && eol - consumed > kMaxLine)) {
      return error(ErrorKind::protocol,
                   "reply line longer than " + std::to_string(kMaxLine) + " bytes: " +
                       util::printable(std::string_view(input).substr(consumed, kMaxLine)));
    }
    if (eol != std::string::npos) {
      std::string line = input.substr(consumed, eol - consumed);
      consumed = eol + 2;
      return line;
    }
    scanned = unread > 0 ? unread - 1 : 0;  // the last byte may be the '\r'
    if (auto failed = fill(call, unread + 1)) return *failed;
  }
}

Result<std::string, Error> Client::Impl::read_data(Call& call, std::size_t length) {
  if (auto failed = fill(call, length + 2)) return *failed;
  if (input.compare(consumed + length, 2, "\r\n") != 0) {
    return error(ErrorKind::protocol, "a value's data does not end with \\r\\n");
  }
  std::string data = input.substr(consumed, length);
  consumed += length + 2;
  return data;
}

template <class Op>
auto Client::Impl::call(std::size_t reply_cap, Op op) -> decltype(op(std::declval<Call&>())) {
  // A kept connection with bytes waiting before we asked anything carries a
  // stale or unsolicited reply; one the peer closed is of no use either.
  bool reused = stream.is_open();
  if (reused && !stream.idle()) {
    discard();
    reused = false;
  }
  if (!reused) {
    if (auto failed = connect()) return *failed;
  }
  Call budget{Clock::now() + deadlines.io, reply_cap, 0};
  // A reply must end where the call's last answer ends: anything after it was
  // never asked for.
  const auto finish = [&](decltype(op(budget)) result) -> decltype(op(budget)) {
    if (result.ok() && consumed == input.size()) return result;
    const std::string extra = input.substr(consumed);
    discard();
    if (result.ok()) return not_protocol(extra);
    return result;
  };
  auto result = finish(op(budget));
  const bool closed_before_replying =
      !result.ok() && budget.received == 0 && result.error().kind == ErrorKind::connect_refused;
  if (!reused || !closed_before_replying) return result;
  if (auto failed = connect()) return *failed;
  return finish(op(budget));
}

// A SERVER_ERROR fails one set (a proxy whose backend timed out), not the
// connection: it is counted and reading goes on, so every other reply is
// still consumed before the caller reads the keys through another connection.
Result<Client::Impl::SetReplies, Error> Client::Impl::read_set_replies(Call& call,
                                                                       std::size_t batch_size) {
  SetReplies replies;
  for (std::size_t i = 0; i < batch_size; ++i) {
    auto line = read_line(call);
    if (!line) return line.error();
    const std::string& reply = line.value();
    if (reply == "STORED" || reply == "NOT_STORED" || reply == "EXISTS" || reply == "NOT_FOUND") {
      continue;
    }
    if (reply.starts_with("SERVER_ERROR ")) {
      if (is_too_large(std::string_view(reply).substr(13))) continue;
      if (replies.server_errors++ == 0) replies.first_server_error = unexpected(reply).message;
      continue;
    }
    return unexpected(reply);  // CLIENT_ERROR, ERROR: the peer lost the framing
  }
  return replies;
}

Result<Done, Error> Client::Impl::set_many(Call& call, const std::vector<Item>& items,
                                           std::chrono::seconds ttl) {
  const std::string expiration = " 0 " + std::to_string(ttl.count()) + " ";
  std::optional<Error> partial_failure;
  std::string request;
  for (std::size_t start = 0; start < items.size(); start += kMaxSetBatch) {
    const std::size_t end = std::min(items.size(), start + kMaxSetBatch);
    for (std::size_t i = start; i < end; ++i) {
      request +=
          "set " + items[i].key + expiration + std::to_string(items[i].value.size()) + "\r\n";
      request += items[i].value;
      request += "\r\n";
      if (request.size() >= kSendChunk || i + 1 == end) {
        if (auto failed = send(call, request)) return *failed;
        request.clear();
      }
    }
    auto replies = read_set_replies(call, end - start);
    if (!replies) return replies.error();
    if (replies.value().server_errors > 0 && !partial_failure) {
      partial_failure =
          Error{ErrorKind::server_error, replies.value().first_server_error + " (" +
                                             std::to_string(replies.value().server_errors) +
                                             " of " + std::to_string(end - start) + " sets)"};
    }
  }
  if (partial_failure) return *partial_failure;
  return Done{};
}

// "VALUE <key> <flags> <bytes> [<cas>]" and its data, checked before a byte
// of the data is read.
std::optional<Error> Client::Impl::read_value(Call& call, std::string_view line,
                                              const std::unordered_set<std::string_view>& asked,
                                              Values& values) {
  const auto words = split_words(line);
  if (words.size() != 4 && words.size() != 5) return not_protocol(line);
  const std::string_view key = words[1];
  if (auto problem = key_problem(key)) {
    return error(ErrorKind::protocol,
                 "VALUE line with an invalid key (" + *problem + "): " + util::printable(key));
  }
  if (!asked.contains(key)) {
    return error(ErrorKind::protocol,
                 "VALUE for a key that was not asked for: " + util::printable(key));
  }
  const auto length = util::parse_int<std::uint64_t>(words[3]);
  if (!util::parse_int<std::uint32_t>(words[2]) || !length ||
      (words.size() == 5 && !util::parse_int<std::uint64_t>(words[4]))) {
    return not_protocol(line);
  }
  if (*length > limits.max_value_bytes) {
    return error(ErrorKind::protocol, "value of " + std::to_string(*length) + " bytes for " +
                                          util::printable(key) + " is over the limit of " +
                                          std::to_string(limits.max_value_bytes) + " bytes");
  }
  auto data = read_data(call, static_cast<std::size_t>(*length));
  if (!data) return data.error();
  values.insert_or_assign(std::string(key), std::move(data).value());
  return std::nullopt;
}

Result<Values, Error> Client::Impl::get_many(Call& call, const std::vector<std::string>& keys) {
  Values values;
  values.reserve(keys.size());
  for (std::size_t start = 0; start < keys.size();) {
    std::unordered_set<std::string_view> asked;
    std::string request = "get";
    std::size_t end = start;
    while (end < keys.size() &&
           (end == start || request.size() + keys[end].size() + 1 <= kMaxGetRequestBytes)) {
      request += ' ';
      request += keys[end];
      asked.insert(keys[end]);
      ++end;
    }
    request += "\r\n";
    if (auto failed = send(call, request)) return *failed;
    for (;;) {
      auto line = read_line(call);
      if (!line) return line.error();
      if (line.value() == "END") break;
      if (!line.value().starts_with("VALUE ")) return unexpected(line.value());
      if (auto failed = read_value(call, line.value(), asked, values)) return *failed;
    }
    start = end;
  }
  return values;
}

Result<Stats, Error> Client::Impl::stats(Call& call, std::string_view group) {
  const std::string command = group.empty() ? "stats" : "stats " + std::string(group);
  if (auto failed = send(call, command + "\r\n")) return *failed;
  Stats stats;
  for (;;) {
    auto line = read_line(call);
    if (!line) return line.error();
    const std::string_view text = line.value();
    if (text == "END") return stats;
    if (text == "ERROR") {
      return error(ErrorKind::server_error, "server rejected \"" + command + "\"");
    }
    if (!text.starts_with("STAT ")) return unexpected(text);
    const std::string_view rest = text.substr(5);
    const std::size_t space = std::min(rest.find(' '), rest.size());
    if (space == 0) return not_protocol(text);
    stats.emplace_back(std::string(rest.substr(0, space)),
                       std::string(rest.substr(std::min(space + 1, rest.size()))));
  }
}

Client::Client(net::Endpoint endpoint, util::Deadlines deadlines, Limits limits)
    : endpoint_(std::move(endpoint)), impl_(std::make_unique<Impl>(endpoint_, deadlines, limits)) {}

Client::~Client() = default;
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;

namespace {

Error moved_from() {
  return Error{ErrorKind::other, "use of a moved-from mc::Client"};
}

}  // namespace

Result<Done, Error> Client::set_many(const std::vector<Item>& items, std::chrono::seconds ttl) {
  if (!impl_) return moved_from();
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (auto problem = key_problem(items[i].key)) {
      return impl_->error(ErrorKind::other, "invalid key #" + std::to_string(i) + ": " + *problem);
    }
  }
  if (items.empty()) return Done{};
  return impl_->call(impl_->limits.max_reply_bytes,
                     [&](Call& call) { return impl_->set_many(call, items, ttl); });
}

Result<Values, Error> Client::get_many(const std::vector<std::string>& keys) {
  if (!impl_) return moved_from();
  if (auto problem = keys_problem(keys)) return impl_->error(ErrorKind::other, *problem);
  if (keys.empty()) return Values{};
  return impl_->call(impl_->limits.max_reply_bytes,
                     [&](Call& call) { return impl_->get_many(call, keys); });
}

Result<Done, Error> Client::set(const std::string& key, const std::string& value,
                                std::chrono::seconds ttl) {
  return set_many({Item{key, value}}, ttl);
}

Result<std::optional<std::string>, Error> Client::get(const std::string& key) {
  auto result = get_many({key});
  if (!result) return result.error();
  auto found = result.value().find(key);
  if (found == result.value().end()) return std::optional<std::string>{};
  return std::optional<std::string>{std::move(found->second)};
}

Result<Stats, Error> Client::stats(std::string_view group) {
  if (!impl_) return moved_from();
  // The group goes verbatim onto the command line.
  if (!group.empty()) {
    if (auto problem = key_problem(group)) {
      return impl_->error(ErrorKind::other, "invalid stats group: " + *problem);
    }
  }
  return impl_->call(std::min(impl_->limits.max_reply_bytes, kMaxStatsReply),
                     [&](Call& call) { return impl_->stats(call, group); });
}

}  // namespace ringwatch::mc
