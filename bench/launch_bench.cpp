// Launch speed of the ECM, on the workload of bench/launch_floor.cpp and
// bench/supervisord_peer.py: N engines of `/bin/sleep 1000` (the bench launcher `sleep`,
// bench/plugins/sleep_launcher.cpp, which execs it directly and is ready once its process runs;
// --engine-type shell runs `exec /bin/sleep 1000` through /bin/sh instead), through the Thrift API
// of the real daemon (started in a private temp dir by the integration tests' harness, config as
// conf/ecm.toml but sized for N engines). In order:
//   1. idle: the daemon's resident memory (VmRSS) after a few unmeasured launches and stops, and
//      the round trip of a call that does next to nothing (getResources): the RPC's share;
//   2. sequential: one client launches N engines one after another, each launchEngineConn timed;
//   3. with N engines: VmRSS again (bytes per engine = the growth / N), listEngineConns of all N
//      timed --list-reps times, and the daemon's CPU time (utime + stime of /proc/PID/stat) over
//      --idle-seconds while the N engines sleep: what its timers and loops cost;
//   4. stop: --threads clients stop the N engines (stopEngineConn), timed until every engine's
//      process group is gone (the daemon reaped it);
//   5. concurrent: --threads clients, each on its own connection, launch N engines in all;
//   6. stop again, as 4 (the JSON's "stop" is over both stops, as the floor's and the peer's).
// Figures on stdout and as JSON (--json PATH) for bench/run.sh, in the schema the floor and the
// peer write. Exit code 1 when a launch or a stop failed (each is reported), 2 on a usage error.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.hpp"
#include "ecm_harness.hpp"

