// EngineStateStore on a real SQLite file in a temp dir, read back through a connection of the
// test's own; and the list service's write-before-publish against it.
#include "store/engine_state_store.hpp"

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <utility>

#include <gtest/gtest.h>

#include "services/engine_conn_list_service.hpp"
#include "support/sqlite_probe.hpp"

using namespace ecm;
using namespace ecm::host;
using ecm::test::SqliteProbe;
using S = core::EngineStatus;
namespace fs = std::filesystem;

namespace {

class TempDir {
 public:
  TempDir() {
    std::string templ = (fs::temp_directory_path() / "ecm-store-XXXXXX").string();
    if (mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string bytes_of(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Whole milliseconds: the store keeps time at that resolution (as the Thrift API does).
core::Clock::time_point at_ms(std::int64_t ms) {
  return core::Clock::time_point(std::chrono::milliseconds(ms));
}

core::EngineConn full_record() {
  core::EngineConn e;
  e.id = "ec-0123456789abcdef01234567";
  e.ticket_id = "ticket-7";
  e.user = "alice";
  e.engine_type = "shell";
  e.engine_version = "1.2";
  e.labels = {{"team", "blue"}, {"quote\"and\\slash", "ünïcødé\nnewline"}};
  e.properties = {{"command", "echo 'hi' && sleep 600"}, {"empty", ""}};
  e.status = S::kShuttingDown;
  e.pid = 4242;
  e.work_dir = "/work/alice/ec-0123";
  e.log_dir = "/logs/alice/ec-0123";
  e.created_at = at_ms(1'700'000'000'123);
  e.started_at = at_ms(1'700'000'000'456);
  e.ended_at = at_ms(1'700'000'009'999);
  e.exit_code = 3;
  e.exit_signal = 15;
  e.failure_reason = "exited with code 3";
  e.stop_reason = "stopped by request";
  e.plugin_name = "shell";
  e.plugin_version = "0.3.1";
  // Above INT64_MAX: SQLite's integers are signed, the bits must still come back.
  e.resources = {std::numeric_limits<std::uint64_t>::max() - 5, 4, 1};
  e.token = "0123456789abcdef0123456789abcdef";
  e.service_address = "127.0.0.1:7001";
  e.last_message = "warming up";
  e.reported_pid = 4243;
  e.last_heartbeat = at_ms(1'700'000'005'000);
  e.run_as_uid = 4'000'000'000u;  // above INT32_MAX: a uid is unsigned
  e.ports = {{"http", 31001}, {"debug", 31002}};
  e.unhealthy_reason = "no heartbeat for 30s";
  e.supervision.start_time = 123456789012ull;
  e.supervision.boot_id = "0f8fad5b-d9cb-469f-a165-70867728950e";
  e.supervision.stop_signal = 2;
  e.supervision.stop_grace = std::chrono::milliseconds(2500);
  e.supervision.launch_timeout = std::chrono::milliseconds(60000);
  e.supervision.heartbeat_timeout = std::chrono::milliseconds(30000);
  sdk::ReadinessRule rule;
  rule.kind = sdk::ReadinessRule::Kind::kLogLine;
  rule.stream = "stderr";
  rule.pattern = "ready \\d+ \"quoted\"";
  rule.timeout = std::chrono::milliseconds(9000);
  rule.alive_for = std::chrono::milliseconds(5);
  rule.port = 8080;
  e.supervision.readiness = rule;
  e.supervision.cache_entries = {"pub-abc", "usr-alice-def.d"};
  return e;
}

core::EngineConn minimal_record(const std::string& id, const std::string& ticket = "") {
  core::EngineConn e;
  e.id = id;
  e.ticket_id = ticket;
  e.user = "alice";
  e.engine_type = "shell";
  e.created_at = at_ms(1'700'000'000'000);
  return e;
}

// Every field of core::EngineConn, one by one, so a failure names the field.
void expect_same(const core::EngineConn& a, const core::EngineConn& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.ticket_id, b.ticket_id);
  EXPECT_EQ(a.user, b.user);
  EXPECT_EQ(a.engine_type, b.engine_type);
  EXPECT_EQ(a.engine_version, b.engine_version);
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_EQ(a.properties, b.properties);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.pid, b.pid);
  EXPECT_EQ(a.work_dir, b.work_dir);
  EXPECT_EQ(a.log_dir, b.log_dir);
  EXPECT_EQ(a.created_at, b.created_at);
  EXPECT_EQ(a.started_at, b.started_at);
  EXPECT_EQ(a.ended_at, b.ended_at);
  EXPECT_EQ(a.exit_code, b.exit_code);
  EXPECT_EQ(a.exit_signal, b.exit_signal);
  EXPECT_EQ(a.failure_reason, b.failure_reason);
  EXPECT_EQ(a.stop_reason, b.stop_reason);
  EXPECT_EQ(a.plugin_name, b.plugin_name);
  EXPECT_EQ(a.plugin_version, b.plugin_version);
  EXPECT_EQ(a.resources, b.resources);
  EXPECT_EQ(a.token, b.token);
  EXPECT_EQ(a.service_address, b.service_address);
  EXPECT_EQ(a.last_message, b.last_message);
  EXPECT_EQ(a.reported_pid, b.reported_pid);
  EXPECT_EQ(a.last_heartbeat, b.last_heartbeat);
  EXPECT_EQ(a.run_as_uid, b.run_as_uid);
  EXPECT_EQ(a.ports, b.ports);
  EXPECT_EQ(a.unhealthy_reason, b.unhealthy_reason);
  const auto &x = a.supervision, &y = b.supervision;
  EXPECT_EQ(x.start_time, y.start_time);
  EXPECT_EQ(x.boot_id, y.boot_id);
  EXPECT_EQ(x.stop_signal, y.stop_signal);
  EXPECT_EQ(x.stop_grace, y.stop_grace);
  EXPECT_EQ(x.launch_timeout, y.launch_timeout);
  EXPECT_EQ(x.heartbeat_timeout, y.heartbeat_timeout);
  ASSERT_EQ(x.readiness.has_value(), y.readiness.has_value());
  if (x.readiness) {
    EXPECT_EQ(x.readiness->kind, y.readiness->kind);
    EXPECT_EQ(x.readiness->alive_for, y.readiness->alive_for);
    EXPECT_EQ(x.readiness->port, y.readiness->port);
    EXPECT_EQ(x.readiness->stream, y.readiness->stream);
    EXPECT_EQ(x.readiness->pattern, y.readiness->pattern);
    EXPECT_EQ(x.readiness->timeout, y.readiness->timeout);
  }
  EXPECT_EQ(x.cache_entries, y.cache_entries);
}

std::string row_status(SqliteProbe& db, const std::string& id) {
  auto rows = db.rows("SELECT status FROM engines WHERE id = '" + id + "'");
  return rows.empty() ? "<no row>" : rows.front().at("status").value_or("<null>");
}

}  // namespace

TEST(EngineStateStore, RoundTripsEveryFieldAcrossReopen) {
  TempDir dir;
  const auto path = dir.path() / "ecm.db";
  const auto rec = full_record();
  {
    EngineStateStore store(path);
    store.put(rec);
    auto all = store.load_all();
    ASSERT_EQ(all.size(), 1u);
    expect_same(all[0], rec);
  }
  // A fresh store on the same file: what a restarted ECM would read.
  EngineStateStore again(path);
  auto all = again.load_all();
  ASSERT_EQ(all.size(), 1u);
  expect_same(all[0], rec);
}

TEST(EngineStateStore, EmptyOptionalsAreNullInTheFileAndComeBackEmpty) {
  TempDir dir;
  const auto path = dir.path() / "ecm.db";
  EngineStateStore store(path);
  const auto rec = minimal_record("ec-min");
  store.put(rec);

  SqliteProbe db(path, true);
  auto rows = db.rows(
      "SELECT started_at, ended_at, exit_code, exit_signal, last_heartbeat, run_as_uid, labels, "
      "ports, status, updated_at FROM engines WHERE id = 'ec-min'");
  ASSERT_EQ(rows.size(), 1u);
  for (const char* col :
       {"started_at", "ended_at", "exit_code", "exit_signal", "last_heartbeat", "run_as_uid"}) {
    EXPECT_FALSE(rows[0].at(col)) << col << " = " << *rows[0].at(col);
  }
  EXPECT_EQ(rows[0].at("labels"), "{}");
  EXPECT_EQ(rows[0].at("ports"), "{}");
  EXPECT_EQ(rows[0].at("status"), "Starting");
  ASSERT_TRUE(rows[0].at("updated_at"));
  EXPECT_GT(std::stoll(*rows[0].at("updated_at")), 1'700'000'000'000);

  auto all = store.load_all();
  ASSERT_EQ(all.size(), 1u);
  expect_same(all[0], rec);
}

TEST(EngineStateStore, PutOverwritesTheRowIncludingClearedOptionals) {
  TempDir dir;
  EngineStateStore store(dir.path() / "ecm.db");
  auto rec = full_record();
  store.put(rec);
  rec.status = S::kSuccess;
  rec.labels = {{"only", "this"}};
  rec.exit_code.reset();
  rec.last_heartbeat.reset();
  rec.run_as_uid.reset();
  rec.ports.clear();
  rec.unhealthy_reason.clear();
  rec.stop_reason = "done";
  store.put(rec);
  auto all = store.load_all();
  ASSERT_EQ(all.size(), 1u);
  expect_same(all[0], rec);
}

TEST(EngineStateStore, RemoveDeletesOnlyThatRowAndIgnoresUnknownIds) {
  TempDir dir;
  EngineStateStore store(dir.path() / "ecm.db");
  store.put(minimal_record("ec-a"));
  store.put(minimal_record("ec-b"));
  store.remove("ec-a");
  EXPECT_NO_THROW(store.remove("ec-unknown"));
  auto all = store.load_all();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].id, "ec-b");
  SqliteProbe db(dir.path() / "ecm.db", true);
  EXPECT_EQ(db.value("SELECT count(*) FROM engines"), "1");
}

