#include "lib/spec/json_cursor.h"
#include "lib/util/text.h"

#include <rapidjson/encodedstream.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <system_error>
#include <tuple>
#include <utility>

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

// Drives a Writer, writing integral numbers beyond 2^53 (which RapidJSON
// writes as 17 significant digits padded with zeros) exactly, and stops the
// walk once `max_bytes` are written.
class RenderHandler {
 public:
  explicit RenderHandler(std::size_t max_bytes) : writer_(buffer_), max_bytes_(max_bytes) {}

  bool Null() { return room(writer_.Null()); }
  bool Bool(bool b) { return room(writer_.Bool(b)); }
  bool Int(int i) { return room(writer_.Int(i)); }
  bool Uint(unsigned u) { return room(writer_.Uint(u)); }
  bool Int64(std::int64_t i) { return room(writer_.Int64(i)); }
  bool Uint64(std::uint64_t u) { return room(writer_.Uint64(u)); }
  bool Double(double d) {
    constexpr double kExactIntegers = 9007199254740992.0;  // 2^53
    if (!std::isfinite(d) || d != std::trunc(d) || std::fabs(d) < kExactIntegers ||
        std::fabs(d) >= 1e21) {
      return room(writer_.Double(d));
    }
    char text[32];
    const auto end = std::to_chars(text, text + sizeof text, d, std::chars_format::fixed, 0).ptr;
    return room(
        writer_.RawValue(text, static_cast<std::size_t>(end - text), rapidjson::kNumberType));
  }
  bool RawNumber(const char* text, rapidjson::SizeType length, bool copy) {
    return room(writer_.RawNumber(text, length, copy));
  }
  bool String(const char* text, rapidjson::SizeType length, bool copy) {
    return room(writer_.String(text, length, copy));
  }
  bool StartObject() { return room(writer_.StartObject()); }
  bool Key(const char* text, rapidjson::SizeType length, bool copy) {
    return room(writer_.Key(text, length, copy));
  }
  bool EndObject(rapidjson::SizeType members) { return room(writer_.EndObject(members)); }
  bool StartArray() { return room(writer_.StartArray()); }
  bool EndArray(rapidjson::SizeType elements) { return room(writer_.EndArray(elements)); }

  // The text, cut at a character boundary with "..." when it grew too long.
  std::string text() const {
    std::string_view text(buffer_.GetString(), buffer_.GetSize());
    if (text.size() <= max_bytes_) return std::string(text);
    std::size_t cut = max_bytes_;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xc0) == 0x80) --cut;
    return std::string(text.substr(0, cut)) + "...";
  }

 private:
  bool room(bool written) const { return written && buffer_.GetSize() <= max_bytes_; }

  rapidjson::StringBuffer buffer_;
  rapidjson::Writer<rapidjson::StringBuffer> writer_;
  std::size_t max_bytes_;
};

std::string render(const Value& value, std::size_t max_bytes) {
  RenderHandler handler(max_bytes);
  value.Accept(handler);
  return handler.text();
}

// A pointer for a message: its member names may be as long as the file.
std::string bounded_pointer(const std::string& pointer) {
  constexpr std::size_t kMaxPointer = 4 * util::kEchoBytes;
  return pointer.size() <= kMaxPointer ? pointer : util::printable(pointer, kMaxPointer);
}

}  // namespace

std::string render_value(const Value& value) {
  return render(value, std::numeric_limits<std::size_t>::max());
}

std::string echo_value(const Value& value) {
  if (value.IsString()) return quoted({value.GetString(), value.GetStringLength()});
  return render(value, util::kEchoBytes);
}

