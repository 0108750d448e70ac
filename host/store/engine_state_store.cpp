#include "store/engine_state_store.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <string_view>
#include <type_traits>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "util/log.hpp"

namespace ecm::host {
namespace {

using core::EcmException;
using core::ErrorCode;

// The columns of `engines`, in the order every statement binds and reads them.
constexpr std::array<std::string_view, 40> kColumns{
    "id",
    "ticket_id",
    "user",
    "engine_type",
    "engine_version",
    "labels",
    "properties",
    "status",
    "pid",
    "work_dir",
    "log_dir",
    "created_at",
    "started_at",
    "ended_at",
    "exit_code",
    "exit_signal",
    "failure_reason",
    "stop_reason",
    "plugin_name",
    "plugin_version",
    "memory_bytes",
    "cores",
    "instances",
    "token",
    "service_address",
    "last_message",
    "reported_pid",
    "last_heartbeat",
    "run_as_uid",
    "ports",
    "unhealthy_reason",
    "updated_at",
    // schema 2
    "process_start_time",
    "boot_id",
    "stop_signal",
    "stop_grace_ms",
    "launch_timeout_ms",
    "heartbeat_timeout_ms",
    "readiness",
    "cache_entries",
};

// Schema 1, as the first ECM created it; a fresh file is made by running it and then every
// migration, so a new store and a migrated one are the same by construction.
constexpr const char* kCreateEngines = R"sql(
CREATE TABLE engines (
  id              TEXT PRIMARY KEY NOT NULL,
  ticket_id       TEXT NOT NULL,
  user            TEXT NOT NULL,
  engine_type     TEXT NOT NULL,
  engine_version  TEXT NOT NULL,
  labels          TEXT NOT NULL,
  properties      TEXT NOT NULL,
  status          TEXT NOT NULL,
  pid             INTEGER NOT NULL,
  work_dir        TEXT NOT NULL,
  log_dir         TEXT NOT NULL,
  created_at      INTEGER NOT NULL,
  started_at      INTEGER,
  ended_at        INTEGER,
  exit_code       INTEGER,
  exit_signal     INTEGER,
  failure_reason  TEXT NOT NULL,
  stop_reason     TEXT NOT NULL,
  plugin_name     TEXT NOT NULL,
  plugin_version  TEXT NOT NULL,
  memory_bytes    INTEGER NOT NULL,
  cores           INTEGER NOT NULL,
  instances       INTEGER NOT NULL,
  token           TEXT NOT NULL,
  service_address TEXT NOT NULL,
  last_message    TEXT NOT NULL,
  reported_pid    INTEGER NOT NULL,
  last_heartbeat  INTEGER,
  run_as_uid      INTEGER,
  ports           TEXT NOT NULL,
  unhealthy_reason TEXT NOT NULL,
  updated_at      INTEGER NOT NULL
))sql";

// kMigrations[i] takes the schema from version i + 1 to i + 2. Only ever appended to.
constexpr std::array<const char*, 1> kMigrations{
    // 2: what a restarted ECM needs to re-adopt an engine (core::Supervision).
    R"sql(
ALTER TABLE engines ADD COLUMN process_start_time INTEGER NOT NULL DEFAULT 0;
ALTER TABLE engines ADD COLUMN boot_id TEXT NOT NULL DEFAULT '';
ALTER TABLE engines ADD COLUMN stop_signal INTEGER NOT NULL DEFAULT 15;
ALTER TABLE engines ADD COLUMN stop_grace_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE engines ADD COLUMN launch_timeout_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE engines ADD COLUMN heartbeat_timeout_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE engines ADD COLUMN readiness TEXT NOT NULL DEFAULT '';
ALTER TABLE engines ADD COLUMN cache_entries TEXT NOT NULL DEFAULT '[]';
)sql",
};
static_assert(kMigrations.size() + 1 == EngineStateStore::kSchemaVersion);

std::string column_list() {
  std::string out;
  for (auto c : kColumns) {
    if (!out.empty()) out += ", ";
    out += c;
  }
  return out;
}

