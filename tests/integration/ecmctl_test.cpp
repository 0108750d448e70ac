// ecmctl against the real daemon.
#include <signal.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "ecm_harness.hpp"

namespace ecm::itest {
namespace {

namespace json = boost::json;

json::value parse(const std::string& text) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  EXPECT_FALSE(ec) << "not JSON: " << text;
  return v;
}

std::string str(const json::value& v) {
  return v.is_string() ? std::string(v.as_string()) : "<not a string: " + json::serialize(v) + ">";
}

TEST(Ecmctl, LaunchListGetStop_JsonOutputDescribesTheEngine) {
  EcmProcess ecm;
  const auto launched =
      ecm.run_ecmctl({"launch", "shell", "--user", "alice", "--property",
                      "command=echo hi; sleep 600", "--ticket", "ctl-t1", "--json"});
  ASSERT_EQ(launched.exit_code, 0) << launched.err;
  const auto v = parse(launched.out);
  ASSERT_TRUE(v.is_object()) << launched.out;
  const auto& o = v.as_object();
  for (const char* key :
       {"id", "ticket_id", "status", "pid", "user", "engine_type", "work_dir", "exit_code"}) {
    EXPECT_TRUE(o.contains(key)) << key << " missing in " << launched.out;
  }
  ASSERT_TRUE(o.contains("id") && o.at("id").is_string()) << launched.out;
  const std::string id(o.at("id").as_string());
  ASSERT_TRUE(o.at("pid").is_int64()) << launched.out;
  ecm.track(static_cast<int>(o.at("pid").as_int64()));
  EXPECT_EQ(str(o.at("status")), "Running");
  EXPECT_EQ(str(o.at("user")), "alice");
  EXPECT_EQ(str(o.at("engine_type")), "shell");
  EXPECT_EQ(str(o.at("ticket_id")), "ctl-t1");
  EXPECT_TRUE(o.at("exit_code").is_null());
  EXPECT_EQ(str(o.at("work_dir")), (ecm.work_root() / "alice" / id).string());

  // The engine really is there.
  api::EngineConn got;
  ecm.client().getEngineConn(got, id);
  EXPECT_EQ(got.pid, o.at("pid").as_int64());
  EXPECT_TRUE(group_alive(got.pid));

  const auto listed = ecm.run_ecmctl({"--json", "list"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  const auto lv = parse(listed.out);
  ASSERT_TRUE(lv.is_array()) << listed.out;
  ASSERT_EQ(lv.as_array().size(), 1u);
  EXPECT_EQ(str(lv.as_array()[0].as_object().at("id")), id);

  const auto filtered = ecm.run_ecmctl({"list", "--user", "bob", "--json"});
  ASSERT_EQ(filtered.exit_code, 0) << filtered.err;
  EXPECT_TRUE(parse(filtered.out).as_array().empty()) << filtered.out;

  const auto one = ecm.run_ecmctl({"get", id, "--json"});
  ASSERT_EQ(one.exit_code, 0) << one.err;
  const auto gv = parse(one.out);
  ASSERT_TRUE(gv.is_object());
  EXPECT_EQ(str(gv.as_object().at("id")), id);
  EXPECT_EQ(str(gv.as_object().at("status")), "Running");

  const auto stopped = ecm.run_ecmctl({"stop", id, "--wait", "--json"});
  ASSERT_EQ(stopped.exit_code, 0) << stopped.err;
  const auto sv = parse(stopped.out);
  ASSERT_TRUE(sv.is_object());
  const auto& so = sv.as_object();
  EXPECT_EQ(str(so.at("id")), id);
  EXPECT_EQ(str(so.at("status")), "Success");
  EXPECT_EQ(json::serialize(so.at("exit_signal")), std::to_string(SIGTERM));
  EXPECT_EQ(json::serialize(so.at("already_ended")), "false");
  EXPECT_TRUE(wait_group_gone(got.pid));

  ecm.client().getEngineConn(got, id);
  EXPECT_EQ(got.status, api::EngineStatus::SUCCESS);
}

TEST(Ecmctl, Launch_RefusedByTheServerExitsNonZeroWithTheMessageOnStderrOnly) {
  EcmProcess ecm;
  const auto r = ecm.run_ecmctl(
      {"launch", "spark", "--user", "alice", "--property", "command=echo hi", "--json"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_NE(r.err.find("UNKNOWN_ENGINE_TYPE"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("unknown engine type 'spark'"), std::string::npos) << r.err;
  std::vector<api::EngineConn> all;
  ecm.client().listEngineConns(all, api::EngineConnFilter{});
  EXPECT_TRUE(all.empty());
}

TEST(Ecmctl, Get_UnknownIdExitsNonZeroWithNotFound) {
  EcmProcess ecm;
  const auto r = ecm.run_ecmctl({"get", "no-such-engine", "--json"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_NE(r.err.find("NOT_FOUND"), std::string::npos) << r.err;
}

TEST(Ecmctl, AnyCommand_UnreachableOrMalformedAddressExitsNonZero) {
  EcmProcess ecm;
  const auto address = ecm.address();
  // A control: the same command against the live daemon works.
  EXPECT_EQ(ecm.run_ecmctl_raw({"--address", address, "list", "--json"}).exit_code, 0);
  ASSERT_EQ(ecm.terminate_and_wait(), 0);

  // Nobody listens on the daemon's port once it is gone.
  const auto dead = ecm.run_ecmctl_raw({"--address", address, "list", "--json"});
  EXPECT_EQ(dead.exit_code, 3) << dead.err;
  EXPECT_TRUE(dead.out.empty()) << dead.out;
  EXPECT_NE(dead.err.find("cannot reach ECM at " + address), std::string::npos) << dead.err;

  const auto malformed = ecm.run_ecmctl_raw({"--address", "no-port-here", "list"});
  EXPECT_EQ(malformed.exit_code, 2) << malformed.err;
  EXPECT_TRUE(malformed.out.empty()) << malformed.out;
  EXPECT_NE(malformed.err.find("no-port-here"), std::string::npos) << malformed.err;
}

TEST(Ecmctl, Launch_MemoryAndCoresAreSentAndShown) {
  EcmProcess ecm;
  const auto r =
      ecm.run_ecmctl({"launch", "shell", "--user", "alice", "--property", "command=sleep 600",
                      "--memory", "256MiB", "--cores", "1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto v = parse(r.out);
  ASSERT_TRUE(v.is_object()) << r.out;
  const auto& o = v.as_object();
  ASSERT_TRUE(o.contains("pid") && o.at("pid").is_int64()) << r.out;
  ecm.track(static_cast<int>(o.at("pid").as_int64()));
  EXPECT_EQ(json::serialize(o.at("memory_bytes")), "268435456") << r.out;
  EXPECT_EQ(json::serialize(o.at("cores")), "1") << r.out;
  api::EngineConn got;
  ecm.client().getEngineConn(got, str(o.at("id")));
  EXPECT_EQ(got.memory_bytes, 268435456);
  EXPECT_EQ(got.cores, 1);

  const auto text = ecm.run_ecmctl({"get", str(o.at("id"))});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("256MiB"), std::string::npos) << text.out;
}

TEST(Ecmctl, Launch_BadMemoryOrCoresIsAUsageError) {
  EcmProcess ecm;
  for (const auto& [option, value] :
       std::vector<std::pair<std::string, std::string>>{{"--memory", "lots"},
                                                        {"--memory", "0B"},
                                                        {"--memory", "512"},
                                                        {"--cores", "0"},
                                                        {"--cores", "-1"},
                                                        {"--cores", "two"},
                                                        {"--cores", "1.5"},
                                                        {"--cores", "99999999999"}}) {
    SCOPED_TRACE(option + " " + value);
    const auto r = ecm.run_ecmctl(
        {"launch", "shell", "--user", "alice", "--property", "command=sleep 600", option, value});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_NE(r.err.find(option), std::string::npos) << r.err;
  }
  std::vector<api::EngineConn> all;
  ecm.client().listEngineConns(all, api::EngineConnFilter{});
  EXPECT_TRUE(all.empty());
}

TEST(Ecmctl, StopByUser_WaitJsonPrintsAnArrayOfThatUsersEngines) {
  EcmProcess ecm;
  std::vector<std::string> alice;
  for (int i = 0; i < 2; ++i)
    alice.push_back(ecm.launch(shell_request("alice", "sleep 600")).id);
  const auto bob = ecm.launch(shell_request("bob", "sleep 600"));

  const auto r = ecm.run_ecmctl({"stop", "--user", "alice", "--wait", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto v = parse(r.out);
  ASSERT_TRUE(v.is_array()) << r.out;
  std::vector<std::string> stopped;
  for (const auto& item : v.as_array()) {
    ASSERT_TRUE(item.is_object()) << r.out;
    const auto& o = item.as_object();
    stopped.push_back(str(o.at("id")));
    EXPECT_EQ(str(o.at("user")), "alice");
    EXPECT_EQ(str(o.at("status")), "Success") << r.out;
    EXPECT_EQ(json::serialize(o.at("already_ended")), "false");
  }
  std::sort(stopped.begin(), stopped.end());
  std::sort(alice.begin(), alice.end());
  EXPECT_EQ(stopped, alice);
  api::EngineConn now;
  ecm.client().getEngineConn(now, bob.id);
  EXPECT_EQ(now.status, api::EngineStatus::RUNNING);

  // Nothing of alice's left: an empty array; the table form has its header.
  const auto none = ecm.run_ecmctl({"stop", "--user", "alice", "--json"});
  ASSERT_EQ(none.exit_code, 0) << none.err;
  EXPECT_EQ(none.out, "[]\n");
  const auto table = ecm.run_ecmctl({"stop", "--type", "shell", "--force", "--wait"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("ID"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find(bob.id), std::string::npos) << table.out;
  ecm.client().getEngineConn(now, bob.id);
  EXPECT_EQ(now.status, api::EngineStatus::SUCCESS) << "a requested stop ends as Success";
  EXPECT_EQ(now.exit_signal, SIGKILL);
}

TEST(Ecmctl, Stop_IdWithUserOrTypeOrNeitherIsAUsageError) {
  EcmProcess ecm;
  const auto e = ecm.launch(shell_request("alice", "sleep 600"));
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"stop", e.id, "--user", "alice"},
                                             {"stop", e.id, "--type", "shell"},
                                             {"stop"},
                                             {"stop", "--user", "alice", "--timeout", "5s"}}) {
    SCOPED_TRACE(args.size());
    const auto r = ecm.run_ecmctl(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
  api::EngineConn now;
  ecm.client().getEngineConn(now, e.id);
  EXPECT_EQ(now.status, api::EngineStatus::RUNNING);
}

TEST(Ecmctl, Resources_JsonMatchesGetResourcesAndTheTableHasEveryRow) {
  EcmOptions o;
  o.extra_toml = "[resources]\nmemory = \"4GiB\"\ncores = 8\ninstances = 10\n";
  EcmProcess ecm(o);
  auto launch = shell_request("alice", "sleep 600");
  launch.__set_memory_bytes(256 * 1024 * 1024);
  launch.__set_cores(2);
  ecm.launch(launch);

  const auto r = ecm.run_ecmctl({"resources", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto v = parse(r.out);
  ASSERT_TRUE(v.is_object()) << r.out;
  api::NodeResources want;
  ecm.client().getResources(want);
  const auto& obj = v.as_object();
  auto check = [&](const char* key, const api::ResourceAmount& a) {
    SCOPED_TRACE(key);
    ASSERT_TRUE(obj.contains(key) && obj.at(key).is_object()) << r.out;
    const auto& x = obj.at(key).as_object();
    EXPECT_EQ(json::serialize(x.at("memory_bytes")), std::to_string(a.memory_bytes));
    EXPECT_EQ(json::serialize(x.at("cores")), std::to_string(a.cores));
    EXPECT_EQ(json::serialize(x.at("instances")), std::to_string(a.instances));
  };
  check("max", want.max);
  check("protected", want.protected_);
  check("locked", want.locked);
  check("used", want.used);
  check("left", want.left);
  EXPECT_EQ(want.used.memory_bytes, 256 * 1024 * 1024);
  EXPECT_EQ(want.max.cores, 8);

  const auto table = ecm.run_ecmctl({"resources"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  for (const char* word : {"MEMORY", "CORES", "INSTANCES", "max", "protected", "locked", "used",
                           "left", "4096MiB", "256MiB"}) {
    EXPECT_NE(table.out.find(word), std::string::npos) << word << " in\n" << table.out;
  }
}

}  // namespace
}  // namespace ecm::itest
