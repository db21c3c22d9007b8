#pragma once
// Splitting one fuzz input into several stats replies: the parts between NUL
// bytes, each parsed as stat lines; nullopt when one does not parse (which
// parse_stat_lines itself must survive).

#include <algorithm>
#include <optional>
#include <string_view>
#include <vector>

#include "fuzz/fuzz.h"
#include "probes/connections/proxy_adapters.h"

namespace ringwatch::fuzz {

inline std::optional<std::vector<probes::connections::StatList>> stat_replies(
    std::string_view input, std::size_t count) {
  std::vector<probes::connections::StatList> replies;
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t end =
        i + 1 == count ? input.size() : std::min(input.find('\0'), input.size());
    auto parsed = probes::connections::parse_stat_lines(input.substr(0, end));
    if (!parsed) {
      expect_bounded_message(parsed.error().message);
      return std::nullopt;
    }
    replies.push_back(std::move(parsed).value());
    input.remove_prefix(std::min(end + 1, input.size()));
  }
  return replies;
}

}  // namespace ringwatch::fuzz
