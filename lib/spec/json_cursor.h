#pragma once
// Reading JSON documents with errors that name the file, the JSON pointer and
// the expectation: the one place such messages are made, shared by the
// cluster spec and ringwatchd's fleet file. A Cursor is a JSON value with its
// JSON pointer; every check goes through it, so every message has one of
// these shapes:
//   expected <expectation>, got <type phrase>   (the JSON type is wrong)
//   expected <expectation>, got <the value>     (right type, unacceptable value)
//   missing required field "<name>"
//   unknown field (expected one of: <fields>)
//   duplicate field "<name>"
//   duplicate <what> "<value>" (first at <pointer>)
// Failures throw SpecError. Pure; thread-safe.

#include <rapidjson/document.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/spec/cluster_spec.h"

namespace ringwatch::spec::json {

using rapidjson::Value;

std::string render_value(const Value& value);  // compact JSON text
std::string quoted(std::string_view text);     // as a JSON string literal
const char* type_phrase(const Value& value);   // "a string", "an object", ...

// A file's whole text; an unreadable file is SpecError(path, "", "cannot read file: ...").
std::string read_file(const std::string& path);
// strict: JSON. relaxed: also // and /* */ comments and trailing commas (mcrouter's configs).
enum class Dialect { strict, relaxed };
// Parses `text` into `document` (iteratively: a deeply nested file must not
// exhaust the stack); a syntax error is SpecError(source_name, "", "invalid JSON at offset ...").
void parse_document(rapidjson::Document& document, std::string_view text,
                    const std::string& source_name, Dialect dialect = Dialect::strict);

class Object;

class Cursor {
 public:
  Cursor(const std::string& file, const Value& value, std::string pointer)
      : file_(&file), value_(&value), pointer_(std::move(pointer)) {}

  const Value& value() const { return *value_; }
  const std::string& pointer() const { return pointer_; }
  Cursor member(std::string_view name, const Value& value) const;

  [[noreturn]] void fail(std::string expectation) const;
  [[noreturn]] void wrong_type(std::string_view expectation) const;
  [[noreturn]] void wrong_value(std::string_view expectation) const;

  std::string_view string(std::string_view expectation = "a string") const;

  // A string that `parser` (string_view -> optional<T>) accepts.
  template <class Parser>
  auto string_as(std::string_view expectation, Parser&& parser) const {
    auto parsed = parser(string());
    if (!parsed) wrong_value(expectation);
    return *std::move(parsed);
  }

  std::int64_t integer(std::int64_t min, std::int64_t max) const;
  // A finite number in [min, max], fractions allowed.
  double number(double min, double max, std::string_view expectation) const;
  void expect_true() const;
  std::vector<Cursor> elements(bool non_empty) const;
  // An object whose members are all among `fields`, each at most once.
  Object object(std::initializer_list<std::string_view> fields) const;

 private:
  const std::string* file_;
  const Value* value_;
  std::string pointer_;
};

class Object {
 public:
  explicit Object(Cursor cursor) : cursor_(std::move(cursor)) {}
  std::optional<Cursor> optional(std::string_view name) const;
  Cursor required(std::string_view name) const;
  const Cursor& cursor() const { return cursor_; }

 private:
  Cursor cursor_;
};

// Remembers where each key was first seen; a second sighting is an error.
class FirstSeen {
 public:
  explicit FirstSeen(std::string what) : what_(std::move(what)) {}
  void add(const Cursor& at, const std::string& key);

 private:
  std::string what_;
  std::map<std::string, std::string> first_;
};

}  // namespace ringwatch::spec::json
