// Watches the heartbeats of available engines whose plugin configures a heartbeat timeout. No
// polling: one timer per engine, armed for the moment its silence would reach the next step.
// Silent for one timeout: reported unhealthy (cleared by the next heartbeat). Silent for two:
// reported lost, once, and no longer watched (the caller stops the engine).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>

#include "ecm/core/engine_conn.hpp"

namespace ecm::host {

class EngineHeartbeatMonitor {
 public:
  // The engine's last heartbeat as recorded (nullopt: none yet, or the engine is gone).
  using LastBeat = std::function<std::optional<core::Clock::time_point>(const std::string& id)>;
  // `silent`: how long since the last heartbeat (or since watching began, if none came).
  using Report = std::function<void(const std::string& id, std::chrono::milliseconds silent)>;

  EngineHeartbeatMonitor(boost::asio::io_context& io, LastBeat last_beat, Report unhealthy,
                         Report healthy_again, Report lost);
  ~EngineHeartbeatMonitor();

  // Starts the clock for `engine_id` now (it just became available). A second call is a no-op.
  void watch(const std::string& engine_id, std::chrono::milliseconds timeout);
  void forget(const std::string& engine_id);
  std::size_t watching() const;

 private:
  struct Watch;
  void arm(const std::shared_ptr<Watch>& w, std::chrono::milliseconds after);
  void check(const std::shared_ptr<Watch>& w);

  boost::asio::io_context& io_;
  LastBeat last_beat_;
  Report unhealthy_;
  Report healthy_again_;
  Report lost_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Watch>> watches_;
};

}  // namespace ecm::host
