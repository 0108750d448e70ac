#include "ecm_harness.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TSocket.h>

#include "support/process_probe.hpp"

extern char** environ;

namespace ecm::itest {
namespace {

namespace fs = std::filesystem;
using ::apache::thrift::protocol::TBinaryProtocol;
using ::apache::thrift::transport::TBufferedTransport;
using ::apache::thrift::transport::TSocket;

std::atomic<unsigned> g_run_counter{0};

int decode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return -999;
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::string toml_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

pid_t spawn(const std::vector<std::string>& argv, const fs::path& out, const fs::path& err,
            bool append) {
  const int mode = O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), mode, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), mode, 0644);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  std::vector<char*> cargv;
  for (const auto& a : argv)
    cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, cargv[0], &actions, &attr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    throw std::runtime_error("posix_spawn " + argv[0] + ": " + std::strerror(rc));
  }
  return pid;
}

int wait_child(pid_t pid, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return decode(status);
    if (r < 0 && errno != EINTR) return -999;
    if (std::chrono::steady_clock::now() >= until) {
      kill(pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return -1000;
    }
    std::this_thread::sleep_for(10ms);
  }
}

EcmClient::EcmClient(const std::string& host, int port) {
  auto socket = std::make_shared<TSocket>(host, port);
  socket->setConnTimeout(5000);
  socket->setRecvTimeout(60000);
  socket->setSendTimeout(60000);
  // A large read buffer, as ecmctl's: a list of 1,000 engines is read in a few recv()s.
  transport_ = std::make_shared<TBufferedTransport>(socket, 64 * 1024);
  transport_->open();
  client_ = std::make_unique<api::EngineConnManagerServiceClient>(
      std::make_shared<TBinaryProtocol>(transport_));
}

EcmClient::~EcmClient() {
  try {
    transport_->close();
  } catch (...) {  // NOLINT(bugprone-empty-catch): nothing to do on the way out
  }
}

EcmProcess::EcmProcess(EcmOptions options, bool start_now) : options_(std::move(options)) {
  std::string templ = (fs::temp_directory_path() / "ecm-itest-XXXXXX").string();
  if (mkdtemp(templ.data()) == nullptr) {
    throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
  }
  dir_ = templ;
  fs::create_directories(dir_ / "plugins");
  fs::create_directories(dir_ / "plugin-conf");
  for (const auto& p : options_.plugins) {
    fs::copy_file(fs::path(ECM_PLUGIN_DIR) / (p + ".so"), dir_ / "plugins" / (p + ".so"));
  }
  for (const auto& p : options_.test_plugins) {
    fs::copy_file(fs::path(ECM_TEST_PLUGIN_DIR) / (p + ".so"), dir_ / "plugins" / (p + ".so"));
  }
  for (const auto& [name, text] : options_.plugin_toml)
    write_text(dir_ / "plugin-conf" / (name + ".toml"), text);
  if (!options_.shell_toml.empty()) {
    write_text(dir_ / "plugin-conf" / "shell.toml", options_.shell_toml);
  }
  write_config(generated_config());
  if (start_now) start();
}

std::string EcmProcess::generated_config() const {
  std::vector<std::string> enabled = options_.plugins;
  enabled.insert(enabled.end(), options_.test_plugins.begin(), options_.test_plugins.end());
  if (options_.enabled) enabled = *options_.enabled;
  std::ostringstream c;
  c << "[server]\nlisten = \"127.0.0.1:0\"\nio_threads = 2\n\n"
    << "[paths]\nwork_root = " << toml_string(work_root().string())
    << "\nstate_dir = " << toml_string(state_dir().string()) << "\n\n"
    << "[plugins]\ndir = " << toml_string((dir_ / "plugins").string())
    << "\nconf_dir = " << toml_string((dir_ / "plugin-conf").string()) << "\nenabled = [";
  for (std::size_t i = 0; i < enabled.size(); ++i) {
    c << (i ? ", " : "") << toml_string(enabled[i]);
  }
  c << "]\n"
    << options_.plugins_toml << "\n[engines]\nstop_grace = " << toml_string(options_.stop_grace)
    << "\n";
  if (options_.stop_on_shutdown) {
    c << "stop_on_shutdown = " << (*options_.stop_on_shutdown ? "true" : "false") << "\n";
  }
  c << options_.engines_toml;
  c << "\n[users]\n" << options_.users_toml;
  c << "\n[log]\nlevel = " << toml_string(options_.log_level) << "\n";
  if (!options_.extra_toml.empty()) c << "\n" << options_.extra_toml << "\n";
  return c.str();
}

