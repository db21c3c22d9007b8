#pragma once
// Result<T, E>: a value or an expected failure (C++23's std::expected is not in
// GCC 12). Expected failures (a refused connection, a timeout) travel as values;
// configuration errors throw once and become an exit code at the CLI.

#include <utility>
#include <variant>

namespace ringwatch {

template <class T, class E>
class Result {
 public:
  Result(T value)
      : state_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(E error) : state_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(state_); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  const E& error() const { return std::get<1>(state_); }

 private:
  std::variant<T, E> state_;
};

// For operations that return nothing on success.
struct Done {};

}  // namespace ringwatch