std::string upsert_sql() {
  std::string values;
  std::string updates;
  for (std::size_t i = 0; i < kColumns.size(); ++i) {
    values += (i ? ", ?" : "?") + std::to_string(i + 1);
    if (kColumns[i] == "id") continue;
    if (!updates.empty()) updates += ", ";
    updates += std::string(kColumns[i]) + " = excluded." + std::string(kColumns[i]);
  }
  return "INSERT INTO engines (" + column_list() + ") VALUES (" + values +
         ") ON CONFLICT (id) DO UPDATE SET " + updates;
}

std::int64_t to_ms(core::Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

core::Clock::time_point from_ms(std::int64_t ms) {
  return core::Clock::time_point(
      std::chrono::duration_cast<core::Clock::duration>(std::chrono::milliseconds(ms)));
}

std::string to_json(const std::map<std::string, std::string>& m) {
  boost::json::object o;
  for (const auto& [k, v] : m)
    o[k] = v;
  return boost::json::serialize(o);
}

std::string to_json(const std::map<std::string, int>& m) {
  boost::json::object o;
  for (const auto& [k, v] : m)
    o[k] = v;
  return boost::json::serialize(o);
}

std::string to_json(const std::vector<std::string>& v) {
  boost::json::array a;
  for (const auto& s : v)
    a.emplace_back(s);
  return boost::json::serialize(a);
}

// The readiness rule as a JSON object; empty text for none.
std::string readiness_to_json(const std::optional<sdk::ReadinessRule>& rule) {
  if (!rule) return {};
  boost::json::object o;
  o["kind"] = static_cast<int>(rule->kind);
  o["alive_for_ms"] = rule->alive_for.count();
  o["port"] = rule->port;
  o["stream"] = rule->stream;
  o["pattern"] = rule->pattern;
  o["timeout_ms"] = rule->timeout.count();
  return boost::json::serialize(o);
}

EcmException bad_column(const std::string& id, const char* column, const std::string& why) {
  return EcmException(ErrorCode::kInternal,
                      "state store: engine " + id + ": bad " + column + " (" + why + ")");
}

std::optional<sdk::ReadinessRule> readiness_from_json(std::string_view text,
                                                      const std::string& id) {
  if (text.empty()) return std::nullopt;
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  if (ec || !v.is_object()) throw bad_column(id, "readiness", "not a JSON object");
  const auto& o = v.get_object();
  auto integer = [&](const char* key) -> std::int64_t {
    const auto* f = o.if_contains(key);
    if (!f || !f->is_int64()) throw bad_column(id, "readiness", std::string("no integer ") + key);
    return f->get_int64();
  };
  auto text_of = [&](const char* key) -> std::string {
    const auto* f = o.if_contains(key);
    if (!f || !f->is_string()) throw bad_column(id, "readiness", std::string("no string ") + key);
    return std::string(f->get_string());
  };
  sdk::ReadinessRule r;
  const auto kind = integer("kind");
  if (kind < 0 || kind > static_cast<int>(sdk::ReadinessRule::Kind::kLogLine)) {
    throw bad_column(id, "readiness", "unknown kind " + std::to_string(kind));
  }
  r.kind = static_cast<sdk::ReadinessRule::Kind>(kind);
  r.alive_for = std::chrono::milliseconds(integer("alive_for_ms"));
  r.port = static_cast<int>(integer("port"));
  r.stream = text_of("stream");
  r.pattern = text_of("pattern");
  r.timeout = std::chrono::milliseconds(integer("timeout_ms"));
  return r;
}

std::vector<std::string> strings_from_json(std::string_view text, const std::string& id,
                                           const char* column) {
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  if (ec || !v.is_array()) throw bad_column(id, column, "not a JSON array");
  std::vector<std::string> out;
  for (const auto& item : v.get_array()) {
    if (!item.is_string()) throw bad_column(id, column, "an item is not a string");
    out.emplace_back(item.get_string());
  }
  return out;
}

// A JSON object of strings (labels, properties) or of ints (ports), as the store wrote it.
template <typename Value>
std::map<std::string, Value> from_json(std::string_view text, const std::string& id,
                                       const char* column) {
  auto bad = [&](const std::string& why) {
    return EcmException(ErrorCode::kInternal,
                        "state store: engine " + id + ": bad " + column + " (" + why + ")");
  };
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  if (ec) throw bad(ec.message());
  if (!v.is_object()) throw bad("not a JSON object");
  std::map<std::string, Value> out;
  for (const auto& [k, val] : v.get_object()) {
    if constexpr (std::is_same_v<Value, std::string>) {
      if (!val.is_string()) throw bad("value of '" + std::string(k) + "' is not a string");
      out.emplace(std::string(k), std::string(val.get_string()));
    } else {
      if (!val.is_int64()) throw bad("value of '" + std::string(k) + "' is not an integer");
      out.emplace(std::string(k), static_cast<Value>(val.get_int64()));
    }
  }
  return out;
}

// Binds values to the upsert's parameters in kColumns order; keeps the first error code.
class Binder {
 public:
  explicit Binder(sqlite3_stmt* stmt) : stmt_(stmt) {}
  // SQLITE_STATIC: every string bound outlives the step that reads it (see put()).
  void text(const std::string& v) {
    next(sqlite3_bind_text(stmt_, index_, v.data(), static_cast<int>(v.size()), SQLITE_STATIC));
  }
  void integer(std::int64_t v) { next(sqlite3_bind_int64(stmt_, index_, v)); }
  template <typename T>
  void optional(const std::optional<T>& v) {
    if (!v) {
      next(sqlite3_bind_null(stmt_, index_));
    } else if constexpr (std::is_same_v<T, core::Clock::time_point>) {
      integer(to_ms(*v));
    } else {
      integer(*v);
    }
  }
  int rc() const { return rc_; }
  int bound() const { return index_ - 1; }

 private:
  void next(int rc) {
    if (rc_ == SQLITE_OK) rc_ = rc;
    ++index_;
  }
  sqlite3_stmt* stmt_;
  int index_ = 1;
  int rc_ = SQLITE_OK;
};

// Reads a row's columns in kColumns order.
class Reader {
 public:
  explicit Reader(sqlite3_stmt* stmt) : stmt_(stmt) {}
  std::string text() {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, index_));
    const int n = sqlite3_column_bytes(stmt_, index_);
    ++index_;
    return p ? std::string(p, static_cast<std::size_t>(n)) : std::string();
  }
  std::int64_t integer() { return sqlite3_column_int64(stmt_, index_++); }
  bool null() const { return sqlite3_column_type(stmt_, index_) == SQLITE_NULL; }
  template <typename T>
  std::optional<T> optional_int() {
    if (null()) return ++index_, std::nullopt;
    return static_cast<T>(integer());
  }
  std::optional<core::Clock::time_point> optional_time() {
    if (null()) return ++index_, std::nullopt;
    return from_ms(integer());
  }

 private:
  sqlite3_stmt* stmt_;
  int index_ = 0;
};

