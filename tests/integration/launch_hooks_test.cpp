// Launch hooks (SDK 1.2, Linkis's ECMHook): a hook plugin adjusts the spec of every launch of the
// types it names, observes the result, and a failing hook fails the launch cleanly.
#include <gtest/gtest.h>

#include "ecm_harness.hpp"

namespace ecm::itest {
namespace {

EcmOptions with_hook(const std::string& hook_toml = "") {
  EcmOptions o;
  o.test_plugins = {"launch_hook"};
  if (!hook_toml.empty()) o.plugin_toml["launch_hook"] = hook_toml;
  return o;
}

void expect_nothing_held(EcmProcess& ecm) {
  api::NodeResources res;
  ecm.client().getResources(res);
  EXPECT_EQ(res.locked.instances, 0);
  EXPECT_EQ(res.used.instances, 0);
}

}  // namespace

TEST(LaunchHooks, BeforeLaunchAdjustsTheSpecAndAfterLaunchSeesThePid) {
  EcmProcess ecm(with_hook());
  auto e = ecm.launch(shell_request("alice", "echo hooked=$HOOKED_BY; sleep 600"));
  EXPECT_TRUE(eventually([&] {
    return read_file(e.log_dir + "/stdout") == "hooked=launch_hook\n";
  })) << read_file(e.log_dir + "/stdout");
  EXPECT_EQ(read_file(e.log_dir + "/hook_after_launch"), "started " + std::to_string(e.pid) + "\n");
}

TEST(LaunchHooks, AHookOnlyTouchesTheTypesItNames) {
  EcmProcess ecm(with_hook("types = [\"python\"]\n"));
  auto e = ecm.launch(shell_request("alice", "echo hooked=$HOOKED_BY; sleep 600"));
  EXPECT_TRUE(eventually([&] { return read_file(e.log_dir + "/stdout") == "hooked=\n"; }));
  EXPECT_FALSE(std::filesystem::exists(e.log_dir + "/hook_after_launch"));
}

TEST(LaunchHooks, ARefusingHookFailsTheLaunchWithItsReasonAndReleasesEverything) {
  EcmProcess ecm(with_hook());
  auto r = shell_request("alice", "sleep 600");
  r.__set_ticket_id("t-hook-refuse");
  r.properties["hook_refuse"] = "no Kerberos ticket for alice";
  auto err = ecm_error_of([&] { ecm.launch(r); });
  ASSERT_TRUE(err);
  EXPECT_EQ(err->code, api::ErrorCode::INVALID_REQUEST);
  EXPECT_NE(err->message.find("no Kerberos ticket for alice"), std::string::npos) << err->message;
  std::vector<api::EngineConn> all;
  ecm.client().listEngineConns(all, {});
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].status, api::EngineStatus::FAILED);
  EXPECT_EQ(all[0].pid, 0) << "nothing was spawned";
  EXPECT_NE(read_file(all[0].log_dir + "/hook_after_launch").find("failed: "), std::string::npos);
  expect_nothing_held(ecm);
}

TEST(LaunchHooks, AThrowingHookOrABadSpecFromAHookIsAPluginFailure) {
  EcmProcess ecm(with_hook());
  for (const std::string prop : {"hook_throw", "hook_escape"}) {
    auto r = shell_request("alice", "sleep 600");
    r.properties[prop] = "1";
    auto err = ecm_error_of([&] { ecm.launch(r); });
    ASSERT_TRUE(err) << prop;
    EXPECT_EQ(err->code, api::ErrorCode::PLUGIN_FAILED) << prop;
    EXPECT_NE(err->message.find("launch_hook"), std::string::npos) << err->message;
  }
  expect_nothing_held(ecm);
  // The daemon is unharmed.
  auto ok = ecm.launch(shell_request("alice", "sleep 600"));
  EXPECT_EQ(ok.status, api::EngineStatus::RUNNING);
}

}  // namespace ecm::itest
