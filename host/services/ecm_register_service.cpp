#include "services/ecm_register_service.hpp"

#include <unistd.h>

#include <fstream>
#include <random>

#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TSocket.h>

#include "ecm/core/names.hpp"
#include "thrift/thrift_convert.hpp"
#include "util/log.hpp"

namespace ecm::host {
namespace {

namespace api = ::ecm::thrift;

std::string random_hex(std::size_t bytes) {
  std::random_device rd;
  std::string out;
  static constexpr char kHex[] = "0123456789abcdef";
  for (std::size_t i = 0; i < bytes; ++i) {
    auto b = static_cast<unsigned>(rd()) & 0xff;
    out += kHex[b >> 4];
    out += kHex[b & 0xf];
  }
  return out;
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             core::Clock::now().time_since_epoch())
      .count();
}

}  // namespace

// One Thrift connection to the RM: TSocket (connect/recv/send timeouts) + TBufferedTransport +
// TBinaryProtocol, as ecmctl talks to the ECM. Opened on first use, dropped after any failure.
class ECMRegisterService::Connection {
 public:
  Connection(std::string host, std::uint16_t port, std::chrono::milliseconds timeout)
      : host_(std::move(host)), port_(port), timeout_(static_cast<int>(timeout.count())) {}
  ~Connection() { close(); }

  api::ResourceManagerServiceClient& client() {
    if (!client_) {
      auto socket = std::make_shared<apache::thrift::transport::TSocket>(host_, port_);
      socket->setConnTimeout(timeout_);
      socket->setRecvTimeout(timeout_);
      socket->setSendTimeout(timeout_);
      transport_ = std::make_shared<apache::thrift::transport::TBufferedTransport>(socket);
      transport_->open();
      client_ = std::make_unique<api::ResourceManagerServiceClient>(
          std::make_shared<apache::thrift::protocol::TBinaryProtocol>(transport_));
    }
    return *client_;
  }
  void close() {
    client_.reset();
    if (transport_) {
      try {
        transport_->close();
      } catch (...) {  // NOLINT(bugprone-empty-catch): the connection is being thrown away
      }
      transport_.reset();
    }
  }

 private:
  std::string host_;
  std::uint16_t port_;
  int timeout_;
  std::shared_ptr<apache::thrift::transport::TTransport> transport_;
  std::unique_ptr<api::ResourceManagerServiceClient> client_;
};

ECMRegisterService::ECMRegisterService(RegisterSettings settings, EngineConnListService& engines,
                                       HealthProvider health, MetricsProvider metrics)
    : s_(std::move(settings)),
      health_(std::move(health)),
      metrics_(std::move(metrics)),
      incarnation_(random_hex(8)),
      conn_(std::make_unique<Connection>(s_.rm_host, s_.rm_port, s_.rpc_timeout)),
      interval_(s_.report_interval) {
  engines.add_status_observer([this](core::EngineStatus from, const core::EngineConn& record) {
    on_status_change(from, record);
  });
}

ECMRegisterService::~ECMRegisterService() {
  stop();
}

std::string ECMRegisterService::load_or_create_ecm_id(const std::filesystem::path& file) {
  {
    std::ifstream in(file);
    std::string id;
    if (in && std::getline(in, id) && core::is_safe_name(id)) return id;
  }
  auto id = "ecm-" + random_hex(8);
  auto tmp = file;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << id << "\n";
    if (!out.flush()) throw std::runtime_error("cannot write " + tmp.string());
  }
  std::filesystem::rename(tmp, file);
  return id;
}

// Called under the engine table's lock: only a copy into the outbox and a wake-up.
void ECMRegisterService::on_status_change(core::EngineStatus from, const core::EngineConn& record) {
  std::lock_guard lock(mu_);
  outbox_.push_back(Change{++next_seq_, from, record, now_ms()});
  if (outbox_.size() > s_.max_outbox) {
    // Bounded on purpose (see RegisterSettings::max_outbox): the RM misses this transition.
    ++dropped_;
    if (dropped_ == 1 || dropped_ % 1000 == 0) {
      log("rm")->error(
          "[{}] RM outbox full ({} changes): dropped the oldest change (seq {}); "
          "{} dropped so far",
          outbox_.front().record.id, s_.max_outbox, outbox_.front().seq, dropped_);
    }
    outbox_.pop_front();
  }
  wake_ = true;
  cv_.notify_one();
}

std::uint64_t ECMRegisterService::dropped_changes() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

void ECMRegisterService::start(std::optional<std::string> advertise_address) {
  if (started_) return;
  if (advertise_address) s_.advertise_address = *advertise_address;
  started_ = true;
  log("rm")->info("reporting to RM {}:{} as {} (incarnation {}, every {}ms)", s_.rm_host,
                  s_.rm_port, s_.ecm_id, incarnation_, s_.report_interval.count());
  thread_ = std::thread([this] { run(); });
}

void ECMRegisterService::stop() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
  // The thread is gone: the connection is ours now.
  if (registered_) {
    bool ignored = false;
    send_heartbeat(ignored);  // best effort: hand over what is pending
    try_unregister();
  }
  conn_->close();
}

void ECMRegisterService::set_reachable(bool reachable, const std::string& why) {
  if (reachable_ == reachable) return;
  reachable_ = reachable;
  if (reachable) {
    log("rm")->info("registered with RM {}:{}", s_.rm_host, s_.rm_port);
  } else {
    log("rm")->warn("RM {}:{} unreachable ({}); serving anyway, retrying in the background",
                    s_.rm_host, s_.rm_port, why);
  }
}

