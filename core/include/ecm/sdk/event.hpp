// ECM events (SDK ABI 1.3): what happened on this node, as listeners (built-in and plugin) see it.
// One struct for every kind; the fields a kind does not use stay empty (see each kind below).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ecm::sdk {

// Values are fixed forever; an ABI minor bump may add kinds at the end. A listener ignores kinds
// it does not know.
enum class EventKind : std::uint32_t {
  kEngineStateChanged = 1,  // engine_*, from, to, reason: every status change, Starting included
  kEngineLaunched = 2,      // engine_*, pid: the engine's process was spawned
  kEngineExited = 3,        // engine_*, pid, exit_code or signal, reason: its process ended
  kEngineLogRotated = 4,    // engine_*, message (the stream): a log reached its size and rotated
  kResourceLocalized = 5,   // engine_*, message (the URI), reason (name: progress or outcome)
  kPluginLoaded = 6,        // plugin_*, generation: a plugin was loaded for the first time
  kPluginSwapped = 7,       // plugin_*, generation, from/to (versions): a new generation replaced
  kPluginUnloaded = 8,      // plugin_*, generation, reason
  kPluginRefused = 9,       // plugin_name, reason: a load or reload was refused; the old one serves
  kEcmHealthChanged = 10,   // from, to (Linkis health names), reason
  kEcmStarting = 11,        // message: the ECM loaded its plugins and is about to serve
  kEcmStopping = 12,        // reason: the ECM begins to shut down (engine ends may follow)
};
inline constexpr std::uint32_t kEventKindCount = 12;  // highest value above

inline constexpr std::string_view event_kind_name(EventKind kind) {
  switch (kind) {
    case EventKind::kEngineStateChanged:
      return "engine_state_changed";
    case EventKind::kEngineLaunched:
      return "engine_launched";
    case EventKind::kEngineExited:
      return "engine_exited";
    case EventKind::kEngineLogRotated:
      return "engine_log_rotated";
    case EventKind::kResourceLocalized:
      return "resource_localized";
    case EventKind::kPluginLoaded:
      return "plugin_loaded";
    case EventKind::kPluginSwapped:
      return "plugin_swapped";
    case EventKind::kPluginUnloaded:
      return "plugin_unloaded";
    case EventKind::kPluginRefused:
      return "plugin_refused";
    case EventKind::kEcmHealthChanged:
      return "ecm_health_changed";
    case EventKind::kEcmStarting:
      return "ecm_starting";
    case EventKind::kEcmStopping:
      return "ecm_stopping";
  }
  return "unknown";
}

// Layout rule: fields are only appended, with an ABI minor bump.
struct Event {
  std::uint64_t sequence = 0;     // per ECM run, from 1, without gaps at publication
  std::int64_t timestamp_ms = 0;  // Unix time in milliseconds when published
  EventKind kind = EventKind::kEcmStarting;
  std::string engine_id;         // engine kinds
  std::string user;              // engine kinds
  std::string engine_type;       // engine kinds
  std::string from;              // a status, health or version before the change
  std::string to;                // ... and after it
  std::string reason;            // why, when the ECM knows
  std::int64_t pid = 0;          // kEngineLaunched, kEngineExited
  std::optional<int> exit_code;  // kEngineExited: the process exited with this code
  std::optional<int> signal;     // kEngineExited: the process was ended by this signal
  std::string plugin_name;       // plugin kinds
  std::string plugin_version;    // plugin kinds: the version now serving (or refused)
  std::uint64_t generation = 0;  // plugin kinds: the host's generation number
  std::string message;           // free text (see each kind)
};

}  // namespace ecm::sdk
