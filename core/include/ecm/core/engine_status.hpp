// The engine's states and the one table of legal transitions between them.
#pragma once

#include <optional>
#include <string_view>

namespace ecm::core {

// As the RM knows them (Linkis's NodeStatus). Unlock, Locked, Idle, Busy and Running are
// "available"; ShuttingDown, Failed and Success are "completed".
enum class EngineStatus {
  kStarting,
  kRunning,
  kShuttingDown,
  kSuccess,
  kFailed,
  kUnlock,
  kLocked,
  kIdle,
  kBusy,
};

std::string_view to_string(EngineStatus s);
std::optional<EngineStatus> engine_status_from_string(std::string_view text);

bool is_available(EngineStatus s);
bool is_completed(EngineStatus s);

// Ended for good: the process is gone and its resources released.
bool is_ended(EngineStatus s);

// The transition table. Anything not listed is refused by EngineConnListService.
bool can_transition(EngineStatus from, EngineStatus to);

}  // namespace ecm::core
