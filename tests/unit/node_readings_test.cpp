#include "ecm/core/node_readings.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

using namespace ecm::core;

namespace {

constexpr const char* kMeminfo =
    "MemTotal:       16000000 kB\n"
    "MemFree:          500000 kB\n"
    "MemAvailable:    4000000 kB\n"
    "Buffers:          100000 kB\n";

}  // namespace

TEST(NodeReadings, MeminfoTotalAndAvailable) {
  auto m = parse_meminfo(kMeminfo);
  EXPECT_EQ(m.total_bytes, 16000000ull * 1024);
  EXPECT_EQ(m.available_bytes, 4000000ull * 1024);
  EXPECT_DOUBLE_EQ(m.available_percent(), 25.0);
}

TEST(NodeReadings, MeminfoRefusesMissingOrMalformed) {
  EXPECT_THROW(parse_meminfo("MemTotal: 100 kB\nMemFree: 50 kB\n"), std::invalid_argument);
  EXPECT_THROW(parse_meminfo("MemAvailable: 100 kB\n"), std::invalid_argument);
  EXPECT_THROW(parse_meminfo("MemTotal: lots kB\nMemAvailable: 1 kB\n"), std::invalid_argument);
  EXPECT_THROW(parse_meminfo("MemTotal: 100 MB\nMemAvailable: 1 kB\n"), std::invalid_argument);
  EXPECT_THROW(parse_meminfo("MemTotal: 0 kB\nMemAvailable: 0 kB\n"), std::invalid_argument);
  EXPECT_THROW(parse_meminfo(""), std::invalid_argument);
}

TEST(NodeReadings, ProcStatSumsTheFirstEightCountersAndIdleIsIdlePlusIowait) {
  // user nice system idle iowait irq softirq steal guest guest_nice
  auto t = parse_proc_stat(
      "cpu  100 10 50 800 40 0 0 0 30 0\n"
      "cpu0 50 5 25 400 20 0 0 0 15 0\n"
      "intr 1 2 3\n");
  EXPECT_EQ(t.total, 1000u);  // guest (30) is already in user
  EXPECT_EQ(t.idle, 840u);
}

TEST(NodeReadings, ProcStatRefusesMissingOrMalformed) {
  EXPECT_THROW(parse_proc_stat("cpu0 1 2 3 4\n"), std::invalid_argument);
  EXPECT_THROW(parse_proc_stat("cpu 1 2 x 4\n"), std::invalid_argument);
  EXPECT_THROW(parse_proc_stat("cpu 1 2\n"), std::invalid_argument);
}

TEST(NodeReadings, CpuBusyBetweenTwoSamples) {
  CpuTimes a{1000, 800}, b{2000, 1300};
  auto busy = cpu_busy_percent(a, b);
  ASSERT_TRUE(busy);
  EXPECT_DOUBLE_EQ(*busy, 50.0);
  EXPECT_FALSE(cpu_busy_percent(a, a));  // no tick passed
  EXPECT_FALSE(cpu_busy_percent(b, a));  // counters went backwards (a different file)
}

TEST(NodeReadings, Loadavg) {
  auto l = parse_loadavg("0.52 1.25 2.00 3/456 7890\n");
  EXPECT_DOUBLE_EQ(l.load1, 0.52);
  EXPECT_DOUBLE_EQ(l.load5, 1.25);
  EXPECT_DOUBLE_EQ(l.load15, 2.0);
  EXPECT_THROW(parse_loadavg("0.5 1\n"), std::invalid_argument);
  EXPECT_THROW(parse_loadavg("a b c\n"), std::invalid_argument);
}
