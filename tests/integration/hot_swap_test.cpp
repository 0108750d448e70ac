// Hot swap of a launcher plugin on the real daemon, under load: the test launcher "swap" in two
// builds (version 1.0.0 / 2.0.0, SWAP_PLUGIN_VERSION=1 / 2 in the engine's environment) swapped
// back and forth while clients launch; bad files refused with the old generation serving; the
// inotify watch; `ecmctl plugins`.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "ecm_harness.hpp"
#include "plugin_files.hpp"

namespace ecm::itest {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

// A daemon serving shell and swap (the given build of it).
std::unique_ptr<EcmProcess> start_with_swap(const std::string& variant, EcmOptions o = {}) {
  o.enabled = std::vector<std::string>{"shell", "swap"};
  auto ecm = std::make_unique<EcmProcess>(o, /*start=*/false);
  install_plugin_file(swap_build(variant), ecm->dir() / "plugins", "swap");
  ecm->start();
  return ecm;
}

api::LaunchRequest swap_request(const std::string& user) {
  api::LaunchRequest r;
  r.__set_user(user);
  r.__set_engine_type("swap");
  return r;
}

// The value of NAME in the environment of process `pid` ("" when absent).
std::string read_environment(pid_t pid, const std::string& name) {
  const std::string all = read_file("/proc/" + std::to_string(pid) + "/environ");
  const std::string key = name + "=";
  for (std::size_t at = 0; at < all.size();) {
    const auto end = all.find('\0', at);
    const std::string entry = all.substr(at, end - at);
    if (entry.rfind(key, 0) == 0) return entry.substr(key.size());
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return "";
}

// The same, once the engine has exec'd: a launch returns as soon as the process exists, and
// until its exec the child still has the ECM's environment.
std::string environment_of(pid_t pid, const std::string& name) {
  std::string value;
  eventually([&] { return !(value = read_environment(pid, name)).empty(); },
             std::chrono::seconds(5));
  return value;
}

api::PluginInfo plugin_info(EcmProcess& ecm, const std::string& name) {
  std::vector<api::PluginInfo> all;
  ecm.client().listPlugins(all);
  for (const auto& p : all) {
    if (p.name == name) return p;
  }
  return {};
}

const api::PluginGeneration& serving(const api::PluginInfo& p) {
  static const api::PluginGeneration none;
  return !p.generations.empty() && p.generations.front().serving ? p.generations.front() : none;
}

// What a client thread saw of one launch.
struct Launched {
  std::string id;
  pid_t pid = 0;
  std::string plugin_version;  // the record's
  std::string engine_env;      // SWAP_PLUGIN_VERSION in the engine's own environment
};

TEST(HotSwap, TwentySwapsWhileThreadsLaunch_EveryLaunchSucceedsAndV1LeavesAfterItsLastEngine) {
  // As many engines as the clients manage to launch in the test (a fast machine: hundreds).
  EcmOptions options;
  options.extra_toml = "[resources]\ninstances = 100000\n";
  auto ecm = start_with_swap("v1", options);
  const std::string v1_sha = serving(plugin_info(*ecm, "swap")).sha256;
  ASSERT_EQ(v1_sha.size(), 64u);

  // Engines started under v1 before any swap: they must outlive every swap.
  std::vector<api::EngineConn> first;
  for (int i = 0; i < 3; ++i) {
    first.push_back(ecm->launch(swap_request("alice")));
    ASSERT_EQ(first.back().status, api::EngineStatus::RUNNING);
    ASSERT_EQ(first.back().plugin_version, "1.0.0");
  }

  // Clients launch from several threads for the whole test; three in four engines are stopped
  // again at once, so stops cross generations too.
  std::atomic<bool> running{true};
  std::atomic<int> launches{0};
  std::mutex mu;
  std::vector<Launched> launched;
  std::vector<std::string> failures;
  std::vector<std::thread> clients;
  for (int t = 0; t < 3; ++t) {
    clients.emplace_back([&, t] {
      auto c = ecm->connect();
      for (int i = 0; running; ++i) {
        try {
          api::EngineConn e;
          (*c)->launchEngineConn(e, swap_request("user" + std::to_string(t)));
          Launched l{e.id, static_cast<pid_t>(e.pid), e.plugin_version,
                     environment_of(static_cast<pid_t>(e.pid), "SWAP_PLUGIN_VERSION")};
          if (e.status != api::EngineStatus::RUNNING) {
            std::lock_guard lock(mu);
            failures.push_back(e.id + " is " + std::to_string(e.status));
          }
          if (i % 4 != 0) {
            api::StopRequest stop;
            stop.__set_engine_id(e.id);
            api::StopResult r;
            (*c)->stopEngineConn(r, stop);
          }
          std::lock_guard lock(mu);
          launched.push_back(l);
        } catch (const api::EcmError& e) {
          std::lock_guard lock(mu);
          failures.push_back(e.message);
        } catch (const std::exception& e) {
          std::lock_guard lock(mu);
          failures.push_back(e.what());
        }
        ++launches;
      }
    });
  }

  const fs::path dir = ecm->dir() / "plugins";
  std::string v2_sha;
  // 20 swaps, v2 then v1 and so on, then a last one to v2 so that v1 can leave.
  for (int swap = 1; swap <= 21; ++swap) {
    // Some launches under each generation before the next swap.
    const int before = launches;
    eventually([&] { return launches >= before + 3; }, std::chrono::seconds(10));
    const bool to_v2 = swap % 2 == 1;
    install_plugin_file(swap_build(to_v2 ? "v2" : "v1"), dir, "swap");
    api::PluginInfo info;
    ecm->client().reloadPlugin(info, "swap");
    ASSERT_EQ(serving(info).version, to_v2 ? "2.0.0" : "1.0.0") << "swap " << swap;
    if (to_v2) v2_sha = serving(info).sha256;
  }
  const int after_swaps = launches;
  eventually([&] { return launches >= after_swaps + 3; }, std::chrono::seconds(10));
  running = false;
  for (auto& c : clients)
    c.join();
  for (const auto& l : launched)
    ecm->track(l.pid);

  // Every launch succeeded, under one generation each: the record's version is the one whose
  // build made the engine's environment.
  EXPECT_TRUE(failures.empty()) << failures.size() << " failed, first: " << failures.front();
  EXPECT_GE(launched.size(), 60u);
  std::map<std::string, int> per_version;
  for (const auto& l : launched) {
    ++per_version[l.plugin_version];
    ASSERT_TRUE(l.plugin_version == "1.0.0" || l.plugin_version == "2.0.0") << l.plugin_version;
    EXPECT_EQ(l.engine_env + ".0.0", l.plugin_version) << l.id;
  }
  EXPECT_GT(per_version["1.0.0"], 0);
  EXPECT_GT(per_version["2.0.0"], 0);

  // The registry counts each live engine under exactly one generation (once the engines the
  // clients stopped have ended, nothing changes between the two reads).
  std::vector<api::EngineConn> all;
  int live = 0, held = 0;
  EXPECT_TRUE(eventually([&] {
    ecm->client().listEngineConns(all, api::EngineConnFilter{});
    live = 0;
    for (const auto& e : all) {
      if (e.engine_type == "swap" && e.status != api::EngineStatus::SUCCESS &&
          e.status != api::EngineStatus::FAILED)
        ++live;
    }
    held = 0;
    for (const auto& g : plugin_info(*ecm, "swap").generations)
      held += g.engines;
    return held == live;
  })) << held
      << " engines held by generations, " << live << " live";

  // The first v1 engines ran through all of it and stop as usual.
  for (const auto& e : first) {
    EXPECT_TRUE(group_alive(static_cast<pid_t>(e.pid))) << e.id;
    EXPECT_EQ(environment_of(static_cast<pid_t>(e.pid), "SWAP_PLUGIN_VERSION"), "1");
  }
  ASSERT_TRUE(maps_contain(ecm->pid(), v1_sha));
  api::StopRequest all_swap;
  all_swap.__set_engine_type("swap");
  std::vector<api::StopResult> stopped;
  ecm->client().stopEngineConns(stopped, all_swap);
  for (const auto& e : all) {
    if (e.engine_type != "swap") continue;
    const auto ended = ecm->wait_for_status(e.id, [](const api::EngineConn& x) {
      return x.status == api::EngineStatus::SUCCESS || x.status == api::EngineStatus::FAILED;
    });
    EXPECT_EQ(ended.status, api::EngineStatus::SUCCESS) << e.id;
    EXPECT_TRUE(wait_group_gone(static_cast<pid_t>(e.pid))) << e.id;
  }

  // With its last engine gone, v1's library left the daemon; v2 serves on.
  EXPECT_TRUE(eventually([&] { return !maps_contain(ecm->pid(), v1_sha); }))
      << "v1 (" << v1_sha << ") is still mapped in ecm";
  EXPECT_TRUE(maps_contain(ecm->pid(), v2_sha));
  const auto info = plugin_info(*ecm, "swap");
  ASSERT_EQ(info.generations.size(), 1u);
  EXPECT_EQ(serving(info).version, "2.0.0");
  EXPECT_EQ(ecm->launch(swap_request("alice")).plugin_version, "2.0.0");
}

TEST(HotSwap, WrongAbiTruncatedAndThrowingFilesAreRefusedAndTheOldGenerationServes) {
  auto ecm = start_with_swap("v1");
  const auto before = serving(plugin_info(*ecm, "swap"));
  const auto engine = ecm->launch(swap_request("alice"));
  const fs::path dir = ecm->dir() / "plugins";

  // A truncated file: the first 4 KiB of the v2 build.
  const fs::path truncated = ecm->dir() / "truncated.so";
  {
    const std::string bytes = read_file(swap_build("v2"));
    std::ofstream(truncated, std::ios::binary) << bytes.substr(0, 4096);
  }
  const std::vector<std::pair<fs::path, std::string>> bad = {
      {swap_build("wrong-abi"), "ABI"},
      {truncated, "swap"},
      {swap_build("throws"), "no licence"},
  };
  for (const auto& [file, expected] : bad) {
    SCOPED_TRACE(file.string());
    install_plugin_file(file, dir, "swap");
    api::PluginInfo info;
    const auto error = ecm_error_of([&] { ecm->client().reloadPlugin(info, "swap"); });
    ASSERT_TRUE(error) << "accepted";
    EXPECT_EQ(error->code, api::ErrorCode::PLUGIN_FAILED);
    EXPECT_NE(error->message.find(expected), std::string::npos) << error->message;

    // The old generation serves on, unchanged, and its engine runs.
    const auto now = serving(plugin_info(*ecm, "swap"));
    EXPECT_EQ(now.generation, before.generation);
    EXPECT_EQ(now.sha256, before.sha256);
    const auto e = ecm->launch(swap_request("bob"));
    EXPECT_EQ(e.status, api::EngineStatus::RUNNING);
    EXPECT_EQ(e.plugin_version, "1.0.0");
    EXPECT_EQ(environment_of(static_cast<pid_t>(e.pid), "SWAP_PLUGIN_VERSION"), "1");
    EXPECT_TRUE(group_alive(static_cast<pid_t>(engine.pid)));
    // Nothing of the refused file stays loaded: shell and swap v1 are the only private copies.
    EXPECT_EQ(mapped_under(ecm->pid(), ecm->state_dir() / "plugins").size(), 2u);
  }
  // The wrong-ABI refusal names both versions.
  install_plugin_file(swap_build("wrong-abi"), dir, "swap");
  api::PluginInfo info;
  const auto error = ecm_error_of([&] { ecm->client().reloadPlugin(info, "swap"); });
  ASSERT_TRUE(error);
  EXPECT_NE(error->message.find("ABI 2."), std::string::npos) << error->message;
  EXPECT_NE(error->message.find("ABI 1."), std::string::npos) << error->message;
}

TEST(HotSwap, WithWatchOnAFileInstalledByRenameIsReloadedAndABadOneIsRefused) {
  EcmOptions o;
  o.plugins_toml = "watch = true\nwatch_debounce = \"100ms\"\n";
  auto ecm = start_with_swap("v1", o);
  const fs::path dir = ecm->dir() / "plugins";
  const auto v1_engine = ecm->launch(swap_request("alice"));

  install_plugin_file(swap_build("v2"), dir, "swap");
  ASSERT_TRUE(eventually([&] { return serving(plugin_info(*ecm, "swap")).version == "2.0.0"; }))
      << ecm->daemon_stderr();
  EXPECT_EQ(ecm->launch(swap_request("bob")).plugin_version, "2.0.0");
  EXPECT_TRUE(group_alive(static_cast<pid_t>(v1_engine.pid)));

  // A bad file is refused; v2 serves on.
  const auto v2 = serving(plugin_info(*ecm, "swap"));
  install_plugin_file(swap_build("wrong-abi"), dir, "swap");
  ASSERT_TRUE(eventually([&] { return ecm->daemon_stderr().find("ABI 2.") != std::string::npos; }))
      << ecm->daemon_stderr();
  EXPECT_EQ(serving(plugin_info(*ecm, "swap")).generation, v2.generation);
  EXPECT_EQ(ecm->launch(swap_request("bob")).plugin_version, "2.0.0");

  // Other files in the dir (the staging name, a README) are not plugins to load.
  std::ofstream(dir / "README") << "not a plugin\n";
  install_plugin_file(swap_build("v1"), dir, "swap");
  ASSERT_TRUE(eventually([&] { return serving(plugin_info(*ecm, "swap")).version == "1.0.0"; }));
  EXPECT_EQ(ecm->launch(swap_request("carol")).plugin_version, "1.0.0");
}

json::value parse_json(const ProcessResult& r) {
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return json::parse(r.out);
}

TEST(HotSwap, EcmctlPluginsListReloadLoadAndUnload) {
  auto ecm = start_with_swap("v1");
  const fs::path dir = ecm->dir() / "plugins";
  const auto engine = ecm->launch(swap_request("alice"));
  const std::string v1_sha = serving(plugin_info(*ecm, "swap")).sha256;

  // list: every plugin with its generations and the engines holding each.
  auto list = parse_json(ecm->run_ecmctl({"--json", "plugins", "list"}));
  json::object swap;
  for (const auto& p : list.as_array()) {
    if (p.at("name") == "swap") swap = p.as_object();
  }
  ASSERT_FALSE(swap.empty()) << list;
  EXPECT_EQ(swap.at("kinds").as_array().front(), "launcher");
  EXPECT_EQ(swap.at("engine_type"), "swap");
  auto gen = swap.at("generations").as_array().front().as_object();
  EXPECT_EQ(gen.at("version"), "1.0.0");
  EXPECT_EQ(gen.at("engines").as_int64(), 1);
  EXPECT_EQ(gen.at("sha256").as_string().size(), 64u);
  EXPECT_TRUE(gen.at("serving").as_bool());
  const auto table = ecm->run_ecmctl({"plugins"});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("swap"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("1.0.0"), std::string::npos) << table.out;

  // reload: the new file serves; the old generation stays listed while its engine runs.
  install_plugin_file(swap_build("v2"), dir, "swap");
  auto reloaded = parse_json(ecm->run_ecmctl({"--json", "plugins", "reload", "swap"}));
  auto gens = reloaded.at("generations").as_array();
  ASSERT_EQ(gens.size(), 2u) << reloaded;
  EXPECT_EQ(gens[0].at("version"), "2.0.0");
  EXPECT_EQ(gens[1].at("version"), "1.0.0");
  EXPECT_EQ(gens[1].at("engines").as_int64(), 1);

  // A refused reload: non-zero, the reason on stderr, nothing on stdout.
  install_plugin_file(swap_build("throws"), dir, "swap");
  auto refused = ecm->run_ecmctl({"plugins", "reload", "swap"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("no licence"), std::string::npos) << refused.err;
  EXPECT_TRUE(refused.out.empty()) << refused.out;

  // load: a relative path is resolved by ecmctl; a file that is not NAME.so is refused.
  const fs::path extra = ecm->dir() / "extra";
  fs::create_directories(extra);
  fs::copy_file(fs::path(ECM_TEST_PLUGIN_DIR) / "recorder.so", extra / "recorder.so");
  std::ofstream(ecm->dir() / "plugin-conf" / "recorder.toml")
      << "path = \"" << (ecm->dir() / "events").string() << "\"\n";
  auto loaded =
      parse_json(ecm->run_ecmctl({"--json", "plugins", "load", (extra / "recorder.so").string()}));
  EXPECT_EQ(loaded.at("name"), "recorder");
  EXPECT_EQ(loaded.at("kinds").as_array().front(), "listener");
  auto not_so = ecm->run_ecmctl({"plugins", "load", (extra / "recorder.txt").string()});
  EXPECT_NE(not_so.exit_code, 0);
  EXPECT_NE(not_so.err.find("NAME.so"), std::string::npos) << not_so.err;

  // unload: refused while an engine of it runs; --force stops new launches only.
  auto busy = ecm->run_ecmctl({"plugins", "unload", "swap"});
  EXPECT_NE(busy.exit_code, 0);
  EXPECT_NE(busy.err.find("still serves"), std::string::npos) << busy.err;
  EXPECT_EQ(serving(plugin_info(*ecm, "swap")).version, "2.0.0");
  auto forced = ecm->run_ecmctl({"plugins", "unload", "swap", "--force"});
  EXPECT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_NE(forced.out.find("still hold it"), std::string::npos) << forced.out;
  EXPECT_TRUE(ecm_error_of([&] { ecm->launch(swap_request("bob")); }));
  EXPECT_TRUE(group_alive(static_cast<pid_t>(engine.pid)));
  EXPECT_TRUE(maps_contain(ecm->pid(), v1_sha));

  // Its last engine stopped, the plugin is gone from the list and from the process.
  api::StopRequest stop;
  stop.__set_engine_id(engine.id);
  api::StopResult r;
  ecm->client().stopEngineConn(r, stop);
  EXPECT_TRUE(wait_group_gone(static_cast<pid_t>(engine.pid)));
  EXPECT_TRUE(eventually([&] { return plugin_info(*ecm, "swap").name.empty(); }));
  EXPECT_TRUE(eventually([&] { return !maps_contain(ecm->pid(), v1_sha); }));

  // Usage errors: unknown action, --force elsewhere, a missing name.
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"plugins", "swap"}, {"plugins", "reload", "swap", "--force"}, {"plugins", "reload"}}) {
    auto bad = ecm->run_ecmctl(args);
    EXPECT_NE(bad.exit_code, 0) << args[1];
    EXPECT_FALSE(bad.err.empty());
  }
}

}  // namespace
}  // namespace ecm::itest
