// Launch floor, for issue 8 ("the ECM launches near the speed of the kernel, far ahead of its
// peer"): what the kernel alone costs for the process set-up the ECM gives an engine, with no
// daemon, RPC or bookkeeping around it. The engines are /bin/sleep 1000.
//
// One launch (timed): mkdir of the engine's dir under a temp root; open of its stdout and stderr
// logs there (O_WRONLY|O_CREAT|O_APPEND); posix_spawn with its own session (POSIX_SPAWN_SETSID),
// an empty signal mask and default dispositions, stdin from /dev/null, the logs on 1 and 2, the
// engine dir as working dir (the ECM chdirs there too) and the environment the ECM gives an engine
// (PATH, HOME, USER, LOGNAME, LANG and the ECM_* variables); then close of the two log fds. glibc's
// posix_spawn clones with CLONE_VFORK, so it returns once the child has exec'd, as the ECM's launch
// does. One stop: kill(-pgid, SIGTERM) to every engine, then waitpid for each; timed until all
// reaped.
//
// Phases, as bench/supervisord_peer.py runs them: 1. sequential: N launches one after another;
// 2. stop all; 3. concurrent: T threads launch N in all; 4. stop all. The JSON's "stop" is over
// both stops (2N engines, stops_per_s = 2N / both stop times): every stop that ran is counted, and
// its failures too; the summary shows each stop on its own.
//
// Usage: launch_floor [--n N] [--threads T] [--json PATH]. Exit code 1 when a launch or a stop
// failed (after the JSON is written), 2 on a usage error, 130 when SIGINT, SIGTERM or SIGHUP cut
// the run short (no JSON). No engine is left behind: whatever ends the run, an exception included,
// every engine still running is SIGKILLed and reaped, and the temp root removed (unless
// ECM_BENCH_KEEP_FILES is set: bench/run.sh removes it once every benchmark has run).
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench_support.hpp"

namespace {

using ecm::bench::Clock;
using ecm::bench::ErrorLog;
using ecm::bench::json_number;
using ecm::bench::json_string;
using ecm::bench::percentile;

struct Options {
  int n = 200;
  int threads = 4;
  std::string json;
};

// Set by SIGINT, SIGTERM and SIGHUP: the launch loops end and the engines are stopped as on any
// way out. (Killing them in the handler would miss an engine whose posix_spawn is under way.)
std::atomic<bool> g_interrupted{false};

extern "C" void on_interrupt(int) {
  g_interrupted = true;
}

// The engines started, by engine id (0: none there; each launch thread writes its own ids), under
// a temp root. On every way out, an exception included, what still runs is killed and reaped and
// the root is removed.
struct Engines {
  std::string root;
  std::vector<pid_t> pids;
  ~Engines() {
    for (pid_t& pid : pids) {
      if (pid <= 0) continue;
      kill(-pid, SIGKILL);
      while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      pid = 0;
    }
    std::error_code ignored;
    if (!ecm::bench::keep_files()) std::filesystem::remove_all(root, ignored);
  }
};

std::string sys_error(const std::string& what, int err) {
  return what + ": " + std::strerror(err);
}

// The spawn attributes are the same for every engine and read-only once set: shared by threads.
class Launcher {
 public:
  explicit Launcher(Engines& engines) : engines_(engines) {
    posix_spawnattr_init(&attr_);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr_, &none);
    posix_spawnattr_setsigdefault(&attr_, &all);
    posix_spawnattr_setflags(&attr_,
                             POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  }
  ~Launcher() { posix_spawnattr_destroy(&attr_); }
  Launcher(const Launcher&) = delete;
  Launcher& operator=(const Launcher&) = delete;

