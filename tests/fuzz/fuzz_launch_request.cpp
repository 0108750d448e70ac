// libFuzzer target: bytes -> a request of ecm.thrift, decoded as the daemon decodes it (the
// transport and protocol of host/thrift/message_limits.hpp, over a memory buffer in place of the
// socket, with a 1 MiB message bound) -> the conversion to core types and the validation
// EcmServiceHandler runs before it calls a service (host/thrift/ecm_service_handler.cpp), then the
// reply encoded. The first byte chooses the request (fuzz_requests.hpp); kMessage feeds a whole
// call message to the generated processor, as the server does.
//
// Expected: a Thrift TException while decoding, an EcmException from validation. A finding: a
// crash, an ASan/UBSan report, an allocation over -malloc_limit_mb, any other exception, or a
// decoded request that does not read back the same after it is written.
//
// Not reached here: the checks the services make with state (an engine id that exists, the
// localizer for a resource's scheme, the user's account), and the handler's one-line checks of
// its own (a negative launch_timeout_ms, an empty engine_id or plugin name).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <system_error>

#include <thrift/TConfiguration.h>
#include <thrift/TOutput.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/transport/TBufferTransports.h>

#include "EngineConnManagerService.h"
#include "ecm/core/engine_log_reader.hpp"
#include "ecm/core/errors.hpp"
#include "ecm/core/launch_validation.hpp"
#include "engine_callback_types.h"
#include "fuzz_requests.hpp"
#include "thrift/message_limits.hpp"
#include "thrift/thrift_convert.hpp"

