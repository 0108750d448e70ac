#include "daemon/ecm_daemon.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <future>

#include <thrift/TOutput.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/server/TThreadedServer.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TServerSocket.h>

#include "ecm/thrift/listen_signal.hpp"
#include "http/prometheus_text.hpp"
#include "services/engine_conn_recovery_service.hpp"
#include "thrift/authenticating_processor.hpp"
#include "thrift/ecm_service_handler.hpp"
#include "thrift/engine_callback_handler.hpp"
#include "thrift/thrift_convert.hpp"
#include "thrift/thrift_serving.hpp"
#include "util/log.hpp"

namespace ecm::host {
namespace {

namespace at = apache::thrift;

using thrift_support::ListenSignal;

// ecmctl as installed beside this ecm binary; empty when it is not there.
std::filesystem::path sibling_ecmctl() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  auto ctl = self.parent_path() / "ecmctl";
  return std::filesystem::is_regular_file(ctl, ec) ? ctl : std::filesystem::path{};
}

// The user policy when engines run as the requested user; nullopt when they run as the ECM's.
// Throws std::runtime_error when the config asks for switching and the ECM cannot switch.
std::optional<core::UserPolicy> run_as_user(const EcmConfig& c) {
  if (c.run_as == "ecm") return std::nullopt;
  if (core::running_as_root()) return c.user_policy;
  if (c.run_as == "requested") {
    throw std::runtime_error("[users] run_as = \"requested\" needs the ECM to run as root");
  }
  return std::nullopt;  // "auto" without root: the request's user is recorded only
}

CleanupSettings cleanup_settings(const EcmConfig& c) {
  CleanupSettings s;
  s.work_root = c.work_root;
  s.retention = c.retention;
  s.interval = c.cleanup_interval;
  s.high_watermark_percent = c.disk_high_watermark;
  s.low_watermark_percent = c.disk_low_watermark;
  return s;
}

HealthSettings health_settings(const EcmConfig& c) {
  HealthSettings s;
  s.sample_interval = c.health_sample_interval;
  s.thresholds.cpu_overload_percent = c.cpu_overload_percent;
  s.thresholds.memory_min_available_percent = c.memory_min_available_percent;
  s.thresholds.launch_failures_unhealthy = c.launch_failures_unhealthy;
  s.proc_meminfo = c.proc_meminfo;
  s.proc_stat = c.proc_stat;
  s.proc_loadavg = c.proc_loadavg;
  return s;
}

LogRotationSettings log_rotation_settings(const EcmConfig& c) {
  return {c.work_root, c.log_rotate_size, c.log_rotate_keep, c.log_rotate_check_interval};
}

// Whether `host`:`port` can be bound now (TCP, SO_REUSEADDR as Thrift's server socket sets it).
bool can_bind(const std::string& host, std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  const bool ok = ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) == 1 &&
                  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

void write_file_atomically(const std::filesystem::path& path, const std::string& content) {
  auto tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << content;
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace

EcmDaemon::EcmDaemon(EcmConfig config)
    : config_(std::move(config)),
      boot_id_(core::read_boot_id(config_.boot_id_file.string())),
      processes_(io_),
      registry_(config_.plugin_dir, config_.plugin_conf_dir, config_.state_dir / "plugins", &bus_),
      resources_(config_.capacity, config_.protected_),
      ports_(config_.port_range),
      cache_(config_.cache_dir, config_.cache_max_bytes),
      localization_(
          {config_.allow_unverified, {config_.max_unpacked_bytes, config_.max_archive_entries}},
          registry_, cache_),
      launch_(
          {config_.work_root, config_.stop_grace, config_.engine_default, config_.launch_timeout,
           sibling_ecmctl(), run_as_user(config_), config_.port_host, boot_id_},
          registry_, engines_, resources_, processes_, ports_, io_),
      kill_(engines_, processes_),
      callbacks_(engines_, launch_),
      cleanup_(cleanup_settings(config_), engines_, io_),
      log_rotation_(log_rotation_settings(config_), engines_, io_, cleanup_.executor()),
      metrics_(engines_, resources_, &registry_.call_stats()),
      health_(health_settings(config_), metrics_, &cleanup_, io_),
      plugins_(registry_, engines_) {
  // core's event bus logs under "bus": made here, it writes to the daemon's log like the rest.
  log("bus");
  // A pidfd per engine: the daemon needs more open files than programs usually get; its engines
  // keep what it was given.
  if (const auto had = core::raise_open_files_limit()) {
    processes_.set_engine_open_files_limit(had);
    rlimit now{};
    ::getrlimit(RLIMIT_NOFILE, &now);
    log("daemon")->info("open files: limit {} (engines get {})", now.rlim_cur, had->rlim_cur);
  }
  // New engines only while the node's health takes them (Healthy, WARN).
  launch_.set_admission_check([this] { return health_.launch_refusal(); });
  launch_.set_latency_observer(
      [this](std::chrono::microseconds latency) { metrics_.observe_launch_latency(latency); });
  metrics_.set_event_bus(&bus_);
  registry_.set_listener_queue_capacity(config_.event_queue_capacity);
  registry_.set_call_timeout(config_.plugin_call_timeout);
  connect_events();
}

void EcmDaemon::connect_events() {
  engines_.add_status_observer([this](core::EngineStatus from, const core::EngineConn& e) {
    auto event = core::engine_event(sdk::EventKind::kEngineStateChanged, e);
    // A new engine is reported as Starting -> Starting: it entered the table.
    event.from = std::string(core::to_string(from));
    event.to = std::string(core::to_string(e.status));
    event.reason = !e.failure_reason.empty() ? e.failure_reason : e.stop_reason;
    event.pid = e.pid;
    bus_.publish(std::move(event));
  });
  launch_.set_event_sink([this](sdk::Event event) { bus_.publish(std::move(event)); });
  localization_.set_event_sink([this](sdk::Event event) { bus_.publish(std::move(event)); });
  log_rotation_.set_rotation_observer([this](const core::EngineConn& e, const std::string& stream) {
    auto event = core::engine_event(sdk::EventKind::kEngineLogRotated, e);
    event.message = stream;
    event.reason = "larger than " + std::to_string(config_.log_rotate_size) + " bytes";
    bus_.publish(std::move(event));
  });
  health_.set_health_observer(
      [this](core::NodeHealth from, core::NodeHealth to, const std::string& reason) {
        sdk::Event event;
        event.kind = sdk::EventKind::kEcmHealthChanged;
        event.from = std::string(core::to_string(from));
        event.to = std::string(core::to_string(to));
        event.reason = reason;
        bus_.publish(std::move(event));
      });
}

EcmDaemon::~EcmDaemon() {
  shutdown();
}

void EcmDaemon::start() {
  // Before anything starts: a TLS certificate, key or CA that cannot be used refuses the start.
  const ThriftServing main_serving = main_port_serving(config_);
  std::filesystem::create_directories(config_.state_dir);
  std::filesystem::create_directories(config_.work_root);
  // Before anything can add an engine: every record is written to the store before it is seen.
  store_.emplace(config_.state_dir / "ecm.db");  // refuses a damaged or too new file
  cache_.open();
  launch_.set_localization(&localization_);
  engines_.set_store(&*store_);
  try {
    for (const auto& name : config_.enabled_plugins)
      registry_.load(name);
  } catch (...) {
    bus_.stop();
    throw;
  }
  {
    // After the plugins load, so listener plugins hear it too.
    sdk::Event starting;
    starting.kind = sdk::EventKind::kEcmStarting;
    starting.message = "pid " + std::to_string(::getpid());
    bus_.publish(std::move(starting));
  }

  // Before anything is recovered: the RM hears of the engines that ended while the ECM was away.
  if (!config_.rm_host.empty()) make_register_service();
  // Before the event loop runs and before anything serves: the table is whole when first seen.
  EngineConnRecoveryService(*store_, engines_, launch_, cache_, boot_id_).recover();

  guard_.emplace(io_.get_executor());
  for (unsigned i = 0; i < config_.io_threads; ++i) {
    io_threads_.emplace_back([this] { io_.run(); });
  }
  cleanup_.start();
  log_rotation_.start();
  if (config_.watch_plugins) {
    plugin_watcher_.emplace(
        config_.plugin_dir, config_.watch_debounce, io_,
        [this](const std::string& name) {
          auto info = registry_.find(name);
          return info && info->loaded;
        },
        [this](const std::string& name) { plugins_.reload(name); });
    plugin_watcher_->start();
  }
  health_.start();  // after the clean-up's first disk measure, which it reports

  started_ = true;
  // Engines call back on their own port, so the RM-facing one can be secured on its own.
  callback_server_ =
      serve_thrift(std::make_shared<at::TSingletonProcessorFactory>(
                       std::make_shared<ecm::thrift::EngineConnCallbackServiceProcessor>(
                           std::make_shared<EngineCallbackHandler>(callbacks_))),
                   ThriftServing{nullptr, thrift_limits(config_)}, config_.callback_host,
                   callback_port(), callback_thread_);
  launch_.set_callback_address(config_.callback_host + ":" + std::to_string(callback_server_.port));
  write_file_atomically(config_.state_dir / "callback.port",
                        std::to_string(callback_server_.port) + "\n");
  // A processor per connection: each holds whether its connection gave the token.
  main_server_ =
      serve_thrift(std::make_shared<AuthenticatingProcessorFactory>(
                       std::make_shared<EcmServiceHandler>(
                           EcmServices{launch_, engines_, kill_, resources_, &cleanup_, &health_,
                                       &metrics_, &plugins_, &cache_},
                           config_.log_max_read_lines),
                       config_.token),
                   main_serving, config_.listen_host, config_.listen_port, server_thread_);
  port_ = main_server_.port;
  log("daemon")->info("capacity: {}; protected: {}", core::describe(config_.capacity),
                      core::describe(config_.protected_));
  if (config_.metrics_enabled) {
    metrics_http_.emplace(MetricsHttpHandlers{
        [this] { return prometheus_text(metrics_.snapshot(), health_.report()); },
        [this] {
          auto r = health_.report();
          return std::pair{core::takes_new_engines(r.health), std::string(to_string(r.health))};
        }});
    std::uint16_t metrics_port = 0;
    try {
      metrics_port = metrics_http_->start(config_.metrics_host, config_.metrics_port);
    } catch (...) {
      shutdown();
      throw;
    }
    write_metrics_address_file(metrics_port);
    log("daemon")->info("metrics on http://{}:{}/metrics", config_.metrics_host, metrics_port);
  }
  write_address_file();
  health_.set_status(core::EcmStatus::kRunning);
  log("daemon")->info("ECM serving on {}:{} ({} plugin(s), work root {})", config_.listen_host,
                      port_, config_.enabled_plugins.size(), config_.work_root.string());
  if (rm_) rm_->start(advertise_address());
}

void EcmDaemon::make_register_service() {
  // Thrift prints every failed socket call to stderr itself; while the RM is away its client
  // retries with backoff and logs once per change of state, so socket lines go to debug.
  at::GlobalOutput.setOutputFunction([](const char* message) {
    if (std::strstr(message, "TSocket::") != nullptr) {
      log("thrift")->debug("{}", message);
    } else {
      log("thrift")->warn("{}", message);
    }
  });
  RegisterSettings s;
  s.rm_host = config_.rm_host;
  s.rm_port = config_.rm_port;
  s.report_interval = config_.report_interval;
  s.labels = config_.rm_labels;
  s.ecm_id = config_.ecm_id.empty()
                 ? ECMRegisterService::load_or_create_ecm_id(config_.state_dir / "ecm.id")
                 : config_.ecm_id;
  rm_.emplace(
      std::move(s), engines_, [this] { return to_thrift(health_.report()); },
      [this] {
        auto m = to_thrift(metrics_.snapshot());
        if (m.__isset.resources && !m.resources.__isset.disk) {
          m.resources.__set_disk(to_thrift(cleanup_.status()));
        }
        return m;
      });
}

std::string EcmDaemon::advertise_address() const {
  if (!config_.advertise_address.empty()) return config_.advertise_address;
  // A wildcard listen address tells the RM nothing: name the machine instead.
  if (config_.listen_host == "0.0.0.0" || config_.listen_host == "::") {
    char name[256] = {};
    if (gethostname(name, sizeof name - 1) == 0)
      return std::string(name) + ":" + std::to_string(port_);
  }
  return config_.listen_host + ":" + std::to_string(port_);
}

EcmDaemon::ThriftServer EcmDaemon::serve_thrift(
    std::shared_ptr<apache::thrift::TProcessorFactory> processors, const ThriftServing& serving,
    const std::string& host, std::uint16_t port, std::thread& thread) {
  auto socket = serving.server_socket(host, port);
  auto server = std::make_shared<at::server::TThreadedServer>(
      std::move(processors), socket, serving.transports(), serving.protocols());
  std::promise<int> listening;
  auto bound = listening.get_future();
  server->setServerEventHandler(std::make_shared<ListenSignal>(socket, std::move(listening)));
  std::promise<std::string> failed;
  auto failure = failed.get_future();
  thread = std::thread([server, f = std::move(failed)]() mutable {
    try {
      server->serve();
      f.set_value("");
    } catch (const std::exception& e) {
      f.set_value(e.what());
    }
  });
  // Either the server listens, or serve() returned with the reason (address in use...).
  while (bound.wait_for(std::chrono::milliseconds(10)) != std::future_status::ready) {
    if (failure.wait_for(std::chrono::milliseconds(0)) == std::future_status::ready) {
      auto reason = failure.get();
      thread.join();
      shutdown();
      throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port) + ": " +
                               reason);
    }
  }
  return {server, static_cast<std::uint16_t>(bound.get())};
}

