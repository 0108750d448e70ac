// Writes the seeds of corpus/launch_request/: realistic requests of each kind fuzz_launch_request
// takes (fuzz_requests.hpp), serialized with TBinaryProtocol after their kind byte, one file each.
// Usage: fuzz_seed_gen DIR
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <string>

#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/transport/TBufferTransports.h>

#include "EngineConnManagerService.h"
#include "engine_callback_types.h"
#include "fuzz_requests.hpp"

namespace {

namespace et = ecm::thrift;
using apache::thrift::protocol::TBinaryProtocol;
using apache::thrift::protocol::TProtocol;
using apache::thrift::transport::TMemoryBuffer;
using ecm::fuzz::Kind;

std::string g_dir;
int g_written = 0;

void save(const std::string& name, Kind kind, const std::function<void(TProtocol&)>& write) {
  auto buffer = std::make_shared<TMemoryBuffer>();
  TBinaryProtocol protocol(buffer);
  write(protocol);
  std::string bytes(1, static_cast<char>(kind));
  bytes += buffer->getBufferAsString();
  std::ofstream(g_dir + "/" + name, std::ios::binary) << bytes;
  ++g_written;
}

template <class T>
void save_struct(const std::string& name, Kind kind, const T& value) {
  save(name, kind, [&](TProtocol& p) { value.write(&p); });
}

// A call message as a client sends it.
void save_call(const std::string& name,
               const std::function<void(et::EngineConnManagerServiceClient&)>& send) {
  save(name, Kind::kMessage, [&](TProtocol& p) {
    std::shared_ptr<TProtocol> out(&p, [](TProtocol*) {});
    et::EngineConnManagerServiceClient client(out);
    send(client);
  });
}

et::LaunchRequest shell_launch() {
  et::LaunchRequest r;
  r.__set_ticket_id("rm-ticket-000042");
  r.__set_user("alice");
  r.__set_engine_type("shell");
  r.__set_labels({{"queue", "default"}, {"creator", "IDE"}});
  r.__set_properties({{"command", "echo hi; sleep 600"}, {"ready_when", "alive:2s"}});
  r.__set_env({{"LANG", "C.UTF-8"}});
  r.__set_memory_bytes(512ll << 20);
  r.__set_cores(1);
  r.__set_launch_timeout_ms(60000);
  return r;
}

et::LaunchRequest python_launch() {
  et::LaunchRequest r;
  r.__set_user("bob");
  r.__set_engine_type("python");
  r.__set_engine_version("3.11");
  r.__set_properties({{"script", "main.py"}, {"ports", "http"}});
  et::ResourceSpec file;
  file.__set_uri("file:///srv/jobs/main.py");
  file.__set_sha256(std::string(64, 'a'));
  et::ResourceSpec archive;
  archive.__set_uri("https://repo.example/libs/deps.tar.gz?sig=1");
  archive.__set_sha256(std::string(32, '0') + std::string(32, 'f'));
  archive.__set_name("deps");
  archive.__set_unpack(true);
  archive.__set_visibility("public");
  et::ResourceSpec bml;
  bml.__set_uri("bml://RESOURCE_ID/v000001");
  bml.__set_visibility("private");
  r.__set_resources({file, archive, bml});
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_seed_gen DIR\n");
    return 2;
  }
  g_dir = argv[1];

  save_struct("launch-shell", Kind::kLaunchRequest, shell_launch());
  save_struct("launch-python-resources", Kind::kLaunchRequest, python_launch());
  et::LaunchRequest minimal;
  minimal.__set_user("carol");
  minimal.__set_engine_type("shell");
  save_struct("launch-minimal", Kind::kLaunchRequest, minimal);

  et::StopRequest stop;
  stop.__set_engine_id("ec-533ef279cd31906950a013e9");
  stop.__set_force(true);
  save_struct("stop-one", Kind::kStopRequest, stop);
  et::StopRequest stop_matching;
  stop_matching.__set_user("alice");
  stop_matching.__set_engine_type("shell");
  save_struct("stop-matching", Kind::kStopRequest, stop_matching);

  et::EngineConnFilter filter;
  filter.__set_user("alice");
  filter.__set_engine_type("shell");
  filter.__set_status(et::EngineStatus::RUNNING);
  save_struct("filter", Kind::kEngineConnFilter, filter);

  et::LogRequest tail;
  tail.__set_engine_id("ec-533ef279cd31906950a013e9");
  tail.__set_stream("stdout");
  tail.__set_tail(20);
  tail.__set_include_words({"ERROR", "start"});
  tail.__set_exclude_words({"boot"});
  tail.__set_record_pattern("^\\d{4}-\\d{2}-\\d{2} ");
  save_struct("log-tail-records", Kind::kLogRequest, tail);
  et::LogRequest page;
  page.__set_engine_id("ec-533ef279cd31906950a013e9");
  page.__set_stream("gc/gc.log");
  page.__set_from_line(2);
  page.__set_page_size(100);
  save_struct("log-page", Kind::kLogRequest, page);
  et::LogRequest err;
  err.__set_engine_id("ec-1");
  err.__set_stream("stderr");
  save_struct("log-stderr", Kind::kLogRequest, err);

  et::SetHealthRequest health;
  health.__set_health(et::NodeHealth::STOCK_UNAVAILABLE);
  health.__set_reason("maintenance at 02:00");
  save_struct("set-health", Kind::kSetHealthRequest, health);
  et::SetHealthRequest clear;
  clear.__set_clear(true);
  save_struct("set-health-clear", Kind::kSetHealthRequest, clear);

  et::UnloadPluginRequest unload;
  unload.__set_name("python");
  unload.__set_force(true);
  save_struct("unload-plugin", Kind::kUnloadPluginRequest, unload);

  et::PruneCacheRequest prune;
  prune.__set_all(true);
  save_struct("prune-cache", Kind::kPruneCacheRequest, prune);

  et::EngineReport report;
  report.__set_engine_id("ec-533ef279cd31906950a013e9");
  report.__set_token(std::string(64, 'c'));
  report.__set_pid(5749);
  report.__set_status(et::EngineStatus::IDLE);
  report.__set_address("127.0.0.1:8080");
  report.__set_message("ready");
  save_struct("engine-report", Kind::kEngineReport, report);

  save_call("call-launch", [](auto& c) { c.send_launchEngineConn(shell_launch()); });
  save_call("call-launch-resources", [](auto& c) { c.send_launchEngineConn(python_launch()); });
  save_call("call-get", [](auto& c) { c.send_getEngineConn("ec-533ef279cd31906950a013e9"); });
  save_call("call-list", [&](auto& c) { c.send_listEngineConns(filter); });
  save_call("call-stop", [&](auto& c) { c.send_stopEngineConn(stop); });
  save_call("call-stop-matching", [&](auto& c) { c.send_stopEngineConns(stop_matching); });
  save_call("call-log", [&](auto& c) { c.send_getEngineLog(tail); });
  save_call("call-set-health", [&](auto& c) { c.send_setHealth(health); });
  save_call("call-resources", [](auto& c) { c.send_getResources(); });
  save_call("call-load-plugin", [](auto& c) { c.send_loadPlugin("/opt/ecm/plugins/x.so"); });
  save_call("call-unload-plugin", [&](auto& c) { c.send_unloadPlugin(unload); });
  save_call("call-prune-cache", [&](auto& c) { c.send_pruneCache(prune); });

  std::printf("fuzz_seed_gen: %d seeds in %s\n", g_written, g_dir.c_str());
  return 0;
}
