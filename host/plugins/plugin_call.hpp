// How the host calls into a plugin: every call guarded, every plugin error mapped one way.
#pragma once

#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "ecm/core/errors.hpp"
#include "ecm/core/units.hpp"
#include "ecm/sdk/result.hpp"
#include "plugins/plugin_call_runner.hpp"

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

// As guarded(), with a deadline: `fn` runs on `runner` and `on_error` gets "did not return within
// ..." when it has not returned by then. `fn` must own what it uses (copies of the request, the
// plugin's shared_ptr, which keeps its library loaded): a call given up on goes on running.
// Without a runner or a timeout the call is made on this thread.
template <class Fn, class OnError>
auto guarded_within(PluginCallRunner* runner, std::chrono::milliseconds timeout, Fn fn,
                    OnError&& on_error) -> decltype(fn()) {
  if (runner == nullptr || timeout.count() <= 0) return guarded(fn, on_error);
  using Value = decltype(fn());
  struct Outcome {
    std::optional<Value> value;
    std::string error;
  };
  auto out = std::make_shared<Outcome>();
  auto job = [out, fn = std::move(fn)]() mutable {
    try {
      out->value.emplace(fn());
    } catch (const std::exception& e) {
      out->error = std::string("threw: ") + e.what();
    } catch (...) {
      out->error = "threw a non-standard exception";
    }
  };
  switch (runner->run(std::move(job), timeout)) {
    case PluginCallRunner::Outcome::kFinished:
      break;
    case PluginCallRunner::Outcome::kTimedOut:
      on_error("did not return within " + core::format_duration(timeout) +
               " (the call is abandoned and its thread left to it)");
      break;
    case PluginCallRunner::Outcome::kRefused:
      on_error("refused: " + std::to_string(runner->max_stuck()) +
               " earlier plugin calls never returned");
      break;
  }
  if (!out->value) on_error(out->error);
  return std::move(*out->value);
}

// A plugin's own error: the caller's fault when the plugin says so, else the plugin's.
inline core::ErrorCode code_of(const sdk::Error& e) {
  return e.kind == sdk::ErrorKind::kInvalidRequest ? core::ErrorCode::kInvalidRequest
                                                   : core::ErrorCode::kPluginFailed;
}

}  // namespace ecm::host
