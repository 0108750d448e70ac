#include "ctl_status.hpp"

#include <optional>

#include "ctl_errors.hpp"
#include "thrift/thrift_convert.hpp"

namespace ecm::ctl {
namespace api = ::ecm::thrift;
using host::to_core;
using host::to_thrift;

std::string status_name(api::EngineStatus::type status) {
  if (auto s = to_core(status)) return std::string(core::to_string(*s));
  return "Unknown(" + std::to_string(static_cast<int>(status)) + ")";
}

api::EngineStatus::type parse_status(std::string_view text) {
  if (auto s = core::engine_status_from_string(text)) return to_thrift(*s);
  throw UsageError("unknown status '" + std::string(text) +
                   "' (expected Starting, Unlock, Locked, Idle, Busy, Running, ShuttingDown, "
                   "Success or Failed)");
}

bool is_ended(api::EngineStatus::type status) {
  auto s = to_core(status);
  return s && core::is_ended(*s);
}

}  // namespace ecm::ctl
