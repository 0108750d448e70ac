// The clean-up of ended engines on the real daemon: retention, the disk watermark, live engines
// untouched, and the disk as `ecmctl resources` shows it.
#include <gtest/gtest.h>
#include <sys/statvfs.h>

#include <boost/json.hpp>

#include <chrono>
#include <filesystem>
#include <string>

#include "ecm_harness.hpp"

namespace ecm::itest {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

// Adds `lines` to the harness's [engines] table (a TOML table cannot be opened twice, so
// extra_toml cannot add to it); before start().
void add_to_engines_table(EcmProcess& ecm, const std::string& lines) {
  auto text = read_file(ecm.config_path());
  const std::string table = "[engines]\n";
  const auto at = text.find(table);
  ASSERT_NE(at, std::string::npos) << text;
  text.insert(at + table.size(), lines);
  ecm.write_config(text);
}

bool known(EcmProcess& ecm, const std::string& id) {
  auto error = ecm_error_of([&] {
    api::EngineConn e;
    ecm.client().getEngineConn(e, id);
  });
  if (error && error->code != api::ErrorCode::NOT_FOUND) ADD_FAILURE() << error->message;
  return !error;
}

bool listed(EcmProcess& ecm, const std::string& id) {
  std::vector<api::EngineConn> all;
  ecm.client().listEngineConns(all, api::EngineConnFilter());
  for (const auto& e : all) {
    if (e.id == id) return true;
  }
  return false;
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// `ecmctl resources --json`'s disk object.
json::object disk_json(EcmProcess& ecm) {
  const auto r = ecm.run_ecmctl({"resources", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto v = json::parse(r.out);
  if (!v.is_object() || !v.as_object().contains("disk") || !v.as_object().at("disk").is_object()) {
    ADD_FAILURE() << "no disk object in " << r.out;
    return {};
  }
  return v.as_object().at("disk").as_object();
}

TEST(Cleanup, AnEndedEngineGoesAfterItsRetentionARunningOneStays) {
  EcmOptions o;
  o.extra_toml = "[cleanup]\ninterval = \"200ms\"\n";
  EcmProcess ecm(o, false);
  add_to_engines_table(ecm, "retention = \"1s\"\n");
  ecm.start();

  const auto running = ecm.launch(shell_request("alice", "sleep 600"));
  ecm.wait_for_status(running.id, api::EngineStatus::RUNNING);
  const auto stopped = ecm.launch(shell_request("alice", "sleep 600"));
  ecm.wait_for_status(stopped.id, api::EngineStatus::RUNNING);
  api::StopRequest stop;
  stop.__set_engine_id(stopped.id);
  api::StopResult result;
  ecm.client().stopEngineConn(result, stop);
  const auto ended = ecm.wait_for_status(stopped.id, api::EngineStatus::SUCCESS);
  ASSERT_TRUE(ended.__isset.ended_at_ms);

  ASSERT_TRUE(eventually([&] { return !fs::exists(stopped.work_dir); }, 15s))
      << "the ended engine's work dir is still there";
  EXPECT_GE(now_ms() - ended.ended_at_ms, 1000) << "removed before its retention was over";
  EXPECT_TRUE(eventually([&] { return !known(ecm, stopped.id); }, 5s)) << "record still there";
  EXPECT_FALSE(listed(ecm, stopped.id));

  // The running engine, older than the retention, is untouched.
  EXPECT_GE(now_ms() - running.created_at_ms, 1000);
  EXPECT_TRUE(fs::exists(fs::path(running.work_dir) / "logs"));
  EXPECT_TRUE(listed(ecm, running.id));
  api::EngineConn still;
  ecm.client().getEngineConn(still, running.id);
  EXPECT_EQ(still.status, api::EngineStatus::RUNNING);

  // The disk as the clean-up service sees it.
  const auto disk = disk_json(ecm);
  ASSERT_FALSE(disk.empty());
  EXPECT_EQ(json::value_to<std::string>(disk.at("path")), ecm.work_root().string());
  EXPECT_GT(disk.at("total_bytes").as_int64(), 0);
  EXPECT_GT(disk.at("free_bytes").as_int64(), 0);
  const double used = disk.at("used_percent").as_double();
  EXPECT_GT(used, 0);
  EXPECT_LE(used, 100);
  EXPECT_EQ(disk.at("high_watermark_percent").as_double(), 90);
  EXPECT_EQ(disk.at("low_watermark_percent").as_double(), 80);
  EXPECT_EQ(disk.at("over_watermark").as_bool(), used > 90);
  EXPECT_EQ(disk.at("removed_by_retention").as_int64(), 1);
  EXPECT_EQ(disk.at("removed_by_watermark").as_int64(), 0);
  EXPECT_TRUE(disk.at("last_pass").is_string());

  const auto table = ecm.run_ecmctl({"resources"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("disk: " + ecm.work_root().string()), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("removed 1 by retention, 0 by watermark"), std::string::npos)
      << table.out;
}

TEST(Cleanup, OverTheDiskWatermarkEndedEnginesGoBeforeTheirRetention) {
  struct statvfs st {};
  ASSERT_EQ(::statvfs(fs::temp_directory_path().c_str(), &st), 0);
  if (st.f_blocks - st.f_bfree < st.f_blocks / 20) GTEST_SKIP() << "the disk is under 5% used";
  EcmOptions o;
  // The default retention (24h) would keep it; the disk is "over" a 2% high watermark.
  o.extra_toml =
      "[cleanup]\ninterval = \"200ms\"\ndisk_high_watermark = \"2%\"\n"
      "disk_low_watermark = \"1%\"\n";
  EcmProcess ecm(o);
  const auto running = ecm.launch(shell_request("alice", "sleep 600"));
  ecm.wait_for_status(running.id, api::EngineStatus::RUNNING);
  const auto done = ecm.launch(shell_request("alice", "echo bye"));
  ecm.wait_for_status(done.id, api::EngineStatus::SUCCESS);

  ASSERT_TRUE(eventually([&] { return !fs::exists(done.work_dir) && !known(ecm, done.id); }, 15s));
  EXPECT_TRUE(fs::exists(running.work_dir));
  EXPECT_TRUE(listed(ecm, running.id));
  const auto disk = disk_json(ecm);
  ASSERT_FALSE(disk.empty());
  EXPECT_TRUE(disk.at("over_watermark").as_bool());
  EXPECT_EQ(disk.at("removed_by_watermark").as_int64(), 1);
  EXPECT_EQ(disk.at("removed_by_retention").as_int64(), 0);
  const auto table = ecm.run_ecmctl({"resources"});
  EXPECT_NE(table.out.find("OVER THE HIGH WATERMARK"), std::string::npos) << table.out;
}

}  // namespace
}  // namespace ecm::itest
