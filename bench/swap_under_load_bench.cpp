// Swap under load: how long a plugin hot swap takes, and what it does to the launch latency of
// the engines launched meanwhile. Target: the p99 launch latency while swapping is within 2x of
// the p99 without swaps.
//
// A plain main(), not Google Benchmark: it drives the real daemon. It starts `ecm` in a private
// temp dir through the integration tests' harness (tests/integration/ecm_harness.cpp) with the
// test launcher "swap" (tests/plugins/versioned/swap.cpp, v1; its engines run /bin/sleep 600),
// then:
//   1. warm-up: a few launches per thread, not measured;
//   2. baseline: K client threads, each on its own connection, launch (launchEngineConn) and stop
//      (stopEngineConn) engines in a loop, N launches in all; each launch RPC is timed;
//   3. swapping: the same load while the main thread swaps the plugin S times, v1 -> v2 -> v1 ...,
//      spread evenly over the phase (swap i once (i+1)*N/(S+1) launches are done): the other
//      build is copied to a temp name in the plugin dir and renamed over swap.so (the way SDK.md
//      says to install), then reloadPlugin("swap") is called and timed.
// With --rounds R, steps 2 and 3 alternate R times, each with N/R launches (and S/R swaps), and
// each phase's figures are over all its rounds: a neighbour's load on the machine then falls on
// both phases alike rather than on whichever ran while it was busy.
//
// It prints p50/p90/p99/max launch latency of both phases, the p99 ratio swapping/baseline, the
// swap times, and writes the same figures as JSON (--json PATH) for bench/run.sh. Exit code 1 when
// a launch, a stop or a swap failed (each is reported), 2 on a usage error; a missed target is not
// an error here (bench/run.sh reports it).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <signal.h>

#include <thrift/TOutput.h>

#include "bench_support.hpp"
#include "ecm_harness.hpp"

namespace {

namespace fs = std::filesystem;
namespace api = ::ecm::itest::api;
using ecm::bench::Clock;
using ecm::bench::json_string;
using ecm::bench::ms;
using ecm::bench::share;
using ecm::bench::Summary;
using ecm::itest::EcmClient;
using ecm::itest::EcmOptions;
using ecm::itest::EcmProcess;

constexpr double kTargetRatio = 2.0;
constexpr std::size_t kMaxErrorsShown = 10;

struct Options {
  int launches = 400;  // per phase, all threads and rounds together
  int threads = 4;
  int swaps = 20;  // in the swapping phase, all rounds together
  int rounds = 1;
  int warmup = 5;  // launches per thread before the first baseline, not measured
  std::string json;
  std::string samples;     // CSV of every launch and swap, for a closer look
  std::string daemon_log;  // the daemon's stderr is copied here at the end
  std::string log_level = "info";
};

const char* const kUsage =
    "usage: swap_under_load_bench [--launches N] [--threads K] [--swaps S] [--rounds R]\n"
    "         [--warmup W] [--json PATH] [--samples PATH] [--daemon-log PATH]\n"
    "         [--log-level LEVEL]\n"
    "  --launches N       launches per phase, all threads and rounds together (default 400)\n"
    "  --threads K        client threads, each on its own connection (default 4)\n"
    "  --swaps S          plugin swaps in the swapping phase (default 20)\n"
    "  --rounds R         alternate baseline and swapping R times, N/R launches and S/R\n"
    "                     swaps each time (default 1)\n"
    "  --warmup W         unmeasured launches per thread before the first round (default 5)\n"
    "  --json PATH        also write the figures as JSON to PATH\n"
    "  --samples PATH     write every launch and swap as CSV to PATH: phase, round, kind,\n"
    "                     start and end in us from the first round's start, ok, version\n"
    "  --daemon-log PATH  copy the daemon's log (its stderr) to PATH at the end\n"
    "  --log-level LEVEL  the daemon's [log] level (default info, as in conf/ecm.toml)\n";

// Parses the command line; nullopt (after a message) on a usage error.
std::optional<Options> parse_options(int argc, char** argv) {
  Options o;
  ecm::bench::Flags flags("swap_under_load_bench", kUsage);
  flags.add("--launches", &o.launches, 1);
  flags.add("--threads", &o.threads, 1);
  flags.add("--swaps", &o.swaps, 0);
  flags.add("--rounds", &o.rounds, 1);
  flags.add("--warmup", &o.warmup, 0);
  flags.add("--json", &o.json);
  flags.add("--samples", &o.samples);
  flags.add("--daemon-log", &o.daemon_log);
  flags.add("--log-level", &o.log_level);
  if (!flags.parse(argc, argv)) return std::nullopt;
  if (o.launches < o.rounds) {
    flags.fail("--launches must be at least --rounds");
    return std::nullopt;
  }
  return o;
}

struct LaunchSample {
  int round = 0;
  Clock::time_point start, end;
  bool ok = false;
  std::string plugin_version;  // of the generation that launched the engine
};

struct SwapSample {
  int round = 0;
  Clock::time_point start, end;
  bool ok = false;
  std::string to_version;
  std::string error;
};

// What a phase's client threads did (one round, or all rounds added up).
struct LoadResult {
  std::vector<LaunchSample> launches;
  int launch_failures = 0;
  int stop_failures = 0;
  std::vector<std::string> errors;
  Clock::duration elapsed{};

