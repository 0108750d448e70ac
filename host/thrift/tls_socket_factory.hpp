// Thrift's TSSLSocketFactory as the ECM and ecmctl use it: TLS 1.2 or later (Thrift 0.17's
// SSLTLS would accept 1.0), OpenSSL left to initialize itself (OpenSSL 3 does; Thrift's own
// init/cleanup would otherwise run when the last factory goes, under the http localizer's feet),
// and errors that name the file that could not be used.
#pragma once

#include <filesystem>
#include <string>

#include <thrift/transport/TSSLSocket.h>

namespace ecm::host {

class TlsSocketFactory : public ::apache::thrift::transport::TSSLSocketFactory {
 public:
  TlsSocketFactory();

  // Our certificate (PEM, the chain after it if any) and its private key (PEM, unencrypted);
  // `what` names them in errors ("[server] tls_cert", "--tls-cert"). Throws std::runtime_error
  // naming the file when one cannot be read or parsed, or the key is not the certificate's.
  void use_certificate(const std::filesystem::path& cert, const std::string& cert_what,
                       const std::filesystem::path& key, const std::string& key_what);
  // Verify the peer against the CA certificate(s) in `ca` (PEM) and require its certificate.
  // Throws std::runtime_error naming the file.
  void require_peer_signed_by(const std::filesystem::path& ca, const std::string& what);
};

}  // namespace ecm::host
