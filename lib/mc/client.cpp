#include "lib/mc/client.h"

#include <libmemcached-1.0/memcached.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "lib/util/deadlines.h"

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

// Sets queued per flush in set_many. Each reply is a few bytes, so the replies
// in flight stay far below the socket buffers and writing never has to wait
// for us to read.
constexpr std::size_t kMaxSetBatch = 1024;

// Request bytes per mget in get_many. A stalled peer's kernel still accepts
// this much, so against a stalled peer the wait that expires is the single
// read wait; a request larger than the socket buffers would instead cost one
// write wait per remaining key inside libmemcached's mget loop.
constexpr std::size_t kMaxGetRequestBytes = 32 * 1024;

constexpr std::size_t kMaxKeyLength = 250;

enum class Phase { connect, io };

std::int32_t to_ms(std::chrono::milliseconds duration) {
  return static_cast<std::int32_t>(
      std::clamp<std::int64_t>(duration.count(), 1, std::numeric_limits<std::int32_t>::max()));
}

// Keys travel on the ASCII command line: printable, no spaces, <= 250 bytes
// (the same rule as libmemcached's VERIFY_KEY, checked before anything is sent
// so a bad key never leaves half a batch queued).
std::optional<std::string> key_problem(std::string_view key) {
  if (key.empty()) return "empty key";
  if (key.size() > kMaxKeyLength) return "key longer than 250 bytes";
  for (const char c : key) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte >= 0x7f) return "key contains whitespace or non-printable bytes";
  }
  return std::nullopt;
}

// libmemcached's messages look like
// "(0x55d0) SERVER ERROR, text, host: 127.0.0.1:11211 -> libmemcached/response.cc:123";
// keep the middle part (the endpoint is named by our own prefix).
std::string clean_detail(const char* raw) {
  std::string text = raw != nullptr ? raw : "";
  if (text.starts_with('(')) {
    const auto close = text.find(") ");
    if (close != std::string::npos) text.erase(0, close + 2);
  }
  if (const auto arrow = text.rfind(" -> "); arrow != std::string::npos) text.erase(arrow);
  if (const auto host = text.find("host: "); host != std::string::npos) text.erase(host);
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == ',')) text.pop_back();
  return text;
}

bool is_reset_errno(int err) {
  return err == ECONNRESET || err == EPIPE || err == ECONNABORTED || err == ENOTCONN;
}

Error make_error(const std::string& label, const util::Deadlines& deadlines, Phase phase,
                 memcached_return_t rc, int err, std::string detail) {
  // "SERVER ERROR, backend down" -> "backend down": the kind already says it.
  const std::string code_name = memcached_strerror(nullptr, rc);
  if (detail == code_name) {
    detail.clear();
  } else if (detail.starts_with(code_name + ", ")) {
    detail.erase(0, code_name.size() + 2);
  }
  const auto with_detail = [&](std::string what) {
    if (!detail.empty()) what += ": " + detail;
    return what;
  };
  ErrorKind kind = ErrorKind::other;
  std::string what;
  if (rc == MEMCACHED_TIMEOUT || rc == MEMCACHED_IN_PROGRESS || err == ETIMEDOUT) {
    kind = ErrorKind::timeout;
    what = phase == Phase::connect
               ? "connect timed out after " + std::to_string(deadlines.connect.count()) + " ms"
               : "no reply within " + std::to_string(deadlines.io.count()) + " ms";
  } else if (err == ECONNREFUSED) {
    kind = ErrorKind::connect_refused;
    what = "connect refused";
  } else if (is_reset_errno(err)) {
    kind = ErrorKind::connect_refused;
    what = "connection reset by peer";
  } else if (rc == MEMCACHED_CONNECTION_FAILURE) {
    kind = ErrorKind::connect_refused;
    what = phase == Phase::connect ? with_detail("connect failed") : "connection closed by peer";
  } else if (rc == MEMCACHED_PROTOCOL_ERROR || rc == MEMCACHED_UNKNOWN_READ_FAILURE ||
             rc == MEMCACHED_PARTIAL_READ || rc == MEMCACHED_READ_FAILURE) {
    kind = ErrorKind::protocol;
    what = with_detail("reply is not memcached protocol");
  } else if (rc == MEMCACHED_SERVER_ERROR || rc == MEMCACHED_ERROR ||
             rc == MEMCACHED_CLIENT_ERROR || rc == MEMCACHED_E2BIG ||
             rc == MEMCACHED_SERVER_MEMORY_ALLOCATION_FAILURE) {
    kind = ErrorKind::server_error;
    what = with_detail("server error");
  } else {
    what = detail.empty() ? code_name : code_name + ": " + detail;
    if (err != 0 && what.find(std::strerror(err)) == std::string::npos) {
      what += std::string(" (") + std::strerror(err) + ")";
    }
  }
  return Error{kind, label + ": " + what};
}

