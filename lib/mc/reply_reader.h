#pragma once
// The memcached client's reading half: the text protocol's replies, parsed
// as their bytes arrive and checked against the bounds client.h promises (a
// reply line of at most 8 KiB; VALUE lines naming a key that was asked for,
// with a value within Limits::max_value_bytes; a whole reply within a cap).
// Split from the I/O so the fuzz target and the tests feed it bytes from
// memory; the client feeds it from its connection, with the call's deadline.
//
// Errors carry `label` (the endpoint) like every mc::Error. One ReplyReader
// reads the replies of one call; not thread-safe.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>

#include "lib/mc/client.h"

namespace ringwatch::mc {

// Keys travel on the ASCII command line: 1 to 250 printable bytes, no spaces.
std::optional<std::string> key_problem(std::string_view key);

// Where reply bytes come from.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Appends between 1 and `max_bytes` bytes to `buffer`, or says why none
  // will come (the peer closed the connection, the deadline passed).
  virtual std::optional<Error> read_more(std::string& buffer, std::size_t max_bytes) = 0;
};

// What a batch of set replies said: SERVER_ERROR replies fail one set each
// (a proxy whose backend failed) and are counted; the first is kept.
struct SetReplies {
  std::size_t server_errors = 0;
  std::string first_server_error;
};

class ReplyReader {
 public:
  // `reply_cap`: the bytes this reader may take from `source` in all.
  ReplyReader(ByteSource& source, std::string label, Limits limits, std::size_t reply_cap);

  // A get's reply, up to its END: the values of keys in `asked` into `values`.
  std::optional<Error> get_reply(const std::unordered_set<std::string_view>& asked, Values& values);
  // The replies to `count` pipelined sets.
  Result<SetReplies, Error> set_replies(std::size_t count);
  // A stats reply, up to its END; `command` names the request in an ERROR.
  Result<Stats, Error> stats_reply(std::string_view command);

  std::size_t received() const { return received_; }  // bytes taken from the source
  std::string_view unread() const { return std::string_view(input_).substr(consumed_); }

 private:
  Result<std::string, Error> line();
  Result<std::string, Error> data(std::size_t length);
  std::optional<Error> value(std::string_view line,
                             const std::unordered_set<std::string_view>& asked, Values& values);
  std::optional<Error> fill(std::size_t bytes);

  Error error(ErrorKind kind, const std::string& what) const;
  Error not_protocol(std::string_view what) const;
  // A reply line that is an error status, or else not memcached protocol.
  Error unexpected(std::string_view line) const;

  ByteSource& source_;
  std::string label_;
  Limits limits_;
  std::size_t reply_cap_;
  std::size_t received_ = 0;
  std::string input_;
  std::size_t consumed_ = 0;  // input_[consumed_..] is unread
};

}  // namespace ringwatch::mc
