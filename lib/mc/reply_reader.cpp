#include "lib/mc/reply_reader.h"

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "lib/util/text.h"

namespace ringwatch::mc {
namespace {

constexpr std::size_t kMaxKeyLength = 250;
constexpr std::size_t kMaxLine = 8 * 1024;
// Bytes asked of the source at once.
constexpr std::size_t kReadChunk = 64 * 1024;

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
// batch (the item is simply not there, as with NOT_STORED).
bool is_too_large(std::string_view message) {
  return message.starts_with("object too large");
}

}  // namespace

std::optional<std::string> key_problem(std::string_view key) {
  if (key.empty()) return "empty key";
  if (key.size() > kMaxKeyLength) return "key longer than 250 bytes";
  for (const char c : key) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte >= 0x7f) return "key contains whitespace or non-printable bytes";
  }
  return std::nullopt;
}

ReplyReader::ReplyReader(ByteSource& source, std::string label, Limits limits,
                         std::size_t reply_cap)
    : source_(source), label_(std::move(label)), limits_(limits), reply_cap_(reply_cap) {}

Error ReplyReader::error(ErrorKind kind, const std::string& what) const {
  return Error{kind, label_ + ": " + what};
}

Error ReplyReader::not_protocol(std::string_view what) const {
  return error(ErrorKind::protocol, "reply is not memcached protocol: " + util::printable(what));
}

Error ReplyReader::unexpected(std::string_view line) const {
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

// Makes at least `bytes` unread bytes available, within the reply cap.
std::optional<Error> ReplyReader::fill(std::size_t bytes) {
  while (input_.size() - consumed_ < bytes) {
    if (received_ >= reply_cap_) {
      return error(ErrorKind::protocol,
                   "reply larger than " + std::to_string(reply_cap_) + " bytes");
    }
    if (consumed_ > 0 && consumed_ >= input_.size() / 2) {
      input_.erase(0, consumed_);
      consumed_ = 0;
    }
    const std::size_t before = input_.size();
    if (auto failed = source_.read_more(input_, std::min(kReadChunk, reply_cap_ - received_))) {
      return failed;
    }
    received_ += input_.size() - before;
  }
  return std::nullopt;
}

Result<std::string, Error> ReplyReader::line() {
  std::size_t scanned = 0;  // unread bytes known to hold no line end
  for (;;) {
    const std::size_t eol = input_.find("\r\n", consumed_ + scanned);
    const std::size_t unread = input_.size() - consumed_;
    if ((eol == std::string::npos && unread > kMaxLine + 1) ||
        (eol != std::string::npos && eol - consumed_ > kMaxLine)) {
      return error(ErrorKind::protocol,
                   "reply line longer than " + std::to_string(kMaxLine) + " bytes: " +
                       util::printable(std::string_view(input_).substr(consumed_, kMaxLine)));
    }
    if (eol != std::string::npos) {
      std::string text = input_.substr(consumed_, eol - consumed_);
      consumed_ = eol + 2;
      return text;
    }
    scanned = unread > 0 ? unread - 1 : 0;  // the last byte may be the '\r'
    if (auto failed = fill(unread + 1)) return *failed;
  }
}

Result<std::string, Error> ReplyReader::data(std::size_t length) {
  if (auto failed = fill(length + 2)) return *failed;
  if (input_.compare(consumed_ + length, 2, "\r\n") != 0) {
    return error(ErrorKind::protocol, "a value's data does not end with \\r\\n");
  }
  std::string bytes = input_.substr(consumed_, length);
  consumed_ += length + 2;
  return bytes;
}

// "VALUE <key> <flags> <bytes> [<cas>]" and its data, checked before a byte
// of the data is read.
std::optional<Error> ReplyReader::value(std::string_view line,
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
  if (*length > limits_.max_value_bytes) {
    return error(ErrorKind::protocol, "value of " + std::to_string(*length) + " bytes for " +
                                          util::printable(key) + " is over the limit of " +
                                          std::to_string(limits_.max_value_bytes) + " bytes");
  }
  auto bytes = data(static_cast<std::size_t>(*length));
  if (!bytes) return bytes.error();
  values.insert_or_assign(std::string(key), std::move(bytes).value());
  return std::nullopt;
}

std::optional<Error> ReplyReader::get_reply(const std::unordered_set<std::string_view>& asked,
                                            Values& values) {
  for (;;) {
    auto next = line();
    if (!next) return next.error();
    if (next.value() == "END") return std::nullopt;
    if (!next.value().starts_with("VALUE ")) return unexpected(next.value());
    if (auto failed = value(next.value(), asked, values)) return failed;
  }
}

Result<SetReplies, Error> ReplyReader::set_replies(std::size_t count) {
  SetReplies replies;
  for (std::size_t i = 0; i < count; ++i) {
    auto next = line();
    if (!next) return next.error();
    const std::string& reply = next.value();
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

Result<Stats, Error> ReplyReader::stats_reply(std::string_view command) {
  Stats stats;
  for (;;) {
    auto next = line();
    if (!next) return next.error();
    const std::string_view text = next.value();
    if (text == "END") return stats;
    if (text == "ERROR") {
      return error(ErrorKind::server_error, "server rejected \"" + std::string(command) + "\"");
    }
    if (!text.starts_with("STAT ")) return unexpected(text);
    const std::string_view rest = text.substr(5);
    const std::size_t space = std::min(rest.find(' '), rest.size());
    if (space == 0) return not_protocol(text);
    stats.emplace_back(std::string(rest.substr(0, space)),
                       std::string(rest.substr(std::min(space + 1, rest.size()))));
  }
}

}  // namespace ringwatch::mc