namespace {

namespace api = ::ecm::itest::api;
using ecm::bench::Clock;
using ecm::bench::ErrorLog;
using ecm::bench::ms;
using ecm::bench::Summary;
using ecm::itest::EcmOptions;
using ecm::itest::EcmProcess;

struct Options {
  int n = 1000;
  int threads = 4;
  int warmup = 20;
  int list_reps = 200;
  int idle_seconds = 60;
  std::string json;
  std::string daemon_log;
  std::string log_level = "info";
  std::string engine_type = "sleep";
};

const char* const kUsage =
    "usage: launch_bench [--n N] [--threads K] [--warmup W] [--list-reps R]\n"
    "         [--idle-seconds S] [--json PATH] [--daemon-log PATH] [--log-level LEVEL]\n"
    "         [--engine-type sleep|shell]\n"
    "  --n N             engines per phase (default 1000)\n"
    "  --threads K       clients of the concurrent phase and of the stops (default 4)\n"
    "  --warmup W        unmeasured launches and stops first (default 20)\n"
    "  --list-reps R     listEngineConns calls timed with N engines (default 200)\n"
    "  --idle-seconds S  how long the daemon's CPU is measured with N idle engines (default\n"
    "                    60; 0: not measured)\n"
    "  --json PATH       also write the figures as JSON to PATH\n"
    "  --daemon-log PATH copy the daemon's log (its stderr) to PATH at the end\n"
    "  --engine-type T   sleep (default: /bin/sleep exec'd by the bench launcher) or shell\n"
    "                    (/bin/sh -c 'exec /bin/sleep 1000')\n"
    "  --log-level L     the daemon's [log] level (default info, as in conf/ecm.toml)\n";

std::string describe(const std::exception& e) {
  if (const auto* err = dynamic_cast<const api::EcmError*>(&e)) {
    return "EcmError " + std::to_string(static_cast<int>(err->code)) + ": " + err->message;
  }
  return e.what();
}

api::LaunchRequest sleep_request(const std::string& engine_type, const std::string& ticket) {
  auto request = ecm::itest::shell_request("bench", "exec /bin/sleep 1000");
  if (engine_type != "shell") {
    request.__set_engine_type(engine_type);
    request.__set_properties({{"seconds", "1000"}});
  }
  request.__set_ticket_id(ticket);
  return request;
}

// A launch phase: `threads` clients launch `n` engines in all. Latencies of the successful
// launches, the engines' pids, the wall time.
struct LaunchPhase {
  std::vector<double> latencies_ms;
  std::vector<int> pids;
  std::vector<std::string> ids;
  int failures = 0;
  double seconds = 0;
};

LaunchPhase launch_phase(const EcmProcess& ecm, const std::string& engine_type,
                         const std::string& tag, int n, int threads, ErrorLog& errors) {
  LaunchPhase phase;
  std::mutex mu;
  std::vector<std::thread> clients;
  const auto start = Clock::now();
  for (int t = 0; t < threads; ++t) {
    clients.emplace_back([&, t] {
      const int count = ecm::bench::share(n, threads, t);
      std::vector<double> latencies;
      std::vector<int> pids;
      std::vector<std::string> ids;
      int failures = 0;
      try {
        auto client = ecm.connect();
        for (int i = 0; i < count; ++i) {
          const auto ticket = tag + "-" + std::to_string(t) + "-" + std::to_string(i);
          api::EngineConn engine;
          const auto begin = Clock::now();
          try {
            (*client)->launchEngineConn(engine, sleep_request(engine_type, ticket));
          } catch (const std::exception& e) {
            ++failures;
            errors.add("launch " + ticket + ": " + describe(e));
            continue;
          }
          const auto took = ms(Clock::now() - begin);
          if (engine.status != api::EngineStatus::RUNNING || engine.pid <= 0) {
            ++failures;
            errors.add("launch " + ticket + ": not Running (" + engine.failure_reason + ")");
          } else {
            latencies.push_back(took);
          }
          if (engine.pid > 0) pids.push_back(engine.pid);
          if (!engine.id.empty()) ids.push_back(engine.id);
        }
      } catch (const std::exception& e) {
        failures += count;
        errors.add("client " + std::to_string(t) + ": " + describe(e));
      }
      std::lock_guard<std::mutex> lock(mu);
      phase.latencies_ms.insert(phase.latencies_ms.end(), latencies.begin(), latencies.end());
      phase.pids.insert(phase.pids.end(), pids.begin(), pids.end());
      phase.ids.insert(phase.ids.end(), ids.begin(), ids.end());
      phase.failures += failures;
    });
  }
  for (auto& c : clients)
    c.join();
  phase.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return phase;
}

struct StopPhase {
  int count = 0;
  int failures = 0;
  double seconds = 0;
};

// `threads` clients stop the engines; timed until every engine's process group is gone.
StopPhase stop_phase(const EcmProcess& ecm, const LaunchPhase& launched, int threads,
                     ErrorLog& errors) {
  StopPhase phase;
  phase.count = static_cast<int>(launched.ids.size());
  std::atomic<int> failures{0};
  std::vector<std::thread> clients;
  const auto start = Clock::now();
  for (int t = 0; t < threads; ++t) {
    clients.emplace_back([&, t] {
      try {
        auto client = ecm.connect();
        for (std::size_t i = static_cast<std::size_t>(t); i < launched.ids.size();
             i += static_cast<std::size_t>(threads)) {
          try {
            api::StopRequest stop;
            stop.__set_engine_id(launched.ids[i]);
            api::StopResult result;
            (*client)->stopEngineConn(result, stop);
          } catch (const std::exception& e) {
            failures.fetch_add(1);
            errors.add("stop " + launched.ids[i] + ": " + describe(e));
          }
        }
      } catch (const std::exception& e) {
        failures.fetch_add(1);
        errors.add("stop client " + std::to_string(t) + ": " + describe(e));
      }
    });
  }
  for (auto& c : clients)
    c.join();
  // Gone: the group has no process left (the daemon reaped its leader).
  std::vector<int> left = launched.pids;
  const auto give_up = Clock::now() + std::chrono::seconds(60);
  while (!left.empty() && Clock::now() < give_up) {
    std::erase_if(left, [](int pid) { return ::kill(-pid, 0) != 0 && errno == ESRCH; });
    if (!left.empty()) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  phase.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (!left.empty()) {
    failures.fetch_add(static_cast<int>(left.size()));
    errors.add(std::to_string(left.size()) + " engine(s) still running 60 s after the stops");
    for (int pid : left)
      ::kill(-pid, SIGKILL);
  }
  phase.failures = failures.load();
  return phase;
}

// A field of /proc/PID/status in kB (VmRSS), as bytes.
long long status_bytes(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1)) * 1024;
  }
  return -1;
}

