#include "rm_sim_server.hpp"

#include <signal.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include <thrift/processor/TMultiplexedProcessor.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/server/TThreadedServer.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TServerSocket.h>
#include <thrift/transport/TSocket.h>

#include "EngineConnManagerService.h"
#include "ResourceManagerService.h"
#include "RmSimAdmin.h"
#include "ecm/thrift/listen_signal.hpp"
#include "rm_sim_journal.hpp"
#include "rm_sim_view.hpp"

namespace ecm::rmsim {
namespace {

namespace api = ::ecm::thrift;
namespace at = ::apache::thrift;
using SteadyClock = std::chrono::steady_clock;

constexpr std::int64_t kDefaultIntervalMs = 10'000;  // an ECM that does not say its own

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void say(const std::string& line) {
  std::cout << line << std::endl;  // flushed: tests and users read it live
}

api::EcmError error(api::ErrorCode::type code, const std::string& message) {
  api::EcmError e;
  e.__set_code(code);
  e.__set_message(message);
  return e;
}

// The state of the RM: the ECMs, the changes accepted, the acknowledged sequences. One lock;
// a heartbeat's changes are journaled (fsync) under it, before they are acknowledged.
class RmSim {
 public:
  explicit RmSim(std::optional<std::filesystem::path> state_file) {
    if (!state_file) return;
    journal_.emplace(*state_file);
    for (const auto& c : journal_->loaded())
      apply(c);
    if (!changes_.empty()) {
      say("rm-sim: reloaded " + std::to_string(changes_.size()) + " change(s) from " +
          state_file->string());
    }
  }

  api::RegisterAck register_ecm(const api::EcmInstance& i) {
    if (i.ecm_id.empty() || i.incarnation_id.empty()) {
      throw error(api::ErrorCode::INVALID_REQUEST, "ecm_id and incarnation_id are required");
    }
    std::lock_guard lock(mu_);
    auto& e = ecms_[i.ecm_id];
    const bool known = e.instance.incarnation_id == i.incarnation_id;
    e.instance = i;
    e.state = "alive";
    e.last_beat = SteadyClock::now();
    e.last_beat_ms = now_ms();
    e.interval_ms = i.report_interval_ms > 0 ? i.report_interval_ms : kDefaultIntervalMs;
    if (i.__isset.resources) e.metrics.__set_resources(i.resources);
    const auto acked = acked_[{i.ecm_id, i.incarnation_id}];
    say("rm-sim: " + std::string(known ? "re-registered " : "registered ") + i.ecm_id + " at " +
        i.address + " (incarnation " + i.incarnation_id + ", acked seq " + std::to_string(acked) +
        ")");
    api::RegisterAck ack;
    ack.__set_acked_seq(acked);
    ack.__set_report_interval_ms(0);  // the ECM's own
    return ack;
  }

  api::HeartbeatAck heartbeat(const api::EcmHeartbeat& b) {
    std::lock_guard lock(mu_);
    api::HeartbeatAck ack;
    auto it = ecms_.find(b.ecm_id);
    if (it == ecms_.end() || it->second.instance.incarnation_id != b.incarnation_id ||
        it->second.state == "unregistered") {
      ack.__set_register_again(true);  // restarted without it, or an incarnation it never saw
      return ack;
    }
    auto& e = it->second;
    auto& acked = acked_[{b.ecm_id, b.incarnation_id}];
    // Only what follows the acknowledged sequence is new: the rest was re-sent after a lost ack.
    std::vector<SimChange> fresh;
    auto last = acked;
    for (const auto& c : b.changes) {
      if (c.seq <= last) continue;
      SimChange s;
      s.__set_ecm_id(b.ecm_id);
      s.__set_incarnation_id(b.incarnation_id);
      s.__set_seq(c.seq);
      s.__set_engine_id(c.engine.id);
      s.__set_from_status(c.from_status);
      s.__set_to_status(c.engine.status);
      s.__set_at_ms(c.at_ms);
      fresh.push_back(std::move(s));
      last = c.seq;
    }
    if (journal_) {
      try {
        journal_->append(fresh);
      } catch (const std::exception& ex) {
        throw error(api::ErrorCode::INTERNAL, ex.what());  // not acknowledged: re-sent later
      }
    }
    for (const auto& s : fresh)
      apply(s);
    if (e.state == "lost") say("rm-sim: " + b.ecm_id + " is back");
    e.state = "alive";
    e.last_beat = SteadyClock::now();
    e.last_beat_ms = now_ms();
    ++e.heartbeats;
    if (b.__isset.health) e.health = b.health;
    if (b.__isset.metrics) e.metrics = b.metrics;
    ack.__set_acked_seq(acked);
    return ack;
  }

