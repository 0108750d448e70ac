// A misbehaving plugin is contained; a bad plugin or config stops the daemon's start clearly.
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "ecm/sdk/version.hpp"
#include "ecm_harness.hpp"

namespace ecm::itest {
namespace {

namespace fs = std::filesystem;

bool found_named(const fs::path& root, const std::string& name) {
  for (const auto& p : tree(root)) {
    if (p.filename() == name) return true;
  }
  return false;
}

TEST(Plugins, Launch_MisbehavingPluginFailsTypedAndTheDaemonKeepsServing) {
  EcmOptions o;
  o.test_plugins = {"misbehaving"};
  o.enabled = std::vector<std::string>{"shell", "misbehaving"};
  EcmProcess ecm(o);

  const std::vector<std::pair<std::string, std::string>> modes = {
      {"throw", "build exploded"},
      {"throw_int", "non-standard"},
      {"throw_validate", "validate exploded"},
      {"garbage", "absolute"},
      {"escape", "escapes"},
      {"refuse", "backend unavailable"},
      {"throw_ports", "ports threw: ports exploded"},
      {"bad_ports", "port"},
      {"throw_readiness", "readiness threw: readiness exploded"},
  };
  for (const auto& [mode, expected] : modes) {
    SCOPED_TRACE("mode " + mode);
    api::LaunchRequest req;
    req.__set_user("alice");
    req.__set_engine_type("misbehaving");
    req.__set_properties({{"mode", mode}});
    auto error = ecm_error_of([&] {
      api::EngineConn e;
      ecm.client().launchEngineConn(e, req);
      if (e.__isset.pid && e.pid > 0) ecm.track(e.pid);
    });
    ASSERT_TRUE(error.has_value()) << "accepted";
    EXPECT_EQ(error->code, api::ErrorCode::PLUGIN_FAILED) << error->message;
    EXPECT_NE(error->message.find(expected), std::string::npos) << error->message;

    // The daemon is still there and still launches.
    const auto shell = ecm.launch(shell_request("bob", "sleep 600"));
    EXPECT_EQ(shell.status, api::EngineStatus::RUNNING);
  }
  // No failed launch left a process behind.
  std::vector<api::EngineConn> all;
  ecm.client().listEngineConns(all, api::EngineConnFilter{});
  for (const auto& e : all) {
    if (e.engine_type == "misbehaving") {
      EXPECT_EQ(e.status, api::EngineStatus::FAILED) << e.id;
      EXPECT_FALSE(e.__isset.pid && e.pid > 0) << e.id;
    }
  }

  api::LaunchRequest ok;
  ok.__set_user("alice");
  ok.__set_engine_type("misbehaving");
  ok.__set_properties({{"mode", "ok"}});
  const auto e = ecm.launch(ok);
  EXPECT_EQ(e.status, api::EngineStatus::RUNNING);
  EXPECT_EQ(e.plugin_name, "misbehaving");
  EXPECT_TRUE(group_alive(e.pid));
  // The plugin's spec is what runs (the kernel fills cmdline in a moment after the exec).
  std::string argv0;
  EXPECT_TRUE(eventually([&] {
    std::ifstream cmdline("/proc/" + std::to_string(e.pid) + "/cmdline");
    argv0.clear();
    std::getline(cmdline, argv0, '\0');
    return argv0 == "/bin/sleep";
  })) << argv0;

  // Nothing escaped the work root: no `evil` anywhere in the daemon's dir or above it.
  EXPECT_FALSE(found_named(ecm.dir(), "evil"));
  EXPECT_FALSE(fs::exists(ecm.dir().parent_path() / "evil"));
}

TEST(Plugins, Launch_AHangingPluginCallTimesOutAndTheDaemonKeepsServing) {
  EcmOptions o;
  o.test_plugins = {"misbehaving"};
  o.enabled = std::vector<std::string>{"shell", "misbehaving"};
  o.plugin_toml["misbehaving"] = "[ecm]\ncall_timeout = \"500ms\"\n";
  EcmProcess ecm(o);
  for (const std::string mode : {"hang", "hang_validate", "hang_ports"}) {
    SCOPED_TRACE(mode);
    api::LaunchRequest req;
    req.__set_user("alice");
    req.__set_engine_type("misbehaving");
    req.__set_ticket_id("hang-" + mode);
    req.__set_properties({{"mode", mode}});
    const auto began = std::chrono::steady_clock::now();
    auto error = ecm_error_of([&] {
      api::EngineConn e;
      ecm.client().launchEngineConn(e, req);
    });
    const auto took = std::chrono::steady_clock::now() - began;
    ASSERT_TRUE(error.has_value()) << "accepted";
    EXPECT_EQ(error->code, api::ErrorCode::PLUGIN_FAILED) << error->message;
    EXPECT_NE(error->message.find("did not return within 500ms"), std::string::npos)
        << error->message;
    EXPECT_LT(took, 5s);
    // Nothing held: the resources are back, and other launches go on, even of the same plugin.
    api::NodeResources res;
    ecm.client().getResources(res);
    EXPECT_EQ(res.locked.instances, 0);
    EXPECT_EQ(ecm.launch(shell_request("bob", "sleep 600")).status, api::EngineStatus::RUNNING);
    api::LaunchRequest ok = req;
    ok.__set_ticket_id("ok-" + mode);
    ok.__set_properties({{"mode", "ok"}});
    EXPECT_EQ(ecm.launch(ok).status, api::EngineStatus::RUNNING);
  }
  // A clean stop is not held up by the calls still hanging in the plugin.
  const auto began = std::chrono::steady_clock::now();
  EXPECT_EQ(ecm.terminate_and_wait(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - began, 15s);
}

void expect_start_refused(EcmProcess& ecm, const std::vector<std::string>& in_stderr) {
  const auto r = ecm.start_expecting_failure();
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.exit_code, -1000) << "the daemon did not exit: " << r.err;
  for (const auto& s : in_stderr)
    EXPECT_NE(r.err.find(s), std::string::npos) << s << " in " << r.err;
  EXPECT_FALSE(fs::exists(ecm.state_dir() / "ecm.address"));
}

EcmOptions with_test_plugin(const std::string& name) {
  EcmOptions o;
  o.test_plugins = {name};
  return o;
}

TEST(Startup, Start_WrongAbiPluginIsRefusedNamingBothAbis) {
  EcmProcess ecm(with_test_plugin("wrong_abi"), false);
  expect_start_refused(ecm, {"wrong_abi", "ABI " + std::to_string(::ecm::sdk::kAbiMajor + 1) + ".0",
                             "ABI " + std::to_string(::ecm::sdk::kAbiMajor) + "." +
                                 std::to_string(::ecm::sdk::kAbiMinor)});
}

TEST(Startup, Start_LibraryWithoutDescriptorIsRefused) {
  EcmProcess ecm(with_test_plugin("no_symbol"), false);
  expect_start_refused(ecm, {"no_symbol", "ecm_plugin_descriptor", "not an ECM plugin"});
}

TEST(Startup, Start_PluginWhoseFactoryThrowsIsRefusedWithItsMessage) {
  EcmProcess ecm(with_test_plugin("throws_on_create"), false);
  expect_start_refused(ecm, {"throws_on_create", "license server unreachable"});
}

TEST(Startup, Start_MissingPluginFileIsRefused) {
  EcmOptions o;
  o.enabled = std::vector<std::string>{"shell", "ghost"};
  EcmProcess ecm(o, false);
  expect_start_refused(ecm, {"ghost", "file not found"});
}

TEST(Startup, Start_UnknownConfigKeyIsRefusedNamingFileLineAndKey) {
  EcmProcess ecm({}, false);
  ecm.write_config("[server]\nlisten = \"127.0.0.1:0\"\nlisen_typo = \"x\"\n");
  expect_start_refused(ecm, {ecm.config_path().string() + ":3: server.lisen_typo: unknown key"});
}

TEST(Startup, Start_UnknownTopLevelTableIsRefused) {
  EcmProcess ecm({}, false);
  ecm.write_config("[server]\nlisten = \"127.0.0.1:0\"\n\n[sever]\nlisten = 1\n");
  expect_start_refused(ecm, {ecm.config_path().string(), "sever", "unknown key"});
}

TEST(Startup, Start_WrongValueTypeIsRefusedNamingFileLineAndKey) {
  EcmProcess ecm({}, false);
  ecm.write_config("[server]\nlisten = \"127.0.0.1:0\"\nio_threads = \"two\"\n");
  expect_start_refused(ecm,
                       {ecm.config_path().string() + ":3: server.io_threads: expected an integer"});
}

TEST(Startup, Start_DurationWithoutUnitIsRefusedNamingFileLineAndKey) {
  EcmProcess ecm({}, false);
  ecm.write_config("[server]\nlisten = \"127.0.0.1:0\"\n\n[engines]\nstop_grace = \"10\"\n");
  expect_start_refused(ecm, {ecm.config_path().string() + ":5: engines.stop_grace: '10'"});
}

TEST(Startup, Start_GoodConfigOfTheSameShapeStarts) {
  // The control of the refusals above: the generated config with every plugin present starts.
  EcmProcess ecm;
  std::vector<api::EngineConn> all;
  ecm.client().listEngineConns(all, api::EngineConnFilter{});
  EXPECT_TRUE(all.empty());
  EXPECT_TRUE(fs::exists(ecm.state_dir() / "ecm.address"));
}

}  // namespace
}  // namespace ecm::itest