namespace {

namespace et = ecm::thrift;
namespace fs = std::filesystem;
using apache::thrift::TException;
using apache::thrift::protocol::TBinaryProtocol;
using apache::thrift::transport::TMemoryBuffer;
using ecm::core::EcmException;
using ecm::fuzz::Kind;

[[noreturn]] void finding(const std::string& what) {
  std::fprintf(stderr, "FINDING: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

ecm::host::ThriftLimits limits() {
  ecm::host::ThriftLimits l;
  l.max_message_bytes = ecm::fuzz::kMaxMessageBytes;
  return l;
}

std::shared_ptr<apache::thrift::TConfiguration> configuration() {
  static const auto c = std::make_shared<apache::thrift::TConfiguration>(
      ecm::fuzz::kMaxMessageBytes, ecm::fuzz::kMaxMessageBytes);
  return c;
}

// How the daemon reads a connection: MessageBoundedTransport (over the socket, here over the
// input) and the bounded binary protocol.
std::shared_ptr<apache::thrift::protocol::TProtocol> reading(const std::uint8_t* data,
                                                             std::size_t size) {
  static ecm::host::MessageBoundedTransportFactory transports(limits());
  static const auto protocols = ecm::host::bounded_protocol_factory(limits());
  auto input = std::make_shared<TMemoryBuffer>(const_cast<std::uint8_t*>(data),
                                               static_cast<std::uint32_t>(size),
                                               TMemoryBuffer::OBSERVE, configuration());
  return protocols->getProtocol(transports.getTransport(std::move(input)));
}

std::shared_ptr<TBinaryProtocol> protocol(std::shared_ptr<TMemoryBuffer> buffer) {
  return std::make_shared<TBinaryProtocol>(std::move(buffer));
}

// A reply (or an error) is encoded as the server would send it.
template <class T>
void encode(const T& value) {
  auto out = std::make_shared<TMemoryBuffer>(configuration());
  value.write(protocol(out).get());
}

// What was decoded must be written and read back the same.
template <class T>
void round_trip(const T& decoded) {
  auto buffer = std::make_shared<TMemoryBuffer>(configuration());
  decoded.write(protocol(buffer).get());
  T again;
  again.read(protocol(buffer).get());
  if (!(again == decoded)) finding("a decoded request does not read back the same");
}

// The daemon's log reader over a log dir of this process (read only): stdout with its rotated
// files, stderr, a file in a subdir, a line longer than the pattern span.
class LogDir {
 public:
  LogDir() {
    // Under $TMPDIR: scripts/fuzz.sh points it at its work dir, removed even after a crash.
    std::string tmpl = (fs::temp_directory_path() / "ecm-fuzz-logs-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) finding("cannot make a temp dir");
    path_ = tmpl;
    write("stdout.2", "2026-11-28 boot\nold line\n");
    write("stdout.1", "2026-11-28 start\n  detail one\n  detail two\nERROR failed\n");
    write("stdout", "2026-11-29 ready\n" + std::string(1500, 'a') + "\nlast, unterminated");
    write("stderr", "warning: x\n\n\nerror: y\n");
    fs::create_directories(path_ / "gc");
    write("gc/gc.log", "[gc] pause 3ms\n");
  }
  ~LogDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  LogDir(const LogDir&) = delete;
  LogDir& operator=(const LogDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  void write(const std::string& name, const std::string& text) {
    std::ofstream(path_ / name, std::ios::binary) << text;
  }
  fs::path path_;
};

const LogDir* g_logs = nullptr;

// EcmServiceHandler's steps for each request, without the services they lead to.
void check(const et::LaunchRequest& r) {
  const auto request = ecm::host::to_core(r);
  ecm::host::requested_resources(r);
  ecm::host::requested_resource_specs(r);
  ecm::core::validate_launch_request(request);
}

void check(const et::StopRequest&) {}  // the handler passes engine_id, user and type on as text

void check(const et::EngineConnFilter& f) {
  ecm::host::to_core(f);
}

void check(const et::LogRequest& r) {
  static const ecm::core::EngineLogReader reader;
  encode(ecm::host::to_thrift(reader.read(g_logs->path(), ecm::host::to_core(r))));
}

void check(const et::SetHealthRequest& r) {
  if (r.__isset.health && !ecm::host::to_core(r.health)) {
    throw EcmException(ecm::core::ErrorCode::kInvalidRequest, "unknown health");
  }
}

void check(const et::UnloadPluginRequest&) {}
void check(const et::PruneCacheRequest&) {}

// EngineCallbackHandler::report's conversion (host/thrift/engine_callback_handler.cpp).
void check(const et::EngineReport& r) {
  if (r.__isset.status && !ecm::host::to_core(r.status)) {
    throw EcmException(ecm::core::ErrorCode::kInvalidRequest, "unknown status");
  }
}

// Runs the checks as rpc() does (host/thrift/rpc_guard.hpp): an EcmException becomes the EcmError
// the client gets, and is expected; any other exception is a finding.
template <class Fn>
void guarded(Fn&& fn) {
  try {
    fn();
  } catch (const EcmException& e) {
    const auto error = ecm::host::to_thrift(e);
    encode(error);
    throw error;
  } catch (const TException&) {
    throw;
  } catch (const std::exception& e) {
    finding(std::string("unexpected exception from the checks: ") + e.what());
  } catch (...) {
    finding("unexpected non-std exception from the checks");
  }
}

template <class T>
void decode_and_check(const std::uint8_t* data, std::size_t size) {
  T request;
  try {
    request.read(reading(data, size).get());
  } catch (const TException&) {
    return;  // refused while decoding: the server answers with an error
  }
  round_trip(request);
  try {
    guarded([&] { check(request); });
  } catch (const et::EcmError&) {
  }
}

// The service as the generated processor sees it: the methods that take a request run the same
// checks as above; every other method (EngineConnManagerServiceNull) does nothing, and in
// particular loads no plugin.
class Handler : public et::EngineConnManagerServiceNull {
 public:
  void launchEngineConn(et::EngineConn&, const et::LaunchRequest& r) override {
    guarded([&] { check(r); });
  }
  void listEngineConns(std::vector<et::EngineConn>&, const et::EngineConnFilter& f) override {
    guarded([&] { check(f); });
  }
  void stopEngineConn(et::StopResult&, const et::StopRequest& r) override {
    guarded([&] { check(r); });
  }
  void stopEngineConns(std::vector<et::StopResult>&, const et::StopRequest& r) override {
    guarded([&] { check(r); });
  }
  void getEngineLog(et::LogPage&, const et::LogRequest& r) override {
    guarded([&] { check(r); });
  }
  void setHealth(et::HealthReport&, const et::SetHealthRequest& r) override {
    guarded([&] { check(r); });
  }
  void unloadPlugin(et::PluginInfo&, const et::UnloadPluginRequest& r) override {
    guarded([&] { check(r); });
  }
  void pruneCache(et::PruneCacheResult&, const et::PruneCacheRequest& r) override {
    guarded([&] { check(r); });
  }
};

void process_message(const std::uint8_t* data, std::size_t size) {
  static et::EngineConnManagerServiceProcessor processor(std::make_shared<Handler>());
  auto out = std::make_shared<TMemoryBuffer>(configuration());
  try {
    processor.process(reading(data, size), protocol(out), nullptr);
  } catch (const TException&) {
    // A frame the processor cannot read: the server drops the connection.
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // The processor reports each bad message on stderr ("received invalid message type"): quiet.
  apache::thrift::GlobalOutput.setOutputFunction([](const char*) {});
  static const LogDir logs;
  g_logs = &logs;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto* body = data + 1;
  const std::size_t n = size - 1;
  switch (ecm::fuzz::kind_of(data[0])) {
    case Kind::kLaunchRequest:
      decode_and_check<et::LaunchRequest>(body, n);
      break;
    case Kind::kStopRequest:
      decode_and_check<et::StopRequest>(body, n);
      break;
    case Kind::kEngineConnFilter:
      decode_and_check<et::EngineConnFilter>(body, n);
      break;
    case Kind::kLogRequest:
      decode_and_check<et::LogRequest>(body, n);
      break;
    case Kind::kSetHealthRequest:
      decode_and_check<et::SetHealthRequest>(body, n);
      break;
    case Kind::kUnloadPluginRequest:
      decode_and_check<et::UnloadPluginRequest>(body, n);
      break;
    case Kind::kPruneCacheRequest:
      decode_and_check<et::PruneCacheRequest>(body, n);
      break;
    case Kind::kEngineReport:
      decode_and_check<et::EngineReport>(body, n);
      break;
    case Kind::kMessage:
    case Kind::kCount:
      process_message(body, n);
      break;
  }
  return 0;
}
