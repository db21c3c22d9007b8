#pragma once
// Canary keys and values.
//
// Key:   <prefix><token>-<index>:<cluster>:<generation>
//        The token is a hash of the index, first so proxies' hashes spread the
//        keys over every backend. The generation is the id of the round that
//        learned the key set; the
//        set is reused across rounds, so a round writes no new key names and
//        the backends hold one key set (plus learning leftovers until TTL).
// Value: rwc1|<writer proxy>|<round id>|<key tag>|<padding to value_size>
//        The key tag is a hash of the key, so a canary value found under the
//        wrong key reads as foreign, not as ok.
// The probe never touches a key without the prefix.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ringwatch::probes::canary {

std::string make_key(std::string_view prefix, std::string_view cluster, std::string_view generation,
                     std::size_t index);

struct CanaryValue {
  std::string writer;
  std::uint64_t round = 0;
  std::uint32_t key_tag = 0;
};

std::string encode_value(std::string_view writer, std::uint64_t round, std::string_view key,
                         std::size_t value_size);
// nullopt for anything that is not a canary value (a "foreign" value).
std::optional<CanaryValue> decode_value(std::string_view value);
std::uint32_t key_tag(std::string_view key);

}  // namespace ringwatch::probes::canary
