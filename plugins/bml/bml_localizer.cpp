// The `bml` localizer (SDK 1.4): resources of Linkis's material library, named
// bml://RESOURCE_ID/VERSION or bml://RESOURCE_ID (the newest version), fetched from the BML REST
// API (/api/rest_j/v1/bml/download, getVersions) with a service token:
//   Token-Code: <token>   Token-User: <the engine's user>
// BML answers errors as a JSON envelope {"status": non-zero, "message": ...}; an unknown or
// deleted resource or version is kNotFound. Config: conf/plugins/bml.toml.
#include <ecm/sdk/sdk.hpp>

#include <algorithm>
#include <cctype>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "http_fetch.hpp"

namespace {

using namespace ecm::sdk;
namespace web = ecm::plugins::http;

constexpr const char* kApi = "/api/rest_j/v1/bml/";
constexpr std::size_t kMaxIdLength = 256;
// getVersions is read a page at a time (Linkis's default page holds 10).
constexpr unsigned kPageSize = 100;
constexpr unsigned kMaxPages = 1000;
constexpr std::size_t kVersionsLimit = 16 << 20;

[[noreturn]] void refuse(const std::string& message) {
  throw std::invalid_argument(message);
}

// Resource ids and versions are [A-Za-z0-9._-]+, without "..".
bool safe_name(const std::string& s) {
  if (s.empty() || s.size() > kMaxIdLength || s.find("..") != std::string::npos) return false;
  return std::all_of(s.begin(), s.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return std::isalnum(c) || c == '.' || c == '_' || c == '-';
  });
}

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// BML's messages for a resource or version that does not exist (or no longer does).
bool means_not_found(const std::string& message) {
  const std::string m = lower(message);
  for (const char* words : {"not exist", "doesn't exist", "not found", "no such", "invalid",
                            "deleted", "expired", "不存在", "无效", "已删除", "过期"}) {
    if (m.find(words) != std::string::npos) return true;
  }
  return false;
}

std::string text_of(const boost::json::value* v) {
  if (v == nullptr) return "";
  if (v->is_string()) return std::string(v->as_string().c_str(), v->as_string().size());
  if (v->is_null()) return "";
  return boost::json::serialize(*v);
}

