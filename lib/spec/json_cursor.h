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
// Failures throw SpecError. Values from the file are echoed bounded (cut with
// an ellipsis after util::kEchoBytes), so a 1 MB field never becomes a 1 MB
// message. Pure; thread-safe.

#include <rapidjson/document.h>

#include <cstddef>
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

// The deepest nesting a document may have. A spec, a plan or a fleet file
// nests 6 levels at most; refusing more at parse time keeps every walk and
// every writer of a parsed document (which recurse) bounded.
inline constexpr std::size_t kMaxDepth = 32;

// Compact JSON text. Numbers are written as the numbers they are: integers
// beyond 2^53 in full (18446744073709551616, not 18446744073709553000.0).
std::string render_value(const Value& value);
// The same, for a message: cut after util::kEchoBytes with "...".
std::string echo_value(const Value& value);
// As a JSON string literal, for a message: cut after util::kEchoBytes with
// "..." inside the quotes.
std::string quoted(std::string_view text);
const char* type_phrase(const Value& value);  // "a string", "an object", ...

// Why a text is not an acceptable document, and where.
struct ParseFailure {
  enum class Kind { syntax, too_deep };
  Kind kind = Kind::syntax;
  std::size_t offset = 0;  // bytes into the text where the parser stopped
  std::size_t line = 0;    // 1-based, at `offset`
  std::size_t column = 0;  // 1-based, in characters (UTF-8 sequences count once)
  std::string pointer;     // too_deep: the JSON pointer of the value nested too deep
  std::string message;     // syntax: the parser's words; too_deep: "expected at most ..."
};
// strict: JSON. relaxed: also // and /* */ comments and trailing commas (mcrouter's configs).
enum class Dialect { strict, relaxed };
// Parses `text` into `document` iteratively (the parser never recurses),
// validating UTF-8, and refuses nesting deeper than `max_depth` (the root
// object or array is level 1) as soon as the parser meets it.
std::optional<ParseFailure> parse_bounded(rapidjson::Document& document, std::string_view text,
                                          std::size_t max_depth = kMaxDepth,
                                          Dialect dialect = Dialect::strict);

// A file's whole text; an unreadable file is SpecError(path, "", "cannot read file: ..."),
// and so is one larger than kMaxFileBytes (a path naming /dev/zero, say).
inline constexpr std::size_t kMaxFileBytes = 16 << 20;
std::string read_file(const std::string& path);
// parse_bounded() for a file, which throws: a syntax error is
// SpecError(source_name, "", "invalid JSON at line L, column C: <parser message>"),
// nesting too deep is SpecError(source_name, <pointer>, "expected at most 32
// levels of nesting, got an array at level 33").
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
