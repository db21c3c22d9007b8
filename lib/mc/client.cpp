#include "lib/mc/client.h"

#include <algorithm>
#include <unordered_set>
#include <utility>

#include "lib/mc/reply_reader.h"
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
// A stats reply: memcached's `stats conns` for 20,000 connections is ~4 MiB.
constexpr std::size_t kMaxStatsReply = 8 * 1024 * 1024;

Error from_tcp(const net::TcpError& failure) {
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

// The connection, for one call: everything it sends or reads by one io
// deadline. With `arrived_first` (finishing a pipelined get, whose reply may
// be read after other clients' replies of its batch), bytes that have
// already arrived are read whatever the time, bounded by the reply cap; only
// waiting for more is bounded by the deadline. So a peer that holds up the
// batch cannot make replies already received from the others time out.
class Exchange final : public ByteSource {
 public:
  Exchange(net::TcpStream& stream, Clock::time_point deadline, std::chrono::milliseconds io,
           bool arrived_first = false)
      : stream_(stream), deadline_(deadline), io_(io), arrived_first_(arrived_first) {}

  std::optional<Error> send(std::string_view data) {
    auto failed = stream_.send_all(data, deadline_);
    if (!failed) {
      awaiting_reply_ = true;
      return std::nullopt;
    }
    return failed->kind == net::TcpErrorKind::timeout ? timeout() : from_tcp(*failed);
  }

  std::optional<Error> read_more(std::string& buffer, std::size_t max_bytes) override {
    if (arrived_first_) return read_arrived_first(buffer, max_bytes);
    // The first read after a request waits before it reads: a reply is never
    // there yet, and a recv that finds nothing is a system call per round
    // trip, most of a small probe round's CPU being system calls.
    if (std::exchange(awaiting_reply_, false)) {
      if (auto failed = stream_.wait_readable(deadline_)) {
        return failed->kind == net::TcpErrorKind::timeout ? timeout() : from_tcp(*failed);
      }
    }
    auto got = stream_.receive(buffer, max_bytes, deadline_);
    if (!got)
      return got.error().kind == net::TcpErrorKind::timeout ? timeout() : from_tcp(got.error());
    if (got.value() == 0) {
      return Error{ErrorKind::connect_refused, stream_.label() + ": connection closed by peer"};
    }
    return std::nullopt;
  }

 private:
  Error timeout() const {
    return Error{ErrorKind::timeout,
                 stream_.label() + ": no reply within " + std::to_string(io_.count()) + " ms"};
  }

  std::optional<Error> read_arrived_first(std::string& buffer, std::size_t max_bytes) {
    for (;;) {
      auto got = stream_.receive_arrived(buffer, max_bytes);
      if (!got) return from_tcp(got.error());
      if (got.value()) {
        if (*got.value() > 0) return std::nullopt;
        return Error{ErrorKind::connect_refused, stream_.label() + ": connection closed by peer"};
      }
      if (auto failed = stream_.wait_readable(deadline_)) {
        return failed->kind == net::TcpErrorKind::timeout ? timeout() : from_tcp(*failed);
      }
    }
  }

  net::TcpStream& stream_;
  Clock::time_point deadline_;
  std::chrono::milliseconds io_;
  bool arrived_first_;
  bool awaiting_reply_ = false;  // a request went out and nothing was read since
};

}  // namespace

// Owns the kept connection; after any failed call it is dropped.
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
  auto call(std::size_t reply_cap, Op op)
      -> decltype(op(std::declval<Exchange&>(), std::declval<ReplyReader&>()));

  Result<Done, Error> set_many(Exchange& exchange, ReplyReader& reader,
                               const std::vector<Item>& items, std::chrono::seconds ttl);
  Result<Values, Error> get_many(Exchange& exchange, ReplyReader& reader,
                                 const std::vector<std::string>& keys);
  Result<Stats, Error> stats(Exchange& exchange, ReplyReader& reader, std::string_view group);

  // get_many_each's halves. start_pipelined_get sends the one get command for
  // `keys` on the kept connection; false when there is none, it is not idle,
  // or the keys need more than one command or are invalid (get_many then
  // does it all). finish_pipelined_get reads the reply by the deadline
  // counted from the send; nullopt when the connection turned out closed
  // before any byte of reply (get_many then retries on a new one).
  bool start_pipelined_get(const std::vector<std::string>& keys);
  std::optional<Result<Values, Error>> finish_pipelined_get(const std::vector<std::string>& keys);

  // A call's result, checked to end where its last answer ends (anything
  // after it was never asked for); the connection is dropped on any failure.
  template <class R>
  R end_of_call(R result, const ReplyReader& reader);

  std::optional<Error> connect();
  Error error(ErrorKind kind, const std::string& what) const {
    return Error{kind, label + ": " + what};
  }
  // The first key that cannot go on a command line, found before anything
  // is sent, so a bad key never leaves half a batch on the wire.
  template <class Range, class KeyOf>
  std::optional<Error> invalid_key(const Range& range, KeyOf key_of) const {
    std::size_t index = 0;
    for (const auto& element : range) {
      if (auto problem = key_problem(key_of(element))) {
        return error(ErrorKind::other, "invalid key #" + std::to_string(index) + ": " + *problem);
      }
      ++index;
    }
    return std::nullopt;
  }

  net::Endpoint endpoint;
  util::Deadlines deadlines;
  Limits limits;
  std::string label;
  bool address_literal;
  net::TcpStream stream;
  Clock::time_point pipelined_deadline;  // of the get start_pipelined_get sent
};

