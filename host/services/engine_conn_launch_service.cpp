#include "services/engine_conn_launch_service.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "ecm/core/engine_exit.hpp"
#include "ecm/core/errors.hpp"
#include "ecm/core/launch_validation.hpp"
#include "ecm/core/units.hpp"
#include "util/log.hpp"

namespace ecm::host {
namespace {

using core::EcmException;
using core::ErrorCode;
namespace fs = std::filesystem;

// Creates every missing level of `dir` with mode 0700 (not the umask's default).
void make_private_dir(const fs::path& dir) {
  fs::path at;
  for (const auto& part : dir) {
    at /= part;
    if (::mkdir(at.c_str(), 0700) == 0 || errno == EEXIST) continue;
    throw EcmException(ErrorCode::kLaunchFailed,
                       "cannot create " + at.string() + ": " + std::strerror(errno));
  }
}

// Runs an event-loop handler for one engine: an exception (the state store refusing a write)
// is logged under the engine's id instead of escaping io_context::run() and ending the daemon.
template <class Fn>
void on_loop(const std::string& engine_id, Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    log("engines")->error("[{}] {}", engine_id, e.what());
  }
}

// The engine's own dir: it must not exist yet (a path someone prepared is never adopted).
void make_new_dir(const fs::path& dir) {
  // The parents exist but for a user's first engine: one mkdir in the common case, not one per
  // component of the path.
  int rc = ::mkdir(dir.c_str(), 0700);
  if (rc != 0 && errno == ENOENT) {
    make_private_dir(dir.parent_path());
    rc = ::mkdir(dir.c_str(), 0700);
  }
  if (rc != 0) {
    throw EcmException(ErrorCode::kLaunchFailed,
                       "cannot create " + dir.string() + ": " + std::strerror(errno));
  }
}

void write_file(const fs::path& path, const std::string& content) {
  // O_EXCL|O_NOFOLLOW: the work dir is new, so nothing may already stand at this path.
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
  if (fd < 0) {
    throw EcmException(ErrorCode::kLaunchFailed,
                       "cannot create " + path.string() + ": " + std::strerror(errno));
  }
  std::size_t done = 0;
  while (done < content.size()) {
    auto n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      throw EcmException(ErrorCode::kLaunchFailed,
                         "cannot write " + path.string() + ": " + std::strerror(e));
    }
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
}

// Gives `root` (the engine's work dir, new) and everything in it to the engine's user. Symlinks
// are not followed: lchown changes the link itself, never what it points at.
void give_to(const fs::path& p, const core::Credentials& to) {
  if (::lchown(p.c_str(), to.uid, to.gid) != 0) {
    throw EcmException(ErrorCode::kLaunchFailed, "cannot give " + p.string() + " to uid " +
                                                     std::to_string(to.uid) + ": " +
                                                     std::strerror(errno));
  }
}

void give_tree_to(const fs::path& root, const core::Credentials& to) {
  give_to(root, to);
  for (const auto& entry : fs::recursive_directory_iterator(root))
    give_to(entry.path(), to);
}

}  // namespace

