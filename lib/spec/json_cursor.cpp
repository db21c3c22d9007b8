#include "lib/spec/json_cursor.h"
#include "lib/util/text.h"

#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <memory>
#include <system_error>

namespace ringwatch::spec::json {

namespace {

// RFC 6901: "~" and "/" inside a member name are escaped.
std::string pointer_token(std::string_view name) {
  std::string out;
  for (const char c : name) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string render_value(const Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  value.Accept(writer);
  return {buffer.GetString(), buffer.GetSize()};
}

std::string quoted(std::string_view text) {
  return render_value(Value(rapidjson::StringRef(text.data(), text.size())));
}

const char* type_phrase(const Value& value) {
  switch (value.GetType()) {
    case rapidjson::kNullType:
      return "null";
    case rapidjson::kFalseType:
    case rapidjson::kTrueType:
      return "a boolean";
    case rapidjson::kObjectType:
      return "an object";
    case rapidjson::kArrayType:
      return "an array";
    case rapidjson::kStringType:
      return "a string";
    case rapidjson::kNumberType:
      return "a number";
  }
  return "an unknown value";
}

std::string read_file(const std::string& path) {
  const auto cannot_read = [&](int error) {
    return SpecError(
        path, "", "cannot read file: " + std::error_code(error, std::generic_category()).message());
  };
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                             &std::fclose);
  if (!file) throw cannot_read(errno);
  std::string text;
  char buffer[1 << 16];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, file.get())) > 0) text.append(buffer, n);
  if (std::ferror(file.get())) throw cannot_read(errno);
  return text;
}

void parse_document(rapidjson::Document& document, std::string_view text,
                    const std::string& source_name, Dialect dialect) {
  constexpr unsigned kStrict =
      rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;
  if (dialect == Dialect::strict) {
    document.Parse<kStrict>(text.data(), text.size());
  } else {
    document.Parse<kStrict | rapidjson::kParseCommentsFlag | rapidjson::kParseTrailingCommasFlag>(
        text.data(), text.size());
  }
  if (document.HasParseError()) {
    throw SpecError(source_name, "",
                    "invalid JSON at offset " + std::to_string(document.GetErrorOffset()) + ": " +
                        rapidjson::GetParseError_En(document.GetParseError()));
  }
}

Cursor Cursor::member(std::string_view name, const Value& value) const {
  return {*file_, value, pointer_ + "/" + pointer_token(name)};
}

void Cursor::fail(std::string expectation) const {
  throw SpecError(*file_, pointer_, std::move(expectation));
}

void Cursor::wrong_type(std::string_view expectation) const {
  fail("expected " + std::string(expectation) + ", got " + type_phrase(*value_));
}

void Cursor::wrong_value(std::string_view expectation) const {
  fail("expected " + std::string(expectation) + ", got " + render_value(*value_));
}

std::string_view Cursor::string(std::string_view expectation) const {
  if (!value_->IsString()) wrong_type(expectation);
  return {value_->GetString(), value_->GetStringLength()};
}

std::int64_t Cursor::integer(std::int64_t min, std::int64_t max) const {
  const std::string expectation =
      "an integer from " + std::to_string(min) + " to " + std::to_string(max);
  if (!value_->IsNumber()) wrong_type(expectation);
  if (!value_->IsInt64() || value_->GetInt64() < min || value_->GetInt64() > max) {
    wrong_value(expectation);
  }
  return value_->GetInt64();
}

double Cursor::number(double min, double max, std::string_view expectation) const {
  if (!value_->IsNumber()) wrong_type(expectation);
  const double number = value_->GetDouble();
  if (!std::isfinite(number) || number < min || number > max) wrong_value(expectation);
  return number;
}

void Cursor::expect_true() const {
  if (!value_->IsBool()) wrong_type("true");
  if (!value_->GetBool()) wrong_value("true");
}

std::vector<Cursor> Cursor::elements(bool non_empty) const {
  const char* expectation = non_empty ? "a non-empty array" : "an array";
  if (!value_->IsArray()) wrong_type(expectation);
  if (non_empty && value_->Empty()) wrong_value(expectation);
  std::vector<Cursor> out;
  for (rapidjson::SizeType i = 0; i < value_->Size(); ++i) {
    out.emplace_back(*file_, (*value_)[i], pointer_ + "/" + std::to_string(i));
  }
  return out;
}

Object Cursor::object(std::initializer_list<std::string_view> fields) const {
  if (!value_->IsObject()) wrong_type("an object");
  std::vector<std::string_view> seen;
  for (const auto& m : value_->GetObject()) {
    const std::string_view name(m.name.GetString(), m.name.GetStringLength());
    if (std::find(fields.begin(), fields.end(), name) == fields.end()) {
      member(name, m.value).fail("unknown field (expected one of: " + util::join(fields) + ")");
    }
    if (std::find(seen.begin(), seen.end(), name) != seen.end()) {
      fail("duplicate field " + quoted(name));
    }
    seen.push_back(name);
  }
  return Object(*this);
}

std::optional<Cursor> Object::optional(std::string_view name) const {
  const auto& value = cursor_.value();
  const auto it = value.FindMember(Value(rapidjson::StringRef(name.data(), name.size())));
  if (it == value.MemberEnd()) return std::nullopt;
  return cursor_.member(name, it->value);
}

Cursor Object::required(std::string_view name) const {
  auto found = optional(name);
  if (!found) cursor_.fail("missing required field " + quoted(name));
  return *std::move(found);
}

void FirstSeen::add(const Cursor& at, const std::string& key) {
  const auto [it, inserted] = first_.emplace(key, at.pointer());
  if (!inserted) {
    at.fail("duplicate " + what_ + " " + quoted(key) + " (first at " + it->second + ")");
  }
}

}  // namespace ringwatch::spec::json
