// Localization: how fast the ECM localizes a large resource over HTTP, against curl fetching the
// same file from the same server in the same run, and what a cache hit costs. Targets (issue 6):
// a cold localization of a 200 MiB resource from loopback at >= 70% of curl's speed (median MB/s
// against median MB/s), and a cache hit under 1 ms (p50 of localize(); p99 reported too).
//
// A plain main(), not Google Benchmark: one cold localization takes a large fraction of a second,
// and the figures are ratios between two clients. It serves a file of random bytes (nothing to
// compress, nothing a cache in between could know) over HTTP on 127.0.0.1 (port 0): by default
// from the tests' Beast server (tests/support/test_http_server.hpp) in this process, which sends
// the file from memory; --server python spawns `python3 -m http.server` in a temp dir instead.
// Both clients get the same server. Then:
//   1. cold rounds (--reps R): in each, curl (`curl -o FILE URL`, a child process) and the ECM
//      fetch the file once each, in alternating order (curl first in even rounds), so a
//      neighbour's load on the machine falls on both alike; each round also times
//      `curl -o /dev/null` (what the server and loopback give a client that writes nothing). The
//      ECM side is the real host code in this process: a PluginRegistry loading the built http.so,
//      a ResourceCache in the temp dir, a ResourceLocalizationService, and localize() of one
//      ResourceSpec {uri, sha256, name} for an engine: the HTTP fetch, the SHA-256 check, the cache
//      insert and the link into the engine's work dir. Between rounds the lease is released, the
//      link removed and the cache pruned, so every ECM run is cold. curl's speed is from its own
//      time_total (the transfer, without its process start-up: the stricter comparison for the
//      ECM); its wall time including start-up is reported too.
//   2. cache hits (--hits N): with the entry cached, localize() of the same spec into a fresh work
//      dir each time, the leases released after each; p50/p90/p99/max in us.
//   3. stages (--stage-reps S, run in the first S cold rounds, under the same load): the cold
//      path cut where the service's steps are, each timed on its own with the same host objects:
//      the plugin's fetch() into a staging file (it fsyncs it), sha256_file() of what was
//      fetched, the cache insert and link; and, as references, curl -o FILE followed by an fsync
//      of that file, and the SHA-256 of the bytes in memory. They show where a cold
//      localization's time goes when the ratio is missed.
// The host logs (spdlog, at --log-level, default info as in conf/ecm.toml) go to a file in the
// temp dir, as the daemon's go to its log: their cost is part of what is measured.
//
// It prints the figures and writes them as JSON (--json PATH) for bench/run.sh. Exit code 1 when a
// fetch failed or produced the wrong bytes (each is reported), 2 on a usage error; a missed target
// is not an error here (bench/run.sh reports it).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench_support.hpp"
#include "ecm/core/ecm_event_listener_bus.hpp"
#include "localization/resource_cache.hpp"
#include "plugins/plugin_registry.hpp"
#include "services/resource_localization_service.hpp"
#include "support/test_http_server.hpp"
#include "util/log.hpp"
#include "util/sha256.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using ecm::bench::Clock;
using ecm::bench::json_string;
using ecm::bench::percentile;
using ecm::host::CacheKey;
using ecm::host::LocalizationTarget;
using ecm::host::PluginRegistry;
using ecm::host::ResourceCache;
using ecm::host::ResourceLocalizationService;

constexpr double kTargetRatio = 0.70;
constexpr double kTargetHitP50Us = 1000;
constexpr std::size_t kMaxErrorsShown = 10;
constexpr const char* kPath = "/resource.bin";
constexpr const char* kName = "resource.bin";
constexpr const char* kUser = "bench";
constexpr const char* kEngineType = "shell";

struct Options {
  int size_mib = 200;
  int reps = 5;
  int hits = 1000;
  int warmup_hits = 20;
  int stage_reps = 3;
  std::string server = "beast";  // or "python"
  std::string dir;               // the temp dir's parent; empty: $TMPDIR or /tmp
  std::string curl = "curl";
  std::string plugin_dir = ECM_PLUGIN_DIR;  // where http.so is loaded from
  std::string json;
  std::string log_level = "info";
  bool keep = false;
};