// The error a BML JSON envelope carries, or nullopt when it is not one (or says status 0).
std::optional<Error> envelope_error(const web::CapturedResponse& r, const std::string& what,
                                    const std::string& call) {
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(r.body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto* status = v.as_object().if_contains("status");
  if (status == nullptr || !status->is_number()) return std::nullopt;
  const auto code = status->to_number<double>();
  if (code == 0) return std::nullopt;
  std::string message = text_of(v.as_object().if_contains("message"));
  if (message.empty()) message = "(no message)";
  const std::string text = what + ": BML " + call + " failed (status " + text_of(status) +
                           ", HTTP " + std::to_string(r.status) + "): " + message;
  if (r.status == 404 || r.status == 410 || means_not_found(message)) return not_found(text);
  if (r.status >= 500) return unavailable(text);
  return internal_error(text);
}

class BmlLocalizer final : public ResourceLocalizer {
 public:
  BmlLocalizer(web::ClientSettings settings, std::string base_url, std::string token)
      : client_(std::move(settings)), base_url_(std::move(base_url)), token_(std::move(token)) {}

  std::vector<std::string> schemes() const override { return {"bml"}; }

  Result<FetchResult> fetch(const FetchRequest& request, FetchProgress& progress) const override {
    const std::string& uri = request.uri;
    if (lower(uri.substr(0, 6)) != "bml://") return invalid_request(uri + ": not a bml:// URI");
    const std::string rest = uri.substr(6);
    const auto slash = rest.find('/');
    const std::string id = rest.substr(0, slash);
    const std::string version = slash == std::string::npos ? "" : rest.substr(slash + 1);
    if (!safe_name(id)) {
      return invalid_request(uri +
                             ": the resource id must be 1 to 256 of A-Z a-z 0-9 . _ - "
                             "(and no \"..\"); expected bml://RESOURCE_ID[/VERSION]");
    }
    if (slash != std::string::npos && !safe_name(version)) {
      return invalid_request(uri +
                             ": the version must be 1 to 256 of A-Z a-z 0-9 . _ - (and no "
                             "\"..\"), such as v000001; expected bml://RESOURCE_ID[/VERSION]");
    }
    if (request.user.empty() || !std::all_of(request.user.begin(), request.user.end(), [](char ch) {
          const auto c = static_cast<unsigned char>(ch);
          return c > 0x20 && c < 0x7f;
        })) {
      return invalid_request(uri + ": no valid user to download it for (Token-User)");
    }

    std::string resolved = version;
    if (resolved.empty()) {
      auto latest = newest_version(uri, id, request.user, progress);
      if (!latest.ok()) return latest.error();
      resolved = latest.value();
    }
    auto options = options_for(uri, request.user, "download");
    options.resume_existing = !request.sha256.empty();
    const std::string url = base_url_ + kApi + "download?resourceId=" + web::url_encode(id) +
                            "&version=" + web::url_encode(resolved);
    auto bytes = client_.download(url, options, request.destination, progress);
    if (!bytes.ok()) return bytes.error();
    FetchResult result;
    result.bytes = bytes.value();
    result.resolved = resolved;
    return result;
  }

 private:
  web::FetchOptions options_for(const std::string& uri, const std::string& user,
                                const std::string& call) const {
    web::FetchOptions options;
    options.headers = {{"Token-Code", token_}, {"Token-User", user}};
    options.secrets = {token_};
    options.what = uri;
    options.on_json = [uri, call](const web::CapturedResponse& r) {
      return envelope_error(r, uri, call);
    };
    return options;
  }

  // The newest version of `id`, from getVersions (every page of it).
  Result<std::string> newest_version(const std::string& uri, const std::string& id,
                                     const std::string& user, FetchProgress& progress) const {
    // getVersions' bytes are not the resource's: report no progress for them.
    class Quiet final : public FetchProgress {
     public:
      explicit Quiet(FetchProgress& outer) : outer_(outer) {}
      void progress(std::uint64_t, std::uint64_t) override {}
      bool cancelled() const override { return outer_.cancelled(); }

     private:
      FetchProgress& outer_;
    } quiet(progress);

    const auto options = options_for(uri, user, "getVersions");
    std::string newest;
    std::string previous_first;
    for (unsigned page = 1; page <= kMaxPages; ++page) {
      const std::string url = base_url_ + kApi + "getVersions?resourceId=" + web::url_encode(id) +
                              "&currentPage=" + std::to_string(page) +
                              "&pageSize=" + std::to_string(kPageSize);
      auto r = client_.get(url, options, kVersionsLimit, quiet);
      if (!r.ok()) return r.error();
      boost::system::error_code ec;
      const boost::json::value v = boost::json::parse(r.value().body, ec);
      const boost::json::value* versions = nullptr;
      if (!ec && v.is_object()) {
        if (const auto* data = v.as_object().if_contains("data"); data && data->is_object()) {
          if (const auto* rv = data->as_object().if_contains("ResourceVersions");
              rv && rv->is_object()) {
            versions = rv->as_object().if_contains("versions");
          }
        }
      }
      if (versions == nullptr || !versions->is_array()) {
        return internal_error(uri +
                              ": BML getVersions answered without data.ResourceVersions."
                              "versions (HTTP " +
                              std::to_string(r.value().status) + ")");
      }
      const auto& list = versions->as_array();
      std::string first;
      for (const auto& entry : list) {
        if (!entry.is_object()) continue;
        const std::string name = text_of(entry.as_object().if_contains("version"));
        if (!safe_name(name)) continue;
        if (first.empty()) first = name;
        // "v000010" > "v000009"; a longer number is a later one.
        if (newest.empty() || name.size() > newest.size() ||
            (name.size() == newest.size() && name > newest)) {
          newest = name;
        }
      }
      // The last page, or a server that ignores paging (the same page again).
      if (list.size() < kPageSize || first.empty() || first == previous_first) break;
      previous_first = first;
    }
    if (newest.empty()) return not_found(uri + ": BML lists no version of resource " + id);
    return newest;
  }

  web::HttpClient client_;
  std::string base_url_;  // scheme://host[:port][/prefix], no trailing slash
  std::string token_;
};

ResourceLocalizer* create_localizer(const PluginConfig& config) {
  web::check_known_keys(config, {"base_url", "token"});
  for (const char* key : {"base_url", "token"}) {
    if (config.lists.count(key) != 0) {
      refuse("'" + std::string(key) + "' must be a single value, not an array");
    }
  }
  const std::string base = config.get_or("base_url", "");
  if (base.empty()) {
    refuse("'base_url' is required: the Linkis gateway, such as \"http://gateway:9001\"");
  }
  std::string why;
  const auto url = web::parse_url(base, &why);
  if (!url) refuse("'base_url' = '" + base + "': " + why);
  if (!url->userinfo.empty()) {
    refuse("'base_url' must not hold credentials (user:password@): the token authenticates");
  }
  if (url->target.find('?') != std::string::npos) {
    refuse("'base_url' = '" + url->text() + "' must not have a query");
  }
  std::string path = url->target;
  while (!path.empty() && path.back() == '/')
    path.pop_back();

  const std::string token = config.get_or("token", "");
  if (token.empty()) {
    refuse("'token' is required: the BML service token sent as Token-Code (Linkis: BML-AUTH)");
  }
  if (!std::all_of(token.begin(), token.end(), [](char ch) {
        const auto c = static_cast<unsigned char>(ch);
        return c >= 0x20 && c < 0x7f;
      })) {
    refuse("'token' holds a control or non-ASCII character");  // never the token itself
  }
  return new BmlLocalizer(web::parse_client_settings(config), url->origin() + path, token);
}

const PluginDescriptor kDescriptor{
    ECM_SDK_DESCRIPTOR_HEAD, "bml", "1.0.0", kLocalizerKind, nullptr, nullptr, nullptr,
    &create_localizer};

}  // namespace

ECM_PLUGIN(kDescriptor)
