// The integration tests' harness: runs the real `ecm` daemon in a private temp dir, talks to it
// through the real Thrift client, runs the real `ecmctl`, and cleans everything up afterwards.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "EngineConnCallbackService.h"
#include "EngineConnManagerService.h"

namespace ecm::itest {

namespace api = ::ecm::thrift;
using namespace std::chrono_literals;

// What a daemon is started with.
struct EcmOptions {
  // Copied from ECM_PLUGIN_DIR into the daemon's private plugin dir.
  std::vector<std::string> plugins = {"shell"};
  // Copied from ECM_TEST_PLUGIN_DIR into the same dir.
  std::vector<std::string> test_plugins;
  // [plugins] enabled; default: every plugin copied (plugins, then test_plugins).
  std::optional<std::vector<std::string>> enabled;
  // More keys of the [plugins] table ("watch = true\n").
  std::string plugins_toml;
  // Written to <conf_dir>/shell.toml when not empty.
  std::string shell_toml;
  // Written to <conf_dir>/NAME.toml, for any plugin.
  std::map<std::string, std::string> plugin_toml;
  std::string stop_grace = "10s";
  // Most tests want their engines gone with the daemon; the recovery tests set false or unset
  // (the daemon's default: leave them for the next start).
  std::optional<bool> stop_on_shutdown = true;
  // More keys of the [engines] table.
  std::string engines_toml;
  std::string log_level = "info";
  // The [users] table. Tests run as root in CI, where "auto" would switch to the requested
  // user: by default engines run as the test's own user, and the run-as-user tests say otherwise.
  std::string users_toml = "run_as = \"ecm\"\n";
  // Appended to the generated config as it is.
  std::string extra_toml;
  // Leave the daemon's dir on disk at the end (benchmarks: on ext4 without a journal, files
  // created soon after thousands were deleted are slow to create, which would slow the next
  // benchmark's launches; bench/run.sh removes its dirs once every benchmark has run).
  bool keep_dir = false;
};

// A process's end: exit code (or -signal), and what it wrote.
struct ProcessResult {
  int exit_code = -1000;  // -1000: did not end in time (it was killed)
  std::string out;
  std::string err;
};

// A connection of our own to the daemon.
class EcmClient {
 public:
  EcmClient(const std::string& host, int port);
  ~EcmClient();
  EcmClient(const EcmClient&) = delete;
  EcmClient& operator=(const EcmClient&) = delete;
  api::EngineConnManagerServiceClient* operator->() { return client_.get(); }
  api::EngineConnManagerServiceClient& operator*() { return *client_; }

 private:
  std::shared_ptr<::apache::thrift::transport::TTransport> transport_;
  std::unique_ptr<api::EngineConnManagerServiceClient> client_;
};

class EcmProcess {
 public:
  // Prepares the temp dir and config; starts the daemon and connects unless `start` is false.
  // Throws std::runtime_error (with the daemon's stderr) when the daemon does not come up.
  explicit EcmProcess(EcmOptions options = {}, bool start = true);
  ~EcmProcess();
  EcmProcess(const EcmProcess&) = delete;
  EcmProcess& operator=(const EcmProcess&) = delete;

  // Replaces the config file's content (before start()).
  void write_config(const std::string& text);
  void start();
  // Runs the daemon with the current config expecting it to refuse to start: exit code and stderr.
  ProcessResult start_expecting_failure(std::chrono::milliseconds timeout = 15s);
  // SIGTERMs the daemon and waits for it: its exit code (-signal if killed), -1000 on timeout.
  int terminate_and_wait(std::chrono::milliseconds timeout = 30s);
  // SIGKILL, as a crash: nothing of the daemon's shutdown runs. Its engines stay tracked.
  void kill_hard();

  api::EngineConnManagerServiceClient& client() { return **client_; }
  std::unique_ptr<EcmClient> connect() const { return std::make_unique<EcmClient>(host_, port_); }

  // Launches through the main client and remembers the engine's process group for cleanup.
  api::EngineConn launch(const api::LaunchRequest& request);
  void track(int pgid) { tracked_groups_.push_back(pgid); }

  // Polls getEngineConn until `done` holds or `timeout` passes; returns the last state seen.
  api::EngineConn wait_for_status(const std::string& id,
                                  const std::function<bool(const api::EngineConn&)>& done,
                                  std::chrono::milliseconds timeout = 20s);
  api::EngineConn wait_for_status(const std::string& id, api::EngineStatus::type status,
                                  std::chrono::milliseconds timeout = 20s);

  // Runs ecmctl with `--address <this daemon>` before `args`.
  ProcessResult run_ecmctl(const std::vector<std::string>& args,
                           std::chrono::milliseconds timeout = 30s) const;
  // Runs ecmctl with `args` only.
  ProcessResult run_ecmctl_raw(const std::vector<std::string>& args,
                               std::chrono::milliseconds timeout = 30s) const;