const char* const kUsage =
    "usage: localization_bench [--size-mib M] [--reps R] [--hits N] [--warmup-hits W]\n"
    "         [--stage-reps S] [--server beast|python] [--dir PATH] [--curl PATH]\n"
    "         [--plugin-dir PATH] [--json PATH] [--log-level LEVEL] [--keep]\n"
    "  --size-mib M       size of the resource in MiB (default 200)\n"
    "  --reps R           cold rounds: curl and the ECM once each, alternating (default 5)\n"
    "  --hits N           measured cache hits (default 1000)\n"
    "  --warmup-hits W    unmeasured cache hits before them (default 20)\n"
    "  --stage-reps S     repetitions of the stage breakdown, 0: none (default 3)\n"
    "  --server KIND      beast: the tests' Beast server in this process, from memory\n"
    "                     (default); python: python3 -m http.server, from a file\n"
    "  --dir PATH         where the temp dir is made (default $TMPDIR or /tmp): the cache,\n"
    "                     curl's output and the work dirs share its file system\n"
    "  --curl PATH        the curl binary (default curl, from PATH)\n"
    "  --plugin-dir PATH  where http.so is loaded from (default the build's plugin dir,\n"
    "                     " ECM_PLUGIN_DIR
    ")\n"
    "  --json PATH        also write the figures as JSON to PATH\n"
    "  --log-level LEVEL  the host's log level (default info); the log is a file in the temp\n"
    "                     dir\n"
    "  --keep             keep the temp dir (its path is printed)\n";

// Parses the command line; nullopt (after a message) on a usage error.
std::optional<Options> parse_options(int argc, char** argv) {
  Options o;
  ecm::bench::Flags flags("localization_bench", kUsage);
  flags.add("--size-mib", &o.size_mib, 1);
  flags.add("--reps", &o.reps, 1);
  flags.add("--hits", &o.hits, 1);
  flags.add("--warmup-hits", &o.warmup_hits, 0);
  flags.add("--stage-reps", &o.stage_reps, 0);
  flags.add("--server", &o.server);
  flags.add("--dir", &o.dir);
  flags.add("--curl", &o.curl);
  flags.add("--plugin-dir", &o.plugin_dir);
  flags.add("--json", &o.json);
  flags.add("--log-level", &o.log_level);
  flags.add_switch("--keep", &o.keep);
  if (!flags.parse(argc, argv)) return std::nullopt;
  if (o.server != "beast" && o.server != "python") {
    flags.fail("--server is beast or python, not '" + o.server + "'");
    return std::nullopt;
  }
  return o;
}

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

double us(Clock::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

// The median of `values` (the mean of the middle two for an even count); 0 when empty.
double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

double best(const std::vector<double>& values) {
  return values.empty() ? 0 : *std::max_element(values.begin(), values.end());
}

std::string fixed(double v, int digits = 3) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(digits);
  s << v;
  return s.str();
}

std::string json_list(const std::vector<double>& values, int digits) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i)
    out += (i ? ", " : "") + fixed(values[i], digits);
  return out + "]";
}

// Random bytes: neither compression nor anything that knows the content can help a client.
std::string random_bytes(std::size_t size) {
  std::mt19937_64 rng{std::random_device{}()};
  std::string s(size, '\0');
  std::size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    const std::uint64_t v = rng();
    std::memcpy(s.data() + i, &v, 8);
  }
  for (; i < size; ++i)
    s[i] = static_cast<char>(rng());
  return s;
}

double mb_per_s(std::uint64_t bytes, double secs) {
  return secs > 0 ? static_cast<double>(bytes) / 1e6 / secs : 0;
}

// Removes a tree the cache made read-only.
void remove_tree(const fs::path& p) {
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(p, ec))) return;
  for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) ::chmod(it->path().c_str(), 0700);
  }
  ::chmod(p.c_str(), 0700);
  fs::remove_all(p, ec);
}

// ---- child processes ---------------------------------------------------------------------------

// Reads all of `fd` (until EOF) and closes it.
std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

// What a finished child said and how it ended.
struct ChildResult {
  int status = -1;  // waitpid status
  std::string out;  // its stdout
  std::string err;  // its stderr
  bool exited_ok() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }
};

