#include "ctl_status.hpp"

#include <optional>

#include "ctl_errors.hpp"

namespace ecm::ctl {
namespace {

namespace api = ::ecm::thrift;
using core::EngineStatus;

std::optional<EngineStatus> to_core(api::EngineStatus::type s) {
  switch (s) {
    case api::EngineStatus::STARTING:
      return EngineStatus::kStarting;
    case api::EngineStatus::RUNNING:
      return EngineStatus::kRunning;
    case api::EngineStatus::SHUTTING_DOWN:
      return EngineStatus::kShuttingDown;
    case api::EngineStatus::SUCCESS:
      return EngineStatus::kSuccess;
    case api::EngineStatus::FAILED:
      return EngineStatus::kFailed;
  }
  return std::nullopt;
}

api::EngineStatus::type to_thrift(EngineStatus s) {
  switch (s) {
    case EngineStatus::kStarting:
      return api::EngineStatus::STARTING;
    case EngineStatus::kRunning:
      return api::EngineStatus::RUNNING;
    case EngineStatus::kShuttingDown:
      return api::EngineStatus::SHUTTING_DOWN;
    case EngineStatus::kSuccess:
      return api::EngineStatus::SUCCESS;
    case EngineStatus::kFailed:
      return api::EngineStatus::FAILED;
  }
  return api::EngineStatus::FAILED;  // unreachable: the switch covers every value
}

}  // namespace

std::string status_name(api::EngineStatus::type status) {
  if (auto s = to_core(status)) return std::string(core::to_string(*s));
  return "Unknown(" + std::to_string(static_cast<int>(status)) + ")";
}

api::EngineStatus::type parse_status(std::string_view text) {
  if (auto s = core::engine_status_from_string(text)) return to_thrift(*s);
  throw UsageError("unknown status '" + std::string(text) +
                   "' (expected Starting, Running, ShuttingDown, Success or Failed)");
}

bool is_ended(api::EngineStatus::type status) {
  auto s = to_core(status);
  return s && core::is_ended(*s);
}

}  // namespace ecm::ctl
