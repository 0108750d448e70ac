// The resource cache on a real directory: entries in and out, leases, LRU eviction that spares
// held entries, and what open() makes of what an earlier run left.
#include "localization/resource_cache.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

namespace {

namespace fs = std::filesystem;
using ecm::host::CacheKey;
using ecm::host::ResourceCache;

class ResourceCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ecm-cache-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override {
    // Entries are read-only: make them writable to remove them.
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir_, ec); !ec && it != fs::end(it);
         it.increment(ec))
      fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(dir_);
  }
  // A staged file of `size` bytes, ready to insert.
  fs::path staged(ResourceCache& c, std::size_t size, char fill = 'x') {
    auto f = c.make_staging_dir() / "download";
    std::ofstream(f, std::ios::binary) << std::string(size, fill);
    return f;
  }
  static CacheKey key(char c, const std::string& owner = "") {
    return CacheKey{std::string(64, c), false, owner};
  }
  fs::path dir_;
};

TEST_F(ResourceCacheTest, AnInsertedEntryIsReadOnlyHeldAndFoundAgain) {
  ResourceCache c(dir_, 0);
  c.open();
  EXPECT_FALSE(c.acquire(key('a')));
  {
    auto lease = c.insert(key('a'), staged(c, 10));
    ASSERT_TRUE(lease);
    struct stat st {};
    ASSERT_EQ(::stat(lease.content().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0444u);
    EXPECT_EQ(c.list().at(0).holders, 1);
    auto again = c.acquire(key('a'));
    ASSERT_TRUE(again);
    EXPECT_EQ(again->content(), lease.content());
    EXPECT_EQ(c.list().at(0).holders, 2);
  }
  EXPECT_EQ(c.list().at(0).holders, 0);
  EXPECT_EQ(c.bytes(), 10u);
  // Public and private keys of the same content are different entries.
  auto mine = c.insert(key('a', "alice"), staged(c, 10));
  EXPECT_NE(mine.content().parent_path().filename(), "pub-" + std::string(64, 'a'));
  EXPECT_EQ(c.list().size(), 2u);
}

TEST_F(ResourceCacheTest, OverTheBoundTheLeastRecentlyUsedUnheldEntriesGo) {
  ResourceCache c(dir_, 250);
  c.open();
  auto held = c.insert(key('a'), staged(c, 100));  // the oldest, but held throughout
  c.insert(key('b'), staged(c, 100));
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  c.insert(key('c'), staged(c, 100));  // 300 > 250: b goes (a is held)
  std::vector<std::string> left;
  for (const auto& e : c.list())
    left.push_back(e.key.sha256.substr(0, 1));
  EXPECT_EQ(left, (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(c.bytes(), 200u);

  // Everything unused, on request; the held one stays.
  auto r = c.prune(true);
  EXPECT_EQ(r.removed, 1);
  EXPECT_EQ(r.bytes_freed, 100u);
  EXPECT_EQ(r.kept_in_use, 1);
  ASSERT_EQ(c.list().size(), 1u);
  EXPECT_TRUE(fs::exists(held.content()));
}

TEST_F(ResourceCacheTest, OpenTakesBackCompleteEntriesAndRemovesTheRest) {
  fs::path content;
  {
    ResourceCache c(dir_, 0);
    c.open();
    content = c.insert(key('a'), staged(c, 42)).content();
    staged(c, 5);  // a fetch that never finished
  }
  fs::create_directories(dir_ / "entries" / "not-an-entry");
  fs::create_directories(dir_ / "entries" / ("pub-" + std::string(64, 'b')));  // no content
  ResourceCache c(dir_, 0);
  c.open();
  ASSERT_EQ(c.list().size(), 1u);
  EXPECT_EQ(c.list()[0].key.sha256, std::string(64, 'a'));
  EXPECT_EQ(c.list()[0].bytes, 42u);
  EXPECT_EQ(c.bytes(), 42u);
  EXPECT_TRUE(fs::exists(content));
  EXPECT_FALSE(fs::exists(dir_ / "entries" / "not-an-entry"));
  EXPECT_TRUE(fs::is_empty(dir_ / "staging"));
}

TEST_F(ResourceCacheTest, ConcurrentInsertsOfOneKeyKeepOneEntry) {
  ResourceCache c(dir_, 0);
  c.open();
  std::vector<std::thread> threads;
  std::vector<ResourceCache::Lease> leases(8);
  for (int i = 0; i < 8; ++i) {
    auto f = staged(c, 64);
    threads.emplace_back([&, i, f] { leases[i] = c.insert(key('a'), f); });
  }
  for (auto& t : threads)
    t.join();
  ASSERT_EQ(c.list().size(), 1u);
  EXPECT_EQ(c.list()[0].holders, 8);
  EXPECT_EQ(c.bytes(), 64u);
}

}  // namespace
