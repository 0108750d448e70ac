#include "ecm/core/engine_status.hpp"

#include <array>
#include <utility>

namespace ecm::core {
namespace {

constexpr std::array<std::pair<EngineStatus, std::string_view>, 5> kNames{{
    {EngineStatus::kStarting, "Starting"},
    {EngineStatus::kRunning, "Running"},
    {EngineStatus::kShuttingDown, "ShuttingDown"},
    {EngineStatus::kSuccess, "Success"},
    {EngineStatus::kFailed, "Failed"},
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
    if (name.size() != text.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < name.size() && same; ++i) {
      same = (name[i] | 0x20) == (text[i] | 0x20);
    }
    if (same) return status;
  }
  return std::nullopt;
}

bool is_ended(EngineStatus s) {
  return s == EngineStatus::kSuccess || s == EngineStatus::kFailed;
}

bool can_transition(EngineStatus from, EngineStatus to) {
  using S = EngineStatus;
  switch (from) {
    case S::kStarting:
      return to == S::kRunning || to == S::kShuttingDown || to == S::kFailed || to == S::kSuccess;
    case S::kRunning:
      return to == S::kShuttingDown || to == S::kSuccess || to == S::kFailed;
    case S::kShuttingDown:
      return to == S::kSuccess || to == S::kFailed;
    case S::kSuccess:
    case S::kFailed:
      return false;
  }
  return false;
}

}  // namespace ecm::core