// utime + stime of /proc/PID/stat, in seconds.
double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream rest(text.substr(text.rfind(')') + 2));  // after "pid (comm) "
  std::string field;
  long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {  // fields 14 and 15 of proc(5)
    if (i == 14) utime = std::stoll(field);
    if (i == 15) stime = std::stoll(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

std::string launch_json(const Summary& s, double per_second) {
  std::ostringstream j;
  j << "{\"count\": " << s.count << ", \"failures\": " << s.failures
    << ", \"p50_ms\": " << ecm::bench::json_number(s.p50)
    << ", \"p99_ms\": " << ecm::bench::json_number(s.p99)
    << ", \"max_ms\": " << ecm::bench::json_number(s.max)
    << ", \"launches_per_s\": " << ecm::bench::json_number(per_second) << "}";
  return j.str();
}

std::string stop_json(const StopPhase& s) {
  std::ostringstream j;
  j << "{\"count\": " << s.count << ", \"failures\": " << s.failures
    << ", \"stops_per_s\": " << ecm::bench::json_number(s.seconds > 0 ? s.count / s.seconds : 0)
    << "}";
  return j.str();
}

int run(const Options& o) {
  EcmOptions options;
  options.log_level = o.log_level;
  options.keep_dir = ecm::bench::keep_files();
  options.test_plugins = {"sleep"};
  // Sized for N engines of no stated size; the health rules that refuse launches on a busy node
  // would measure this machine's load, not the launch path.
  options.extra_toml = "[resources]\ninstances = " + std::to_string(o.n + o.warmup + 10) +
                       "\nengine_memory = \"1MiB\"\nprotected_memory = \"0B\"\n\n"
                       "[health]\ncpu_overload_percent = 100\nlaunch_failures_unhealthy = 0\n";
  EcmProcess ecm(options);
  ErrorLog errors;

  auto warm = launch_phase(ecm, o.engine_type, "warmup", o.warmup, 1, errors);
  stop_phase(ecm, warm, 1, errors);
  const long long rss_idle = status_bytes(ecm.pid(), "VmRSS");
  // What any call costs through the same client and server: the part of a launch's latency that
  // is the RPC itself (getResources reads a small snapshot of the ledger).
  std::vector<double> rpc_ms;
  for (int i = 0; i < 200; ++i) {
    api::NodeResources resources;
    const auto begin = Clock::now();
    ecm.client().getResources(resources);
    rpc_ms.push_back(ms(Clock::now() - begin));
  }
  const auto rpc = ecm::bench::summarize(rpc_ms);

  const double cpu_before_seq = cpu_seconds(ecm.pid());
  auto sequential = launch_phase(ecm, o.engine_type, "seq", o.n, 1, errors);
  // The daemon's own CPU per launch (its threads; not the engines, which are other processes).
  const double cpu_per_launch_us = 1e6 * (cpu_seconds(ecm.pid()) - cpu_before_seq) / o.n;
  const auto seq = ecm::bench::summarize(sequential.latencies_ms, sequential.failures);
  const long long rss_full = status_bytes(ecm.pid(), "VmRSS");

  std::vector<double> list_ms;
  int listed = 0;
  for (int i = 0; i < o.list_reps; ++i) {
    std::vector<api::EngineConn> all;
    const auto begin = Clock::now();
    ecm.client().listEngineConns(all, api::EngineConnFilter());
    list_ms.push_back(ms(Clock::now() - begin));
    listed = static_cast<int>(all.size());
  }
  const auto list = ecm::bench::summarize(list_ms);

  double idle_cpu_percent = -1;
  if (o.idle_seconds > 0) {
    const double before = cpu_seconds(ecm.pid());
    const auto begin = Clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(o.idle_seconds));
    const double wall = std::chrono::duration<double>(Clock::now() - begin).count();
    idle_cpu_percent = 100.0 * (cpu_seconds(ecm.pid()) - before) / wall;
  }
  const auto first_stop = stop_phase(ecm, sequential, o.threads, errors);

  auto concurrent = launch_phase(ecm, o.engine_type, "conc", o.n, o.threads, errors);
  const auto conc = ecm::bench::summarize(concurrent.latencies_ms, concurrent.failures);
  const auto second_stop = stop_phase(ecm, concurrent, o.threads, errors);

  // As the floor and the peer report it: both stops together (2N engines over both times).
  const StopPhase both_stops{first_stop.count + second_stop.count,
                             first_stop.failures + second_stop.failures,
                             first_stop.seconds + second_stop.seconds};
  const double seq_rate = sequential.seconds > 0 ? o.n / sequential.seconds : 0;
  const double conc_rate = concurrent.seconds > 0 ? o.n / concurrent.seconds : 0;
  const double per_engine =
      static_cast<double>(rss_full - rss_idle) / static_cast<double>(std::max(1, o.n));
  std::cout << "ECM, N = " << o.n << "\n"
            << "  sequential launch: p50 " << seq.p50 << " ms, p99 " << seq.p99 << " ms, max "
            << seq.max << " ms, " << seq_rate << " launches/s, daemon CPU " << cpu_per_launch_us
            << " us per launch\n"
            << "  " << o.threads << " clients: " << conc_rate << " launches/s, p50 " << conc.p50
            << " ms, p99 " << conc.p99 << " ms\n"
            << "  stops: " << first_stop.count / std::max(first_stop.seconds, 1e-9)
            << " /s after the sequential phase, "
            << second_stop.count / std::max(second_stop.seconds, 1e-9)
            << " /s after the concurrent one\n"
            << "  RPC round trip (getResources): p50 " << rpc.p50 << " ms\n"
            << "  listEngineConns of " << listed << ": p50 " << list.p50 << " ms, p99 " << list.p99
            << " ms\n"
            << "  RSS idle " << rss_idle / 1024 << " KiB, with " << o.n << " engines "
            << rss_full / 1024 << " KiB: " << per_engine / 1024 << " KiB per engine\n";
  if (idle_cpu_percent >= 0) {
    std::cout << "  CPU with " << o.n << " idle engines over " << o.idle_seconds
              << " s: " << idle_cpu_percent << " % of a core\n";
  }
  const auto kept = errors.kept();
  for (const auto& e : kept)
    std::cerr << "launch_bench: " << e << "\n";

  if (!o.json.empty()) {
    std::ofstream j(o.json, std::ios::trunc);
    j << "{\"name\": \"ecm\", \"n\": " << o.n
      << ",\n \"sequential\": " << launch_json(seq, seq_rate)
      << ",\n \"daemon_cpu_us_per_sequential_launch\": "
      << ecm::bench::json_number(cpu_per_launch_us)
      << ",\n \"rpc_round_trip_p50_ms\": " << ecm::bench::json_number(rpc.p50)
      << ",\n \"concurrent\": " << launch_json(conc, conc_rate)
      << ",\n \"concurrent_threads\": " << o.threads << ",\n \"stop\": " << stop_json(both_stops)
      << ",\n \"list\": {\"engines\": " << listed
      << ", \"p50_ms\": " << ecm::bench::json_number(list.p50)
      << ", \"p99_ms\": " << ecm::bench::json_number(list.p99) << "}"
      << ",\n \"rss\": {\"idle_bytes\": " << rss_idle << ", \"with_n_bytes\": " << rss_full
      << ", \"per_engine_bytes\": " << ecm::bench::json_number(per_engine) << "}"
      << ",\n \"idle_cpu\": {\"seconds\": " << o.idle_seconds
      << ", \"percent_of_a_core\": " << ecm::bench::json_number(idle_cpu_percent) << "}"
      << ",\n \"errors\": [";
    for (std::size_t i = 0; i < kept.size(); ++i)
      j << (i ? ", " : "") << ecm::bench::json_string(kept[i]);
    j << "]}\n";
  }
  if (!o.daemon_log.empty()) {
    std::ofstream(o.daemon_log, std::ios::trunc) << ecm.daemon_stderr();
  }
  const bool failed = errors.count() > 0 || seq.failures > 0 || conc.failures > 0 ||
                      first_stop.failures > 0 || second_stop.failures > 0;
  return failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  ecm::bench::Flags flags("launch_bench", kUsage);
  flags.add("--n", &o.n, 1);
  flags.add("--threads", &o.threads, 1);
  flags.add("--warmup", &o.warmup, 0);
  flags.add("--list-reps", &o.list_reps, 1);
  flags.add("--idle-seconds", &o.idle_seconds, 0);
  flags.add("--json", &o.json);
  flags.add("--daemon-log", &o.daemon_log);
  flags.add("--log-level", &o.log_level);
  flags.add("--engine-type", &o.engine_type);
  if (!flags.parse(argc, argv)) return 2;
  if (o.engine_type != "sleep" && o.engine_type != "shell") {
    flags.fail("--engine-type is sleep or shell, not '" + o.engine_type + "'");
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::cerr << "launch_bench: " << describe(e) << "\n";
    return 1;
  }
}
