#include "config/ecm_config.hpp"

#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "config/config_error.hpp"

using namespace ecm::host;
using namespace std::chrono_literals;

namespace {

EcmConfig parse(const std::string& text) {
  return parse_config(text, "test.toml", "/etc/ecm");
}

// Parses text that must fail; returns the error.
ConfigError parse_error(const std::string& text) {
  try {
    parse(text);
  } catch (const ConfigError& e) {
    return e;
  }
  ADD_FAILURE() << "accepted: " << text;
  return ConfigError("", 0, "", "");
}

}  // namespace

TEST(EcmConfig, ShippedConfigLoads) {
  auto c = load_config(std::string(ECM_SOURCE_DIR) + "/conf/ecm.toml");
  EXPECT_EQ(c.listen_host, "127.0.0.1");
  EXPECT_EQ(c.listen_port, 9101);
  EXPECT_EQ(c.enabled_plugins, std::vector<std::string>{"shell"});
  EXPECT_EQ(c.stop_grace, 10s);
  EXPECT_TRUE(c.plugin_dir.is_absolute());
}

TEST(EcmConfig, ValuesAndRelativePaths) {
  auto c = parse(R"(
[server]
listen = "0.0.0.0:0"
io_threads = 3
[paths]
work_root = "work"
state_dir = "/var/lib/ecm"
[plugins]
dir = "../plugins"
enabled = ["shell", "python"]
[engines]
stop_grace = "1500ms"
stop_on_shutdown = false
[log]
level = "debug"
)");
  EXPECT_EQ(c.listen_host, "0.0.0.0");
  EXPECT_EQ(c.listen_port, 0);
  EXPECT_EQ(c.io_threads, 3u);
  EXPECT_EQ(c.work_root, "/etc/ecm/work");
  EXPECT_EQ(c.state_dir, "/var/lib/ecm");
  EXPECT_EQ(c.plugin_dir, "/etc/plugins");
  EXPECT_EQ(c.enabled_plugins.size(), 2u);
  EXPECT_EQ(c.stop_grace, 1500ms);
  EXPECT_FALSE(c.stop_on_shutdown);
  EXPECT_EQ(c.log_level, "debug");
}

TEST(EcmConfig, EmptyFileGivesDefaults) {
  auto c = parse("");
  EXPECT_EQ(c.listen_port, 9101);
  EXPECT_EQ(c.work_root, "/etc/ecm/work");
}

TEST(EcmConfig, UnknownKeyNamesFileLineAndKey) {
  auto e = parse_error("[engines]\nstop_grace = \"1s\"\nstop_grase = \"2s\"\n");
  EXPECT_EQ(e.file(), "test.toml");
  EXPECT_EQ(e.line(), 3u);
  EXPECT_EQ(e.key(), "engines.stop_grase");
  EXPECT_NE(std::string(e.what()).find("test.toml:3: engines.stop_grase: unknown key"),
            std::string::npos)
      << e.what();
}

TEST(EcmConfig, UnknownTopLevelTable) {
  auto e = parse_error("[sever]\nlisten = \"a:1\"\n");
  EXPECT_EQ(e.key(), "sever");
  EXPECT_EQ(e.line(), 1u);
}

TEST(EcmConfig, WrongTypes) {
  EXPECT_EQ(parse_error("[server]\nio_threads = \"2\"\n").key(), "server.io_threads");
  EXPECT_EQ(parse_error("[plugins]\nenabled = \"shell\"\n").key(), "plugins.enabled");
  EXPECT_EQ(parse_error("[plugins]\nenabled = [1]\n").key(), "plugins.enabled");
  EXPECT_EQ(parse_error("[engines]\nstop_on_shutdown = 1\n").key(), "engines.stop_on_shutdown");
  EXPECT_EQ(parse_error("server = 1\n").key(), "server");
}

TEST(EcmConfig, BadValues) {
  auto e = parse_error("\n[engines]\nstop_grace = \"10\"\n");
  EXPECT_EQ(e.line(), 3u);
  EXPECT_NE(std::string(e.what()).find("not a duration"), std::string::npos);
  EXPECT_EQ(parse_error("[server]\nlisten = \"nohost\"\n").key(), "server.listen");
  EXPECT_EQ(parse_error("[server]\nlisten = \"h:70000\"\n").key(), "server.listen");
  EXPECT_EQ(parse_error("[server]\nlisten = \"h:12x\"\n").key(), "server.listen");
  EXPECT_EQ(parse_error("[server]\nio_threads = 0\n").key(), "server.io_threads");
  EXPECT_EQ(parse_error("[plugins]\nenabled = [\"../evil\"]\n").key(), "plugins.enabled");
  EXPECT_EQ(parse_error("[log]\nlevel = \"loud\"\n").key(), "log.level");
}