// A result on our stack: memcached_fetch_result() frees results that
// libmemcached allocated itself once a fetch completes.
class ResultBuffer {
 public:
  explicit ResultBuffer(memcached_st* memc) { memcached_result_create(memc, &result_); }
  ~ResultBuffer() { memcached_result_free(&result_); }
  ResultBuffer(const ResultBuffer&) = delete;
  ResultBuffer& operator=(const ResultBuffer&) = delete;
  memcached_result_st* get() { return &result_; }

 private:
  memcached_result_st result_{};
};

memcached_return_t collect_stat(const memcached_instance_st*, const char* key, size_t key_length,
                                const char* value, size_t value_length, void* context) {
  static_cast<Stats*>(context)->emplace_back(std::string(key, key_length),
                                             std::string(value, value_length));
  return MEMCACHED_SUCCESS;
}

}  // namespace

// Owns one memcached_st with exactly one server. After any failed call the
// handle is dropped and the next call starts from a fresh one: no unread
// replies can be taken for the next command's, and libmemcached's
// per-server failure counters ("temporarily disabled", "marked dead") never
// replace the real cause of a later failure.
struct Client::Impl {
  Impl(const net::Endpoint& endpoint_in, util::Deadlines deadlines_in)
      : endpoint(endpoint_in),
        deadlines(deadlines_in),
        label(endpoint_in.to_string()),
        address_literal(net::IpAddress::parse(endpoint_in.host).has_value()) {}
  ~Impl() { discard(); }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // A connection kept from an earlier call may have been closed by the peer
  // since (a restart, an idle timeout); a call failing on it as closed or
  // reset is retried once on a fresh connection. Every operation here is
  // idempotent, so a retry after a partial success is harmless.
  template <class Op>
  auto retry_if_stale(Op op) -> decltype(op()) {
    const bool reused = memc != nullptr;
    auto result = op();
    if (!result.ok() && reused && memc == nullptr &&
        result.error().kind == ErrorKind::connect_refused) {
      return op();
    }
    return result;
  }

  Result<Done, Error> set_many(const std::vector<Item>& items, std::chrono::seconds ttl);
  Result<Values, Error> get_many(const std::vector<std::string>& keys);
  Result<Stats, Error> stats(std::string_view group);

  Result<memcached_st*, Error> connect();
  std::optional<Error> flush_and_drain(std::size_t batch_size);
  Error fail(Phase phase, memcached_return_t rc);
  Error invalid(const std::string& what) const {
    return Error{ErrorKind::other, label + ": " + what};
  }
  memcached_st* create() const;
  void discard();

  net::Endpoint endpoint;
  util::Deadlines deadlines;
  std::string label;
  bool address_literal;
  memcached_st* memc = nullptr;
};

