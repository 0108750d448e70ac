// ecmctl against the real daemon.
#include <signal.h>

#include <string>

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

}  // namespace
}  // namespace ecm::itest