  void add(const LoadResult& r) {
    launches.insert(launches.end(), r.launches.begin(), r.launches.end());
    launch_failures += r.launch_failures;
    stop_failures += r.stop_failures;
    errors.insert(errors.end(), r.errors.begin(), r.errors.end());
    elapsed += r.elapsed;
  }
};

std::string describe(const std::exception& e) {
  if (const auto* err = dynamic_cast<const api::EcmError*>(&e)) {
    std::ostringstream s;
    s << "EcmError code " << static_cast<int>(err->code) << ": " << err->message;
    return s.str();
  }
  return e.what();
}

// One client thread: `count` launches, each followed by a stop of the engine it made. A failed
// call is counted and its reason kept; a broken connection is opened anew.
void run_client(const EcmProcess& proc, const std::string& ticket_prefix, int round, int count,
                std::atomic<int>& done, LoadResult& out) {
  std::unique_ptr<EcmClient> client;
  auto error = [&](const std::string& what) {
    out.errors.push_back(what);
    client.reset();  // the connection may be unusable after a transport error
  };
  for (int i = 0; i < count; ++i) {
    const std::string ticket = ticket_prefix + "-" + std::to_string(i);
    if (!client) {
      try {
        client = proc.connect();
      } catch (const std::exception& e) {
        // The daemon is gone: the rest of this thread's launches fail without being tried.
        const int rest = count - i;
        out.errors.push_back("cannot connect (" + describe(e) + "): " + std::to_string(rest) +
                             " launch(es) of " + ticket_prefix + " not tried");
        out.launch_failures += rest;
        done.fetch_add(rest);
        done.notify_all();
        return;
      }
    }
    LaunchSample sample;
    sample.round = round;
    api::EngineConn engine;
    try {
      api::LaunchRequest request;
      request.__set_ticket_id(ticket);
      request.__set_user("bench");
      request.__set_engine_type("swap");
      sample.start = Clock::now();
      (*client)->launchEngineConn(engine, request);
      sample.end = Clock::now();
      sample.ok = engine.__isset.status && engine.status == api::EngineStatus::RUNNING;
      sample.plugin_version = engine.plugin_version;
      if (!sample.ok) {
        out.errors.push_back("launch " + ticket + ": engine " + engine.id +
                             " came back not RUNNING (" + engine.failure_reason + ")");
      }
    } catch (const std::exception& e) {
      sample.end = Clock::now();
      if (sample.start == Clock::time_point{}) sample.start = sample.end;
      error("launch " + ticket + ": " + describe(e));
    }
    if (!sample.ok) ++out.launch_failures;
    out.launches.push_back(sample);
    done.fetch_add(1);
    done.notify_all();
    if (engine.id.empty() || !client) continue;
    try {
      api::StopRequest stop;
      stop.__set_engine_id(engine.id);
      api::StopResult result;
      (*client)->stopEngineConn(result, stop);
    } catch (const std::exception& e) {
      ++out.stop_failures;
      error("stop " + engine.id + ": " + describe(e));
    }
  }
}

// Runs `total` launches over `threads` client threads; `during` runs on the calling thread
// meanwhile (it may watch `done`, the number of launches finished, failed ones included).
template <class During>
LoadResult run_load(const EcmProcess& proc, const std::string& tag, int round, int total,
                    int threads, During&& during) {
  std::vector<LoadResult> parts(static_cast<std::size_t>(threads));
  std::atomic<int> done{0};
  std::vector<std::thread> workers;
  const auto start = Clock::now();
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      run_client(proc, tag + "-" + std::to_string(t), round, share(total, threads, t), done,
                 parts[static_cast<std::size_t>(t)]);
    });
  }
  during(done);
  for (auto& w : workers)
    w.join();
  LoadResult all;
  for (auto& p : parts)
    all.add(p);
  all.elapsed = Clock::now() - start;
  return all;
}

