// The real daemon's state store: what reached <state_dir>/ecm.db, read through a connection of the
// test's own while the daemon runs and after it has exited.
#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ecm_harness.hpp"
#include "support/sqlite_probe.hpp"

namespace ecm::itest {
namespace {

namespace fs = std::filesystem;
using ecm::test::SqliteProbe;

bool is_ended(const api::EngineConn& e) {
  return e.__isset.status &&
         (e.status == api::EngineStatus::SUCCESS || e.status == api::EngineStatus::FAILED);
}

// The store's name for an API status (core::to_string).
std::string store_status(api::EngineStatus::type s) {
  switch (s) {
    case api::EngineStatus::SUCCESS:
      return "Success";
    case api::EngineStatus::FAILED:
      return "Failed";
    case api::EngineStatus::RUNNING:
      return "Running";
    default:
      return "other";
  }
}

SqliteProbe::Row row_of(SqliteProbe& db, const std::string& id) {
  auto rows = db.rows("SELECT * FROM engines WHERE id = '" + id + "'");
  if (rows.size() != 1) throw std::runtime_error("no row for " + id);
  return rows.front();
}

std::string bytes_of(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(StateStore, StoppedEngineRowHoldsItsFinalStatusAndPid) {
  EcmProcess ecm;
  auto req = shell_request("alice", "sleep 600");
  req.__set_ticket_id("ticket-store-1");
  req.__set_labels({{"team", "blue"}});
  const auto e = ecm.launch(req);
  ASSERT_EQ(e.status, api::EngineStatus::RUNNING);
  const auto db_path = ecm.state_dir() / "ecm.db";
  SqliteProbe db(db_path, true);
  // launchEngineConn answered Running: the file said so first.
  EXPECT_EQ(row_of(db, e.id).at("status"), "Running");

  api::StopRequest stop;
  stop.__set_engine_id(e.id);
  api::StopResult result;
  ecm.client().stopEngineConn(result, stop);
  const auto ended = ecm.wait_for_status(e.id, is_ended);
  ASSERT_TRUE(is_ended(ended)) << ended.status;

  // Published ended, so already in the file with everything the API shows.
  auto row = row_of(db, e.id);
  EXPECT_EQ(row.at("status"), store_status(ended.status));
  EXPECT_EQ(row.at("pid"), std::to_string(e.pid));
  EXPECT_EQ(row.at("user"), "alice");
  EXPECT_EQ(row.at("engine_type"), "shell");
  EXPECT_EQ(row.at("ticket_id"), "ticket-store-1");
  EXPECT_EQ(row.at("labels"), R"({"team":"blue"})");
  EXPECT_EQ(row.at("stop_reason"), ended.stop_reason);
  EXPECT_EQ(row.at("work_dir"), e.work_dir);
  ASSERT_TRUE(ended.__isset.exit_signal);
  EXPECT_EQ(row.at("exit_signal"), std::to_string(ended.exit_signal));
  EXPECT_FALSE(row.at("exit_code"));
  ASSERT_TRUE(ended.__isset.ended_at_ms);
  EXPECT_EQ(row.at("ended_at"), std::to_string(ended.ended_at_ms));
  EXPECT_EQ(row.at("created_at"), std::to_string(ended.created_at_ms));

  EXPECT_EQ(db.value("PRAGMA journal_mode"), "wal");
  struct stat st {};
  ASSERT_EQ(stat(db_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "the file holds the engines' callback tokens";
}

TEST(StateStore, TwentyEnginesAreTwentyRowsThatOutliveTheDaemon) {
  EcmProcess ecm;
  std::vector<api::EngineConn> engines;
  for (int i = 0; i < 20; ++i) {
    engines.push_back(ecm.launch(shell_request(i % 2 ? "bob" : "alice", "sleep 600")));
    ASSERT_EQ(engines.back().status, api::EngineStatus::RUNNING);
  }
  const auto db_path = ecm.state_dir() / "ecm.db";
  {
    SqliteProbe db(db_path, true);
    EXPECT_EQ(db.value("SELECT count(*) FROM engines"), "20");
    EXPECT_EQ(db.value("SELECT count(*) FROM engines WHERE status = 'Running' AND pid > 1"), "20");
    for (const auto& e : engines) {
      EXPECT_EQ(row_of(db, e.id).at("pid"), std::to_string(e.pid));
    }
  }

  // The daemon stops its engines on the way out (stop_on_shutdown): every end is in the file,
  // which a stopped daemon leaves behind.
  ASSERT_EQ(ecm.terminate_and_wait(), 0) << ecm.daemon_stderr();
  SqliteProbe db(db_path, true);
  EXPECT_EQ(db.value("SELECT count(*) FROM engines"), "20");
  EXPECT_EQ(db.value("SELECT count(*) FROM engines WHERE status IN ('Success', 'Failed') AND "
                     "ended_at IS NOT NULL"),
            "20");

  // A restarted daemon opens the file it left (and adds to it).
  ecm.start();
  const auto more = ecm.launch(shell_request("carol", "sleep 600"));
  ASSERT_EQ(more.status, api::EngineStatus::RUNNING);
  EXPECT_EQ(db.value("SELECT count(*) FROM engines"), "21");
  EXPECT_EQ(row_of(db, more.id).at("status"), "Running");
}

TEST(StateStore, DaemonRefusesToStartOnAStoreFromANewerEcm) {
  EcmProcess ecm({}, false);
  fs::create_directories(ecm.state_dir());
  const auto db_path = ecm.state_dir() / "ecm.db";
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db_path.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "CREATE TABLE future (x); PRAGMA user_version = 99;", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(raw);
  const auto before = bytes_of(db_path);

  const auto r = ecm.start_expecting_failure();
  EXPECT_NE(r.exit_code, 0) << r.err;
  EXPECT_NE(r.exit_code, -1000) << "the daemon started anyway";
  EXPECT_NE(r.err.find("schema version 99"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(db_path.string()), std::string::npos) << r.err;
  EXPECT_TRUE(bytes_of(db_path) == before) << "the refused file was modified";
  EXPECT_FALSE(fs::exists(ecm.state_dir() / "ecm.address")) << "the daemon listened";
}

}  // namespace
}  // namespace ecm::itest
