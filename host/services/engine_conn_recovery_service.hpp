// EngineConnRecoveryService: what a starting ECM does with the engines an earlier run left. Every
// stored record goes back into the table; each engine that was live is re-adopted when its process
// is still there (same boot, same pid, same /proc start time) or marked ended with the reason
// when it is not. Runs once, before the ECM serves and before its event loop runs, so nothing else
// sees the table half-restored and no exit can be handled before its engine is taken back.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "localization/resource_cache.hpp"
#include "services/engine_conn_launch_service.hpp"
#include "services/engine_conn_list_service.hpp"
#include "store/engine_state_store.hpp"

namespace ecm::host {

struct RecoveryReport {
  std::size_t records = 0;                 // every record read back, ended ones included
  std::vector<std::string> adopted;        // live engines taken back
  std::vector<std::string> ended;          // live when the ECM went away, gone now
  std::vector<std::string> missing_cache;  // cache entries an adopted engine held, not found
};

class EngineConnRecoveryService {
 public:
  EngineConnRecoveryService(EngineStateStore& store, EngineConnListService& engines,
                            EngineConnLaunchService& launch, ResourceCache& cache,
                            std::string boot_id);

  // Throws what the store throws (a record it cannot read); the table is then partly filled and
  // the daemon does not start.
  RecoveryReport recover();

 private:
  // Why a live record's process is not (or cannot be proved to be) the engine; empty when it is.
  std::string why_not_adoptable(core::EngineConn& record) const;
  void mark_ended(const core::EngineConn& record, const std::string& reason);

  EngineStateStore& store_;
  EngineConnListService& engines_;
  EngineConnLaunchService& launch_;
  ResourceCache& cache_;
  std::string boot_id_;
};

}  // namespace ecm::host