// Runs argv (posix_spawn: no copy of this process's 200 MiB of page tables, unlike fork) with its
// stdout and stderr captured, and waits for it.
ChildResult run_child(const std::vector<std::string>& args) {
  ChildResult r;
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0)
    throw std::runtime_error("pipe: " + std::string(strerror(errno)));
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(out[0]);
    ::close(out[1]);
    throw std::runtime_error("pipe: " + std::string(strerror(errno)));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  std::vector<char*> argv;
  for (const auto& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  ::close(err[1]);
  if (rc != 0) {
    ::close(out[0]);
    ::close(err[0]);
    throw std::runtime_error("cannot run " + args[0] + ": " + std::strerror(rc));
  }
  // curl writes a few bytes to each: reading one to its end, then the other, cannot deadlock.
  r.out = read_all(out[0]);
  r.err = read_all(err[0]);
  while (::waitpid(pid, &r.status, 0) < 0 && errno == EINTR) {
  }
  return r;
}

// ---- the servers -------------------------------------------------------------------------------

class Server {
 public:
  virtual ~Server() = default;
  virtual std::string url() const = 0;
  virtual std::string describe() const = 0;
};

// The tests' Beast server, in this process: one thread per connection, the body written from
// memory in 1 MiB blocking writes.
class BeastServer final : public Server {
 public:
  explicit BeastServer(std::string bytes) { server_.add_file(kPath, std::move(bytes)); }
  std::string url() const override { return server_.url(kPath); }
  std::string describe() const override {
    return "Beast test server in this process (tests/support/test_http_server.hpp), from memory";
  }

 private:
  ecm::test::TestHttpServer server_;
};

// `python3 -m http.server` serving `dir`, a child process; its port is read from what it prints.
class PythonServer final : public Server {
 public:
  explicit PythonServer(const fs::path& dir) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0)
      throw std::runtime_error("pipe: " + std::string(strerror(errno)));
    const int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork: " + std::string(strerror(errno)));
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // it goes with this process, however that ends
      ::dup2(out[1], 1);
      ::dup2(null, 2);  // one log line per request
      ::execlp("python3", "python3", "-u", "-m", "http.server", "0", "--bind", "127.0.0.1",
               "--directory", dir.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(out[1]);
    ::close(null);
    out_ = out[0];
    // "Serving HTTP on 127.0.0.1 port 40123 (http://127.0.0.1:40123/) ..."
    std::string said;
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    while (port_ == 0) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      pollfd p{out_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
        stop();
        throw std::runtime_error("python3 -m http.server did not say its port within 20 s");
      }
      char buf[256];
      const ssize_t n = ::read(out_, buf, sizeof buf);
      if (n <= 0) {
        stop();
        throw std::runtime_error("python3 -m http.server ended at start (said: '" + said + "')");
      }
      said.append(buf, static_cast<std::size_t>(n));
      if (const auto at = said.find(" port "); at != std::string::npos) {
        const auto end = said.find_first_not_of("0123456789", at + 6);
        if (end != std::string::npos && end > at + 6) port_ = std::stoi(said.substr(at + 6));
      }
    }
  }
  ~PythonServer() override { stop(); }
  std::string url() const override { return "http://127.0.0.1:" + std::to_string(port_) + kPath; }
  std::string describe() const override {
    return "python3 -m http.server (pid " + std::to_string(pid_) + "), from a file";
  }

 private:
  void stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      pid_ = -1;
    }
    if (out_ >= 0) ::close(out_);
    out_ = -1;
  }
  pid_t pid_ = -1;
  int out_ = -1;
  int port_ = 0;
};

// ---- the bench ---------------------------------------------------------------------------------

// A fetch's progress, for the stage breakdown's direct calls into the plugin.
class NoProgress final : public ecm::sdk::FetchProgress {
 public:
  void progress(std::uint64_t, std::uint64_t) override {}
  bool cancelled() const override { return false; }
};

struct CurlRun {
  bool ok = false;
  double transfer_s = 0;  // curl's time_total
  double wall_s = 0;      // spawn to exit
  std::string error;
};

