// The `python` plugin (plugins/python) on the real daemon: a real Python interpreter that takes
// the socket the ECM bound for it, reports Unlock through `ecmctl callback`, serves its line
// protocol, heartbeats, and ends cleanly on SIGTERM.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <csignal>

#include "ecm_harness.hpp"

namespace ecm::itest {
namespace {

const std::string kEngineProgram = std::string(ECM_PLUGIN_DIR) + "/ecm_python_engine.py";

EcmOptions python_options(const std::string& extra_config = "") {
  EcmOptions o;
  o.plugins = {"shell", "python"};
  o.plugin_toml["python"] = "engine_program = \"" + kEngineProgram + "\"\n" + extra_config;
  return o;
}

api::LaunchRequest python_request(std::map<std::string, std::string> properties = {}) {
  api::LaunchRequest r;
  r.__set_user("alice");
  r.__set_engine_type("python");
  r.__set_properties(std::move(properties));
  return r;
}

bool is_ended(const api::EngineConn& e) {
  return e.__isset.status &&
         (e.status == api::EngineStatus::SUCCESS || e.status == api::EngineStatus::FAILED);
}

// A client of the engine's line protocol: one request line, one answer line.
class LineClient {
 public:
  explicit LineClient(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{10, 0};  // a missing answer fails the test instead of hanging it
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~LineClient() { ::close(fd_); }
  LineClient(const LineClient&) = delete;
  LineClient& operator=(const LineClient&) = delete;

  bool connected() const { return connected_; }

  std::string ask(const std::string& line) {
    const std::string out = line + "\n";
    if (::send(fd_, out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size())) {
      return "<send failed>";
    }
    for (;;) {
      auto nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        std::string answer = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return answer;
      }
      char chunk[4096];
      ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return "<no answer>";
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string buffer_;
};

// Launches and waits for the engine's Unlock; the record as it is then.
api::EngineConn launch_ready(EcmProcess& ecm, const api::LaunchRequest& request) {
  auto e = ecm.launch(request);
  auto ready = ecm.wait_for_status(e.id, api::EngineStatus::UNLOCK, 20s);
  EXPECT_EQ(ready.status, api::EngineStatus::UNLOCK)
      << "stdout:\n"
      << read_file(e.log_dir + "/stdout") << "stderr:\n"
      << read_file(e.log_dir + "/stderr");
  return ready;
}

api::EngineConn stop_and_wait(EcmProcess& ecm, const std::string& id) {
  api::StopRequest stop;
  stop.__set_engine_id(id);
  api::StopResult result;
  ecm.client().stopEngineConn(result, stop);
  return ecm.wait_for_status(id, is_ended, 20s);
}

}  // namespace

TEST(PythonEngine, StartsReportsUnlockWithItsPortAndServesTheProtocol) {
  EcmProcess ecm(python_options());
  auto e = ecm.launch(python_request());
  EXPECT_EQ(e.status, api::EngineStatus::STARTING) << "ready only when the engine calls back";
  EXPECT_EQ(e.plugin_name, "python");
  EXPECT_EQ(e.plugin_version, "1.0.0");
  ASSERT_EQ(e.ports.count("main"), 1u);
  const int port = e.ports.at("main");

  auto ready = ecm.wait_for_status(e.id, api::EngineStatus::UNLOCK, 20s);
  ASSERT_EQ(ready.status, api::EngineStatus::UNLOCK) << read_file(e.log_dir + "/stderr");
  EXPECT_EQ(ready.service_address, "127.0.0.1:" + std::to_string(port));
  EXPECT_TRUE(ready.last_message.starts_with("python 3.")) << ready.last_message;
  EXPECT_TRUE(ready.last_message.ends_with(" ready")) << ready.last_message;
  const std::string out = read_file(e.log_dir + "/stdout");
  EXPECT_NE(out.find("(inherited fd 3)"), std::string::npos)
      << "the engine serves the socket the ECM bound, not one of its own:\n"
      << out;

  LineClient client(port);
  ASSERT_TRUE(client.connected());
  EXPECT_EQ(client.ask("ping"), "pong");
  EXPECT_EQ(client.ask("1+2"), "3");
  EXPECT_EQ(client.ask("x = 6 * 7"), "None");
  EXPECT_EQ(client.ask("x"), "42");
  EXPECT_EQ(client.ask("'a\\nb'"), "'a\\nb'");
  EXPECT_EQ(client.ask("1/0"), "error: ZeroDivisionError: division by zero");
  // One session: a second connection sees what the first defined.
  LineClient other(port);
  ASSERT_TRUE(other.connected());
  EXPECT_EQ(other.ask("x + 1"), "43");
}

TEST(PythonEngine, StopsOnSigtermWithExitCodeZeroWhileAClientIsConnected) {
  EcmProcess ecm(python_options());
  auto ready = launch_ready(ecm, python_request());
  ASSERT_EQ(ready.status, api::EngineStatus::UNLOCK);
  LineClient idle(ready.ports.at("main"));
  ASSERT_TRUE(idle.connected());
  ASSERT_EQ(idle.ask("ping"), "pong");

  const auto stopped_at = std::chrono::steady_clock::now();
  auto ended = stop_and_wait(ecm, ready.id);
  const auto took = std::chrono::steady_clock::now() - stopped_at;
  ASSERT_TRUE(is_ended(ended));
  EXPECT_EQ(ended.status, api::EngineStatus::SUCCESS) << ended.failure_reason;
  EXPECT_TRUE(ended.__isset.exit_code) << "exited by itself, not killed";
  EXPECT_EQ(ended.exit_code, 0);
  EXPECT_FALSE(ended.__isset.exit_signal) << "ended by signal " << ended.exit_signal;
  EXPECT_EQ(ended.stop_reason, "stopped by request");
  EXPECT_LT(took, 5s) << "well within the 10s grace";
  const std::string out = read_file(ready.log_dir + "/stdout");
  EXPECT_NE(out.find("stopping (SIGTERM)"), std::string::npos) << out;
  EXPECT_NE(out.find("] stopped\n"), std::string::npos) << out;
  EXPECT_TRUE(wait_group_gone(ready.pid));
}

TEST(PythonEngine, CodePropertyRunsBeforeReadyFromAFileNotTheCommandLine) {
  EcmProcess ecm(python_options());
  const std::string code =
      "greeting = 'hello from init'\n"
      "def double(n):\n"
      "    return 2 * n\n";
  auto ready = launch_ready(ecm, python_request({{"code", code}}));
  ASSERT_EQ(ready.status, api::EngineStatus::UNLOCK);
  LineClient client(ready.ports.at("main"));
  ASSERT_TRUE(client.connected());
  EXPECT_EQ(client.ask("greeting"), "'hello from init'");
  EXPECT_EQ(client.ask("double(21)"), "42");

  EXPECT_EQ(read_file(ready.work_dir + "/ecm_python_init.py"), code);
  const std::string cmdline = read_file("/proc/" + std::to_string(ready.pid) + "/cmdline");
  EXPECT_NE(cmdline.find("ecm_python_engine.py"), std::string::npos) << cmdline;
  EXPECT_EQ(cmdline.find("greeting"), std::string::npos) << "code stays off argv: " << cmdline;
}

TEST(PythonEngine, FailingCodeFailsTheEngineWithTheTracebackInItsStderr) {
  EcmProcess ecm(python_options());
  auto e = ecm.launch(python_request({{"code", "raise RuntimeError('license server down')"}}));
  auto ended = ecm.wait_for_status(e.id, is_ended, 20s);
  ASSERT_EQ(ended.status, api::EngineStatus::FAILED);
  EXPECT_EQ(ended.exit_code, 1);
  const std::string err = read_file(e.log_dir + "/stderr");
  EXPECT_NE(err.find("RuntimeError: license server down"), std::string::npos) << err;
  EXPECT_NE(err.find("init code"), std::string::npos) << err;
}

TEST(PythonEngine, ReadyTimeoutBoundsStartingAndSigtermDuringInitExitsZero) {
  EcmProcess ecm(python_options());
  auto e = ecm.launch(
      python_request({{"code", "import time\ntime.sleep(600)\n"}, {"ready_timeout", "1s"}}));
  auto ended = ecm.wait_for_status(e.id, is_ended, 20s);
  ASSERT_EQ(ended.status, api::EngineStatus::FAILED);
  EXPECT_NE(ended.failure_reason.find("not ready after 1s"), std::string::npos)
      << ended.failure_reason;
  EXPECT_EQ(ended.exit_code, 0) << "stopped cleanly by the ECM's SIGTERM while its code ran";
  EXPECT_FALSE(ended.__isset.exit_signal);
  const std::string out = read_file(e.log_dir + "/stdout");
  EXPECT_NE(out.find("stopped (SIGTERM before ready)"), std::string::npos) << out;
}

TEST(PythonEngine, HeartbeatsAtTheConfiguredInterval) {
  EcmProcess ecm(python_options("heartbeat_interval = \"200ms\"\n"));
  auto ready = launch_ready(ecm, python_request());
  ASSERT_EQ(ready.status, api::EngineStatus::UNLOCK);
  auto first = ecm.wait_for_status(ready.id, [](const api::EngineConn& c) {
    return c.__isset.last_heartbeat_ms && c.last_heartbeat_ms > 0;
  });
  ASSERT_GT(first.last_heartbeat_ms, 0) << read_file(ready.log_dir + "/stderr");
  // And again: a thread keeps beating, not a single report.
  auto next = ecm.wait_for_status(ready.id, [&](const api::EngineConn& c) {
    return c.__isset.last_heartbeat_ms && c.last_heartbeat_ms > first.last_heartbeat_ms;
  });
  EXPECT_GT(next.last_heartbeat_ms, first.last_heartbeat_ms);
}

TEST(PythonEngine, BadPropertiesAreInvalidRequestAndMakeNoEngine) {
  EcmProcess ecm(python_options());
  auto bad_timeout = ecm_error_of([&] { ecm.launch(python_request({{"ready_timeout", "soon"}})); });
  ASSERT_TRUE(bad_timeout);
  EXPECT_EQ(bad_timeout->code, api::ErrorCode::INVALID_REQUEST);
  EXPECT_NE(bad_timeout->message.find("ready_timeout"), std::string::npos) << bad_timeout->message;
  auto zero = ecm_error_of([&] { ecm.launch(python_request({{"ready_timeout", "0s"}})); });
  ASSERT_TRUE(zero);
  EXPECT_EQ(zero->code, api::ErrorCode::INVALID_REQUEST);
  auto unknown = ecm_error_of([&] { ecm.launch(python_request({{"cod", "x = 1"}})); });
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->code, api::ErrorCode::INVALID_REQUEST);
  EXPECT_NE(unknown->message.find("'cod'"), std::string::npos) << unknown->message;
  std::vector<api::EngineConn> all;
  ecm.client().listEngineConns(all, api::EngineConnFilter{});
  EXPECT_TRUE(all.empty());
}

TEST(PythonEngine, PluginIsRefusedAtLoadWithoutAUsableEngineProgram) {
  struct Case {
    std::string toml;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"", "config key 'engine_program' is required"},
      {"engine_program = \"ecm_python_engine.py\"\n", "must be an absolute path"},
      {"engine_program = \"/nonexistent/ecm_python_engine.py\"\n", "no such file"},
      {"engine_program = \"" + kEngineProgram + "\"\npython = \"python3\"\n",
       "config key 'python' = 'python3' must be an absolute path"},
      {"engine_program = \"" + kEngineProgram + "\"\nheartbeat_interval = \"10\"\n",
       "'heartbeat_interval' = '10' is not a duration"},
      {"engine_program = \"" + kEngineProgram + "\"\nengine_programme = \"x\"\n",
       "unknown config key 'engine_programme'"},
  };
  for (const auto& c : cases) {
    EcmOptions o;
    o.plugins = {"shell", "python"};
    o.plugin_toml["python"] = c.toml;
    EcmProcess ecm(o, false);
    auto r = ecm.start_expecting_failure();
    EXPECT_EQ(r.exit_code, 1) << c.toml;
    EXPECT_NE(r.err.find("plugin 'python'"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.expected), std::string::npos) << c.toml << "\n" << r.err;
  }
}

}  // namespace ecm::itest