std::string quoted(std::string_view text) {
  std::size_t shown = std::min(text.size(), util::kEchoBytes);
  while (shown > 0 && shown < text.size() &&
         (static_cast<unsigned char>(text[shown]) & 0xc0) == 0x80) {
    --shown;
  }
  std::string out = render_value(Value(rapidjson::StringRef(text.data(), shown)));
  if (shown < text.size()) out.insert(out.size() - 1, "...");
  return out;
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
  while ((n = std::fread(buffer, 1, sizeof buffer, file.get())) > 0) {
    text.append(buffer, n);
    if (text.size() > kMaxFileBytes) {
      throw SpecError(
          path, "",
          "cannot read file: larger than " + std::to_string(kMaxFileBytes >> 20) + " MiB");
    }
  }
  if (std::ferror(file.get())) throw cannot_read(errno);
  return text;
}

namespace {

// The document's own handler, with a count of open objects and arrays and
// where each stands, so the parse stops at the first value nested too deep
// and can say where it is.
class DepthLimit {
 public:
  DepthLimit(rapidjson::Document& document, std::size_t max_depth)
      : document_(document), max_depth_(max_depth) {}

  bool Null() { return element() && document_.Null(); }
  bool Bool(bool b) { return element() && document_.Bool(b); }
  bool Int(int i) { return element() && document_.Int(i); }
  bool Uint(unsigned u) { return element() && document_.Uint(u); }
  bool Int64(std::int64_t i) { return element() && document_.Int64(i); }
  bool Uint64(std::uint64_t u) { return element() && document_.Uint64(u); }
  bool Double(double d) { return element() && document_.Double(d); }
  // Numbers arrive as text (kParseNumbersAsStringsFlag) and are converted
  // here, as the reader would, but without RapidJSON 1.1's full-precision
  // strtod: it normalizes a zero significand with clz(0), undefined
  // behaviour on inputs as short as "0e88" (fuzz/regressions/spec). glibc's
  // strtod rounds correctly too.
  bool RawNumber(const char* text, rapidjson::SizeType length, bool) {
    element();
    const std::string number(text, length);
    if (number.find_first_of(".eE") == std::string::npos) {
      if (number.starts_with('-')) {
        if (const auto i = util::parse_int<std::int64_t>(number)) {
          return *i >= std::numeric_limits<int>::min() ? document_.Int(static_cast<int>(*i))
                                                       : document_.Int64(*i);
        }
      } else if (const auto u = util::parse_int<std::uint64_t>(number)) {
        return *u <= std::numeric_limits<unsigned>::max()
                   ? document_.Uint(static_cast<unsigned>(*u))
                   : document_.Uint64(*u);
      }
    }
    const double d = std::strtod(number.c_str(), nullptr);  // beyond 64 bits: a double
    if (std::isinf(d)) {
      number_too_big_ = true;
      return false;
    }
    return document_.Double(d);
  }
  bool String(const char* text, rapidjson::SizeType length, bool copy) {
    return element() && document_.String(text, length, copy);
  }
  bool Key(const char* text, rapidjson::SizeType length, bool copy) {
    open_.back().key.assign(text, length);
    return document_.Key(text, length, copy);
  }
  bool StartObject() { return open(false) && document_.StartObject(); }
  bool EndObject(rapidjson::SizeType members) {
    open_.pop_back();
    return document_.EndObject(members);
  }
  bool StartArray() { return open(true) && document_.StartArray(); }
  bool EndArray(rapidjson::SizeType elements) {
    open_.pop_back();
    return document_.EndArray(elements);
  }

  // The pointer to the first value nested too deep, once the parse stopped there.
  const std::optional<std::string>& too_deep() const { return too_deep_; }
  bool too_deep_array() const { return too_deep_array_; }
  // Whether the parse stopped at a number no double holds.
  bool number_too_big() const { return number_too_big_; }

 private:
  struct Open {
    bool array = false;
    std::size_t elements = 0;  // arrays: values seen so far
    std::string key;           // objects: the member being read
  };

  bool element() {
    if (!open_.empty() && open_.back().array) ++open_.back().elements;
    return true;
  }
  bool open(bool array) {
    element();
    if (open_.size() >= max_depth_) {
      std::string pointer;
      for (const Open& level : open_) {
        pointer +=
            "/" + (level.array ? std::to_string(level.elements - 1) : pointer_token(level.key));
      }
      too_deep_ = std::move(pointer);
      too_deep_array_ = array;
      return false;
    }
    open_.push_back({array, 0, {}});
    return true;
  }