EngineConnLaunchService::EngineConnLaunchService(LaunchSettings settings, PluginRegistry& registry,
                                                 EngineConnListService& engines,
                                                 core::ResourceLedger& resources,
                                                 core::LinuxProcessEngineConnLaunch& processes,
                                                 core::PortReservations& ports,
                                                 boost::asio::io_context& io)
    : settings_(std::move(settings)),
      registry_(registry),
      engines_(engines),
      resources_(resources),
      processes_(processes),
      ports_(ports),
      readiness_(
          io,
          [this](const std::string& id) {
            on_loop(id, [&] { mark_ready(id, core::EngineStatus::kRunning); });
          },
          [this](const std::string& id) { on_loop(id, [&] { on_not_ready(id); }); }),
      heartbeats_(
          io,
          [this](const std::string& id) -> std::optional<core::Clock::time_point> {
            auto e = engines_.get(id);
            if (!e) return std::nullopt;
            // A re-adopted engine could not reach the stopped ECM: its silence counts from then.
            auto beat = e->last_heartbeat;
            auto rt = engines_.runtime(id);
            if (rt && rt->adopted_at && (!beat || *beat < *rt->adopted_at)) beat = rt->adopted_at;
            return beat;
          },
          [this](const std::string& id, std::chrono::milliseconds silent) {
            on_loop(id, [&] {
              const std::string why = "no heartbeat for " + core::format_duration(silent);
              log("engines")->warn("[{}] unhealthy: {}", id, why);
              engines_.update(id, [&](core::EngineConn& e) { e.unhealthy_reason = why; });
            });
          },
          [this](const std::string& id, std::chrono::milliseconds) {
            on_loop(id, [&] {
              log("engines")->info("[{}] heartbeats again: healthy", id);
              engines_.update(id, [](core::EngineConn& e) { e.unhealthy_reason.clear(); });
            });
          },
          [this](const std::string& id, std::chrono::milliseconds silent) {
            on_loop(id, [&] { on_heartbeat_lost(id, silent); });
          }) {}

void EngineConnLaunchService::set_callback_address(const std::string& address) {
  std::lock_guard lock(callback_mu_);
  callback_address_ = address;
}

void EngineConnLaunchService::set_launch_defaults(std::chrono::milliseconds stop_grace,
                                                  std::chrono::milliseconds launch_timeout,
                                                  const core::Resource& engine_default) {
  std::lock_guard lock(defaults_mu_);
  settings_.default_stop_grace = stop_grace;
  settings_.launch_timeout = launch_timeout;
  settings_.engine_default = engine_default;
}

std::string EngineConnLaunchService::callback_address() const {
  std::lock_guard lock(callback_mu_);
  return callback_address_;
}

core::EngineConn EngineConnLaunchService::make_record(const sdk::LaunchRequest& request,
                                                      const LauncherGeneration& launcher) const {
  core::EngineConn r;
  r.id = core::new_engine_id();
  r.ticket_id = request.ticket_id;
  r.user = request.user;
  r.engine_type = request.engine_type;
  r.engine_version = request.engine_version;
  r.labels = request.labels;
  r.properties = request.properties;
  r.status = core::EngineStatus::kStarting;
  r.created_at = core::Clock::now();
  r.work_dir = (settings_.work_root / r.user / r.id).string();
  r.log_dir = (fs::path(r.work_dir) / "logs").string();
  r.plugin_name = launcher.library().name;
  r.plugin_version = launcher.library().version;
  r.token = core::new_engine_token();
  return r;
}

struct EngineConnLaunchService::Preparation {
  EngineRuntime runtime;
  std::optional<core::UserIdentity> identity;
  std::vector<core::ListeningSocket> sockets;  // closed once the engine holds its copies
  sdk::LaunchContext context;
  std::vector<std::shared_ptr<const HookGeneration>> hooks;
  bool hooks_ran = false;
  std::vector<sdk::ResourceSpec> resources;        // the request's and the plugin's, validated
  sdk::ReadinessRule readiness;                    // the plugin's, with its spec
  ResourceLocalizationService::Holdings holdings;  // moved to holdings_ once the engine runs
};

void EngineConnLaunchService::assign_ports(const std::string& engine_id,
                                           const std::vector<sdk::PortRequest>& wanted,
                                           Preparation& prep) {
  std::size_t reserved = 0;
  for (const auto& w : wanted)
    reserved += w.mode == sdk::PortRequest::Mode::kReserved ? 1 : 0;
  auto from_range = ports_.reserve(engine_id, reserved, settings_.port_host);
  std::size_t next_reserved = 0;
  for (const auto& w : wanted) {
    if (w.mode == sdk::PortRequest::Mode::kReserved) {
      prep.context.ports[w.name] = from_range[next_reserved++];
    } else {
      prep.sockets.push_back(core::ListeningSocket::open(settings_.port_host));
      prep.context.ports[w.name] = prep.sockets.back().port();
    }
  }
}

