#include "services/resource_localization_service.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <set>
#include <thread>

#include "ecm/core/errors.hpp"
#include "ecm/core/names.hpp"
#include "util/log.hpp"
#include "util/sha256.hpp"

namespace ecm::host {

using core::EcmException;
using core::ErrorCode;
namespace fs = std::filesystem;

namespace {

std::string label(const sdk::ResourceSpec& spec) {
  return "resource '" + spec.name + "' (" + spec.uri.substr(0, 512) + ")";
}

[[noreturn]] void failed(const sdk::ResourceSpec& spec, const std::string& why) {
  throw EcmException(ErrorCode::kLocalizationFailed, label(spec) + ": " + why);
}

[[noreturn]] void invalid(const std::string& why) {
  throw EcmException(ErrorCode::kInvalidRequest, why);
}

bool is_sha256(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// The last segment of the URI's path, without query or fragment: "a.jar" for
// "https://h/x/a.jar?sig=1".
std::string default_name(const std::string& uri) {
  std::string path = uri.substr(0, uri.find_first_of("?#"));
  while (!path.empty() && path.back() == '/')
    path.pop_back();
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Removes a fetch's staging dir however the fetch ends.
class StagingDir {
 public:
  explicit StagingDir(fs::path p) : path_(std::move(p)) {}
  ~StagingDir() {
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(path_, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      if (it->is_directory(ec) && !it->is_symlink(ec))
        fs::permissions(it->path(), fs::perms::owner_all, ec);
    }
    fs::remove_all(path_, ec);
  }
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Hashes the download while it is being written, so the check costs little after the last byte
// (a 200 MiB file hashed afterwards took a third of the time of a localization). The plugin's
// progress(bytes) says the first `bytes` are written (the SDK's promise); a count that goes back
// (a restart from zero) or a final size that differs gives up, and the file is hashed whole.
class FollowingHasher {
 public:
  explicit FollowingHasher(fs::path file) : file_(std::move(file)) {
    EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr);
    thread_ = std::thread([this] { loop(); });
  }
  ~FollowingHasher() {
    {
      std::lock_guard l(mu_);
      done_ = true;
      broken_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
    EVP_MD_CTX_free(ctx_);
  }
  void advance(std::uint64_t bytes) {
    bool wake = false;
    {
      std::lock_guard l(mu_);
      if (bytes < reported_) broken_ = true;
      reported_ = bytes;
      wake = broken_ || reported_ - notified_ >= (1u << 20);
      if (wake) notified_ = reported_;
    }
    if (wake) cv_.notify_one();
  }
  std::optional<std::string> finish(std::uint64_t size) {
    {
      std::lock_guard l(mu_);
      if (size < reported_) broken_ = true;
      reported_ = size;
      done_ = true;
    }
    cv_.notify_one();
    thread_.join();
    if (broken_ || hashed_ != size) return std::nullopt;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_, md, &n);
    return to_hex(md, n);
  }

 private:
  void loop() {
    std::vector<char> buf(1 << 20);
    int fd = -1;
    for (;;) {
      std::uint64_t target = 0;
      bool done = false;
      {
        std::unique_lock l(mu_);
        cv_.wait(l, [&] { return broken_ || done_ || reported_ - hashed_ >= (1u << 20); });
        if (broken_) break;
        target = reported_;
        done = done_;
      }
      if (fd < 0) fd = ::open(file_.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        std::lock_guard l(mu_);
        broken_ = true;
        break;
      }
      while (hashed_ < target) {
        const auto want =
            static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), target - hashed_));
        const ssize_t n = ::pread(fd, buf.data(), want, static_cast<off_t>(hashed_));
        if (n <= 0) {
          std::lock_guard l(mu_);
          broken_ = true;
          break;
        }
        EVP_DigestUpdate(ctx_, buf.data(), static_cast<std::size_t>(n));
        hashed_ += static_cast<std::uint64_t>(n);
      }
      if (done) break;
    }
    if (fd >= 0) ::close(fd);
  }
  fs::path file_;
  EVP_MD_CTX* ctx_ = EVP_MD_CTX_new();
  std::mutex mu_;
  std::condition_variable cv_;
  std::uint64_t reported_ = 0, notified_ = 0;
  std::uint64_t hashed_ = 0;  // the thread's; read after join
  bool done_ = false, broken_ = false;
  std::thread thread_;
};

// The host's side of a fetch's progress: reported (as a resource_localized event) at most once a
// second, so a plugin may call it for every block; cancelled once the ECM stops.
class Progress final : public sdk::FetchProgress {
 public:
  using Report = std::function<void(std::uint64_t bytes, std::uint64_t total)>;
  Progress(const std::atomic<bool>& stopping, Report report, FollowingHasher* hasher)
      : stopping_(stopping),
        report_(std::move(report)),
        last_(std::chrono::steady_clock::now()),
        hasher_(hasher) {}
  void progress(std::uint64_t bytes, std::uint64_t total) override {
    hasher_->advance(bytes);
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::seconds(1)) return;
    last_ = now;
    report_(bytes, total);
  }
  bool cancelled() const override { return stopping_.load(); }