memcached_st* Client::Impl::create() const {
  memcached_st* handle = memcached_create(nullptr);
  if (handle == nullptr) return nullptr;
  const std::int32_t io_ms = to_ms(deadlines.io);
  // SO_RCVTIMEO / SO_SNDTIMEO are given in microseconds.
  const std::int64_t io_us =
      std::min<std::int64_t>(std::int64_t{io_ms} * 1000, std::numeric_limits<std::int32_t>::max());
  const std::pair<memcached_behavior_t, std::uint64_t> behaviors[] = {
      {MEMCACHED_BEHAVIOR_BINARY_PROTOCOL, 0},  // twemproxy speaks ASCII only
      {MEMCACHED_BEHAVIOR_NO_BLOCK, 1},
      {MEMCACHED_BEHAVIOR_TCP_NODELAY, 1},
      {MEMCACHED_BEHAVIOR_BUFFER_REQUESTS, 1},
      {MEMCACHED_BEHAVIOR_VERIFY_KEY, 1},
      {MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, static_cast<std::uint64_t>(to_ms(deadlines.connect))},
      {MEMCACHED_BEHAVIOR_POLL_TIMEOUT, static_cast<std::uint64_t>(io_ms)},
      {MEMCACHED_BEHAVIOR_RCV_TIMEOUT, static_cast<std::uint64_t>(io_us)},
      {MEMCACHED_BEHAVIOR_SND_TIMEOUT, static_cast<std::uint64_t>(io_us)},
      // No implicit purge. With the default watermarks libmemcached reads
      // queued replies itself, with a hard-coded 50 ms wait that loses count
      // of replies from a slower peer, and 1.1.4 aborts on an assertion
      // (io.cc "instance->fd != INVALID_SOCKET") after ~600 buffered sets.
      // set_many bounds its batches and reads every reply itself.
      {MEMCACHED_BEHAVIOR_IO_MSG_WATERMARK, std::numeric_limits<std::uint32_t>::max()},
      {MEMCACHED_BEHAVIOR_IO_BYTES_WATERMARK, std::numeric_limits<std::uint32_t>::max()},
  };
  for (const auto& [behavior, value] : behaviors) memcached_behavior_set(handle, behavior, value);
  if (memcached_failed(memcached_server_add(handle, endpoint.host.c_str(), endpoint.port))) {
    memcached_free(handle);
    return nullptr;
  }
  return handle;
}

void Client::Impl::discard() {
  if (memc == nullptr) return;
  // Close without waiting on the peer: a zero poll timeout makes the "quit"
  // write give up instead of waiting, and turning buffering off closes the
  // connection without libmemcached's read-until-EOF drain.
  memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, 0);
  memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_BUFFER_REQUESTS, 0);
  memcached_free(memc);
  memc = nullptr;
}

Result<memcached_st*, Error> Client::Impl::connect() {
  if (!address_literal) {
    return invalid("host is not an IP address literal (names are never resolved)");
  }
  if (memc != nullptr && memcached_failed(memcached_last_error(memc))) discard();
  if (memc == nullptr) {
    memc = create();
    if (memc == nullptr) return invalid("cannot create a libmemcached handle");
  }
  // libmemcached connects lazily, and inside its multi-key loops one failed
  // connect makes every key, the first included, fail as "SERVER HAS FAILED
  // AND IS DISABLED UNTIL TIMED RETRY" with the cause gone. Connect here,
  // alone, so the error reported is the connect's own. Reading
  // SOCKET_SEND_SIZE connects (when needed) and waits until writable; 0 means
  // that failed.
  if (memcached_behavior_get(memc, MEMCACHED_BEHAVIOR_SOCKET_SEND_SIZE) == 0) {
    return fail(Phase::connect, MEMCACHED_CONNECTION_FAILURE);
  }
  return memc;
}

Error Client::Impl::fail(Phase phase, memcached_return_t rc) {
  // The recorded error names the cause; rc is often a summary (SOME_ERRORS,
  // or NOTFOUND from a fetch that timed out before its first value).
  const memcached_return_t recorded = memcached_last_error(memc);
  if (memcached_failed(recorded)) rc = recorded;
  Error error = make_error(label, deadlines, phase, rc, memcached_last_error_errno(memc),
                           clean_detail(memcached_last_error_message(memc)));
  discard();
  return error;
}