  void unregister_ecm(const std::string& ecm_id, const std::string& incarnation_id) {
    std::lock_guard lock(mu_);
    auto it = ecms_.find(ecm_id);
    if (it == ecms_.end() || it->second.instance.incarnation_id != incarnation_id) return;
    it->second.state = "unregistered";
    say("rm-sim: " + ecm_id + " unregistered");
  }

  // Marks ECMs lost after two of their intervals without a heartbeat.
  void check_lost() {
    std::lock_guard lock(mu_);
    const auto now = SteadyClock::now();
    for (auto& [id, e] : ecms_) {
      if (e.state == "alive" && now - e.last_beat > std::chrono::milliseconds(2 * e.interval_ms)) {
        e.state = "lost";
        say("rm-sim: " + id + " lost (no heartbeat for " + std::to_string(2 * e.interval_ms) +
            "ms)");
      }
    }
  }

  std::vector<SimEcm> ecms() const {
    std::lock_guard lock(mu_);
    std::vector<SimEcm> out;
    for (const auto& [id, e] : ecms_) {
      SimEcm s;
      s.__set_ecm_id(id);
      s.__set_address(e.instance.address);
      s.__set_incarnation_id(e.instance.incarnation_id);
      s.__set_state(e.state);
      s.__set_last_heartbeat_ms(e.last_beat_ms);
      s.__set_report_interval_ms(e.interval_ms);
      s.__set_health(e.health);
      s.__set_metrics(e.metrics);
      auto acked = acked_.find({id, e.instance.incarnation_id});
      s.__set_acked_seq(acked == acked_.end() ? 0 : acked->second);
      auto engines = engines_.find(id);
      s.__set_engines(engines == engines_.end() ? decltype(s.engines){} : engines->second);
      s.__set_labels(e.instance.labels);
      s.__set_heartbeats(e.heartbeats);
      out.push_back(std::move(s));
    }
    return out;
  }

  std::vector<SimChange> changes() const {
    std::lock_guard lock(mu_);
    return changes_;
  }

 private:
  struct Ecm {
    api::EcmInstance instance;
    std::string state;
    SteadyClock::time_point last_beat;
    std::int64_t last_beat_ms = 0;
    std::int64_t interval_ms = kDefaultIntervalMs;
    api::HealthReport health;
    api::Metrics metrics;
    std::int64_t heartbeats = 0;
  };

  // Under mu_ (or in the constructor).
  void apply(const SimChange& c) {
    auto& acked = acked_[{c.ecm_id, c.incarnation_id}];
    acked = std::max(acked, c.seq);
    engines_[c.ecm_id][c.engine_id] = c.to_status;
    changes_.push_back(c);
  }

  mutable std::mutex mu_;
  std::optional<Journal> journal_;
  std::map<std::string, Ecm> ecms_;
  std::map<std::pair<std::string, std::string>, std::int64_t> acked_;
  std::map<std::string, std::map<std::string, api::EngineStatus::type>> engines_;
  std::vector<SimChange> changes_;
};

class RmHandler : public api::ResourceManagerServiceIf {
 public:
  explicit RmHandler(RmSim& sim) : sim_(sim) {}
  void registerECM(api::RegisterAck& out, const api::EcmInstance& i) override {
    out = sim_.register_ecm(i);
  }
  void heartbeat(api::HeartbeatAck& out, const api::EcmHeartbeat& b) override {
    out = sim_.heartbeat(b);
  }
  void unregisterECM(const std::string& ecm_id, const std::string& incarnation_id) override {
    sim_.unregister_ecm(ecm_id, incarnation_id);
  }

