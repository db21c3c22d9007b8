#pragma once
// Small text helpers shared by every part: joining lists, counting nouns,
// reading integers, fitting text into columns and echoing outside text in
// messages, each written once.
//
// Pure and thread-safe.

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace ringwatch::util {

// "a, b, c" (or with another separator).
std::string join(const std::vector<std::string>& items, std::string_view separator = ", ");
std::string join(std::initializer_list<std::string_view> items, std::string_view separator = ", ");
// For sentences: "a", "a and b", "a, b and c".
std::string join_and(const std::vector<std::string>& items);

// "1 error", "3 errors"; "1 proxy", "2 proxies" with `many` given.
std::string plural(std::int64_t count, std::string_view one, std::string_view many = {});

// RFC 4648 base64 with padding (HTTP basic auth, DevTools screenshots).
std::string base64_encode(std::string_view bytes);
// nullopt when `text` holds a character outside the alphabet (padding ends it).
std::optional<std::string> base64_decode(std::string_view text);

// The whole of `text` as an integer of type Int in `base`, or nullopt (empty,
// a sign where Int is unsigned, trailing characters, out of range).
template <class Int = std::int64_t>
std::optional<Int> parse_int(std::string_view text, int base = 10) {
  Int value{};
  if (text.empty()) return std::nullopt;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// Text from outside (a peer's reply, a field of a file, a request's target)
// made fit for a message: valid UTF-8 passes, every other byte and every
// control character becomes "\xNN", and a result longer than `max_bytes` is
// cut at a character boundary and ends in "..." (so at most max_bytes + 3
// bytes). A 1 MB field becomes a short message; a message never carries
// invalid UTF-8.
inline constexpr std::size_t kEchoBytes = 120;
std::string printable(std::string_view text, std::size_t max_bytes = kEchoBytes);
// The terminal columns of UTF-8 text, one per code point ("·" and "—" are
// one column each; no wide characters occur in what ringwatch prints).
std::size_t columns(std::string_view text);
// `text` in at most `width` columns, its end replaced by "…" when it does not
// fit; never splits a UTF-8 sequence.
std::string cut_to(std::string_view text, std::size_t width);

}  // namespace ringwatch::util