void EcmProcess::write_config(const std::string& text) {
  write_text(config_path(), text);
}

std::string EcmProcess::daemon_stderr() const {
  return read_file(stderr_path());
}

void EcmProcess::start() {
  const fs::path bin = fs::path(ECM_BIN_DIR) / "ecm";
  // A daemon killed with SIGKILL leaves its address file: the new one must not be read for it.
  std::error_code stale;
  fs::remove(state_dir() / "ecm.address", stale);
  pid_ =
      spawn({bin.string(), "--config", config_path().string()}, dir_ / "ecm.stdout", stderr_path());
  const auto address_file = state_dir() / "ecm.address";
  const auto until = std::chrono::steady_clock::now() + 10s;
  std::string address;
  for (;;) {
    std::error_code ec;
    if (fs::exists(address_file, ec)) {
      address = read_file(address_file);
      if (!address.empty() && address.back() == '\n') break;
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("ecm exited (" + std::to_string(decode(status)) +
                               ") before listening: " + daemon_stderr());
    }
    if (std::chrono::steady_clock::now() >= until) {
      throw std::runtime_error("ecm wrote no " + address_file.string() +
                               " within 10s: " + daemon_stderr());
    }
    std::this_thread::sleep_for(10ms);
  }
  address.pop_back();
  auto colon = address.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("bad ecm.address '" + address + "'");
  host_ = address.substr(0, colon);
  port_ = std::stoi(address.substr(colon + 1));
  client_ = std::make_unique<EcmClient>(host_, port_);
}

ProcessResult EcmProcess::start_expecting_failure(std::chrono::milliseconds timeout) {
  const fs::path bin = fs::path(ECM_BIN_DIR) / "ecm";
  pid_t pid =
      spawn({bin.string(), "--config", config_path().string()}, dir_ / "ecm.stdout", stderr_path());
  ProcessResult r;
  r.exit_code = wait_child(pid, timeout);
  r.out = read_file(dir_ / "ecm.stdout");
  r.err = daemon_stderr();
  return r;
}

void EcmProcess::track_listed_engines() {
  try {
    auto c = connect();
    std::vector<api::EngineConn> all;
    (*c)->listEngineConns(all, api::EngineConnFilter{});
    for (const auto& e : all) {
      if (is_live(e) && e.__isset.pid && e.pid > 0) tracked_groups_.push_back(e.pid);
    }
  } catch (...) {  // NOLINT(bugprone-empty-catch): the daemon may be gone already
  }
}

void EcmProcess::kill_hard() {
  if (pid_ <= 0) return;
  track_listed_engines();
  client_.reset();
  kill(pid_, SIGKILL);
  wait_child(pid_, 10s);
  pid_ = -1;
}

int EcmProcess::terminate_and_wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -999;
  // Engines left running (stop_on_shutdown off) are still caught by the safety net.
  track_listed_engines();
  client_.reset();
  kill(pid_, SIGTERM);
  int code = wait_child(pid_, timeout);
  pid_ = -1;
  return code;
}

EcmProcess::~EcmProcess() {
  if (pid_ > 0) {
    // Remember every engine's group, so the safety net below catches what the daemon left.
    track_listed_engines();
    client_.reset();
    kill(pid_, SIGTERM);
    wait_child(pid_, 30s);
  }
  // Only groups with a member working under this daemon's dir: a pid listed here may have been
  // recycled since its engine ended (pid_max is small), and the new group is someone else's.
  const std::string mine = dir_.string() + "/";
  // Once each: daemons restarted many times (the soak) list the same engines again and again.
  std::sort(tracked_groups_.begin(), tracked_groups_.end());
  tracked_groups_.erase(std::unique(tracked_groups_.begin(), tracked_groups_.end()),
                        tracked_groups_.end());
  for (int pgid : tracked_groups_) {
    if (pgid <= 1) continue;
    for (pid_t member : group_members(pgid)) {
      std::error_code ec;
      const auto cwd = fs::read_symlink("/proc/" + std::to_string(member) + "/cwd", ec).string();
      if (!ec && cwd.rfind(mine, 0) == 0) {
        kill(-pgid, SIGKILL);
        break;
      }
    }
  }
  std::error_code ec;
  if (!options_.keep_dir) fs::remove_all(dir_, ec);
}