// Resets a kept statement however the step ended, so the next use starts clean.
struct ResetOnExit {
  sqlite3_stmt* stmt;
  ~ResetOnExit() {
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
  }
};

}  // namespace

StateStoreTooNewError::StateStoreTooNewError(const std::filesystem::path& path, std::int64_t found,
                                             std::int64_t known)
    : EcmException(ErrorCode::kInternal,
                   "state store " + path.string() + " has schema version " + std::to_string(found) +
                       " but this ECM knows versions up to " + std::to_string(known) +
                       ": a newer ECM wrote it; refusing to open it (the file is left as it is)") {}

StateStoreDamagedError::StateStoreDamagedError(const std::filesystem::path& path,
                                               const std::string& problem)
    : EcmException(ErrorCode::kInternal,
                   "state store " + path.string() + " is damaged (" + problem +
                       "): refusing to start with it; the file is left as it is. Move it aside "
                       "to start with an empty store (its engines are then not re-adopted)") {}

void EngineStateStore::CloseDb::operator()(sqlite3* db) const {
  sqlite3_close_v2(db);
}

void EngineStateStore::Finalize::operator()(sqlite3_stmt* stmt) const {
  sqlite3_finalize(stmt);
}

EngineStateStore::EngineStateStore(const std::filesystem::path& path) : path_(path) {
  // Created here rather than by SQLite so that it is private from its first byte: the records
  // carry the engines' callback tokens. SQLite gives its -wal and -shm files the same mode.
  const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ::close(fd);
  } else if (errno != EEXIST) {
    throw EcmException(ErrorCode::kInternal, "state store: cannot create " + path_.string() + ": " +
                                                 std::strerror(errno));
  }
  sqlite3* db = nullptr;
  const int rc =
      sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  db_.reset(db);  // even a failed open allocates a handle, which holds the message
  if (rc != SQLITE_OK) fail("cannot open " + path_.string());
  // A file that is not a database, or one with damaged pages, is refused before anything writes to
  // it: whatever can still be read from it is the administrator's to rescue.
  try {
    // The version is checked before anything that writes: switching to WAL rewrites the header.
    check_version();
    check_integrity();
  } catch (const StateStoreTooNewError&) {
    throw;
  } catch (const StateStoreDamagedError&) {
    throw;
  } catch (const EcmException& e) {
    throw StateStoreDamagedError(path_, e.what());
  }
  configure();
  create_or_migrate();
  upsert_ = prepare(upsert_sql());
  delete_ = prepare("DELETE FROM engines WHERE id = ?1");
  log("store")->info("state store {} open (schema version {}, WAL)", path_.string(),
                     kSchemaVersion);
}