std::vector<double> latencies(const std::vector<LaunchSample>& launches) {
  std::vector<double> out;
  for (const auto& l : launches) {
    if (l.ok) out.push_back(ms(l.end - l.start));
  }
  return out;
}

Summary summarize(const std::vector<LaunchSample>& launches) {
  return ecm::bench::summarize(
      latencies(launches),
      static_cast<int>(std::count_if(launches.begin(), launches.end(),
                                     [](const LaunchSample& l) { return !l.ok; })));
}

// Installs build `version` of the swap plugin as <plugin dir>/swap.so (copy to a temp name in the
// same dir, then an atomic rename) and reloads it; the reloadPlugin RPC is timed.
SwapSample swap_to(EcmProcess& proc, int version) {
  SwapSample s;
  s.to_version = std::to_string(version) + ".0.0";
  const fs::path source =
      fs::path(ECM_TEST_PLUGIN_DIR) / ("swap-v" + std::to_string(version)) / "swap.so";
  const fs::path dir = proc.dir() / "plugins";
  const fs::path tmp = dir / ".swap.so.installing";  // '.': a plugin dir watcher ignores it
  try {
    fs::copy_file(source, tmp, fs::copy_options::overwrite_existing);
    fs::rename(tmp, dir / "swap.so");
    api::PluginInfo info;
    s.start = Clock::now();
    proc.client().reloadPlugin(info, "swap");
    s.end = Clock::now();
    if (info.generations.empty() || !info.generations.front().serving ||
        info.generations.front().version != s.to_version) {
      s.error =
          "reloadPlugin(swap) did not put " + s.to_version + " in service (serving: " +
          (info.generations.empty() ? std::string("none") : info.generations.front().version) + ")";
      return s;
    }
    s.ok = true;
  } catch (const std::exception& e) {
    s.end = Clock::now();
    if (s.start == Clock::time_point{}) s.start = s.end;
    s.error = "swap to " + s.to_version + ": " + describe(e);
  }
  return s;
}

// Waits until no engine is starting, running or stopping (the last stops have landed).
bool wait_engines_ended(EcmProcess& proc, std::chrono::seconds timeout) {
  return ecm::itest::eventually(
      [&] {
        for (auto status : {api::EngineStatus::STARTING, api::EngineStatus::RUNNING,
                            api::EngineStatus::SHUTTING_DOWN}) {
          api::EngineConnFilter filter;
          filter.__set_status(status);
          std::vector<api::EngineConn> live;
          proc.client().listEngineConns(live, filter);
          if (!live.empty()) return false;
        }
        return true;
      },
      timeout);
}

std::string fixed(double v, int digits = 3) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(digits);
  s << v;
  return s.str();
}

std::string summary_json(const Summary& s) {
  std::ostringstream j;
  j << "{\"count\": " << s.count + static_cast<std::size_t>(s.failures)
    << ", \"failures\": " << s.failures << ", \"p50_ms\": " << fixed(s.p50)
    << ", \"p90_ms\": " << fixed(s.p90) << ", \"p99_ms\": " << fixed(s.p99)
    << ", \"max_ms\": " << fixed(s.max) << "}";
  return j.str();
}

