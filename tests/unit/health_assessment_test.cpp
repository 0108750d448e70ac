#include "ecm/core/health_assessment.hpp"

#include <gtest/gtest.h>

using namespace ecm::core;

namespace {

HealthInputs with_memory_percent(double available_percent) {
  HealthInputs in;
  in.memory = MemoryReading{1000000, static_cast<std::uint64_t>(available_percent * 10000)};
  return in;
}

HealthInputs with_cpu(double busy) {
  HealthInputs in;
  in.cpu_busy_percent = busy;
  return in;
}

bool mentions(const HealthAssessment& a, const std::string& word) {
  for (const auto& r : a.reasons) {
    if (r.find(word) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST(HealthAssessment, HealthyWithoutCauses) {
  HealthAssessor a;
  auto r = a.assess(with_memory_percent(50));
  EXPECT_EQ(r.health, NodeHealth::kHealthy);
  EXPECT_TRUE(r.reasons.empty());
}

TEST(HealthAssessment, LowMemoryTwiceInARowIsStockAvailableOnceIsOnlyAWarning) {
  HealthAssessor a;  // 5% by default
  auto first = a.assess(with_memory_percent(1));
  EXPECT_EQ(first.health, NodeHealth::kWarn);
  EXPECT_TRUE(mentions(first, "memory available 1.0% < 5%"));
  auto second = a.assess(with_memory_percent(1));
  EXPECT_EQ(second.health, NodeHealth::kStockAvailable);
  EXPECT_FALSE(takes_new_engines(second.health));
  EXPECT_TRUE(mentions(second, "overloaded"));
  // Back above: Healthy again, and the count starts over.
  EXPECT_EQ(a.assess(with_memory_percent(40)).health, NodeHealth::kHealthy);
  EXPECT_EQ(a.assess(with_memory_percent(1)).health, NodeHealth::kWarn);
}

TEST(HealthAssessment, OneCpuSpikeBetweenCalmSamplesNeverOverloads) {
  HealthAssessor a({.cpu_overload_percent = 90});
  for (double busy : {10.0, 99.0, 10.0, 99.0, 10.0}) {
    auto r = a.assess(with_cpu(busy));
    EXPECT_NE(r.health, NodeHealth::kStockAvailable) << busy;
    EXPECT_TRUE(takes_new_engines(r.health));
  }
  a.assess(with_cpu(99));
  auto r = a.assess(with_cpu(95));
  EXPECT_EQ(r.health, NodeHealth::kStockAvailable);
  EXPECT_TRUE(mentions(r, "cpu busy 95.0% > 90%"));
}

TEST(HealthAssessment, AMissingCpuReadingKeepsTheCount) {
  HealthAssessor a;
  a.assess(with_cpu(99));
  EXPECT_EQ(a.assess(HealthInputs{}).health, NodeHealth::kWarn);  // no evidence either way
  EXPECT_EQ(a.assess(with_cpu(99)).health, NodeHealth::kStockAvailable);
}

TEST(HealthAssessment, DiskOverWatermarkWarns) {
  HealthAssessor a;
  HealthInputs in;
  in.disk = DiskReading{"/work", 100, 5, 95, 90, 80, true};
  auto r = a.assess(in);
  EXPECT_EQ(r.health, NodeHealth::kWarn);
  EXPECT_TRUE(mentions(r, "work disk /work 95.0% used > 90% high watermark"));
  in.disk->over_watermark = false;
  in.disk->used_percent = 50;
  EXPECT_EQ(a.assess(in).health, NodeHealth::kHealthy);
}

TEST(HealthAssessment, LaunchFailuresInARowMakeItUnhealthy) {
  HealthAssessor a({.launch_failures_unhealthy = 3});
  HealthInputs in;
  in.launch_failures_in_a_row = 2;
  EXPECT_EQ(a.assess(in).health, NodeHealth::kHealthy);
  in.launch_failures_in_a_row = 3;
  auto r = a.assess(in);
  EXPECT_EQ(r.health, NodeHealth::kUnhealthy);
  EXPECT_TRUE(mentions(r, "3 launches failed in a row"));
  HealthAssessor never({.launch_failures_unhealthy = 0});
  in.launch_failures_in_a_row = 100;
  EXPECT_EQ(never.assess(in).health, NodeHealth::kHealthy);
}

TEST(HealthAssessment, WorstCauseWinsAndEveryReasonIsListed) {
  HealthAssessor a({.launch_failures_unhealthy = 1});
  HealthInputs in = with_memory_percent(1);
  in.launch_failures_in_a_row = 1;
  in.plugin_failures_since_last_sample = 2;
  in.read_errors.push_back("cannot read /x: cannot open");
  auto r = a.assess(in);
  EXPECT_EQ(r.health, NodeHealth::kUnhealthy);
  EXPECT_EQ(r.reasons.size(), 4u);
  EXPECT_TRUE(mentions(r, "2 plugin failure(s)"));
  EXPECT_TRUE(mentions(r, "cannot read /x"));
}

TEST(HealthAssessment, ShuttingDownIsStockUnavailable) {
  HealthAssessor a;
  HealthInputs in;
  in.status = EcmStatus::kShuttingDown;
  EXPECT_EQ(a.assess(in).health, NodeHealth::kStockUnavailable);
}

TEST(HealthAssessment, Names) {
  EXPECT_EQ(to_string(NodeHealth::kWarn), "WARN");
  EXPECT_EQ(to_string(NodeHealth::kUnhealthy), "UnHealthy");
  EXPECT_EQ(node_health_from_string("StockAvailable"), NodeHealth::kStockAvailable);
  EXPECT_EQ(node_health_from_string("healthy"), NodeHealth::kHealthy);
  EXPECT_EQ(node_health_from_string("unhealthy"), NodeHealth::kUnhealthy);
  EXPECT_FALSE(node_health_from_string("Healthy "));
  EXPECT_FALSE(node_health_from_string(""));
  EXPECT_FALSE(node_health_from_string("Healthz"));
  EXPECT_EQ(to_string(EcmStatus::kShuttingDown), "ShuttingDown");
}
