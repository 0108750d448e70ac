// Readiness rules, launch timeout and the engine callback service, on the real daemon.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "ecm_harness.hpp"

namespace ecm::itest {
namespace {

api::LaunchRequest ready_request(const std::string& command, const std::string& ready_when) {
  auto r = shell_request("alice", command);
  r.properties["ready_when"] = ready_when;
  return r;
}

api::NodeResources resources(EcmProcess& ecm) {
  api::NodeResources r;
  ecm.client().getResources(r);
  return r;
}

}  // namespace

TEST(Readiness, AliveForKeepsStartingThenRunning) {
  EcmProcess ecm;
  auto e = ecm.launch(ready_request("sleep 600", "alive:1500ms"));
  EXPECT_EQ(e.status, api::EngineStatus::STARTING);
  EXPECT_EQ(resources(ecm).locked.instances, 1) << "locked, not yet used, while starting";
  auto ready = ecm.wait_for_status(e.id, api::EngineStatus::RUNNING, 10s);
  EXPECT_EQ(ready.status, api::EngineStatus::RUNNING);
  EXPECT_EQ(resources(ecm).used.instances, 1);
  EXPECT_EQ(resources(ecm).locked.instances, 0);
}

TEST(Readiness, LogLineMarksReady) {
  EcmProcess ecm;
  auto e = ecm.launch(
      ready_request("sleep 0.5; echo 'server READY on 1'; sleep 600", "log:READY on [0-9]+"));
  EXPECT_EQ(e.status, api::EngineStatus::STARTING);
  EXPECT_EQ(ecm.wait_for_status(e.id, api::EngineStatus::RUNNING, 10s).status,
            api::EngineStatus::RUNNING);
}

TEST(Readiness, ABacktrackingLogPatternNeitherHangsTheEventLoopNorMatchesTooCostlyALine) {
  EcmProcess ecm;
  // (a*)*b against a long line of a's backtracks without end in std::regex: the event loop would
  // spin on it and nothing else (exits, timers) would run. The costly line does not match; a
  // later line that does match makes the engine ready.
  auto e = ecm.launch(ready_request(
      "printf 'a%.0s' $(seq 1 3000); echo; sleep 0.3; echo aab; sleep 600", "log:(a*)*b"));
  EXPECT_EQ(e.status, api::EngineStatus::STARTING);
  auto quick = ecm.launch(shell_request("bob", "exit 3"));
  // The loop still notices another engine's exit meanwhile.
  EXPECT_EQ(ecm.wait_for_status(quick.id, api::EngineStatus::FAILED, 5s).status,
            api::EngineStatus::FAILED);
  EXPECT_EQ(ecm.wait_for_status(e.id, api::EngineStatus::RUNNING, 10s).status,
            api::EngineStatus::RUNNING);
}

TEST(Readiness, PortThatAcceptsMarksReady) {
  // A free port picked by the kernel, then given to the engine to listen on.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  ::close(fd);
  EcmProcess ecm;
  auto e = ecm.launch(ready_request(
      "sleep 0.5; exec python3 -c 'import socket,time; s=socket.socket(); "
      "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((\"127.0.0.1\", " +
          std::to_string(port) + ")); s.listen(); time.sleep(600)'",
      "port:" + std::to_string(port)));
  EXPECT_EQ(e.status, api::EngineStatus::STARTING);
  EXPECT_EQ(ecm.wait_for_status(e.id, api::EngineStatus::RUNNING, 10s).status,
            api::EngineStatus::RUNNING);
}

TEST(Readiness, NeverReadyTimesOutFailedGoneAndReleased) {
  EcmOptions options;
  options.stop_grace = "1s";
  EcmProcess ecm(options);
  auto req = ready_request("echo 'cannot bind' >&2; trap '' TERM; sleep 600", "callback");
  req.__set_launch_timeout_ms(1000);
  auto e = ecm.launch(req);
  auto ended = ecm.wait_for_status(e.id, api::EngineStatus::FAILED, 20s);
  ASSERT_EQ(ended.status, api::EngineStatus::FAILED);
  EXPECT_NE(ended.failure_reason.find("not ready after 1s"), std::string::npos)
      << ended.failure_reason;
  EXPECT_NE(ended.failure_reason.find("cannot bind"), std::string::npos) << ended.failure_reason;
  EXPECT_EQ(ended.stop_reason, "launch timeout");
  EXPECT_TRUE(wait_group_gone(e.pid));
  auto r = resources(ecm);
  EXPECT_EQ(r.locked.instances, 0);
  EXPECT_EQ(r.used.instances, 0);
}

TEST(Readiness, BadReadyWhenIsInvalidRequest) {
  EcmProcess ecm;
  auto err = ecm_error_of([&] { ecm.launch(ready_request("sleep 1", "port:99999")); });
  ASSERT_TRUE(err);
  EXPECT_EQ(err->code, api::ErrorCode::INVALID_REQUEST);
}

TEST(Callback, EngineReportsItselfOnlyWithItsToken) {
  EcmProcess ecm;
  auto e = ecm.launch(ready_request("env; sleep 600", "callback"));
  auto env = engine_environment(e);
  ASSERT_EQ(env["ECM_ENGINE_ID"], e.id);
  ASSERT_EQ(env["ECM_ENGINE_TOKEN"].size(), 32u);
  EngineCallbackClient cb(env["ECM_CALLBACK_ADDRESS"]);

  api::EngineReport report;
  report.__set_engine_id(e.id);
  report.__set_token(std::string(32, '0'));
  report.__set_status(api::EngineStatus::IDLE);
  try {
    cb->report(report);
    FAIL() << "a wrong token was accepted";
  } catch (const api::EcmError& err) {
    EXPECT_EQ(err.code, api::ErrorCode::PERMISSION_DENIED);
  }
  api::EngineConn still;
  ecm.client().getEngineConn(still, e.id);
  EXPECT_EQ(still.status, api::EngineStatus::STARTING) << "a refused callback changed the engine";

  report.__set_token(env["ECM_ENGINE_TOKEN"]);
  report.__set_pid(::getpid());  // the test's pid is not in the engine's group
  try {
    cb->report(report);
    FAIL() << "a pid outside the engine's group was accepted";
  } catch (const api::EcmError& err) {
    EXPECT_EQ(err.code, api::ErrorCode::INVALID_REQUEST);
  }

  report.__isset.pid = false;
  report.__set_address("127.0.0.1:7777");
  report.__set_message("warmed up");
  cb->report(report);
  api::EngineConn idle;
  ecm.client().getEngineConn(idle, e.id);
  EXPECT_EQ(idle.status, api::EngineStatus::IDLE);
  EXPECT_EQ(idle.service_address, "127.0.0.1:7777");
  EXPECT_EQ(idle.last_message, "warmed up");
  EXPECT_TRUE(idle.__isset.last_heartbeat_ms);
  EXPECT_EQ(resources(ecm).used.instances, 1);

  report.__set_status(api::EngineStatus::BUSY);
  cb->report(report);
  ecm.client().getEngineConn(idle, e.id);
  EXPECT_EQ(idle.status, api::EngineStatus::BUSY);

  report.__set_status(api::EngineStatus::SUCCESS);  // not the engine's to say
  EXPECT_THROW(cb->report(report), api::EcmError);
  EXPECT_NO_THROW(cb->heartbeat(e.id, env["ECM_ENGINE_TOKEN"]));
  EXPECT_THROW(cb->heartbeat(e.id, "x"), api::EcmError);
}

}  // namespace ecm::itest