 private:
  RmSim& sim_;
};

// A short-lived connection to one ECM's EngineConnManagerService.
class EcmConnection {
 public:
  explicit EcmConnection(const std::string& address) {
    auto colon = address.rfind(':');
    if (colon == std::string::npos) throw std::runtime_error("bad address '" + address + "'");
    auto socket = std::make_shared<at::transport::TSocket>(address.substr(0, colon),
                                                           std::stoi(address.substr(colon + 1)));
    socket->setConnTimeout(2000);
    socket->setRecvTimeout(30'000);  // a launch may localize resources
    transport_ = std::make_shared<at::transport::TBufferedTransport>(socket);
    transport_->open();
    client_ = std::make_unique<api::EngineConnManagerServiceClient>(
        std::make_shared<at::protocol::TBinaryProtocol>(transport_));
  }
  ~EcmConnection() {
    try {
      transport_->close();
    } catch (...) {  // NOLINT(bugprone-empty-catch): closing a connection we are done with
    }
  }
  api::EngineConnManagerServiceClient* operator->() { return client_.get(); }

 private:
  std::shared_ptr<at::transport::TTransport> transport_;
  std::unique_ptr<api::EngineConnManagerServiceClient> client_;
};

using thrift_support::ListenSignal;

bool takes_engines(const SimEcm& e) {
  if (e.state != "alive") return false;
  if (!e.health.__isset.health) return true;  // no report yet: nothing against it
  return e.health.health == api::NodeHealth::HEALTHY || e.health.health == api::NodeHealth::WARN;
}

class AdminHandler : public RmSimAdminIf {
 public:
  explicit AdminHandler(RmSim& sim) : sim_(sim) {}
  void listEcms(std::vector<SimEcm>& out) override { out = sim_.ecms(); }
  void listChanges(std::vector<SimChange>& out) override { out = sim_.changes(); }

  // Each launch goes to the live ECM with the most left resources (instances, then memory),
  // asked right then with getResources: the heartbeats' numbers can be one interval old, and a
  // burst of launches must see its own effect.
  void launch(std::vector<Placement>& out, const api::LaunchRequest& request,
              int32_t count) override {
    if (count < 1 || count > 10'000) {
      throw error(api::ErrorCode::INVALID_REQUEST, "count must be 1..10000");
    }
    const std::string ticket_base = request.__isset.ticket_id && !request.ticket_id.empty()
                                        ? request.ticket_id
                                        : "rmsim-" + random_hex();
    for (int i = 0; i < count; ++i) {
      Placement p;
      auto chosen = pick();
      if (!chosen) {
        p.__set_error("no live ECM takes engines (or none has resources left)");
        out.push_back(std::move(p));
        continue;
      }
      p.__set_ecm_id(chosen->first);
      p.__set_address(chosen->second);
      auto r = request;
      r.__set_ticket_id(count == 1 ? ticket_base : ticket_base + "-" + std::to_string(i + 1));
      try {
        EcmConnection ecm(chosen->second);
        api::EngineConn engine;
        ecm->launchEngineConn(engine, r);
        p.__set_engine(engine);
      } catch (const api::EcmError& e) {
        p.__set_error(e.message);
      } catch (const std::exception& e) {
        p.__set_error(e.what());
      }
      out.push_back(std::move(p));
    }
  }

 private:
  static std::string random_hex() {
    std::random_device rd;
    char buf[17];
    std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
    return buf;
  }