 private:
  const std::atomic<bool>& stopping_;
  Report report_;
  std::chrono::steady_clock::time_point last_;
  FollowingHasher* hasher_;
};

}  // namespace

std::string uri_scheme(const std::string& uri) {
  const auto colon = uri.find(':');
  if (colon == std::string::npos || colon == 0 || colon > 32) return "";
  std::string scheme = uri.substr(0, colon);
  for (auto& c : scheme) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
    if (!ok) return "";
  }
  return scheme[0] >= 'a' && scheme[0] <= 'z' ? scheme : "";
}

ResourceLocalizationService::ResourceLocalizationService(LocalizationSettings settings,
                                                         PluginRegistry& registry,
                                                         ResourceCache& cache)
    : settings_(settings), registry_(registry), cache_(cache) {}

void ResourceLocalizationService::validate(std::vector<sdk::ResourceSpec>& specs,
                                           const std::string& engine_type) const {
  if (specs.size() > 1000)
    invalid("too many resources (" + std::to_string(specs.size()) + " > 1000)");
  std::set<std::string> names;
  for (auto& spec : specs) {
    if (spec.uri.empty()) invalid("a resource has no uri");
    if (spec.uri.size() > 4096) invalid("resource uri longer than 4096 bytes");
    if (std::any_of(spec.uri.begin(), spec.uri.end(),
                    [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
      invalid("resource uri '" + spec.uri.substr(0, 256) + "' has a control character");
    }
    const std::string scheme = uri_scheme(spec.uri);
    if (scheme.empty()) invalid("resource uri '" + spec.uri.substr(0, 256) + "' has no scheme");
    if (!registry_.localizer_for(scheme, engine_type)) {
      std::string served;
      for (const auto& s : registry_.localized_schemes())
        served += (served.empty() ? "" : ", ") + s;
      invalid("no localizer serves '" + scheme + "' (resource " + spec.uri.substr(0, 256) +
              "; served here: " + (served.empty() ? "none" : served) + ")");
    }
    std::transform(spec.sha256.begin(), spec.sha256.end(), spec.sha256.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (!spec.sha256.empty() && !is_sha256(spec.sha256)) {
      invalid("resource " + spec.uri.substr(0, 256) + ": sha256 must be 64 hex digits");
    }
    if (spec.sha256.empty() && scheme != "file" && !settings_.allow_unverified) {
      invalid("resource " + spec.uri.substr(0, 256) +
              ": a sha256 is required for remote resources ([localization] allow_unverified "
              "is off)");
    }
    if (spec.name.empty()) spec.name = default_name(spec.uri);
    if (!core::is_safe_name(spec.name, 255) || spec.name == "." || spec.name == "..") {
      invalid("resource name '" + spec.name.substr(0, 64) +
              "' is not a safe file name (A-Z a-z 0-9 . _ -)");
    }
    if (spec.name == "logs") invalid("resource name 'logs' is the engine's log dir");
    if (!names.insert(spec.name).second) invalid("two resources are named '" + spec.name + "'");
  }
}

namespace {

// The engine's work dir, opened from `work_root` one component at a time without following a
// symlink: <work_root>/<user> belongs to the user, who could swap the engine's dir for a link to
// anywhere; the ECM, root, must never create a file there through it.
class WorkDir {
 public:
  WorkDir(const fs::path& work_root, const fs::path& work_dir) {
    fd_ = ::open(work_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    const auto rel = work_dir.lexically_relative(work_root);
    if (fd_ < 0 || rel.empty() || *rel.begin() == "..") {
      throw EcmException(ErrorCode::kLaunchFailed,
                         "work dir " + work_dir.string() + " is not under the work root");
    }
    for (const auto& part : rel) {
      const int next = ::openat(fd_, part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      const int e = errno;
      ::close(fd_);
      fd_ = next;
      if (fd_ < 0) {
        throw EcmException(ErrorCode::kLaunchFailed,
                           "cannot open work dir " + work_dir.string() + ": " + std::strerror(e));
      }
    }
  }
  ~WorkDir() {
    if (fd_ >= 0) ::close(fd_);
  }
  WorkDir(const WorkDir&) = delete;
  WorkDir& operator=(const WorkDir&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

}  // namespace

ResourceLocalizationService::Holdings ResourceLocalizationService::localize(
    const LocalizationTarget& target, const std::vector<sdk::ResourceSpec>& specs) {
  const WorkDir dir(target.work_root, target.work_dir);
  Holdings held;
  std::vector<std::string> links;
  try {
    for (const auto& spec : specs) {
      auto lease = localize_one(target, spec);
      if (::symlinkat(lease.content().c_str(), dir.fd(), spec.name.c_str()) != 0) {
        failed(spec, "cannot link it into the work dir: " + std::string(std::strerror(errno)));
      }
      links.push_back(spec.name);
      held.push_back(std::move(lease));
    }
  } catch (...) {
    for (const auto& l : links)
      ::unlinkat(dir.fd(), l.c_str(), 0);
    throw;
  }
  return held;
}

ResourceCache::Lease ResourceLocalizationService::localize_one(const LocalizationTarget& target,
                                                               const sdk::ResourceSpec& spec) {
  const std::string owner =
      spec.visibility == sdk::ResourceSpec::Visibility::kPublic ? std::string() : target.user;
  const CacheKey expected{spec.sha256, spec.unpack, owner};
  // What identifies the result: its cache key, or, unverified, the URI and who fetches it (an
  // engine type's own localizer may serve other bytes).
  const std::string flight = !spec.sha256.empty()
                                 ? expected.dir_name()
                                 : "uri|" + owner + "|" + target.engine_type + "|" +
                                       (spec.unpack ? "d|" : "f|") + spec.uri;
  // Twice at most: an entry another launch fetched may be evicted before this one holds it.
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::promise<CacheKey> promise;
    std::shared_future<CacheKey> result;
    bool leader = false;
    {
      std::lock_guard lock(mu_);
      if (auto it = in_flight_.find(flight); it != in_flight_.end()) {
        result = it->second;
      } else {
        result = promise.get_future().share();
        in_flight_.emplace(flight, result);
        leader = true;
      }
    }
    if (!leader) {
      const CacheKey key = result.get();  // the leader's error, if it failed
      if (auto hit = cache_.acquire(key)) {
        publish(target, spec, "fetched by a concurrent launch");
        return std::move(*hit);
      }
      continue;
    }
    // The leader: a hit (checked here, under the flight, so no second download can start
    // meanwhile), else the fetch. Either way the flight ends with its outcome.
    struct EndFlight {
      ResourceLocalizationService& s;
      const std::string& flight;
      ~EndFlight() {
        std::lock_guard lock(s.mu_);
        s.in_flight_.erase(flight);
      }
    } end{*this, flight};
    if (!spec.sha256.empty()) {
      if (auto hit = cache_.acquire(expected)) {
        promise.set_value(expected);
        log("localize")->info("[{}] {} from the cache", target.engine_id, label(spec));
        publish(target, spec, "cache hit");
        return std::move(*hit);
      }
    }
    std::optional<ResourceCache::Lease> lease;
    try {
      promise.set_value(fetch_into_cache(target, spec, owner, lease));
    } catch (...) {
      promise.set_exception(std::current_exception());
      throw;
    }
    return std::move(*lease);
  }
  failed(spec, "its cache entry was evicted twice while it was being fetched");
}

CacheKey ResourceLocalizationService::fetch_into_cache(const LocalizationTarget& target,
                                                       const sdk::ResourceSpec& spec,
                                                       const std::string& owner,
                                                       std::optional<ResourceCache::Lease>& lease) {
  const auto began = std::chrono::steady_clock::now();
  auto localizer = registry_.localizer_for(uri_scheme(spec.uri), target.engine_type);
  if (!localizer) failed(spec, "no localizer serves its scheme any more");
  fs::path staging_path;
  try {
    staging_path = cache_.make_staging_dir();
  } catch (const std::exception& e) {
    failed(spec, std::string("cannot stage it: ") + e.what());
  }
  StagingDir staging(staging_path);
  const fs::path download = staging.path() / "download";
  sdk::FetchRequest request;
  request.uri = spec.uri;
  request.user = target.user;
  request.engine_type = target.engine_type;
  request.sha256 = spec.sha256;
  request.destination = download.string();
  if (stopping_) failed(spec, "the ECM is shutting down");
  FollowingHasher hasher(download);
  Progress progress(
      stopping_,
      [&](std::uint64_t bytes, std::uint64_t total) {
        publish(target, spec,
                "fetching: " + std::to_string(bytes) +
                    (total ? " of " + std::to_string(total) : "") + " bytes");
      },
      &hasher);
  auto fetched = localizer->fetch(request, progress);
  if (!fetched.ok()) {
    const auto& e = fetched.error();
    const char* what = e.kind == sdk::ErrorKind::kNotFound      ? "not found: "
                       : e.kind == sdk::ErrorKind::kUnavailable ? "unavailable: "
                                                                : "";
    failed(spec, "localizer '" + localizer->library().name + "': " + what + e.message);
  }
  std::error_code ec;
  if (!fs::is_regular_file(fs::symlink_status(download, ec))) {
    failed(spec, "localizer '" + localizer->library().name + "' produced no file");
  }
  std::string sha;
  try {
    // Trusted only when it matches what the request expects; else (no checksum given, a
    // mismatch to confirm, a fetch not written front to back) the file is hashed whole.
    auto following = hasher.finish(fs::file_size(download));
    if (following && !spec.sha256.empty() && *following == spec.sha256) {
      sha = *following;
    } else {
      sha = sha256_file(download);
    }
  } catch (const std::exception& e) {
    failed(spec, std::string("cannot read what was fetched: ") + e.what());
  }
  if (!spec.sha256.empty() && sha != spec.sha256) {
    failed(spec, "checksum mismatch: expected sha256 " + spec.sha256 + ", got " + sha);
  }
  const auto bytes = fs::file_size(download, ec);
  CacheKey key{sha, spec.unpack, owner};
  fs::path staged = download;
  if (spec.unpack) {
    staged = staging.path() / "unpacked";
    if (!fs::create_directory(staged, ec) || ec) failed(spec, "cannot stage it: " + ec.message());
    auto unpacked = unpack_archive(download, staged, ArchiveFormat::kAuto, settings_.unpack_limits);
    if (!unpacked.ok()) failed(spec, "cannot unpack: " + unpacked.error().message);
    fs::remove(download, ec);
  }
  try {
    lease = cache_.insert(key, staged);
  } catch (const std::exception& e) {
    failed(spec, std::string("cannot store it in the cache: ") + e.what());
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - began)
                      .count();
  publish(target, spec,
          "fetched " + std::to_string(bytes) + " bytes in " + std::to_string(ms) + " ms" +
              (spec.unpack ? " and unpacked" : ""));
  log("localize")
      ->info("[{}] {} fetched by {} ({} bytes, {} ms, sha256 {})", target.engine_id, label(spec),
             localizer->library().name, bytes, ms, sha.substr(0, 12));
  return key;
}

void ResourceLocalizationService::publish(const LocalizationTarget& target,
                                          const sdk::ResourceSpec& spec,
                                          const std::string& how) const {
  if (!event_sink_) return;
  sdk::Event e;
  e.kind = sdk::EventKind::kResourceLocalized;
  e.engine_id = target.engine_id;
  e.user = target.user;
  e.engine_type = target.engine_type;
  e.message = spec.uri;
  e.reason = spec.name + ": " + how;
  event_sink_(std::move(e));
}

}  // namespace ecm::host
