// Bad requests are refused with a typed error and leave no trace; tickets make launches idempotent.
#include <latch>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "ecm_harness.hpp"

namespace ecm::itest {
namespace {

namespace fs = std::filesystem;

// What the daemon holds and what is on disk: both must be unchanged by a refused request.
struct Snapshot {
  std::size_t engines = 0;
  std::vector<fs::path> files;
  bool operator==(const Snapshot&) const = default;
};

Snapshot snapshot(EcmProcess& ecm) {
  std::vector<api::EngineConn> all;
  ecm.client().listEngineConns(all, api::EngineConnFilter{});
  return {all.size(), tree(ecm.work_root())};
}

std::size_t entries(const fs::path& dir) {
  std::size_t n = 0;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    ++n;
  }
  return n;
}

// A daemon with one running engine already, so "unchanged" is not just "empty".
struct Daemon {
  explicit Daemon(EcmOptions o = {}) : ecm(std::move(o)) {
    ecm.launch(shell_request("alice", "sleep 600"));
  }
  EcmProcess ecm;
};

void expect_launch_refused(EcmProcess& ecm, const api::LaunchRequest& req,
                           api::ErrorCode::type code, const std::string& in_message) {
  const auto before = snapshot(ecm);
  auto error = ecm_error_of([&] {
    api::EngineConn e;
    ecm.client().launchEngineConn(e, req);
    if (e.__isset.pid && e.pid > 0) ecm.track(e.pid);
  });
  ASSERT_TRUE(error.has_value()) << "launch was accepted";
  EXPECT_TRUE(error->__isset.code);
  EXPECT_EQ(error->code, code) << error->message;
  EXPECT_NE(error->message.find(in_message), std::string::npos) << error->message;
  const auto after = snapshot(ecm);
  EXPECT_EQ(after.engines, before.engines);
  EXPECT_EQ(after.files, before.files);
}

TEST(BadInput, Launch_UnknownEngineTypeIsUnknownEngineTypeAndChangesNothing) {
  Daemon d;
  auto req = shell_request("alice", "echo hi");
  req.__set_engine_type("spark");
  expect_launch_refused(d.ecm, req, api::ErrorCode::UNKNOWN_ENGINE_TYPE, "spark");
}

TEST(BadInput, Launch_EmptyOrUnsafeUserIsInvalidRequestAndChangesNothing) {
  Daemon d;
  for (const std::string& user : {std::string(""), std::string("../x"), std::string("a\0b", 3),
                                  std::string("a/b"), std::string(".."), std::string("/etc")}) {
    SCOPED_TRACE("user '" + user + "'");
    expect_launch_refused(d.ecm, shell_request(user, "echo hi"), api::ErrorCode::INVALID_REQUEST,
                          "user");
  }
  // Nothing was made outside the work root either.
  EXPECT_FALSE(fs::exists(d.ecm.dir() / "x"));
}

TEST(BadInput, Launch_MissingOrEmptyCommandIsInvalidRequestAndChangesNothing) {
  Daemon d;
  auto missing = shell_request("alice", "unused");
  missing.properties.clear();
  expect_launch_refused(d.ecm, missing, api::ErrorCode::INVALID_REQUEST, "command");
  expect_launch_refused(d.ecm, shell_request("alice", ""), api::ErrorCode::INVALID_REQUEST,
                        "command");
}

TEST(BadInput, Launch_DisallowedShellIsInvalidRequestAndChangesNothing) {
  EcmOptions o;
  o.shell_toml = "allowed_shells = [\"/bin/sh\", \"/bin/bash\"]\n";
  Daemon d(o);
  auto req = shell_request("alice", "echo hi");
  req.properties["shell"] = "/usr/bin/python3";
  expect_launch_refused(d.ecm, req, api::ErrorCode::INVALID_REQUEST, "/usr/bin/python3");
  // An allowed one is accepted: the refusal above is about the shell, not the request.
  req.properties["shell"] = "/bin/bash";
  req.properties["command"] = "echo $BASH_VERSION; sleep 600";
  const auto e = d.ecm.launch(req);
  EXPECT_EQ(e.status, api::EngineStatus::RUNNING);
}

TEST(BadInput, Launch_DefaultConfigAllowsOnlyBinSh) {
  Daemon d;
  auto req = shell_request("alice", "echo hi");
  req.properties["shell"] = "/bin/bash";
  expect_launch_refused(d.ecm, req, api::ErrorCode::INVALID_REQUEST, "/bin/bash");
}

TEST(BadInput, Launch_EnvKeyWithEqualsIsInvalidRequestAndChangesNothing) {
  Daemon d;
  auto req = shell_request("alice", "echo hi");
  req.__set_env({{"A=B", "c"}});
  expect_launch_refused(d.ecm, req, api::ErrorCode::INVALID_REQUEST, "A=B");
  req.__set_env({{"", "c"}});
  expect_launch_refused(d.ecm, req, api::ErrorCode::INVALID_REQUEST, "env");
}

TEST(BadInput, GetAndStop_UnknownIdAreNotFoundAndChangeNothing) {
  Daemon d;
  const auto before = snapshot(d.ecm);
  auto get = ecm_error_of([&] {
    api::EngineConn e;
    d.ecm.client().getEngineConn(e, "no-such-engine");
  });
  ASSERT_TRUE(get.has_value());
  EXPECT_EQ(get->code, api::ErrorCode::NOT_FOUND);
  EXPECT_NE(get->message.find("no-such-engine"), std::string::npos);
  auto stop = ecm_error_of([&] {
    api::StopRequest r;
    r.__set_engine_id("no-such-engine");
    api::StopResult out;
    d.ecm.client().stopEngineConn(out, r);
  });
  ASSERT_TRUE(stop.has_value());
  EXPECT_EQ(stop->code, api::ErrorCode::NOT_FOUND);
  EXPECT_EQ(snapshot(d.ecm), before);
}

TEST(BadInput, Stop_EmptyIdIsInvalidRequestAndChangesNothing) {
  Daemon d;
  const auto before = snapshot(d.ecm);
  auto stop = ecm_error_of([&] {
    api::StopRequest r;
    r.__set_engine_id("");
    api::StopResult out;
    d.ecm.client().stopEngineConn(out, r);
  });
  ASSERT_TRUE(stop.has_value());
  EXPECT_EQ(stop->code, api::ErrorCode::INVALID_REQUEST);
  EXPECT_EQ(snapshot(d.ecm), before);
  std::vector<api::EngineConn> running;
  api::EngineConnFilter f;
  f.__set_status(api::EngineStatus::RUNNING);
  d.ecm.client().listEngineConns(running, f);
  EXPECT_EQ(running.size(), 1u);
}

TEST(Ticket, Launch_SameTicketTwiceReturnsTheSameEngineAndOneProcess) {
  EcmProcess ecm;
  auto req = shell_request("alice", "echo started; sleep 600");
  req.__set_ticket_id("rm-ticket-42");
  const auto first = ecm.launch(req);
  const auto second = ecm.launch(req);
  EXPECT_EQ(first.id, second.id);
  EXPECT_EQ(first.pid, second.pid);
  std::vector<api::EngineConn> all;
  ecm.client().listEngineConns(all, api::EngineConnFilter{});
  EXPECT_EQ(all.size(), 1u);
  // One work dir, and the command ran once.
  EXPECT_EQ(entries(ecm.work_root() / "alice"), 1u);
  EXPECT_TRUE(eventually([&] {
    return read_file(fs::path(first.log_dir) / "stdout").find("started") != std::string::npos;
  }));
  EXPECT_EQ(read_file(fs::path(first.log_dir) / "stdout"), "started\n");
  // A different ticket is a different engine.
  req.__set_ticket_id("rm-ticket-43");
  const auto third = ecm.launch(req);
  EXPECT_NE(third.id, first.id);
}

TEST(Ticket, Launch_EightConcurrentLaunchesWithOneTicketMakeOneEngine) {
  EcmProcess ecm;
  constexpr int kThreads = 8;
  auto req = shell_request("alice", "sleep 600");
  req.__set_ticket_id("rm-ticket-concurrent");
  std::vector<std::unique_ptr<EcmClient>> clients;
  for (int i = 0; i < kThreads; ++i)
    clients.push_back(ecm.connect());
  std::latch go(kThreads);
  std::mutex mu;
  std::vector<std::string> ids;
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      go.arrive_and_wait();
      try {
        api::EngineConn e;
        (*clients[i])->launchEngineConn(e, req);
        std::lock_guard lock(mu);
        ids.push_back(e.id);
        if (e.__isset.pid && e.pid > 0) ecm.track(e.pid);
      } catch (const std::exception& e) {
        std::lock_guard lock(mu);
        errors.push_back(e.what());
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_TRUE(errors.empty()) << (errors.empty() ? "" : errors.front());
  ASSERT_EQ(ids.size(), static_cast<std::size_t>(kThreads));
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 1u);
  std::vector<api::EngineConn> all;
  ecm.client().listEngineConns(all, api::EngineConnFilter{});
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].id, ids[0]);
  EXPECT_EQ(all[0].ticket_id, "rm-ticket-concurrent");
  // One work dir under the user's dir.
  EXPECT_EQ(entries(ecm.work_root() / "alice"), 1u);
  const auto running = ecm.wait_for_status(all[0].id, api::EngineStatus::RUNNING);
  EXPECT_EQ(running.status, api::EngineStatus::RUNNING);
  EXPECT_TRUE(group_alive(running.pid));
}

}  // namespace
}  // namespace ecm::itest