  // (ecm_id, address) of the live ECM with the most left; nullopt when none has any.
  std::optional<std::pair<std::string, std::string>> pick() {
    std::optional<std::pair<std::string, std::string>> best;
    std::pair<std::int64_t, std::int64_t> best_left{0, 0};
    for (const auto& e : sim_.ecms()) {
      if (!takes_engines(e)) continue;
      api::NodeResources r;
      try {
        EcmConnection ecm(e.address);
        ecm->getResources(r);
      } catch (const std::exception& ex) {
        say("rm-sim: " + e.ecm_id + ": getResources failed: " + ex.what());
        continue;
      }
      std::pair<std::int64_t, std::int64_t> left{r.left.instances, r.left.memory_bytes};
      if (left.first <= 0) continue;
      if (!best || left > best_left) {
        best = {e.ecm_id, e.address};
        best_left = left;
      }
    }
    return best;
  }

  RmSim& sim_;
};

}  // namespace

int serve(const ServeOptions& o) {
  sigset_t wait_set;
  sigemptyset(&wait_set);
  sigaddset(&wait_set, SIGINT);
  sigaddset(&wait_set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &wait_set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::unique_ptr<RmSim> sim;
  try {
    sim = std::make_unique<RmSim>(o.state_file);
  } catch (const std::exception& e) {
    std::cerr << "rm-sim: " << e.what() << "\n";
    return 1;
  }
  auto processor = std::make_shared<at::TMultiplexedProcessor>();
  // Plain calls (the ECMs) reach the RM service; the admin commands name their service.
  processor->registerDefault(
      std::make_shared<api::ResourceManagerServiceProcessor>(std::make_shared<RmHandler>(*sim)));
  processor->registerProcessor(
      "RmSimAdmin", std::make_shared<RmSimAdminProcessor>(std::make_shared<AdminHandler>(*sim)));
  auto socket = std::make_shared<at::transport::TServerSocket>(o.host, o.port);
  at::server::TThreadedServer server(processor, socket,
                                     std::make_shared<at::transport::TBufferedTransportFactory>(),
                                     std::make_shared<at::protocol::TBinaryProtocolFactory>());
  // Either the server listens (preServe tells the port), or serve() throws the reason.
  std::promise<int> listening;
  auto bound = listening.get_future();
  server.setServerEventHandler(std::make_shared<ListenSignal>(socket, std::move(listening)));
  std::promise<std::string> failed;
  auto failure = failed.get_future();
  std::thread server_thread([&] {
    try {
      server.serve();
      failed.set_value("");
    } catch (const std::exception& e) {
      failed.set_value(e.what());
    }
  });
  while (bound.wait_for(std::chrono::milliseconds(10)) != std::future_status::ready) {
    if (failure.wait_for(std::chrono::milliseconds(0)) == std::future_status::ready) {
      server_thread.join();
      std::cerr << "rm-sim: cannot listen on " << o.host << ":" << o.port << ": " << failure.get()
                << "\n";
      return 1;
    }
  }
  const std::string address = o.host + ":" + std::to_string(bound.get());
  if (o.address_file) {
    auto tmp = *o.address_file;
    tmp += ".tmp";
    std::ofstream(tmp, std::ios::trunc) << address << "\n";
    std::filesystem::rename(tmp, *o.address_file);
  }
  say("rm-sim: serving on " + address);

  // Lost ECMs and the periodic table, on one thread.
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  std::thread watcher([&] {
    auto next_print = SteadyClock::now() + o.print_interval;
    std::unique_lock lock(mu);
    while (!cv.wait_for(lock, std::chrono::milliseconds(50), [&] { return stopping; })) {
      sim->check_lost();
      if (o.print_interval.count() > 0 && SteadyClock::now() >= next_print) {
        next_print += o.print_interval;
        std::cout << ecm_table(sim->ecms(), now_ms()) << std::flush;
      }
    }
  });
  int sig = 0;
  sigwait(&wait_set, &sig);
  say("rm-sim: signal " + std::to_string(sig) + ": stopping");
  {
    std::lock_guard lock(mu);
    stopping = true;
  }
  cv.notify_one();
  watcher.join();
  server.stop();
  server_thread.join();
  return 0;
}

}  // namespace ecm::rmsim
