// Issue 7, "nobody gets in where they don't belong", on the real daemon over loopback: TLS on the
// main port (with and without client certificates), the shared token, logs by caller, and the
// Thrift message limits against oversized and malformed input.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TSocket.h>
#include <thrift/transport/TTransportException.h>

#include "ecm_harness.hpp"
#include "thrift/tls_socket_factory.hpp"

namespace ecm::itest {
namespace {

namespace fs = std::filesystem;
namespace at = ::apache::thrift;

// Runs the openssl CLI in `dir`; fails the test with its stderr when it does not succeed.
void openssl(const fs::path& dir, std::vector<std::string> args) {
  args.insert(args.begin(), "/usr/bin/openssl");
  const auto out = dir / "openssl.out";
  const auto err = dir / "openssl.err";
  const int code = wait_child(spawn(args, out, err), 60s);
  ASSERT_EQ(code, 0) << args[1] << ": " << read_file(err);
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}

// Test certificates made at test time: a CA, a server certificate for 127.0.0.1 / localhost, a
// client certificate from that CA, and a second CA with a client certificate of its own.
class TestPki {
 public:
  TestPki() {
    std::string templ = (fs::temp_directory_path() / "ecm-pki-XXXXXX").string();
    if (mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp");
    dir_ = templ;
    make_ca("ca");
    make_ca("other-ca");
    make_cert("ca", "server", "localhost",
              "subjectAltName = IP:127.0.0.1, DNS:localhost\nextendedKeyUsage = serverAuth\n");
    make_cert("ca", "client", "admin", "extendedKeyUsage = clientAuth\n");
    make_cert("other-ca", "stranger", "stranger", "extendedKeyUsage = clientAuth\n");
  }
  ~TestPki() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;

  std::string pem(const std::string& name) const { return (dir_ / (name + ".pem")).string(); }
  std::string key(const std::string& name) const { return (dir_ / (name + ".key")).string(); }
  const fs::path& dir() const { return dir_; }

 private:
  void make_ca(const std::string& name) {
    openssl(dir_, {"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                   "-nodes", "-keyout", key(name), "-out", pem(name), "-days", "2", "-subj",
                   "/CN=ECM test " + name, "-addext", "basicConstraints=critical,CA:TRUE",
                   "-addext", "keyUsage=critical,keyCertSign,cRLSign"});
  }
  void make_cert(const std::string& ca, const std::string& name, const std::string& cn,
                 const std::string& extensions) {
    const auto csr = (dir_ / (name + ".csr")).string();
    const auto ext = (dir_ / (name + ".ext")).string();
    write_text(ext, "basicConstraints = CA:FALSE\n" + extensions);
    openssl(dir_, {"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                   "-keyout", key(name), "-out", csr, "-subj", "/CN=" + cn});
    openssl(dir_, {"x509", "-req", "-in", csr, "-CA", pem(ca), "-CAkey", key(ca), "-set_serial",
                   std::to_string(++serial_), "-days", "2", "-out", pem(name), "-extfile", ext});
  }

  fs::path dir_;
  int serial_ = 1;
};

// The harness writes [server] itself: these keys go into it before the daemon starts.
void add_server_keys(EcmProcess& ecm, const std::string& keys) {
  auto text = read_file(ecm.config_path());
  const auto at = text.find("[server]\n");
  ASSERT_NE(at, std::string::npos);
  text.insert(at + 9, keys);
  ecm.write_config(text);
}

std::string toml_path(const std::string& key, const std::string& path) {
  return key + " = \"" + path + "\"\n";
}

EcmOptions options() {
  EcmOptions o;
  o.stop_on_shutdown = true;  // the harness cannot list engines through TLS or the token
  return o;
}

// A client of the main service over TLS, as an RM would open one.
class TlsClient {
 public:
  TlsClient(int port, const std::string& ca, const std::string& cert = "",
            const std::string& key = "")
      : tls_(std::make_shared<host::TlsSocketFactory>()) {
    tls_->require_peer_signed_by(ca, "ca");
    if (!cert.empty()) tls_->use_certificate(cert, "cert", key, "key");
    auto socket = tls_->createSocket("127.0.0.1", port);
    socket->setRecvTimeout(10000);
    socket->setSendTimeout(10000);
    transport_ = std::make_shared<at::transport::TBufferedTransport>(socket);
    transport_->open();
    client_ = std::make_unique<api::EngineConnManagerServiceClient>(
        std::make_shared<at::protocol::TBinaryProtocol>(transport_));
  }
  api::EngineConnManagerServiceClient* operator->() { return client_.get(); }

 private:
  std::shared_ptr<host::TlsSocketFactory> tls_;
  std::shared_ptr<at::transport::TTransport> transport_;
  std::unique_ptr<api::EngineConnManagerServiceClient> client_;
};

std::vector<api::EngineConn> list_all(api::EngineConnManagerServiceClient& c) {
  std::vector<api::EngineConn> all;
  c.listEngineConns(all, api::EngineConnFilter{});
  return all;
}

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // OpenSSL writes with write(2): a server that refused us would otherwise end the test.
    ::signal(SIGPIPE, SIG_IGN);
    pki_ = new TestPki();
  }
  static void TearDownTestSuite() {
    delete pki_;
    pki_ = nullptr;
  }
  static TestPki* pki_;
};
TestPki* TlsTest::pki_ = nullptr;

TEST_F(TlsTest, ServerCertOnly_TlsClientsServed_PlainClientsRefused) {
  EcmProcess ecm(options(), false);
  add_server_keys(
      ecm, toml_path("tls_cert", pki_->pem("server")) + toml_path("tls_key", pki_->key("server")));
  ecm.start();

  auto ok = ecm.run_ecmctl({"--tls-ca", pki_->pem("ca"), "list"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("ID"), std::string::npos) << ok.out;

  TlsClient client(std::stoi(ecm.address().substr(ecm.address().rfind(':') + 1)), pki_->pem("ca"));
  EXPECT_TRUE(list_all(*client.operator->()).empty());

  // A plain client gets no answer: the server expects a TLS handshake.
  auto plain = ecm.run_ecmctl({"list"});
  EXPECT_EQ(plain.exit_code, 3) << plain.err;
  auto raw = ecm.connect();
  EXPECT_THROW(list_all(**raw), at::transport::TTransportException);

  // A server certificate another CA signed is not trusted.
  auto untrusted = ecm.run_ecmctl({"--tls-ca", pki_->pem("other-ca"), "list"});
  EXPECT_EQ(untrusted.exit_code, 3) << untrusted.err;
  EXPECT_NE(untrusted.err.find("certificate verify failed"), std::string::npos) << untrusted.err;

  // Still serving after all of that.
  EXPECT_EQ(ecm.run_ecmctl({"--tls-ca", pki_->pem("ca"), "health"}).exit_code, 0);
}

TEST_F(TlsTest, ClientCa_RequiresACertificateThatCaSigned) {
  EcmProcess ecm(options(), false);
  add_server_keys(ecm, toml_path("tls_cert", pki_->pem("server")) +
                           toml_path("tls_key", pki_->key("server")) +
                           toml_path("tls_client_ca", pki_->pem("ca")));
  ecm.start();

  auto none = ecm.run_ecmctl({"--tls-ca", pki_->pem("ca"), "list"});
  EXPECT_NE(none.exit_code, 0);
  EXPECT_NE(none.err.find("cannot reach ECM"), std::string::npos) << none.err;

  auto signed_by_ca =
      ecm.run_ecmctl({"--tls-ca", pki_->pem("ca"), "--tls-cert", pki_->pem("client"), "--tls-key",
                      pki_->key("client"), "list"});
  EXPECT_EQ(signed_by_ca.exit_code, 0) << signed_by_ca.err;

  auto stranger = ecm.run_ecmctl({"--tls-ca", pki_->pem("ca"), "--tls-cert", pki_->pem("stranger"),
                                  "--tls-key", pki_->key("stranger"), "list"});
  EXPECT_NE(stranger.exit_code, 0);
  EXPECT_NE(stranger.err.find("cannot reach ECM"), std::string::npos) << stranger.err;

  const int port = std::stoi(ecm.address().substr(ecm.address().rfind(':') + 1));
  EXPECT_ANY_THROW({
    TlsClient c(port, pki_->pem("ca"));
    list_all(*c.operator->());
  });
  TlsClient admin(port, pki_->pem("ca"), pki_->pem("client"), pki_->key("client"));
  EXPECT_TRUE(list_all(*admin.operator->()).empty());
}

TEST_F(TlsTest, UnusableCertificateOrKeyRefusesTheStart) {
  EcmProcess garbage(options(), false);
  write_text(garbage.dir() / "bad.pem", "not a certificate\n");
  add_server_keys(garbage, toml_path("tls_cert", (garbage.dir() / "bad.pem").string()) +
                               toml_path("tls_key", pki_->key("server")));
  auto r = garbage.start_expecting_failure();
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot start: [server] tls_cert " + (garbage.dir() / "bad.pem").string()),
            std::string::npos)
      << r.err;

  EcmProcess wrong_key(options(), false);
  add_server_keys(wrong_key, toml_path("tls_cert", pki_->pem("server")) +
                                 toml_path("tls_key", pki_->key("client")));
  r = wrong_key.start_expecting_failure();
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot start: [server] tls_key " + pki_->key("client") + ": "),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("key values mismatch"), std::string::npos) << r.err;

  EcmProcess missing_ca(options(), false);
  add_server_keys(missing_ca, toml_path("tls_cert", pki_->pem("server")) +
                                  toml_path("tls_key", pki_->key("server")) +
                                  toml_path("tls_client_ca", "/nonexistent/ca.pem"));
  r = missing_ca.start_expecting_failure();
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("[server] tls_client_ca /nonexistent/ca.pem: no such file"),
            std::string::npos)
      << r.err;
}

// --- the shared token -----------------------------------------------------------------------

constexpr char kToken[] = "0123456789abcdef-the-ecm-token";

class TokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ecm_ = std::make_unique<EcmProcess>(options(), false);
    token_file_ = ecm_->dir() / "token";
    write_text(token_file_, std::string(kToken) + "\n");
    fs::permissions(token_file_, fs::perms::owner_read | fs::perms::owner_write);
    wrong_file_ = ecm_->dir() / "wrong-token";
    write_text(wrong_file_, "not-the-token\n");
    add_server_keys(*ecm_, toml_path("token_file", token_file_.string()));
    ecm_->start();
  }

