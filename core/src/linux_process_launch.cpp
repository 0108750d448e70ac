#include "ecm/core/linux_process_launch.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string_view>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "ecm/core/errors.hpp"

namespace ecm::core {
namespace {

// Everything the child needs, prepared by the parent: the child allocates nothing.
struct ChildArgs {
  const char* executable;
  char* const* argv;
  char* const* envp;
  const char* working_dir;
  const char* stdout_path;
  const char* stderr_path;
  const Credentials* credentials;
  const int* inherit_fds;
  int inherit_count;
  int* scratch_fds;         // inherit_count slots for the child's temporary copies
  char* listen_pid_digits;  // inside envp's "LISTEN_PID=" entry, room for 20 digits; or null
  // Cloned with CLONE_FILES: the child shares the daemon's descriptor table until it makes its
  // own copy of 0..2 only (close_range CLOSE_RANGE_UNSHARE), first thing.
  bool shares_files;
  const rlimit* open_files;  // the engine's limit of open files, or null: the daemon's
  // Written by the child when a step fails; the parent reads them after clone() returns (the
  // child shares our memory and CLONE_VFORK suspends us until it execs or exits).
  int error_number;
  const char* failed_step;
};

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ECM_CHILD_NO_SANITIZE __attribute__((no_sanitize("address", "undefined")))
#endif
#endif
#ifndef ECM_CHILD_NO_SANITIZE
#define ECM_CHILD_NO_SANITIZE __attribute__((no_sanitize_address, no_sanitize("undefined")))
#endif

ECM_CHILD_NO_SANITIZE int fail(ChildArgs* a, const char* step) {
  a->error_number = errno;
  a->failed_step = step;
  _exit(127);
}

ECM_CHILD_NO_SANITIZE int open_onto(const char* path, int flags, int target) {
  int fd = open(path, flags | O_CLOEXEC, 0640);
  if (fd < 0) return -1;
  // dup2 clears FD_CLOEXEC on the target; if open() already returned the target (the daemon's own
  // stdio was closed), clear it by hand or exec would close it.
  if (fd == target) return fcntl(fd, F_SETFD, 0);
  return dup2(fd, target) < 0 ? -1 : 0;
}

// Runs in the child, on its own stack, sharing the parent's memory. Only async-signal-safe calls,
// and raw syscalls for the id changes: glibc's setresuid() would broadcast to the parent's threads.
ECM_CHILD_NO_SANITIZE int child_main(void* p) {
  auto* a = static_cast<ChildArgs*>(p);
  // Before anything opens or closes a descriptor: in the shared table it would be the daemon's.
  if (a->shares_files && syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_UNSHARE) < 0) {
    return fail(a, "unshare the descriptor table");
  }
  // Dispositions of caught signals point at the daemon's handlers: reset every signal to default.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    sigaction(sig, &dfl, nullptr);  // fails harmlessly for glibc's reserved signals
  }
  if (setsid() < 0) return fail(a, "setsid");
  if (a->open_files != nullptr &&
      syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, a->open_files, nullptr) < 0) {
    return fail(a, "set the open files limit");
  }
  if (a->credentials != nullptr) {
    const auto& c = *a->credentials;
    if (syscall(SYS_setgroups, c.groups.size(), c.groups.data()) < 0) return fail(a, "setgroups");
    if (syscall(SYS_setresgid, c.gid, c.gid, c.gid) < 0) return fail(a, "setresgid");
    if (syscall(SYS_setresuid, c.uid, c.uid, c.uid) < 0) return fail(a, "setresuid");
  }
  if (open_onto("/dev/null", O_RDONLY, 0) < 0) return fail(a, "open /dev/null");
  if (open_onto(a->stdout_path, O_WRONLY | O_CREAT | O_APPEND, 1) < 0) {
    return fail(a, "open stdout log");
  }
  if (open_onto(a->stderr_path, O_WRONLY | O_CREAT | O_APPEND, 2) < 0) {
    return fail(a, "open stderr log");
  }
  if (chdir(a->working_dir) < 0) return fail(a, "chdir to the working dir");
  // Inherited sockets onto 3, 4, ...: first copied above the targets so no source is overwritten
  // by another's dup2, then placed (dup2 clears close-on-exec on the target).
  const int n = a->inherit_count;
  for (int i = 0; i < n; ++i) {
    a->scratch_fds[i] = fcntl(a->inherit_fds[i], F_DUPFD, 3 + n);
    if (a->scratch_fds[i] < 0) return fail(a, "dup an inherited socket");
  }
  for (int i = 0; i < n; ++i) {
    if (dup2(a->scratch_fds[i], 3 + i) < 0) return fail(a, "place an inherited socket");
  }
  if (a->listen_pid_digits != nullptr) {
    // Decimal digits of our pid, written into the environment string the parent prepared.
    long pid = syscall(SYS_getpid);
    char digits[24];
    int len = 0;
    do {
      digits[len++] = static_cast<char>('0' + pid % 10);
      pid /= 10;
    } while (pid > 0);
    for (int i = 0; i < len; ++i)
      a->listen_pid_digits[i] = digits[len - 1 - i];
    a->listen_pid_digits[len] = '\0';
  }
  // No other descriptor of the daemon leaks into the engine (a table unshared above holds none).
  const unsigned first_closed = 3u + static_cast<unsigned>(n);
  if (!a->shares_files && syscall(SYS_close_range, first_closed, ~0u, 0u) < 0) {
    for (int fd = static_cast<int>(first_closed); fd < 65536; ++fd)
      close(fd);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  execve(a->executable, a->argv, a->envp);
  return fail(a, "execve");
}

