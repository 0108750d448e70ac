// A config reload (SIGHUP): which changed keys a running ECM applies and which need a restart
// (config/config_reload.hpp), and the services' setters behind the live ones.
#include "config/config_reload.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>

#include "services/ecm_health_service.hpp"
#include "services/engine_conn_cleanup_service.hpp"

using namespace ecm;
using namespace ecm::host;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

EcmConfig parse(const std::string& text) {
  return parse_config(text, "test.toml", "/etc/ecm");
}

// For every key a reload knows: a config that differs from the defaults by that key alone.
const std::map<std::string, std::string>& one_key_configs() {
  static const std::map<std::string, std::string> m = {
      {"server.listen", "[server]\nlisten = \"127.0.0.1:9999\""},
      {"server.callback_listen", "[server]\ncallback_listen = \"127.0.0.1:9998\""},
      {"server.io_threads", "[server]\nio_threads = 5"},
      {"server.tls_cert/tls_key/tls_client_ca",
       "[server]\ntls_cert = \"ecm.pem\"\ntls_key = \"ecm.key\"\ntls_client_ca = \"ca.pem\""},
      {"server.max_message_size", "[server]\nmax_message_size = \"1MiB\""},
      {"paths.work_root", "[paths]\nwork_root = \"/srv/work\""},
      // (The cache dir follows the state dir unless set: kept where it was.)
      {"paths.state_dir", "[paths]\nstate_dir = \"/srv/state\"\n[cache]\ndir = \"state/cache\""},
      {"plugins.dir", "[plugins]\ndir = \"/srv/plugins\""},
      {"plugins.conf_dir", "[plugins]\nconf_dir = \"/srv/plugin-conf\""},
      {"plugins.enabled", "[plugins]\nenabled = [\"shell\"]"},
      {"plugins.watch", "[plugins]\nwatch = true"},
      {"plugins.watch_debounce", "[plugins]\nwatch_debounce = \"2s\""},
      {"plugins.call_timeout", "[plugins]\ncall_timeout = \"5s\""},
      {"engines.boot_id_file", "[engines]\nboot_id_file = \"/tmp/boot-id\""},
      {"events.queue_capacity", "[events]\nqueue_capacity = 100"},
      {"cache.dir", "[cache]\ndir = \"/srv/cache\""},
      {"cache.max_size", "[cache]\nmax_size = \"1GiB\""},
      {"localization.allow_unverified", "[localization]\nallow_unverified = true"},
      {"localization.max_unpacked_size", "[localization]\nmax_unpacked_size = \"1GiB\""},
      {"localization.max_archive_entries", "[localization]\nmax_archive_entries = 7"},
      {"engines.stop_grace", "[engines]\nstop_grace = \"3s\""},
      {"engines.stop_on_shutdown",
       "[engines]\nstop_on_shutdown = " +
           std::string(EcmConfig{}.stop_on_shutdown ? "false" : "true")},
      {"engines.launch_timeout", "[engines]\nlaunch_timeout = \"7s\""},
      {"engines.retention", "[engines]\nretention = \"1h\""},
      {"resources.memory", "[resources]\nmemory = \"7777MiB\""},
      {"resources.cores", "[resources]\ncores = 977"},
      {"resources.instances", "[resources]\ninstances = 3"},
      {"resources.protected_memory", "[resources]\nprotected_memory = \"1GiB\""},
      {"resources.protected_cores", "[resources]\nprotected_cores = 1"},
      {"resources.engine_memory", "[resources]\nengine_memory = \"100MiB\""},
      {"resources.engine_cores", "[resources]\nengine_cores = 1"},
      {"users.run_as", "[users]\nrun_as = \"ecm\""},
      {"users.allow", "[users]\nallow = [\"alice\"]"},
      {"users.deny", "[users]\ndeny = [\"bob\"]"},
      {"users.allow_root", "[users]\nallow_root = true"},
      {"users.min_uid", "[users]\nmin_uid = 500"},
      {"ports.host", "[ports]\nhost = \"0.0.0.0\""},
      {"ports.range", "[ports]\nrange = \"31000-31999\""},
      {"cleanup.interval", "[cleanup]\ninterval = \"5s\""},
      {"cleanup.disk_high_watermark", "[cleanup]\ndisk_high_watermark = \"95%\""},
      {"cleanup.disk_low_watermark", "[cleanup]\ndisk_low_watermark = \"70%\""},
      {"logs.rotate_size", "[logs]\nrotate_size = \"1MiB\""},
      {"logs.rotate_keep", "[logs]\nrotate_keep = 2"},
      {"logs.rotate_check_interval", "[logs]\nrotate_check_interval = \"1s\""},
      {"logs.max_read_lines", "[logs]\nmax_read_lines = 10"},
      {"health.sample_interval", "[health]\nsample_interval = \"1s\""},
      {"health.cpu_overload_percent", "[health]\ncpu_overload_percent = 50"},
      {"health.memory_min_available_percent", "[health]\nmemory_min_available_percent = 20"},
      {"health.launch_failures_unhealthy", "[health]\nlaunch_failures_unhealthy = 0"},
      {"health.proc_meminfo", "[health]\nproc_meminfo = \"/tmp/meminfo\""},
      {"health.proc_stat", "[health]\nproc_stat = \"/tmp/stat\""},
      {"health.proc_loadavg", "[health]\nproc_loadavg = \"/tmp/loadavg\""},
      {"metrics.listen", "[metrics]\nlisten = \"127.0.0.1:0\""},
      {"log.level", "[log]\nlevel = \"debug\""},
      {"rm.address", "[rm]\naddress = \"127.0.0.1:9200\""},
      {"rm.report_interval", "[rm]\nreport_interval = \"1s\""},
      {"rm.labels", "[rm]\nlabels = [\"zone=a\"]"},
      {"rm.ecm_id", "[rm]\necm_id = \"node-1\""},
      {"rm.advertise_address", "[rm]\nadvertise_address = \"10.0.0.7:9101\""},
  };
  return m;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

TEST(ConfigReload, TheSameConfigChangesNothing) {
  const auto shipped = load_config(std::string(ECM_SOURCE_DIR) + "/conf/ecm.toml");
  const auto again = load_config(std::string(ECM_SOURCE_DIR) + "/conf/ecm.toml");
  const auto c = classify_config_changes(shipped, again);
  EXPECT_TRUE(c.empty()) << join_keys(c.live) << " / " << join_keys(c.restart);
  EXPECT_TRUE(classify_config_changes(parse(""), parse("")).empty());
}

TEST(ConfigReload, EveryKeyIsNamedAloneAndClassifiedOnce) {
  auto live = live_config_keys();
  auto restart = restart_config_keys();
  std::set<std::string> all(live.begin(), live.end());
  all.insert(restart.begin(), restart.end());
  EXPECT_EQ(all.size(), live.size() + restart.size()) << "a key is both live and restart";
  // The table above tries every key, and nothing else.
  std::set<std::string> tried;
  for (const auto& [key, text] : one_key_configs())
    tried.insert(key);
  EXPECT_EQ(tried, all);

  const auto base = parse("");
  for (const auto& [key, text] : one_key_configs()) {
    SCOPED_TRACE(key + ": " + text);
    const auto c = classify_config_changes(base, parse(text));
    const bool is_live = contains(live, key);
    EXPECT_EQ(c.live, is_live ? std::vector<std::string>{key} : std::vector<std::string>{});
    EXPECT_EQ(c.restart, is_live ? std::vector<std::string>{} : std::vector<std::string>{key});
  }
}

TEST(ConfigReload, TheLiveKeysAreTheOnesTheDaemonApplies) {
  // The README's table and EcmDaemon::reload both rely on this list: a change here is a change
  // of what the daemon must apply.
  EXPECT_EQ(live_config_keys(),
            (std::vector<std::string>{
                "engines.stop_grace", "engines.stop_on_shutdown", "engines.launch_timeout",
                "engines.retention", "resources.engine_memory", "resources.engine_cores",
                "cleanup.interval", "cleanup.disk_high_watermark", "cleanup.disk_low_watermark",
                "health.sample_interval", "health.cpu_overload_percent",
                "health.memory_min_available_percent", "health.launch_failures_unhealthy",
                "health.proc_meminfo", "health.proc_stat", "health.proc_loadavg", "log.level"}));
}

TEST(ConfigReload, SeveralChangesAreListedInTheFilesOrder) {
  const auto c = classify_config_changes(parse(""), parse(R"(
[server]
listen = "127.0.0.1:1"
[paths]
work_root = "/elsewhere"
[health]
memory_min_available_percent = 30
[log]
level = "warn"
)"));
  EXPECT_EQ(c.live, (std::vector<std::string>{"health.memory_min_available_percent", "log.level"}));
  EXPECT_EQ(c.restart, (std::vector<std::string>{"server.listen", "paths.work_root"}));
  EXPECT_EQ(join_keys(c.restart), "server.listen, paths.work_root");
  EXPECT_EQ(join_keys({}), "-");
}

TEST(ConfigReload, AFieldNoKeyNamesIsReportedAsNeedingARestart) {
  const auto base = parse("");
  auto next = base;
  next.engine_default.instances = 2;  // no key sets it: stands for a key missing from the table
  const auto c = classify_config_changes(base, next);
  EXPECT_TRUE(c.live.empty());
  EXPECT_EQ(c.restart, std::vector<std::string>{kUnnamedConfigKeys});
  // Where the file was read from is not a key.
  next = base;
  next.source = "/elsewhere/ecm.toml";
  EXPECT_TRUE(classify_config_changes(base, next).empty());
}

TEST(ConfigReload, AdoptingTakesTheLiveKeysOnly) {
  auto running = parse("");
  const auto next = parse(R"(
[server]
listen = "127.0.0.1:1"
[engines]
retention = "1h"
[log]
level = "error"
)");
  adopt_live_keys(running, next);
  EXPECT_EQ(running.retention, 1h);
  EXPECT_EQ(running.log_level, "error");
  EXPECT_EQ(running.listen_port, EcmConfig{}.listen_port) << "a restart key keeps its old value";
  // So the next reload of the same file names the restart key again, and nothing live.
  const auto c = classify_config_changes(running, next);
  EXPECT_TRUE(c.live.empty());
  EXPECT_EQ(c.restart, std::vector<std::string>{"server.listen"});
}

// The setters behind the live keys.

TEST(ConfigReload, HealthThresholdsChangeAtTheNextSample) {
  const fs::path dir =
      fs::temp_directory_path() / ("ecm-reload-health-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  // 10% of the memory available.
  std::ofstream(dir / "meminfo")
      << "MemTotal: 1000000 kB\nMemFree: 1 kB\nMemAvailable: 100000 kB\n";
  std::ofstream(dir / "stat") << "cpu  100 0 100 800 0 0 0 0 0 0\n";
  std::ofstream(dir / "loadavg") << "0.50 0.40 0.30 1/100 1234\n";
  HealthSettings s;
  s.sample_interval = 0ms;
  s.proc_meminfo = dir / "meminfo";
  s.proc_stat = dir / "stat";
  s.proc_loadavg = dir / "loadavg";
  s.thresholds.memory_min_available_percent = 5;
  EngineConnListService engines;
  core::ResourceLedger resources{{8ull << 30, 8, 10}, {}};
  PluginCallStats plugins;
  ECMMetricsService metrics{engines, resources, &plugins};
  boost::asio::io_context io;
  ECMHealthService health(s, metrics, nullptr, io);
  EXPECT_EQ(health.sample().health, core::NodeHealth::kHealthy);
  EXPECT_EQ(health.sample().health, core::NodeHealth::kHealthy);

  s.thresholds.memory_min_available_percent = 20;  // 10% is now too little
  health.update_settings(s);
  health.sample();
  const auto r = health.sample();
  EXPECT_EQ(r.health, core::NodeHealth::kStockAvailable);
  ASSERT_FALSE(r.reasons.empty());

  s.thresholds.memory_min_available_percent = 5;
  health.update_settings(s);
  EXPECT_EQ(health.sample().health, core::NodeHealth::kHealthy);
  fs::remove_all(dir);
}

TEST(ConfigReload, CleanupRetentionAndWatermarksChangeAtTheNextPass) {
  const fs::path root =
      fs::temp_directory_path() / ("ecm-reload-cleanup-" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "alice" / "ec-1");
  EngineConnListService engines;
  core::EngineConn e;
  e.id = "ec-1";
  e.user = "alice";
  e.engine_type = "shell";
  e.work_dir = (root / "alice" / "ec-1").string();
  engines.add_unless_ticket_known(e);
  ASSERT_TRUE(engines.transition("ec-1", core::EngineStatus::kRunning));
  ASSERT_TRUE(engines.finish("ec-1", core::ExitStatus{0, std::nullopt}));
  engines.update("ec-1", [](core::EngineConn& r) { r.ended_at = core::Clock::now() - 2h; });

  CleanupSettings s;
  s.work_root = root;
  s.retention = 3h;
  s.interval = 1h;
  s.high_watermark_percent = 100;
  s.low_watermark_percent = 99;
  boost::asio::io_context io;
  EngineConnCleanupService cleanup(s, engines, io);
  EXPECT_EQ(cleanup.run_once().removed_by_retention, 0u) << "ended 2h ago, kept 3h";

  cleanup.update_policy(1h, 1h, 98, 97);
  EXPECT_EQ(cleanup.status().high_watermark_percent, 98);
  EXPECT_EQ(cleanup.status().low_watermark_percent, 97);
  EXPECT_EQ(cleanup.run_once().removed_by_retention, 1u) << "kept 1h now";
  EXPECT_FALSE(fs::exists(root / "alice" / "ec-1"));
  cleanup.stop();
  fs::remove_all(root);
}