TEST(EngineStateStore, UsesWalWithSynchronousNormalAndAPrivateFile) {
  TempDir dir;
  const auto path = dir.path() / "ecm.db";
  EngineStateStore store(path);
  // journal_mode=WAL is a property of the file: another connection sees it.
  SqliteProbe db(path, true);
  EXPECT_EQ(db.value("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(db.value("PRAGMA user_version"), std::to_string(EngineStateStore::kSchemaVersion));
  // synchronous, busy_timeout and foreign_keys belong to the connection: ask the store's own.
  EXPECT_EQ(store.pragma("synchronous"), "1") << "1 is NORMAL";
  EXPECT_EQ(store.pragma("foreign_keys"), "1");
  EXPECT_GT(std::stoi(store.pragma("busy_timeout")), 0);
  // The records hold the engines' callback tokens.
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(EngineStateStore, RefusesANewerSchemaAndLeavesTheFileAsItWas) {
  TempDir dir;
  const auto path = dir.path() / "ecm.db";
  // What a newer ECM might leave: another table, a higher version, the default journal mode.
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw,
                         "CREATE TABLE engines_v2 (id TEXT PRIMARY KEY, doc TEXT);"
                         "INSERT INTO engines_v2 VALUES ('ec-1', '{}');"
                         "PRAGMA user_version = 3;",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(raw);
  const auto before = bytes_of(path);
  ASSERT_FALSE(before.empty());

  try {
    EngineStateStore store(path);
    FAIL() << "a newer schema was opened";
  } catch (const StateStoreTooNewError& e) {
    EXPECT_EQ(e.code(), core::ErrorCode::kInternal);
    const std::string msg = e.what();
    EXPECT_NE(msg.find("schema version 3"), std::string::npos) << msg;
    EXPECT_NE(msg.find("up to 2"), std::string::npos) << msg;
    EXPECT_NE(msg.find(path.string()), std::string::npos) << msg;
  }
  EXPECT_TRUE(bytes_of(path) == before) << "the refused file was modified";
  SqliteProbe db(path, true);
  EXPECT_EQ(db.value("PRAGMA journal_mode"), "delete") << "the refused file was switched to WAL";
  EXPECT_EQ(db.value("PRAGMA user_version"), "3");
}

TEST(EngineStateStore, ANonDatabaseFileIsRefusedAsDamagedAndLeftAsItWas) {
  TempDir dir;
  const auto path = dir.path() / "ecm.db";
  {
    std::ofstream out(path);
    out << std::string(4096, 'x');
  }
  const auto before = bytes_of(path);
  try {
    EngineStateStore store(path);
    FAIL() << "garbage was opened as a store";
  } catch (const StateStoreDamagedError& e) {
    EXPECT_EQ(e.code(), core::ErrorCode::kInternal);
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("state store " + path.string() + " is damaged", 0), 0u) << msg;
    EXPECT_NE(msg.find("not a database"), std::string::npos) << msg;
    EXPECT_NE(msg.find("left as it is"), std::string::npos) << msg;
  }
  EXPECT_TRUE(bytes_of(path) == before);
}

TEST(EngineStateStore, DamagedPagesFailTheIntegrityCheckAndTheFileIsKept) {
  TempDir dir;
  const auto path = dir.path() / "ecm.db";
  {
    EngineStateStore store(path);
    for (int i = 0; i < 200; ++i) {
      auto r = full_record();
      r.id = "ec-" + std::to_string(1000 + i);
      r.last_message = std::string(300, static_cast<char>('a' + i % 26));
      store.put(r);
    }
  }
  {
    // Checkpointed into the main file at close; now overwrite the middle of it (b-tree pages).
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096 * 3);
    const std::string junk(4096 * 4, '\x5a');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  const auto before = bytes_of(path);
  try {
    EngineStateStore store(path);
    FAIL() << "a damaged store was opened";
  } catch (const StateStoreDamagedError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("is damaged"), std::string::npos) << msg;
  }
  EXPECT_TRUE(bytes_of(path) == before) << "the refused file was modified";
}

TEST(EngineStateStore, ASchemaOneFileIsMigratedKeepingItsRows) {
  TempDir dir;
  const auto path = dir.path() / "ecm.db";
  // A file exactly as the first ECM wrote it: schema 1, one engine.
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, R"sql(
CREATE TABLE engines (
  id TEXT PRIMARY KEY NOT NULL, ticket_id TEXT NOT NULL, user TEXT NOT NULL,
  engine_type TEXT NOT NULL, engine_version TEXT NOT NULL, labels TEXT NOT NULL,
  properties TEXT NOT NULL, status TEXT NOT NULL, pid INTEGER NOT NULL, work_dir TEXT NOT NULL,
  log_dir TEXT NOT NULL, created_at INTEGER NOT NULL, started_at INTEGER, ended_at INTEGER,
  exit_code INTEGER, exit_signal INTEGER, failure_reason TEXT NOT NULL, stop_reason TEXT NOT NULL,
  plugin_name TEXT NOT NULL, plugin_version TEXT NOT NULL, memory_bytes INTEGER NOT NULL,
  cores INTEGER NOT NULL, instances INTEGER NOT NULL, token TEXT NOT NULL,
  service_address TEXT NOT NULL, last_message TEXT NOT NULL, reported_pid INTEGER NOT NULL,
  last_heartbeat INTEGER, run_as_uid INTEGER, ports TEXT NOT NULL,
  unhealthy_reason TEXT NOT NULL, updated_at INTEGER NOT NULL);
INSERT INTO engines VALUES ('ec-old', 't-1', 'alice', 'shell', '', '{"a":"b"}', '{}', 'Running',
  4321, '/w/alice/ec-old', '/w/alice/ec-old/logs', 1700000000000, 1700000000100, NULL, NULL,
  NULL, '', '', 'shell', '0.3', 268435456, 0, 1, 'tok', '', '', 0, NULL, NULL, '{}', '', 1);
PRAGMA user_version = 1;)sql",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(raw);

  {
    EngineStateStore store(path);
    auto all = store.load_all();
    ASSERT_EQ(all.size(), 1u);
    const auto& r = all.front();
    EXPECT_EQ(r.id, "ec-old");
    EXPECT_EQ(r.status, S::kRunning);
    EXPECT_EQ(r.pid, 4321);
    EXPECT_EQ(r.labels, (std::map<std::string, std::string>{{"a", "b"}}));
    EXPECT_EQ(r.resources.memory_bytes, 268435456u);
    // Columns new in schema 2 come back with their defaults: nothing to recognise the process by.
    EXPECT_EQ(r.supervision.start_time, 0u);
    EXPECT_EQ(r.supervision.boot_id, "");
    EXPECT_EQ(r.supervision.stop_signal, 15);
    EXPECT_FALSE(r.supervision.readiness);
    EXPECT_TRUE(r.supervision.cache_entries.empty());
    auto next = r;
    next.supervision.boot_id = "b";
    store.put(next);
  }
  SqliteProbe db(path, true);
  EXPECT_EQ(db.value("PRAGMA user_version"), std::to_string(EngineStateStore::kSchemaVersion));
  EXPECT_EQ(db.value("SELECT boot_id FROM engines WHERE id = 'ec-old'"), "b");
  // Opened again: already current, nothing to migrate, nothing lost.
  EngineStateStore again(path);
  EXPECT_EQ(again.load_all().size(), 1u);
}

