// Ports for engines (SDK 1.2): listening sockets handed over open (LISTEN_FDS), and ports reserved
// from the node's range until the engine ends. Through the shell plugin's `ports` and
// `reserved_ports` properties, on the real daemon.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <sstream>

#include "ecm_harness.hpp"

namespace ecm::itest {
namespace {

bool can_connect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// KEY=VALUE words the engine printed on its first stdout line.
std::map<std::string, std::string> printed(const api::EngineConn& e) {
  eventually([&] { return read_file(e.log_dir + "/stdout").find('\n') != std::string::npos; });
  std::istringstream in(read_file(e.log_dir + "/stdout"));
  std::map<std::string, std::string> out;
  std::string word;
  while (in >> word) {
    auto eq = word.find('=');
    if (eq != std::string::npos) out[word.substr(0, eq)] = word.substr(eq + 1);
  }
  return out;
}

api::LaunchRequest with_ports(const std::string& property, const std::string& names,
                              const std::string& command) {
  auto r = shell_request("alice", command);
  r.properties[property] = names;
  return r;
}

}  // namespace

TEST(Ports, SocketsAreHandedOverListeningWithTheSystemdConvention) {
  EcmProcess ecm;
  auto e = ecm.launch(with_ports(
      "ports", "http,admin",
      "echo fds=$LISTEN_FDS names=$LISTEN_FDNAMES pid=$LISTEN_PID self=$$ http=$ECM_PORT_http "
      "admin=$ECM_PORT_admin fd3=$(readlink /proc/self/fd/3 | cut -c1-7) "
      "fd5=$(readlink /proc/self/fd/5 || echo none); sleep 600"));
  auto env = printed(e);
  EXPECT_EQ(env["fds"], "2");
  EXPECT_EQ(env["names"], "http:admin");
  EXPECT_EQ(env["pid"], env["self"]) << "LISTEN_PID is the engine's own pid";
  EXPECT_EQ(env["pid"], std::to_string(e.pid));
  EXPECT_EQ(env["fd3"], "socket:");
  EXPECT_EQ(env["fd5"], "none") << "no other descriptor of the daemon leaks in";
  ASSERT_EQ(e.ports.size(), 2u);
  EXPECT_EQ(env["http"], std::to_string(e.ports.at("http")));
  EXPECT_EQ(env["admin"], std::to_string(e.ports.at("admin")));
  // Already listening: a client can connect before the engine ever calls accept().
  EXPECT_TRUE(can_connect(e.ports.at("http")));

  api::StopRequest stop;
  stop.__set_engine_id(e.id);
  api::StopResult result;
  ecm.client().stopEngineConn(result, stop);
  ecm.wait_for_status(e.id, api::EngineStatus::SUCCESS);
  // The ECM kept no copy: with the engine gone, nobody listens there any more.
  EXPECT_TRUE(eventually([&] { return !can_connect(e.ports.at("http")); }));
}

TEST(Ports, ReadinessCanWaitForANamedPort) {
  EcmProcess ecm;
  auto r = with_ports("ports", "http", "sleep 600");
  r.properties["ready_when"] = "port:http";
  auto e = ecm.launch(r);
  // The socket listens from the start, so the rule holds at once.
  auto ready = ecm.wait_for_status(e.id, api::EngineStatus::RUNNING, 10s);
  EXPECT_EQ(ready.status, api::EngineStatus::RUNNING);
}

TEST(Ports, ReservedPortsComeFromTheRangeAndAreHeldUntilTheEngineEnds) {
  EcmOptions o;
  o.extra_toml = "[ports]\nrange = \"40710-40711\"\n";
  EcmProcess ecm(o);
  const std::string cmd = "echo port=$ECM_PORT_main; sleep 600";
  auto a = ecm.launch(with_ports("reserved_ports", "main", cmd));
  auto b = ecm.launch(with_ports("reserved_ports", "main", cmd));
  const int pa = a.ports.at("main");
  const int pb = b.ports.at("main");
  EXPECT_NE(pa, pb);
  for (int p : {pa, pb})
    EXPECT_TRUE(p == 40710 || p == 40711) << p;
  EXPECT_EQ(printed(a)["port"], std::to_string(pa));

  // The range is exhausted: refused, naming ports, and nothing is left behind.
  auto refused = ecm_error_of([&] { ecm.launch(with_ports("reserved_ports", "main", cmd)); });
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->code, api::ErrorCode::INSUFFICIENT_RESOURCES);
  EXPECT_NE(refused->message.find("ports"), std::string::npos) << refused->message;
  api::NodeResources res;
  ecm.client().getResources(res);
  EXPECT_EQ(res.used.instances + res.locked.instances, 2);

  // Once `a` has ended its port is free again.
  api::StopRequest stop;
  stop.__set_engine_id(a.id);
  api::StopResult result;
  ecm.client().stopEngineConn(result, stop);
  ecm.wait_for_status(a.id, api::EngineStatus::SUCCESS);
  auto c = ecm.launch(with_ports("reserved_ports", "main", cmd));
  EXPECT_EQ(c.ports.at("main"), pa);
}

TEST(Ports, ReservedPortWithoutARangeFailsClearly) {
  EcmProcess ecm;
  auto err = ecm_error_of([&] { ecm.launch(with_ports("reserved_ports", "main", "sleep 600")); });
  ASSERT_TRUE(err);
  EXPECT_EQ(err->code, api::ErrorCode::LAUNCH_FAILED);
  EXPECT_NE(err->message.find("no [ports] range"), std::string::npos) << err->message;
}

TEST(Ports, BadPortNamesFromThePluginAreRefused) {
  EcmProcess ecm;
  for (const std::string names : {"bad-name", "a,a", "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q"}) {
    auto err = ecm_error_of([&] { ecm.launch(with_ports("ports", names, "sleep 600")); });
    ASSERT_TRUE(err) << names;
    EXPECT_EQ(err->code, api::ErrorCode::PLUGIN_FAILED) << names;
  }
  api::NodeResources res;
  ecm.client().getResources(res);
  EXPECT_EQ(res.locked.instances, 0);
  EXPECT_EQ(res.used.instances, 0);
}

}  // namespace ecm::itest
