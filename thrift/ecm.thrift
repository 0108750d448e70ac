// The ECM's own service: the RM (and administrators through ecmctl) call it.
// Evolution rule: add optional fields and new methods only; never renumber or reuse an id.

namespace cpp ecm.thrift

enum ErrorCode {
  INVALID_REQUEST = 1,
  NOT_FOUND = 2,
  UNKNOWN_ENGINE_TYPE = 3,
  INSUFFICIENT_RESOURCES = 4,
  PLUGIN_FAILED = 5,
  SHUTTING_DOWN = 6,
  INTERNAL = 7,
  LAUNCH_FAILED = 8,
  // A caller speaking for an engine it is not (wrong engine token), a user the [users] policy
  // refuses, or a getEngineLog caller who is not the engine's user.
  PERMISSION_DENIED = 9,
  // The node takes no new engines now: its health (overload, unhealthy, or as the RM set it).
  NODE_UNAVAILABLE = 10,
  // unloadPlugin without force while engines the plugin launched still run.
  PLUGIN_BUSY = 11,
  // A resource of the launch could not be fetched, verified or unpacked (the message names it).
  LOCALIZATION_FAILED = 12,
  // The ECM requires a token ([server] token_file) and this connection has not given the right
  // one through authenticate(): the call did nothing.
  UNAUTHENTICATED = 13,
}

// The one error every method throws: a code the caller can act on and a human message.
exception EcmError {
  1: optional ErrorCode code,
  2: optional string message,
}

enum EngineStatus {
  STARTING = 1,
  RUNNING = 2,
  SHUTTING_DOWN = 3,
  SUCCESS = 4,
  FAILED = 5,
  // The RM's engine states (Linkis NodeStatus), reported by the engine through its callback.
  UNLOCK = 6,
  LOCKED = 7,
  IDLE = 8,
  BUSY = 9,
}

// A resource the engine needs, fetched into the node's cache and linked into its work dir.
struct ResourceSpec {
  // "file:///srv/jars/a.jar", "https://repo/x.tar.gz", "bml://RESOURCE_ID/VERSION"
  1: optional string uri,
  // Expected SHA-256 (64 hex digits); required for remote schemes unless the ECM allows unverified.
  2: optional string sha256,
  // Its name in the work dir ([A-Za-z0-9._-]+); unset: the last segment of the URI's path.
  3: optional string name,
  // A zip, tar or tar.gz unpacked into a directory of that name.
  4: optional bool unpack,
  // "private" (the default: cached for this user only) or "public" (shared by every user).
  5: optional string visibility,
}

struct LaunchRequest {
  // The RM's id for this launch: the same ticket twice returns the engine already made.
  1: optional string ticket_id,
  2: optional string user,
  3: optional string engine_type,
  // Empty: any version the plugin serves.
  4: optional string engine_version,
  5: optional map<string, string> labels,
  // Engine-type specific settings, read by the launcher plugin (the shell plugin's `command`).
  6: optional map<string, string> properties,
  7: optional map<string, string> env,
  // Resources the engine is admitted with; 0 or unset: the plugin's default.
  8: optional i64 memory_bytes,
  9: optional i32 cores,
  // Not ready (see the plugin's readiness rule) after this long: stopped and FAILED.
  // Unset or 0: the plugin's timeout, else the ECM's [engines] launch_timeout.
  10: optional i64 launch_timeout_ms,
  // Localized before the engine starts (it stays STARTING meanwhile); LOCALIZATION_FAILED names
  // the one that could not be.
  11: optional list<ResourceSpec> resources,
}