// UTC, as the daemon's log writes its times (2026-11-29T06:47:07.180).
std::string utc(std::chrono::system_clock::time_point t) {
  const auto secs = std::chrono::system_clock::to_time_t(t);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  std::ostringstream s;
  s << when << "." << std::setw(3) << std::setfill('0') << millis;
  return s.str();
}

// CSV: phase,round,kind,start_us,end_us,ok,version; times in us from `t0`, which the first line
// (kind "t0") gives as UTC wall time, to line the samples up with the daemon's log.
void write_samples(const std::string& path, Clock::time_point t0,
                   std::chrono::system_clock::time_point wall_t0, const LoadResult& base,
                   const LoadResult& swapping, const std::vector<SwapSample>& swaps) {
  std::ofstream out(path, std::ios::trunc);
  auto us = [&](Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::microseconds>(t - t0).count();
  };
  out << "phase,round,kind,start_us,end_us,ok,version\n"
      << ",,t0,0,0,1," << utc(wall_t0) << "\n";
  for (const auto& [phase, r] : {std::pair{"baseline", &base}, std::pair{"swapping", &swapping}}) {
    for (const auto& l : r->launches) {
      out << phase << "," << l.round << ",launch," << us(l.start) << "," << us(l.end) << ","
          << (l.ok ? 1 : 0) << "," << l.plugin_version << "\n";
    }
  }
  for (const auto& s : swaps) {
    out << "swapping," << s.round << ",swap," << us(s.start) << "," << us(s.end) << ","
        << (s.ok ? 1 : 0) << "," << s.to_version << "\n";
  }
}

// SIGKILLs every process whose working dir is under `work_root`: the engines of a daemon that died
// (a live daemon stops its own on SIGTERM). Returns how many there were.
int kill_engines_left(const fs::path& work_root) {
  const std::string prefix = work_root.string() + "/";
  int killed = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const auto name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const auto cwd = fs::read_symlink(entry.path() / "cwd", ec).string();
    if (!ec && cwd.rfind(prefix, 0) == 0 && ::kill(std::stoi(name), SIGKILL) == 0) ++killed;
  }
  return killed;
}

void print_row(const std::string& name, const Summary& s) {
  std::printf("%-24s %8zu %7d %9s %9s %9s %9s\n", name.c_str(),
              s.count + static_cast<std::size_t>(s.failures), s.failures, fixed(s.p50).c_str(),
              fixed(s.p90).c_str(), fixed(s.p99).c_str(), fixed(s.max).c_str());
}

