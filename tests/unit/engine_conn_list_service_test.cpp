#include "services/engine_conn_list_service.hpp"

#include <gtest/gtest.h>

#include <thread>

using namespace ecm;
using namespace ecm::host;
using S = core::EngineStatus;

namespace {
core::EngineConn record(const std::string& id, const std::string& ticket,
                        const std::string& user = "alice") {
  core::EngineConn e;
  e.id = id;
  e.ticket_id = ticket;
  e.user = user;
  e.engine_type = "shell";
  return e;
}
}  // namespace

TEST(EngineConnListService, SameTicketMakesOneEngineEvenConcurrently) {
  EngineConnListService s;
  std::atomic<int> inserted{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto [r, fresh] = s.add_unless_ticket_known(record("ec-" + std::to_string(i), "T1"));
      if (fresh) ++inserted;
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(inserted, 1);
  EXPECT_EQ(s.size(), 1u);
  // No ticket: always a new engine.
  EXPECT_TRUE(s.add_unless_ticket_known(record("ec-a", "")).second);
  EXPECT_TRUE(s.add_unless_ticket_known(record("ec-b", "")).second);
}

TEST(EngineConnListService, IllegalTransitionChangesNothing) {
  EngineConnListService s;
  s.add_unless_ticket_known(record("ec-1", ""));
  ASSERT_TRUE(s.transition("ec-1", S::kRunning));
  ASSERT_TRUE(s.transition("ec-1", S::kSuccess, [](auto& e) { e.stop_reason = "done"; }));
  EXPECT_FALSE(s.transition("ec-1", S::kRunning, [](auto& e) { e.stop_reason = "changed"; }));
  EXPECT_EQ(s.get("ec-1")->status, S::kSuccess);
  EXPECT_EQ(s.get("ec-1")->stop_reason, "done");
  EXPECT_FALSE(s.transition("nope", S::kRunning));
}

TEST(EngineConnListService, FinishRecordsExitOnceAndDropsThePluginPin) {
  EngineConnListService s;
  s.add_unless_ticket_known(record("ec-1", ""));
  auto pin = std::make_shared<int>(1);
  s.set_runtime("ec-1", EngineRuntime{pin, 15, std::chrono::seconds(1), {}, {}, std::nullopt});
  s.transition("ec-1", S::kRunning);
  EXPECT_EQ(pin.use_count(), 2);
  core::ExitStatus exit;
  exit.code = 3;
  auto ended = s.finish("ec-1", exit);
  ASSERT_TRUE(ended);
  EXPECT_EQ(ended->status, S::kFailed);
  EXPECT_EQ(ended->exit_code, 3);
  EXPECT_EQ(ended->failure_reason, "exited with code 3");
  EXPECT_EQ(pin.use_count(), 1) << "an ended engine still pins its plugin";
  EXPECT_FALSE(s.finish("ec-1", exit)) << "an exit is recorded once";
}

TEST(EngineConnListService, StoppedEngineEndsSuccessWhateverTheSignal) {
  EngineConnListService s;
  s.add_unless_ticket_known(record("ec-1", ""));
  s.transition("ec-1", S::kRunning);
  s.transition("ec-1", S::kShuttingDown, [](auto& e) { e.stop_reason = "stopped by request"; });
  core::ExitStatus exit;
  exit.signal = 9;
  auto ended = s.finish("ec-1", exit);
  ASSERT_TRUE(ended);
  EXPECT_EQ(ended->status, S::kSuccess);
  EXPECT_EQ(ended->exit_signal, 9);
  EXPECT_EQ(ended->stop_reason, "stopped by request");
}

// A snapshot shares the table's records without copying them: a later change replaces the record
// in the table and leaves the one the snapshot holds as it was.
TEST(EngineConnListService, ASnapshotIsNotChangedByLaterChanges) {
  EngineConnListService s;
  s.add_unless_ticket_known(record("ec-1", "t-1"));
  const auto before = s.snapshot({});
  ASSERT_EQ(before.size(), 1u);
  ASSERT_TRUE(s.transition("ec-1", S::kRunning, [](core::EngineConn& e) { e.pid = 42; }));
  ASSERT_TRUE(s.update("ec-1", [](core::EngineConn& e) { e.last_message = "hello"; }));
  EXPECT_EQ(before[0]->status, S::kStarting);
  EXPECT_EQ(before[0]->pid, 0);
  EXPECT_EQ(before[0]->last_message, "");
  const auto after = s.snapshot({});
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0]->status, S::kRunning);
  EXPECT_EQ(after[0]->pid, 42);
  EXPECT_EQ(after[0]->last_message, "hello");
  EXPECT_EQ(s.snapshot({std::nullopt, std::nullopt, S::kStarting}).size(), 0u);
}

TEST(EngineConnListService, FiltersCombine) {
  EngineConnListService s;
  s.add_unless_ticket_known(record("ec-1", "", "alice"));
  s.add_unless_ticket_known(record("ec-2", "", "bob"));
  s.add_unless_ticket_known(record("ec-3", "", "alice"));
  s.transition("ec-3", S::kRunning);
  EXPECT_EQ(s.list({}).size(), 3u);
  EXPECT_EQ(s.list({"alice", std::nullopt, std::nullopt}).size(), 2u);
  EXPECT_EQ(s.list({"alice", std::string("shell"), S::kRunning}).size(), 1u);
  EXPECT_EQ(s.list({std::nullopt, std::string("python"), std::nullopt}).size(), 0u);
}
