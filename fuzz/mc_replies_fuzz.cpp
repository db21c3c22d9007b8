// Fuzz target: the memcached client's replies (lib/mc/reply_reader), fed from
// memory as if a peer sent the input and closed: a get's reply, a batch of
// set replies and a stats reply. Each ends in values or a typed error with a
// bounded message, and a value is only ever one of the keys asked for,
// within the value limit.
#include <algorithm>
#include <unordered_set>

#include "fuzz/fuzz.h"
#include "lib/mc/reply_reader.h"

namespace {

using namespace ringwatch;

// The input, in pieces of at most 7 bytes (so every reply line is read
// across several reads), then the peer's close.
class Input final : public mc::ByteSource {
 public:
  explicit Input(std::string_view bytes) : bytes_(bytes) {}
  std::optional<mc::Error> read_more(std::string& buffer, std::size_t max_bytes) override {
    if (bytes_.empty()) return mc::Error{mc::ErrorKind::connect_refused, "peer: closed"};
    const std::size_t n = std::min({bytes_.size(), max_bytes, std::size_t{7}});
    buffer.append(bytes_.substr(0, n));
    bytes_.remove_prefix(n);
    return std::nullopt;
  }

 private:
  std::string_view bytes_;
};

constexpr mc::Limits kLimits{.max_value_bytes = 4096, .max_reply_bytes = 1 << 20};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes = fuzz::text(data, size);
  {
    Input input(bytes);
    mc::ReplyReader reader(input, "peer", kLimits, kLimits.max_reply_bytes);
    const std::unordered_set<std::string_view> asked = {"a", "k1", "ringwatch:x"};
    mc::Values values;
    if (auto failed = reader.get_reply(asked, values)) {
      fuzz::expect_bounded_message(failed->message);
    }
    for (const auto& [key, value] : values) {
      if (!asked.contains(key)) fuzz::broken("a value for a key not asked for", key);
      if (value.size() > kLimits.max_value_bytes) fuzz::broken("a value over the limit", key);
    }
  }
  {
    Input input(bytes);
    mc::ReplyReader reader(input, "peer", kLimits, kLimits.max_reply_bytes);
    auto replies = reader.set_replies(3);
    if (!replies) fuzz::expect_bounded_message(replies.error().message);
  }
  {
    Input input(bytes);
    mc::ReplyReader reader(input, "peer", kLimits, kLimits.max_reply_bytes);
    auto stats = reader.stats_reply("stats");
    if (!stats) fuzz::expect_bounded_message(stats.error().message);
  }
  return 0;
}