TEST(EngineStateStore, ListServiceWritesEachChangeToTheFileBeforeReturning) {
  TempDir dir;
  const auto path = dir.path() / "ecm.db";
  EngineStateStore store(path);
  EngineConnListService list(&store);
  SqliteProbe db(path, true);

  ASSERT_TRUE(list.add_unless_ticket_known(minimal_record("ec-1", "T1")).second);
  EXPECT_EQ(row_status(db, "ec-1"), "Starting");
  ASSERT_TRUE(list.update("ec-1", [](core::EngineConn& e) { e.pid = 777; }));
  EXPECT_EQ(db.value("SELECT pid FROM engines WHERE id = 'ec-1'"), "777");
  ASSERT_TRUE(list.transition("ec-1", S::kRunning));
  EXPECT_EQ(row_status(db, "ec-1"), "Running");
  ASSERT_TRUE(list.transition("ec-1", S::kShuttingDown,
                              [](core::EngineConn& e) { e.stop_reason = "stopped by request"; }));
  EXPECT_EQ(row_status(db, "ec-1"), "ShuttingDown");
  EXPECT_EQ(db.value("SELECT stop_reason FROM engines WHERE id = 'ec-1'"), "stopped by request");
  core::ExitStatus exit;
  exit.signal = 15;
  ASSERT_TRUE(list.finish("ec-1", exit));
  EXPECT_EQ(row_status(db, "ec-1"), "Success");
  EXPECT_EQ(db.value("SELECT exit_signal FROM engines WHERE id = 'ec-1'"), "15");
  EXPECT_EQ(db.value("SELECT ended_at IS NOT NULL FROM engines WHERE id = 'ec-1'"), "1");
  // A refused change writes nothing either.
  EXPECT_FALSE(list.transition("ec-1", S::kRunning));
  EXPECT_EQ(row_status(db, "ec-1"), "Success");
  ASSERT_TRUE(list.remove_ended("ec-1"));
  EXPECT_EQ(row_status(db, "ec-1"), "<no row>");
}

