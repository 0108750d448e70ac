#include "services/engine_conn_cleanup_service.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>

#include "services/engine_log_rotation.hpp"

using namespace ecm;
using namespace ecm::host;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using S = core::EngineStatus;

namespace {

class CleanupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("ecm-cleanup-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    work_root_ = root_ / "work";
    fs::create_directories(work_root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  // A running engine of `user` with a work dir holding `bytes` of output.
  core::EngineConn add(const std::string& id, const std::string& user = "alice",
                       std::size_t bytes = 1000) {
    core::EngineConn e;
    e.id = id;
    e.user = user;
    e.engine_type = "shell";
    e.created_at = core::Clock::now() - 48h;
    e.work_dir = (work_root_ / user / id).string();
    e.log_dir = (work_root_ / user / id / "logs").string();
    fs::create_directories(e.log_dir);
    std::ofstream(fs::path(e.log_dir) / "stdout") << std::string(bytes, 'o');
    engines_.add_unless_ticket_known(e);
    EXPECT_TRUE(engines_.transition(id, S::kRunning));
    return e;
  }
  // Ends the engine `age` ago.
  void end(const std::string& id, std::chrono::milliseconds age) {
    ASSERT_TRUE(engines_.finish(id, core::ExitStatus{0, std::nullopt}));
    engines_.update(id, [&](core::EngineConn& e) { e.ended_at = core::Clock::now() - age; });
  }
  bool dir_exists(const std::string& id, const std::string& user = "alice") const {
    return fs::exists(work_root_ / user / id);
  }

  CleanupSettings settings(std::chrono::milliseconds retention = 1h) const {
    CleanupSettings s;
    s.work_root = work_root_;
    s.retention = retention;
    s.interval = 1h;
    // Never over the watermark unless a test says so.
    s.high_watermark_percent = 100;
    s.low_watermark_percent = 99;
    return s;
  }

  fs::path root_;
  fs::path work_root_;
  EngineConnListService engines_;
  boost::asio::io_context io_;
};

TEST_F(CleanupTest, RemovesEndedEnginesPastRetentionOnly) {
  add("ec-old");
  end("ec-old", 2h);
  add("ec-young");
  end("ec-young", 10min);
  EngineConnCleanupService cleanup(settings(1h), engines_, io_);

  const auto r = cleanup.run_once();
  EXPECT_EQ(r.removed_by_retention, 1u);
  EXPECT_FALSE(dir_exists("ec-old")) << "retention over: dir removed";
  EXPECT_FALSE(engines_.get("ec-old")) << "... and record gone";
  EXPECT_TRUE(dir_exists("ec-young")) << "younger than retention: kept";
  EXPECT_TRUE(engines_.get("ec-young"));
  EXPECT_TRUE(fs::exists(work_root_ / "alice")) << "the user dir stays (a launch may be using it)";

  const auto st = cleanup.status();
  EXPECT_EQ(st.removed_by_retention, 1u);
  EXPECT_EQ(st.removed_by_watermark, 0u);
  EXPECT_TRUE(st.last_pass);
  ASSERT_TRUE(st.disk) << "statvfs of the work root";
  EXPECT_GT(st.disk->total_bytes, 0u);
  EXPECT_GT(st.disk->used_percent(), 0);
  EXPECT_FALSE(st.over_watermark);

  // Later, the young one's retention is over too.
  engines_.update("ec-young", [](core::EngineConn& e) { e.ended_at = core::Clock::now() - 2h; });
  EXPECT_EQ(cleanup.run_once().removed_by_retention, 1u);
  EXPECT_FALSE(dir_exists("ec-young"));
  EXPECT_EQ(engines_.size(), 0u);
}

TEST_F(CleanupTest, NeverRemovesALiveEngineHoweverOld) {
  add("ec-live");  // created two days ago, still running
  engines_.transition("ec-live", S::kShuttingDown);
  add("ec-busy");
  engines_.transition("ec-busy", S::kBusy);
  auto s = settings(0ms);
  s.high_watermark_percent = 0.0001;  // the disk is "over": everything ended may go
  s.low_watermark_percent = 0.00001;
  EngineConnCleanupService cleanup(s, engines_, io_);
  const auto r = cleanup.run_once();
  EXPECT_EQ(r.removed_by_retention + r.removed_by_watermark, 0u);
  EXPECT_TRUE(dir_exists("ec-live"));
  EXPECT_TRUE(dir_exists("ec-busy"));
  EXPECT_EQ(engines_.size(), 2u);
  EXPECT_TRUE(cleanup.status().over_watermark);
}

TEST_F(CleanupTest, OverTheWatermarkRemovesTheOldestEndedFirstLiveOnesUntouched) {
  for (const auto* id : {"ec-a", "ec-b", "ec-c", "ec-d"})
    add(id);
  add("ec-live");
  // Ended at different times, all well within retention.
  end("ec-c", 40min);  // oldest
  end("ec-a", 30min);
  end("ec-d", 20min);
  end("ec-b", 10min);  // youngest
  std::vector<std::pair<std::string, CleanupReason>> removed;
  auto s = settings(24h);
  // The real file system is a few percent used at least: far over a 0.0001% watermark.
  s.high_watermark_percent = 0.0001;
  s.low_watermark_percent = 0.00001;
  s.on_removed = [&](const std::string& id, CleanupReason why) { removed.emplace_back(id, why); };
  EngineConnCleanupService cleanup(s, engines_, io_);
  const auto r = cleanup.run_once();
  EXPECT_EQ(r.removed_by_watermark, 4u) << "still over the low watermark: every ended one goes";
  EXPECT_EQ(r.removed_by_retention, 0u);
  ASSERT_EQ(removed.size(), 4u);
  EXPECT_EQ(removed[0].first, "ec-c");
  EXPECT_EQ(removed[1].first, "ec-a");
  EXPECT_EQ(removed[2].first, "ec-d");
  EXPECT_EQ(removed[3].first, "ec-b");
  for (const auto& [id, why] : removed) {
    EXPECT_EQ(why, CleanupReason::kWatermark) << id;
    EXPECT_FALSE(dir_exists(id)) << id;
  }
  EXPECT_TRUE(dir_exists("ec-live"));
  EXPECT_TRUE(engines_.get("ec-live"));
  const auto st = cleanup.status();
  EXPECT_EQ(st.removed_by_watermark, 4u);
  EXPECT_TRUE(st.over_watermark);
}

TEST_F(CleanupTest, OverTheWatermarkStopsOnceBelowTheLowWatermark) {
  // A file system of 10 MiB of which the work root's files are the used part: each ended
  // engine holds 1 MiB, so 4 of them are 40%.
  constexpr std::uint64_t kMiB = 1 << 20;
  for (const auto* id : {"ec-1", "ec-2", "ec-3", "ec-4"}) {
    add(id, "alice", kMiB);
  }
  end("ec-1", 4min);
  end("ec-2", 3min);
  end("ec-3", 2min);
  end("ec-4", 1min);
  auto s = settings(24h);
  s.high_watermark_percent = 35;
  s.low_watermark_percent = 25;
  s.disk_space = [](const fs::path& root) -> std::optional<DiskSpace> {
    std::uint64_t used = 0;
    for (const auto& f : fs::recursive_directory_iterator(root)) {
      if (f.is_regular_file()) used += f.file_size();
    }
    return DiskSpace{10 * kMiB, 10 * kMiB - used, used};
  };
  EngineConnCleanupService cleanup(s, engines_, io_);
  const auto r = cleanup.run_once();
  // 40% > 35%: remove ec-1 (30%, not below 25%), ec-2 (20%): stop.
  EXPECT_EQ(r.removed_by_watermark, 2u);
  EXPECT_FALSE(dir_exists("ec-1"));
  EXPECT_FALSE(dir_exists("ec-2"));
  EXPECT_TRUE(dir_exists("ec-3"));
  EXPECT_TRUE(dir_exists("ec-4"));
  const auto st = cleanup.status();
  EXPECT_FALSE(st.over_watermark);
  ASSERT_TRUE(st.disk);
  EXPECT_NEAR(st.disk->used_percent(), 20, 0.1);
  EXPECT_EQ(cleanup.run_once().removed_by_watermark, 0u) << "below the high watermark now";
}

TEST_F(CleanupTest, RefusesASymlinkedWorkDirAndAnythingOutsideTheWorkRoot) {
  // Something precious outside the work root.
  const auto precious = root_ / "precious";
  fs::create_directories(precious);
  std::ofstream(precious / "keep") << "keep me";

  // The engine's dir replaced by a symlink to it.
  add("ec-link");
  end("ec-link", 2h);
  fs::remove_all(work_root_ / "alice" / "ec-link");
  fs::create_directory_symlink(precious, work_root_ / "alice" / "ec-link");

  // A user dir that is a symlink to it (the engine dir then resolves outside the work root).
  fs::create_directories(precious / "ec-via-user");
  std::ofstream(precious / "ec-via-user" / "keep") << "keep me too";
  fs::create_directory_symlink(precious, work_root_ / "mallory");
  core::EngineConn e;
  e.id = "ec-via-user";
  e.user = "mallory";
  e.work_dir = (work_root_ / "mallory" / "ec-via-user").string();
  engines_.add_unless_ticket_known(e);
  engines_.transition(e.id, S::kRunning);
  end(e.id, 2h);

  // A record whose work dir is not <work_root>/<user>/<id>.
  e.id = "ec-elsewhere";
  e.user = "alice";
  e.work_dir = precious.string();
  engines_.add_unless_ticket_known(e);
  engines_.transition(e.id, S::kRunning);
  end(e.id, 2h);

  auto s = settings(1h);
  s.high_watermark_percent = 0.0001;  // and over the watermark too
  s.low_watermark_percent = 0.00001;
  EngineConnCleanupService cleanup(s, engines_, io_);
  const auto r = cleanup.run_once();
  EXPECT_EQ(r.removed_by_retention + r.removed_by_watermark, 0u);
  EXPECT_EQ(r.refused, 3u);
  EXPECT_TRUE(fs::exists(precious / "keep"));
  EXPECT_TRUE(fs::exists(precious / "ec-via-user" / "keep"));
  EXPECT_TRUE(fs::is_symlink(work_root_ / "alice" / "ec-link")) << "the link itself is left too";
  EXPECT_TRUE(engines_.get("ec-link")) << "the record stays for someone to look at";
  EXPECT_EQ(cleanup.status().refused, 3u);
  cleanup.run_once();
  EXPECT_EQ(cleanup.status().refused, 3u) << "counted (and logged) once each";
  EXPECT_TRUE(fs::exists(precious / "keep"));
}

TEST_F(CleanupTest, AnEndedEngineWithoutAWorkDirLosesItsRecord) {
  add("ec-gone");
  end("ec-gone", 2h);
  fs::remove_all(work_root_ / "alice" / "ec-gone");
  EngineConnCleanupService cleanup(settings(1h), engines_, io_);
  EXPECT_EQ(cleanup.run_once().removed_by_retention, 1u);
  EXPECT_FALSE(engines_.get("ec-gone"));
}

TEST_F(CleanupTest, TheTimerRunsPassesOnThePoolAndStopIsClean) {
  add("ec-old");
  end("ec-old", 2h);
  auto guard = boost::asio::make_work_guard(io_);
  std::thread loop([&] { io_.run(); });
  auto s = settings(1h);
  s.interval = 50ms;
  std::mutex mu;
  std::thread::id removed_on;
  s.on_removed = [&](const std::string&, CleanupReason) {
    std::lock_guard lock(mu);
    removed_on = std::this_thread::get_id();
  };
  {
    EngineConnCleanupService cleanup(s, engines_, io_);
    cleanup.start();
    EXPECT_TRUE(cleanup.status().disk) << "measured at start";
    for (int i = 0; i < 200 && engines_.get("ec-old"); ++i)
      std::this_thread::sleep_for(10ms);
    EXPECT_FALSE(engines_.get("ec-old")) << "a timer pass removed it";
    EXPECT_FALSE(dir_exists("ec-old"));
    cleanup.stop();
    cleanup.stop();  // idempotent
  }
  {
    std::lock_guard lock(mu);
    EXPECT_NE(removed_on, loop.get_id()) << "the pass ran off the io_context thread";
    EXPECT_NE(removed_on, std::this_thread::get_id());
  }
  guard.reset();
  io_.stop();
  loop.join();
}

TEST_F(CleanupTest, LogRotationRotatesLiveEnginesOnlyOnTheCleanupPool) {
  add("ec-live", "alice", 5000);
  add("ec-ended", "alice", 5000);
  end("ec-ended", 1min);
  EngineConnCleanupService cleanup(settings(24h), engines_, io_);
  EngineLogRotation rotation({work_root_, 1000, 2, 1h}, engines_, io_, cleanup.executor());
  EXPECT_EQ(rotation.run_once(), 1u);
  const auto live_logs = work_root_ / "alice" / "ec-live" / "logs";
  EXPECT_EQ(fs::file_size(live_logs / "stdout"), 0u);
  EXPECT_EQ(fs::file_size(live_logs / "stdout.1"), 5000u);
  EXPECT_FALSE(fs::exists(work_root_ / "alice" / "ec-ended" / "logs" / "stdout.1"))
      << "an ended engine's logs are left as they are";
  EXPECT_EQ(rotation.rotations(), 1u);

  // A log dir that a symlink leads out of the work root: not rotated.
  const auto outside = root_ / "outside";
  fs::create_directories(outside);
  std::ofstream(outside / "stdout") << std::string(5000, 'x');
  fs::remove_all(live_logs);
  fs::create_directory_symlink(outside, live_logs);
  EXPECT_EQ(rotation.run_once(), 0u);
  EXPECT_EQ(fs::file_size(outside / "stdout"), 5000u);
  EXPECT_FALSE(fs::exists(outside / "stdout.1"));
}

TEST_F(CleanupTest, LogRotationTimerRotatesAndStops) {
  add("ec-live", "alice", 5000);
  auto guard = boost::asio::make_work_guard(io_);
  std::thread loop([&] { io_.run(); });
  {
    EngineConnCleanupService cleanup(settings(24h), engines_, io_);
    EngineLogRotation rotation({work_root_, 1000, 2, 20ms}, engines_, io_, cleanup.executor());
    rotation.start();
    const auto logs = work_root_ / "alice" / "ec-live" / "logs";
    for (int round = 1; round <= 3; ++round) {
      std::ofstream(logs / "stdout", std::ios::app)
          << std::string(2000, static_cast<char>('a' + round));
      for (int i = 0; i < 300 && rotation.rotations() < static_cast<std::uint64_t>(round); ++i)
        std::this_thread::sleep_for(10ms);
      EXPECT_EQ(rotation.rotations(), static_cast<std::uint64_t>(round));
    }
    EXPECT_TRUE(fs::exists(logs / "stdout.2"));
    EXPECT_FALSE(fs::exists(logs / "stdout.3")) << "keep = 2";
    rotation.stop();
    cleanup.stop();
  }
  guard.reset();
  io_.stop();
  loop.join();
}

}  // namespace