int run(const Options& o) {
  EcmOptions eo;
  eo.plugins = {};
  eo.enabled = std::vector<std::string>{"swap"};
  eo.log_level = o.log_level;
  // Room for every engine (a client holds one at a time, but a stopped one keeps its share until
  // its exit is reaped), and a node that never refuses launches on its own judgement: the machine
  // is shared (a build may keep both cores busy), which must not turn into NODE_UNAVAILABLE.
  eo.extra_toml =
      "[resources]\nmemory = \"1TiB\"\ncores = 1024\ninstances = 100000\n"
      "protected_memory = \"0B\"\nengine_memory = \"1MiB\"\nengine_cores = 0\n\n"
      "[health]\ncpu_overload_percent = 100\nmemory_min_available_percent = 0\n"
      "launch_failures_unhealthy = 0\n";
  EcmProcess proc(eo, /*start=*/false);
  fs::copy_file(fs::path(ECM_TEST_PLUGIN_DIR) / "swap-v1" / "swap.so",
                proc.dir() / "plugins" / "swap.so");
  proc.start();

  // Tickets must be new to this daemon: a known ticket returns the engine already made.
  const std::string nonce = std::to_string(Clock::now().time_since_epoch().count());
  std::printf(
      "swap under load: ecm pid %d in %s\n%d client threads; per phase %d launches, %d "
      "swaps, in %d round(s)\n",
      static_cast<int>(proc.pid()), proc.dir().c_str(), o.threads, o.launches, o.swaps, o.rounds);
  std::fflush(stdout);
  std::vector<std::string> errors;
  int failures = 0;
  auto settle = [&](const std::string& after) {
    try {
      if (wait_engines_ended(proc, std::chrono::seconds(30))) return;
      errors.push_back(after + ": engines still live 30 s after their stop");
    } catch (const std::exception& e) {
      errors.push_back(after + ": listEngineConns: " + describe(e));
    }
    ++failures;
  };

  // 1. Warm-up.
  if (o.warmup > 0) {
    auto warm = run_load(proc, nonce + "-warmup", 0, o.warmup * o.threads, o.threads,
                         [](std::atomic<int>&) {});
    failures += warm.launch_failures + warm.stop_failures;
    errors.insert(errors.end(), warm.errors.begin(), warm.errors.end());
    settle("warm-up");
  }

  // 2. and 3., R times.
  const auto t0 = Clock::now();
  const auto wall_t0 = std::chrono::system_clock::now();
  LoadResult base, swapping;
  std::vector<SwapSample> swaps;
  int version = 1;  // serving now
  for (int round = 0; round < o.rounds; ++round) {
    const int launches = share(o.launches, o.rounds, round);
    const std::string tag = nonce + "-r" + std::to_string(round);
    base.add(run_load(proc, tag + "-base", round, launches, o.threads, [](std::atomic<int>&) {}));
    settle("baseline round " + std::to_string(round));

    const int round_swaps = share(o.swaps, o.rounds, round);
    swapping.add(run_load(proc, tag + "-swap", round, launches, o.threads, [&](auto& done) {
      for (int i = 0; i < round_swaps; ++i) {
        // Swap i once (i+1)/(S+1) of the round's launches are done.
        const auto at =
            static_cast<int>(static_cast<long long>(i + 1) * launches / (round_swaps + 1));
        for (int seen = done.load(); seen < at; seen = done.load())
          done.wait(seen);
        version = version == 1 ? 2 : 1;
        swaps.push_back(swap_to(proc, version));
        swaps.back().round = round;
      }
    }));
    settle("swapping round " + std::to_string(round));
  }
  failures +=
      base.launch_failures + base.stop_failures + swapping.launch_failures + swapping.stop_failures;
  errors.insert(errors.end(), base.errors.begin(), base.errors.end());
  errors.insert(errors.end(), swapping.errors.begin(), swapping.errors.end());
  for (const auto& s : swaps) {
    if (!s.ok) {
      ++failures;
      errors.push_back(s.error);
    }
  }

  // The figures.
  const Summary b = summarize(base.launches);
  const Summary w = summarize(swapping.launches);
  // The launches that started while a reloadPlugin RPC was in flight. (Not "overlapped a swap":
  // that would favour the slow ones, which overlap more of anything.)
  std::vector<LaunchSample> during;
  for (const auto& l : swapping.launches) {
    if (std::any_of(swaps.begin(), swaps.end(),
                    [&](const SwapSample& s) { return s.start <= l.start && l.start < s.end; })) {
      during.push_back(l);
    }
  }
  const Summary d = summarize(during);
  std::vector<double> swap_ms;
  for (const auto& s : swaps) {
    if (s.ok) swap_ms.push_back(ms(s.end - s.start));
  }
  const Summary sw =
      ecm::bench::summarize(swap_ms, static_cast<int>(swaps.size() - swap_ms.size()));
  // No ratio when a phase has no successful launch to take a p99 of.
  const bool have_ratio = b.count > 0 && w.count > 0 && b.p99 > 0;
  const double ratio = have_ratio ? w.p99 / b.p99 : 0;
  std::map<std::string, int> by_version;
  for (const auto& l : swapping.launches) {
    if (l.ok) ++by_version[l.plugin_version];
  }
  const int stop_failures = base.stop_failures + swapping.stop_failures;

  std::printf("\nlaunch latency (launchEngineConn RPC), ms\n");
  std::printf("%-24s %8s %7s %9s %9s %9s %9s\n", "phase", "launches", "failed", "p50", "p90", "p99",
              "max");
  print_row("baseline", b);
  print_row("swapping", w);
  print_row("  started during a swap", d);
  std::printf("phase time: baseline %.2f s, swapping %.2f s\n",
              std::chrono::duration<double>(base.elapsed).count(),
              std::chrono::duration<double>(swapping.elapsed).count());
  if (have_ratio) {
    std::printf("p99 ratio swapping/baseline: %.2f (target <= %.1f: %s)\n", ratio, kTargetRatio,
                ratio <= kTargetRatio ? "met" : "MISSED");
  } else {
    std::printf("p99 ratio swapping/baseline: none (a phase has no successful launch)\n");
  }
  std::printf("swap (reloadPlugin RPC): %zu, %d failed; p50 %s ms, p90 %s ms, max %s ms\n",
              swaps.size(), sw.failures, fixed(sw.p50).c_str(), fixed(sw.p90).c_str(),
              fixed(sw.max).c_str());
  std::printf("engines launched while swapping, by plugin version:");
  for (const auto& [v, n] : by_version)
    std::printf(" %s: %d", v.c_str(), n);
  std::printf("\nfailed stops: %d\n", stop_failures);
  if (!errors.empty()) {
    std::printf("\n%zu error(s)%s:\n", errors.size(),
                errors.size() > kMaxErrorsShown ? ", the first ones" : "");
    for (std::size_t i = 0; i < errors.size() && i < kMaxErrorsShown; ++i)
      std::printf("  %s\n", errors[i].c_str());
  }

  if (!o.samples.empty()) write_samples(o.samples, t0, wall_t0, base, swapping, swaps);
  if (!o.json.empty()) {
    std::ofstream j(o.json, std::ios::trunc);
    j << "{\n  \"threads\": " << o.threads << ",\n  \"launches_per_phase\": " << o.launches
      << ",\n  \"rounds\": " << o.rounds << ",\n  \"baseline\": " << summary_json(b)
      << ",\n  \"swapping\": " << summary_json(w)
      << ",\n  \"started_during_swap\": " << summary_json(d)
      << ",\n  \"p99_ratio\": " << (have_ratio ? fixed(ratio, 4) : "null")
      << ",\n  \"target_ratio\": " << kTargetRatio << ",\n  \"swap\": " << summary_json(sw)
      << ",\n  \"stop_failures\": " << stop_failures << ",\n  \"failures\": " << failures
      << ",\n  \"errors\": [";
    for (std::size_t i = 0; i < errors.size() && i < kMaxErrorsShown; ++i)
      j << (i ? ", " : "") << json_string(errors[i]);
    j << "]\n}\n";
    if (!j) {
      std::cerr << "swap_under_load_bench: cannot write " << o.json << "\n";
      ++failures;
    }
  }

  // Stopped here rather than by ~EcmProcess, whose safety net SIGKILLs the process group of every
  // engine the daemon still lists, ended ones included (their pids may have been reused by now).
  const int code = proc.terminate_and_wait();
  if (code != 0) {
    std::printf("ecm exited with %d\n", code);
    ++failures;
    if (int n = kill_engines_left(proc.work_root()); n > 0)
      std::printf("killed %d engine process(es) it left\n", n);
  }
  if (!o.daemon_log.empty()) {
    std::error_code ec;
    fs::copy_file(proc.stderr_path(), o.daemon_log, fs::copy_options::overwrite_existing, ec);
    if (ec) std::printf("warning: cannot copy the daemon's log: %s\n", ec.message().c_str());
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  auto options = parse_options(argc, argv);
  if (!options) return 2;
  // Thrift prints every failed connect on stderr; the errors are reported once, below, instead.
  apache::thrift::GlobalOutput.setOutputFunction([](const char*) {});
  try {
    return run(*options);
  } catch (const std::exception& e) {
    std::cerr << "swap_under_load_bench: " << describe(e) << "\n";
    return 1;
  }
}
