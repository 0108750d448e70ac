// SIGHUP on the real daemon: the config file is read again; live keys take effect at once (the
// health thresholds, the engine default for new launches, the log level), keys that need a restart
// are named in a warning and keep their running values, and a file that does not load changes
// nothing.
#include <signal.h>

#include <fstream>
#include <regex>
#include <string>

#include <gtest/gtest.h>

#include "ecm_harness.hpp"

namespace ecm::itest {
namespace {

// The daemon reads its "/proc" files from <dir>/proc (relative to its config): memory as the test
// writes it, a /proc/stat that never moves.
const std::string kHealthToml =
    std::string("\n[health]\nmemory_min_available_percent = 5\n") + kFakeProcHealthKeys;

// A daemon whose node has 10% of its memory available (healthy while the threshold is 5%).
std::unique_ptr<EcmProcess> start_ecm() {
  EcmOptions o;
  o.extra_toml = kHealthToml;
  auto ecm = std::make_unique<EcmProcess>(o, false);
  write_fake_proc(*ecm, 10);
  ecm->start();
  return ecm;
}

api::NodeHealth::type health(EcmProcess& ecm) {
  api::HealthReport r;
  ecm.client().getHealthReport(r);
  return r.health;
}

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
    ++n;
  return n;
}

// Rewrites the config, sends SIGHUP, and waits for the daemon's log to show one more `outcome`
// line than before; returns the log written since the signal.
std::string reload(EcmProcess& ecm, const std::string& config, const std::string& outcome) {
  const auto before = ecm.daemon_stderr();
  ecm.write_config(config);
  EXPECT_EQ(::kill(ecm.pid(), SIGHUP), 0);
  EXPECT_TRUE(eventually([&] {
    return count(ecm.daemon_stderr(), outcome) > count(before, outcome);
  })) << "no '"
      << outcome << "' in:\n"
      << ecm.daemon_stderr();
  return ecm.daemon_stderr().substr(before.size());
}

std::string replaced(const std::string& text, const std::string& pattern, const std::string& with) {
  auto out = std::regex_replace(text, std::regex(pattern), with);
  EXPECT_NE(out, text) << "no " << pattern << " in the config";
  return out;
}

TEST(ConfigReload, SighupAppliesLiveKeysAndNamesThoseThatNeedARestart) {
  auto ecm = start_ecm();
  const auto original = read_file(ecm->config_path());
  EXPECT_EQ(health(*ecm), api::NodeHealth::HEALTHY);
  auto first = ecm->launch(shell_request("alice", "sleep 30"));
  const auto old_work_root = ecm->work_root().string();
  EXPECT_EQ(first.work_dir.rfind(old_work_root, 0), 0u) << first.work_dir;

  // Live: the memory threshold (10% available is now too little) and the engine default; restart:
  // the listen address and the work root.
  auto next =
      replaced(original, "memory_min_available_percent = 5", "memory_min_available_percent = 20");
  next = replaced(next, "listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:1\"");
  next = replaced(next, "work_root = \"([^\"]*)\"", "work_root = \"$1-moved\"");
  next += "\n[resources]\nengine_memory = \"100MiB\"\n";
  const auto log = reload(*ecm, next, "config reload: needs a restart");
  EXPECT_NE(log.find("config reload: applied resources.engine_memory, "
                     "health.memory_min_available_percent"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("needs a restart: server.listen, paths.work_root"), std::string::npos) << log;

  // Live keys took effect: two samples under the new threshold, and the next launch's default.
  EXPECT_TRUE(eventually([&] { return health(*ecm) == api::NodeHealth::STOCK_AVAILABLE; }))
      << ecm->daemon_stderr();
  write_fake_proc(*ecm, 50);  // enough memory again for the launch below
  ASSERT_TRUE(eventually([&] { return health(*ecm) == api::NodeHealth::HEALTHY; }));
  auto second = ecm->launch(shell_request("alice", "sleep 30"));
  EXPECT_EQ(second.memory_bytes, 100ll << 20);
  EXPECT_NE(first.memory_bytes, second.memory_bytes);

  // Restart keys did not: the same port serves (this connection is new), the same work root.
  EXPECT_EQ(second.work_dir.rfind(old_work_root + "/", 0), 0u) << second.work_dir;
  EXPECT_FALSE(std::filesystem::exists(old_work_root + "-moved"));

  // The same file again: the restart keys are named again (still not applied), nothing is live.
  const auto again = reload(*ecm, next, "config reload: needs a restart");
  EXPECT_EQ(again.find("config reload: applied"), std::string::npos) << again;
}

TEST(ConfigReload, AFileThatDoesNotLoadChangesNothing) {
  auto ecm = start_ecm();
  const auto original = read_file(ecm->config_path());
  EXPECT_EQ(health(*ecm), api::NodeHealth::HEALTHY);

  // A stricter threshold in a file with a misspelt key: refused whole, named with its line.
  auto bad = replaced(original, "memory_min_available_percent = 5",
                      "memory_min_available_percent = 20\nsample_intervall = \"1s\"");
  const auto log = reload(*ecm, bad, "config reload refused, nothing changed");
  EXPECT_NE(log.find("health.sample_intervall: unknown key"), std::string::npos) << log;
  EXPECT_EQ(log.find("config reload: applied"), std::string::npos) << log;
  // Several samples later the old threshold still holds.
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(health(*ecm), api::NodeHealth::HEALTHY);

  // Not TOML at all, then a file that is gone: the same.
  reload(*ecm, "[health\n", "config reload refused, nothing changed");
  std::filesystem::remove(ecm->config_path());
  ASSERT_EQ(::kill(ecm->pid(), SIGHUP), 0);
  EXPECT_TRUE(eventually(
      [&] { return count(ecm->daemon_stderr(), "config reload refused, nothing changed") == 3; }));
  EXPECT_EQ(health(*ecm), api::NodeHealth::HEALTHY);
  EXPECT_NE(ecm->launch(shell_request("alice", "sleep 30")).id, "") << "still serving";

  // The same change in a good file is applied: the refusals were about the file.
  reload(
      *ecm,
      replaced(original, "memory_min_available_percent = 5", "memory_min_available_percent = 20"),
      "config reload: applied health.memory_min_available_percent");
  EXPECT_TRUE(eventually([&] { return health(*ecm) == api::NodeHealth::STOCK_AVAILABLE; }));
}

TEST(ConfigReload, LogLevelChangesAtOnce) {
  auto ecm = start_ecm();
  const auto original = read_file(ecm->config_path());
  auto loud = ecm->launch(shell_request("alice", "sleep 30"));
  EXPECT_TRUE(eventually([&] { return count(ecm->daemon_stderr(), loud.id) > 0; }));

  // warn: the info lines of a launch are not written any more.
  reload(*ecm, replaced(original, "level = \"info\"", "level = \"warn\""),
         "config reload: applied log.level");
  auto quiet = ecm->launch(shell_request("alice", "sleep 30"));
  ecm->wait_for_status(quiet.id, api::EngineStatus::RUNNING);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(count(ecm->daemon_stderr(), quiet.id), 0u) << ecm->daemon_stderr();

  // Back to info: the line saying so is written (at the louder level), and launches are again.
  reload(*ecm, original, "config reload: applied log.level");
  auto again = ecm->launch(shell_request("alice", "sleep 30"));
  EXPECT_TRUE(eventually([&] { return count(ecm->daemon_stderr(), again.id) > 0; }))
      << ecm->daemon_stderr();

  // Nothing changed: said so.
  reload(*ecm, original, "has no change");
}

}  // namespace
}  // namespace ecm::itest