TEST(EngineStateStore, ListServiceKeepsItsTableWhenTheStoreWriteFails) {
  TempDir dir;
  const auto path = dir.path() / "ecm.db";
  EngineStateStore store(path);
  EngineConnListService list(&store);
  SqliteProbe saboteur(path);
  auto expect_store_error = [](const std::function<void()>& call) {
    try {
      call();
      ADD_FAILURE() << "the failed store write did not propagate";
    } catch (const core::EcmException& e) {
      EXPECT_EQ(e.code(), core::ErrorCode::kInternal);
      EXPECT_NE(std::string(e.what()).find("state store: "), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("disk on fire"), std::string::npos) << e.what();
    }
  };

  // Insert refused: no engine, and the ticket is still free.
  saboteur.exec(
      "CREATE TRIGGER no_insert BEFORE INSERT ON engines BEGIN SELECT RAISE(ABORT, 'disk on "
      "fire'); END");
  expect_store_error([&] { list.add_unless_ticket_known(minimal_record("ec-1", "T1")); });
  EXPECT_EQ(list.size(), 0u);
  EXPECT_FALSE(list.find_by_ticket("T1"));
  saboteur.exec("DROP TRIGGER no_insert");
  ASSERT_TRUE(list.add_unless_ticket_known(minimal_record("ec-1", "T1")).second);
  auto pin = std::make_shared<int>(1);
  EngineRuntime runtime;
  runtime.plugin_pin = pin;
  list.set_runtime("ec-1", std::move(runtime));

  // Updates refused: the record (and what it pins) stays as it was, in memory and in the file.
  saboteur.exec(
      "CREATE TRIGGER no_update BEFORE UPDATE ON engines BEGIN SELECT RAISE(ABORT, 'disk on "
      "fire'); END");
  expect_store_error([&] {
    list.transition("ec-1", S::kFailed, [](core::EngineConn& e) { e.failure_reason = "x"; });
  });
  expect_store_error([&] { list.update("ec-1", [](core::EngineConn& e) { e.pid = 99; }); });
  core::ExitStatus exit;
  exit.code = 1;
  expect_store_error([&] { list.finish("ec-1", exit); });
  auto now = list.get("ec-1");
  ASSERT_TRUE(now);
  EXPECT_EQ(now->status, S::kStarting);
  EXPECT_EQ(now->failure_reason, "");
  EXPECT_EQ(now->pid, 0);
  EXPECT_FALSE(now->exit_code);
  EXPECT_EQ(pin.use_count(), 2) << "a failed end dropped the engine's plugin pin";
  EXPECT_EQ(row_status(saboteur, "ec-1"), "Starting");
  saboteur.exec("DROP TRIGGER no_update");

  // Delete refused: the ended engine is still known, ticket included.
  ASSERT_TRUE(list.finish("ec-1", exit));
  saboteur.exec(
      "CREATE TRIGGER no_delete BEFORE DELETE ON engines BEGIN SELECT RAISE(ABORT, 'disk on "
      "fire'); END");
  expect_store_error([&] { list.remove_ended("ec-1"); });
  EXPECT_TRUE(list.get("ec-1"));
  EXPECT_TRUE(list.find_by_ticket("T1"));
  EXPECT_EQ(row_status(saboteur, "ec-1"), "Failed");
}