EngineStateStore::~EngineStateStore() = default;

void EngineStateStore::fail(const std::string& what) const {
  const char* msg = db_ ? sqlite3_errmsg(db_.get()) : "out of memory";
  throw EcmException(ErrorCode::kInternal, "state store: " + what + ": " + msg);
}

EngineStateStore::StatementPtr EngineStateStore::prepare(const std::string& sql) const {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v3(db_.get(), sql.c_str(), static_cast<int>(sql.size()),
                         SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK) {
    sqlite3_finalize(stmt);
    fail("cannot prepare \"" + sql.substr(0, 40) + "...\"");
  }
  return StatementPtr(stmt);
}

void EngineStateStore::exec(const std::string& sql) const {
  if (sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
    fail(sql.substr(0, sql.find('(')));
  }
}

void EngineStateStore::check_version() const {
  auto stmt = prepare("PRAGMA user_version");
  if (sqlite3_step(stmt.get()) != SQLITE_ROW) fail("cannot read the schema version");
  const auto version = sqlite3_column_int64(stmt.get(), 0);
  if (version > kSchemaVersion) throw StateStoreTooNewError(path_, version, kSchemaVersion);
}

void EngineStateStore::configure() {
  if (sqlite3_busy_timeout(db_.get(), 5000) != SQLITE_OK) fail("cannot set busy_timeout");
  // journal_mode answers with the mode in force: a file system without shared memory support
  // keeps the old one, and the durability argument above no longer holds.
  auto wal = prepare("PRAGMA journal_mode = WAL");
  if (sqlite3_step(wal.get()) != SQLITE_ROW) fail("cannot set journal_mode=WAL");
  const auto* mode = reinterpret_cast<const char*>(sqlite3_column_text(wal.get(), 0));
  if (!mode || std::string_view(mode) != "wal") {
    throw EcmException(ErrorCode::kInternal, "state store: " + path_.string() +
                                                 " cannot use journal_mode=WAL (got " +
                                                 (mode ? mode : "nothing") + ")");
  }
  wal.reset();
  exec("PRAGMA synchronous = NORMAL");
  exec("PRAGMA foreign_keys = ON");
}