  std::unique_ptr<EcmProcess> ecm_;
  fs::path token_file_;
  fs::path wrong_file_;
};

TEST_F(TokenTest, CallsBeforeAuthenticateAreRefusedAndDoNothing) {
  auto c = ecm_->connect();
  auto launch = ecm_error_of([&] {
    api::EngineConn e;
    (*c)->launchEngineConn(e, shell_request("alice", "sleep 600"));
  });
  ASSERT_TRUE(launch);
  EXPECT_EQ(launch->code, api::ErrorCode::UNAUTHENTICATED);
  EXPECT_NE(launch->message.find("authenticate"), std::string::npos) << launch->message;
  auto list = ecm_error_of([&] { list_all(**c); });
  ASSERT_TRUE(list);
  EXPECT_EQ(list->code, api::ErrorCode::UNAUTHENTICATED);

  // A wrong token is refused, and logged with where it came from.
  auto wrong = ecm_error_of([&] { (*c)->authenticate("not-the-token"); });
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->code, api::ErrorCode::UNAUTHENTICATED);
  EXPECT_TRUE(ecm_error_of([&] { list_all(**c); }));
  EXPECT_TRUE(eventually([&] {
    return ecm_->daemon_stderr().find("wrong token from 127.0.0.1:") != std::string::npos;
  }));

  // The right one opens this connection; nothing was launched before it.
  (*c)->authenticate(kToken);
  EXPECT_TRUE(list_all(**c).empty());
  EXPECT_TRUE(tree(ecm_->work_root()).empty());
  api::EngineConn e;
  (*c)->launchEngineConn(e, shell_request("alice", "sleep 600"));
  ecm_->track(e.pid);
  EXPECT_EQ(list_all(**c).size(), 1u);

  // Only this connection: another one starts unauthenticated.
  auto other = ecm_->connect();
  auto refused = ecm_error_of([&] { list_all(**other); });
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->code, api::ErrorCode::UNAUTHENTICATED);
  // A wrong token after the right one closes the door again.
  EXPECT_TRUE(ecm_error_of([&] { (*c)->authenticate("nope"); }));
  EXPECT_TRUE(ecm_error_of([&] { list_all(**c); }));
}