  // Launches engine `id` into engines.pids[id]; its latency in ms, or nullopt after adding an
  // error.
  std::optional<double> launch(int id, ErrorLog& errors) {
    // Strings are built before the clock starts: the floor times the kernel's part.
    const std::string dir = engines_.root + "/e" + std::to_string(id);
    const std::string out = dir + "/stdout", err = dir + "/stderr";
    // The environment the ECM gives an engine (EngineConnLaunchService::prepare): LANG makes
    // the engine load its locale at start, which costs CPU the ECM's engines pay too.
    std::vector<std::string> env_strings = {"PATH=/usr/local/bin:/usr/bin:/bin",
                                            "HOME=" + dir,
                                            "USER=bench",
                                            "LOGNAME=bench",
                                            "LANG=C.UTF-8",
                                            "ECM_ENGINE_ID=" + std::to_string(id),
                                            "ECM_WORK_DIR=" + dir,
                                            "ECM_LOG_DIR=" + dir,
                                            "ECM_USER=bench",
                                            "ECM_ENGINE_TYPE=sleep",
                                            "ECM_ENGINE_TOKEN=0123456789abcdef0123456789abcdef",
                                            "ECM_CALLBACK_ADDRESS=127.0.0.1:1"};
    std::vector<char*> envp;
    for (auto& e : env_strings)
      envp.push_back(e.data());
    envp.push_back(nullptr);
    char sleep_path[] = "/bin/sleep", seconds[] = "1000";
    char* argv[] = {sleep_path, seconds, nullptr};

    const auto start = Clock::now();
    if (mkdir(dir.c_str(), 0750) != 0) return fail(errors, sys_error("mkdir " + dir, errno));
    // O_CLOEXEC: an engine spawned meanwhile by another thread must not inherit them; the dup2
    // onto 1 and 2 in the child clears it there.
    const int out_fd = open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    const int err_fd = open(err.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    std::optional<std::string> error;
    pid_t pid = 0;
    if (out_fd < 0 || err_fd < 0) {
      error = sys_error("open the logs in " + dir, errno);
    } else {
      // File actions name this launch's fds, so they are built per launch (timed: a few µs).
      posix_spawn_file_actions_t fa;
      posix_spawn_file_actions_init(&fa);
      posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
      posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
      posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
      posix_spawn_file_actions_addchdir_np(&fa, dir.c_str());
      const int rc = posix_spawn(&pid, argv[0], &fa, &attr_, argv, envp.data());
      posix_spawn_file_actions_destroy(&fa);
      if (rc != 0) error = sys_error("posix_spawn /bin/sleep for engine " + std::to_string(id), rc);
    }
    if (out_fd >= 0) close(out_fd);
    if (err_fd >= 0) close(err_fd);
    const auto end = Clock::now();
    if (error) return fail(errors, *error);
    engines_.pids[id] = pid;
    return std::chrono::duration<double, std::milli>(end - start).count();
  }

 private:
  static std::optional<double> fail(ErrorLog& errors, std::string e) {
    errors.add(std::move(e));
    return std::nullopt;
  }

  Engines& engines_;
  posix_spawnattr_t attr_;
};

struct LaunchPhase {
  int count = 0, failures = 0;
  double seconds = 0, p50 = 0, p99 = 0, max = 0;
  double per_s() const { return seconds > 0 ? count / seconds : 0; }
};

// Launches engines first_id .. first_id+n-1 on `threads` threads, each its share in a row.
LaunchPhase launch_phase(Launcher& launcher, int first_id, int n, int threads, ErrorLog& errors) {
  std::vector<std::vector<double>> latencies(threads);
  std::atomic<int> failures{0};
  const auto start = Clock::now();
  auto work = [&](int t) {
    for (int id = first_id + t; id < first_id + n && !g_interrupted; id += threads) {
      if (auto ms = launcher.launch(id, errors)) {
        latencies[t].push_back(*ms);
      } else {
        ++failures;
      }
    }
  };
  if (threads == 1) {
    work(0);
  } else {
    std::vector<std::jthread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back(work, t);
  }
  LaunchPhase p;
  p.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  for (const auto& l : latencies)
    all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  p.count = n;
  p.failures = failures;
  p.p50 = percentile(all, 50);
  p.p99 = percentile(all, 99);
  p.max = all.empty() ? 0 : all.back();
  return p;
}

struct StopPhase {
  int count = 0, failures = 0;
  double seconds = 0;
};

// SIGTERM to the group of every engine of ids [first_id, first_id+n) that runs, then reaps each.
StopPhase stop_phase(Engines& engines, int first_id, int n, ErrorLog& errors) {
  StopPhase s;
  const auto start = Clock::now();
  for (int id = first_id; id < first_id + n; ++id) {
    const pid_t pid = engines.pids[id];
    if (pid <= 0) continue;
    ++s.count;
    if (kill(-pid, SIGTERM) != 0) {
      errors.add(sys_error("kill engine " + std::to_string(id), errno));
      ++s.failures;
      kill(-pid, SIGKILL);  // still reaped below, so never left behind
    }
  }
  for (int id = first_id; id < first_id + n; ++id) {
    // A pid once reaped is no longer ours to signal.
    const pid_t pid = std::exchange(engines.pids[id], 0);
    if (pid <= 0) continue;
    int status = 0;
    pid_t r;
    while ((r = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
    }
    if (r < 0) {
      errors.add(sys_error("waitpid engine " + std::to_string(id), errno));
      ++s.failures;
    } else if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGTERM) {
      errors.add("engine " + std::to_string(id) + " did not end by SIGTERM (status " +
                 std::to_string(status) + ")");
      ++s.failures;
    }
  }
  s.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return s;
}

bool write_json(const std::string& path, const Options& o, const LaunchPhase& seq,
                const LaunchPhase& conc, const StopPhase& stop,
                const std::vector<std::string>& errors) {
  std::ofstream j(path, std::ios::trunc);
  j << "{\"name\": \"floor\", \"n\": " << o.n << ",\n \"sequential\": {\"count\": " << seq.count
    << ", \"failures\": " << seq.failures << ", \"p50_ms\": " << json_number(seq.p50)
    << ", \"p99_ms\": " << json_number(seq.p99) << ", \"max_ms\": " << json_number(seq.max)
    << ", \"launches_per_s\": " << json_number(seq.per_s())
    << "},\n \"concurrent\": {\"threads\": " << o.threads << ", \"count\": " << conc.count
    << ", \"failures\": " << conc.failures << ", \"launches_per_s\": " << json_number(conc.per_s())
    << ", \"p50_ms\": " << json_number(conc.p50) << ", \"p99_ms\": " << json_number(conc.p99)
    << "},\n \"stop\": {\"count\": " << stop.count << ", \"failures\": " << stop.failures
    << ", \"stops_per_s\": " << json_number(stop.seconds > 0 ? stop.count / stop.seconds : 0)
    << "},\n \"errors\": [";
  for (std::size_t i = 0; i < errors.size(); ++i)
    j << (i ? ", " : "") << json_string(errors[i]);
  j << "]}\n";
  return static_cast<bool>(j);
}

int run(const Options& o) {
  const char* tmp = std::getenv("TMPDIR");
  std::string root_template = std::string(tmp && *tmp ? tmp : "/tmp") + "/launch_floor.XXXXXX";
  if (mkdtemp(root_template.data()) == nullptr) {
    std::cerr << "launch_floor: " << sys_error("mkdtemp " + root_template, errno) << "\n";
    return 1;
  }
  Engines engines{root_template, std::vector<pid_t>(static_cast<std::size_t>(o.n) * 2, 0)};

  // Engine ids 0..n-1 are the sequential phase's, n..2n-1 the concurrent phase's.
  ErrorLog errors;
  Launcher launcher(engines);
  LaunchPhase seq, conc;
  StopPhase stop1, stop2;
  seq = launch_phase(launcher, 0, o.n, 1, errors);
  if (!g_interrupted) stop1 = stop_phase(engines, 0, o.n, errors);
  if (!g_interrupted) conc = launch_phase(launcher, o.n, o.n, o.threads, errors);
  if (!g_interrupted) stop2 = stop_phase(engines, o.n, o.n, errors);
  if (g_interrupted) {
    std::cerr << "launch_floor: interrupted\n";
    return 130;
  }
  const StopPhase stop{stop1.count + stop2.count, stop1.failures + stop2.failures,
                       stop1.seconds + stop2.seconds};

  std::printf("launch floor (posix_spawn of /bin/sleep 1000, own session, logs), n=%d\n", o.n);
  std::printf(
      "sequential:  %d launches, %d failed, %.0f/s; p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
      seq.count, seq.failures, seq.per_s(), seq.p50, seq.p99, seq.max);
  std::printf(
      "concurrent:  %d launches on %d threads, %d failed, %.0f/s; p50 %.3f ms, p99 %.3f ms\n",
      conc.count, o.threads, conc.failures, conc.per_s(), conc.p50, conc.p99);
  for (const auto* s : {&stop1, &stop2}) {
    std::printf("stop %d:      %d engines, %d failed, %.0f/s\n", s == &stop1 ? 1 : 2, s->count,
                s->failures, s->seconds > 0 ? s->count / s->seconds : 0);
  }
  const auto shown = errors.kept();
  for (const auto& e : shown)
    std::printf("error: %s\n", e.c_str());

  int code = seq.failures + conc.failures + stop.failures == 0 ? 0 : 1;
  if (!o.json.empty() && !write_json(o.json, o, seq, conc, stop, shown)) {
    std::cerr << "launch_floor: cannot write " << o.json << "\n";
    code = 1;
  }
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  ecm::bench::Flags flags("launch_floor",
                          "usage: launch_floor [--n N] [--threads T] [--json PATH]\n");
  flags.add("--n", &options.n, 1);
  flags.add("--threads", &options.threads, 1);
  flags.add("--json", &options.json);
  if (!flags.parse(argc, argv)) return 2;
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  for (int sig : {SIGINT, SIGTERM, SIGHUP})
    sigaction(sig, &sa, nullptr);
  try {
    return run(options);
  } catch (const std::exception& e) {  // the engines were stopped on the way out of run()
    std::cerr << "launch_floor: " << e.what() << "\n";
    return 1;
  }
}
