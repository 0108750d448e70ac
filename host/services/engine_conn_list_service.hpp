// EngineConnListService: the one owner of the engine table. Every change to an engine record goes
// through here, under one lock, and status changes obey core::can_transition. With a state store,
// every change is written to it before it enters the table: whatever a reader sees, the store has.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ecm/core/engine_conn.hpp"
#include "ecm/core/linux_process_launch.hpp"
#include "store/engine_state_store.hpp"

namespace ecm::host {

struct EngineConnFilter {
  std::optional<std::string> user;
  std::optional<std::string> engine_type;
  std::optional<core::EngineStatus> status;
};

// What the host keeps about a live engine besides its record: how to stop it, and a reference to
// the plugin generation that built it (so that generation stays loaded while the engine runs).
struct EngineRuntime {
  std::shared_ptr<const void> plugin_pin;
  int stop_signal = 15;
  std::chrono::milliseconds stop_grace{0};
  std::chrono::milliseconds launch_timeout{0};
  std::chrono::milliseconds heartbeat_timeout{0};  // 0: heartbeats not required
  // Set when a restarted ECM re-adopted the engine: heartbeats are not expected from before.
  std::optional<std::chrono::system_clock::time_point> adopted_at;
};

class EngineConnListService {
 public:
  // Without a store the table lives in memory only (unit tests). The store must outlive this.
  explicit EngineConnListService(EngineStateStore* store = nullptr) : store_(store) {}
  // Attaches the store once it can be opened (the daemon's state dir exists only at start), before
  // any record is added.
  void set_store(EngineStateStore* store);

  // Called for every new engine (from == Starting, record Starting) and every status change,
  // after the store has it and under the table's lock, so observers see changes in the order
  // they were applied. An observer must be quick and must not call back into this service.
  using StatusObserver =
      std::function<void(core::EngineStatus from, const core::EngineConn& record)>;
  void add_status_observer(StatusObserver observer);

  // Each mutator below writes the new record to the store first; if that write throws, the table
  // (and the ticket index) is left as it was and the exception propagates.

  // Inserts `record` unless its ticket id is already known; returns the record in the table and
  // whether it is the new one. Atomic: two launches with one ticket make one engine.
  std::pair<core::EngineConn, bool> add_unless_ticket_known(const core::EngineConn& record);

  // Puts a record read back from the store into the table as it is: no write, no observer (it is
  // not a change). For the recovery at start, before anything else uses the table. A known id
  // is a logic error.
  void restore(const core::EngineConn& record);

  std::optional<core::EngineConn> get(const std::string& id) const;
  std::optional<core::EngineConn> find_by_ticket(const std::string& ticket_id) const;
  std::vector<core::EngineConn> list(const EngineConnFilter& filter) const;
  // The records as they are now, shared: no record is copied (a list of thousands of engines holds
  // the table's lock for microseconds). A record is never changed in place: a change replaces it.
  std::vector<std::shared_ptr<const core::EngineConn>> snapshot(
      const EngineConnFilter& filter) const;
  std::optional<EngineRuntime> runtime(const std::string& id) const;
  std::size_t size() const;
  // Live engines by the plugin generation they hold (EngineRuntime::plugin_pin).
  std::map<const void*, std::size_t> count_by_plugin_pin() const;

  // Moves the engine to `to` and applies `mutate` to the record, atomically. An illegal transition
  // is refused (logged, nothing applied) and returns nullopt; else the updated record.
  std::optional<core::EngineConn> transition(
      const std::string& id, core::EngineStatus to,
      const std::function<void(core::EngineConn&)>& mutate = {});
  // Changes fields other than the status (pid, start time...). Returns the updated record.
  std::optional<core::EngineConn> update(const std::string& id,
                                         const std::function<void(core::EngineConn&)>& mutate);
  void set_runtime(const std::string& id, EngineRuntime runtime);
  // Records the end of the engine's process (core::record_exit) and drops its runtime.
  // Returns nullopt when the engine is unknown or already ended.
  std::optional<core::EngineConn> finish(const std::string& id, const core::ExitStatus& exit);
  // Forgets an ended engine (its retention is over). Refuses (false) an unknown or live engine,
  // so nothing can drop a record that still has a process behind it.
  bool remove_ended(const std::string& id);

 private:
  struct Entry {
    std::shared_ptr<const core::EngineConn> record;  // replaced, never changed, by each change
    std::optional<EngineRuntime> runtime;            // dropped when the engine ends
  };
  // Under mu_: writes `record` to the store, if any (throws on failure).
  void persist(const core::EngineConn& record);
  void notify(core::EngineStatus from, const core::EngineConn& record) const;

  std::vector<StatusObserver> observers_;  // set up before the daemon serves
  mutable std::mutex mu_;
  EngineStateStore* store_ = nullptr;
  std::map<std::string, Entry> engines_;
  std::map<std::string, std::string> by_ticket_;
};

}  // namespace ecm::host