TEST_F(TokenTest, EcmctlWithTheTokenFile) {
  auto none = ecm_->run_ecmctl({"list"});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.err.find("UNAUTHENTICATED"), std::string::npos) << none.err;
  EXPECT_NE(none.err.find("--token-file"), std::string::npos) << none.err;

  auto wrong = ecm_->run_ecmctl({"--token-file", wrong_file_.string(), "list"});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_NE(wrong.err.find("UNAUTHENTICATED: wrong token"), std::string::npos) << wrong.err;

  auto launched =
      ecm_->run_ecmctl({"--token-file", token_file_.string(), "launch", "shell", "--user", "alice",
                        "--property", "command=sleep 600", "--json"});
  ASSERT_EQ(launched.exit_code, 0) << launched.err;
  auto list = ecm_->run_ecmctl({"list", "--token-file", token_file_.string(), "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("\"alice\""), std::string::npos) << list.out;

  // The environment stands in for the option.
  ::setenv("ECMCTL_TOKEN_FILE", token_file_.string().c_str(), 1);
  auto from_env = ecm_->run_ecmctl({"resources"});
  ::unsetenv("ECMCTL_TOKEN_FILE");
  EXPECT_EQ(from_env.exit_code, 0) << from_env.err;

  auto missing = ecm_->run_ecmctl({"--token-file", "/nonexistent/token", "list"});
  EXPECT_EQ(missing.exit_code, 2) << missing.err;

  auto stop =
      ecm_->run_ecmctl({"--token-file", token_file_.string(), "stop", "--user", "alice", "--wait"});
  EXPECT_EQ(stop.exit_code, 0) << stop.err;
}

