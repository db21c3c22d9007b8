#include "probes/canary/canary_keys.h"

#include <cstdio>

#include "lib/util/text.h"

namespace ringwatch::probes::canary {

namespace {
constexpr std::string_view kMagic = "rwc1|";
}  // namespace

std::string make_key(std::string_view prefix, std::string_view cluster, std::string_view generation,
                     std::size_t index) {
  // Proxies hash the whole key, and nutcracker's fnv1a_64 hardly mixes the
  // last bytes into the bits ketama uses: keys differing only at the end
  // pile onto one or two backends. So the part that varies comes first,
  // already mixed (splitmix64 of the index), and the constant parts follow.
  std::uint64_t mixed = index + 0x9e3779b97f4a7c15ull;
  mixed = (mixed ^ (mixed >> 30)) * 0xbf58476d1ce4e5b9ull;
  mixed = (mixed ^ (mixed >> 27)) * 0x94d049bb133111ebull;
  mixed ^= mixed >> 31;
  char token[24];
  std::snprintf(token, sizeof token, "%08x-%zu", static_cast<std::uint32_t>(mixed), index);
  std::string key;
  key.reserve(prefix.size() + cluster.size() + generation.size() + 24);
  key.append(prefix).append(token).append(":").append(cluster).append(":").append(generation);
  return key;
}

std::uint32_t key_tag(std::string_view key) {
  std::uint32_t hash = 2166136261u;  // FNV-1a
  for (unsigned char c : key) {
    hash ^= c;
    hash *= 16777619u;
  }
  return hash;
}

std::string encode_value(std::string_view writer, std::uint64_t round, std::string_view key,
                         std::size_t value_size) {
  char tag[9];
  std::snprintf(tag, sizeof tag, "%08x", key_tag(key));
  std::string value;
  value.reserve(value_size);
  value.append(kMagic).append(writer).append("|").append(std::to_string(round));
  value.append("|").append(tag).append("|");
  if (value.size() < value_size) value.append(value_size - value.size(), '.');
  return value;
}

std::optional<CanaryValue> decode_value(std::string_view value) {
  if (!value.starts_with(kMagic)) return std::nullopt;
  value.remove_prefix(kMagic.size());
  std::string_view fields[3];
  for (std::string_view& field : fields) {
    const auto bar = value.find('|');
    if (bar == std::string_view::npos) return std::nullopt;
    field = value.substr(0, bar);
    value.remove_prefix(bar + 1);
  }
  CanaryValue decoded;
  decoded.writer = std::string(fields[0]);
  const auto round = util::parse_int<std::uint64_t>(fields[1]);
  const auto key_tag =
      fields[2].size() == 8 ? util::parse_int<std::uint32_t>(fields[2], 16) : std::nullopt;
  if (decoded.writer.empty() || !round || !key_tag) return std::nullopt;
  decoded.round = *round;
  decoded.key_tag = *key_tag;
  return decoded;
}

}  // namespace ringwatch::probes::canary
