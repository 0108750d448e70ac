// Resource admission, getResources and stopEngineConns against the real daemon.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "ecm_harness.hpp"

namespace ecm::itest {
namespace {

constexpr std::int64_t kMiB = 1024 * 1024;
constexpr std::int64_t kGiB = 1024 * kMiB;

std::string text(const api::ResourceAmount& a) {
  return "{memory_bytes=" + std::to_string(a.memory_bytes) + ", cores=" + std::to_string(a.cores) +
         ", instances=" + std::to_string(a.instances) + "}";
}

api::ResourceAmount amount(std::int64_t memory, std::int32_t cores, std::int32_t instances) {
  api::ResourceAmount a;
  a.__set_memory_bytes(memory);
  a.__set_cores(cores);
  a.__set_instances(instances);
  return a;
}

api::ResourceAmount minus(const api::ResourceAmount& a, const api::ResourceAmount& b) {
  return amount(a.memory_bytes - b.memory_bytes, a.cores - b.cores, a.instances - b.instances);
}

bool same(const api::ResourceAmount& a, const api::ResourceAmount& b) {
  return a.memory_bytes == b.memory_bytes && a.cores == b.cores && a.instances == b.instances;
}

#define EXPECT_AMOUNT(actual, expected) \
  EXPECT_TRUE(same(actual, expected)) << text(actual) << " != " << text(expected)

api::NodeResources resources(api::EngineConnManagerServiceClient& c) {
  api::NodeResources r;
  c.getResources(r);
  return r;
}

// The ledger is idle: nothing locked or used, everything but the protected part left.
bool idle(const api::NodeResources& r) {
  return same(r.locked, amount(0, 0, 0)) && same(r.used, amount(0, 0, 0)) &&
         same(r.left, minus(r.max, r.protected_));
}

std::string describe(const api::NodeResources& r) {
  return "max " + text(r.max) + " protected " + text(r.protected_) + " locked " + text(r.locked) +
         " used " + text(r.used) + " left " + text(r.left);
}

std::vector<api::EngineConn> all_engines(api::EngineConnManagerServiceClient& c) {
  std::vector<api::EngineConn> all;
  c.listEngineConns(all, api::EngineConnFilter{});
  return all;
}

bool ended(const api::EngineConn& e) {
  return e.status == api::EngineStatus::SUCCESS || e.status == api::EngineStatus::FAILED;
}

api::LaunchRequest sized(const std::string& user, std::int64_t memory, std::int32_t cores) {
  auto r = shell_request(user, "sleep 600");
  if (memory) r.__set_memory_bytes(memory);
  if (cores) r.__set_cores(cores);
  return r;
}

void stop(EcmProcess& ecm, const std::string& id, bool force = true) {
  api::StopRequest req;
  req.__set_engine_id(id);
  req.__set_force(force);
  api::StopResult r;
  ecm.client().stopEngineConn(r, req);
}

EcmOptions with_resources(const std::string& table) {
  EcmOptions o;
  o.extra_toml = "[resources]\n" + table;
  return o;
}

TEST(Resources, Admission_MemoryShortIsRefusedAndChangesNothing) {
  EcmProcess ecm(with_resources("memory = \"1GiB\"\nprotected_memory = \"0B\"\ninstances = 10\n"));
  const auto first = ecm.launch(sized("alice", 512 * kMiB, 0));
  ASSERT_EQ(first.status, api::EngineStatus::RUNNING);
  const auto before = resources(ecm.client());
  EXPECT_EQ(before.left.memory_bytes, 512 * kMiB) << describe(before);

  auto error = ecm_error_of([&] { ecm.launch(sized("alice", 2 * kGiB, 0)); });
  ASSERT_TRUE(error.has_value()) << "a 2GiB launch was admitted on a 1GiB node";
  EXPECT_EQ(error->code, api::ErrorCode::INSUFFICIENT_RESOURCES) << error->message;
  EXPECT_NE(error->message.find("memory"), std::string::npos) << error->message;
  EXPECT_NE(error->message.find("2048MiB"), std::string::npos) << error->message;

  EXPECT_EQ(all_engines(ecm.client()).size(), 1u);
  const auto after = resources(ecm.client());
  EXPECT_EQ(after, before) << describe(before) << "\nvs\n" << describe(after);

  // Exactly what is left is still admitted.
  const auto fits = ecm.launch(sized("alice", 512 * kMiB, 0));
  EXPECT_EQ(fits.status, api::EngineStatus::RUNNING);
  EXPECT_EQ(resources(ecm.client()).left.memory_bytes, 0);
}

TEST(Resources, Admission_InstancesCapConcurrentEnginesUntilOneEnds) {
  EcmProcess ecm(with_resources("instances = 3\n"));
  std::vector<api::EngineConn> engines;
  for (int i = 0; i < 3; ++i)
    engines.push_back(ecm.launch(shell_request("alice", "sleep 600")));
  const auto before = resources(ecm.client());
  EXPECT_EQ(before.left.instances, 0) << describe(before);

  auto error = ecm_error_of([&] { ecm.launch(shell_request("alice", "sleep 600")); });
  ASSERT_TRUE(error.has_value()) << "a 4th engine was admitted with instances = 3";
  EXPECT_EQ(error->code, api::ErrorCode::INSUFFICIENT_RESOURCES) << error->message;
  EXPECT_NE(error->message.find("instance"), std::string::npos) << error->message;
  EXPECT_EQ(all_engines(ecm.client()).size(), 3u);
  EXPECT_EQ(resources(ecm.client()), before);

  stop(ecm, engines[0].id);
  ecm.wait_for_status(engines[0].id, ended);
  // The release follows the engine's end (on_exit: finish, then release).
  ASSERT_TRUE(eventually([&] { return resources(ecm.client()).used.instances == 2; }))
      << describe(resources(ecm.client()));
  const auto next = ecm.launch(shell_request("alice", "sleep 600"));
  EXPECT_EQ(next.status, api::EngineStatus::RUNNING);
}

TEST(Resources, GetResources_CountsRunningEnginesAsUsedAndFreesThemAtTheirEnd) {
  EcmProcess ecm(with_resources("cores = 8\n"));
  const auto start = resources(ecm.client());
  EXPECT_EQ(start.max.cores, 8);
  EXPECT_TRUE(idle(start)) << describe(start);

  const auto a = ecm.launch(sized("alice", 100 * kMiB, 1));
  const auto b = ecm.launch(sized("bob", 100 * kMiB, 1));
  EXPECT_EQ(a.memory_bytes, 100 * kMiB);
  EXPECT_EQ(a.cores, 1);
  const auto r = resources(ecm.client());
  EXPECT_AMOUNT(r.max, start.max);
  EXPECT_AMOUNT(r.protected_, start.protected_);
  EXPECT_AMOUNT(r.used, amount(200 * kMiB, 2, 2));
  EXPECT_AMOUNT(r.locked, amount(0, 0, 0));
  EXPECT_AMOUNT(r.left, minus(minus(minus(r.max, r.protected_), r.used), r.locked));

  stop(ecm, a.id);
  stop(ecm, b.id);
  ecm.wait_for_status(a.id, ended);
  ecm.wait_for_status(b.id, ended);
  EXPECT_TRUE(eventually([&] { return idle(resources(ecm.client())); }))
      << describe(resources(ecm.client()));
}

TEST(Resources, ThousandLaunchStopCyclesFromFourClientsLeakNothing) {
  EcmProcess ecm(with_resources("instances = 1000\n"));
  constexpr int kThreads = 4;
  constexpr int kPerThread = 250;
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::vector<api::EngineConn>> launched(kThreads);
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      try {
        auto c = ecm.connect();
        for (int i = 0; i < kPerThread; ++i) {
          api::EngineConn e;
          (*c)->launchEngineConn(e, shell_request("u" + std::to_string(t), "sleep 600"));
          launched[t].push_back(e);
          api::StopRequest req;
          req.__set_engine_id(e.id);
          req.__set_force(true);
          api::StopResult r;
          (*c)->stopEngineConn(r, req);
        }
      } catch (const api::EcmError& e) {
        errors[t] = "EcmError " + std::to_string(e.code) + ": " + e.message;
      } catch (const std::exception& e) {
        errors[t] = e.what();
      }
    });
  }
  for (auto& th : threads)
    th.join();
  const auto t_launched = std::chrono::steady_clock::now();
  std::set<std::string> ids;
  for (const auto& v : launched) {
    for (const auto& e : v) {
      ids.insert(e.id);
      if (e.__isset.pid && e.pid > 0) ecm.track(e.pid);
    }
  }
  for (const auto& e : errors)
    EXPECT_TRUE(e.empty()) << e;
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kThreads * kPerThread));

  std::size_t running = 0;
  EXPECT_TRUE(eventually(
      [&] {
        const auto all = all_engines(ecm.client());
        running = static_cast<std::size_t>(
            std::count_if(all.begin(), all.end(), [](const auto& e) { return !ended(e); }));
        return all.size() == ids.size() && running == 0;
      },
      60s))
      << running << " engines not ended";
  EXPECT_TRUE(eventually([&] { return idle(resources(ecm.client())); }))
      << describe(resources(ecm.client()));
  const auto t_done = std::chrono::steady_clock::now();
  using ms = std::chrono::milliseconds;
  std::cout << "[ timing ] " << kThreads * kPerThread
            << " launch+stop cycles: " << std::chrono::duration_cast<ms>(t_launched - t0).count()
            << " ms; all ended after " << std::chrono::duration_cast<ms>(t_done - t0).count()
            << " ms\n";
}