TEST(EcmConfig, SyntaxErrorHasLine) {
  auto e = parse_error("[server]\nlisten = \n");
  EXPECT_EQ(e.line(), 2u);
}

TEST(EcmConfig, MissingFileIsAConfigError) {
  EXPECT_THROW(load_config("/nonexistent/ecm.toml"), ConfigError);
}

TEST(EcmConfig, ResourcesAutoOrExplicit) {
  auto detected = parse("");
  EXPECT_GT(detected.capacity.memory_bytes, 0u) << "auto is the default";
  EXPECT_GE(detected.capacity.cores, 1u);
  EXPECT_EQ(detected.engine_default, (ecm::core::Resource{0, 0, 1}));
  auto c = parse(R"(
[resources]
memory = "16GiB"
cores = 8
instances = 50
protected_memory = "1GiB"
protected_cores = 1
engine_memory = "512MiB"
engine_cores = 1
)");
  EXPECT_EQ(c.capacity, (ecm::core::Resource{16ull << 30, 8, 50}));
  EXPECT_EQ(c.protected_, (ecm::core::Resource{1ull << 30, 1, 0}));
  EXPECT_EQ(c.engine_default, (ecm::core::Resource{512ull << 20, 1, 1}));
  auto a = parse("[resources]\nmemory = \"auto\"\ncores = \"auto\"\n");
  EXPECT_EQ(a.capacity.memory_bytes, detected.capacity.memory_bytes);
}

TEST(EcmConfig, BadResources) {
  EXPECT_EQ(parse_error("[resources]\nmemory = \"lots\"\n").key(), "resources.memory");
  EXPECT_EQ(parse_error("[resources]\nmemory = 16\n").key(), "resources.memory");
  EXPECT_EQ(parse_error("[resources]\ncores = \"many\"\n").key(), "resources.cores");
  EXPECT_EQ(parse_error("[resources]\ncores = -1\n").key(), "resources.cores");
  EXPECT_EQ(parse_error("[resources]\ninstances = -1\n").key(), "resources.instances");
  EXPECT_EQ(parse_error("[resources]\nengine_memroy = \"1GiB\"\n").key(),
            "resources.engine_memroy");
}

TEST(EcmConfig, CleanupAndLogRotationDefaults) {
  auto c = parse("");
  EXPECT_EQ(c.retention, 24h);
  EXPECT_EQ(c.cleanup_interval, 60s);
  EXPECT_EQ(c.disk_high_watermark, 90);
  EXPECT_EQ(c.disk_low_watermark, 80);
  EXPECT_EQ(c.log_rotate_size, 64ull << 20);
  EXPECT_EQ(c.log_rotate_keep, 5);
  EXPECT_EQ(c.log_rotate_check_interval, 5s);
  EXPECT_EQ(c.log_max_read_lines, 5000);
  auto shipped = load_config(std::string(ECM_SOURCE_DIR) + "/conf/ecm.toml");
  EXPECT_EQ(shipped.retention, 24h);
  EXPECT_EQ(shipped.disk_high_watermark, 90);
  EXPECT_EQ(shipped.log_rotate_keep, 5);
}

TEST(EcmConfig, CleanupAndLogRotationValues) {
  auto c = parse(R"(
[engines]
retention = "1s"
[cleanup]
interval = "200ms"
disk_high_watermark = "95.5%"
disk_low_watermark = "1%"
[logs]
rotate_size = "64KiB"
rotate_keep = 3
rotate_check_interval = "250ms"
max_read_lines = 100
)");
  EXPECT_EQ(c.retention, 1s);
  EXPECT_EQ(c.cleanup_interval, 200ms);
  EXPECT_DOUBLE_EQ(c.disk_high_watermark, 95.5);
  EXPECT_DOUBLE_EQ(c.disk_low_watermark, 1);
  EXPECT_EQ(c.log_rotate_size, 64u << 10);
  EXPECT_EQ(c.log_rotate_keep, 3);
  EXPECT_EQ(c.log_rotate_check_interval, 250ms);
  EXPECT_EQ(c.log_max_read_lines, 100);
  EXPECT_EQ(parse("[engines]\nretention = \"0s\"\n").retention, 0ms) << "0: at the next pass";
  EXPECT_EQ(parse("[cleanup]\ndisk_high_watermark = \"100%\"\n").disk_high_watermark, 100);
}