std::vector<char*> c_strings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (const auto& s : v)
    out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

// Whether close_range(2) knows CLOSE_RANGE_UNSHARE (Linux 5.9+), asked once of a forked child:
// in the daemon itself it would give the calling thread a table of its own.
bool unshare_files_supported() {
  static const bool supported = [] {
    const pid_t pid = fork();
    if (pid == 0) _exit(syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_UNSHARE) == 0 ? 0 : 1);
    if (pid < 0) return false;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }();
  return supported;
}

ExitStatus decode(int status) {
  ExitStatus e;
  if (WIFEXITED(status)) e.code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) e.signal = WTERMSIG(status);
  return e;
}

}  // namespace

struct LinuxProcessEngineConnLaunch::Watched {
  Watched(boost::asio::io_context& io, int pid, int pidfd, ExitHandler h)
      : pid(pid), pidfd(io, pidfd), kill_timer(io), on_exit(std::move(h)) {}
  int pid;
  boost::asio::posix::stream_descriptor pidfd;
  boost::asio::steady_timer kill_timer;
  ExitHandler on_exit;
};

LinuxProcessEngineConnLaunch::LinuxProcessEngineConnLaunch(boost::asio::io_context& io) : io_(io) {}

LinuxProcessEngineConnLaunch::~LinuxProcessEngineConnLaunch() {
  // Engines outlive the daemon: closing the pidfds stops watching, it does not stop the engines.
  std::lock_guard lock(mu_);
  table_.clear();
}

