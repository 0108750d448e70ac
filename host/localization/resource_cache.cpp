#include "localization/resource_cache.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <random>
#include <stdexcept>
#include <system_error>

#include "util/log.hpp"

namespace ecm::host {

namespace fs = std::filesystem;
using SystemClock = std::chrono::system_clock;

struct ResourceCache::Entry {
  CacheKey key;
  fs::path dir;      // <root>/entries/<dir_name>
  fs::path content;  // <dir>/content (public) or <dir>/content-<random> (private)
  std::uint64_t bytes = 0;
  SystemClock::time_point last_used;
  int holders = 0;
};

namespace {

constexpr const char* kEntries = "entries";
constexpr const char* kStaging = "staging";

std::uint64_t size_of(const fs::path& p) {
  std::error_code ec;
  if (fs::is_symlink(p, ec)) return 0;
  if (fs::is_regular_file(p, ec)) return fs::file_size(p, ec);
  std::uint64_t total = 0;
  for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (!it->is_symlink(ec) && it->is_regular_file(ec)) total += it->file_size(ec);
  }
  return total;
}

// Files 0444 (0555 when executable), dirs 0555: nobody writes to a cached resource, not even
// through a link in an engine's work dir.
void make_read_only(const fs::path& p) {
  std::error_code ec;
  auto set = [](const fs::path& q) {
    struct stat st {};
    if (::lstat(q.c_str(), &st) != 0 || S_ISLNK(st.st_mode)) return;
    const bool exec = S_ISDIR(st.st_mode) || (st.st_mode & S_IXUSR);
    ::chmod(q.c_str(), exec ? 0555 : 0444);
  };
  if (fs::is_directory(p, ec) && !fs::is_symlink(p, ec)) {
    for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::end(it);
         it.increment(ec))
      set(it->path());
  }
  set(p);
}

// Read-only trees must be made writable again before they can be removed. Only the ECM writes
// under the cache, so nothing in it is a link someone swapped in; lchmod-like care anyway: a
// symlink is never chmod-ed (chmod would follow it).
void remove_tree(const fs::path& p) {
  std::error_code ec;
  if (fs::is_directory(fs::symlink_status(p, ec)) && !ec) {
    ::chmod(p.c_str(), 0700);
    for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      if (fs::is_directory(it->symlink_status(ec))) ::chmod(it->path().c_str(), 0700);
    }
  }
  fs::remove_all(p, ec);
}

// The content inside an entry dir: "content", or the one "content-<random>" of a private entry.
std::optional<fs::path> find_content(const fs::path& dir) {
  std::error_code ec;
  for (const auto& f : fs::directory_iterator(dir, ec)) {
    const auto name = f.path().filename().string();
    if (name == "content" || name.rfind("content-", 0) == 0) return f.path();
  }
  return std::nullopt;
}

// The key back from an entry's dir name; nullopt for anything that is not one.
std::optional<CacheKey> parse_dir_name(std::string name) {
  CacheKey k;
  if (name.size() > 2 && name.compare(name.size() - 2, 2, ".d") == 0) {
    k.unpacked = true;
    name.resize(name.size() - 2);
  }
  if (name.size() < 65) return std::nullopt;
  k.sha256 = name.substr(name.size() - 64);
  if (!std::all_of(k.sha256.begin(), k.sha256.end(),
                   [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }))
    return std::nullopt;
  const std::string head = name.substr(0, name.size() - 64);
  if (head == "pub-") return k;
  if (head.size() > 5 && head.rfind("usr-", 0) == 0 && head.back() == '-') {
    k.owner = head.substr(4, head.size() - 5);
    return k;
  }
  return std::nullopt;
}

// 16 hex digits; with `bits128`, 32 from the kernel's random source (a private entry's name is
// its lock: it must not be guessable).
std::string random_suffix(bool bits128 = false) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  if (bits128) {
    std::random_device rd;  // /dev/urandom on Linux
    for (int i = 0; i < 4; ++i) {
      auto v = rd();
      for (int j = 0; j < 8; ++j, v >>= 4)
        s += kHex[v & 15];
    }
    return s;
  }
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  auto v = rng();
  for (int j = 0; j < 16; ++j, v >>= 4)
    s += kHex[v & 15];
  return s;
}

}  // namespace