  std::string address() const { return host_ + ":" + std::to_string(port_); }
  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path work_root() const { return dir_ / "work"; }
  std::filesystem::path state_dir() const { return dir_ / "state"; }
  std::filesystem::path config_path() const { return dir_ / "ecm.toml"; }
  std::filesystem::path stderr_path() const { return dir_ / "ecm.stderr"; }
  std::string daemon_stderr() const;
  pid_t pid() const { return pid_; }

 private:
  std::string generated_config() const;
  void track_listed_engines();

  EcmOptions options_;
  std::filesystem::path dir_;
  pid_t pid_ = -1;
  std::string host_;
  int port_ = 0;
  std::unique_ptr<EcmClient> client_;
  std::vector<int> tracked_groups_;
};

// A connection to the engine callback service, as an engine would open one.
class EngineCallbackClient {
 public:
  explicit EngineCallbackClient(const std::string& address);  // HOST:PORT
  ~EngineCallbackClient();
  EngineCallbackClient(const EngineCallbackClient&) = delete;
  EngineCallbackClient& operator=(const EngineCallbackClient&) = delete;
  api::EngineConnCallbackServiceClient* operator->() { return client_.get(); }

 private:
  std::shared_ptr<::apache::thrift::transport::TTransport> transport_;
  std::unique_ptr<api::EngineConnCallbackServiceClient> client_;
};

// Launches `n` engines at once, each from its own thread and connection, `request(i)` the i-th:
// what each launch threw ("" for those that succeeded).
std::vector<std::string> launch_concurrently(const EcmProcess& ecm, int n,
                                             const std::function<api::LaunchRequest(int)>& request);

// Not ended (neither Success nor Failed): the engine still has, or may still get, a process.
bool is_live(const api::EngineConn& e);

// The session leaders on this machine whose environment names an engine of `ecm` (ECM_WORK_DIR
// under its work root): engine id -> pid. What actually runs, whatever the ECM believes.
std::map<std::string, int> engine_processes(const EcmProcess& ecm);

// What is wrong between the daemon's table and what runs: a live record without its process (or
// with another pid), an engine process without a live record (an orphan), a pid twice, a Failed
// record without a reason, a ledger holding other than one instance per live engine. Empty: the
// invariants a recovery must keep all hold.
std::vector<std::string> recovery_violations(EcmProcess& ecm);

// The environment of an engine that ran `env` first thing (its stdout), once it is there.
std::map<std::string, std::string> engine_environment(const api::EngineConn& engine);

// The request of a `shell` engine running `command`.
api::LaunchRequest shell_request(const std::string& user, const std::string& command);

// The EcmError `call` threw, if any (other exceptions pass through).
std::optional<api::EcmError> ecm_error_of(const std::function<void()>& call);

// Live (non-zombie) processes whose process group is `pgid`.
std::vector<pid_t> group_members(pid_t pgid);
// kill(-pgid, 0) succeeds and some member is not a zombie (a zombie is dead: it cannot run again).
bool group_alive(pid_t pgid);
// Polls until the group is gone; true if it is.
bool wait_group_gone(pid_t pgid, std::chrono::milliseconds timeout = 10s);
// Polls until `pred` holds; true if it did.
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 10s);

std::string read_file(const std::filesystem::path& path);
// Replaces `path` whole (a temp file renamed over it, its dir made if missing): a daemon that
// reads it never sees half of it.
void write_file_atomically(const std::filesystem::path& path, const std::string& text);

// [health] keys that point the daemon at readings under its dir (<dir>/proc/meminfo, stat,
// loadavg: write_fake_proc) instead of /proc, sampled every 200 ms: the load of the machine
// running the tests plays no part in the node's health.
inline constexpr const char* kFakeProcHealthKeys =
    "sample_interval = \"200ms\"\nproc_meminfo = \"proc/meminfo\"\nproc_stat = \"proc/stat\"\n"
    "proc_loadavg = \"proc/loadavg\"\n";
// Writes the readings kFakeProcHealthKeys points at: memory_available_percent of 10 GB
// available, a /proc/stat that never moves (an idle CPU) and a quiet load. Again to change them.
void write_fake_proc(const EcmProcess& ecm, int memory_available_percent);

// posix_spawn of `argv` with stdin /dev/null and stdout/stderr to the given files (truncated, or
// appended to with `append`), the signal mask cleared.
pid_t spawn(const std::vector<std::string>& argv, const std::filesystem::path& out,
            const std::filesystem::path& err, bool append = false);
// Waits for `pid` up to `timeout`: its exit code, or -signal; SIGKILLs it and returns -1000 when
// it does not end in time.
int wait_child(pid_t pid, std::chrono::milliseconds timeout);
// Every path under `root` (recursive), sorted.
std::vector<std::filesystem::path> tree(const std::filesystem::path& root);

}  // namespace ecm::itest