void ECMRegisterService::run() {
  auto backoff = s_.min_backoff;
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (!registered_) {
      lock.unlock();
      registered_ = try_register();
      lock.lock();
      if (!registered_) {
        cv_.wait_for(lock, backoff, [&] { return stopping_; });
        backoff = std::min(backoff * 2, interval_);
        continue;
      }
      backoff = s_.min_backoff;
    }
    lock.unlock();
    bool register_again = false;
    const bool ok = send_heartbeat(register_again);
    lock.lock();
    if (!ok || register_again) {
      registered_ = false;  // register at once; back off only if that fails
      continue;
    }
    // wake_: a change came during the beat, or more were pending than one beat carries.
    if (!wake_) cv_.wait_for(lock, interval_, [&] { return stopping_ || wake_; });
    wake_ = false;
  }
}

api::EcmInstance ECMRegisterService::instance() const {
  api::EcmInstance i;
  i.__set_ecm_id(s_.ecm_id);
  i.__set_address(s_.advertise_address);
  i.__set_labels(s_.labels);
  i.__set_incarnation_id(incarnation_);
  i.__set_report_interval_ms(s_.report_interval.count());
  if (!s_.version.empty()) i.__set_version(s_.version);
  try {
    auto m = metrics_();
    if (m.__isset.resources) i.__set_resources(m.resources);
  } catch (const std::exception& e) {
    log("rm")->error("metrics for registration failed: {}", e.what());
  }
  return i;
}

bool ECMRegisterService::try_register() {
  api::RegisterAck ack;
  try {
    conn_->client().registerECM(ack, instance());
  } catch (const api::EcmError& e) {
    conn_->close();
    set_reachable(false, "refused: " + e.message);
    return false;
  } catch (const std::exception& e) {
    conn_->close();
    set_reachable(false, e.what());
    return false;
  }
  set_reachable(true, "");
  std::lock_guard lock(mu_);
  if (ack.report_interval_ms > 0) interval_ = std::chrono::milliseconds(ack.report_interval_ms);
  if (ack.acked_seq < acked_seq_) {
    // The RM lost what it had acknowledged (restarted without its journal): those changes are
    // gone from the outbox, it learns the engines' state from the metrics only.
    log("rm")->warn("RM acknowledges seq {} but had acknowledged {}: it lost changes",
                    ack.acked_seq, acked_seq_);
  }
  acked_seq_ = std::max(acked_seq_, ack.acked_seq);
  drop_acked(acked_seq_);
  wake_ = true;  // a beat right after registering hands over what is pending
  return true;
}

bool ECMRegisterService::send_heartbeat(bool& register_again) {
  std::vector<Change> pending;
  {
    std::lock_guard lock(mu_);
    for (const auto& c : outbox_) {
      if (pending.size() >= s_.max_changes_per_beat) break;
      pending.push_back(c);
    }
    wake_ = outbox_.size() > pending.size();  // the rest follow in the next beat, at once
  }
  api::EcmHeartbeat beat;
  beat.__set_ecm_id(s_.ecm_id);
  beat.__set_incarnation_id(incarnation_);
  try {
    beat.__set_health(health_());
  } catch (const std::exception& e) {
    log("rm")->error("health report for the heartbeat failed: {}", e.what());
  }
  try {
    beat.__set_metrics(metrics_());
  } catch (const std::exception& e) {
    log("rm")->error("metrics for the heartbeat failed: {}", e.what());
  }
  std::vector<api::EngineChange> changes;
  changes.reserve(pending.size());
  for (const auto& c : pending) {
    api::EngineChange ch;
    ch.__set_seq(c.seq);
    ch.__set_engine(to_thrift(c.record));
    ch.__set_from_status(to_thrift(c.from));
    ch.__set_at_ms(c.at_ms);
    changes.push_back(std::move(ch));
  }
  beat.__set_changes(std::move(changes));
  api::HeartbeatAck ack;
  try {
    conn_->client().heartbeat(ack, beat);
  } catch (const api::EcmError& e) {
    conn_->close();
    set_reachable(false, "heartbeat refused: " + e.message);
    return false;
  } catch (const std::exception& e) {
    conn_->close();
    set_reachable(false, e.what());
    return false;
  }
  if (ack.register_again) {
    log("rm")->info("RM does not know this ECM any more: registering again");
    register_again = true;
    return true;
  }
  std::lock_guard lock(mu_);
  acked_seq_ = std::max(acked_seq_, ack.acked_seq);
  drop_acked(acked_seq_);
  return true;
}

void ECMRegisterService::drop_acked(std::int64_t acked_seq) {
  while (!outbox_.empty() && outbox_.front().seq <= acked_seq)
    outbox_.pop_front();
}

void ECMRegisterService::try_unregister() {
  try {
    conn_->client().unregisterECM(s_.ecm_id, incarnation_);
    log("rm")->info("unregistered from RM {}:{}", s_.rm_host, s_.rm_port);
  } catch (const std::exception& e) {
    conn_->close();
    log("rm")->warn("unregister from RM {}:{} failed: {}", s_.rm_host, s_.rm_port, e.what());
  }
}

}  // namespace ecm::host
