// Recovery at start, on the real daemon: engines outlive a clean stop and a kill -9 of the ECM;
// the next start re-adopts the live ones (pid plus /proc start time, same boot), marks the ones
// that died meanwhile with the reason, and takes their resources back exactly.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "ecm_harness.hpp"
#include "store/engine_state_store.hpp"
#include "support/process_probe.hpp"

namespace ecm::itest {
namespace {

namespace fs = std::filesystem;

// The engines in the daemon's table, by id.
std::map<std::string, api::EngineConn> table_of(EcmProcess& ecm) {
  std::vector<api::EngineConn> all;
  ecm.client().listEngineConns(all, api::EngineConnFilter{});
  std::map<std::string, api::EngineConn> out;
  for (auto& e : all)
    out[e.id] = e;
  return out;
}

api::NodeResources resources_of(EcmProcess& ecm) {
  api::NodeResources r;
  ecm.client().getResources(r);
  return r;
}

EcmOptions leaving_engines() {
  EcmOptions o;
  o.stop_on_shutdown.reset();  // the daemon's default: a clean stop leaves the engines
  o.stop_grace = "2s";
  return o;
}

}  // namespace

TEST(Recovery, ACleanStopLeavesEnginesRunningAndTheNextStartReadoptsThemExactly) {
  EcmProcess ecm(leaving_engines());
  std::vector<api::EngineConn> engines;
  for (int i = 0; i < 3; ++i) {
    auto request = shell_request("alice", "sleep 600");
    request.__set_ticket_id("t-" + std::to_string(i));
    engines.push_back(ecm.launch(request));
  }
  auto ended = ecm.launch(shell_request("bob", "exit 3"));
  ecm.wait_for_status(ended.id, api::EngineStatus::FAILED);
  const auto before = table_of(ecm);
  ASSERT_EQ(ecm.terminate_and_wait(), 0);
  for (const auto& e : engines)
    EXPECT_TRUE(group_alive(e.pid)) << "a clean stop killed engine " << e.id;

  ecm.start();
  const auto after = table_of(ecm);
  ASSERT_EQ(after.size(), before.size());
  for (const auto& [id, b] : before) {
    ASSERT_EQ(after.count(id), 1u) << id;
    const auto& a = after.at(id);
    EXPECT_EQ(a.status, b.status) << id;
    EXPECT_EQ(a.pid, b.pid) << id;
    EXPECT_EQ(a.ticket_id, b.ticket_id) << id;
    EXPECT_EQ(a.failure_reason, b.failure_reason) << id;
  }
  EXPECT_EQ(recovery_violations(ecm), std::vector<std::string>{});
  EXPECT_EQ(resources_of(ecm).used.instances, 3);
  EXPECT_NE(ecm.daemon_stderr().find("3 engine(s) re-adopted"), std::string::npos)
      << ecm.daemon_stderr();

  // Stopping an adopted engine works as for any other: signal, exit seen, resources back.
  api::StopRequest stop;
  stop.__set_engine_id(engines[0].id);
  api::StopResult result;
  ecm.client().stopEngineConn(result, stop);
  auto stopped = ecm.wait_for_status(engines[0].id, api::EngineStatus::SUCCESS);
  EXPECT_EQ(stopped.status, api::EngineStatus::SUCCESS);
  EXPECT_TRUE(wait_group_gone(engines[0].pid));
  // An adopted engine that dies on its own is noticed (its exit is watched again): Failed, and
  // the status, which only its parent could read, is said to be unknown.
  ASSERT_EQ(kill(engines[1].pid, SIGKILL), 0);
  auto died = ecm.wait_for_status(engines[1].id, api::EngineStatus::FAILED);
  EXPECT_EQ(died.status, api::EngineStatus::FAILED);
  EXPECT_NE(died.failure_reason.find("unknown"), std::string::npos) << died.failure_reason;
  EXPECT_TRUE(eventually([&] { return resources_of(ecm).used.instances == 1; }));
  EXPECT_EQ(recovery_violations(ecm), std::vector<std::string>{});
  // The same ticket after the restart still means the same engine.
  auto again = shell_request("alice", "sleep 600");
  again.__set_ticket_id(engines[2].ticket_id);
  EXPECT_EQ(ecm.launch(again).id, engines[2].id);
}

TEST(Recovery, EnginesThatDiedWhileTheEcmWasDeadAreFailedWithTheReasonAndTheRestAdopted) {
  EcmProcess ecm(leaving_engines());
  auto keep = ecm.launch(shell_request("alice", "sleep 600"));
  auto dies = ecm.launch(shell_request("alice", "sleep 600"));
  auto stopping = ecm.launch(shell_request("alice", "trap '' TERM; sleep 600 & wait"));
  ecm.kill_hard();
  ASSERT_EQ(kill(-dies.pid, SIGKILL), 0);
  ASSERT_TRUE(wait_group_gone(dies.pid));

  ecm.start();
  auto& gone = ecm.client();
  api::EngineConn d;
  gone.getEngineConn(d, dies.id);
  EXPECT_EQ(d.status, api::EngineStatus::FAILED);
  EXPECT_NE(d.failure_reason.find("exited while the ECM was down"), std::string::npos)
      << d.failure_reason;
  EXPECT_TRUE(d.__isset.ended_at_ms);
  api::EngineConn k;
  gone.getEngineConn(k, keep.id);
  EXPECT_EQ(k.status, api::EngineStatus::RUNNING);
  EXPECT_EQ(k.pid, keep.pid);
  EXPECT_EQ(resources_of(ecm).used.instances, 2);
  EXPECT_EQ(recovery_violations(ecm), std::vector<std::string>{});

  // An engine that ignores SIGTERM is still killed after its grace when adopted.
  api::StopRequest stop;
  stop.__set_engine_id(stopping.id);
  api::StopResult result;
  ecm.client().stopEngineConn(result, stop);
  EXPECT_TRUE(wait_group_gone(stopping.pid, 10s));
  ecm.wait_for_status(stopping.id, api::EngineStatus::SUCCESS);
  EXPECT_EQ(recovery_violations(ecm), std::vector<std::string>{});
}

TEST(Recovery, ARecycledPidIsNeverTakenForTheEngineAndIsLeftAlone) {
  EcmProcess ecm(leaving_engines());
  auto e = ecm.launch(shell_request("alice", "sleep 600"));
  ecm.kill_hard();
  ASSERT_EQ(kill(-e.pid, SIGKILL), 0);
  ASSERT_TRUE(wait_group_gone(e.pid));
  // Another program now leads its own session under a pid the store names for the engine: what
  // a recycled pid looks like. Its start time differs from the engine's.
  pid_t other = fork();
  if (other == 0) {
    setsid();
    execl("/bin/sleep", "sleep", "600", static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_GT(other, 0);
  ASSERT_TRUE(eventually([&] { return ecm::test::leads_live_group(other); }));
  {
    host::EngineStateStore store(ecm.state_dir() / "ecm.db");
    for (auto r : store.load_all()) {
      if (r.id != e.id) continue;
      r.pid = other;
      store.put(r);
    }
  }
  ecm.start();
  api::EngineConn after;
  ecm.client().getEngineConn(after, e.id);
  EXPECT_EQ(after.status, api::EngineStatus::FAILED);
  EXPECT_NE(after.failure_reason.find("belongs to another process"), std::string::npos)
      << after.failure_reason;
  EXPECT_EQ(resources_of(ecm).used.instances, 0);
  // Not signalled, not watched: still running.
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(kill(other, 0), 0);
  kill(other, SIGKILL);
  wait_child(other, 5s);
}

TEST(Recovery, AnotherBootIdMeansNothingIsReadopted) {
  auto options = leaving_engines();
  options.engines_toml = "boot_id_file = \"boot_id\"\n";  // relative to the config's dir
  EcmProcess ecm(options, false);
  const auto boot = ecm.dir() / "boot_id";
  { std::ofstream(boot) << "11111111-aaaa-bbbb-cccc-000000000001\n"; }
  ecm.start();
  auto a = ecm.launch(shell_request("alice", "sleep 600"));
  auto b = ecm.launch(shell_request("bob", "sleep 600"));
  ecm.kill_hard();
  { std::ofstream(boot) << "22222222-aaaa-bbbb-cccc-000000000002\n"; }
  ecm.start();
  for (const auto& e : {a, b}) {
    api::EngineConn after;
    ecm.client().getEngineConn(after, e.id);
    EXPECT_EQ(after.status, api::EngineStatus::FAILED);
    EXPECT_NE(after.failure_reason.find("boot id changed"), std::string::npos)
        << after.failure_reason;
    // A pid of another boot means nothing: never signalled (the test's safety net ends them).
    EXPECT_TRUE(group_alive(e.pid));
  }
  EXPECT_EQ(resources_of(ecm).used.instances, 0);
}

TEST(Recovery, KillNineDuringAHundredConcurrentLaunchesLosesNoEngineAndCountsNoneTwice) {
  auto options = leaving_engines();
  options.extra_toml = "[resources]\ninstances = 200\nengine_memory = \"1MiB\"\n";
  EcmProcess ecm(options);
  std::vector<std::string> outcomes;
  std::thread launcher([&] {
    outcomes = launch_concurrently(ecm, 100, [](int i) {
      auto r = shell_request("u" + std::to_string(i % 5), "sleep 600");
      r.__set_ticket_id("kill9-" + std::to_string(i));
      return r;
    });
  });
  // Killed in the middle: some launches done, some in flight, some not begun.
  ASSERT_TRUE(eventually([&] { return engine_processes(ecm).size() >= 5; }, 30s));
  ecm.kill_hard();
  launcher.join();
  const auto failed_calls =
      std::count_if(outcomes.begin(), outcomes.end(), [](const auto& o) { return !o.empty(); });
  EXPECT_GT(failed_calls, 0) << "the kill came after every launch: nothing was tested";
  const auto survivors = engine_processes(ecm);

  ecm.start();
  // Launches the crash cut short are not this node failing to launch: it takes new engines.
  api::HealthReport health;
  ecm.client().getHealthReport(health);
  EXPECT_EQ(health.health, api::NodeHealth::HEALTHY);
  EXPECT_EQ(recovery_violations(ecm), std::vector<std::string>{});
  auto table = table_of(ecm);
  for (const auto& [id, pid] : survivors) {
    ASSERT_EQ(table.count(id), 1u) << "engine process " << pid << " has no record";
    EXPECT_TRUE(is_live(table.at(id))) << id << " " << table.at(id).failure_reason;
  }
  // The RM retries its launches with the same tickets: each gets the engine it already has, and
  // the rest are launched now; the node ends up with exactly one engine per ticket.
  auto retried = launch_concurrently(ecm, 100, [](int i) {
    auto r = shell_request("u" + std::to_string(i % 5), "sleep 600");
    r.__set_ticket_id("kill9-" + std::to_string(i));
    return r;
  });
  std::set<std::string> errors;
  for (const auto& o : retried) {
    if (!o.empty()) errors.insert(o);
  }
  EXPECT_TRUE(errors.empty()) << *errors.begin() << " (" << errors.size() << " distinct)";
  table = table_of(ecm);
  std::set<std::string> live_tickets;
  for (const auto& [id, e] : table) {
    if (is_live(e)) {
      EXPECT_TRUE(live_tickets.insert(e.ticket_id).second) << e.ticket_id;
    }
  }
  EXPECT_EQ(recovery_violations(ecm), std::vector<std::string>{});
  // And all of it can be stopped.
  api::StopRequest all;
  for (int u = 0; u < 5; ++u) {
    all.__set_user("u" + std::to_string(u));
    std::vector<api::StopResult> results;
    ecm.client().stopEngineConns(results, all);
  }
  EXPECT_TRUE(eventually([&] { return engine_processes(ecm).empty(); }, 20s));
  EXPECT_TRUE(eventually([&] { return resources_of(ecm).used.instances == 0; }));
}

TEST(Recovery, ADamagedStateStoreStopsTheStartAndIsKeptAsItWas) {
  EcmProcess ecm(leaving_engines());
  ecm.launch(shell_request("alice", "sleep 600"));
  ecm.kill_hard();
  const auto db = ecm.state_dir() / "ecm.db";
  {
    std::ofstream out(db, std::ios::binary | std::ios::trunc);
    out << std::string(8192, '\x42');
  }
  fs::remove(ecm.state_dir() / "ecm.db-wal");
  fs::remove(ecm.state_dir() / "ecm.db-shm");
  const auto before = read_file(db);
  auto r = ecm.start_expecting_failure();
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("is damaged"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(db.string()), std::string::npos) << r.err;
  EXPECT_EQ(read_file(db), before) << "the refused store was modified";
}

TEST(Recovery, AnAdoptedEngineKeepsCallingBackOnTheSameAddressAndStaysHealthy) {
  auto options = leaving_engines();
  options.shell_toml = "[ecm]\nheartbeat_timeout = \"700ms\"\n";
  EcmProcess ecm(options);
  auto e = ecm.launch(shell_request(
      "alice", "while true; do \"$ECM_CTL\" callback --heartbeat >/dev/null; sleep 0.15; done"));
  ASSERT_EQ(e.status, api::EngineStatus::RUNNING);
  ecm.kill_hard();
  std::this_thread::sleep_for(2s);  // longer than two heartbeat timeouts
  ecm.start();
  // Well past two timeouts after the restart: had its heartbeats nowhere to go, it would be lost.
  std::this_thread::sleep_for(2500ms);
  api::EngineConn after;
  ecm.client().getEngineConn(after, e.id);
  EXPECT_EQ(after.status, api::EngineStatus::RUNNING) << after.failure_reason;
  EXPECT_FALSE(after.__isset.unhealthy_reason) << after.unhealthy_reason;
  ASSERT_TRUE(after.__isset.last_heartbeat_ms);
  EXPECT_GT(after.last_heartbeat_ms, std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                             .count() -
                                         1000);
}

}  // namespace ecm::itest