api::EngineConn EcmProcess::launch(const api::LaunchRequest& request) {
  api::EngineConn e;
  client().launchEngineConn(e, request);
  if (e.__isset.pid && e.pid > 0) track(e.pid);
  return e;
}

api::EngineConn EcmProcess::wait_for_status(const std::string& id,
                                            const std::function<bool(const api::EngineConn&)>& done,
                                            std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    // A fresh object each time: Thrift's read() leaves the isset flag of an absent field as it was.
    api::EngineConn e;
    client().getEngineConn(e, id);
    if (done(e) || std::chrono::steady_clock::now() >= until) return e;
    std::this_thread::sleep_for(20ms);
  }
}

api::EngineConn EcmProcess::wait_for_status(const std::string& id, api::EngineStatus::type status,
                                            std::chrono::milliseconds timeout) {
  return wait_for_status(
      id, [status](const api::EngineConn& e) { return e.__isset.status && e.status == status; },
      timeout);
}

ProcessResult EcmProcess::run_ecmctl(const std::vector<std::string>& args,
                                     std::chrono::milliseconds timeout) const {
  std::vector<std::string> all{"--address", address()};
  all.insert(all.end(), args.begin(), args.end());
  return run_ecmctl_raw(all, timeout);
}

ProcessResult EcmProcess::run_ecmctl_raw(const std::vector<std::string>& args,
                                         std::chrono::milliseconds timeout) const {
  const unsigned n = g_run_counter++;
  const fs::path out = dir_ / ("ecmctl-" + std::to_string(n) + ".out");
  const fs::path err = dir_ / ("ecmctl-" + std::to_string(n) + ".err");
  std::vector<std::string> argv{(fs::path(ECM_BIN_DIR) / "ecmctl").string()};
  argv.insert(argv.end(), args.begin(), args.end());
  ProcessResult r;
  r.exit_code = wait_child(spawn(argv, out, err), timeout);
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

std::vector<std::string> launch_concurrently(
    const EcmProcess& ecm, int n, const std::function<api::LaunchRequest(int)>& request) {
  std::vector<std::string> errors(static_cast<std::size_t>(n));
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      auto& error = errors[static_cast<std::size_t>(i)];
      try {
        auto c = ecm.connect();
        api::EngineConn e;
        (*c)->launchEngineConn(e, request(i));
      } catch (const api::EcmError& e) {
        error = "EcmError: " + e.message;
      } catch (const std::exception& e) {
        error = e.what();
      }
    });
  }
  for (auto& t : threads)
    t.join();
  return errors;
}

bool is_live(const api::EngineConn& e) {
  return e.status != api::EngineStatus::SUCCESS && e.status != api::EngineStatus::FAILED;
}

std::map<std::string, int> engine_processes(const EcmProcess& ecm) {
  std::map<std::string, int> out;
  const std::string root = "ECM_WORK_DIR=" + ecm.work_root().string() + "/";
  for (const auto& dir : fs::directory_iterator("/proc")) {
    const auto name = dir.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(dir.path() / "environ", std::ios::binary);
    std::string var, id;
    bool ours = false;
    while (std::getline(in, var, '\0')) {
      if (var.rfind(root, 0) == 0) ours = true;
      if (var.rfind("ECM_ENGINE_ID=", 0) == 0) id = var.substr(14);
    }
    const int pid = std::stoi(name);
    if (ours && !id.empty() && ecm::test::leads_live_group(pid)) out[id] = pid;
  }
  return out;
}