// Sends what is buffered, then reads every reply owed. memcached_fetch_result()
// ends up in libmemcached's memcached_response(), which (ASCII) reads and
// discards all outstanding replies but the last, then reads the last; it stops
// early only at an error, which we report. NOT_STORED and "object too large"
// replies are not errors there.
std::optional<Error> Client::Impl::flush_and_drain(std::size_t batch_size) {
  const memcached_return_t flushed = memcached_flush_buffers(memc);
  if (memcached_failed(flushed) || memcached_failed(memcached_last_error(memc))) {
    return fail(Phase::io, flushed);
  }
  const memcached_instance_st* instance = memcached_server_instance_by_position(memc, 0);
  std::uint32_t pending = memcached_server_response_count(instance);
  ResultBuffer result(memc);
  // A SERVER_ERROR reply fails one set (a proxy whose backend timed out), not
  // the connection: count it and keep reading, so every other reply is still
  // consumed before the caller reads the keys through another connection.
  std::size_t server_errors = 0;
  std::string first_server_error;
  while (pending > 0) {
    memcached_return_t rc = MEMCACHED_SUCCESS;
    memcached_fetch_result(memc, result.get(), &rc);
    const memcached_return_t recorded = memcached_last_error(memc);
    const std::uint32_t now = memcached_server_response_count(instance);
    if (now < pending && (rc == MEMCACHED_SERVER_ERROR || recorded == MEMCACHED_SERVER_ERROR)) {
      if (server_errors++ == 0) {
        first_server_error = make_error(label, deadlines, Phase::io, MEMCACHED_SERVER_ERROR, 0,
                                        clean_detail(memcached_last_error_message(memc)))
                                 .message;
      }
      pending = now;
      continue;
    }
    if (memcached_failed(recorded)) return fail(Phase::io, rc);
    if (now >= pending) return fail(Phase::io, MEMCACHED_PROTOCOL_ERROR);  // no progress
    pending = now;
  }
  if (server_errors > 0) {
    return Error{ErrorKind::server_error, first_server_error + " (" +
                                              std::to_string(server_errors) + " of " +
                                              std::to_string(batch_size) + " sets)"};
  }
  return std::nullopt;
}

Result<Done, Error> Client::Impl::set_many(const std::vector<Item>& items,
                                           std::chrono::seconds ttl) {
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (auto problem = key_problem(items[i].key)) {
      return invalid("invalid key #" + std::to_string(i) + ": " + *problem);
    }
  }
  if (items.empty()) return Done{};
  auto connected = connect();
  if (!connected) return connected.error();

  const auto expiration = static_cast<time_t>(ttl.count());
  std::optional<Error> partial_failure;
  for (std::size_t start = 0; start < items.size(); start += kMaxSetBatch) {
    const std::size_t end = std::min(items.size(), start + kMaxSetBatch);
    for (std::size_t i = start; i < end; ++i) {
      const Item& item = items[i];
      const memcached_return_t rc = memcached_set(memc, item.key.data(), item.key.size(),
                                                  item.value.data(), item.value.size(), expiration,
                                                  /*flags=*/0);
      if (rc != MEMCACHED_BUFFERED && rc != MEMCACHED_SUCCESS) return fail(Phase::io, rc);
    }
    if (auto error = flush_and_drain(end - start)) {
      if (error->kind != ErrorKind::server_error) return *error;
      if (!partial_failure) partial_failure = std::move(error);
    }
  }
  if (partial_failure) return *partial_failure;
  return Done{};
}

