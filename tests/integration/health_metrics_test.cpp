// Health (getHealthReport, setHealth, overload from injected /proc readings, the disk watermark),
// metrics (getMetrics, the Prometheus /metrics scrape, /healthz) and `ecmctl health|metrics`
// against the real daemon.
#include <algorithm>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include "ecm_harness.hpp"
#include "support/prometheus_parser.hpp"

namespace ecm::itest {
namespace {

namespace json = boost::json;
namespace http = boost::beast::http;

// The daemon reads its "/proc" files from <dir>/proc (relative to its config), which the test
// writes: memory as it likes, and a /proc/stat that never moves (so the CPU of the machine
// running the tests cannot make the node overloaded).
const std::string kHealthToml =
    std::string("\n[health]\n") + kFakeProcHealthKeys + "\n[metrics]\nlisten = \"127.0.0.1:0\"\n";

// A daemon with injected /proc files (memory `available_percent`) and the metrics server on.
std::unique_ptr<EcmProcess> start_ecm(int available_percent, const std::string& more_toml = "") {
  EcmOptions o;
  o.extra_toml = kHealthToml + more_toml;
  auto ecm = std::make_unique<EcmProcess>(o, false);
  write_fake_proc(*ecm, available_percent);
  ecm->start();
  return ecm;
}

api::HealthReport health(EcmProcess& ecm) {
  api::HealthReport r;
  ecm.client().getHealthReport(r);
  return r;
}

api::Metrics metrics(EcmProcess& ecm) {
  api::Metrics m;
  ecm.client().getMetrics(m);
  return m;
}

bool health_is(EcmProcess& ecm, api::NodeHealth::type h) {
  return health(ecm).health == h;
}

std::string reasons(const api::HealthReport& r) {
  std::string out;
  for (const auto& s : r.reasons)
    out += s + "; ";
  return out;
}

bool mentions(const api::HealthReport& r, const std::string& word) {
  return reasons(r).find(word) != std::string::npos;
}

// Waits until `n` more samples have been taken after now.
void wait_samples(EcmProcess& ecm, int n) {
  for (int i = 0; i < n; ++i) {
    const auto before = health(ecm).reported_at_ms;
    ASSERT_TRUE(eventually([&] { return health(ecm).reported_at_ms > before; }, 5s));
  }
}

api::SetHealthRequest set_health(api::NodeHealth::type h, const std::string& reason) {
  api::SetHealthRequest r;
  r.__set_health(h);
  r.__set_reason(reason);
  return r;
}

api::SetHealthRequest clear_health() {
  api::SetHealthRequest r;
  r.__set_clear(true);
  return r;
}

struct HttpAnswer {
  int status = 0;
  std::string content_type;
  std::string body;
};

HttpAnswer http_request(const EcmProcess& ecm, http::verb method, const std::string& target) {
  auto address = read_file(ecm.state_dir() / "metrics.address");
  address.erase(address.find_last_not_of("\n") + 1);
  const auto colon = address.rfind(':');
  boost::asio::io_context io;
  boost::asio::ip::tcp::resolver resolver(io);
  boost::beast::tcp_stream stream(io);
  stream.expires_after(10s);
  stream.connect(resolver.resolve(address.substr(0, colon), address.substr(colon + 1)));
  http::request<http::string_body> req{method, target, 11};
  req.set(http::field::host, address);
  req.set(http::field::connection, "close");
  http::write(stream, req);
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(stream, buffer, res);
  return {static_cast<int>(res.result_int()), std::string(res[http::field::content_type]),
          res.body()};
}

HttpAnswer http_get(const EcmProcess& ecm, const std::string& target) {
  return http_request(ecm, http::verb::get, target);
}

json::value parse_json(const std::string& text) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  EXPECT_FALSE(ec) << "not JSON: " << text;
  return v;
}

TEST(HealthMetrics, HealthyByDefaultWithTheNodesReadings) {
  // The real /proc/meminfo (the host's memory), a still /proc/stat.
  EcmOptions o;
  o.extra_toml = "\n[health]\nsample_interval = \"200ms\"\nproc_stat = \"proc/stat\"\n";
  EcmProcess ecm(o, false);
  write_file_atomically(ecm.dir() / "proc" / "stat", "cpu  1 0 1 8 0 0 0 0 0 0\n");
  ecm.start();
  auto r = health(ecm);
  EXPECT_EQ(r.status, api::EcmStatus::RUNNING);
  EXPECT_EQ(r.health, api::NodeHealth::HEALTHY) << reasons(r);
  EXPECT_TRUE(r.reasons.empty()) << reasons(r);
  EXPECT_FALSE(r.set_by_rm);
  ASSERT_TRUE(r.__isset.memory_total_bytes);
  EXPECT_GT(r.memory_total_bytes, 0);
  EXPECT_GT(r.memory_available_bytes, 0);
  EXPECT_LE(r.memory_available_bytes, r.memory_total_bytes);
  EXPECT_TRUE(r.__isset.load1);
  ASSERT_TRUE(r.__isset.work_disk);  // the clean-up's measure of the work root
  EXPECT_EQ(r.work_disk.path, ecm.work_root().string());
  EXPECT_GT(r.work_disk.total_bytes, 0);
  EXPECT_GT(r.reported_at_ms, 0);
  // Off unless configured.
  EXPECT_FALSE(std::filesystem::exists(ecm.state_dir() / "metrics.address"));
}

TEST(HealthMetrics, LowMemoryInTwoSamplesRefusesLaunchesUntilItRecovers) {
  auto ecm = start_ecm(50);
  EXPECT_EQ(health(*ecm).health, api::NodeHealth::HEALTHY) << reasons(health(*ecm));
  ecm->launch(shell_request("alice", "sleep 30"));

  write_fake_proc(*ecm, 1);
  ASSERT_TRUE(eventually([&] { return health_is(*ecm, api::NodeHealth::STOCK_AVAILABLE); }))
      << reasons(health(*ecm));
  auto r = health(*ecm);
  EXPECT_TRUE(mentions(r, "memory available 1.0% < 5%")) << reasons(r);
  EXPECT_TRUE(mentions(r, "2 sample(s) in a row") || mentions(r, "3 sample(s) in a row"))
      << reasons(r);
  EXPECT_EQ(r.memory_available_bytes, 100000ll * 1024);

  auto err = ecm_error_of([&] { ecm->launch(shell_request("alice", "sleep 30")); });
  ASSERT_TRUE(err);
  EXPECT_EQ(err->code, api::ErrorCode::NODE_UNAVAILABLE);
  EXPECT_NE(err->message.find("StockAvailable"), std::string::npos) << err->message;
  EXPECT_NE(err->message.find("memory available"), std::string::npos) << err->message;
  // The running engine is served on: StockAvailable takes no new engines, it keeps its own.
  std::vector<api::EngineConn> running;
  api::EngineConnFilter f;
  f.__set_status(api::EngineStatus::RUNNING);
  ecm->client().listEngineConns(running, f);
  EXPECT_EQ(running.size(), 1u);

  write_fake_proc(*ecm, 50);
  ASSERT_TRUE(eventually([&] { return health_is(*ecm, api::NodeHealth::HEALTHY); }))
      << reasons(health(*ecm));
  EXPECT_EQ(ecm->launch(shell_request("alice", "sleep 30")).status, api::EngineStatus::RUNNING);
}

TEST(HealthMetrics, TheRmHealthIsKeptAcrossSamplesUntilTheRmClearsIt) {
  auto ecm = start_ecm(50);
  api::HealthReport r;
  ecm->client().setHealth(r, set_health(api::NodeHealth::UNHEALTHY, "node in maintenance"));
  EXPECT_EQ(r.health, api::NodeHealth::UNHEALTHY);
  EXPECT_TRUE(r.set_by_rm);
  wait_samples(*ecm, 3);
  r = health(*ecm);
  EXPECT_EQ(r.health, api::NodeHealth::UNHEALTHY);
  EXPECT_TRUE(r.set_by_rm);
  EXPECT_EQ(r.assessed_health, api::NodeHealth::HEALTHY);
  EXPECT_TRUE(mentions(r, "set by the RM: node in maintenance")) << reasons(r);
  auto err = ecm_error_of([&] { ecm->launch(shell_request("alice", "sleep 30")); });
  ASSERT_TRUE(err);
  EXPECT_EQ(err->code, api::ErrorCode::NODE_UNAVAILABLE);
  EXPECT_NE(err->message.find("node in maintenance"), std::string::npos) << err->message;

  // Neither a health nor clear; both.
  auto bad = ecm_error_of([&] { ecm->client().setHealth(r, api::SetHealthRequest{}); });
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->code, api::ErrorCode::INVALID_REQUEST);
  auto both = clear_health();
  both.__set_health(api::NodeHealth::HEALTHY);
  bad = ecm_error_of([&] { ecm->client().setHealth(r, both); });
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->code, api::ErrorCode::INVALID_REQUEST);
  EXPECT_TRUE(health(*ecm).set_by_rm);

  ecm->client().setHealth(r, clear_health());
  EXPECT_EQ(r.health, api::NodeHealth::HEALTHY);
  EXPECT_FALSE(r.set_by_rm);
  wait_samples(*ecm, 1);
  EXPECT_EQ(health(*ecm).health, api::NodeHealth::HEALTHY);
  EXPECT_EQ(ecm->launch(shell_request("alice", "sleep 30")).status, api::EngineStatus::RUNNING);
}