void EcmDaemon::write_address_file() const {
  write_file_atomically(config_.state_dir / "ecm.address",
                        config_.listen_host + ":" + std::to_string(port_) + "\n");
}

void EcmDaemon::write_metrics_address_file(std::uint16_t port) const {
  write_file_atomically(config_.state_dir / "metrics.address",
                        config_.metrics_host + ":" + std::to_string(port) + "\n");
}

std::uint16_t EcmDaemon::callback_port() const {
  if (config_.callback_port != 0) return config_.callback_port;
  // Any port, but the last run's when it is free: engines it launched and this run re-adopts
  // call back where their ECM_CALLBACK_ADDRESS says.
  std::ifstream in(config_.state_dir / "callback.port");
  unsigned last = 0;
  if (in >> last && last > 0 && last < 65536 &&
      can_bind(config_.callback_host, static_cast<std::uint16_t>(last))) {
    return static_cast<std::uint16_t>(last);
  }
  if (last > 0) {
    log("daemon")->warn(
        "callback port {} of the last run is taken: engines it launched cannot "
        "call back (set [server] callback_listen to a fixed port)",
        last);
  }
  return 0;
}

void EcmDaemon::shutdown() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  log("daemon")->info("shutting down");
  {
    sdk::Event stopping;
    stopping.kind = sdk::EventKind::kEcmStopping;
    stopping.reason = "shutdown";
    bus_.publish(std::move(stopping));
  }
  health_.set_status(core::EcmStatus::kShuttingDown);
  if (plugin_watcher_) plugin_watcher_->stop();
  launch_.refuse_new_launches();
  localization_.stop();  // fetches in flight end (their launches fail) instead of holding the exit
  // Disk jobs first: nothing is rotated or removed while engines are being stopped.
  log_rotation_.stop();
  cleanup_.stop();
  for (auto* s : {&main_server_, &callback_server_}) {
    if (s->server) s->server->stop();
  }
  if (server_thread_.joinable()) server_thread_.join();
  if (callback_thread_.joinable()) callback_thread_.join();
  if (metrics_http_) metrics_http_->stop();
  if (config_.stop_on_shutdown) {
    // Each engine's grace, plus a margin for the SIGKILL to land and the exit to be reaped.
    auto left = kill_.stop_all("ECM shutdown", std::chrono::seconds(5));
    if (left > 0) log("daemon")->error("{} engine(s) still running at exit", left);
  }
  // After the engines: the last heartbeat carries how they ended, then the ECM unregisters. (With
  // stop_on_shutdown off the RM is told nothing ended, which is true.)
  if (rm_) rm_->stop();
  health_.stop();
  guard_.reset();
  io_.stop();
  for (auto& t : io_threads_)
    t.join();
  // Last: listeners hear every engine's end and the ECM stopping, then are closed.
  bus_.stop();
  std::error_code ec;
  std::filesystem::remove(config_.state_dir / "ecm.address", ec);
  std::filesystem::remove(config_.state_dir / "metrics.address", ec);
}