core::ProcessSpec EngineConnLaunchService::prepare(const core::EngineConn& record,
                                                   const sdk::LaunchRequest& request,
                                                   const LauncherGeneration& launcher,
                                                   Preparation& prep) const {
  const fs::path work(record.work_dir);
  make_new_dir(work);
  make_new_dir(record.log_dir);
  // Before build(), as the SDK promises: the plugin may refer to <work_dir>/<name>. A plugin file
  // of the same name then fails to be written (O_EXCL), never writes through the link.
  localize(record, prep);
  auto plan = launcher.plan(request, prep.context);
  sdk::LaunchSpec spec = std::move(plan.spec);
  prep.readiness = std::move(plan.readiness);
  prep.hooks_ran = !prep.hooks.empty();
  for (const auto& hook : prep.hooks)
    hook->before_launch(request, prep.context, spec);
  // Nothing of the plugin's may go below a resource's link: that would write into the cache.
  auto under_resource = [&](const std::string& rel) {
    const auto first = fs::path(rel).lexically_normal().begin()->string();
    for (const auto& r : prep.resources) {
      if (r.name == first) {
        throw EcmException(ErrorCode::kPluginFailed, "plugin '" + launcher.library().name +
                                                         "' puts '" + rel + "' in resource '" +
                                                         r.name + "'");
      }
    }
  };
  for (const auto& d : spec.directories)
    under_resource(d);
  for (const auto& [path, content] : spec.files)
    under_resource(path);
  for (const auto& d : spec.directories)
    make_private_dir(work / d);
  for (const auto& [path, content] : spec.files) {
    make_private_dir((work / path).parent_path());
    write_file(work / path, content);
  }
  if (prep.identity) {
    // <work_root>/<user> stays the ECM's, open to pass through (0711): the engine reaches its own
    // dir, and its user cannot rename a dir there while the ECM (root) creates files in it.
    if (::chmod(work.parent_path().c_str(), 0711) != 0) {
      throw EcmException(ErrorCode::kLaunchFailed, "cannot open " + work.parent_path().string() +
                                                       " for the engine: " + std::strerror(errno));
    }
    give_tree_to(work, prep.identity->credentials);
  }
  auto& runtime = prep.runtime;
  runtime.stop_signal = spec.stop_signal;
  runtime.stop_grace =
      spec.stop_grace.count() > 0 ? spec.stop_grace : locked_default(settings_.default_stop_grace);

  // A minimal base environment, then the plugin's, then the ECM's own (which nobody overrides).
  std::map<std::string, std::string> env{
      {"PATH", "/usr/local/bin:/usr/bin:/bin"},
      {"HOME", prep.identity ? prep.identity->home : record.work_dir},
      {"USER", record.user},
      {"LOGNAME", record.user},
      {"LANG", "C.UTF-8"},
  };
  for (const auto& [k, v] : spec.env)
    env[k] = v;
  env["ECM_ENGINE_ID"] = record.id;
  env["ECM_WORK_DIR"] = record.work_dir;
  env["ECM_LOG_DIR"] = record.log_dir;
  env["ECM_USER"] = record.user;
  env["ECM_ENGINE_TYPE"] = record.engine_type;
  env["ECM_ENGINE_TOKEN"] = record.token;
  env["ECM_CALLBACK_ADDRESS"] = callback_address();
  if (!settings_.ctl_path.empty()) env["ECM_CTL"] = settings_.ctl_path.string();
  for (const auto& [name, port] : prep.context.ports)
    env["ECM_PORT_" + name] = std::to_string(port);
  // LISTEN_PID is set by the launcher in the child; a plugin's value never reaches the engine.
  env.erase("LISTEN_PID");
  env.erase("LISTEN_FDS");
  env.erase("LISTEN_FDNAMES");

  core::ProcessSpec p;
  if (!prep.sockets.empty()) {
    // The sockets in the order the plugin asked for them, as fds 3, 4, ...
    std::string names;
    for (const auto& s : prep.sockets) {
      p.inherit_fds.push_back(s.fd());
      for (const auto& [name, port] : prep.context.ports) {
        if (port == s.port()) names += (names.empty() ? "" : ":") + name;
      }
    }
    env["LISTEN_FDS"] = std::to_string(prep.sockets.size());
    env["LISTEN_FDNAMES"] = names;
  }
  p.executable = spec.executable;
  p.argv = spec.argv.empty() ? std::vector<std::string>{spec.executable} : spec.argv;
  for (const auto& [k, v] : env)
    p.env.push_back(k + "=" + v);
  p.working_dir = spec.working_dir.empty() ? record.work_dir : (work / spec.working_dir).string();
  p.stdout_path = (fs::path(record.log_dir) / "stdout").string();
  p.stderr_path = (fs::path(record.log_dir) / "stderr").string();
  if (prep.identity) p.credentials = prep.identity->credentials;
  return p;
}

