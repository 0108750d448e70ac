// The record of one engine: what was asked, where it lives, what became of it.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ecm/core/engine_status.hpp"
#include "ecm/core/resources.hpp"
#include "ecm/sdk/event.hpp"
#include "ecm/sdk/readiness.hpp"

namespace ecm::core {

using Clock = std::chrono::system_clock;

// What a restarted ECM needs to take a live engine back: how to recognise its process (a pid alone
// may have been recycled), how to stop it, what it waits for, and what it holds.
struct Supervision {
  std::uint64_t start_time = 0;  // /proc/<pid>/stat field 22 of the engine's process at spawn
  std::string boot_id;           // the kernel's boot id then: after a reboot no pid is the engine
  int stop_signal = 15;
  std::chrono::milliseconds stop_grace{0};
  std::chrono::milliseconds launch_timeout{0};
  std::chrono::milliseconds heartbeat_timeout{0};  // 0: heartbeats not required
  std::optional<sdk::ReadinessRule> readiness;     // what Starting waits for (unset: alive)
  std::vector<std::string> cache_entries;          // the cache entries its resource links use
};

struct EngineConn {
  std::string id;
  std::string ticket_id;
  std::string user;
  std::string engine_type;
  std::string engine_version;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> properties;
  EngineStatus status = EngineStatus::kStarting;
  int pid = 0;  // 0 until spawned
  std::string work_dir;
  std::string log_dir;
  Clock::time_point created_at{};
  std::optional<Clock::time_point> started_at;
  std::optional<Clock::time_point> ended_at;
  std::optional<int> exit_code;
  std::optional<int> exit_signal;
  std::string failure_reason;
  std::string stop_reason;
  std::string plugin_name;
  std::string plugin_version;
  Resource resources;  // admitted amount: memory, cores, one instance
  // The engine's secret for its callbacks (ECM_ENGINE_TOKEN); never shown to other callers.
  std::string token;
  // What the engine reported through its callback.
  std::string service_address;
  std::string last_message;
  int reported_pid = 0;
  std::optional<Clock::time_point> last_heartbeat;
  // The OS user the process runs as, when the ECM switched to the requested user (it runs as
  // root); unset when it runs as the ECM's own user.
  std::optional<std::uint32_t> run_as_uid;
  // Ports assigned to the engine, by the name its plugin asked for.
  std::map<std::string, int> ports;
  // Set while the engine is overdue with its heartbeat (its plugin requires them); cleared by the
  // next heartbeat. Empty: healthy as far as the ECM knows.
  std::string unhealthy_reason;
  Supervision supervision;
};

// The stop reason of an engine a restarted ECM found ended (or never started): its launch was
// the previous run's, so it says nothing of how this node launches now.
inline constexpr std::string_view kStopReasonEcmRestart = "ECM restart";

// An event of `kind` about engine `e`, its id, user and engine type filled in.
sdk::Event engine_event(sdk::EventKind kind, const EngineConn& e);

// A fresh random engine id: "ec-" and 24 hex digits.
std::string new_engine_id();
// A fresh random secret: 32 hex digits from the system's random source.
std::string new_engine_token();

}  // namespace ecm::core