TEST(HealthMetrics, DiskOverTheWatermarkShowsInHealth) {
  // Any real file system is more than 2% full: the clean-up's measure is over the watermark.
  auto ecm =
      start_ecm(50, "\n[cleanup]\ndisk_high_watermark = \"2%\"\ndisk_low_watermark = \"1%\"\n");
  ASSERT_TRUE(eventually([&] { return health_is(*ecm, api::NodeHealth::WARN); }))
      << reasons(health(*ecm));
  auto r = health(*ecm);
  EXPECT_TRUE(r.work_disk.over_watermark);
  EXPECT_TRUE(mentions(r, "work disk " + ecm->work_root().string())) << reasons(r);
  EXPECT_TRUE(mentions(r, "> 2% high watermark")) << reasons(r);
  // WARN still takes engines; /healthz says so.
  EXPECT_EQ(ecm->launch(shell_request("alice", "sleep 30")).status, api::EngineStatus::RUNNING);
  auto h = http_get(*ecm, "/healthz");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.body, "WARN\n");
}

TEST(HealthMetrics, MetricsCountLaunchesOutcomesStopsAndLatency) {
  auto ecm = start_ecm(50);
  auto ok = ecm->launch(shell_request("alice", "sleep 30"));
  auto failing = shell_request("alice", "exit 3");
  failing.properties["ready_when"] = "alive:2s";  // exits while still Starting: a failed launch
  auto failed = ecm->launch(failing);
  auto slow = shell_request("bob", "sleep 30");
  slow.properties["ready_when"] = "callback";  // never calls back
  slow.__set_launch_timeout_ms(300);
  auto timed_out = ecm->launch(slow);
  ecm->wait_for_status(failed.id, api::EngineStatus::FAILED);
  ecm->wait_for_status(timed_out.id, api::EngineStatus::FAILED);
  api::StopResult stopped;
  api::StopRequest stop;
  stop.__set_engine_id(ok.id);
  ecm->client().stopEngineConn(stopped, stop);
  ecm->wait_for_status(ok.id, api::EngineStatus::SUCCESS);

  auto m = metrics(*ecm);
  EXPECT_EQ(m.launches_started, 3);
  EXPECT_EQ(m.launches_succeeded, 1);
  EXPECT_EQ(m.launches_failed, 2);
  EXPECT_EQ(m.launches_timed_out, 1);
  EXPECT_EQ(m.stops_by_reason,
            (std::map<std::string, std::int64_t>{
                {"exited on its own", 1}, {"launch timeout", 1}, {"stopped by request", 1}}));
  EXPECT_EQ(m.engines_by_status.at("Success"), 1);
  EXPECT_EQ(m.engines_by_status.at("Failed"), 2);
  EXPECT_EQ(m.engines_by_status.at("Running"), 0);
  EXPECT_EQ(m.engines_by_type.at("shell"), 3);
  EXPECT_EQ(m.launch_latency_count, 3);  // each was spawned
  ASSERT_FALSE(m.launch_latency_buckets.empty());
  EXPECT_EQ(m.launch_latency_buckets.back().count, 3);
  EXPECT_TRUE(std::isinf(m.launch_latency_buckets.back().le_ms));
  EXPECT_GT(m.launch_latency_sum_ms, 0);
  // validate, ports, build, readiness per launch, all served by the shell plugin.
  EXPECT_GE(m.plugin_calls, 12);
  EXPECT_EQ(m.plugin_failures, 0);
  EXPECT_EQ(m.resources.left.instances,
            m.resources.max.instances - m.resources.protected_.instances);
  EXPECT_GE(m.uptime_ms, 0);
  // Two launches failed in a row after the success (the health has it from its next sample).
  EXPECT_TRUE(eventually([&] { return health(*ecm).launch_failures_in_a_row == 2; }))
      << health(*ecm).launch_failures_in_a_row;

  // The same numbers through /metrics.
  auto scrape = http_get(*ecm, "/metrics");
  ASSERT_EQ(scrape.status, 200);
  EXPECT_EQ(scrape.content_type.rfind("text/plain; version=0.0.4", 0), 0u) << scrape.content_type;
  std::map<std::string, test::PromFamily> families;
  try {
    families = test::parse_prometheus_text(scrape.body);
  } catch (const std::exception& e) {
    FAIL() << e.what() << "\n" << scrape.body;
  }
  using test::prom_value;
  EXPECT_EQ(prom_value(families, "ecm_launches_started_total"), 3);
  EXPECT_EQ(prom_value(families, "ecm_launches_failed_total"), 2);
  EXPECT_EQ(prom_value(families, "ecm_launches_timed_out_total"), 1);
  EXPECT_EQ(prom_value(families, "ecm_engine_stops_total", {{"reason", "launch timeout"}}), 1);
  EXPECT_EQ(prom_value(families, "ecm_engines", {{"status", "Failed"}}), 2);
  EXPECT_EQ(prom_value(families, "ecm_launch_latency_seconds_count"), 3);
  EXPECT_EQ(prom_value(families, "ecm_launch_latency_seconds_bucket", {{"le", "+Inf"}}), 3);
  EXPECT_EQ(prom_value(families, "ecm_health", {{"health", "Healthy"}}), 1);
  EXPECT_EQ(prom_value(families, "ecm_status", {{"status", "Running"}}), 1);
  EXPECT_EQ(prom_value(families, "ecm_node_memory_total_bytes"), 10000000.0 * 1024);
  EXPECT_GT(prom_value(families, "ecm_resources_memory_bytes", {{"kind", "max"}}), 0);
  for (const auto& [name, fam] : families) {
    EXPECT_EQ(name.rfind("ecm_", 0), 0u) << name;
    const bool total = name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0;
    EXPECT_EQ(total, fam.type == "counter") << name << " is a " << fam.type;
    EXPECT_FALSE(fam.help.empty()) << name;
  }
  EXPECT_EQ(families.at("ecm_launch_latency_seconds").type, "histogram");
  EXPECT_EQ(families.at("ecm_engines").type, "gauge");
}