struct EngineConn {
  1: optional string id,
  2: optional string ticket_id,
  3: optional string user,
  4: optional string engine_type,
  5: optional string engine_version,
  6: optional map<string, string> labels,
  7: optional map<string, string> properties,
  8: optional EngineStatus status,
  9: optional i32 pid,
  10: optional string work_dir,
  11: optional string log_dir,
  12: optional i64 created_at_ms,
  13: optional i64 started_at_ms,
  14: optional i64 ended_at_ms,
  // Set when the process exited normally.
  15: optional i32 exit_code,
  // Set when the process was ended by a signal.
  16: optional i32 exit_signal,
  17: optional string failure_reason,
  18: optional string plugin_name,
  19: optional string plugin_version,
  20: optional string stop_reason,
  21: optional i64 memory_bytes,
  22: optional i32 cores,
  // What the engine reported through its callback.
  23: optional string service_address,
  24: optional string last_message,
  25: optional i32 reported_pid,
  26: optional i64 last_heartbeat_ms,
  // Ports assigned to the engine, by the name its plugin asked for (ECM_PORT_<NAME>).
  27: optional map<string, i32> ports,
  // The OS uid the engine runs as, when the ECM switched to the requested user.
  28: optional i32 run_as_uid,
  // Set while the engine is overdue with a heartbeat its plugin requires ("no heartbeat for 30s").
  29: optional string unhealthy_reason,
}

// Every field set narrows the list; none set lists every engine.
struct EngineConnFilter {
  1: optional string user,
  2: optional string engine_type,
  3: optional EngineStatus status,
}

// Names one engine (engine_id), or every engine of a user and/or engine type (stopEngineConns).
struct StopRequest {
  1: optional string engine_id,
  // Skip the grace period: SIGKILL the engine's process group at once.
  2: optional bool force,
  3: optional string user,
  4: optional string engine_type,
}

struct StopResult {
  1: optional EngineConn engine,
  // True when the engine had already ended: nothing was signalled.
  2: optional bool already_ended,
}

// One resource dimension as Linkis's load-instance resource counts it.
struct ResourceAmount {
  1: optional i64 memory_bytes,
  2: optional i32 cores,
  3: optional i32 instances,
}

// The file system holding the work root, as the clean-up service last measured it (at start and
// at every pass), and what the clean-up removed since the ECM started.
struct DiskUsage {
  1: optional string path,
  2: optional i64 total_bytes,
  // Available to unprivileged users.
  3: optional i64 free_bytes,
  // As df counts it: used / (used + free).
  4: optional double used_percent,
  5: optional double high_watermark_percent,
  // used_percent > high_watermark_percent: ended engines are being removed before their
  // retention is over, oldest first.
  6: optional bool over_watermark,
  7: optional i64 removed_by_retention,
  8: optional i64 removed_by_watermark,
  9: optional double low_watermark_percent,
  // When the last clean-up pass ended; unset before the first.
  10: optional i64 last_pass_ms,
}

// max: the node's capacity; protected: kept back; locked: admitted engines not yet available;
// used: available engines; left = max - protected - locked - used.
struct NodeResources {
  1: optional ResourceAmount max,
  2: optional ResourceAmount protected_,
  3: optional ResourceAmount locked,
  4: optional ResourceAmount used,
  5: optional ResourceAmount left,
  // Unset when the ECM reports no disk; its sizes are unset when the file system cannot be read.
  6: optional DiskUsage disk,
}

// One read of an engine's log (getEngineLog). The stream is "stdout" (unset or empty),
// "stderr", or a relative path under the engine's log dir; it is read across its rotated files
// (NAME.k .. NAME.1, NAME: oldest first) as one sequence of 1-based lines.
struct LogRequest {
  1: optional string engine_id,
  2: optional string stream,
  // Forward paging: the first line to look at (0: 1) and at most page_size lines (0: the
  // ECM's bound, 5,000 by default; more than the bound is cut to it and says truncated).
  3: optional i64 from_line,
  4: optional i64 page_size,
  // > 0: the last `tail` matching records instead (not with from_line).
  5: optional i64 tail,
  // A record is kept when ANY include word occurs in it (none given: every record) and no
  // exclude word does. Plain, case-sensitive substrings. ("include" is a Thrift keyword.)
  6: optional list<string> include_words,
  7: optional list<string> exclude_words,
  // ECMAScript regex: a line matching it starts a record, the lines after it that do not match
  // belong to it. Unset: every line is a record.
  8: optional string record_pattern,
  // The user asking, as the RM vouches for them: when set, the log is returned only if the engine
  // runs for this user (else PERMISSION_DENIED, nothing read). Set but empty: INVALID_REQUEST.
  9: optional string caller,
}

