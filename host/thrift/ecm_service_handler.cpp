#include "thrift/ecm_service_handler.hpp"

#include "thrift/rpc_guard.hpp"
#include "thrift/thrift_convert.hpp"

namespace ecm::host {
void EcmServiceHandler::launchEngineConn(ecm::thrift::EngineConn& out,
                                         const ecm::thrift::LaunchRequest& request) {
  rpc("launchEngineConn", [&] {
    if (request.launch_timeout_ms < 0) {
      throw core::EcmException(core::ErrorCode::kInvalidRequest, "launch_timeout_ms is negative");
    }
    LaunchOptions options{requested_resources(request),
                          std::chrono::milliseconds(request.launch_timeout_ms),
                          requested_resource_specs(request)};
    out = to_thrift(s_.launch.launch(to_core(request), options));
  });
}

void EcmServiceHandler::getEngineConn(ecm::thrift::EngineConn& out, const std::string& engine_id) {
  rpc("getEngineConn", [&] {
    auto e = s_.list.get(engine_id);
    if (!e) {
      throw core::EcmException(core::ErrorCode::kNotFound,
                               "no engine '" + engine_id.substr(0, 64) + "'");
    }
    out = to_thrift(*e);
  });
}

void EcmServiceHandler::listEngineConns(std::vector<ecm::thrift::EngineConn>& out,
                                        const ecm::thrift::EngineConnFilter& filter) {
  rpc("listEngineConns", [&] {
    const auto engines = s_.list.snapshot(to_core(filter));
    out.reserve(engines.size());
    for (const auto& e : engines)
      out.push_back(to_thrift(*e));
  });
}

void EcmServiceHandler::stopEngineConn(ecm::thrift::StopResult& out,
                                       const ecm::thrift::StopRequest& request) {
  rpc("stopEngineConn", [&] {
    if (request.engine_id.empty()) {
      throw core::EcmException(core::ErrorCode::kInvalidRequest, "engine_id is required");
    }
    out = to_thrift(s_.kill.stop(request.engine_id, request.force, "stopped by request"));
  });
}

void EcmServiceHandler::stopEngineConns(std::vector<ecm::thrift::StopResult>& out,
                                        const ecm::thrift::StopRequest& request) {
  rpc("stopEngineConns", [&] {
    std::optional<std::string> user, type;
    if (!request.user.empty()) user = request.user;
    if (!request.engine_type.empty()) type = request.engine_type;
    for (const auto& o : s_.kill.stop_matching(user, type, request.force, "stopped by request")) {
      out.push_back(to_thrift(o));
    }
  });
}

void EcmServiceHandler::getResources(ecm::thrift::NodeResources& out) {
  rpc("getResources", [&] {
    out = to_thrift(s_.resources.snapshot());
    if (s_.cleanup) out.__set_disk(to_thrift(s_.cleanup->status()));
  });
}

void EcmServiceHandler::getEngineLog(ecm::thrift::LogPage& out,
                                     const ecm::thrift::LogRequest& request) {
  rpc("getEngineLog", [&] {
    if (request.engine_id.empty()) {
      throw core::EcmException(core::ErrorCode::kInvalidRequest, "engine_id is required");
    }
    auto e = s_.list.get(request.engine_id);
    if (!e) {
      throw core::EcmException(core::ErrorCode::kNotFound,
                               "no engine '" + request.engine_id.substr(0, 64) + "'");
    }
    // A named caller reads only the logs of their own engines; nothing is read otherwise.
    if (request.__isset.caller) {
      if (request.caller.empty()) {
        throw core::EcmException(core::ErrorCode::kInvalidRequest, "caller is set but empty");
      }
      if (request.caller != e->user) {
        throw core::EcmException(core::ErrorCode::kPermissionDenied,
                                 "caller '" + request.caller.substr(0, 64) +
                                     "' may read only the logs of their own engines; engine '" +
                                     e->id + "' is not theirs");
      }
    }
    out = to_thrift(logs_.read(e->log_dir, to_core(request)));
  });
}

void EcmServiceHandler::getHealthReport(ecm::thrift::HealthReport& out) {
  rpc("getHealthReport", [&] {
    if (!s_.health) throw core::EcmException(core::ErrorCode::kInternal, "no health service");
    out = to_thrift(s_.health->report());
  });
}

void EcmServiceHandler::getMetrics(ecm::thrift::Metrics& out) {
  rpc("getMetrics", [&] {
    if (!s_.metrics) throw core::EcmException(core::ErrorCode::kInternal, "no metrics service");
    out = to_thrift(s_.metrics->snapshot());
    if (s_.cleanup) out.resources.__set_disk(to_thrift(s_.cleanup->status()));
  });
}

void EcmServiceHandler::setHealth(ecm::thrift::HealthReport& out,
                                  const ecm::thrift::SetHealthRequest& request) {
  rpc("setHealth", [&] {
    if (!s_.health) throw core::EcmException(core::ErrorCode::kInternal, "no health service");
    if (request.clear) {
      if (request.__isset.health) {
        throw core::EcmException(core::ErrorCode::kInvalidRequest,
                                 "give either health or clear = true, not both");
      }
      out = to_thrift(s_.health->clear_rm_health());
      return;
    }
    if (!request.__isset.health) {
      throw core::EcmException(core::ErrorCode::kInvalidRequest,
                               "health is required (or clear = true to clear it)");
    }
    auto health = to_core(request.health);
    if (!health) {
      throw core::EcmException(
          core::ErrorCode::kInvalidRequest,
          "unknown health " + std::to_string(static_cast<int>(request.health)));
    }
    out = to_thrift(s_.health->set_rm_health(*health, request.reason.substr(0, 512)));
  });
}

ECMPluginService& EcmServiceHandler::plugins() const {
  if (!s_.plugins) throw core::EcmException(core::ErrorCode::kInternal, "no plugin service");
  return *s_.plugins;
}

void EcmServiceHandler::listPlugins(std::vector<ecm::thrift::PluginInfo>& out) {
  rpc("listPlugins", [&] {
    out.clear();
    for (const auto& p : plugins().list())
      out.push_back(to_thrift(p));
  });
}

void EcmServiceHandler::reloadPlugin(ecm::thrift::PluginInfo& out, const std::string& name) {
  rpc("reloadPlugin", [&] { out = to_thrift(plugins().reload(name)); });
}

void EcmServiceHandler::loadPlugin(ecm::thrift::PluginInfo& out, const std::string& path) {
  rpc("loadPlugin", [&] { out = to_thrift(plugins().load(path)); });
}

void EcmServiceHandler::unloadPlugin(ecm::thrift::PluginInfo& out,
                                     const ecm::thrift::UnloadPluginRequest& request) {
  rpc("unloadPlugin", [&] {
    if (!request.__isset.name || request.name.empty()) {
      throw core::EcmException(core::ErrorCode::kInvalidRequest, "name is required");
    }
    out = to_thrift(plugins().unload(request.name, request.force));
  });
}

void EcmServiceHandler::listCache(ecm::thrift::CacheReport& out) {
  rpc("listCache", [&] {
    if (!s_.cache) throw core::EcmException(core::ErrorCode::kInternal, "no resource cache");
    out = ecm::thrift::CacheReport();
    std::vector<ecm::thrift::CacheEntry> entries;
    for (const auto& e : s_.cache->list()) {
      ecm::thrift::CacheEntry t;
      t.__set_sha256(e.key.sha256);
      t.__set_unpacked(e.key.unpacked);
      t.__set_owner(e.key.owner);
      t.__set_bytes(static_cast<std::int64_t>(e.bytes));
      t.__set_last_used_ms(
          std::chrono::duration_cast<std::chrono::milliseconds>(e.last_used.time_since_epoch())
              .count());
      t.__set_in_use(e.holders);
      t.__set_path(e.content.string());
      entries.push_back(std::move(t));
    }
    out.__set_entries(std::move(entries));
    out.__set_bytes(static_cast<std::int64_t>(s_.cache->bytes()));
    out.__set_max_bytes(static_cast<std::int64_t>(s_.cache->max_bytes()));
  });
}

void EcmServiceHandler::pruneCache(ecm::thrift::PruneCacheResult& out,
                                   const ecm::thrift::PruneCacheRequest& request) {
  rpc("pruneCache", [&] {
    if (!s_.cache) throw core::EcmException(core::ErrorCode::kInternal, "no resource cache");
    const auto r = s_.cache->prune(request.all);
    out = ecm::thrift::PruneCacheResult();
    out.__set_removed(r.removed);
    out.__set_bytes_freed(static_cast<std::int64_t>(r.bytes_freed));
    out.__set_kept_in_use(r.kept_in_use);
  });
}

void EcmServiceHandler::authenticate(const std::string& /*token*/) {}

}  // namespace ecm::host