TEST(HealthMetrics, HealthzAnswersLoadBalancersAndOtherRequestsAreRefused) {
  auto ecm = start_ecm(50);
  auto h = http_get(*ecm, "/healthz");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.body, "Healthy\n");
  api::HealthReport r;
  ecm->client().setHealth(r, set_health(api::NodeHealth::STOCK_AVAILABLE, "drain"));
  h = http_get(*ecm, "/healthz");
  EXPECT_EQ(h.status, 503);
  EXPECT_EQ(h.body, "StockAvailable\n");
  ecm->client().setHealth(r, clear_health());
  EXPECT_EQ(http_get(*ecm, "/healthz").status, 200);

  EXPECT_EQ(http_get(*ecm, "/nope").status, 404);
  EXPECT_EQ(http_request(*ecm, http::verb::post, "/metrics").status, 405);
  EXPECT_EQ(http_request(*ecm, http::verb::delete_, "/healthz").status, 405);
}

TEST(HealthMetrics, EcmctlHealthAndMetrics) {
  auto ecm = start_ecm(50);
  ecm->launch(shell_request("alice", "sleep 30"));

  auto out = ecm->run_ecmctl({"health", "--json"});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  auto v = parse_json(out.out);
  ASSERT_TRUE(v.is_object()) << out.out;
  const auto& o = v.as_object();
  EXPECT_EQ(o.at("status"), "Running");
  EXPECT_EQ(o.at("health"), "Healthy");
  EXPECT_EQ(o.at("set_by_rm"), false);
  EXPECT_EQ(o.at("memory_total_bytes").to_number<std::int64_t>(), 10000000ll * 1024);
  EXPECT_TRUE(o.at("reasons").is_array());
  EXPECT_TRUE(o.at("work_disk").is_object());

  out = ecm->run_ecmctl({"health"});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  EXPECT_NE(out.out.find("health: Healthy"), std::string::npos) << out.out;
  EXPECT_NE(out.out.find("status: Running"), std::string::npos) << out.out;

  out = ecm->run_ecmctl({"--json", "metrics"});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  v = parse_json(out.out);
  ASSERT_TRUE(v.is_object()) << out.out;
  const auto& m = v.as_object();
  EXPECT_EQ(m.at("launches").at("started").to_number<std::int64_t>(), 1);
  EXPECT_EQ(m.at("launches").at("succeeded").to_number<std::int64_t>(), 1);
  EXPECT_EQ(m.at("engines_by_status").at("Running").to_number<std::int64_t>(), 1);
  const auto& buckets = m.at("launch_latency").at("buckets").as_array();
  ASSERT_FALSE(buckets.empty());
  EXPECT_TRUE(buckets.back().at("le_ms").is_null());  // +Inf
  EXPECT_EQ(buckets.back().at("count").to_number<std::int64_t>(), 1);
  EXPECT_TRUE(m.at("resources").is_object());

  out = ecm->run_ecmctl({"metrics"});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  EXPECT_NE(out.out.find("launches: 1 started, 1 succeeded"), std::string::npos) << out.out;

  // The CLI's rules: a bad option is a usage error (2), no ECM is 3.
  EXPECT_EQ(ecm->run_ecmctl({"health", "--bogus"}).exit_code, 2);
  EXPECT_EQ(ecm->run_ecmctl_raw({"--address", "127.0.0.1:1", "metrics"}).exit_code, 3);
}

}  // namespace
}  // namespace ecm::itest