namespace {

// Appends " key" for keys[start..] to `request` (which starts "get") while
// they fit one command of kMaxGetRequestBytes (at least one key), records
// them in `asked`, and ends the line. Returns the index after the last key.
std::size_t append_get_keys(const std::vector<std::string>& keys, std::size_t start,
                            std::string& request, std::unordered_set<std::string_view>& asked) {
  std::size_t end = start;
  while (end < keys.size() &&
         (end == start || request.size() + keys[end].size() + 1 <= kMaxGetRequestBytes)) {
    request += ' ';
    request += keys[end];
    asked.insert(keys[end]);
    ++end;
  }
  request += "\r\n";
  return end;
}

}  // namespace

std::optional<Error> Client::Impl::connect() {
  if (!address_literal) {
    return error(ErrorKind::other, "host is not an IP address literal (names are never resolved)");
  }
  auto opened = net::TcpStream::open(endpoint, deadlines.connect);
  if (!opened) return from_tcp(opened.error());
  stream = std::move(opened).value();
  return std::nullopt;
}

template <class Op>
auto Client::Impl::call(std::size_t reply_cap, Op op)
    -> decltype(op(std::declval<Exchange&>(), std::declval<ReplyReader&>())) {
  // A kept connection with bytes waiting before we asked anything carries a
  // stale or unsolicited reply; one the peer closed is of no use either.
  bool reused = stream.is_open();
  if (reused && !stream.idle()) {
    stream.close();
    reused = false;
  }
  if (!reused) {
    if (auto failed = connect()) return *failed;
  }
  const auto deadline = Clock::now() + deadlines.io;
  std::size_t received = 0;
  // One attempt; a reply must end where the call's last answer ends (anything
  // after it was never asked for).
  const auto attempt =
      [&]() -> decltype(op(std::declval<Exchange&>(), std::declval<ReplyReader&>())) {
    Exchange exchange(stream, deadline, deadlines.io);
    ReplyReader reader(exchange, label, limits, reply_cap);
    auto result = op(exchange, reader);
    received = reader.received();
    return end_of_call(std::move(result), reader);
  };
  auto result = attempt();
  const bool closed_before_replying =
      !result.ok() && received == 0 && result.error().kind == ErrorKind::connect_refused;
  if (!reused || !closed_before_replying) return result;
  if (auto failed = connect()) return *failed;
  return attempt();  // by the same deadline
}

template <class R>
R Client::Impl::end_of_call(R result, const ReplyReader& reader) {
  if (result.ok() && reader.unread().empty()) return result;
  const std::string extra(reader.unread());
  stream.close();
  if (result.ok()) {
    return Error{ErrorKind::protocol,
                 label + ": reply is not memcached protocol: " + util::printable(extra)};
  }
  return result;
}

Result<Done, Error> Client::Impl::set_many(Exchange& exchange, ReplyReader& reader,
                                           const std::vector<Item>& items,
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
        if (auto failed = exchange.send(request)) return *failed;
        request.clear();
      }
    }
    auto replies = reader.set_replies(end - start);
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

Result<Values, Error> Client::Impl::get_many(Exchange& exchange, ReplyReader& reader,
                                             const std::vector<std::string>& keys) {
  Values values;
  values.reserve(keys.size());
  for (std::size_t start = 0; start < keys.size();) {
    std::unordered_set<std::string_view> asked;
    std::string request = "get";
    const std::size_t end = append_get_keys(keys, start, request, asked);
    if (auto failed = exchange.send(request)) return *failed;
    if (auto failed = reader.get_reply(asked, values)) return *failed;
    start = end;
  }
  return values;
}

