// ECM events on the real daemon, as listener plugins receive them: every kind reaches a plugin, in
// order, without gaps; a listener that throws or hangs costs launches nothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "ecm_harness.hpp"
#include "plugin_files.hpp"

namespace ecm::itest {
namespace {

namespace fs = std::filesystem;

// One line the recorder test plugin wrote: "SEQ KIND ENGINE_ID FROM TO PID PLUGIN".
struct Recorded {
  std::uint64_t sequence = 0;
  std::string kind, engine_id, from, to;
  long long pid = 0;
  std::string plugin;
};

struct Recording {
  std::vector<Recorded> events;
  bool closed = false;  // on_close ran (the last line)
};

Recording read_recording(const fs::path& path) {
  Recording r;
  std::istringstream in(read_file(path));
  std::string line;
  while (std::getline(in, line)) {
    if (line == "closed") {
      r.closed = true;
      continue;
    }
    std::istringstream fields(line);
    Recorded e;
    fields >> e.sequence >> e.kind >> e.engine_id >> e.from >> e.to >> e.pid >> e.plugin;
    r.events.push_back(e);
  }
  return r;
}

std::size_t count_kind(const Recording& r, const std::string& kind) {
  return static_cast<std::size_t>(std::count_if(r.events.begin(), r.events.end(),
                                                [&](const Recorded& e) { return e.kind == kind; }));
}

// Sequence numbers one listener saw: each the one before + 1 (in order, none lost).
void expect_consecutive(const Recording& r) {
  for (std::size_t i = 1; i < r.events.size(); ++i) {
    ASSERT_EQ(r.events[i].sequence, r.events[i - 1].sequence + 1)
        << "event " << i << " (" << r.events[i].kind << ") after " << r.events[i - 1].kind;
  }
}

std::string recorder_toml(const fs::path& out, const std::string& mode = "record",
                          const fs::path& release = {}) {
  std::string t = "path = \"" + out.string() + "\"\nmode = \"" + mode + "\"\n";
  if (!release.empty()) t += "release = \"" + release.string() + "\"\n";
  return t;
}

api::SetHealthRequest rm_health(api::NodeHealth::type h) {
  api::SetHealthRequest r;
  r.__set_health(h);
  r.__set_reason("maintenance window");
  return r;
}

api::SetHealthRequest rm_clear() {
  api::SetHealthRequest r;
  r.__set_clear(true);
  return r;
}

TEST(Events, EveryKindTheEcmPublishesReachesAListenerPluginInOrder) {
  const fs::path out = fs::temp_directory_path() / ("ecm-events-" + std::to_string(getpid()));
  fs::remove(out);
  const fs::path res = fs::temp_directory_path() / ("ecm-events-res-" + std::to_string(getpid()));
  fs::create_directories(res);
  std::ofstream(res / "a.txt") << "a resource\n";
  EcmOptions o;
  o.plugins = {"shell", "file"};
  o.test_plugins = {"recorder"};
  o.plugin_toml["recorder"] = recorder_toml(out);
  o.plugin_toml["file"] = "roots = [\"" + res.string() + "\"]\n";
  o.extra_toml =
      "[logs]\nrotate_size = \"64KiB\"\nrotate_keep = 2\nrotate_check_interval = \"100ms\"\n";
  auto ecm = std::make_unique<EcmProcess>(o);
  const fs::path plugin_dir = ecm->dir() / "plugins";

  // Engine kinds: state changes, resource localized, launched, exited (stopped), log rotated (a
  // chatty engine).
  api::ResourceSpec resource;
  resource.__set_uri("file://" + (res / "a.txt").string());
  auto with_resource = shell_request("alice", "sleep 600");
  with_resource.__set_resources({resource});
  const auto quiet = ecm->launch(with_resource);
  const auto chatty = ecm->launch(shell_request(
      "bob", "yes 0123456789012345678901234567890123456789 | head -c 200000; sleep 600"));
  api::StopRequest stop;
  stop.__set_engine_id(quiet.id);
  api::StopResult stopped;
  ecm->client().stopEngineConn(stopped, stop);
  ecm->wait_for_status(quiet.id, api::EngineStatus::SUCCESS);

  // Plugin kinds: loaded (a new file by path), swapped (a new file under the same name),
  // refused (a file of the wrong ABI), unloaded.
  const fs::path elsewhere = ecm->dir() / "elsewhere";
  fs::create_directories(elsewhere);
  install_plugin_file(swap_build("v1"), elsewhere, "swap");
  api::PluginInfo info;
  ecm->client().loadPlugin(info, (elsewhere / "swap.so").string());
  install_plugin_file(swap_build("v2"), plugin_dir, "swap");
  ecm->client().reloadPlugin(info, "swap");
  install_plugin_file(swap_build("wrong-abi"), plugin_dir, "swap");
  EXPECT_TRUE(ecm_error_of([&] { ecm->client().reloadPlugin(info, "swap"); }));
  api::UnloadPluginRequest unload;
  unload.__set_name("swap");
  ecm->client().unloadPlugin(info, unload);

  // ECM kinds: health (the RM's word, then cleared); starting happened; stopping at the end.
  api::HealthReport health;
  ecm->client().setHealth(health, rm_health(api::NodeHealth::UNHEALTHY));
  ecm->client().setHealth(health, rm_clear());

  ASSERT_TRUE(eventually([&] { return count_kind(read_recording(out), "engine_log_rotated") > 0; }))
      << read_file(out);
  EXPECT_EQ(ecm->terminate_and_wait(), 0);
  ecm.reset();

  const auto r = read_recording(out);
  fs::remove(out);
  fs::remove_all(res);
  EXPECT_TRUE(r.closed) << "on_close was not called";
  expect_consecutive(r);

  std::set<std::string> kinds;
  for (const auto& e : r.events)
    kinds.insert(e.kind);
  for (const char* k :
       {"ecm_starting", "engine_state_changed", "resource_localized", "engine_launched",
        "engine_exited", "engine_log_rotated", "plugin_loaded", "plugin_swapped", "plugin_refused",
        "plugin_unloaded", "ecm_health_changed", "ecm_stopping"}) {
    EXPECT_TRUE(kinds.count(k)) << "no " << k << " event";
  }
  // Before ecm_starting only plugin loads (the recorder hears its own); after ecm_stopping only
  // the ends of the engines the shutdown stops and the health going StockUnavailable.
  const auto starting = std::find_if(r.events.begin(), r.events.end(),
                                     [](const Recorded& e) { return e.kind == "ecm_starting"; });
  for (auto it = r.events.begin(); it != starting; ++it)
    EXPECT_EQ(it->kind, "plugin_loaded");
  const auto stopping = std::find_if(r.events.begin(), r.events.end(),
                                     [](const Recorded& e) { return e.kind == "ecm_stopping"; });
  for (auto it = stopping; it != r.events.end(); ++it) {
    if (it != stopping && it->kind != "ecm_health_changed") {
      EXPECT_EQ(it->kind.rfind("engine_", 0), 0u) << it->kind;
    }
  }

  // Each kind carries what it says: the quiet engine's life in order, its pid where due.
  std::vector<std::string> life;
  for (const auto& e : r.events) {
    if (e.engine_id != quiet.id) continue;
    if (e.kind == "engine_state_changed") life.push_back(e.from + ">" + e.to);
    if (e.kind == "resource_localized") life.push_back(e.kind);
    if (e.kind == "engine_launched" || e.kind == "engine_exited") {
      life.push_back(e.kind);
      EXPECT_EQ(e.pid, quiet.pid) << e.kind;
    }
  }
  ASSERT_FALSE(life.empty());
  EXPECT_EQ(life.front(), "Starting>Starting");
  EXPECT_NE(std::find(life.begin(), life.end(), "engine_launched"), life.end());
  // Localized before the process is spawned, which is before it exits.
  const auto at = [&](const char* step) {
    return std::find(life.begin(), life.end(), step) - life.begin();
  };
  EXPECT_LT(at("resource_localized"), at("engine_launched"));
  EXPECT_LT(at("engine_launched"), at("engine_exited"));
  std::string last_change;
  for (const auto& step : life)
    if (step.find('>') != std::string::npos) last_change = step;
  EXPECT_EQ(last_change, "ShuttingDown>Success");
  for (const auto& e : r.events) {
    if (e.kind == "engine_log_rotated") {
      EXPECT_EQ(e.engine_id, chatty.id);
    }
    if (e.kind.rfind("plugin_", 0) == 0 && e.plugin != "recorder") {
      EXPECT_EQ(e.plugin, "swap") << e.kind;
    }
  }
}

// Launch latencies (client side, the RPC until it returns the Running engine) of `n` shell engines.
std::vector<double> launch_latencies_ms(EcmProcess& ecm, int n) {
  std::vector<double> ms;
  for (int i = 0; i < n; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto e = ecm.launch(shell_request("alice", "sleep 600"));
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    EXPECT_EQ(e.status, api::EngineStatus::RUNNING);
  }
  std::sort(ms.begin(), ms.end());
  return ms;
}

double percentile(const std::vector<double>& sorted, double p) {
  return sorted[static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1))];
}