StartedProcess LinuxProcessEngineConnLaunch::start(const ProcessSpec& spec, ExitHandler on_exit) {
  const std::vector<std::string> default_argv{spec.executable};
  auto argv = c_strings(spec.argv.empty() ? default_argv : spec.argv);
  // LISTEN_PID's value is only known in the child: reserve room for it in the environment.
  std::vector<std::string> env = spec.env;
  const std::string listen_pid_key = "LISTEN_PID=";
  std::size_t listen_pid_index = env.size();
  if (!spec.inherit_fds.empty()) {
    std::erase_if(env, [&](const std::string& e) { return e.starts_with(listen_pid_key); });
    listen_pid_index = env.size();
    env.push_back(listen_pid_key + std::string(23, '0'));
  }
  auto envp = c_strings(env);
  std::vector<int> scratch(spec.inherit_fds.size(), -1);
  // Without CLONE_FILES the kernel copies the daemon's whole descriptor table into the child (a
  // pidfd per engine: thousands), which then closes them all: two passes over it per launch.
  // Shared, the child copies only 0..2. Inherited sockets are moved onto 3.. from the daemon's
  // numbers, which that copy would not hold: those launches take the copying way.
  const bool shares_files = unshare_files_supported() && spec.inherit_fds.empty();
  ChildArgs args{
      spec.executable.c_str(),
      argv.data(),
      envp.data(),
      spec.working_dir.c_str(),
      spec.stdout_path.c_str(),
      spec.stderr_path.c_str(),
      spec.credentials ? &*spec.credentials : nullptr,
      spec.inherit_fds.data(),
      static_cast<int>(spec.inherit_fds.size()),
      scratch.data(),
      spec.inherit_fds.empty() ? nullptr : env[listen_pid_index].data() + listen_pid_key.size(),
      shares_files,
      engine_nofile_ ? &*engine_nofile_ : nullptr,
      0,
      nullptr};

  constexpr std::size_t kStackSize = 64 * 1024;
  auto stack = std::make_unique_for_overwrite<std::byte[]>(kStackSize);
  // Block every signal so no handler of ours runs on the child's stack while it shares our memory;
  // the child resets dispositions and unblocks before exec.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  const int pid = clone(child_main, stack.get() + kStackSize,
                        CLONE_VM | CLONE_VFORK | SIGCHLD | (shares_files ? CLONE_FILES : 0), &args);
  const int clone_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);

  if (pid < 0) {
    throw EcmException(ErrorCode::kLaunchFailed,
                       std::string("clone failed: ") + std::strerror(clone_errno));
  }
  if (args.failed_step != nullptr) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    throw EcmException(ErrorCode::kLaunchFailed, std::string(args.failed_step) + " (" +
                                                     spec.executable +
                                                     "): " + std::strerror(args.error_number));
  }

  StartedProcess started{pid, read_process_start_time(pid).value_or(0)};
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    const int e = errno;
    kill(-pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    throw EcmException(ErrorCode::kLaunchFailed,
                       std::string("pidfd_open failed: ") + std::strerror(e));
  }
  auto w = std::make_shared<Watched>(io_, pid, pidfd, std::move(on_exit));
  {
    std::lock_guard lock(mu_);
    table_[pid] = w;
  }
  watch(w);
  return started;
}

bool LinuxProcessEngineConnLaunch::adopt(int pid, std::uint64_t start_time, ExitHandler on_exit) {
  if (pid <= 0 || start_time == 0) return false;
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) return false;  // gone
  // Checked after the pidfd is open: from now on the pidfd can only mean this process, so a pid
  // recycled between the check and the open cannot slip through.
  const auto now = read_process_start_time(pid);
  if (!now || *now != start_time || read_process_group(pid) != pid || is_zombie(pid)) {
    ::close(pidfd);
    return false;
  }
  auto w = std::make_shared<Watched>(io_, pid, pidfd, std::move(on_exit));
  {
    std::lock_guard lock(mu_);
    if (table_.count(pid) != 0) return false;  // already watched: adopted once
    table_[pid] = w;
  }
  watch(w);
  return true;
}

void LinuxProcessEngineConnLaunch::watch(const std::shared_ptr<Watched>& w) {
  const int pid = w->pid;
  w->pidfd.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                      [this, pid](const boost::system::error_code& ec) {
                        if (ec == boost::asio::error::operation_aborted) return;
                        on_readable(pid);
                      });
}