struct Bench {
  Options options;
  fs::path dir;  // the temp dir
  std::uint64_t size = 0;
  std::string sha256;
  std::unique_ptr<Server> server;
  std::string url;
  ecm::core::ECMEventListenerBus bus;
  std::unique_ptr<PluginRegistry> registry;
  std::unique_ptr<ResourceCache> cache;
  std::unique_ptr<ResourceLocalizationService> service;
  std::vector<ecm::sdk::ResourceSpec> specs;
  std::vector<std::string> errors;
  int failures = 0;
  int engines = 0;  // engine ids and work dirs made so far

  void error(const std::string& what) {
    ++failures;
    errors.push_back(what);
    std::printf("error: %s\n", what.c_str());
    std::fflush(stdout);
  }

  // A fresh target with its own work dir.
  LocalizationTarget target(const std::string& tag) {
    LocalizationTarget t;
    t.engine_id = "ec-bench-" + tag + "-" + std::to_string(engines++);
    t.user = kUser;
    t.engine_type = kEngineType;
    t.work_root = dir / "work";
    t.work_dir = t.work_root / t.engine_id;
    fs::create_directories(t.work_dir);
    return t;
  }

  // `curl -o OUT URL` (OUT may be /dev/null), timed; the file is checked against the resource's
  // size (and SHA-256 when `verify`), then removed unless `keep`.
  CurlRun curl(const fs::path& out, bool verify, bool keep = false) {
    CurlRun r;
    // -q: no ~/.curlrc; --noproxy: straight to loopback whatever http_proxy says.
    std::vector<std::string> args = {options.curl, "-q", "-s", "-S", "-f", "--noproxy", "*"};
    args.insert(args.end(),
                {"-o", out.string(), "-w", "%{time_total} %{size_download} %{http_code}", url});
    const auto start = Clock::now();
    ChildResult c;
    try {
      c = run_child(args);
    } catch (const std::exception& e) {
      r.error = e.what();
      return r;
    }
    r.wall_s = seconds(Clock::now() - start);
    double total = 0;
    unsigned long long got = 0;
    int code = 0;
    if (!c.exited_ok() || std::sscanf(c.out.c_str(), "%lf %llu %d", &total, &got, &code) != 3) {
      r.error = "curl failed (status " + std::to_string(c.status) + "): " + c.err + c.out;
    } else if (got != size || code != 200) {
      r.error = "curl got HTTP " + std::to_string(code) + " and " + std::to_string(got) +
                " bytes, not " + std::to_string(size);
    } else {
      r.transfer_s = total;
      r.ok = true;
    }
    if (out != "/dev/null") {
      std::error_code ec;
      if (r.ok && fs::file_size(out, ec) != size) {
        r.ok = false;
        r.error = "curl's file is not " + std::to_string(size) + " bytes";
      }
      if (r.ok && verify && ecm::host::sha256_file(out) != sha256) {
        r.ok = false;
        r.error = "curl's file has the wrong SHA-256";
      }
      if (!keep) fs::remove(out, ec);
    }
    return r;
  }

  // One cold localize(), timed; 0 on failure (reported). The cache is emptied afterwards.
  double cold(int round) {
    if (!cache->list().empty()) {
      error("round " + std::to_string(round) + ": the cache is not empty before a cold run");
      cache->prune(true);
    }
    auto t = target("cold");
    double secs = 0;
    try {
      auto specs_copy = specs;
      const auto start = Clock::now();
      auto held = service->localize(t, specs_copy);
      secs = seconds(Clock::now() - start);
      const fs::path link = t.work_dir / kName;
      std::error_code ec;
      if (held.size() != 1 || !fs::is_symlink(link, ec) || fs::file_size(link, ec) != size) {
        error("round " + std::to_string(round) + ": localize() left no " + std::to_string(size) +
              "-byte link at " + link.string());
        secs = 0;
      } else if (round == 0 && ecm::host::sha256_file(link) != sha256) {
        error("the cached resource has the wrong SHA-256");
        secs = 0;
      }
    } catch (const std::exception& e) {
      error("round " + std::to_string(round) + ": localize: " + e.what());
      secs = 0;
    }
    remove_tree(t.work_dir);
    const auto pruned = cache->prune(true);
    if (secs > 0 && pruned.removed != 1) {
      error("round " + std::to_string(round) + ": prune removed " + std::to_string(pruned.removed) +
            " entries, not 1");
    }
    return secs;
  }
};

