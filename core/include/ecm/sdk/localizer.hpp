// Resources and resource localizers (SDK ABI 1.4). An engine names the material it needs (jars,
// environments, config bundles) as resources; the host fetches each through the localizer plugin
// for its URI scheme into its shared cache, verifies it, and links it into the engine's work dir.
// A localizer only fetches bytes into the one file the host names: the host owns the cache, the
// checksum check, unpacking and linking.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ecm/sdk/result.hpp"

namespace ecm::sdk {

// One resource an engine needs. A plugin creates these (LauncherPlugin::resources() returns them
// by value), so, like LaunchSpec, this struct never changes in a minor version: a new field
// needs a new struct and a new virtual function.
struct ResourceSpec {
  enum class Visibility {
    kPrivate,  // cached for its user only, never linked into another user's engine
    kPublic,   // one cached copy shared by every engine on the node
  };
  // "file:///srv/jars/a.jar", "https://repo/x.tar.gz", "bml://RESOURCE_ID/VERSION".
  std::string uri;
  // Expected SHA-256, 64 lowercase hex digits. Required for remote schemes unless the host's
  // config allows unverified resources; optional for file://.
  std::string sha256;
  // The name it gets in the engine's work dir: a safe relative name ([A-Za-z0-9._-]+, not "."
  // or ".."), unique within the engine. Empty: the last segment of the URI's path.
  std::string name;
  // A zip, tar or tar.gz unpacked (by the host) into a directory of that name.
  bool unpack = false;
  Visibility visibility = Visibility::kPrivate;
};

// What the host asks a localizer to fetch.
struct FetchRequest {
  std::string uri;
  std::string user;         // the engine's user (whom a service-side credential acts for)
  std::string engine_type;  // the engine the resource is for
  std::string sha256;       // expected, or empty; the host verifies it either way
  // The only file the localizer writes: an absolute path inside a staging dir the host made for
  // this fetch. A retry may find a partial file there from an earlier attempt (resume it or
  // truncate it). The host moves it into the cache after checking it.
  std::string destination;
};

// Told how far a fetch got; asked whether to go on.
class FetchProgress {
 public:
  virtual ~FetchProgress() = default;
  // The first `bytes` of the destination are written and final; `total` expected, 0 when unknown.
  // Cheap; call it after every block (the host hashes the file as it grows). A restart from zero
  // (a server that ignored a Range) reports the smaller count.
  virtual void progress(std::uint64_t bytes, std::uint64_t total) = 0;
  // True once the host gives up on this fetch (today: the ECM is stopping): stop
  // soon and return an error.
  virtual bool cancelled() const = 0;
};

// What a successful fetch produced.
struct FetchResult {
  std::uint64_t bytes = 0;  // size of the destination file
  // What the URI resolved to, when the localizer knows ("v000003" for a BML resource asked for
  // without a version); informational.
  std::string resolved;
};

// Why a fetch failed, for the host's error and its retry decision: kInvalidRequest (a bad URI for
// this scheme), kNotFound (the resource does not exist: no retry), kUnavailable (the service or
// network failed: the localizer already retried as its config says), kInternal (anything else).
inline Error not_found(std::string message) {
  return Error{ErrorKind::kNotFound, std::move(message)};
}
inline Error unavailable(std::string message) {
  return Error{ErrorKind::kUnavailable, std::move(message)};
}

class ResourceLocalizer {
 public:
  virtual ~ResourceLocalizer() = default;
  // URI schemes this localizer fetches ("http", "https"); lowercase.
  virtual std::vector<std::string> schemes() const = 0;
  // Engine types this localizer is bound to: for their resources it wins over the scheme's
  // default localizer. Empty: the default for its schemes.
  virtual std::vector<std::string> engine_types() const { return {}; }
  // Fetches request.uri into request.destination. Called from several threads at once, for
  // different resources: keep it free of shared mutable state, or lock it.
  virtual Result<FetchResult> fetch(const FetchRequest& request, FetchProgress& progress) const = 0;
  // ABI minor bumps append new virtual functions here, never above.
};

}  // namespace ecm::sdk
