#include "services/engine_heartbeat_monitor.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>

namespace ecm::host {
namespace {

using namespace std::chrono_literals;

// The monitor on a real io_context run by two threads, with heartbeats recorded in a table the
// test writes from its own thread, as the callback service does.
class HeartbeatMonitorTest : public ::testing::Test {
 protected:
  HeartbeatMonitorTest()
      : guard_(io_.get_executor()),
        monitor_(
            io_,
            [this](const std::string& id) -> std::optional<core::Clock::time_point> {
              std::lock_guard lock(mu_);
              auto it = beats_.find(id);
              if (it == beats_.end()) return std::nullopt;
              return it->second;
            },
            [this](const std::string& id, std::chrono::milliseconds) { note("unhealthy " + id); },
            [this](const std::string& id, std::chrono::milliseconds) { note("healthy " + id); },
            [this](const std::string& id, std::chrono::milliseconds) { note("lost " + id); }) {
    for (int i = 0; i < 2; ++i)
      threads_.emplace_back([this] { io_.run(); });
  }
  ~HeartbeatMonitorTest() override {
    guard_.reset();
    io_.stop();
    for (auto& t : threads_)
      t.join();
  }

  void beat(const std::string& id) {
    std::lock_guard lock(mu_);
    beats_[id] = core::Clock::now();
  }
  void note(const std::string& event) {
    std::lock_guard lock(mu_);
    events_.push_back(event);
    cv_.notify_all();
  }
  bool wait_for(const std::string& event, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] {
      return std::find(events_.begin(), events_.end(), event) != events_.end();
    });
  }
  std::vector<std::string> events() {
    std::lock_guard lock(mu_);
    return events_;
  }

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, core::Clock::time_point> beats_;
  std::vector<std::string> events_;
  EngineHeartbeatMonitor monitor_;
  std::vector<std::thread> threads_;
};

TEST_F(HeartbeatMonitorTest, SilentEngineIsUnhealthyThenLostOnce) {
  monitor_.watch("a", 150ms);
  ASSERT_TRUE(wait_for("unhealthy a", 2s));
  ASSERT_TRUE(wait_for("lost a", 2s));
  std::this_thread::sleep_for(400ms);
  EXPECT_EQ(events(), (std::vector<std::string>{"unhealthy a", "lost a"}));
  EXPECT_EQ(monitor_.watching(), 0u);
}

TEST_F(HeartbeatMonitorTest, BeatingEngineIsNeverReported) {
  monitor_.watch("b", 150ms);
  for (int i = 0; i < 12; ++i) {
    beat("b");
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(events().empty());
  EXPECT_EQ(monitor_.watching(), 1u);
}

TEST_F(HeartbeatMonitorTest, ABeatAfterUnhealthyMakesItHealthyAgain) {
  monitor_.watch("c", 200ms);
  ASSERT_TRUE(wait_for("unhealthy c", 2s));
  // Beating again: noticed at the next check (at the latest one timeout later).
  std::atomic<bool> beating{true};
  std::thread beater([&] {
    while (beating) {
      beat("c");
      std::this_thread::sleep_for(40ms);
    }
  });
  EXPECT_TRUE(wait_for("healthy c", 2s));
  beating = false;
  beater.join();
  EXPECT_EQ(events(), (std::vector<std::string>{"unhealthy c", "healthy c"}));
}

TEST_F(HeartbeatMonitorTest, ForgottenEngineIsNotReportedAndWatchTwiceIsOneWatch) {
  monitor_.watch("d", 100ms);
  monitor_.watch("d", 100ms);
  EXPECT_EQ(monitor_.watching(), 1u);
  monitor_.forget("d");
  std::this_thread::sleep_for(350ms);
  EXPECT_TRUE(events().empty());
}

TEST_F(HeartbeatMonitorTest, ManyEnginesWatchedAndForgottenFromOtherThreads) {
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([this, t] {
      for (int i = 0; i < 50; ++i) {
        const std::string id = "e" + std::to_string(t) + "-" + std::to_string(i);
        monitor_.watch(id, 30ms);
        if (i % 2 == 0) monitor_.forget(id);
      }
    });
  }
  for (auto& c : callers)
    c.join();
  // Every watched-and-kept engine is lost exactly once; no forgotten one is reported.
  ASSERT_TRUE(wait_for("lost e3-49", 3s));
  std::this_thread::sleep_for(200ms);
  int lost = 0;
  for (const auto& e : events()) {
    if (e.starts_with("lost ")) ++lost;
    const auto n = std::stoi(e.substr(e.rfind('-') + 1));
    EXPECT_EQ(n % 2, 1) << e;
  }
  EXPECT_EQ(lost, 100);
}

}  // namespace
}  // namespace ecm::host