struct Stages {
  std::vector<double> fetch_ms, sha_ms, insert_ms, curl_ms, curl_fsync_ms;
  double sha_memory_ms = 0;
};

// The cold path step by step (what ResourceLocalizationService::fetch_into_cache does), each
// step timed: the plugin's fetch into a staging file, sha256_file of it, the insert and the link;
// then the references: curl -o FILE and the fsync of that file.
void run_stage(Bench& b, Stages& st) {
  auto localizer = b.registry->localizer_for("http", kEngineType);
  if (!localizer) {
    b.error("stages: no localizer for http");
    return;
  }
  const fs::path staging = b.cache->make_staging_dir();
  const fs::path download = staging / "download";
  ecm::sdk::FetchRequest request;
  request.uri = b.url;
  request.user = kUser;
  request.engine_type = kEngineType;
  request.sha256 = b.sha256;
  request.destination = download.string();
  NoProgress progress;
  auto t0 = Clock::now();
  auto fetched = localizer->fetch(request, progress);
  auto t1 = Clock::now();
  if (!fetched.ok()) {
    b.error("stages: fetch: " + fetched.error().message);
    remove_tree(staging);
    return;
  }
  const std::string sha = ecm::host::sha256_file(download);
  auto t2 = Clock::now();
  if (sha != b.sha256) b.error("stages: the fetched file has the wrong SHA-256");
  auto t = b.target("stage");
  {
    auto lease = b.cache->insert(CacheKey{sha, false, kUser}, download);
    if (::symlink(lease.content().c_str(), (t.work_dir / kName).c_str()) != 0)
      b.error("stages: symlink: " + std::string(std::strerror(errno)));
    auto t3 = Clock::now();
    st.fetch_ms.push_back(seconds(t1 - t0) * 1000);
    st.sha_ms.push_back(seconds(t2 - t1) * 1000);
    st.insert_ms.push_back(seconds(t3 - t2) * 1000);
  }
  remove_tree(t.work_dir);
  remove_tree(staging);
  b.cache->prune(true);

  // The reference: curl writes the file (no fsync), then the fsync the plugin does is timed.
  const fs::path out = b.dir / "curl-stage.bin";
  const auto c = b.curl(out, false, /*keep=*/true);
  if (!c.ok) {
    b.error("stages: curl: " + c.error);
    return;
  }
  const int fd = ::open(out.c_str(), O_RDONLY | O_CLOEXEC);
  t0 = Clock::now();
  const int synced = fd >= 0 ? ::fsync(fd) : -1;
  t1 = Clock::now();
  if (fd >= 0) ::close(fd);
  std::error_code ec;
  fs::remove(out, ec);
  if (synced != 0) {
    b.error("stages: fsync of curl's file failed");
    return;
  }
  st.curl_ms.push_back(c.transfer_s * 1000);
  st.curl_fsync_ms.push_back(seconds(t1 - t0) * 1000);
}

void print_speed_row(const char* name, const std::vector<double>& mbs,
                     const std::vector<double>& secs) {
  std::printf("%-34s %9s %9s %9s   runs:", name, fixed(best(mbs), 0).c_str(),
              fixed(median(mbs), 0).c_str(), fixed(median(secs) * 1000, 1).c_str());
  for (double v : mbs)
    std::printf(" %.0f", v);
  std::printf("\n");
}

// However run() ends: stderr back where it was, and the temp dir removed (unless --keep). Made
// before the Bench, so it runs after the Bench's server, cache and plugin are gone.
struct Cleanup {
  fs::path dir;
  bool keep = false;
  int saved_stderr = -1;
  Cleanup() = default;
  Cleanup(const Cleanup&) = delete;
  Cleanup& operator=(const Cleanup&) = delete;
  ~Cleanup() {
    if (saved_stderr >= 0) {
      ::dup2(saved_stderr, 2);
      ::close(saved_stderr);
    }
    if (!dir.empty() && !keep) remove_tree(dir);
  }
};

