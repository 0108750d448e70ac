// soak_bench: the real daemon under launches, stops, engine crashes and ECM restarts (clean ones,
// kill -9 between calls, kill -9 in the middle of a burst of concurrent launches) for a
// configurable time. After every restart and at the end it checks what the recovery promises
// (ecm_harness's recovery_violations: every live record has its process, no orphan process, no
// pid twice, every failure has a reason, one instance in the ledger per live engine), then stops
// everything and checks no engine process is left. Prints the figures; exits 1 on any violation.
//
//   soak_bench [--seconds N] [--max-live N] [--seed N]
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <thread>

#include "ecm_harness.hpp"

using namespace ecm::itest;

namespace {

struct Figures {
  long operations = 0;
  long launches = 0;
  long launches_refused = 0;  // calls that failed because the ECM was being killed
  long stops = 0;
  long crashes = 0;
  long clean_restarts = 0;
  long hard_restarts = 0;
  long burst_kills = 0;
  long checks = 0;
  long violations = 0;
};

long option(int argc, char** argv, const char* name, long fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return std::stol(argv[i + 1]);
  }
  return fallback;
}

std::vector<api::EngineConn> live_engines(EcmProcess& ecm) {
  std::vector<api::EngineConn> all, live;
  ecm.client().listEngineConns(all, api::EngineConnFilter{});
  for (auto& e : all) {
    if (e.status == api::EngineStatus::RUNNING || e.status == api::EngineStatus::STARTING)
      live.push_back(e);
  }
  return live;
}

void check(EcmProcess& ecm, Figures& f, const char* when) {
  ++f.checks;
  for (const auto& v : recovery_violations(ecm)) {
    ++f.violations;
    std::cerr << "violation after " << when << ": " << v << "\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  const long seconds = option(argc, argv, "--seconds", 60);
  const long max_live = option(argc, argv, "--max-live", 40);
  std::mt19937 rng(static_cast<unsigned>(option(argc, argv, "--seed", 7)));
  signal(SIGPIPE, SIG_IGN);

  EcmOptions o;
  o.stop_on_shutdown.reset();  // the default: a clean stop leaves the engines to the next start
  o.stop_grace = "1s";
  o.log_level = "warn";
  o.extra_toml = "[resources]\ninstances = 1000\nengine_memory = \"1MiB\"\n";
  EcmProcess ecm(o);
  Figures f;
  long ticket = 0;
  const auto began = std::chrono::steady_clock::now();
  const auto until = began + std::chrono::seconds(seconds);
  auto next_ticket = [&] { return "soak-" + std::to_string(++ticket); };

  auto step = [&] {
    auto live = live_engines(ecm);
    const int op = static_cast<int>(rng() % 20);
    if (op < 8 && static_cast<long>(live.size()) < max_live) {
      auto r = shell_request("u" + std::to_string(rng() % 4), "sleep 600");
      r.__set_ticket_id(next_ticket());
      ecm.launch(r);
      ++f.launches;
    } else if (op < 12 && !live.empty()) {
      api::StopRequest stop;
      stop.__set_engine_id(live[rng() % live.size()].id);
      api::StopResult result;
      ecm.client().stopEngineConn(result, stop);
      ++f.stops;
    } else if (op < 15 && !live.empty()) {
      const auto& victim = live[rng() % live.size()];
      if (victim.pid > 0) kill(-victim.pid, SIGKILL);
      ++f.crashes;
    } else if (op < 17) {
      // kill -9 while a burst of concurrent launches is in flight.
      const int n = 8;
      const auto first = ticket;
      ticket += n;
      std::vector<std::string> outcomes;
      std::thread burst([&] {
        outcomes = launch_concurrently(ecm, n, [&](int i) {
          auto r = shell_request("burst", "sleep 600");
          r.__set_ticket_id("soak-" + std::to_string(first + i + 1));
          return r;
        });
      });
      std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 20));
      ecm.kill_hard();
      burst.join();
      for (const auto& out : outcomes)
        (out.empty() ? f.launches : f.launches_refused) += 1;
      ecm.start();
      ++f.burst_kills;
      check(ecm, f, "a kill -9 during launches");
    } else if (op < 18) {
      ecm.terminate_and_wait();
      ecm.start();
      ++f.clean_restarts;
      check(ecm, f, "a clean restart");
    } else if (op < 19) {
      ecm.kill_hard();
      ecm.start();
      ++f.hard_restarts;
      check(ecm, f, "a kill -9");
    } else {
      // A moment for exits to be noticed, then the same invariants without a restart.
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      check(ecm, f, "a pause");
    }
  };
  std::map<std::string, long> errors;  // what the ECM answered with an error, by message
  while (std::chrono::steady_clock::now() < until) {
    ++f.operations;
    try {
      step();
    } catch (const api::EcmError& e) {
      ++errors[e.message.substr(0, 100)];
    }
  }
  // Let the stops and crashes of the last moments be noticed, then check, then stop everything.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  check(ecm, f, "the run");
  for (const std::string user : {"u0", "u1", "u2", "u3", "burst"}) {
    api::StopRequest all;
    all.__set_user(user);
    std::vector<api::StopResult> results;
    ecm.client().stopEngineConns(results, all);
  }
  const bool drained = eventually([&] { return engine_processes(ecm).empty(); }, 30s);
  if (!drained) {
    ++f.violations;
    std::cerr << "violation: " << engine_processes(ecm).size()
              << " engine process(es) left after stopping all\n";
  }
  check(ecm, f, "stopping everything");
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();

  std::printf(
      "soak: %.0f s, %ld operations: %ld launches (%ld refused while the ECM was killed), "
      "%ld stops, %ld engine crashes, %ld restarts (%ld clean, %ld kill -9, %ld kill -9 during "
      "a launch burst), %ld checks, violations = %ld\n",
      took, f.operations, f.launches, f.launches_refused, f.stops, f.crashes,
      f.clean_restarts + f.hard_restarts + f.burst_kills, f.clean_restarts, f.hard_restarts,
      f.burst_kills, f.checks, f.violations);
  for (const auto& [message, count] : errors)
    std::printf("  answered %ld time(s) with an error: %s\n", count, message.c_str());
  std::fflush(stdout);
  return f.violations == 0 ? 0 : 1;
}