void EngineStateStore::create_or_migrate() {
  // IMMEDIATE takes the write lock first, so two processes opening one file cannot both decide to
  // create or migrate the schema.
  exec("BEGIN IMMEDIATE");
  try {
    auto stmt = prepare("PRAGMA user_version");
    if (sqlite3_step(stmt.get()) != SQLITE_ROW) fail("cannot read the schema version");
    const auto found = sqlite3_column_int64(stmt.get(), 0);
    stmt.reset();
    if (found > kSchemaVersion) throw StateStoreTooNewError(path_, found, kSchemaVersion);
    if (found == 0) exec(kCreateEngines);
    for (auto v = std::max<std::int64_t>(found, 1); v < kSchemaVersion; ++v) {
      exec(kMigrations[static_cast<std::size_t>(v - 1)]);
    }
    if (found != kSchemaVersion) exec("PRAGMA user_version = " + std::to_string(kSchemaVersion));
    exec("COMMIT");
    if (found != 0 && found != kSchemaVersion) {
      log("store")->info("state store {} migrated from schema version {} to {}", path_.string(),
                         found, kSchemaVersion);
    }
  } catch (...) {
    sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

void EngineStateStore::check_integrity() const {
  // quick_check reads every page and checks the b-trees (not index contents against tables,
  // which integrity_check adds at several times the cost); a few ms for thousands of engines.
  auto stmt = prepare("PRAGMA quick_check");
  std::string problems;
  int rc = SQLITE_OK;
  while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
    const auto* line = reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 0));
    const std::string text = line ? line : "";
    if (text == "ok") continue;
    if (problems.size() < 400) problems += (problems.empty() ? "" : "; ") + text;
  }
  if (rc != SQLITE_DONE) {
    problems += (problems.empty() ? "" : "; ") + std::string(sqlite3_errmsg(db_.get()));
  }
  if (!problems.empty()) throw StateStoreDamagedError(path_, problems);
}

void EngineStateStore::put(const core::EngineConn& r) {
  // Kept alive until the step: they are bound without a copy.
  const std::string labels = to_json(r.labels);
  const std::string properties = to_json(r.properties);
  const std::string ports = to_json(r.ports);
  const std::string status(core::to_string(r.status));
  const std::string readiness = readiness_to_json(r.supervision.readiness);
  const std::string cache_entries = to_json(r.supervision.cache_entries);

  std::lock_guard lock(mu_);
  auto* stmt = upsert_.get();
  ResetOnExit reset{stmt};
  Binder b(stmt);
  b.text(r.id);
  b.text(r.ticket_id);
  b.text(r.user);
  b.text(r.engine_type);
  b.text(r.engine_version);
  b.text(labels);
  b.text(properties);
  b.text(status);
  b.integer(r.pid);
  b.text(r.work_dir);
  b.text(r.log_dir);
  b.integer(to_ms(r.created_at));
  b.optional(r.started_at);
  b.optional(r.ended_at);
  b.optional(r.exit_code);
  b.optional(r.exit_signal);
  b.text(r.failure_reason);
  b.text(r.stop_reason);
  b.text(r.plugin_name);
  b.text(r.plugin_version);
  // uint64 into SQLite's int64: the bits round-trip even above INT64_MAX.
  b.integer(static_cast<std::int64_t>(r.resources.memory_bytes));
  b.integer(static_cast<std::int64_t>(r.resources.cores));
  b.integer(static_cast<std::int64_t>(r.resources.instances));
  b.text(r.token);
  b.text(r.service_address);
  b.text(r.last_message);
  b.integer(r.reported_pid);
  b.optional(r.last_heartbeat);
  b.optional(r.run_as_uid);
  b.text(ports);
  b.text(r.unhealthy_reason);
  b.integer(to_ms(core::Clock::now()));
  const auto& sv = r.supervision;
  b.integer(static_cast<std::int64_t>(sv.start_time));
  b.text(sv.boot_id);
  b.integer(sv.stop_signal);
  b.integer(sv.stop_grace.count());
  b.integer(sv.launch_timeout.count());
  b.integer(sv.heartbeat_timeout.count());
  b.text(readiness);
  b.text(cache_entries);
  if (b.rc() != SQLITE_OK) fail("cannot write engine " + r.id);
  if (b.bound() != static_cast<int>(kColumns.size())) {
    throw EcmException(ErrorCode::kInternal, "state store: bound " + std::to_string(b.bound()) +
                                                 " of " + std::to_string(kColumns.size()) +
                                                 " columns");
  }
  if (sqlite3_step(stmt) != SQLITE_DONE) fail("cannot write engine " + r.id);
}

