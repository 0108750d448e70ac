#include "services/ecm_metrics_service.hpp"

#include <gtest/gtest.h>

#include "http/prometheus_text.hpp"
#include "support/prometheus_parser.hpp"

using namespace ecm;
using namespace ecm::host;
using S = core::EngineStatus;
using namespace std::chrono_literals;

namespace {

core::EngineConn record(const std::string& id, const std::string& type = "shell") {
  core::EngineConn e;
  e.id = id;
  e.user = "alice";
  e.engine_type = type;
  e.status = S::kStarting;
  return e;
}

struct Fixture {
  EngineConnListService engines;
  core::ResourceLedger resources{{8ull << 30, 8, 10}, {1ull << 30, 0, 0}};
  PluginCallStats plugins;
  ECMMetricsService metrics{engines, resources, &plugins};

  void add(const std::string& id, const std::string& type = "shell") {
    ASSERT_TRUE(engines.add_unless_ticket_known(record(id, type)).second);
  }
  void fail_launch(const std::string& id, const std::string& reason) {
    ASSERT_TRUE(engines.transition(id, S::kFailed, [&](auto& e) { e.failure_reason = reason; }));
  }
  void stop(const std::string& id, const std::string& reason, bool failed = false) {
    ASSERT_TRUE(engines.transition(id, S::kShuttingDown, [&](auto& e) {
      e.stop_reason = reason;
      if (failed) e.failure_reason = "not ready after 1s";
    }));
    ASSERT_TRUE(engines.finish(id, core::ExitStatus{std::nullopt, 15}));
  }
};

}  // namespace

TEST(ECMMetricsService, CountsLaunchOutcomesFromTheEngineTable) {
  Fixture f;
  f.add("ok-1");
  f.add("ok-2", "python");
  f.add("bad");
  f.add("slow");
  ASSERT_TRUE(f.engines.transition("ok-1", S::kRunning));
  ASSERT_TRUE(f.engines.transition("ok-2", S::kIdle));
  ASSERT_TRUE(f.engines.transition("ok-2", S::kBusy));  // not a second success
  f.fail_launch("bad", "plugin 'shell' build failed");
  f.stop("slow", "launch timeout", /*failed=*/true);
  f.stop("ok-1", "stopped by request");
  // ok-2 exits on its own: finish() records "exited on its own".
  ASSERT_TRUE(f.engines.finish("ok-2", core::ExitStatus{0, std::nullopt}));

  auto m = f.metrics.snapshot();
  EXPECT_EQ(m.launches_started, 4u);
  EXPECT_EQ(m.launches_succeeded, 2u);
  EXPECT_EQ(m.launches_failed, 2u);
  EXPECT_EQ(m.launches_timed_out, 1u);
  EXPECT_EQ(m.stops_by_reason,
            (std::map<std::string, std::uint64_t>{
                {"exited on its own", 1}, {"launch timeout", 1}, {"stopped by request", 1}}));
  EXPECT_EQ(m.engines_by_status.at("Failed"), 2);
  EXPECT_EQ(m.engines_by_status.at("Success"), 2);
  EXPECT_EQ(m.engines_by_status.at("Running"), 0);  // every status listed, 0 included
  EXPECT_EQ(m.engines_by_type.at("shell"), 3);
  EXPECT_EQ(m.engines_by_type.at("python"), 1);
  // bad and slow failed one after the other, after the successes.
  EXPECT_EQ(m.launch_failures_in_a_row, 2);
}

TEST(ECMMetricsService, AStopBeforeReadyIsNotAFailedLaunchAndASuccessResetsTheRun) {
  Fixture f;
  f.add("a");
  f.fail_launch("a", "spawn failed");
  EXPECT_EQ(f.metrics.launch_failures_in_a_row(), 1);
  f.add("b");
  f.stop("b", "stopped by request");  // no failure reason
  auto m = f.metrics.snapshot();
  EXPECT_EQ(m.launches_failed, 1u);
  EXPECT_EQ(m.launches_succeeded, 0u);
  EXPECT_EQ(m.stops_by_reason.at("stopped by request"), 1u);
  EXPECT_EQ(m.stops_by_reason.count(""), 0u);  // the spawn failure was no stop
  f.add("c");
  ASSERT_TRUE(f.engines.transition("c", S::kRunning));
  EXPECT_EQ(f.metrics.launch_failures_in_a_row(), 0);
}