TEST(EcmConfig, BadCleanupAndLogRotation) {
  EXPECT_EQ(parse_error("[engines]\nretention = \"1\"\n").key(), "engines.retention");
  EXPECT_EQ(parse_error("[cleanup]\ninterval = \"0s\"\n").key(), "cleanup.interval");
  EXPECT_EQ(parse_error("[cleanup]\nintervall = \"1s\"\n").key(), "cleanup.intervall");
  for (const char* bad :
       {"\"90\"", "\"0%\"", "\"101%\"", "\"-5%\"", "\"ninety%\"", "\"90%%\"", "\" 90%\"", "90"}) {
    SCOPED_TRACE(bad);
    auto e = parse_error(std::string("[cleanup]\ndisk_high_watermark = ") + bad + "\n");
    EXPECT_EQ(e.key(), "cleanup.disk_high_watermark");
    EXPECT_EQ(e.line(), 2u);
  }
  // low < high, whichever of them is given; the error names the one given.
  auto e = parse_error("[cleanup]\ndisk_high_watermark = \"70%\"\n");
  EXPECT_EQ(e.key(), "cleanup.disk_high_watermark");
  EXPECT_NE(std::string(e.what()).find("below the high watermark (70%)"), std::string::npos)
      << e.what();
  EXPECT_EQ(parse_error("[cleanup]\ndisk_low_watermark = \"90%\"\n").key(),
            "cleanup.disk_low_watermark");
  EXPECT_EQ(
      parse_error("[cleanup]\ndisk_high_watermark = \"50%\"\ndisk_low_watermark = \"60%\"\n").key(),
      "cleanup.disk_low_watermark");
  EXPECT_EQ(parse_error("[logs]\nrotate_size = \"0B\"\n").key(), "logs.rotate_size");
  EXPECT_EQ(parse_error("[logs]\nrotate_size = 1000\n").key(), "logs.rotate_size");
  EXPECT_EQ(parse_error("[logs]\nrotate_keep = 0\n").key(), "logs.rotate_keep");
  EXPECT_EQ(parse_error("[logs]\nrotate_keep = 1001\n").key(), "logs.rotate_keep");
  EXPECT_EQ(parse_error("[logs]\nrotate_check_interval = \"0ms\"\n").key(),
            "logs.rotate_check_interval");
  EXPECT_EQ(parse_error("[logs]\nmax_read_lines = 0\n").key(), "logs.max_read_lines");
  EXPECT_EQ(parse_error("[logs]\nrotate_sise = \"1MiB\"\n").key(), "logs.rotate_sise");
}

TEST(EcmConfig, RmStandaloneByDefault) {
  for (const char* text : {"", "[rm]\n", "[rm]\naddress = \"\"\n"}) {
    auto c = parse(text);
    EXPECT_TRUE(c.rm_host.empty()) << text;
    EXPECT_EQ(c.rm_port, 0) << text;
    EXPECT_EQ(c.report_interval, 10s);
    EXPECT_TRUE(c.rm_labels.empty());
    EXPECT_TRUE(c.ecm_id.empty());
  }
  EXPECT_TRUE(load_config(std::string(ECM_SOURCE_DIR) + "/conf/ecm.toml").rm_host.empty());
}

TEST(EcmConfig, RmValues) {
  auto c = parse(R"(
[rm]
address = "rm.example:9200"
report_interval = "300ms"
labels = ["zone=a", "rack=r1=x"]
ecm_id = "node-7"
advertise_address = "10.0.0.7:9101"
)");
  EXPECT_EQ(c.rm_host, "rm.example");
  EXPECT_EQ(c.rm_port, 9200);
  EXPECT_EQ(c.report_interval, 300ms);
  EXPECT_EQ(c.rm_labels, (std::map<std::string, std::string>{{"zone", "a"}, {"rack", "r1=x"}}));
  EXPECT_EQ(c.ecm_id, "node-7");
  EXPECT_EQ(c.advertise_address, "10.0.0.7:9101");
}