void EngineConnLaunchService::localize(const core::EngineConn& record, Preparation& prep) const {
  if (prep.resources.empty()) return;
  LocalizationTarget target;
  target.engine_id = record.id;
  target.user = record.user;
  target.engine_type = record.engine_type;
  target.work_root = settings_.work_root;
  target.work_dir = record.work_dir;
  prep.holdings = localization_->localize(target, prep.resources);
}

core::EngineConn EngineConnLaunchService::launch(const sdk::LaunchRequest& request,
                                                 const LaunchOptions& options) {
  const auto began = std::chrono::steady_clock::now();
  const core::Resource& asked = options.asked;
  if (shutting_down_) throw EcmException(ErrorCode::kShuttingDown, "the ECM is shutting down");
  core::validate_launch_request(request);
  // A retried ticket gets its engine back before anything else is checked or locked.
  if (!request.ticket_id.empty()) {
    if (auto known = engines_.find_by_ticket(request.ticket_id)) return *known;
  }
  if (admission_check_) {
    if (auto refusal = admission_check_())
      throw EcmException(ErrorCode::kNodeUnavailable, *refusal);
  }
  auto launcher = registry_.launcher_for(request.engine_type, request.engine_version);
  auto admission = launcher->admit(request);
  Preparation prep;
  // Resources are checked (a localizer for each, checksums, names) before anything is locked.
  prep.resources = options.resources;
  for (auto& r : admission.resources)
    prep.resources.push_back(std::move(r));
  if (!prep.resources.empty()) {
    if (localization_ == nullptr) {
      throw EcmException(ErrorCode::kInvalidRequest, "this ECM localizes no resources");
    }
    localization_->validate(prep.resources, request.engine_type);
  }
  // Who the engine runs as is settled before anything is locked: a refused user changes nothing.
  if (settings_.run_as_user)
    prep.identity = core::resolve_user(request.user, *settings_.run_as_user);

  auto fresh = make_record(request, *launcher);
  const auto engine_default = locked_default(settings_.engine_default);
  fresh.resources = {asked.memory_bytes ? asked.memory_bytes : engine_default.memory_bytes,
                     asked.cores ? asked.cores : engine_default.cores, 1};
  if (prep.identity) fresh.run_as_uid = prep.identity->credentials.uid;
  resources_.lock(fresh.id, fresh.resources);
  std::pair<core::EngineConn, bool> added;
  try {
    added = engines_.add_unless_ticket_known(fresh);
  } catch (...) {  // the store refused the record: nothing of this launch may stay locked
    resources_.release(fresh.id);
    throw;
  }
  auto& [record, inserted] = added;
  if (!inserted) {  // the same ticket raced in from another connection
    resources_.release(fresh.id);
    log("launch")->info("[{}] ticket {} already launched: returning the existing engine", record.id,
                        record.ticket_id);
    return record;
  }
  const std::string id = record.id;
  prep.context = {record.id, record.work_dir, record.log_dir, {}};
  auto fail = [&](const std::string& reason) {
    engines_.transition(id, core::EngineStatus::kFailed, [&](core::EngineConn& r) {
      r.failure_reason = reason;
      r.ended_at = core::Clock::now();
    });
    release(id);
    if (prep.hooks_ran) {
      for (const auto& hook : prep.hooks)
        hook->after_launch(request, prep.context, {false, 0, reason});
    }
  };
  try {
    prep.runtime.plugin_pin = launcher;
    prep.hooks = registry_.hooks_for(request.engine_type);
    assign_ports(id, admission.ports, prep);
    core::ProcessSpec spec = prepare(record, request, *launcher, prep);
    if (!prep.holdings.empty()) {
      // Before the spawn: an engine that exits at once releases them on the event loop, and a
      // failed spawn through fail().
      std::lock_guard lock(holdings_mu_);
      holdings_[id] = std::move(prep.holdings);
    }
    const auto& rule = prep.readiness;
    // The request's, else the administrator's for this plugin, else the plugin's, else the node's.
    const auto& admin = launcher->host_settings();
    const auto node_timeout = locked_default(settings_.launch_timeout);
    const auto timeout = options.launch_timeout.count() > 0 ? options.launch_timeout
                         : admin.launch_timeout.count() > 0 ? admin.launch_timeout
                         : rule.timeout.count() > 0         ? rule.timeout
                                                            : node_timeout;
    prep.runtime.launch_timeout = timeout;
    prep.runtime.heartbeat_timeout = admin.heartbeat_timeout;
    engines_.set_runtime(id, prep.runtime);
    // Stored before the spawn: an ECM killed between the spawn and the next write still finds
    // how to supervise the process (it finds the process itself by ECM_ENGINE_ID).
    const bool ready_at_spawn =
        rule.kind == sdk::ReadinessRule::Kind::kProcessAlive && rule.alive_for.count() == 0;
    engines_.update(id, [&](core::EngineConn& e) {
      e.ports = prep.context.ports;
      auto& sv = e.supervision;
      sv.boot_id = settings_.boot_id;
      sv.stop_signal = prep.runtime.stop_signal;
      sv.stop_grace = prep.runtime.stop_grace;
      sv.launch_timeout = timeout;
      sv.heartbeat_timeout = admin.heartbeat_timeout;
      if (!ready_at_spawn) sv.readiness = rule;
      std::lock_guard lock(holdings_mu_);
      if (auto it = holdings_.find(id); it != holdings_.end()) {
        for (const auto& lease : it->second)
          sv.cache_entries.push_back(lease.name());
      }
    });
    auto started = processes_.start(
        spec, [this, id](int, const core::ExitStatus& exit) { on_exit(id, exit); });
    prep.sockets.clear();  // the engine has its own copies now
    if (latency_observer_) {
      latency_observer_(std::chrono::duration_cast<std::chrono::microseconds>(
          std::chrono::steady_clock::now() - began));
    }
    if (event_sink_) {
      auto launched = core::engine_event(sdk::EventKind::kEngineLaunched, record);
      launched.pid = started.pid;
      launched.plugin_name = launcher->library().name;
      launched.plugin_version = launcher->library().version;
      launched.generation = launcher->generation();
      event_sink_(std::move(launched));
    }
    for (const auto& hook : prep.hooks)
      hook->after_launch(request, prep.context, {true, started.pid, {}});
    // One write for the process and, when the engine is ready as soon as it runs, for Running.
    const auto spawned = [&](core::EngineConn& e) {
      e.pid = started.pid;
      e.started_at = core::Clock::now();
      e.supervision.start_time = started.start_time;
    };
    const bool running = ready_at_spawn && mark_ready(id, core::EngineStatus::kRunning, spawned);
    if (!running) engines_.update(id, spawned);
    // A stop that came in while it was being built is carried out now that there is a process.
    auto now = engines_.get(id);
    if (now && now->status == core::EngineStatus::kShuttingDown) {
      processes_.stop(started.pid, prep.runtime.stop_signal, prep.runtime.stop_grace);
    } else if (!running) {
      readiness_.watch(id, rule, timeout, record.log_dir);
    }
    log("launch")->info(
        "[{}] launched {} for {} as pid {}{}", id, request.engine_type, request.user, started.pid,
        prep.identity ? " (uid " + std::to_string(prep.identity->credentials.uid) + ")"
                      : std::string());
  } catch (const EcmException& e) {
    fail(e.what());
    log("launch")->warn("[{}] launch failed: {}", id, e.what());
    throw;
  } catch (const std::exception& e) {
    fail(e.what());
    log("launch")->error("[{}] launch failed: {}", id, e.what());
    throw EcmException(ErrorCode::kInternal, e.what());
  }
  return *engines_.get(id);
}

