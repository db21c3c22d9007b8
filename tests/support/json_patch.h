#pragma once
// Rejection tests start from one valid document and change one thing: a
// JSON Pointer set to a new JSON value, or erased.

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/pointer.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>
#include <vector>

namespace ringwatch::testing {

struct JsonPatch {
  const char* pointer;
  const char* json;  // nullptr: erase
};

// `base` with every patch applied, in order, as compact JSON text.
inline std::string patched_json(const char* base, const std::vector<JsonPatch>& patches) {
  rapidjson::Document document;
  document.Parse(base);
  EXPECT_FALSE(document.HasParseError());
  for (const auto& patch : patches) {
    const rapidjson::Pointer pointer(patch.pointer);
    EXPECT_TRUE(pointer.IsValid()) << patch.pointer;
    if (patch.json == nullptr) {
      EXPECT_TRUE(pointer.Erase(document)) << patch.pointer;
      continue;
    }
    rapidjson::Document value;
    value.Parse(patch.json);
    EXPECT_FALSE(value.HasParseError()) << patch.json;
    rapidjson::Value copy(value, document.GetAllocator());
    pointer.Set(document, copy);
  }
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  document.Accept(writer);
  return buffer.GetString();
}

}  // namespace ringwatch::testing