TEST(EcmConfig, BadRm) {
  EXPECT_EQ(parse_error("[rm]\naddress = \"nohost\"\n").key(), "rm.address");
  EXPECT_EQ(parse_error("[rm]\naddress = \"h:0\"\n").key(), "rm.address");
  EXPECT_EQ(parse_error("[rm]\naddress = \"h:70000\"\n").key(), "rm.address");
  EXPECT_EQ(parse_error("[rm]\nreport_interval = \"0s\"\n").key(), "rm.report_interval");
  EXPECT_EQ(parse_error("[rm]\nreport_interval = \"10\"\n").key(), "rm.report_interval");
  EXPECT_EQ(parse_error("[rm]\nlabels = [\"novalue\"]\n").key(), "rm.labels");
  EXPECT_EQ(parse_error("[rm]\nlabels = [\"=v\"]\n").key(), "rm.labels");
  EXPECT_EQ(parse_error("[rm]\necm_id = \"../x\"\n").key(), "rm.ecm_id");
  EXPECT_EQ(parse_error("[rm]\nadvertise_address = \"h\"\n").key(), "rm.advertise_address");
  EXPECT_EQ(parse_error("[rm]\nadress = \"h:1\"\n").key(), "rm.adress");
}

TEST(EcmConfig, HealthAndMetricsDefaults) {
  auto c = parse("");
  EXPECT_EQ(c.health_sample_interval, 5s);
  EXPECT_EQ(c.cpu_overload_percent, 95);
  EXPECT_EQ(c.memory_min_available_percent, 5);
  EXPECT_EQ(c.launch_failures_unhealthy, 5);
  EXPECT_EQ(c.proc_meminfo, "/proc/meminfo");
  EXPECT_EQ(c.proc_stat, "/proc/stat");
  EXPECT_EQ(c.proc_loadavg, "/proc/loadavg");
  EXPECT_FALSE(c.metrics_enabled);  // off unless configured
  EXPECT_FALSE(parse("[metrics]\nlisten = \"\"\n").metrics_enabled);
}

TEST(EcmConfig, HealthAndMetricsValues) {
  auto c = parse(R"(
[health]
sample_interval = "200ms"
cpu_overload_percent = 80
memory_min_available_percent = 10
launch_failures_unhealthy = 0
proc_meminfo = "fake/meminfo"
proc_stat = "/tmp/stat"
proc_loadavg = "/tmp/loadavg"

[metrics]
listen = "0.0.0.0:9102"
)");
  EXPECT_EQ(c.health_sample_interval, 200ms);
  EXPECT_EQ(c.cpu_overload_percent, 80);
  EXPECT_EQ(c.memory_min_available_percent, 10);
  EXPECT_EQ(c.launch_failures_unhealthy, 0);
  EXPECT_EQ(c.proc_meminfo, "/etc/ecm/fake/meminfo");  // relative to the config's dir
  EXPECT_EQ(c.proc_stat, "/tmp/stat");
  EXPECT_TRUE(c.metrics_enabled);
  EXPECT_EQ(c.metrics_host, "0.0.0.0");
  EXPECT_EQ(c.metrics_port, 9102);
}

TEST(EcmConfig, BadHealthAndMetrics) {
  EXPECT_EQ(parse_error("[health]\nsample_interval = \"0s\"\n").key(), "health.sample_interval");
  EXPECT_EQ(parse_error("[health]\nsample_interval = \"soon\"\n").key(), "health.sample_interval");
  EXPECT_EQ(parse_error("[health]\ncpu_overload_percent = 0\n").key(),
            "health.cpu_overload_percent");
  EXPECT_EQ(parse_error("[health]\ncpu_overload_percent = 101\n").key(),
            "health.cpu_overload_percent");
  EXPECT_EQ(parse_error("[health]\ncpu_overload_percent = \"95%\"\n").key(),
            "health.cpu_overload_percent");
  EXPECT_EQ(parse_error("[health]\nmemory_min_available_percent = 100\n").key(),
            "health.memory_min_available_percent");
  EXPECT_EQ(parse_error("[health]\nlaunch_failures_unhealthy = -1\n").key(),
            "health.launch_failures_unhealthy");
  EXPECT_EQ(parse_error("[health]\nproc_stat = \"\"\n").key(), "health.proc_stat");
  EXPECT_EQ(parse_error("[health]\nproc_cpuinfo = \"/proc/cpuinfo\"\n").key(),
            "health.proc_cpuinfo");
  EXPECT_EQ(parse_error("[metrics]\nlisten = \"9102\"\n").key(), "metrics.listen");
  EXPECT_EQ(parse_error("[metrics]\nlisten = \"127.0.0.1:99999\"\n").key(), "metrics.listen");
  EXPECT_EQ(parse_error("[metrics]\nport = 9102\n").key(), "metrics.port");
}