TEST(Events, AThrowingAndAStuckListenerDoNotDelayLaunchesNorOtherListeners) {
  // 60 launches publish ~240 events: past the stuck listener's queue of 128, within the slack a
  // well-behaved listener needs when the machine is busy.
  constexpr int kLaunches = 60;
  const fs::path scratch =
      fs::temp_directory_path() / ("ecm-events-slow-" + std::to_string(getpid()));
  fs::remove_all(scratch);
  fs::create_directories(scratch);

  // The normal range: the same daemon set-up with one well-behaved listener.
  std::vector<double> normal;
  {
    EcmOptions o;
    o.test_plugins = {"recorder"};
    o.plugin_toml["recorder"] = recorder_toml(scratch / "baseline");
    o.extra_toml = "[events]\nqueue_capacity = 128\n";
    EcmProcess ecm(o);
    normal = launch_latencies_ms(ecm, kLaunches);
  }

  EcmOptions o;
  o.test_plugins = {"recorder", "throwing_recorder", "stuck_recorder"};
  o.plugin_toml["recorder"] = recorder_toml(scratch / "good");
  o.plugin_toml["throwing_recorder"] = recorder_toml(scratch / "throwing", "throw");
  o.plugin_toml["stuck_recorder"] = recorder_toml(scratch / "stuck", "stuck", scratch / "release");
  o.extra_toml = "[events]\nqueue_capacity = 128\n";
  auto ecm = std::make_unique<EcmProcess>(o);
  const auto with_bad = launch_latencies_ms(*ecm, kLaunches);

  // Within the normal range: a stalled launch would wait for the stuck listener forever.
  const double normal_p90 = percentile(normal, 0.9);
  const double bad_p90 = percentile(with_bad, 0.9);
  EXPECT_LE(bad_p90, std::max(3 * normal_p90, normal_p90 + 50))
      << "p90 " << bad_p90 << " ms against " << normal_p90 << " ms without";
  EXPECT_LE(percentile(with_bad, 0.5),
            std::max(3 * percentile(normal, 0.5), percentile(normal, 0.5) + 50));

  // The stuck listener lost events (counted, and said); the others lost none.
  api::Metrics m;
  ecm->client().getMetrics(m);
  EXPECT_GT(m.event_bus_drops, 0);
  EXPECT_TRUE(eventually([&] {
    return ecm->daemon_stderr().find("stuck_recorder") != std::string::npos &&
           ecm->daemon_stderr().find("threw") != std::string::npos;
  })) << ecm->daemon_stderr();
  // Each launch is at least three events (entered, launched, running): the good listener and the
  // throwing one (it records before it throws) see them all, in order.
  ASSERT_TRUE(eventually([&] {
    return count_kind(read_recording(scratch / "good"), "engine_launched") == kLaunches &&
           count_kind(read_recording(scratch / "throwing"), "engine_launched") == kLaunches;
  }));
  expect_consecutive(read_recording(scratch / "good"));
  expect_consecutive(read_recording(scratch / "throwing"));
  EXPECT_LT(read_recording(scratch / "stuck").events.size(),
            static_cast<std::size_t>(3 * kLaunches));

  // Released, the stuck listener drains what its queue kept, still in order, and is closed.
  std::ofstream(scratch / "release") << "go\n";
  EXPECT_EQ(ecm->terminate_and_wait(), 0);
  ecm.reset();
  const auto stuck = read_recording(scratch / "stuck");
  EXPECT_TRUE(stuck.closed);
  for (std::size_t i = 1; i < stuck.events.size(); ++i)
    EXPECT_LT(stuck.events[i - 1].sequence, stuck.events[i].sequence);
  EXPECT_TRUE(read_recording(scratch / "throwing").closed);
  fs::remove_all(scratch);
}

}  // namespace
}  // namespace ecm::itest
