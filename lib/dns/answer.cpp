#include "lib/dns/answer.h"

namespace ringwatch::dns {
namespace {

constexpr std::size_t kHeaderSize = 12;
constexpr std::uint16_t kClassIn = 1;

class Reader {
 public:
  explicit Reader(std::string_view message) : message_(message) {}

  bool has(std::size_t bytes) const { return message_.size() - at_ >= bytes; }
  std::uint16_t u16() {
    const auto value = static_cast<std::uint16_t>((static_cast<unsigned char>(message_[at_]) << 8) |
                                                  static_cast<unsigned char>(message_[at_ + 1]));
    at_ += 2;
    return value;
  }
  void skip(std::size_t bytes) { at_ += bytes; }
  std::size_t at() const { return at_; }

  // A name: labels up to a zero byte or a compression pointer. False when it
  // runs past the end or holds a label type that is not defined.
  bool skip_name() {
    while (has(1)) {
      const auto length = static_cast<unsigned char>(message_[at_]);
      if (length == 0) {
        ++at_;
        return true;
      }
      if ((length & 0xc0) == 0xc0) {
        if (!has(2)) return false;
        at_ += 2;
        return true;
      }
      if ((length & 0xc0) != 0 || !has(1 + std::size_t{length})) return false;
      at_ += 1 + std::size_t{length};
    }
    return false;
  }

 private:
  std::string_view message_;
  std::size_t at_ = 0;
};

}  // namespace

std::optional<std::string> answer_problem(std::string_view message, std::uint16_t type) {
  const char* type_name = type == kTypeAaaa ? "AAAA" : "A";
  const std::uint16_t expected = type == kTypeAaaa ? 16 : 4;
  if (message.size() < kHeaderSize) return "the reply is shorter than a DNS header";
  Reader reader(message);
  reader.skip(4);
  const std::uint16_t questions = reader.u16();
  const std::uint16_t answers = reader.u16();
  reader.skip(4);
  for (std::uint16_t q = 0; q < questions; ++q) {
    if (!reader.skip_name() || !reader.has(4)) return "the question section ends early";
    reader.skip(4);
  }
  for (std::uint16_t a = 0; a < answers; ++a) {
    if (!reader.skip_name() || !reader.has(10)) return "the answer section ends early";
    const std::uint16_t record_type = reader.u16();
    const std::uint16_t record_class = reader.u16();
    reader.skip(4);  // TTL
    const std::uint16_t rdlength = reader.u16();
    if (!reader.has(rdlength)) return "the answer section ends early";
    if (record_type == type && record_class == kClassIn && rdlength != expected) {
      return std::string("an ") + type_name + " record with rdlength " + std::to_string(rdlength) +
             " (expected " + std::to_string(expected) + ")";
    }
    reader.skip(rdlength);
  }
  return std::nullopt;
}

}  // namespace ringwatch::dns