TEST(ECMMetricsService, LatencyResourcesAndPluginCalls) {
  Fixture f;
  f.metrics.observe_launch_latency(3ms);
  f.metrics.observe_launch_latency(40ms);
  f.metrics.observe_launch_latency(90s);
  f.plugins.calls += 7;
  f.plugins.failures += 2;
  f.resources.lock("x", {1ull << 30, 2, 1});
  auto m = f.metrics.snapshot();
  EXPECT_EQ(m.launch_latency.count(), 3u);
  EXPECT_NEAR(m.launch_latency.sum_ms(), 90043, 1e-6);
  auto buckets = m.launch_latency.buckets();
  EXPECT_EQ(buckets.front().le_ms, 5);
  EXPECT_EQ(buckets.front().count, 1u);
  EXPECT_EQ(buckets[3].le_ms, 50);
  EXPECT_EQ(buckets[3].count, 2u);
  EXPECT_TRUE(std::isinf(buckets.back().le_ms));
  EXPECT_EQ(buckets.back().count, 3u);
  EXPECT_EQ(buckets[buckets.size() - 2].count, 2u);  // 90s is over the last finite bound
  EXPECT_EQ(m.plugin_calls, 7u);
  EXPECT_EQ(m.plugin_failures, 2u);
  EXPECT_EQ(m.resources.locked.memory_bytes, 1ull << 30);
  EXPECT_EQ(m.resources.left.instances, 9u);
}

TEST(PrometheusText, ParsesStrictlyWithTheNamesTypesAndLabels) {
  Fixture f;
  f.add("ok");
  ASSERT_TRUE(f.engines.transition("ok", S::kRunning));
  f.add("odd \"one\"", "weird\\type");  // label values that need escaping
  f.stop("ok", "stopped by request");
  f.metrics.observe_launch_latency(12ms);
  core::HealthReport h;
  h.status = core::EcmStatus::kRunning;
  h.health = core::NodeHealth::kStockAvailable;
  h.memory = core::MemoryReading{1000, 10};

  auto families = test::parse_prometheus_text(prometheus_text(f.metrics.snapshot(), h));
  for (const auto& [name, fam] : families) {
    EXPECT_EQ(name.rfind("ecm_", 0), 0u) << name;
    EXPECT_FALSE(fam.help.empty()) << name;
    EXPECT_NE(fam.type, "untyped") << name;
    const bool total = name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0;
    EXPECT_EQ(total, fam.type == "counter") << name;
  }
  EXPECT_EQ(families.at("ecm_launch_latency_seconds").type, "histogram");
  EXPECT_EQ(families.at("ecm_engines").type, "gauge");
  using test::prom_value;
  EXPECT_EQ(prom_value(families, "ecm_launches_started_total"), 2);
  EXPECT_EQ(prom_value(families, "ecm_launches_succeeded_total"), 1);
  EXPECT_EQ(prom_value(families, "ecm_engine_stops_total", {{"reason", "stopped by request"}}), 1);
  EXPECT_EQ(prom_value(families, "ecm_engines", {{"status", "Success"}}), 1);
  EXPECT_EQ(prom_value(families, "ecm_engines", {{"status", "Starting"}}), 1);
  EXPECT_EQ(prom_value(families, "ecm_engines_by_type", {{"type", "weird\\type"}}), 1);
  EXPECT_EQ(prom_value(families, "ecm_health", {{"health", "StockAvailable"}}), 1);
  EXPECT_EQ(prom_value(families, "ecm_health", {{"health", "Healthy"}}), 0);
  EXPECT_EQ(prom_value(families, "ecm_status", {{"status", "Running"}}), 1);
  EXPECT_EQ(prom_value(families, "ecm_node_memory_available_bytes"), 10);
  EXPECT_EQ(prom_value(families, "ecm_resources_memory_bytes", {{"kind", "max"}}),
            static_cast<double>(8ull << 30));
  EXPECT_EQ(prom_value(families, "ecm_launch_latency_seconds_bucket", {{"le", "0.01"}}), 0);
  EXPECT_EQ(prom_value(families, "ecm_launch_latency_seconds_bucket", {{"le", "0.025"}}), 1);
  EXPECT_EQ(prom_value(families, "ecm_launch_latency_seconds_bucket", {{"le", "+Inf"}}), 1);
  EXPECT_NEAR(prom_value(families, "ecm_launch_latency_seconds_sum"), 0.012, 1e-9);
}

TEST(PrometheusText, TheTestParserRefusesWhatAScraperWouldMisread) {
  using test::parse_prometheus_text;
  EXPECT_NO_THROW(parse_prometheus_text("# HELP a_total x\n# TYPE a_total counter\na_total 1\n"));
  EXPECT_THROW(parse_prometheus_text("a{b=\"c} 1\n"), test::PromParseError);
  EXPECT_THROW(parse_prometheus_text("a{b=\"\\x\"} 1\n"), test::PromParseError);
  EXPECT_THROW(parse_prometheus_text("1a 1\n"), test::PromParseError);
  EXPECT_THROW(parse_prometheus_text("a one\n"), test::PromParseError);
  EXPECT_THROW(parse_prometheus_text("a 1\n# TYPE a gauge\n"), test::PromParseError);
  EXPECT_THROW(parse_prometheus_text("a 1\nb 1\na{x=\"1\"} 2\n"), test::PromParseError);
  EXPECT_THROW(parse_prometheus_text("a 1\na 2\n"), test::PromParseError);
  EXPECT_THROW(parse_prometheus_text("# TYPE h histogram\nh_bucket{le=\"1\"} 2\n"
                                     "h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n"),
               test::PromParseError);
}