int run(const Options& o) {
  Cleanup cleanup;
  cleanup.keep = o.keep;
  Bench b;
  b.options = o;
  const std::string parent =
      !o.dir.empty() ? o.dir : (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp");
  std::string pattern = (fs::path(parent) / "ecm-localization-bench-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    std::cerr << "localization_bench: cannot make a temp dir in " << parent << ": "
              << std::strerror(errno) << "\n";
    return 1;
  }
  b.dir = pattern;
  cleanup.dir = b.dir;
  b.size = static_cast<std::uint64_t>(o.size_mib) << 20;

  // The host's log goes to a file, as the daemon's does; this program reports on stdout.
  const fs::path host_log = b.dir / "host.log";
  cleanup.saved_stderr = ::dup(2);
  const int log_fd = ::open(host_log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd >= 0) {
    ::dup2(log_fd, 2);
    ::close(log_fd);
  }
  ecm::host::set_log_level(o.log_level);

  // The resource.
  std::string bytes = random_bytes(b.size);
  auto t0 = Clock::now();
  b.sha256 = ecm::host::sha256_hex(bytes);
  Stages stages;
  stages.sha_memory_ms = seconds(Clock::now() - t0) * 1000;
  if (o.server == "python") {
    fs::create_directories(b.dir / "www");
    {
      std::ofstream f(b.dir / "www" / kName, std::ios::binary);
      f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      if (!f) throw std::runtime_error("cannot write the resource into " + b.dir.string());
    }
    std::string().swap(bytes);  // served from the file
    b.server = std::make_unique<PythonServer>(b.dir / "www");
  } else {
    b.server = std::make_unique<BeastServer>(std::move(bytes));
  }
  b.url = b.server->url();

  // The host objects, as the daemon makes them.
  fs::create_directories(b.dir / "conf");
  fs::create_directories(b.dir / "state" / "plugins");
  b.registry = std::make_unique<PluginRegistry>(o.plugin_dir, b.dir / "conf",
                                                b.dir / "state" / "plugins", &b.bus);
  b.registry->load("http");
  b.cache = std::make_unique<ResourceCache>(b.dir / "state" / "cache", 0);
  b.cache->open();
  b.service = std::make_unique<ResourceLocalizationService>(ecm::host::LocalizationSettings{},
                                                            *b.registry, *b.cache);
  b.service->set_event_sink([&b](ecm::sdk::Event e) { b.bus.publish(std::move(e)); });
  ecm::sdk::ResourceSpec spec;
  spec.uri = b.url;
  spec.sha256 = b.sha256;
  spec.name = kName;
  b.specs = {spec};
  b.service->validate(b.specs, kEngineType);  // as a launch does, before localizing

  std::printf(
      "localization: %d MiB of random bytes (sha256 %s...) from %s\nserver: %s\ntemp dir: %s\n"
      "plugin: %s/http.so\n%d cold round(s), curl and the ECM alternating; %d cache hits\n",
      o.size_mib, b.sha256.substr(0, 16).c_str(), b.url.c_str(), b.server->describe().c_str(),
      b.dir.c_str(), o.plugin_dir.c_str(), o.reps, o.hits);
  std::fflush(stdout);

  // 1. Cold rounds.
  std::vector<double> curl_mbs, curl_s, curl_wall_mbs, curl_wall_s, null_mbs, null_s, ecm_mbs,
      ecm_s;
  const fs::path curl_out = b.dir / "curl.bin";
  for (int round = 0; round < o.reps; ++round) {
    auto null_run = b.curl("/dev/null", false);
    if (null_run.ok) {
      null_mbs.push_back(mb_per_s(b.size, null_run.transfer_s));
      null_s.push_back(null_run.transfer_s);
    } else {
      b.error("round " + std::to_string(round) + ": curl -o /dev/null: " + null_run.error);
    }
    auto do_curl = [&] {
      auto r = b.curl(curl_out, round == 0);
      if (!r.ok) {
        b.error("round " + std::to_string(round) + ": curl: " + r.error);
        return;
      }
      curl_mbs.push_back(mb_per_s(b.size, r.transfer_s));
      curl_s.push_back(r.transfer_s);
      curl_wall_mbs.push_back(mb_per_s(b.size, r.wall_s));
      curl_wall_s.push_back(r.wall_s);
    };
    auto do_ecm = [&] {
      if (const double s = b.cold(round); s > 0) {
        ecm_mbs.push_back(mb_per_s(b.size, s));
        ecm_s.push_back(s);
      }
    };
    if (round % 2 == 0) {
      do_curl();
      do_ecm();
    } else {
      do_ecm();
      do_curl();
    }
    // The stage breakdown, in the first rounds: under the same load as the runs it explains.
    if (round < o.stage_reps) run_stage(b, stages);
    std::printf("round %d: curl %s MB/s, ECM %s MB/s\n", round,
                curl_mbs.empty() ? "-" : fixed(curl_mbs.back(), 0).c_str(),
                ecm_mbs.empty() ? "-" : fixed(ecm_mbs.back(), 0).c_str());
    std::fflush(stdout);
  }

  // 2. Cache hits.
  std::vector<double> hit_us;
  {
    auto t = b.target("fill");
    bool filled = false;
    try {
      auto specs_copy = b.specs;
      filled = b.service->localize(t, specs_copy).size() == 1;  // the lease is released at once
    } catch (const std::exception& e) {
      b.error("filling the cache: " + std::string(e.what()));
    }
    remove_tree(t.work_dir);
    for (int i = 0; filled && i < o.warmup_hits + o.hits; ++i) {
      if (b.cache->list().empty()) {
        b.error("cache hits: the cache is empty");
        break;
      }
      auto h = b.target("hit");
      auto specs_copy = b.specs;
      try {
        const auto start = Clock::now();
        auto held = b.service->localize(h, specs_copy);
        const auto end = Clock::now();
        if (i >= o.warmup_hits) hit_us.push_back(us(end - start));
      } catch (const std::exception& e) {
        b.error("cache hit " + std::to_string(i) + ": " + e.what());
      }
      remove_tree(h.work_dir);
    }
    b.cache->prune(true);
  }
  std::sort(hit_us.begin(), hit_us.end());

  // 3. The rest of the stage breakdown, if more were asked for than there were rounds.
  for (int i = o.reps; i < o.stage_reps; ++i)
    run_stage(b, stages);

  // The figures.
  const double ratio = median(curl_mbs) > 0 ? median(ecm_mbs) / median(curl_mbs) : 0;
  const double ratio_best = best(curl_mbs) > 0 ? best(ecm_mbs) / best(curl_mbs) : 0;
  const bool have_ratio = !curl_mbs.empty() && !ecm_mbs.empty();
  const double hit_p50 = percentile(hit_us, 50), hit_p90 = percentile(hit_us, 90),
               hit_p99 = percentile(hit_us, 99), hit_max = hit_us.empty() ? 0 : hit_us.back();

  std::printf("\ncold localization of %d MiB (MB/s = 10^6 bytes/s)\n", o.size_mib);
  std::printf("%-34s %9s %9s %9s\n", "client", "best", "median", "med ms");
  print_speed_row("curl -o FILE (time_total)", curl_mbs, curl_s);
  print_speed_row("curl -o FILE (wall, with start-up)", curl_wall_mbs, curl_wall_s);
  print_speed_row("ECM localize()", ecm_mbs, ecm_s);
  print_speed_row("curl -o /dev/null (server ceiling)", null_mbs, null_s);
  if (have_ratio) {
    std::printf("ratio ECM/curl, medians: %.3f (target >= %.2f: %s); best/best: %.3f\n", ratio,
                kTargetRatio, ratio >= kTargetRatio ? "met" : "MISSED", ratio_best);
  } else {
    std::printf("ratio ECM/curl: none (a client has no successful run)\n");
  }
  std::printf(
      "\ncache hit (localize() of a cached resource into a fresh work dir), %zu hits, us\n"
      "p50 %s  p90 %s  p99 %s  max %s  (target p50 < %.0f us: %s)\n",
      hit_us.size(), fixed(hit_p50, 1).c_str(), fixed(hit_p90, 1).c_str(),
      fixed(hit_p99, 1).c_str(), fixed(hit_max, 1).c_str(), kTargetHitP50Us,
      !hit_us.empty() && hit_p50 < kTargetHitP50Us ? "met" : "MISSED");
  if (o.stage_reps > 0) {
    std::printf("\nstages of a cold localization, medians of %d, ms\n", o.stage_reps);
    std::printf("  plugin fetch() into staging (HTTP + pwrite + fsync): %9s\n",
                fixed(median(stages.fetch_ms), 1).c_str());
    std::printf("  sha256_file() of the fetched file:                   %9s\n",
                fixed(median(stages.sha_ms), 1).c_str());
    std::printf("  cache insert + link:                                 %9s\n",
                fixed(median(stages.insert_ms), 1).c_str());
    std::printf("  (reference) curl -o FILE, time_total:                %9s\n",
                fixed(median(stages.curl_ms), 1).c_str());
    std::printf("  (reference) fsync of the file curl just wrote:       %9s\n",
                fixed(median(stages.curl_fsync_ms), 1).c_str());
    std::printf("  (reference) SHA-256 of the bytes in memory:          %9s\n",
                fixed(stages.sha_memory_ms, 1).c_str());
  }
  if (!b.errors.empty()) {
    std::printf("\n%zu error(s)%s:\n", b.errors.size(),
                b.errors.size() > kMaxErrorsShown ? ", the first ones" : "");
    for (std::size_t i = 0; i < b.errors.size() && i < kMaxErrorsShown; ++i)
      std::printf("  %s\n", b.errors[i].c_str());
  }

  if (!o.json.empty()) {
    auto speed = [](const std::vector<double>& mbs) {
      return "{\"best_mb_s\": " + fixed(best(mbs), 1) +
             ", \"median_mb_s\": " + fixed(median(mbs), 1) +
             ", \"runs_mb_s\": " + json_list(mbs, 1) + "}";
    };
    std::ofstream j(o.json, std::ios::trunc);
    j << "{\n  \"size_bytes\": " << b.size << ",\n  \"server\": " << json_string(o.server)
      << ",\n  \"rounds\": " << o.reps << ",\n  \"curl\": " << speed(curl_mbs)
      << ",\n  \"curl_wall\": " << speed(curl_wall_mbs)
      << ",\n  \"curl_devnull\": " << speed(null_mbs) << ",\n  \"ecm\": " << speed(ecm_mbs)
      << ",\n  \"ratio\": " << (have_ratio ? fixed(ratio, 4) : "null")
      << ",\n  \"ratio_best\": " << (have_ratio ? fixed(ratio_best, 4) : "null")
      << ",\n  \"target_ratio\": " << fixed(kTargetRatio, 2)
      << ",\n  \"cache_hit\": {\"count\": " << hit_us.size()
      << ", \"p50_us\": " << fixed(hit_p50, 1) << ", \"p90_us\": " << fixed(hit_p90, 1)
      << ", \"p99_us\": " << fixed(hit_p99, 1) << ", \"max_us\": " << fixed(hit_max, 1)
      << "},\n  \"target_hit_p50_us\": " << fixed(kTargetHitP50Us, 0)
      << ",\n  \"stages_ms\": {\"fetch\": " << fixed(median(stages.fetch_ms), 1)
      << ", \"sha256_file\": " << fixed(median(stages.sha_ms), 1)
      << ", \"insert_link\": " << fixed(median(stages.insert_ms), 1)
      << ", \"curl\": " << fixed(median(stages.curl_ms), 1)
      << ", \"curl_fsync\": " << fixed(median(stages.curl_fsync_ms), 1)
      << ", \"sha256_memory\": " << fixed(stages.sha_memory_ms, 1)
      << "},\n  \"failures\": " << b.failures << ",\n  \"errors\": [";
    for (std::size_t i = 0; i < b.errors.size() && i < kMaxErrorsShown; ++i)
      j << (i ? ", " : "") << json_string(b.errors[i]);
    j << "]\n}\n";
    if (!j) {
      std::printf("error: cannot write %s\n", o.json.c_str());
      ++b.failures;
    }
  }

  if (o.keep) std::printf("kept %s (the host's log: %s)\n", b.dir.c_str(), host_log.c_str());
  return b.failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  auto options = parse_options(argc, argv);
  if (!options) return 2;
  ::signal(SIGPIPE, SIG_IGN);  // a client that hangs up on the test server must not end us
  try {
    return run(*options);
  } catch (const std::exception& e) {
    std::printf("localization_bench: %s\n", e.what());
    return 1;
  }
}