void EngineStateStore::remove(const std::string& id) {
  std::lock_guard lock(mu_);
  auto* stmt = delete_.get();
  ResetOnExit reset{stmt};
  if (sqlite3_bind_text(stmt, 1, id.data(), static_cast<int>(id.size()), SQLITE_STATIC) !=
          SQLITE_OK ||
      sqlite3_step(stmt) != SQLITE_DONE) {
    fail("cannot remove engine " + id);
  }
}

std::vector<core::EngineConn> EngineStateStore::load_all() const {
  std::lock_guard lock(mu_);
  auto stmt = prepare("SELECT " + column_list() + " FROM engines ORDER BY created_at, id");
  std::vector<core::EngineConn> out;
  int rc = SQLITE_OK;
  while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
    Reader c(stmt.get());
    core::EngineConn r;
    r.id = c.text();
    r.ticket_id = c.text();
    r.user = c.text();
    r.engine_type = c.text();
    r.engine_version = c.text();
    r.labels = from_json<std::string>(c.text(), r.id, "labels");
    r.properties = from_json<std::string>(c.text(), r.id, "properties");
    const auto status = c.text();
    auto parsed = core::engine_status_from_string(status);
    if (!parsed) {
      throw EcmException(ErrorCode::kInternal,
                         "state store: engine " + r.id + " has an unknown status '" + status + "'");
    }
    r.status = *parsed;
    r.pid = static_cast<int>(c.integer());
    r.work_dir = c.text();
    r.log_dir = c.text();
    r.created_at = from_ms(c.integer());
    r.started_at = c.optional_time();
    r.ended_at = c.optional_time();
    r.exit_code = c.optional_int<int>();
    r.exit_signal = c.optional_int<int>();
    r.failure_reason = c.text();
    r.stop_reason = c.text();
    r.plugin_name = c.text();
    r.plugin_version = c.text();
    r.resources.memory_bytes = static_cast<std::uint64_t>(c.integer());
    r.resources.cores = static_cast<std::uint64_t>(c.integer());
    r.resources.instances = static_cast<std::uint64_t>(c.integer());
    r.token = c.text();
    r.service_address = c.text();
    r.last_message = c.text();
    r.reported_pid = static_cast<int>(c.integer());
    r.last_heartbeat = c.optional_time();
    r.run_as_uid = c.optional_int<std::uint32_t>();
    r.ports = from_json<int>(c.text(), r.id, "ports");
    r.unhealthy_reason = c.text();
    c.integer();  // updated_at
    auto& sv = r.supervision;
    sv.start_time = static_cast<std::uint64_t>(c.integer());
    sv.boot_id = c.text();
    sv.stop_signal = static_cast<int>(c.integer());
    sv.stop_grace = std::chrono::milliseconds(c.integer());
    sv.launch_timeout = std::chrono::milliseconds(c.integer());
    sv.heartbeat_timeout = std::chrono::milliseconds(c.integer());
    sv.readiness = readiness_from_json(c.text(), r.id);
    sv.cache_entries = strings_from_json(c.text(), r.id, "cache_entries");
    out.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) fail("cannot read the engines");
  return out;
}

std::string EngineStateStore::pragma(const std::string& name) const {
  // A name, not SQL: it is pasted into the statement.
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') {
      throw EcmException(ErrorCode::kInvalidRequest, "state store: bad pragma name '" + name + "'");
    }
  }
  std::lock_guard lock(mu_);
  auto stmt = prepare("PRAGMA " + name);
  if (sqlite3_step(stmt.get()) != SQLITE_ROW) fail("cannot read PRAGMA " + name);
  const auto* v = reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 0));
  return v ? v : "";
}

}  // namespace ecm::host
