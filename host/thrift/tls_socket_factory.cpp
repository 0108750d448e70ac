#include "thrift/tls_socket_factory.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <stdexcept>

namespace ecm::host {
namespace {

namespace at = ::apache::thrift;

// Runs before TSSLSocketFactory's constructor, which would otherwise initialize OpenSSL the
// pre-1.1 way and clean it up when the last factory is destroyed.
at::transport::SSLProtocol self_initialized_openssl() {
  at::transport::TSSLSocketFactory::setManualOpenSSLInitialization(true);
  OPENSSL_init_ssl(0, nullptr);
  return at::transport::SSLTLS;
}

// Why `path` cannot be used: the file system's word when it cannot be read, else OpenSSL's.
std::string reason(const std::filesystem::path& path, const std::exception& e) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return "no such file";
  if (!std::filesystem::is_regular_file(path, ec)) return "not a regular file";
  return e.what();
}

template <class Fn>
void load(const std::filesystem::path& path, const std::string& what, Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    ERR_clear_error();
    throw std::runtime_error(what + " " + path.string() + ": " + reason(path, e));
  }
}

}  // namespace

TlsSocketFactory::TlsSocketFactory() : TSSLSocketFactory(self_initialized_openssl()) {
  // An encrypted key fails to load (getPassword() gives none) instead of OpenSSL asking the
  // terminal for a pass phrase.
  overrideDefaultPasswordCallback();
  if (SSL_CTX_set_min_proto_version(ctx_->get(), TLS1_2_VERSION) != 1) {
    throw std::runtime_error("OpenSSL refuses TLS 1.2 as the lowest version");
  }
}

void TlsSocketFactory::use_certificate(const std::filesystem::path& cert,
                                       const std::string& cert_what,
                                       const std::filesystem::path& key,
                                       const std::string& key_what) {
  load(cert, cert_what, [&] { loadCertificate(cert.c_str()); });
  load(key, key_what, [&] { loadPrivateKey(key.c_str()); });
  if (SSL_CTX_check_private_key(ctx_->get()) != 1) {
    ERR_clear_error();
    throw std::runtime_error(key_what + " " + key.string() + " is not the private key of " +
                             cert_what + " " + cert.string());
  }
}

void TlsSocketFactory::require_peer_signed_by(const std::filesystem::path& ca,
                                              const std::string& what) {
  load(ca, what, [&] { loadTrustedCertificates(ca.c_str()); });
  authenticate(true);
}

}  // namespace ecm::host
