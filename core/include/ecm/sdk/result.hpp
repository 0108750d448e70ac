// How a plugin answers: a value, or an error the host turns into a typed error for the caller.
// Plugins report failures through these, not exceptions: an exception thrown across the library
// boundary still works (the host catches it) but is reported as a plugin failure, not a bad
// request.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace ecm::sdk {

enum class ErrorKind {
  kInvalidRequest,  // the request is wrong (missing or bad property): the caller must fix it
  kInternal,        // the plugin could not do its job for another reason
  // ABI 1.4 (localizers; appended, a 1.3 plugin never returns them):
  kNotFound,     // what was asked for does not exist (a 404): retrying will not help
  kUnavailable,  // a service or the network failed; the plugin already retried
};

struct Error {
  ErrorKind kind = ErrorKind::kInternal;
  std::string message;
};

inline Error invalid_request(std::string message) {
  return Error{ErrorKind::kInvalidRequest, std::move(message)};
}
inline Error internal_error(std::string message) {
  return Error{ErrorKind::kInternal, std::move(message)};
}

// Success, or an error.
class Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT: implicit by design
  bool ok() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

// A value of T, or an error.
template <class T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT: implicit by design
  bool ok() const { return v_.index() == 0; }
  const T& value() const { return std::get<0>(v_); }
  T& value() { return std::get<0>(v_); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

}  // namespace ecm::sdk