struct LogPage {
  1: optional list<string> lines,
  // The line number of lines[0] (the line the read started at when nothing matched).
  2: optional i64 first_line,
  // The from_line of the next page; 0: the end of the stream was reached.
  3: optional i64 next_from_line,
  // A line or record was cut, or the request asked for more lines than the bound.
  4: optional bool truncated,
  // When the end was reached: the number of lines in the stream (a follower asks again from
  // end_line + 1); 0 otherwise.
  5: optional i64 end_line,
}

// The ECM's own state (ECMHealthReport's status).
enum EcmStatus {
  STARTING = 1,
  RUNNING = 2,
  SHUTTING_DOWN = 3,
}

// Node health as Linkis names it (NodeHealthy). STOCK_AVAILABLE: serving its engines but taking no
// new ones (overload); STOCK_UNAVAILABLE: taking none and its engines should be moved.
enum NodeHealth {
  HEALTHY = 1,
  WARN = 2,
  UNHEALTHY = 3,
  STOCK_AVAILABLE = 4,
  STOCK_UNAVAILABLE = 5,
}

// ECMHealthReport + NodeHealthReport: what the ECM says of itself and of its node.
struct HealthReport {
  1: optional EcmStatus status,
  2: optional NodeHealth health,
  // Why the health is not HEALTHY, one line per cause ("memory available 3% < 5%").
  3: optional list<string> reasons,
  // The health was set by the RM (setHealth) and is kept until the RM clears it.
  4: optional bool set_by_rm,
  5: optional i64 memory_total_bytes,
  6: optional i64 memory_available_bytes,
  // Busy share of all CPUs between the last two samples, 0..100.
  7: optional double cpu_busy_percent,
  8: optional double load1,
  9: optional DiskUsage work_disk,
  // Launches that failed one after the other, up to now (0 after any success).
  10: optional i32 launch_failures_in_a_row,
  11: optional i64 plugin_failures,
  12: optional i64 reported_at_ms,
  // The ECM's own judgement, also while the RM's health is kept (set_by_rm).
  13: optional NodeHealth assessed_health,
}

struct SetHealthRequest {
  // The health to keep; unset with clear = true gives the health back to the ECM's own judgement.
  1: optional NodeHealth health,
  2: optional string reason,
  3: optional bool clear,
}

// One histogram bucket: observations <= le_ms (cumulative, as Prometheus counts).
struct HistogramBucket {
  1: optional double le_ms,
  2: optional i64 count,
}

// ECMMetrics: counters since the ECM started, and gauges as of now.
struct Metrics {
  1: optional NodeResources resources,
  // Engines in the table by status name ("Running") and by engine type.
  2: optional map<string, i32> engines_by_status,
  3: optional map<string, i32> engines_by_type,
  4: optional i64 launches_started,
  // Reached an available state.
  5: optional i64 launches_succeeded,
  // Failed before becoming available (timeout included).
  6: optional i64 launches_failed,
  7: optional i64 launches_timed_out,
  // Engines stopped, by stop reason ("request", "launch timeout", "heartbeat lost", "ECM shutdown").
  8: optional map<string, i64> stops_by_reason,
  // From the launch request to the process being spawned; the last bucket is +Inf.
  9: optional list<HistogramBucket> launch_latency_buckets,
  10: optional double launch_latency_sum_ms,
  11: optional i64 launch_latency_count,
  12: optional i64 plugin_calls,
  13: optional i64 plugin_failures,
  14: optional i64 uptime_ms,
  // ECM events published, and events a listener lost because its queue was full.
  15: optional i64 events_published,
  16: optional i64 event_bus_drops,
}

// One generation of a loaded plugin: the serving one, or an older one engines still hold.
struct PluginGeneration {
  1: optional i64 generation,
  2: optional string version,
  // The SDK ABI the plugin was built against ("1.3").
  3: optional string abi,
  4: optional string sha256,
  5: optional i64 loaded_at_ms,
  // New launches and events go to the serving generation.
  6: optional bool serving,
  // Live engines launched by this generation (they keep it loaded until they end).
  7: optional i32 engines,
}