Result<Stats, Error> Client::Impl::stats(Exchange& exchange, ReplyReader& reader,
                                         std::string_view group) {
  const std::string command = group.empty() ? "stats" : "stats " + std::string(group);
  if (auto failed = exchange.send(command + "\r\n")) return *failed;
  return reader.stats_reply(command);
}

bool Client::Impl::start_pipelined_get(const std::vector<std::string>& keys) {
  if (keys.empty() || !stream.is_open() || !stream.idle()) return false;
  if (invalid_key(keys, [](const std::string& key) -> const std::string& { return key; })) {
    return false;
  }
  std::string request = "get";
  std::unordered_set<std::string_view> asked;
  if (append_get_keys(keys, 0, request, asked) != keys.size()) return false;
  pipelined_deadline = Clock::now() + deadlines.io;
  Exchange exchange(stream, pipelined_deadline, deadlines.io);
  if (exchange.send(request)) {
    stream.close();  // get_many connects afresh
    return false;
  }
  return true;
}

std::optional<Result<Values, Error>> Client::Impl::finish_pipelined_get(
    const std::vector<std::string>& keys) {
  Exchange exchange(stream, pipelined_deadline, deadlines.io, /*arrived_first=*/true);
  ReplyReader reader(exchange, label, limits, limits.max_reply_bytes);
  const std::unordered_set<std::string_view> asked(keys.begin(), keys.end());
  Values values;
  values.reserve(keys.size());
  if (auto failed = reader.get_reply(asked, values)) {
    if (reader.received() == 0 && failed->kind == ErrorKind::connect_refused) {
      stream.close();  // closed while kept (a restart): get_many retries
      return std::nullopt;
    }
    return end_of_call(Result<Values, Error>(std::move(*failed)), reader);
  }
  return end_of_call(Result<Values, Error>(std::move(values)), reader);
}

std::vector<Result<Values, Error>> get_many_each(const std::vector<GetRequest>& requests,
                                                 WorkerPool& pool) {
  std::vector<std::optional<Result<Values, Error>>> results(requests.size());
  std::vector<char> sent(requests.size(), 0);
  // A window of at most kMaxPipelinedGets in flight, read in order: each
  // reply read lets the next request go out.
  std::size_t next = 0, in_flight = 0;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    for (; next < requests.size() && in_flight < kMaxPipelinedGets; ++next) {
      Client::Impl* impl = requests[next].client->impl_.get();
      sent[next] = impl != nullptr && impl->start_pipelined_get(*requests[next].keys);
      in_flight += sent[next];
    }
    if (!sent[i]) continue;
    results[i] = requests[i].client->impl_->finish_pipelined_get(*requests[i].keys);
    --in_flight;
  }
  std::vector<std::size_t> rest;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    if (!results[i]) rest.push_back(i);
  }
  pool.run_all(rest.size(), [&](std::size_t r) {
    const GetRequest& request = requests[rest[r]];
    results[rest[r]] = request.client->get_many(*request.keys);
  });
  std::vector<Result<Values, Error>> done;
  done.reserve(requests.size());
  for (auto& result : results) done.push_back(std::move(*result));
  return done;
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
  if (auto invalid = impl_->invalid_key(
          items, [](const Item& item) -> const std::string& { return item.key; })) {
    return *invalid;
  }
  if (items.empty()) return Done{};
  return impl_->call(impl_->limits.max_reply_bytes, [&](Exchange& exchange, ReplyReader& reader) {
    return impl_->set_many(exchange, reader, items, ttl);
  });
}

Result<Values, Error> Client::get_many(const std::vector<std::string>& keys) {
  if (!impl_) return moved_from();
  if (auto invalid = impl_->invalid_key(
          keys, [](const std::string& key) -> const std::string& { return key; })) {
    return *invalid;
  }
  if (keys.empty()) return Values{};
  return impl_->call(impl_->limits.max_reply_bytes, [&](Exchange& exchange, ReplyReader& reader) {
    return impl_->get_many(exchange, reader, keys);
  });
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
                     [&](Exchange& exchange, ReplyReader& reader) {
                       return impl_->stats(exchange, reader, group);
                     });
}

}  // namespace ringwatch::mc
