#pragma once
// A DNS reply's answer section, read only far enough to find the address
// records c-ares' parsers skip in silence: an A record whose rdlength is not
// 4 (or AAAA not 16) is dropped by ares_parse_a_reply, which then reports a
// NOERROR reply with no records, as if the name had no address. The audit
// must call such a reply malformed (undecided), not empty (CRITICAL).
//
// Pure: bounded by the message's length, names are skipped without following
// compression pointers (so no loop). Thread-safe.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ringwatch::dns {

inline constexpr std::uint16_t kTypeA = 1;
inline constexpr std::uint16_t kTypeAaaa = 28;

// Why the `type` records (kTypeA or kTypeAaaa, class IN) in `message`'s
// answer section cannot be used ("an A record with rdlength 3 (expected 4)",
// "the answer section ends early"), or nullopt when they can (or there are
// none).
std::optional<std::string> answer_problem(std::string_view message, std::uint16_t type);

}  // namespace ringwatch::dns
