#include "ecm/core/errors.hpp"

namespace ecm::core {

std::string_view to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidRequest:
      return "INVALID_REQUEST";
    case ErrorCode::kNotFound:
      return "NOT_FOUND";
    case ErrorCode::kUnknownEngineType:
      return "UNKNOWN_ENGINE_TYPE";
    case ErrorCode::kInsufficientResources:
      return "INSUFFICIENT_RESOURCES";
    case ErrorCode::kPluginFailed:
      return "PLUGIN_FAILED";
    case ErrorCode::kShuttingDown:
      return "SHUTTING_DOWN";
    case ErrorCode::kInternal:
      return "INTERNAL";
    case ErrorCode::kLaunchFailed:
      return "LAUNCH_FAILED";
    case ErrorCode::kPermissionDenied:
      return "PERMISSION_DENIED";
    case ErrorCode::kNodeUnavailable:
      return "NODE_UNAVAILABLE";
    case ErrorCode::kPluginBusy:
      return "PLUGIN_BUSY";
    case ErrorCode::kLocalizationFailed:
      return "LOCALIZATION_FAILED";
    case ErrorCode::kUnauthenticated:
      return "UNAUTHENTICATED";
  }
  return "INTERNAL";
}

}  // namespace ecm::core
