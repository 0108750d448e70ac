// EngineStateStore: the engine records on disk (<state_dir>/ecm.db, SQLite), so that a restarted
// ECM knows what it launched. Engines run in their own sessions and outlive an ECM crash, but die
// with their machine: the file must survive a crash of the ECM, not a power cut. Hence WAL with
// synchronous=NORMAL, where a commit is a write to the WAL file and no fsync (≈ 20 µs).
//
// The schema (user_version 2; version 1 files are migrated at open), one row per engine:
//   engines(id TEXT PRIMARY KEY, ticket_id, user, engine_type, engine_version TEXT,
//           labels, properties TEXT (JSON objects), status TEXT (core::to_string),
//           pid INTEGER, work_dir, log_dir TEXT,
//           created_at INTEGER, started_at, ended_at INTEGER NULL (ms since the epoch),
//           exit_code, exit_signal INTEGER NULL, failure_reason, stop_reason, plugin_name,
//           plugin_version TEXT, memory_bytes, cores, instances INTEGER, token,
//           service_address, last_message TEXT, reported_pid INTEGER,
//           last_heartbeat INTEGER NULL (ms), run_as_uid INTEGER NULL, ports TEXT (JSON object
//           name -> port), unhealthy_reason TEXT, updated_at INTEGER (ms, time of the write),
//           -- 2: core::Supervision, what a restarted ECM needs to re-adopt the engine
//           process_start_time INTEGER, boot_id TEXT, stop_signal, stop_grace_ms,
//           launch_timeout_ms, heartbeat_timeout_ms INTEGER, readiness TEXT (JSON object or
//           empty), cache_entries TEXT (JSON array of cache entry names))
// At open the file's pages are checked (PRAGMA quick_check) before anything writes to it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ecm/core/engine_conn.hpp"
#include "ecm/core/errors.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace ecm::host {

// The file was written by a newer ECM with a schema this binary does not know. Opening it anyway
// could lose what the newer version stored, so it is refused and left as it is.
class StateStoreTooNewError : public core::EcmException {
 public:
  StateStoreTooNewError(const std::filesystem::path& path, std::int64_t found, std::int64_t known);
};

// The file is not a database, or its pages are damaged. It is refused and left as it is: what can
// still be read from it is the administrator's to rescue, and a start must not overwrite it.
class StateStoreDamagedError : public core::EcmException {
 public:
  StateStoreDamagedError(const std::filesystem::path& path, const std::string& problem);
};

class EngineStateStore {
 public:
  static constexpr std::int64_t kSchemaVersion = 2;

  // Opens `path`, creating it (mode 0600: records hold the engines' callback tokens) and its
  // schema if absent, migrating an older schema. Throws StateStoreTooNewError for a newer schema,
  // StateStoreDamagedError for a file that fails the integrity check, core::EcmException
  // (kInternal, "state store: ...") for anything SQLite refuses.
  explicit EngineStateStore(const std::filesystem::path& path);
  ~EngineStateStore();
  EngineStateStore(const EngineStateStore&) = delete;
  EngineStateStore& operator=(const EngineStateStore&) = delete;

  // Inserts or replaces the engine's row; committed (in the WAL) when it returns.
  void put(const core::EngineConn& record);
  // Deletes the engine's row; an unknown id is not an error.
  void remove(const std::string& id);
  // Every stored record, ordered by creation time.
  std::vector<core::EngineConn> load_all() const;

  // The value of PRAGMA `name` on the store's own connection (synchronous, busy_timeout and
  // foreign_keys are per connection: no other connection can see them). For diagnostics and tests.
  std::string pragma(const std::string& name) const;

  const std::filesystem::path& path() const { return path_; }

 private:
  struct CloseDb {
    void operator()(sqlite3* db) const;
  };
  struct Finalize {
    void operator()(sqlite3_stmt* stmt) const;
  };
  using StatementPtr = std::unique_ptr<sqlite3_stmt, Finalize>;

  void check_version() const;
  void configure();
  void check_integrity() const;
  void create_or_migrate();
  StatementPtr prepare(const std::string& sql) const;
  void exec(const std::string& sql) const;
  [[noreturn]] void fail(const std::string& what) const;

  std::filesystem::path path_;
  mutable std::mutex mu_;  // one connection, used by one thread at a time
  // Declared before the statements: they are finalized before the connection closes.
  std::unique_ptr<sqlite3, CloseDb> db_;
  // Kept prepared for the store's life: preparing costs as much as the write itself.
  StatementPtr upsert_;
  StatementPtr delete_;
};

}  // namespace ecm::host
