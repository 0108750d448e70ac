// ECMRegisterService: keeps the RM informed (rm.thrift, ResourceManagerService). Registers at
// start, and again whenever the RM was away or forgot this ECM (backoff 200ms .. report_interval,
// logged once per change of state, not per try); heartbeats every report_interval, and at once
// when an engine's status changes; unregisters on a clean stop.
//
// Engine changes are delivered exactly once: each status change gets seq = ++counter (per
// incarnation: a random id made at every process start) and stays in an outbox until the RM
// acknowledges a sequence at or above it (HeartbeatAck / RegisterAck.acked_seq). A heartbeat
// carries the oldest unacknowledged changes (at most max_changes_per_beat); the RM ignores a
// sequence it already has, so a lost reply only means a re-send.
//
// Threads: one of its own. The RM client blocks on network I/O, so it never runs on the event
// loop; the engine table's observer only appends to the outbox under a short lock and wakes it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "ResourceManagerService.h"
#include "ecm/core/engine_conn.hpp"
#include "services/engine_conn_list_service.hpp"

namespace ecm::host {

struct RegisterSettings {
  std::string rm_host;
  std::uint16_t rm_port = 0;
  std::chrono::milliseconds report_interval{std::chrono::seconds(10)};
  std::map<std::string, std::string> labels;
  std::string ecm_id;
  std::string advertise_address;  // HOST:PORT where the RM reaches this ECM
  std::string version;
  std::size_t max_changes_per_beat = 500;
  // The outbox is bounded so an RM away for days cannot exhaust memory: past this many
  // unacknowledged changes the oldest are dropped (an error log and dropped_changes() say so);
  // the RM then misses those transitions but still gets the engines' current view in Metrics.
  std::size_t max_outbox = 100'000;
  std::chrono::milliseconds rpc_timeout{std::chrono::seconds(2)};
  std::chrono::milliseconds min_backoff{200};
};

class ECMRegisterService {
 public:
  using HealthProvider = std::function<ecm::thrift::HealthReport()>;
  using MetricsProvider = std::function<ecm::thrift::Metrics()>;

  // Adds its observer to `engines` at once, so changes made before start() are reported too.
  ECMRegisterService(RegisterSettings settings, EngineConnListService& engines,
                     HealthProvider health, MetricsProvider metrics);
  ~ECMRegisterService();
  ECMRegisterService(const ECMRegisterService&) = delete;
  ECMRegisterService& operator=(const ECMRegisterService&) = delete;

  // The ECM id kept in `file` (made and written once if the file is missing). Throws
  // std::runtime_error if it can be neither read nor written.
  static std::string load_or_create_ecm_id(const std::filesystem::path& file);

  // `advertise_address` may be set here when only the bound port tells it.
  void start(std::optional<std::string> advertise_address = std::nullopt);
  // Stops the thread; if registered, sends a last heartbeat and unregisters (short timeouts).
  // Idempotent.
  void stop();

  const std::string& incarnation_id() const { return incarnation_; }
  std::uint64_t dropped_changes() const;

 private:
  struct Change {
    std::int64_t seq;
    core::EngineStatus from;
    core::EngineConn record;
    std::int64_t at_ms;
  };
  class Connection;

  void on_status_change(core::EngineStatus from, const core::EngineConn& record);
  void run();
  // Each returns false when the RM could not be reached (the connection is dropped then).
  bool try_register();
  // Sets register_again when the RM asked for it.
  bool send_heartbeat(bool& register_again);
  void try_unregister();
  void drop_acked(std::int64_t acked_seq);  // under mu_
  ecm::thrift::EcmInstance instance() const;
  void set_reachable(bool reachable, const std::string& why);

  RegisterSettings s_;
  HealthProvider health_;
  MetricsProvider metrics_;
  const std::string incarnation_;
  std::unique_ptr<Connection> conn_;  // only the service thread (or stop() after it) uses it

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Change> outbox_;  // oldest first, seq increasing
  std::int64_t next_seq_ = 0;
  std::int64_t acked_seq_ = 0;
  std::uint64_t dropped_ = 0;
  bool wake_ = false;
  bool stopping_ = false;
  std::chrono::milliseconds interval_;  // the RM may ask for its own

  // The service thread's own state.
  bool registered_ = false;
  std::optional<bool> reachable_;  // logged on change only
  std::thread thread_;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace ecm::host
