#pragma once
// The status page's files (daemon/web/), compiled into the binary by
// daemon/web/embed.cmake: nothing is read from disk or fetched at run time.

#include <string_view>
#include <vector>

namespace ringwatch::daemon {

struct WebAsset {
  std::string_view name;          // path under daemon/web/, e.g. "ringwatch.js"
  std::string_view content_type;  // "text/javascript; charset=utf-8"
  std::string_view body;
};

const std::vector<WebAsset>& web_assets();

}  // namespace ringwatch::daemon
