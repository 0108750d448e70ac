// LinuxProcessEngineConnLaunch: starts engine processes and owns the process table.
//
// Each engine runs as the leader of its own session and process group, so one signal to the group
// reaches every process it started. Spawning is vfork-style (clone with CLONE_VM|CLONE_VFORK): no
// page-table copy of the daemon, and the child only makes async-signal-safe calls before execve.
// Exits are noticed through a pidfd on the Asio loop, never by polling. While an engine is in the
// table its leader is not yet reaped, so its process-group id cannot be recycled: a signal to the
// group can only reach processes this ECM created.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

namespace ecm::core {

struct Credentials {
  uid_t uid;
  gid_t gid;
  std::vector<gid_t> groups;
};

struct ProcessSpec {
  std::string executable;         // absolute path
  std::vector<std::string> argv;  // argv[0] included
  std::vector<std::string> env;   // "KEY=value", the whole environment
  std::string working_dir;        // absolute
  std::string stdout_path;        // opened O_APPEND|O_CREAT in the child
  std::string stderr_path;
  std::optional<Credentials> credentials;  // switch to these before exec (the ECM must be root)
  // Open descriptors the engine gets as fds 3, 4, ... in this order (sd_listen_fds convention);
  // every other descriptor of the daemon is closed. With any, the child also sets
  // LISTEN_PID=<its own pid> in its environment (only it knows the value before exec).
  std::vector<int> inherit_fds;
};

struct ExitStatus {
  std::optional<int> code;    // exited normally with this code
  std::optional<int> signal;  // killed by this signal
  bool success() const { return code && *code == 0; }
};

struct StartedProcess {
  int pid = 0;
  std::uint64_t start_time = 0;  // /proc/<pid>/stat field 22: tells a recycled pid apart
};

class LinuxProcessEngineConnLaunch {
 public:
  using ExitHandler = std::function<void(int pid, const ExitStatus&)>;

  explicit LinuxProcessEngineConnLaunch(boost::asio::io_context& io);
  ~LinuxProcessEngineConnLaunch();
  LinuxProcessEngineConnLaunch(const LinuxProcessEngineConnLaunch&) = delete;
  LinuxProcessEngineConnLaunch& operator=(const LinuxProcessEngineConnLaunch&) = delete;

  // Spawns the process and starts watching it. `on_exit` runs once, on an io_context thread,
  // after the process was reaped and any process left in its group was killed.
  // Throws EcmException(kLaunchFailed) naming the step that failed (open log, chdir, exec...).
  StartedProcess start(const ProcessSpec& spec, ExitHandler on_exit);
  // Engines started from now on get this limit of open files rather than the daemon's (which
  // raise_open_files_limit raised): a program written for the usual 1,024 (select()) is not
  // handed more. Unset: they inherit the daemon's. Set it before the first start().
  void set_engine_open_files_limit(std::optional<rlimit> limit) { engine_nofile_ = limit; }

  // Watches a process this ECM did not start (or started before it restarted): the engine `pid`
  // whose /proc start time is `start_time` and which leads its own process group. False when no
  // such process is there (gone, or the pid now belongs to another process). Its exit reaches
  // `on_exit` like a started one's, with an unknown status: only its parent can reap it.
  bool adopt(int pid, std::uint64_t start_time, ExitHandler on_exit);

  // Sends `signal` to the process group, then SIGKILL after `grace` if it is still there.
  // A zero grace sends SIGKILL at once. Returns false when the pid is not (or no longer) ours.
  bool stop(int pid, int signal, std::chrono::milliseconds grace);

  bool is_running(int pid) const;
  std::size_t running_count() const;

 private:
  struct Watched;
  void watch(const std::shared_ptr<Watched>& w);
  void on_readable(int pid);

  boost::asio::io_context& io_;
  std::optional<rlimit> engine_nofile_;
  mutable std::mutex mu_;
  std::map<int, std::shared_ptr<Watched>> table_;
};

// Raises this process's soft limit of open files to its hard limit: the daemon holds a pidfd per
// engine, and shells and systemd start programs with a soft limit of 1,024. Returns the limit it
// had (for the engines: LinuxProcessEngineConnLaunch::set_engine_open_files_limit); nullopt when
// it cannot be read.
std::optional<rlimit> raise_open_files_limit();

// Reads field 22 (start time in clock ticks since boot) of /proc/<pid>/stat; nullopt if gone.
std::optional<std::uint64_t> read_process_start_time(int pid);
// Whether `pid` has exited and waits to be reaped by its parent (state Z).
bool is_zombie(int pid);
// The kernel's boot id (/proc/sys/kernel/random/boot_id by default); empty if unreadable.
std::string read_boot_id(const std::string& file = "/proc/sys/kernel/random/boot_id");
// The process leading its own group whose environment holds exactly `entry` ("KEY=value"), among
// those this process may read; nullopt if none.
std::optional<int> find_session_leader_with_env(const std::string& entry);
// Reads field 5 (process group id) of /proc/<pid>/stat; nullopt if gone.
std::optional<int> read_process_group(int pid);

}  // namespace ecm::core