Result<Values, Error> Client::Impl::get_many(const std::vector<std::string>& keys) {
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (auto problem = key_problem(keys[i])) {
      return invalid("invalid key #" + std::to_string(i) + ": " + *problem);
    }
  }
  Values values;
  if (keys.empty()) return values;
  auto connected = connect();
  if (!connected) return connected.error();
  const memcached_instance_st* instance = memcached_server_instance_by_position(memc, 0);

  values.reserve(keys.size());
  ResultBuffer result(memc);
  std::vector<const char*> key_pointers;
  std::vector<size_t> key_lengths;
  for (std::size_t start = 0; start < keys.size();) {
    key_pointers.clear();
    key_lengths.clear();
    std::size_t request_bytes = 0;
    std::size_t end = start;
    while (end < keys.size() &&
           (end == start || request_bytes + keys[end].size() + 1 <= kMaxGetRequestBytes)) {
      request_bytes += keys[end].size() + 1;
      key_pointers.push_back(keys[end].data());
      key_lengths.push_back(keys[end].size());
      ++end;
    }
    const memcached_return_t sent =
        memcached_mget(memc, key_pointers.data(), key_lengths.data(), key_pointers.size());
    if (memcached_failed(sent) || memcached_failed(memcached_last_error(memc))) {
      return fail(Phase::io, sent);
    }
    memcached_return_t rc = MEMCACHED_SUCCESS;
    while (memcached_result_st* found = memcached_fetch_result(memc, result.get(), &rc)) {
      values.insert_or_assign(
          std::string(memcached_result_key_value(found), memcached_result_key_length(found)),
          std::string(memcached_result_value(found), memcached_result_length(found)));
    }
    // A read timeout before the first value comes back as NOTFOUND; the
    // recorded error tells.
    if (memcached_failed(memcached_last_error(memc)) ||
        (rc != MEMCACHED_END && rc != MEMCACHED_NOTFOUND)) {
      return fail(Phase::io, rc);
    }
    if (memcached_server_response_count(instance) != 0) {
      return fail(Phase::io, MEMCACHED_PROTOCOL_ERROR);
    }
    start = end;
  }
  return values;
}

Result<Stats, Error> Client::Impl::stats(std::string_view group) {
  // The group goes verbatim onto the command line.
  if (!group.empty()) {
    if (auto problem = key_problem(group)) return invalid("invalid stats group: " + *problem);
  }
  auto connected = connect();
  if (!connected) return connected.error();

  Stats stats;
  const std::string args(group);
  // memcached_stat_execute() reports transport failures only through the
  // recorded error; INVALID_ARGUMENTS means the server answered ERROR.
  const memcached_return_t rc =
      memcached_stat_execute(memc, args.empty() ? nullptr : args.c_str(), collect_stat, &stats);
  if (memcached_failed(memcached_last_error(memc))) return fail(Phase::io, rc);
  if (rc == MEMCACHED_INVALID_ARGUMENTS) {
    return Error{ErrorKind::server_error, label + ": server rejected \"stats " + args + "\""};
  }
  if (memcached_failed(rc)) return fail(Phase::io, rc);
  return stats;
}

namespace {

Error moved_from() {
  return Error{ErrorKind::other, "use of a moved-from mc::Client"};
}

}  // namespace

Client::Client(net::Endpoint endpoint, util::Deadlines deadlines)
    : endpoint_(std::move(endpoint)), impl_(std::make_unique<Impl>(endpoint_, deadlines)) {}

Client::~Client() = default;
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;

Result<Done, Error> Client::set_many(const std::vector<Item>& items, std::chrono::seconds ttl) {
  if (!impl_) return moved_from();
  return impl_->retry_if_stale([&] { return impl_->set_many(items, ttl); });
}

Result<Values, Error> Client::get_many(const std::vector<std::string>& keys) {
  if (!impl_) return moved_from();
  return impl_->retry_if_stale([&] { return impl_->get_many(keys); });
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
  return impl_->retry_if_stale([&] { return impl_->stats(group); });
}

}  // namespace ringwatch::mc