std::string CacheKey::dir_name() const {
  return (owner.empty() ? "pub-" : "usr-" + owner + "-") + sha256 + (unpacked ? ".d" : "");
}

ResourceCache::Lease::Lease(ResourceCache* cache, std::shared_ptr<Entry> entry)
    : cache_(cache), entry_(std::move(entry)) {}

ResourceCache::Lease::Lease(Lease&& o) noexcept
    : cache_(std::exchange(o.cache_, nullptr)), entry_(std::move(o.entry_)) {}

ResourceCache::Lease& ResourceCache::Lease::operator=(Lease&& o) noexcept {
  if (this != &o) {
    release();
    cache_ = std::exchange(o.cache_, nullptr);
    entry_ = std::move(o.entry_);
  }
  return *this;
}

ResourceCache::Lease::~Lease() {
  release();
}

void ResourceCache::Lease::release() {
  // Runs in destructors: an eviction that fails (disk, memory) is logged, never thrown.
  try {
    if (cache_ && entry_) cache_->release(entry_);
  } catch (const std::exception& e) {
    log("cache")->error("releasing a cache entry: {}", e.what());
  }
  cache_ = nullptr;
  entry_.reset();
}

const fs::path& ResourceCache::Lease::content() const {
  static const fs::path none;
  return entry_ ? entry_->content : none;
}

ResourceCache::ResourceCache(fs::path root, std::uint64_t max_bytes)
    : root_(std::move(root)), max_bytes_(max_bytes) {}

ResourceCache::~ResourceCache() = default;

void ResourceCache::open() {
  fs::create_directories(root_ / kEntries);
  ::chmod(root_.c_str(), 0711);
  ::chmod((root_ / kEntries).c_str(), 0711);  // traversable, not listable
  // A fetch the last run did not finish left only staging files: none of it is trusted.
  remove_tree(root_ / kStaging);
  fs::create_directories(root_ / kStaging);
  ::chmod((root_ / kStaging).c_str(), 0700);  // private resources are staged here
  std::lock_guard lock(mu_);
  entries_.clear();
  bytes_ = 0;
  for (const auto& d : fs::directory_iterator(root_ / kEntries)) {
    auto key = parse_dir_name(d.path().filename().string());
    std::error_code ec;
    const auto content = key ? find_content(d.path()) : std::nullopt;
    if (!content) {
      log("cache")->warn("removing '{}': not a complete cache entry", d.path().string());
      remove_tree(d.path());
      continue;
    }
    auto e = std::make_shared<Entry>();
    e->key = *key;
    e->dir = d.path();
    e->content = *content;
    e->bytes = size_of(e->content);
    const auto mtime = fs::last_write_time(d.path(), ec);
    e->last_used = ec ? SystemClock::now()
                      : std::chrono::time_point_cast<SystemClock::duration>(
                            fs::file_time_type::clock::to_sys(mtime));
    bytes_ += e->bytes;
    entries_.emplace(key->dir_name(), std::move(e));
  }
  log("cache")->info("resource cache {}: {} entries, {} bytes", root_.string(), entries_.size(),
                     bytes_);
}

std::string ResourceCache::Lease::name() const {
  return entry_ ? entry_->dir.filename().string() : std::string();
}

std::optional<ResourceCache::Lease> ResourceCache::acquire(const CacheKey& key) {
  return acquire_by_name(key.dir_name());
}

std::optional<ResourceCache::Lease> ResourceCache::acquire_by_name(const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(name);
  if (it == entries_.end()) return std::nullopt;
  auto& e = it->second;
  ++e->holders;
  e->last_used = SystemClock::now();
  std::error_code ec;  // the last use survives a restart as the entry dir's mtime
  fs::last_write_time(e->dir, fs::file_time_type::clock::from_sys(e->last_used), ec);
  return Lease(this, e);
}

fs::path ResourceCache::make_staging_dir() {
  for (;;) {
    auto dir = root_ / kStaging / random_suffix();
    if (::mkdir(dir.c_str(), 0700) == 0) return dir;
    if (errno != EEXIST)
      throw fs::filesystem_error("cannot create a staging dir", dir,
                                 std::error_code(errno, std::generic_category()));
  }
}

