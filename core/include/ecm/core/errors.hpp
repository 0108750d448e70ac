// The typed errors of the ECM: every failure a caller must act on carries one of these codes.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace ecm::core {

enum class ErrorCode {
  kInvalidRequest,
  kNotFound,
  kUnknownEngineType,
  kInsufficientResources,
  kPluginFailed,
  kShuttingDown,
  kInternal,
  kLaunchFailed,
  kPermissionDenied,
  // The node's health takes no new engines (overload, unhealthy, or as the RM set it).
  kNodeUnavailable,
  // A plugin cannot be unloaded now: engines it launched still run (force to drain instead).
  kPluginBusy,
  // A resource the engine needs could not be fetched, verified or unpacked; the message names it.
  kLocalizationFailed,
  // The ECM requires a token and the connection has not authenticated (Thrift's UNAUTHENTICATED).
  kUnauthenticated,
};

std::string_view to_string(ErrorCode code);

class EcmException : public std::runtime_error {
 public:
  EcmException(ErrorCode code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace ecm::core