void LinuxProcessEngineConnLaunch::on_readable(int pid) {
  ExitHandler handler;
  ExitStatus exit;
  {
    std::lock_guard lock(mu_);
    auto it = table_.find(pid);
    if (it == table_.end()) return;
    auto w = it->second;
    // The leader is a zombie until reaped, which pins the group id: anything it left behind in
    // its group dies now, and no other group can be hit. (An adopted engine is not our child: its
    // new parent reaps it. While any process of its group is left the group id stays pinned; with
    // none left the kill finds nothing, unless the id was reused within this instant.)
    kill(-pid, SIGKILL);
    int status = 0;
    pid_t r;
    do {
      r = waitpid(pid, &status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == 0) {  // not exited yet (spurious wake-up): keep watching
      watch(w);
      return;
    }
    if (r > 0) exit = decode(status);
    table_.erase(it);
    w->kill_timer.cancel();
    boost::system::error_code ignored;
    w->pidfd.close(ignored);
    handler = std::move(w->on_exit);
  }
  if (handler) handler(pid, exit);
}

bool LinuxProcessEngineConnLaunch::stop(int pid, int signal, std::chrono::milliseconds grace) {
  std::lock_guard lock(mu_);
  auto it = table_.find(pid);
  if (it == table_.end()) return false;
  if (grace.count() <= 0) {
    kill(-pid, SIGKILL);
    return true;
  }
  kill(-pid, signal);
  auto& timer = it->second->kill_timer;
  timer.expires_after(grace);
  timer.async_wait([this, pid](const boost::system::error_code& ec) {
    if (ec) return;
    std::lock_guard lock(mu_);
    if (table_.count(pid) != 0) kill(-pid, SIGKILL);
  });
  return true;
}

bool LinuxProcessEngineConnLaunch::is_running(int pid) const {
  std::lock_guard lock(mu_);
  return table_.count(pid) != 0;
}

std::size_t LinuxProcessEngineConnLaunch::running_count() const {
  std::lock_guard lock(mu_);
  return table_.size();
}

namespace {

// Field `n` (3 or more) of /proc/<pid>/stat. Read with one open and read (no stream: it runs in
// every launch).
std::optional<std::string> stat_field(int pid, int n) {
  char path[32];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char buf[1024];  // 52 numeric fields after a comm of at most 64 bytes: well under this
  ssize_t got = 0;
  while ((got = ::read(fd, buf, sizeof buf - 1)) < 0 && errno == EINTR) {
  }
  ::close(fd);
  if (got <= 0) return std::nullopt;
  const std::string_view line(buf, static_cast<std::size_t>(got));
  // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
  const auto close = line.rfind(')');
  if (close == std::string_view::npos || close + 2 > line.size()) return std::nullopt;
  std::size_t at = close + 2;
  for (int i = 3;; ++i) {
    const auto end = std::min(line.find_first_of(" \n", at), line.size());
    if (at >= end) return std::nullopt;
    if (i == n) return std::string(line.substr(at, end - at));
    at = end + 1;
  }
}

}  // namespace

std::optional<rlimit> raise_open_files_limit() {
  rlimit had{};
  if (::getrlimit(RLIMIT_NOFILE, &had) != 0) return std::nullopt;
  if (had.rlim_cur < had.rlim_max) {
    rlimit raised = had;
    raised.rlim_cur = had.rlim_max;
    ::setrlimit(RLIMIT_NOFILE,
                &raised);  // refused (a container's policy): the daemon keeps its own
  }
  return had;
}

std::optional<std::uint64_t> read_process_start_time(int pid) {
  auto f = stat_field(pid, 22);
  if (!f) return std::nullopt;
  try {
    return std::stoull(*f);
  } catch (...) {
    return std::nullopt;
  }
}

bool is_zombie(int pid) {
  auto f = stat_field(pid, 3);
  return f && *f == "Z";
}

std::string read_boot_id(const std::string& file) {
  std::ifstream in(file);
  std::string id;
  std::getline(in, id);
  return id;
}

std::optional<int> find_session_leader_with_env(const std::string& entry) {
  std::error_code ec;
  for (const auto& dir : std::filesystem::directory_iterator("/proc", ec)) {
    const auto name = dir.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(dir.path() / "environ", std::ios::binary);
    if (!in) continue;
    std::string var;
    bool found = false;
    while (std::getline(in, var, '\0')) {
      if (var == entry) {
        found = true;
        break;
      }
    }
    if (!found) continue;
    const int pid = std::stoi(name);
    if (read_process_group(pid) == pid) return pid;
  }
  return std::nullopt;
}

std::optional<int> read_process_group(int pid) {
  if (pid <= 0) return std::nullopt;
  auto f = stat_field(pid, 5);
  if (!f) return std::nullopt;
  try {
    return std::stoi(*f);
  } catch (...) {
    return std::nullopt;
  }
}

}  // namespace ecm::core
