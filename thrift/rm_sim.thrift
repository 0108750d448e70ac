// rm-sim's admin service (tools/rm-sim): what `rm-sim ecms`, `rm-sim changes` and
// `rm-sim launch` ask the running `rm-sim serve`. Served on the same port as
// ResourceManagerService through a TMultiplexedProcessor under the name "RmSimAdmin" (plain,
// unmultiplexed calls go to ResourceManagerService, so ECMs need nothing special).

include "ecm.thrift"
include "rm.thrift"

namespace cpp ecm.rmsim

// One ECM as the RM knows it.
struct SimEcm {
  1: optional string ecm_id,
  2: optional string address,
  3: optional string incarnation_id,
  // "alive", "lost" (no heartbeat for 2 x its interval), "unregistered".
  4: optional string state,
  5: optional i64 last_heartbeat_ms,
  6: optional i64 report_interval_ms,
  7: optional ecm.HealthReport health,
  8: optional ecm.Metrics metrics,
  9: optional i64 acked_seq,
  // Each engine's latest status, as the changes received describe it.
  10: optional map<string, ecm.EngineStatus> engines,
  11: optional map<string, string> labels,
  12: optional i64 heartbeats,
}

// One engine change as the RM accepted (and journaled) it.
struct SimChange {
  1: optional string ecm_id,
  2: optional string incarnation_id,
  3: optional i64 seq,
  4: optional string engine_id,
  5: optional ecm.EngineStatus from_status,
  6: optional ecm.EngineStatus to_status,
  7: optional i64 at_ms,
}

// Where one launch went (or why it went nowhere).
struct Placement {
  1: optional string ecm_id,
  2: optional string address,
  3: optional ecm.EngineConn engine,
  4: optional string error,
}

service RmSimAdmin {
  list<SimEcm> listEcms(),
  list<SimChange> listChanges(),
  // `count` launches of `request`, each on the live ECM with the most left resources.
  list<Placement> launch(1: ecm.LaunchRequest request, 2: i32 count) throws (1: ecm.EcmError error),
}
