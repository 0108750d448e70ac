// Google Benchmark micro-benchmarks of the hot paths of a launch and of listEngineConns, the parts
// bench/launch_bench.cpp measures end to end: a plugin call's round trip through the call runner
// (each launch makes a few), a state store write (each launch makes a few), the creation of an
// engine's work dir with its log files, and the answer to a list of 1,000 engines (the table's
// copy, the conversion to Thrift and the serialization). Real SQLite files and directories under
// a temp dir (left for bench/run.sh to remove when ECM_BENCH_KEEP_FILES is set).
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/transport/TBufferTransports.h>

#include "bench_support.hpp"
#include "plugins/plugin_call_runner.hpp"
#include "services/engine_conn_list_service.hpp"
#include "store/engine_state_store.hpp"
#include "thrift/thrift_convert.hpp"

namespace {

namespace fs = std::filesystem;
using ecm::core::EngineConn;

// A temp dir removed with the benchmark.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    std::string pattern = (fs::temp_directory_path() / ("ecm-bench-" + tag + "-XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    if (!ecm::bench::keep_files()) fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// A record as a launch of the `shell` launcher leaves it: Running, with its supervision.
EngineConn shell_engine(int i) {
  EngineConn e;
  e.id = "ec-" + std::to_string(1000000 + i) + "-0123456789abcdef";
  e.ticket_id = "ticket-" + std::to_string(i);
  e.user = "bench";
  e.engine_type = "shell";
  e.properties = {{"command", "exec /bin/sleep 1000"}};
  e.labels = {{"queue", "default"}};
  e.status = ecm::core::EngineStatus::kRunning;
  e.pid = 100000 + i;
  e.work_dir = "/var/lib/ecm/work/bench/" + e.id;
  e.log_dir = e.work_dir + "/logs";
  e.created_at = ecm::core::Clock::now();
  e.started_at = e.created_at;
  e.plugin_name = "shell";
  e.plugin_version = "1.4.0";
  e.resources = {256ull << 20, 0, 1};
  e.token = std::string(64, 't');
  e.supervision.boot_id = "0f3e1b7c-2f0a-4c1e-9d7a-5b6c7d8e9f00";
  e.supervision.stop_signal = 15;
  e.supervision.stop_grace = std::chrono::seconds(10);
  e.supervision.launch_timeout = std::chrono::seconds(60);
  e.supervision.start_time = 123456789;
  return e;
}

void BM_PluginCallRoundTrip(benchmark::State& state) {
  ecm::host::PluginCallRunner runner(std::chrono::seconds(30));
  int calls = 0;
  for (auto _ : state) {
    auto outcome = runner.run([&calls] { ++calls; }, std::chrono::seconds(30));
    benchmark::DoNotOptimize(outcome);
  }
  state.counters["calls"] = calls;
}
BENCHMARK(BM_PluginCallRoundTrip)->UseRealTime();

void BM_StateStorePut(benchmark::State& state) {
  TempDir dir("store");
  ecm::host::EngineStateStore store(dir.path() / "engines.db");
  auto record = shell_engine(0);
  int i = 0;
  for (auto _ : state) {
    record.id = "ec-" + std::to_string(i++);  // a new row each time, as launches make
    store.put(record);
  }
}
BENCHMARK(BM_StateStorePut)->UseRealTime();

// An engine's dirs and log files, as a launch makes them: <user>/<id>/, logs/, stdout, stderr.
void BM_WorkDirCreate(benchmark::State& state) {
  TempDir dir("workdir");
  const fs::path user = dir.path() / "bench";
  fs::create_directories(user);
  int i = 0;
  for (auto _ : state) {
    const fs::path work = user / ("ec-" + std::to_string(i++));
    const fs::path logs = work / "logs";
    if (::mkdir(work.c_str(), 0700) != 0 || ::mkdir(logs.c_str(), 0700) != 0) {
      state.SkipWithError("mkdir failed");
      break;
    }
    for (const char* name : {"stdout", "stderr"}) {
      const int fd = ::open((logs / name).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
      if (fd < 0) {
        state.SkipWithError("open failed");
        break;
      }
      ::close(fd);
    }
  }
}
BENCHMARK(BM_WorkDirCreate)->UseRealTime();

// listEngineConns of N engines in the daemon, less the socket: the table's snapshot, the conversion
// to Thrift and the serialization of the reply.
void BM_ListEngines(benchmark::State& state) {
  ecm::host::EngineConnListService table;
  for (int i = 0; i < state.range(0); ++i)
    table.add_unless_ticket_known(shell_engine(i));
  auto buffer = std::make_shared<apache::thrift::transport::TMemoryBuffer>();
  apache::thrift::protocol::TBinaryProtocol protocol(buffer);
  for (auto _ : state) {
    buffer->resetBuffer();
    ecm::thrift::EngineConnManagerService_listEngineConns_result result;
    const auto engines = table.snapshot({});
    result.success.reserve(engines.size());
    for (const auto& e : engines)
      result.success.push_back(ecm::host::to_thrift(*e));
    result.__isset.success = true;
    result.write(&protocol);
    benchmark::DoNotOptimize(buffer->available_read());
  }
  state.counters["reply_bytes"] = static_cast<double>(buffer->available_read());
}
BENCHMARK(BM_ListEngines)->Arg(1000)->Unit(benchmark::kMicrosecond);

// What the table's lock is held for: the snapshot of N records.
void BM_ListEnginesSnapshot(benchmark::State& state) {
  ecm::host::EngineConnListService table;
  for (int i = 0; i < state.range(0); ++i)
    table.add_unless_ticket_known(shell_engine(i));
  for (auto _ : state)
    benchmark::DoNotOptimize(table.snapshot({}));
}
BENCHMARK(BM_ListEnginesSnapshot)->Arg(1000)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