TEST(TokenFile, ReadableByOthersRefusesTheStart) {
  EcmProcess ecm(options(), false);
  const auto file = ecm.dir() / "token";
  write_text(file, std::string(kToken) + "\n");
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                            fs::perms::others_read);
  add_server_keys(ecm, toml_path("token_file", file.string()));
  auto r = ecm.start_expecting_failure();
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("server.token_file: " + file.string() + ": mode 0644"), std::string::npos)
      << r.err;
}

// --- logs by caller ---------------------------------------------------------------------------

TEST(LogsByCaller, OnlyTheEnginesOwnUserReadsItsLog) {
  EcmProcess ecm(options());
  auto e = ecm.launch(shell_request("alice", "echo hello from alice; sleep 600"));
  const auto stdout_file = e.log_dir + "/stdout";
  ASSERT_TRUE(
      eventually([&] { return read_file(stdout_file).find("hello") != std::string::npos; }));

  api::LogRequest r;
  r.__set_engine_id(e.id);
  r.__set_caller("alice");
  api::LogPage page;
  ecm.client().getEngineLog(page, r);
  ASSERT_EQ(page.lines.size(), 1u);
  EXPECT_EQ(page.lines[0], "hello from alice");

  r.__set_caller("bob");
  auto refused = ecm_error_of([&] { ecm.client().getEngineLog(page, r); });
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->code, api::ErrorCode::PERMISSION_DENIED);
  r.__set_caller("");
  auto empty = ecm_error_of([&] { ecm.client().getEngineLog(page, r); });
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->code, api::ErrorCode::INVALID_REQUEST);

  auto own = ecm.run_ecmctl({"logs", e.id, "--caller", "alice"});
  EXPECT_EQ(own.exit_code, 0) << own.err;
  EXPECT_EQ(own.out, "hello from alice\n");
  auto other = ecm.run_ecmctl({"logs", e.id, "--caller", "bob"});
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_NE(other.err.find("PERMISSION_DENIED"), std::string::npos) << other.err;
  EXPECT_EQ(other.out, "");
}

// --- message limits ---------------------------------------------------------------------------

// A raw TCP connection to the daemon, for bytes no Thrift client would send.
class RawConnection {
 public:
  explicit RawConnection(int port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      throw std::runtime_error(std::string("connect: ") + std::strerror(errno));
    }
  }
  ~RawConnection() { ::close(fd_); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  // Sends what it can (the server may close before all of it arrived).
  void send(const std::string& bytes) {
    std::size_t off = 0;
    while (off < bytes.size()) {
      auto n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<std::size_t>(n);
    }
  }
  // True when the server closed the connection (EOF or reset) within `timeout`; the bytes it
  // sent before (an error reply) are skipped.
  bool closed_by_server(std::chrono::milliseconds timeout = 10s) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    char buf[4096];
    while (std::chrono::steady_clock::now() < until) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return true;
    }
    return false;
  }

 private:
  int fd_;
};

// Thrift binary encoding, big-endian, as TBinaryProtocol writes it.
std::string i32(std::int32_t v) {
  const auto u = htonl(static_cast<std::uint32_t>(v));
  return std::string(reinterpret_cast<const char*>(&u), 4);
}
std::string i16(std::int16_t v) {
  const auto u = htons(static_cast<std::uint16_t>(v));
  return std::string(reinterpret_cast<const char*>(&u), 2);
}
std::string call_header(const std::string& method) {
  return i32(static_cast<std::int32_t>(0x80010001)) +
         i32(static_cast<std::int32_t>(method.size())) + method + i32(1);
}