void EngineConnLaunchService::release(const std::string& engine_id) {
  resources_.release(engine_id);
  ports_.release(engine_id);
  ResourceLocalizationService::Holdings held;  // released outside the lock
  {
    std::lock_guard lock(holdings_mu_);
    if (auto it = holdings_.find(engine_id); it != holdings_.end()) {
      held = std::move(it->second);
      holdings_.erase(it);
    }
  }
}

bool EngineConnLaunchService::mark_ready(const std::string& engine_id, core::EngineStatus status,
                                         const std::function<void(core::EngineConn&)>& mutate) {
  auto ready = engines_.transition(engine_id, status, mutate);
  if (!ready) return false;
  readiness_.forget(engine_id);
  resources_.mark_used(engine_id);
  // From the moment it is available, an engine whose plugin requires heartbeats must send them.
  if (auto runtime = engines_.runtime(engine_id);
      runtime && runtime->heartbeat_timeout.count() > 0) {
    heartbeats_.watch(engine_id, runtime->heartbeat_timeout);
  }
  log("launch")->info("[{}] ready: {}", engine_id, core::to_string(status));
  return true;
}

void EngineConnLaunchService::on_not_ready(const std::string& engine_id) {
  auto record = engines_.get(engine_id);
  if (!record || record->status != core::EngineStatus::kStarting) return;
  const auto runtime = engines_.runtime(engine_id).value_or(EngineRuntime{});
  std::string reason = "not ready after " + core::format_duration(runtime.launch_timeout);
  auto tail = last_lines(record->log_dir + "/stderr", 5);
  if (!tail.empty()) reason += "; last stderr lines:\n" + tail;
  if (!engines_.transition(engine_id, core::EngineStatus::kShuttingDown, [&](core::EngineConn& e) {
        e.failure_reason = reason;
        e.stop_reason = "launch timeout";
      })) {
    return;
  }
  log("launch")->warn("[{}] {}", engine_id, reason);
  processes_.stop(record->pid, runtime.stop_signal, runtime.stop_grace);
}

