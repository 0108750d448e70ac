// How the host calls into a plugin: every call guarded, every plugin error mapped one way.
#pragma once

#include <exception>
#include <stdexcept>
#include <string>

#include "ecm/core/errors.hpp"
#include "ecm/sdk/result.hpp"

namespace ecm::host {

// Runs a plugin call; any exception becomes `on_error(message)`, which must throw. The exception
// object is gone when this returns, so nothing of the plugin's outlives the call.
template <class Fn, class OnError>
auto guarded(Fn&& fn, OnError&& on_error) -> decltype(fn()) {
  std::string message;
  try {
    return fn();
  } catch (const std::exception& e) {
    message = std::string("threw: ") + e.what();
  } catch (...) {
    message = "threw a non-standard exception";
  }
  on_error(message);
  throw std::logic_error("unreachable");
}

// A plugin's own error: the caller's fault when the plugin says so, else the plugin's.
inline core::ErrorCode code_of(const sdk::Error& e) {
  return e.kind == sdk::ErrorKind::kInvalidRequest ? core::ErrorCode::kInvalidRequest
                                                   : core::ErrorCode::kPluginFailed;
}

}  // namespace ecm::host