  rapidjson::Document& document_;
  std::size_t max_depth_;
  std::vector<Open> open_;
  std::optional<std::string> too_deep_;
  bool too_deep_array_ = false;
  bool number_too_big_ = false;
};

// 1-based line and column of `offset`; the column counts UTF-8 characters.
std::pair<std::size_t, std::size_t> line_and_column(std::string_view text, std::size_t offset) {
  offset = std::min(offset, text.size());
  std::size_t line = 1, column = 1;
  for (std::size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else if ((static_cast<unsigned char>(text[i]) & 0xc0) != 0x80) {
      ++column;
    }
  }
  return {line, column};
}

}  // namespace

std::optional<ParseFailure> parse_bounded(rapidjson::Document& document, std::string_view text,
                                          std::size_t max_depth, Dialect dialect) {
  constexpr unsigned kStrict = rapidjson::kParseIterativeFlag |
                               rapidjson::kParseValidateEncodingFlag |
                               rapidjson::kParseNumbersAsStringsFlag;
  constexpr unsigned kRelaxed =
      kStrict | rapidjson::kParseCommentsFlag | rapidjson::kParseTrailingCommasFlag;
  DepthLimit limit(document, max_depth);
  rapidjson::ParseResult result;
  auto generate = [&](rapidjson::Document&) {
    rapidjson::MemoryStream bytes(text.data(), text.size());
    rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> stream(bytes);
    rapidjson::Reader reader;
    result = dialect == Dialect::strict ? reader.Parse<kStrict>(stream, limit)
                                        : reader.Parse<kRelaxed>(stream, limit);
    return !result.IsError();
  };
  document.SetNull();
  document.Populate(generate);
  if (!result.IsError()) return std::nullopt;
  ParseFailure failure;
  failure.offset = result.Offset();
  std::tie(failure.line, failure.column) = line_and_column(text, failure.offset);
  if (limit.too_deep()) {
    failure.kind = ParseFailure::Kind::too_deep;
    failure.pointer = *limit.too_deep();
    failure.message = "expected at most " + std::to_string(max_depth) + " levels of nesting, got " +
                      (limit.too_deep_array() ? "an array" : "an object") + " at level " +
                      std::to_string(max_depth + 1);
  } else {
    failure.message = rapidjson::GetParseError_En(
        limit.number_too_big() ? rapidjson::kParseErrorNumberTooBig : result.Code());
  }
  return failure;
}

void parse_document(rapidjson::Document& document, std::string_view text,
                    const std::string& source_name, Dialect dialect) {
  auto failure = parse_bounded(document, text, kMaxDepth, dialect);
  if (!failure) return;
  if (failure->kind == ParseFailure::Kind::too_deep) {
    throw SpecError(source_name, bounded_pointer(failure->pointer), failure->message);
  }
  throw SpecError(source_name, "",
                  "invalid JSON at line " + std::to_string(failure->line) + ", column " +
                      std::to_string(failure->column) + ": " + failure->message);
}

Cursor Cursor::member(std::string_view name, const Value& value) const {
  return {*file_, value, pointer_ + "/" + pointer_token(name)};
}

void Cursor::fail(std::string expectation) const {
  throw SpecError(*file_, bounded_pointer(pointer_), std::move(expectation));
}

void Cursor::wrong_type(std::string_view expectation) const {
  fail("expected " + std::string(expectation) + ", got " + type_phrase(*value_));
}

void Cursor::wrong_value(std::string_view expectation) const {
  fail("expected " + std::string(expectation) + ", got " + echo_value(*value_));
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
    at.fail("duplicate " + what_ + " " + quoted(key) + " (first at " + bounded_pointer(it->second) +
            ")");
  }
}

}  // namespace ringwatch::spec::json