ResourceCache::Lease ResourceCache::insert(const CacheKey& key, const fs::path& staged) {
  make_read_only(staged);
  const std::uint64_t bytes = size_of(staged);
  std::vector<fs::path> doomed;
  std::optional<Lease> lease;
  {
    std::lock_guard lock(mu_);
    if (auto it = entries_.find(key.dir_name()); it != entries_.end()) {
      doomed.push_back(staged);
      ++it->second->holders;
      it->second->last_used = SystemClock::now();
      lease = Lease(this, it->second);
    } else {
      auto e = std::make_shared<Entry>();
      e->key = key;
      e->dir = root_ / kEntries / key.dir_name();
      e->bytes = bytes;
      e->last_used = SystemClock::now();
      // The entry dir appears complete or not at all: content is moved into a fresh dir that is
      // then renamed into place.
      const auto building = root_ / kStaging / (key.dir_name() + "." + random_suffix());
      const std::string content =
          key.owner.empty() ? std::string("content") : "content-" + random_suffix(true);
      try {
        fs::create_directory(building);
        fs::rename(staged, building / content);
        ::chmod(building.c_str(), key.owner.empty() ? 0755 : 0711);
        fs::rename(building, e->dir);
      } catch (...) {
        remove_tree(building);
        throw;
      }
      e->content = e->dir / content;
      e->holders = 1;
      bytes_ += bytes;
      entries_.emplace(key.dir_name(), e);
      lease = Lease(this, e);
      if (max_bytes_ > 0 && bytes_ > max_bytes_) evict_locked(false, doomed);
    }
  }
  for (const auto& d : doomed)
    remove_tree(d);
  return std::move(*lease);
}

void ResourceCache::release(const std::shared_ptr<Entry>& entry) {
  std::vector<fs::path> doomed;
  {
    std::lock_guard lock(mu_);
    if (entry->holders > 0) --entry->holders;
    if (max_bytes_ > 0 && bytes_ > max_bytes_) evict_locked(false, doomed);
  }
  for (const auto& d : doomed)
    remove_tree(d);
}

PruneResult ResourceCache::evict_locked(bool all, std::vector<fs::path>& doomed) {
  PruneResult r;
  if (!all && max_bytes_ == 0) return r;  // unbounded
  std::vector<std::shared_ptr<Entry>> order;
  for (const auto& [name, e] : entries_)
    order.push_back(e);
  std::sort(order.begin(), order.end(),
            [](const auto& a, const auto& b) { return a->last_used < b->last_used; });
  for (const auto& e : order) {
    if (!all && bytes_ <= max_bytes_) break;
    if (e->holders > 0) {
      ++r.kept_in_use;
      continue;
    }
    // Renamed away under the lock: no reader finds a half-removed entry, and a new insert of the
    // same key does not collide with it. Removed by the caller once unlocked.
    const auto away = root_ / kStaging / ("evicted-" + random_suffix());
    std::error_code ec;
    fs::rename(e->dir, away, ec);
    doomed.push_back(ec ? e->dir : away);
    bytes_ -= std::min(bytes_, e->bytes);
    r.bytes_freed += e->bytes;
    ++r.removed;
    entries_.erase(e->key.dir_name());
    log("cache")->info("evicted {} ({} bytes)", e->key.dir_name(), e->bytes);
  }
  if (!all && max_bytes_ > 0 && bytes_ > max_bytes_) {
    log("cache")->warn("resource cache over its bound ({} of {} bytes): the rest is in use", bytes_,
                       max_bytes_);
  }
  return r;
}

std::vector<CacheEntryInfo> ResourceCache::list() const {
  std::lock_guard lock(mu_);
  std::vector<CacheEntryInfo> out;
  for (const auto& [name, e] : entries_)
    out.push_back({e->key, e->bytes, e->last_used, e->holders, e->content});
  return out;
}

PruneResult ResourceCache::prune(bool all) {
  std::vector<fs::path> doomed;
  PruneResult r;
  {
    std::lock_guard lock(mu_);
    r = evict_locked(all, doomed);
  }
  for (const auto& d : doomed)
    remove_tree(d);
  return r;
}

std::uint64_t ResourceCache::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

}  // namespace ecm::host