void EngineConnLaunchService::on_heartbeat_lost(const std::string& engine_id,
                                                std::chrono::milliseconds silent) {
  auto record = engines_.get(engine_id);
  if (!record) return;
  const auto runtime = engines_.runtime(engine_id).value_or(EngineRuntime{});
  const std::string reason = "heartbeat lost: none for " + core::format_duration(silent);
  if (!engines_.transition(engine_id, core::EngineStatus::kShuttingDown, [&](core::EngineConn& e) {
        e.failure_reason = reason;
        e.stop_reason = "heartbeat lost";
      })) {
    return;  // already stopping or ended
  }
  log("engines")->warn("[{}] {}: stopping it", engine_id, reason);
  processes_.stop(record->pid, runtime.stop_signal, runtime.stop_grace);
}

void EngineConnLaunchService::on_exit(const std::string& engine_id, const core::ExitStatus& exit) {
  readiness_.forget(engine_id);
  heartbeats_.forget(engine_id);
  // Released first: once a caller sees the engine ended, its resources are already free.
  release(engine_id);
  try {
    auto ended = engines_.finish(engine_id, exit);
    if (ended) {
      log("engines")->info("[{}] ended {}: {}", engine_id, core::to_string(ended->status),
                           core::describe_exit(exit));
      if (event_sink_) {
        auto exited = core::engine_event(sdk::EventKind::kEngineExited, *ended);
        exited.pid = ended->pid;
        exited.exit_code = exit.code;
        exited.signal = exit.signal;
        exited.reason = ended->stop_reason.empty() ? core::describe_exit(exit) : ended->stop_reason;
        exited.plugin_name = ended->plugin_name;
        exited.plugin_version = ended->plugin_version;
        event_sink_(std::move(exited));
      }
    }
  } catch (const std::exception& e) {
    // On an event-loop thread: an exception here would end the daemon. The record keeps its
    // last stored state; the exit is in the log.
    log("engines")->error("[{}] ended ({}) but its record could not be written: {}", engine_id,
                          core::describe_exit(exit), e.what());
  }
}

}  // namespace ecm::host

