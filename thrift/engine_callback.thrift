// The service an engine calls back (EngineConn -> ECM). Its address is in the engine's
// ECM_CALLBACK_ADDRESS, its id in ECM_ENGINE_ID and its secret in ECM_ENGINE_TOKEN: an engine can
// only speak for itself. Evolution rule as ecm.thrift: add optional fields and methods only.

include "ecm.thrift"

namespace cpp ecm.thrift

struct EngineReport {
  1: optional string engine_id,
  2: optional string token,
  // The real engine's pid when a wrapper started it; must be in the engine's process group.
  3: optional i32 pid,
  // An available status: UNLOCK, LOCKED, IDLE, BUSY or RUNNING. The first one ends STARTING.
  4: optional ecm.EngineStatus status,
  // host:port the engine serves on.
  5: optional string address,
  6: optional string message,
}

service EngineConnCallbackService {
  void report(1: EngineReport report) throws (1: ecm.EcmError error),
  void heartbeat(1: string engine_id, 2: string token) throws (1: ecm.EcmError error),
}
