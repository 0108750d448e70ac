#include "services/ecm_health_service.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

using namespace ecm;
using namespace ecm::host;
using H = core::NodeHealth;

namespace {

// A private dir with meminfo / stat / loadavg files the service reads instead of /proc.
class ProcFiles {
 public:
  ProcFiles() {
    dir_ = std::filesystem::temp_directory_path() /
           ("ecm-health-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::create_directories(dir_);
    memory(50);
    write("stat", "cpu  100 0 100 800 0 0 0 0 0 0\n");
    write("loadavg", "0.50 0.40 0.30 1/100 1234\n");
  }
  ~ProcFiles() { std::filesystem::remove_all(dir_); }
  void memory(int available_percent) {
    write("meminfo", "MemTotal: 1000000 kB\nMemFree: 1 kB\nMemAvailable: " +
                         std::to_string(available_percent * 10000) + " kB\n");
  }
  void write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::trunc) << text;
  }
  HealthSettings settings() const {
    HealthSettings s;
    s.proc_meminfo = dir_ / "meminfo";
    s.proc_stat = dir_ / "stat";
    s.proc_loadavg = dir_ / "loadavg";
    return s;
  }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  static inline int counter_ = 0;
  std::filesystem::path dir_;
};

struct Fixture {
  ProcFiles proc;
  EngineConnListService engines;
  core::ResourceLedger resources{{8ull << 30, 8, 10}, {}};
  PluginCallStats plugins;
  ECMMetricsService metrics{engines, resources, &plugins};
  boost::asio::io_context io;
  std::unique_ptr<ECMHealthService> health;
  explicit Fixture(HealthSettings (*tweak)(HealthSettings) = nullptr) {
    auto s = proc.settings();
    s.sample_interval = std::chrono::milliseconds(0);  // every sample() is a full interval
    if (tweak) s = tweak(s);
    health = std::make_unique<ECMHealthService>(s, metrics, nullptr, io);
  }
};

}  // namespace

TEST(ECMHealthService, ReadsTheConfiguredFilesAndOverloadNeedsTwoSamples) {
  Fixture f;
  auto r = f.health->sample();
  EXPECT_EQ(r.health, H::kHealthy);
  ASSERT_TRUE(r.memory);
  EXPECT_EQ(r.memory->total_bytes, 1000000ull * 1024);
  ASSERT_TRUE(r.load);
  EXPECT_DOUBLE_EQ(r.load->load1, 0.5);
  EXPECT_FALSE(f.health->launch_refusal());

  f.proc.memory(1);
  EXPECT_EQ(f.health->sample().health, H::kWarn);  // one sample: a warning only
  EXPECT_TRUE(f.health->accepts_launches());
  r = f.health->sample();
  EXPECT_EQ(r.health, H::kStockAvailable);
  auto refusal = f.health->launch_refusal();
  ASSERT_TRUE(refusal);
  EXPECT_NE(refusal->find("StockAvailable"), std::string::npos) << *refusal;
  EXPECT_NE(refusal->find("memory available 1.0% < 5%"), std::string::npos) << *refusal;

  f.proc.memory(60);
  EXPECT_EQ(f.health->sample().health, H::kHealthy);
  EXPECT_TRUE(f.health->accepts_launches());
}

TEST(ECMHealthService, CpuBusyComesFromTwoReadingsOfProcStat) {
  Fixture f;
  EXPECT_FALSE(f.health->sample().cpu_busy_percent);  // one reading: no share yet
  // 1000 more ticks, 20 of them idle: 98% busy.
  f.proc.write("stat", "cpu  600 0 580 820 0 0 0 0 0 0\n");
  auto r = f.health->sample();
  ASSERT_TRUE(r.cpu_busy_percent);
  EXPECT_DOUBLE_EQ(*r.cpu_busy_percent, 98.0);
  EXPECT_EQ(r.health, H::kWarn);
  f.proc.write("stat", "cpu  1100 0 1060 840 0 0 0 0 0 0\n");
  EXPECT_EQ(f.health->sample().health, H::kStockAvailable);
}

TEST(ECMHealthService, ACpuReadingSoonerThanHalfAnIntervalIsNotASample) {
  Fixture f([](HealthSettings s) {
    s.sample_interval = std::chrono::hours(1);
    return s;
  });
  EXPECT_FALSE(f.health->sample().cpu_busy_percent);
  // All busy, but read moments after the first: too short a window to judge the node by.
  f.proc.write("stat", "cpu  600 0 600 800 0 0 0 0 0 0\n");
  auto r = f.health->sample();
  EXPECT_FALSE(r.cpu_busy_percent);
  EXPECT_EQ(r.health, H::kHealthy);
  EXPECT_EQ(f.health->sample().health, H::kHealthy);
}

TEST(ECMHealthService, AnUnreadableFileWarnsAndNamesTheFile) {
  Fixture f;
  std::filesystem::remove(f.proc.dir() / "meminfo");
  auto r = f.health->sample();
  EXPECT_EQ(r.health, H::kWarn);
  ASSERT_FALSE(r.reasons.empty());
  EXPECT_NE(r.reasons.front().find("meminfo"), std::string::npos);
  EXPECT_FALSE(r.memory);
}

TEST(ECMHealthService, TheRmHealthIsKeptAcrossSamplesUntilCleared) {
  Fixture f;
  f.health->sample();
  auto r = f.health->set_rm_health(H::kUnhealthy, "maintenance");
  EXPECT_EQ(r.health, H::kUnhealthy);
  EXPECT_TRUE(r.set_by_rm);
  EXPECT_EQ(r.assessed_health, H::kHealthy);
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(f.health->sample().health, H::kUnhealthy);
  auto refusal = f.health->launch_refusal();
  ASSERT_TRUE(refusal);
  EXPECT_NE(refusal->find("set by the RM: maintenance"), std::string::npos) << *refusal;
  r = f.health->clear_rm_health();
  EXPECT_EQ(r.health, H::kHealthy);
  EXPECT_FALSE(r.set_by_rm);
  EXPECT_TRUE(f.health->accepts_launches());
}

TEST(ECMHealthService, LaunchFailuresInARowFromTheMetrics) {
  Fixture f([](HealthSettings s) {
    s.thresholds.launch_failures_unhealthy = 2;
    return s;
  });
  for (const char* id : {"a", "b"}) {
    core::EngineConn e;
    e.id = id;
    e.user = "alice";
    e.engine_type = "shell";
    f.engines.add_unless_ticket_known(e);
    f.engines.transition(id, core::EngineStatus::kFailed,
                         [](auto& r) { r.failure_reason = "spawn failed"; });
  }
  auto r = f.health->sample();
  EXPECT_EQ(r.health, H::kUnhealthy);
  EXPECT_EQ(r.launch_failures_in_a_row, 2);
}

TEST(ECMHealthService, StatusFollowsTheDaemonAndShuttingDownTakesNoEngines) {
  Fixture f;
  EXPECT_EQ(f.health->report().status, core::EcmStatus::kStarting);
  f.health->set_status(core::EcmStatus::kRunning);
  EXPECT_EQ(f.health->report().status, core::EcmStatus::kRunning);
  EXPECT_TRUE(f.health->accepts_launches());
  f.health->set_status(core::EcmStatus::kShuttingDown);
  EXPECT_EQ(f.health->report().health, H::kStockUnavailable);
}
