#include "ecm/core/engine_status.hpp"

#include <array>
#include <utility>

#include <boost/algorithm/string/predicate.hpp>

namespace ecm::core {
namespace {

constexpr std::array<std::pair<EngineStatus, std::string_view>, 9> kNames{{
    {EngineStatus::kStarting, "Starting"},
    {EngineStatus::kRunning, "Running"},
    {EngineStatus::kShuttingDown, "ShuttingDown"},
    {EngineStatus::kSuccess, "Success"},
    {EngineStatus::kFailed, "Failed"},
    {EngineStatus::kUnlock, "Unlock"},
    {EngineStatus::kLocked, "Locked"},
    {EngineStatus::kIdle, "Idle"},
    {EngineStatus::kBusy, "Busy"},
}};

}  // namespace

std::string_view to_string(EngineStatus s) {
  for (const auto& [status, name] : kNames) {
    if (status == s) return name;
  }
  return "Unknown";
}

std::optional<EngineStatus> engine_status_from_string(std::string_view text) {
  for (const auto& [status, name] : kNames) {
    if (boost::algorithm::iequals(name, text)) return status;
  }
  return std::nullopt;
}

bool is_ended(EngineStatus s) {
  return s == EngineStatus::kSuccess || s == EngineStatus::kFailed;
}

bool is_available(EngineStatus s) {
  using S = EngineStatus;
  return s == S::kUnlock || s == S::kLocked || s == S::kIdle || s == S::kBusy || s == S::kRunning;
}

bool is_completed(EngineStatus s) {
  return s == EngineStatus::kShuttingDown || is_ended(s);
}

bool can_transition(EngineStatus from, EngineStatus to) {
  using S = EngineStatus;
  if (from == to || is_ended(from) || to == S::kStarting) return false;
  // Starting and every available state may go to any available state (the engine reports them),
  // to ShuttingDown (a stop), or end.
  if (from == S::kStarting || is_available(from)) return true;
  // ShuttingDown only ends.
  return is_ended(to);
}

}  // namespace ecm::core