// VmHWM of a process: its peak resident set, in KiB.
long peak_rss_kib(pid_t pid) {
  std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

int port_of(const EcmProcess& ecm) {
  return std::stoi(ecm.address().substr(ecm.address().rfind(':') + 1));
}

TEST(ThriftLimits, OneGibStringLengthClosesTheConnectionWithoutAllocatingIt) {
  EcmProcess ecm(options());
  {
    // listEngineConns(filter{user: <1 GiB declared, 16 bytes sent>})
    RawConnection raw(port_of(ecm));
    raw.send(call_header("listEngineConns") + "\x0c" + i16(1) + "\x0b" + i16(1) + i32(1 << 30) +
             std::string(16, 'x'));
    EXPECT_TRUE(raw.closed_by_server());
  }
  {
    // The method name itself declared 1 GiB long.
    RawConnection raw(port_of(ecm));
    raw.send(i32(static_cast<std::int32_t>(0x80010001)) + i32(1 << 30) + "listEngineConns");
    EXPECT_TRUE(raw.closed_by_server());
  }
  {
    // A list of a billion structs (resources), declared.
    RawConnection raw(port_of(ecm));
    raw.send(call_header("launchEngineConn") + "\x0c" + i16(1) + "\x0f" + i16(11) + "\x0c" +
             i32(1'000'000'000));
    EXPECT_TRUE(raw.closed_by_server());
  }
  EXPECT_EQ(::kill(ecm.pid(), 0), 0);
  auto after = ecm.connect();
  EXPECT_TRUE(list_all(**after).empty());
  EXPECT_LT(peak_rss_kib(ecm.pid()), 256 * 1024) << "the daemon allocated what was declared";
}

TEST(ThriftLimits, RandomGarbageClosesTheConnectionAndTheDaemonServesOn) {
  EcmProcess ecm(options());
  std::mt19937 random(20261128);
  for (int i = 0; i < 20; ++i) {
    std::string bytes(static_cast<std::size_t>(1 + random() % 65536), '\0');
    for (auto& b : bytes)
      b = static_cast<char>(random());
    RawConnection raw(port_of(ecm));
    raw.send(bytes);
    EXPECT_TRUE(raw.closed_by_server()) << "garbage #" << i;
  }
  {
    // An HTTP request on the Thrift port.
    RawConnection raw(port_of(ecm));
    raw.send("GET / HTTP/1.1\r\nHost: ecm\r\n\r\n");
    EXPECT_TRUE(raw.closed_by_server());
  }
  EXPECT_EQ(::kill(ecm.pid(), 0), 0);
  EXPECT_TRUE(list_all(**ecm.connect()).empty());
  EXPECT_EQ(ecm.run_ecmctl({"health"}).exit_code, 0);
  EXPECT_LT(peak_rss_kib(ecm.pid()), 256 * 1024);
}

TEST(ThriftLimits, MaxMessageSizeBoundsOneMessageNotTheConnection) {
  EcmProcess ecm(options(), false);
  add_server_keys(ecm, "max_message_size = \"64KiB\"\n");
  ecm.start();

  // One string over the size.
  auto big = shell_request("alice", "sleep 600");
  big.properties["filler"] = std::string(100 * 1024, 'x');
  auto c1 = ecm.connect();
  EXPECT_THROW(
      {
        api::EngineConn e;
        (*c1)->launchEngineConn(e, big);
      },
      at::transport::TTransportException);

  // Strings each under it, over it together.
  auto many = shell_request("alice", "sleep 600");
  std::map<std::string, std::string> labels;
  for (int i = 0; i < 20; ++i)
    labels["label" + std::to_string(i)] = std::string(8 * 1024, 'x');
  many.__set_labels(labels);
  auto c2 = ecm.connect();
  EXPECT_THROW(
      {
        api::EngineConn e;
        (*c2)->launchEngineConn(e, many);
      },
      at::transport::TTransportException);
  EXPECT_TRUE(list_all(**ecm.connect()).empty());

  // Many messages under it on one connection, far over it in all.
  auto c3 = ecm.connect();
  api::EngineConnFilter filter;
  filter.__set_user(std::string(1024, 'u'));
  for (int i = 0; i < 200; ++i) {
    std::vector<api::EngineConn> out;
    ASSERT_NO_THROW((*c3)->listEngineConns(out, filter)) << "call #" << i;
  }
}

}  // namespace
}  // namespace ecm::itest
