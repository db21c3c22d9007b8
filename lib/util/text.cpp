#include "lib/util/text.h"

namespace ringwatch::util {
namespace {

template <class Items>
std::string join_items(const Items& items, std::string_view separator) {
  std::string out;
  bool first = true;
  for (const auto& item : items) {
    if (!first) out += separator;
    out += item;
    first = false;
  }
  return out;
}

}  // namespace

std::string join(const std::vector<std::string>& items, std::string_view separator) {
  return join_items(items, separator);
}

std::string join(std::initializer_list<std::string_view> items, std::string_view separator) {
  return join_items(items, separator);
}

std::string join_and(const std::vector<std::string>& items) {
  std::string text;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) text += i + 1 == items.size() ? " and " : ", ";
    text += items[i];
  }
  return text;
}

std::string plural(std::int64_t count, std::string_view one, std::string_view many) {
  std::string text = std::to_string(count) + " ";
  if (count == 1) return text.append(one);
  if (!many.empty()) return text.append(many);
  return text.append(one).append("s");
}

}  // namespace ringwatch::util
