// The `http` localizer (SDK 1.4): http:// and https:// resources, fetched with the shared client
// of http_fetch.hpp (redirects, timeouts, retries with backoff, resumption with Range, TLS peer
// verification against the system CA store or ca_file). Config: conf/plugins/http.toml.
#include <ecm/sdk/sdk.hpp>

#include <stdexcept>
#include <string>
#include <vector>

#include "http_fetch.hpp"

namespace {

using namespace ecm::sdk;
namespace web = ecm::plugins::http;

class HttpLocalizer final : public ResourceLocalizer {
 public:
  explicit HttpLocalizer(web::ClientSettings settings) : client_(std::move(settings)) {}

  std::vector<std::string> schemes() const override { return {"http", "https"}; }

  Result<FetchResult> fetch(const FetchRequest& request, FetchProgress& progress) const override {
    web::FetchOptions options;
    // A partial file from an earlier attempt is resumed only when the host will check the result
    // against a SHA-256: without one, a stale prefix could not be told from the real thing.
    options.resume_existing = !request.sha256.empty();
    auto bytes = client_.download(request.uri, options, request.destination, progress);
    if (!bytes.ok()) return bytes.error();
    FetchResult result;
    result.bytes = bytes.value();
    return result;
  }

 private:
  web::HttpClient client_;
};

ResourceLocalizer* create_localizer(const PluginConfig& config) {
  web::check_known_keys(config, {});
  return new HttpLocalizer(web::parse_client_settings(config));
}

const PluginDescriptor kDescriptor{
    ECM_SDK_DESCRIPTOR_HEAD, "http", "1.0.0", kLocalizerKind, nullptr, nullptr, nullptr,
    &create_localizer};

}  // namespace

ECM_PLUGIN(kDescriptor)
