// Heartbeat timeout and per-plugin launch timeout, set by the administrator in the [ecm] table of
// the plugin's config file; and `ecmctl launch --timeout`.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "ecm_harness.hpp"

namespace ecm::itest {
namespace {

EcmOptions shell_with(const std::string& ecm_table) {
  EcmOptions o;
  o.shell_toml = "[ecm]\n" + ecm_table;
  o.stop_grace = "2s";
  return o;
}

const std::string kBeatForever =
    "while true; do \"$ECM_CTL\" callback --heartbeat >/dev/null || exit 9; sleep 0.15; done";

}  // namespace

TEST(Heartbeat, SilentEngineIsReportedUnhealthyThenStoppedAndFailed) {
  EcmProcess ecm(shell_with("heartbeat_timeout = \"700ms\"\n"));
  auto e = ecm.launch(shell_request("alice", "sleep 600"));
  ASSERT_EQ(e.status, api::EngineStatus::RUNNING);
  EXPECT_FALSE(e.__isset.unhealthy_reason);
  auto sick = ecm.wait_for_status(
      e.id, [](const api::EngineConn& c) { return c.__isset.unhealthy_reason; }, 5s);
  EXPECT_NE(sick.unhealthy_reason.find("no heartbeat for"), std::string::npos);
  EXPECT_EQ(sick.status, api::EngineStatus::RUNNING) << "unhealthy first, not stopped at once";
  auto ended = ecm.wait_for_status(e.id, api::EngineStatus::FAILED, 10s);
  EXPECT_EQ(ended.status, api::EngineStatus::FAILED);
  EXPECT_EQ(ended.stop_reason, "heartbeat lost");
  EXPECT_NE(ended.failure_reason.find("heartbeat lost"), std::string::npos) << ended.failure_reason;
  EXPECT_TRUE(wait_group_gone(e.pid));
  api::NodeResources res;
  ecm.client().getResources(res);
  EXPECT_EQ(res.used.instances, 0);
}

TEST(Heartbeat, BeatingEngineStaysHealthy) {
  EcmProcess ecm(shell_with("heartbeat_timeout = \"700ms\"\n"));
  auto e = ecm.launch(shell_request("alice", kBeatForever));
  std::this_thread::sleep_for(2500ms);  // more than three timeouts: it must still be there
  api::EngineConn now;
  ecm.client().getEngineConn(now, e.id);
  EXPECT_EQ(now.status, api::EngineStatus::RUNNING) << read_file(e.log_dir + "/stderr");
  EXPECT_FALSE(now.__isset.unhealthy_reason);
}

TEST(Heartbeat, ResumingHeartbeatsClearUnhealthy) {
  EcmProcess ecm(shell_with("heartbeat_timeout = \"800ms\"\n"));
  auto e = ecm.launch(shell_request("alice", "sleep 1.1; " + kBeatForever));
  auto sick = ecm.wait_for_status(
      e.id, [](const api::EngineConn& c) { return c.__isset.unhealthy_reason; }, 5s);
  ASSERT_TRUE(sick.__isset.unhealthy_reason);
  auto well = ecm.wait_for_status(
      e.id, [](const api::EngineConn& c) { return !c.__isset.unhealthy_reason; }, 5s);
  EXPECT_FALSE(well.__isset.unhealthy_reason);
  EXPECT_EQ(well.status, api::EngineStatus::RUNNING);
}

TEST(Heartbeat, PluginLaunchTimeoutFromTheEcmTable) {
  EcmProcess ecm(shell_with("launch_timeout = \"700ms\"\n"));
  auto r = shell_request("alice", "sleep 600");
  r.properties["ready_when"] = "callback";
  auto e = ecm.launch(r);
  auto ended = ecm.wait_for_status(e.id, api::EngineStatus::FAILED, 10s);
  EXPECT_NE(ended.failure_reason.find("not ready after 700ms"), std::string::npos)
      << ended.failure_reason;
}

TEST(Heartbeat, UnknownKeyOrBadValueInTheEcmTableRefusesThePlugin) {
  for (const std::string table : {"heartbeat_timeout = \"soon\"\n", "restart = \"always\"\n"}) {
    EcmProcess ecm(shell_with(table), /*start=*/false);
    auto r = ecm.start_expecting_failure();
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("[ecm]"), std::string::npos) << r.err;
  }
}

TEST(CtlLaunchTimeout, TimeoutFlagFailsAnEngineNotReadyInTime) {
  EcmProcess ecm;
  const auto r =
      ecm.run_ecmctl({"launch", "shell", "--user", "alice", "--property", "command=sleep 600",
                      "--property", "ready_when=callback", "--timeout", "800ms", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto id = std::string(boost::json::parse(r.out).as_object().at("id").as_string());
  auto ended = ecm.wait_for_status(id, api::EngineStatus::FAILED, 10s);
  EXPECT_NE(ended.failure_reason.find("not ready after 800ms"), std::string::npos)
      << ended.failure_reason;
  for (const std::string bad : {"soon", "0s", "-1s"}) {
    const auto refused = ecm.run_ecmctl(
        {"launch", "shell", "--user", "alice", "--property", "command=true", "--timeout", bad});
    EXPECT_EQ(refused.exit_code, 2) << bad;
    EXPECT_NE(refused.err.find("--timeout"), std::string::npos) << refused.err;
  }
}

}  // namespace ecm::itest