struct PluginInfo {
  1: optional string name,
  // "launcher", "hook", "listener"
  2: optional list<string> kinds,
  3: optional string engine_type,
  // The file the serving generation was loaded from.
  4: optional string file,
  // False: unloaded; the generations listed are still held by engines.
  5: optional bool loaded,
  // The serving generation first, then older ones, newest first.
  6: optional list<PluginGeneration> generations,
}

struct UnloadPluginRequest {
  1: optional string name,
  // Unload although engines of the plugin run: no new launches at once, the library leaves when
  // the last of them ends.
  2: optional bool force,
}

// One entry of the node's resource cache.
struct CacheEntry {
  1: optional string sha256,
  2: optional bool unpacked,
  // Empty: public; else the user a private entry belongs to.
  3: optional string owner,
  4: optional i64 bytes,
  5: optional i64 last_used_ms,
  // Engines using it now (an entry in use is never evicted).
  6: optional i32 in_use,
  7: optional string path,
}

struct CacheReport {
  1: optional list<CacheEntry> entries,
  2: optional i64 bytes,
  // 0: unbounded
  3: optional i64 max_bytes,
}

struct PruneCacheRequest {
  // Every entry no engine uses; unset or false: only enough to get under the bound.
  1: optional bool all,
}

struct PruneCacheResult {
  1: optional i32 removed,
  2: optional i64 bytes_freed,
  3: optional i32 kept_in_use,
}

// Every method declares `throws (1: EcmError error)`: the token check (authenticate) answers an
// unauthenticated call of any method with that field. Keep it so for new methods.
service EngineConnManagerService {
  EngineConn launchEngineConn(1: LaunchRequest request) throws (1: EcmError error),
  EngineConn getEngineConn(1: string engine_id) throws (1: EcmError error),
  list<EngineConn> listEngineConns(1: EngineConnFilter filter) throws (1: EcmError error),
  StopResult stopEngineConn(1: StopRequest request) throws (1: EcmError error),
  // Stops every engine matching request.user and/or request.engine_type (one of them required).
  list<StopResult> stopEngineConns(1: StopRequest request) throws (1: EcmError error),
  NodeResources getResources() throws (1: EcmError error),
  // Lines of an engine's log stream: NOT_FOUND for an unknown engine or stream, INVALID_REQUEST
  // for a bad stream name, negative numbers, tail with from_line, or an invalid record_pattern.
  LogPage getEngineLog(1: LogRequest request) throws (1: EcmError error),
  HealthReport getHealthReport() throws (1: EcmError error),
  Metrics getMetrics() throws (1: EcmError error),
  // The RM's word on this node's health, kept over the ECM's own judgement until cleared.
  HealthReport setHealth(1: SetHealthRequest request) throws (1: EcmError error),
  // Every loaded plugin, and unloaded ones whose generations engines still hold.
  list<PluginInfo> listPlugins() throws (1: EcmError error),
  // Loads <plugins.dir>/NAME.so anew (hot swap). PLUGIN_FAILED when the file is refused: the
  // old generation keeps serving.
  PluginInfo reloadPlugin(1: string name) throws (1: EcmError error),
  // Loads the plugin file at an absolute path on the ECM's machine; its name is the file name
  // without ".so".
  PluginInfo loadPlugin(1: string path) throws (1: EcmError error),
  // PLUGIN_BUSY while engines of the plugin run and force is not set.
  PluginInfo unloadPlugin(1: UnloadPluginRequest request) throws (1: EcmError error),
  // The node's resource cache, and pruning it.
  CacheReport listCache() throws (1: EcmError error),
  PruneCacheResult pruneCache(1: PruneCacheRequest request) throws (1: EcmError error),
  // Gives this connection the ECM's shared token ([server] token_file). When the ECM has one,
  // every other call on a connection before a successful authenticate fails with
  // UNAUTHENTICATED and does nothing; a wrong token is UNAUTHENTICATED too (and the connection
  // is unauthenticated until a right one). Without a token_file any token is accepted.
  void authenticate(1: string token) throws (1: EcmError error),
}
