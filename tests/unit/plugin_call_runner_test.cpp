// PluginCallRunner: calls finish or are given up on at their deadline; a given-up call keeps its
// worker until it returns; past max_stuck, calls are refused at once.
#include "plugins/plugin_call_runner.hpp"

#include <sched.h>

#include <atomic>
#include <future>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "plugins/plugin_call.hpp"

using namespace ecm::host;
using namespace std::chrono_literals;
using Outcome = PluginCallRunner::Outcome;

TEST(PluginCallRunner, AFinishedCallReturnsItsEffectsToTheCaller) {
  PluginCallRunner runner(1s);
  int value = 0;
  auto shared = std::make_shared<int>(0);
  EXPECT_EQ(runner.run([shared] { *shared = 42; }, 1s), Outcome::kFinished);
  value = *shared;
  EXPECT_EQ(value, 42);
  EXPECT_EQ(runner.stuck(), 0u);
}

TEST(PluginCallRunner, AHangingCallTimesOutAndItsWorkerIsCountedStuckUntilItReturns) {
  PluginCallRunner runner(1s, 4);
  auto release = std::make_shared<std::promise<void>>();
  auto released = release->get_future().share();
  const auto began = std::chrono::steady_clock::now();
  EXPECT_EQ(runner.run([released] { released.wait(); }, 100ms), Outcome::kTimedOut);
  EXPECT_LT(std::chrono::steady_clock::now() - began, 2s);
  EXPECT_EQ(runner.stuck(), 1u);
  // Other calls still run, on another worker.
  auto done = std::make_shared<std::atomic<bool>>(false);
  EXPECT_EQ(runner.run([done] { *done = true; }, 1s), Outcome::kFinished);
  EXPECT_TRUE(*done);
  release->set_value();
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (runner.stuck() != 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(5ms);
  EXPECT_EQ(runner.stuck(), 0u);
}

namespace {
int cpus_allowed() {
  cpu_set_t set;
  CPU_ZERO(&set);
  return sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
}
}  // namespace

// An idle worker is woken on the caller's CPU (the caller is about to sleep on it: cheaper than
// waking another, halted or busy); a worker given up on may run on every CPU again.
TEST(PluginCallRunner, AnIdleWorkerRunsOnTheCallersCpuAndAGivenUpOneIsUnpinned) {
  const int all = cpus_allowed();
  if (all < 2) GTEST_SKIP() << "one CPU: nothing to pin";
  PluginCallRunner runner(1s, 4);
  EXPECT_EQ(runner.run([] {}, 1s), Outcome::kFinished);  // makes a worker
  std::this_thread::sleep_for(50ms);                     // which goes back to waiting
  auto seen = std::make_shared<std::atomic<int>>(0);
  EXPECT_EQ(runner.run([seen] { *seen = cpus_allowed(); }, 1s), Outcome::kFinished);
  EXPECT_EQ(*seen, 1) << "the idle worker was not moved to the caller's CPU";

  std::this_thread::sleep_for(50ms);
  auto release = std::make_shared<std::promise<void>>();
  auto released = release->get_future().share();
  auto after = std::make_shared<std::promise<int>>();
  auto allowed_after = after->get_future();
  EXPECT_EQ(runner.run(
                [released, after] {
                  released.wait();
                  after->set_value(cpus_allowed());
                },
                100ms),
            Outcome::kTimedOut);
  release->set_value();
  EXPECT_EQ(allowed_after.get(), all) << "a worker given up on stayed pinned to one CPU";
}

TEST(PluginCallRunner, PastMaxStuckCallsAreRefusedAtOnceAndNeverRun) {
  PluginCallRunner runner(1s, 2);
  auto release = std::make_shared<std::promise<void>>();
  auto released = release->get_future().share();
  for (int i = 0; i < 2; ++i)
    EXPECT_EQ(runner.run([released] { released.wait(); }, 20ms), Outcome::kTimedOut);
  auto ran = std::make_shared<std::atomic<bool>>(false);
  EXPECT_EQ(runner.run([ran] { *ran = true; }, 1s), Outcome::kRefused);
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(*ran);
  release->set_value();
}

TEST(PluginCallRunner, ConcurrentCallersEachGetTheirOwnResult) {
  PluginCallRunner runner(1s);
  std::vector<std::thread> callers;
  std::atomic<int> finished{0};
  for (int t = 0; t < 8; ++t) {
    callers.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        auto out = std::make_shared<int>(-1);
        if (runner.run([out, t, i] { *out = t * 1000 + i; }, 5s) == Outcome::kFinished &&
            *out == t * 1000 + i) {
          ++finished;
        }
      }
    });
  }
  for (auto& c : callers)
    c.join();
  EXPECT_EQ(finished.load(), 8 * 200);
}

TEST(PluginCallRunner, GuardedWithinMapsThrowsAndTimeoutsToTheCallersError) {
  PluginCallRunner runner(1s);
  std::string error;
  auto on_error = [&](const std::string& m) {
    error = m;
    throw std::runtime_error(m);
  };
  EXPECT_EQ(guarded_within(
                &runner, 1s, [] { return 7; }, on_error),
            7);
  EXPECT_THROW(guarded_within(
                   &runner, 1s, []() -> int { throw std::logic_error("boom"); }, on_error),
               std::runtime_error);
  EXPECT_EQ(error, "threw: boom");
  auto release = std::make_shared<std::promise<void>>();
  auto released = release->get_future().share();
  EXPECT_THROW(guarded_within(
                   &runner, 50ms,
                   [released] {
                     released.wait();
                     return 1;
                   },
                   on_error),
               std::runtime_error);
  EXPECT_NE(error.find("did not return within 50ms"), std::string::npos) << error;
  release->set_value();
}
