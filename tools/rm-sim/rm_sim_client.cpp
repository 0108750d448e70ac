#include "rm_sim_client.hpp"

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>

#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/protocol/TMultiplexedProtocol.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TSocket.h>
#include <boost/json.hpp>

#include "RmSimAdmin.h"
#include "rm_sim_view.hpp"

namespace ecm::rmsim {
namespace {

namespace api = ::ecm::thrift;
namespace at = ::apache::thrift;
namespace json = boost::json;

class AdminClient {
 public:
  explicit AdminClient(const std::string& rm) {
    auto colon = rm.rfind(':');
    if (colon == std::string::npos) throw std::runtime_error("'" + rm + "' is not HOST:PORT");
    auto socket = std::make_shared<at::transport::TSocket>(rm.substr(0, colon),
                                                           std::stoi(rm.substr(colon + 1)));
    socket->setConnTimeout(5000);
    socket->setRecvTimeout(600'000);  // a launch of many engines takes its time
    transport_ = std::make_shared<at::transport::TBufferedTransport>(socket);
    transport_->open();
    auto protocol = std::make_shared<at::protocol::TMultiplexedProtocol>(
        std::make_shared<at::protocol::TBinaryProtocol>(transport_), "RmSimAdmin");
    client_ = std::make_unique<RmSimAdminClient>(protocol);
  }
  ~AdminClient() {
    try {
      transport_->close();
    } catch (...) {  // NOLINT(bugprone-empty-catch): closing a connection we are done with
    }
  }
  RmSimAdminClient* operator->() { return client_.get(); }

 private:
  std::shared_ptr<at::transport::TTransport> transport_;
  std::unique_ptr<RmSimAdminClient> client_;
};

json::object amount(const api::ResourceAmount& a) {
  return {{"memory_bytes", a.memory_bytes}, {"cores", a.cores}, {"instances", a.instances}};
}

json::object to_json(const SimEcm& e) {
  json::object o;
  o["ecm_id"] = e.ecm_id;
  o["address"] = e.address;
  o["incarnation_id"] = e.incarnation_id;
  o["state"] = e.state;
  o["last_heartbeat_ms"] = e.last_heartbeat_ms;
  o["report_interval_ms"] = e.report_interval_ms;
  o["heartbeats"] = e.heartbeats;
  o["acked_seq"] = e.acked_seq;
  o["health"] = e.health.__isset.health ? health_name(e.health.health) : "";
  json::array reasons;
  for (const auto& r : e.health.reasons)
    reasons.emplace_back(r);
  o["reasons"] = std::move(reasons);
  json::object labels;
  for (const auto& [k, v] : e.labels)
    labels[k] = v;
  o["labels"] = std::move(labels);
  json::object engines;
  for (const auto& [id, s] : e.engines)
    engines[id] = status_name(s);
  o["engines"] = std::move(engines);
  const auto& m = e.metrics;
  json::object metrics;
  metrics["max"] = amount(m.resources.max);
  metrics["locked"] = amount(m.resources.locked);
  metrics["used"] = amount(m.resources.used);
  metrics["left"] = amount(m.resources.left);
  json::object by_status;
  for (const auto& [k, v] : m.engines_by_status)
    by_status[k] = v;
  metrics["engines_by_status"] = std::move(by_status);
  metrics["launches_started"] = m.launches_started;
  metrics["launches_succeeded"] = m.launches_succeeded;
  metrics["launches_failed"] = m.launches_failed;
  json::object stops;
  for (const auto& [k, v] : m.stops_by_reason)
    stops[k] = v;
  metrics["stops_by_reason"] = std::move(stops);
  o["metrics"] = std::move(metrics);
  return o;
}

template <typename F>
int guarded(const std::string& rm, F&& f) {
  try {
    AdminClient client(rm);
    return f(client);
  } catch (const api::EcmError& e) {
    std::cerr << "rm-sim: " << e.message << "\n";
  } catch (const std::exception& e) {
    std::cerr << "rm-sim: " << rm << ": " << e.what() << "\n";
  }
  return 1;
}

}  // namespace

int list_ecms(const std::string& rm, bool as_json) {
  return guarded(rm, [&](AdminClient& c) {
    std::vector<SimEcm> ecms;
    c->listEcms(ecms);
    if (as_json) {
      json::array a;
      for (const auto& e : ecms)
        a.push_back(to_json(e));
      std::cout << json::serialize(a) << "\n";
      return 0;
    }
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    std::cout << ecm_table(ecms, now);
    return 0;
  });
}

int list_changes(const std::string& rm, bool as_json) {
  return guarded(rm, [&](AdminClient& c) {
    std::vector<SimChange> changes;
    c->listChanges(changes);
    json::array a;
    for (const auto& ch : changes) {
      if (as_json) {
        a.push_back(json::object{{"ecm_id", ch.ecm_id},
                                 {"incarnation_id", ch.incarnation_id},
                                 {"seq", ch.seq},
                                 {"engine_id", ch.engine_id},
                                 {"from", status_name(ch.from_status)},
                                 {"to", status_name(ch.to_status)},
                                 {"at_ms", ch.at_ms}});
      } else {
        std::printf("%s %s #%lld %s %s -> %s\n", ch.ecm_id.c_str(), ch.incarnation_id.c_str(),
                    static_cast<long long>(ch.seq), ch.engine_id.c_str(),
                    status_name(ch.from_status).c_str(), status_name(ch.to_status).c_str());
      }
    }
    if (as_json) std::cout << json::serialize(a) << "\n";
    return 0;
  });
}

int launch(const std::string& rm, const api::LaunchRequest& request, int count, bool as_json) {
  return guarded(rm, [&](AdminClient& c) {
    std::vector<Placement> placed;
    c->launch(placed, request, count);
    int failed = 0;
    json::array a;
    for (const auto& p : placed) {
      if (!p.error.empty()) ++failed;
      if (as_json) {
        a.push_back(json::object{{"ecm_id", p.ecm_id},
                                 {"address", p.address},
                                 {"engine_id", p.engine.id},
                                 {"error", p.error}});
      } else if (p.error.empty()) {
        std::printf("%s -> %s (%s)\n", p.engine.id.c_str(), p.ecm_id.c_str(), p.address.c_str());
      } else {
        std::printf("FAILED %s: %s\n", p.ecm_id.empty() ? "-" : p.ecm_id.c_str(), p.error.c_str());
      }
    }
    if (as_json) std::cout << json::serialize(a) << "\n";
    return failed == 0 ? 0 : 1;
  });
}

}  // namespace ecm::rmsim