namespace {

// A temp dir with a token file of the given mode and content.
struct TokenDir {
  std::filesystem::path dir;
  explicit TokenDir(const std::string& content, std::filesystem::perms mode) {
    std::string templ = (std::filesystem::temp_directory_path() / "ecm-config-XXXXXX").string();
    if (mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp");
    dir = templ;
    std::ofstream(file()) << content;
    std::filesystem::permissions(file(), mode);
  }
  ~TokenDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::filesystem::path file() const { return dir / "token"; }
  std::string toml() const { return "[server]\ntoken_file = \"" + file().string() + "\"\n"; }
};

constexpr auto kOwnerRw = std::filesystem::perms::owner_read | std::filesystem::perms::owner_write;

}  // namespace

TEST(EcmConfig, SecurityDefaults) {
  auto c = parse("");
  EXPECT_TRUE(c.tls_cert.empty());
  EXPECT_TRUE(c.tls_key.empty());
  EXPECT_TRUE(c.tls_client_ca.empty());
  EXPECT_TRUE(c.token.empty());
  EXPECT_EQ(c.max_message_bytes, 16u << 20);
}

TEST(EcmConfig, TlsKeysResolvedAgainstTheConfigDir) {
  auto c = parse(
      "[server]\ntls_cert = \"tls/ecm.pem\"\ntls_key = \"/k/ecm.key\"\n"
      "tls_client_ca = \"ca.pem\"\nmax_message_size = \"1MiB\"\n");
  EXPECT_EQ(c.tls_cert, "/etc/ecm/tls/ecm.pem");
  EXPECT_EQ(c.tls_key, "/k/ecm.key");
  EXPECT_EQ(c.tls_client_ca, "/etc/ecm/ca.pem");
  EXPECT_EQ(c.max_message_bytes, 1u << 20);
}

TEST(EcmConfig, TlsCertAndKeyGoTogether) {
  auto e = parse_error("[server]\ntls_cert = \"ecm.pem\"\n");
  EXPECT_EQ(e.key(), "server.tls_cert");
  EXPECT_EQ(e.line(), 2u);
  EXPECT_NE(std::string(e.what()).find("give tls_key too"), std::string::npos) << e.what();
  EXPECT_EQ(parse_error("[server]\ntls_key = \"ecm.key\"\n").key(), "server.tls_key");
  EXPECT_EQ(parse_error("[server]\ntls_client_ca = \"ca.pem\"\n").key(), "server.tls_client_ca");
  EXPECT_EQ(parse_error("[server]\ntls_cert = \"\"\ntls_key = \"k\"\n").key(), "server.tls_cert");
  // tls_client_ca alone names itself: client certificates are checked over TLS.
}

TEST(EcmConfig, BadMaxMessageSize) {
  EXPECT_EQ(parse_error("[server]\nmax_message_size = \"16\"\n").key(), "server.max_message_size");
  EXPECT_EQ(parse_error("[server]\nmax_message_size = \"512B\"\n").key(),
            "server.max_message_size");
  EXPECT_EQ(parse_error("[server]\nmax_message_size = \"2GiB\"\n").key(),
            "server.max_message_size");
}

TEST(EcmConfig, TokenFileReadWithoutItsLineBreak) {
  TokenDir t("s3cret-token\n", kOwnerRw);
  auto c = parse(t.toml());
  EXPECT_EQ(c.token, "s3cret-token");
  EXPECT_EQ(c.token_file, t.file());
}

TEST(EcmConfig, TokenFileReadableByOthersIsRefused) {
  TokenDir t("s3cret-token\n",
             kOwnerRw | std::filesystem::perms::group_read | std::filesystem::perms::others_read);
  auto e = parse_error(t.toml());
  EXPECT_EQ(e.key(), "server.token_file");
  EXPECT_NE(std::string(e.what()).find("mode 0644"), std::string::npos) << e.what();
  TokenDir g("s3cret-token\n", kOwnerRw | std::filesystem::perms::group_read);
  EXPECT_EQ(parse_error(g.toml()).key(), "server.token_file");
}

TEST(EcmConfig, TokenFileMissingOrEmptyIsRefused) {
  TokenDir empty("\n", kOwnerRw);
  auto e = parse_error(empty.toml());
  EXPECT_EQ(e.key(), "server.token_file");
  EXPECT_NE(std::string(e.what()).find("empty"), std::string::npos) << e.what();
  auto missing = parse_error("[server]\ntoken_file = \"/nonexistent/token\"\n");
  EXPECT_EQ(missing.key(), "server.token_file");
  EXPECT_NE(std::string(missing.what()).find("No such file"), std::string::npos) << missing.what();
  EXPECT_EQ(parse_error("[server]\ntoken_file = \"/etc\"\n").key(), "server.token_file");
}
