// `ecmctl callback`: an engine that speaks no Thrift reports through the CLI the ECM gives it
// (ECM_CTL), with its identity taken from the environment.
#include <gtest/gtest.h>

#include "ecm_harness.hpp"

namespace ecm::itest {
namespace {

api::LaunchRequest callback_engine(const std::string& script) {
  auto r = shell_request("alice", script);
  r.properties["ready_when"] = "callback";
  return r;
}

}  // namespace

TEST(CtlCallback, ShellEngineReportsUnlockAddressAndMessage) {
  EcmProcess ecm;
  auto e = ecm.launch(
      callback_engine("sleep 0.3; \"$ECM_CTL\" callback --status Unlock --address 127.0.0.1:7001 "
                      "--message 'warm and ready' && sleep 600"));
  auto ready = ecm.wait_for_status(e.id, api::EngineStatus::UNLOCK, 10s);
  ASSERT_EQ(ready.status, api::EngineStatus::UNLOCK) << read_file(e.log_dir + "/stderr");
  EXPECT_EQ(ready.service_address, "127.0.0.1:7001");
  EXPECT_EQ(ready.last_message, "warm and ready");
  EXPECT_NE(read_file(e.log_dir + "/stdout").find("reported for " + e.id), std::string::npos);
}

TEST(CtlCallback, HeartbeatIsRecorded) {
  EcmProcess ecm;
  auto e = ecm.launch(shell_request("alice", "\"$ECM_CTL\" callback --heartbeat && sleep 600"));
  auto beat = ecm.wait_for_status(e.id, [](const api::EngineConn& c) {
    return c.__isset.last_heartbeat_ms && c.last_heartbeat_ms > 0;
  });
  EXPECT_GT(beat.last_heartbeat_ms, 0) << read_file(e.log_dir + "/stderr");
}

TEST(CtlCallback, WrongTokenIsRefusedAndChangesNothing) {
  EcmProcess ecm;
  auto e = ecm.launch(callback_engine(
      "ECM_ENGINE_TOKEN=forged \"$ECM_CTL\" callback --status Unlock; echo \"exit=$?\"; "
      "sleep 600"));
  eventually([&] { return read_file(e.log_dir + "/stdout").find("exit=") != std::string::npos; });
  EXPECT_NE(read_file(e.log_dir + "/stdout").find("exit=1"), std::string::npos);
  EXPECT_NE(read_file(e.log_dir + "/stderr").find("PERMISSION_DENIED"), std::string::npos)
      << read_file(e.log_dir + "/stderr");
  api::EngineConn now;
  ecm.client().getEngineConn(now, e.id);
  EXPECT_EQ(now.status, api::EngineStatus::STARTING);
}

TEST(CtlCallback, OutsideAnEngineIsAUsageError) {
  EcmProcess ecm;
  // The test process has no ECM_ENGINE_ID: exit 2 with the reason on stderr, nothing on stdout.
  const auto r = ecm.run_ecmctl_raw({"callback", "--status", "Unlock"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("ECM_ENGINE_ID is not set"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());
  const auto nothing = ecm.run_ecmctl_raw({"callback"});
  EXPECT_EQ(nothing.exit_code, 2);
  EXPECT_NE(nothing.err.find("nothing to report"), std::string::npos) << nothing.err;
  const auto both = ecm.run_ecmctl_raw({"callback", "--heartbeat", "--status", "Idle"});
  EXPECT_EQ(both.exit_code, 2);
}

}  // namespace ecm::itest