TEST(Resources, Launch_FailingPluginReleasesWhatItLocked) {
  EcmOptions o;
  o.test_plugins = {"misbehaving"};
  o.enabled = std::vector<std::string>{"shell", "misbehaving"};
  EcmProcess ecm(o);
  const auto before = resources(ecm.client());
  ASSERT_TRUE(idle(before)) << describe(before);
  for (const std::string mode : {"throw", "throw_int", "garbage", "refuse"}) {
    SCOPED_TRACE("mode " + mode);
    api::LaunchRequest req;
    req.__set_user("alice");
    req.__set_engine_type("misbehaving");
    req.__set_properties({{"mode", mode}});
    req.__set_memory_bytes(100 * kMiB);
    req.__set_cores(1);
    auto error = ecm_error_of([&] { ecm.launch(req); });
    ASSERT_TRUE(error.has_value()) << "accepted";
    EXPECT_EQ(error->code, api::ErrorCode::PLUGIN_FAILED) << error->message;
    const auto r = resources(ecm.client());
    EXPECT_TRUE(idle(r)) << describe(r);
    EXPECT_EQ(r, before) << describe(r);
  }
}

std::vector<std::string> ids_of(const std::vector<api::StopResult>& results) {
  std::vector<std::string> out;
  for (const auto& r : results)
    out.push_back(r.engine.id);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> ids_of(const std::vector<api::EngineConn>& engines) {
  std::vector<std::string> out;
  for (const auto& e : engines)
    out.push_back(e.id);
  std::sort(out.begin(), out.end());
  return out;
}

TEST(StopEngineConns, ByUser_StopsExactlyThatUsersEngines) {
  EcmProcess ecm;
  std::vector<api::EngineConn> alice, bob;
  for (int i = 0; i < 3; ++i)
    alice.push_back(ecm.launch(shell_request("alice", "sleep 600")));
  for (int i = 0; i < 2; ++i)
    bob.push_back(ecm.launch(shell_request("bob", "sleep 600")));

  api::StopRequest req;
  req.__set_user("alice");
  req.__set_force(true);
  std::vector<api::StopResult> results;
  ecm.client().stopEngineConns(results, req);
  EXPECT_EQ(ids_of(results), ids_of(alice));
  for (const auto& r : results) {
    EXPECT_EQ(r.engine.user, "alice");
    EXPECT_FALSE(r.already_ended) << r.engine.id;
  }
  for (const auto& e : alice) {
    EXPECT_TRUE(ended(ecm.wait_for_status(e.id, ended))) << e.id;
    EXPECT_TRUE(wait_group_gone(e.pid)) << e.id;
  }
  for (const auto& e : bob) {
    api::EngineConn now;
    ecm.client().getEngineConn(now, e.id);
    EXPECT_EQ(now.status, api::EngineStatus::RUNNING) << e.id;
    EXPECT_TRUE(group_alive(e.pid)) << e.id;
  }
  // A second call finds nothing left to stop: ended engines are skipped.
  std::vector<api::StopResult> again;
  ecm.client().stopEngineConns(again, req);
  EXPECT_TRUE(again.empty()) << again.size();
}

TEST(StopEngineConns, ByType_AndByUserAndType) {
  EcmOptions o;
  o.test_plugins = {"misbehaving"};
  o.enabled = std::vector<std::string>{"shell", "misbehaving"};
  EcmProcess ecm(o);
  auto other = [&](const std::string& user) {
    api::LaunchRequest req;
    req.__set_user(user);
    req.__set_engine_type("misbehaving");
    req.__set_properties({{"mode", "ok"}});
    return ecm.launch(req);
  };
  const auto shell_alice = ecm.launch(shell_request("alice", "sleep 600"));
  const auto shell_bob = ecm.launch(shell_request("bob", "sleep 600"));
  const auto other_alice = other("alice");
  const auto other_bob = other("bob");

  api::StopRequest by_both;
  by_both.__set_user("alice");
  by_both.__set_engine_type("misbehaving");
  by_both.__set_force(true);
  std::vector<api::StopResult> results;
  ecm.client().stopEngineConns(results, by_both);
  EXPECT_EQ(ids_of(results), std::vector<std::string>{other_alice.id});
  ecm.wait_for_status(other_alice.id, ended);

  api::StopRequest by_type;
  by_type.__set_engine_type("shell");
  by_type.__set_force(true);
  results.clear();
  ecm.client().stopEngineConns(results, by_type);
  EXPECT_EQ(ids_of(results), ids_of(std::vector<api::EngineConn>{shell_alice, shell_bob}));
  ecm.wait_for_status(shell_alice.id, ended);
  ecm.wait_for_status(shell_bob.id, ended);

  api::EngineConn now;
  ecm.client().getEngineConn(now, other_bob.id);
  EXPECT_EQ(now.status, api::EngineStatus::RUNNING);
  EXPECT_TRUE(group_alive(other_bob.pid));
}

TEST(StopEngineConns, NeitherUserNorType_IsInvalidRequestAndStopsNothing) {
  EcmProcess ecm;
  const auto e = ecm.launch(shell_request("alice", "sleep 600"));
  for (const bool with_id : {false, true}) {
    SCOPED_TRACE(with_id ? "with engine_id" : "empty request");
    api::StopRequest req;
    if (with_id) req.__set_engine_id(e.id);
    req.__set_force(true);
    auto error = ecm_error_of([&] {
      std::vector<api::StopResult> results;
      ecm.client().stopEngineConns(results, req);
    });
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->code, api::ErrorCode::INVALID_REQUEST) << error->message;
  }
  api::EngineConn now;
  ecm.client().getEngineConn(now, e.id);
  EXPECT_EQ(now.status, api::EngineStatus::RUNNING);
}

}  // namespace
}  // namespace ecm::itest
