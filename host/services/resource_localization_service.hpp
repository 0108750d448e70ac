// ResourceLocalizationService: the resources an engine needs, fetched through the localizer plugin
// for their URI scheme (an engine type's own localizer first), verified against their SHA-256,
// unpacked when asked, kept in the node's content-addressed cache and linked (read-only) into the
// engine's work dir. Concurrent launches asking for the same resource fetch it once.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "ecm/sdk/event.hpp"
#include "ecm/sdk/localizer.hpp"
#include "localization/archive_unpacker.hpp"
#include "localization/resource_cache.hpp"
#include "plugins/plugin_registry.hpp"

namespace ecm::host {

struct LocalizationSettings {
  // Remote resources without a sha256 are refused unless this is set (file:// never needs one).
  bool allow_unverified = false;
  UnpackLimits unpack_limits{std::uint64_t{4} << 30, 100000};
};

// The engine a localization is for.
struct LocalizationTarget {
  std::string engine_id;
  std::string user;
  std::string engine_type;
  // Trusted: the links are made below it without following any symlink.
  std::filesystem::path work_root;
  std::filesystem::path work_dir;  // the engine's own, under work_root
};

class ResourceLocalizationService {
 public:
  // The cache entries an engine's links point into; they stay while the engine holds them.
  using Holdings = std::vector<ResourceCache::Lease>;

  ResourceLocalizationService(LocalizationSettings settings, PluginRegistry& registry,
                              ResourceCache& cache);

  void set_event_sink(std::function<void(sdk::Event)> sink) { event_sink_ = std::move(sink); }
  // Fetches in flight are told they are cancelled (FetchProgress::cancelled), and new ones fail.
  void stop() { stopping_ = true; }

  // Checks `specs` for `engine_type` without fetching anything: a URI with a scheme some
  // localizer serves, a well-formed sha256 (required for remote schemes unless allow_unverified),
  // names safe and unique. Fills in default names. Throws EcmException(kInvalidRequest).
  void validate(std::vector<sdk::ResourceSpec>& specs, const std::string& engine_type) const;

  // Fetches or finds each resource and links it into target.work_dir under its name. Throws
  // EcmException(kLocalizationFailed) naming the resource; the links made are removed and the
  // entries released (the cache keeps what it verified: it is good for the next launch).
  Holdings localize(const LocalizationTarget& target, const std::vector<sdk::ResourceSpec>& specs);

 private:
  struct Flight;
  ResourceCache::Lease localize_one(const LocalizationTarget& target,
                                    const sdk::ResourceSpec& spec);
  CacheKey fetch_into_cache(const LocalizationTarget& target, const sdk::ResourceSpec& spec,
                            const std::string& owner, std::optional<ResourceCache::Lease>& lease);
  void publish(const LocalizationTarget& target, const sdk::ResourceSpec& spec,
               const std::string& message) const;

  LocalizationSettings settings_;
  PluginRegistry& registry_;
  ResourceCache& cache_;
  std::function<void(sdk::Event)> event_sink_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  // Fetches in flight, by what identifies the result (the cache key, or the URI when no checksum
  // is known in advance): a second launch waits for the first fetch instead of starting its own.
  std::map<std::string, std::shared_future<CacheKey>> in_flight_;
};

// "https" for "https://host/x"; empty when `uri` has no valid scheme.
std::string uri_scheme(const std::string& uri);

}  // namespace ecm::host