std::vector<std::string> recovery_violations(EcmProcess& ecm) {
  std::vector<std::string> bad;
  std::vector<api::EngineConn> listed;
  ecm.client().listEngineConns(listed, api::EngineConnFilter{});
  std::map<std::string, api::EngineConn> table;
  for (auto& e : listed)
    table[e.id] = e;
  auto running = engine_processes(ecm);
  std::set<int> pids;
  int live = 0;
  for (const auto& [id, e] : table) {
    if (!is_live(e)) {
      if (e.status == api::EngineStatus::FAILED && e.failure_reason.empty()) {
        bad.push_back(id + ": Failed without a reason");
      }
      if (running.count(id) != 0) bad.push_back(id + ": ended in the table but its process runs");
      continue;
    }
    ++live;
    auto it = running.find(id);
    if (it == running.end()) {
      bad.push_back(id + ": live in the table, no process");
    } else if (it->second != e.pid) {
      bad.push_back(id + ": table pid " + std::to_string(e.pid) + ", process " +
                    std::to_string(it->second));
    }
    if (!pids.insert(e.pid).second) bad.push_back(id + ": pid counted twice");
  }
  for (const auto& [id, pid] : running) {
    if (table.count(id) == 0) bad.push_back(id + ": orphan process " + std::to_string(pid));
  }
  api::NodeResources res;
  ecm.client().getResources(res);
  if (res.used.instances + res.locked.instances != live) {
    bad.push_back("ledger holds " + std::to_string(res.used.instances + res.locked.instances) +
                  " instances for " + std::to_string(live) + " live engines");
  }
  return bad;
}

api::LaunchRequest shell_request(const std::string& user, const std::string& command) {
  api::LaunchRequest r;
  r.__set_user(user);
  r.__set_engine_type("shell");
  r.__set_properties({{"command", command}});
  return r;
}

std::vector<pid_t> group_members(pid_t pgid) {
  return ecm::test::live_group_members(pgid);
}

std::optional<api::EcmError> ecm_error_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const api::EcmError& e) {
    return e;
  }
  return std::nullopt;
}

bool group_alive(pid_t pgid) {
  return kill(-pgid, 0) == 0 && !group_members(pgid).empty();
}

bool wait_group_gone(pid_t pgid, std::chrono::milliseconds timeout) {
  return eventually([pgid] { return !group_alive(pgid); }, timeout);
}

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(20ms);
  }
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file_atomically(const std::filesystem::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  const auto tmp = path.string() + ".tmp";
  std::ofstream(tmp, std::ios::trunc) << text;
  fs::rename(tmp, path);
}

void write_fake_proc(const EcmProcess& ecm, int memory_available_percent) {
  const auto proc = ecm.dir() / "proc";
  write_file_atomically(proc / "meminfo",
                        "MemTotal:       10000000 kB\nMemFree:          100 kB\nMemAvailable:   " +
                            std::to_string(memory_available_percent * 100000) + " kB\n");
  write_file_atomically(proc / "stat", "cpu  100 0 100 800 0 0 0 0 0 0\n");
  write_file_atomically(proc / "loadavg", "0.25 0.20 0.10 1/100 4321\n");
}

std::vector<std::filesystem::path> tree(const std::filesystem::path& root) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

EngineCallbackClient::EngineCallbackClient(const std::string& address) {
  namespace at = ::apache::thrift;
  const auto colon = address.rfind(':');
  auto socket = std::make_shared<at::transport::TSocket>(address.substr(0, colon),
                                                         std::stoi(address.substr(colon + 1)));
  transport_ = std::make_shared<at::transport::TBufferedTransport>(socket);
  client_ = std::make_unique<api::EngineConnCallbackServiceClient>(
      std::make_shared<at::protocol::TBinaryProtocol>(transport_));
  transport_->open();
}

EngineCallbackClient::~EngineCallbackClient() {
  transport_->close();
}

std::map<std::string, std::string> engine_environment(const api::EngineConn& engine) {
  const std::string out = engine.log_dir + "/stdout";
  eventually([&] { return read_file(out).find("ECM_ENGINE_TOKEN=") != std::string::npos; });
  std::map<std::string, std::string> env;
  std::istringstream in(read_file(out));
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq != std::string::npos) env[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return env;
}

}  // namespace ecm::itest
