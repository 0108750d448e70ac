// The node's resource cache: content-addressed entries under <state_dir>/cache, each a verified
// file (or the tree unpacked from one), owned by the ECM and read-only, shared by the engines that
// use it. Public entries are shared by every user: <entry>/content in a 0755 dir. Private ones
// belong to one user: <entry>/content-<128 random bits> in a 0711 dir, so only an engine given
// the link (its own user's) can reach it, and nobody but the ECM can change it. An entry an engine
// holds (a Lease) is never evicted; the others go least recently used first when the cache is over
// its bound. The entries survive a restart of the ECM: the index is the directory itself.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace ecm::host {

struct CacheKey {
  std::string sha256;  // of the fetched file (the archive, for an unpacked entry)
  bool unpacked = false;
  std::string owner;  // empty: public; else the user a private entry belongs to
  // The entry's directory name: "pub-<sha>", "usr-<user>-<sha>", with ".d" when unpacked.
  std::string dir_name() const;
};

struct CacheEntryInfo {
  CacheKey key;
  std::uint64_t bytes = 0;
  std::chrono::system_clock::time_point last_used;
  int holders = 0;  // leases out now (engines using it)
  std::filesystem::path content;
};

struct PruneResult {
  int removed = 0;
  std::uint64_t bytes_freed = 0;
  int kept_in_use = 0;  // entries left because engines hold them
};

class ResourceCache {
 public:
  struct Entry;

  // Holds an entry: while a Lease lives, the entry stays. Movable, not copyable.
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&&) noexcept;
    Lease& operator=(Lease&&) noexcept;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease();
    // The entry's content: a file, or the directory an archive was unpacked into.
    const std::filesystem::path& content() const;
    // The entry's name (CacheKey::dir_name()): what acquire_by_name() takes back after a restart.
    std::string name() const;
    explicit operator bool() const { return entry_ != nullptr; }

   private:
    friend class ResourceCache;
    Lease(ResourceCache* cache, std::shared_ptr<Entry> entry);
    void release();
    ResourceCache* cache_ = nullptr;
    std::shared_ptr<Entry> entry_;
  };

  // `max_bytes` 0: unbounded.
  ResourceCache(std::filesystem::path root, std::uint64_t max_bytes);
  ~ResourceCache();
  ResourceCache(const ResourceCache&) = delete;
  ResourceCache& operator=(const ResourceCache&) = delete;

  // Creates the dirs; takes back the entries an earlier run left (last use from their mtime) and
  // removes staging leftovers of an interrupted fetch.
  void open();

  // A hit: the entry, now held and marked used. nullopt on a miss.
  std::optional<Lease> acquire(const CacheKey& key);
  // The same by entry name (Lease::name()), for a restarted ECM taking back what its live engines
  // held; nullopt when no such entry is in the cache.
  std::optional<Lease> acquire_by_name(const std::string& name);

  // A new empty dir under the cache's staging area (same file system as the entries, so moving
  // into the cache is a rename). The caller removes it when it is done with it.
  std::filesystem::path make_staging_dir();

  // Moves `staged` (a file or a directory, on the cache's file system) into the cache as `key`'s
  // content, read-only, and holds it. If the key arrived meanwhile, the existing entry is held and
  // `staged` is removed. Then evicts unused entries while the cache is over its bound.
  Lease insert(const CacheKey& key, const std::filesystem::path& staged);

  std::vector<CacheEntryInfo> list() const;
  // `all`: removes every unused entry; else only as many as it takes to get under the bound.
  PruneResult prune(bool all);

  std::uint64_t bytes() const;
  std::uint64_t max_bytes() const { return max_bytes_; }
  const std::filesystem::path& root() const { return root_; }

 private:
  void release(const std::shared_ptr<Entry>& entry);
  // Takes entries out of the index and renames them away; `doomed` gets the paths to remove,
  // which the caller does after unlocking (a tree of gigabytes is not removed under the lock).
  PruneResult evict_locked(bool all, std::vector<std::filesystem::path>& doomed);

  const std::filesystem::path root_;
  const std::uint64_t max_bytes_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Entry>> entries_;  // by dir_name()
  std::uint64_t bytes_ = 0;
};

}  // namespace ecm::host
