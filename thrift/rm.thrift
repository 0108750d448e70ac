// The service a resource manager implements and the ECM calls (ECM -> RM): registration, periodic
// heartbeats carrying health, metrics and engine changes, and unregistration. The project's own
// reference RM, rm-sim, implements it. Evolution rule as ecm.thrift: add optional fields and
// methods only, never renumber.
//
// Engine changes are delivered exactly once: each carries a sequence number, increasing per ECM
// incarnation (incarnation_id); the ECM re-sends every change above the RM's last acknowledged
// sequence until acknowledged, and the RM ignores a change at or below the sequence it acknowledged.

include "ecm.thrift"

namespace cpp ecm.thrift

struct EcmInstance {
  // Stable across restarts of the same ECM (kept in its state dir).
  1: optional string ecm_id,
  // Where the ECM's EngineConnManagerService listens (host:port).
  2: optional string address,
  3: optional map<string, string> labels,
  4: optional ecm.NodeResources resources,
  // New at every start of the ECM process; sequence numbers restart with it.
  5: optional string incarnation_id,
  6: optional string version,
  // The ECM's heartbeat period: the RM counts it lost after two periods without one.
  7: optional i64 report_interval_ms,
}

struct EngineChange {
  1: optional i64 seq,
  // The engine as it was right after the change.
  2: optional ecm.EngineConn engine,
  3: optional ecm.EngineStatus from_status,
  4: optional i64 at_ms,
}

struct EcmHeartbeat {
  1: optional string ecm_id,
  2: optional string incarnation_id,
  3: optional ecm.HealthReport health,
  4: optional ecm.Metrics metrics,
  // Every change not yet acknowledged, oldest first (bounded; the rest follow in the next beats).
  5: optional list<EngineChange> changes,
}

struct HeartbeatAck {
  // Every change of this incarnation up to this sequence has been received.
  1: optional i64 acked_seq,
  // The RM does not know this ECM (it restarted and lost it): register again.
  2: optional bool register_again,
}

struct RegisterAck {
  // The last sequence of this incarnation the RM has (0: none): re-send what follows.
  1: optional i64 acked_seq,
  // Heartbeat period the RM asks for (0: the ECM's own).
  2: optional i64 report_interval_ms,
}

service ResourceManagerService {
  RegisterAck registerECM(1: EcmInstance instance) throws (1: ecm.EcmError error),
  HeartbeatAck heartbeat(1: EcmHeartbeat beat) throws (1: ecm.EcmError error),
  void unregisterECM(1: string ecm_id, 2: string incarnation_id) throws (1: ecm.EcmError error),
}