namespace ecm::host {

bool EngineConnLaunchService::adopt(const core::EngineConn& record,
                                    ResourceLocalizationService::Holdings holdings) {
  const std::string id = record.id;
  const auto& sv = record.supervision;
  EngineRuntime runtime;
  runtime.stop_signal = sv.stop_signal;
  runtime.stop_grace = sv.stop_grace.count() > 0 ? sv.stop_grace : settings_.default_stop_grace;
  runtime.launch_timeout = sv.launch_timeout;
  runtime.heartbeat_timeout = sv.heartbeat_timeout;
  runtime.adopted_at = core::Clock::now();
  // The generation serving the engine's type now holds it (the one that built it went with the
  // old process); none when the plugin is no longer loaded: the engine is still watched and
  // stopped, which needs no plugin.
  try {
    runtime.plugin_pin = registry_.launcher_for(record.engine_type, record.engine_version);
  } catch (const std::exception&) {
  }
  // Before the process is watched: its exit, even at once, finds everything to release.
  resources_.adopt(id, record.resources, core::is_available(record.status));
  std::vector<int> ports;
  for (const auto& [name, port] : record.ports)
    ports.push_back(port);
  ports_.adopt(id, ports);
  if (!holdings.empty()) {
    std::lock_guard lock(holdings_mu_);
    holdings_[id] = std::move(holdings);
  }
  engines_.set_runtime(id, runtime);
  if (!processes_.adopt(record.pid, sv.start_time,
                        [this, id](int, const core::ExitStatus& exit) { on_exit(id, exit); })) {
    release(id);
    return false;
  }
  if (record.status == core::EngineStatus::kStarting) {
    if (!sv.readiness) {
      mark_ready(id, core::EngineStatus::kRunning);
    } else {
      // What is left of its launch timeout, counted from its spawn.
      const auto since = std::chrono::duration_cast<std::chrono::milliseconds>(
          core::Clock::now() - record.started_at.value_or(record.created_at));
      const auto left = std::max(sv.launch_timeout - since, std::chrono::milliseconds(1000));
      readiness_.watch(id, *sv.readiness, left, record.log_dir);
    }
  } else if (core::is_available(record.status) && sv.heartbeat_timeout.count() > 0) {
    heartbeats_.watch(id, sv.heartbeat_timeout);
  } else if (record.status == core::EngineStatus::kShuttingDown) {
    // It was being stopped when the ECM went away: the stop goes on, with its whole grace.
    processes_.stop(record.pid, runtime.stop_signal, runtime.stop_grace);
  }
  return true;
}

}  // namespace ecm::host