ConfigChanges EcmDaemon::reload(const EcmConfig& next) {
  auto changes = classify_config_changes(config_, next);
  auto logger = log("daemon");
  if (changes.empty()) {
    logger->info("config reload: {} has no change", next.source.string());
    return changes;
  }
  // Every live key is handed over; a service given a value it already has changes nothing.
  launch_.set_launch_defaults(next.stop_grace, next.launch_timeout, next.engine_default);
  cleanup_.update_policy(next.retention, next.cleanup_interval, next.disk_high_watermark,
                         next.disk_low_watermark);
  health_.update_settings(health_settings(next));
  adopt_live_keys(config_, next);  // stop_on_shutdown: read from config_ by shutdown()
  // The lines below at the more verbose of the two levels: a level made quieter is set after
  // them, a louder one before.
  const bool louder = spdlog::level::from_str(config_.log_level) < logger->level();
  if (louder) set_log_level(config_.log_level);
  if (!changes.live.empty()) {
    logger->info("config reload: applied {}", join_keys(changes.live));
  }
  if (!changes.restart.empty()) {
    logger->warn("config reload: needs a restart: {} (changed in {}; running with the old values)",
                 join_keys(changes.restart), next.source.string());
  }
  if (!louder) set_log_level(config_.log_level);
  return changes;
}

}  // namespace ecm::host
