#pragma once
// Writing lab.json with RapidJSON, one call per member, so that the code
// that writes an object reads as the list of its fields. (Reading goes
// through lib/spec/json_cursor.h; see tools/lab/state.h.)

#include <cstdint>
#include <string_view>
#include <type_traits>

#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

namespace ringwatch::lab {

using JsonWriter = rapidjson::PrettyWriter<rapidjson::StringBuffer>;

// "key": value, for a string, a bool or an integer (signed or unsigned).
template <class T>
void field(JsonWriter& writer, std::string_view key, const T& value) {
  writer.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
  if constexpr (std::is_same_v<T, bool>) {
    writer.Bool(value);
  } else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
    writer.Int64(value);
  } else if constexpr (std::is_integral_v<T>) {
    writer.Uint64(value);
  } else {
    const std::string_view text(value);
    writer.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
  }
}

}  // namespace ringwatch::lab
