// Every engine state transition on the real daemon: the ones an engine reports through its
// callback (legal ones applied, illegal ones refused and nothing changed), and the ones the ECM
// makes itself (stop, exit, launch timeout).
#include <gtest/gtest.h>

#include "ecm_harness.hpp"

namespace ecm::itest {
namespace {

using S = api::EngineStatus;

const std::vector<S::type> kAvailable = {S::UNLOCK, S::LOCKED, S::IDLE, S::BUSY, S::RUNNING};
const std::vector<S::type> kNotReportable = {S::STARTING, S::SHUTTING_DOWN, S::SUCCESS, S::FAILED};

// An engine waiting for its callback, and a callback client speaking for it.
struct CallbackEngine {
  CallbackEngine(EcmProcess& ecm, std::chrono::milliseconds launch_timeout = 60s) : ecm(ecm) {
    auto r = shell_request("alice", "env; sleep 600");
    r.properties["ready_when"] = "callback";
    r.__set_launch_timeout_ms(launch_timeout.count());
    engine = ecm.launch(r);
    env = engine_environment(engine);
    client = std::make_unique<EngineCallbackClient>(env["ECM_CALLBACK_ADDRESS"]);
  }
  // The error the report got, if any.
  std::optional<api::EcmError> report(S::type status) {
    api::EngineReport r;
    r.__set_engine_id(engine.id);
    r.__set_token(env["ECM_ENGINE_TOKEN"]);
    r.__set_status(status);
    return ecm_error_of([&] { (*client)->report(r); });
  }
  S::type status() {
    api::EngineConn now;
    ecm.client().getEngineConn(now, engine.id);
    return now.status;
  }
  EcmProcess& ecm;
  api::EngineConn engine;
  std::map<std::string, std::string> env;
  std::unique_ptr<EngineCallbackClient> client;
};

void stop(EcmProcess& ecm, const std::string& id, bool force = false) {
  api::StopRequest req;
  req.__set_engine_id(id);
  req.__set_force(force);
  api::StopResult result;
  ecm.client().stopEngineConn(result, req);
}

}  // namespace

TEST(Transitions, StartingToEachAvailableStateThenToEveryOtherAvailableState) {
  EcmProcess ecm;
  for (auto from : kAvailable) {
    for (auto to : kAvailable) {
      if (to == from) continue;
      CallbackEngine e(ecm);
      ASSERT_EQ(e.status(), S::STARTING);
      ASSERT_FALSE(e.report(from)) << "Starting -> " << to_string(from);
      ASSERT_EQ(e.status(), from);
      ASSERT_FALSE(e.report(to)) << to_string(from) << " -> " << to_string(to);
      EXPECT_EQ(e.status(), to) << to_string(from) << " -> " << to_string(to);
      stop(ecm, e.engine.id, true);
      ecm.wait_for_status(e.engine.id, S::SUCCESS);
    }
  }
}

TEST(Transitions, AnEngineCannotReportANonAvailableStateFromAnyState) {
  EcmProcess ecm;
  CallbackEngine e(ecm);
  for (auto bad : kNotReportable) {
    auto err = e.report(bad);
    ASSERT_TRUE(err) << to_string(bad);
    EXPECT_EQ(err->code, api::ErrorCode::INVALID_REQUEST);
    EXPECT_EQ(e.status(), S::STARTING) << "refused, nothing applied";
  }
  ASSERT_FALSE(e.report(S::IDLE));
  for (auto bad : kNotReportable) {
    EXPECT_TRUE(e.report(bad)) << to_string(bad);
    EXPECT_EQ(e.status(), S::IDLE);
  }
}

TEST(Transitions, ShuttingDownOnlyEndsAndAnEndedEngineNeverMovesAgain) {
  EcmOptions o;
  o.stop_grace = "3s";
  EcmProcess ecm(o);
  // The engine ignores SIGTERM, so it stays ShuttingDown for the grace.
  auto r = shell_request("alice", "trap '' TERM; env; while true; do sleep 0.1; done");
  r.properties["ready_when"] = "callback";
  auto launched = ecm.launch(r);
  auto env = engine_environment(launched);
  EngineCallbackClient client(env["ECM_CALLBACK_ADDRESS"]);
  auto report = [&](S::type status) {
    api::EngineReport rep;
    rep.__set_engine_id(launched.id);
    rep.__set_token(env["ECM_ENGINE_TOKEN"]);
    rep.__set_status(status);
    return ecm_error_of([&] { client->report(rep); });
  };
  ASSERT_FALSE(report(S::BUSY));
  stop(ecm, launched.id);
  ASSERT_EQ(ecm.wait_for_status(launched.id, S::SHUTTING_DOWN, 5s).status, S::SHUTTING_DOWN);
  for (auto to : kAvailable) {
    auto err = report(to);
    ASSERT_TRUE(err) << "ShuttingDown -> " << to_string(to) << " was accepted";
    EXPECT_EQ(err->code, api::ErrorCode::INVALID_REQUEST);
  }
  api::EngineConn now;
  ecm.client().getEngineConn(now, launched.id);
  EXPECT_EQ(now.status, S::SHUTTING_DOWN);
  // SIGKILL after the grace: stopped on request, so Success.
  auto ended = ecm.wait_for_status(launched.id, S::SUCCESS, 10s);
  ASSERT_EQ(ended.status, S::SUCCESS);
  for (auto to : kAvailable) {
    EXPECT_TRUE(report(to)) << "Success -> " << to_string(to) << " was accepted";
  }
  ecm.client().getEngineConn(now, launched.id);
  EXPECT_EQ(now.status, S::SUCCESS);
}

TEST(Transitions, TheEcmsOwnTransitions) {
  EcmProcess ecm;
  // Starting -> ShuttingDown -> Success: stopped before it was ready.
  CallbackEngine starting(ecm);
  stop(ecm, starting.engine.id);
  EXPECT_EQ(ecm.wait_for_status(starting.engine.id, S::SUCCESS).status, S::SUCCESS);
  // Starting -> Failed: not ready in time.
  CallbackEngine late(ecm, 500ms);
  EXPECT_EQ(ecm.wait_for_status(late.engine.id, S::FAILED).status, S::FAILED);
  // Available -> Failed: exited on its own with a failure.
  auto crash = ecm.launch(shell_request("alice", "sleep 0.2; exit 3"));
  EXPECT_EQ(crash.status, S::RUNNING);
  auto crashed = ecm.wait_for_status(crash.id, S::FAILED);
  EXPECT_EQ(crashed.exit_code, 3);
  // Available -> Success: exited 0 on its own.
  auto done = ecm.launch(shell_request("alice", "sleep 0.2"));
  EXPECT_EQ(ecm.wait_for_status(done.id, S::SUCCESS).status, S::SUCCESS);
}

}  // namespace ecm::itest
