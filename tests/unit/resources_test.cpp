#include "ecm/core/resources.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "ecm/core/errors.hpp"

using namespace ecm::core;

namespace {
constexpr std::uint64_t kGiB = 1ull << 30;
}

TEST(ResourceLedger, LeftIsMaxMinusProtectedLockedUsed) {
  ResourceLedger l({8 * kGiB, 4, 10}, {1 * kGiB, 1, 0});
  l.lock("a", {2 * kGiB, 1, 1});
  l.lock("b", {1 * kGiB, 1, 1});
  ASSERT_TRUE(l.mark_used("a"));
  auto s = l.snapshot();
  EXPECT_EQ(s.locked, (Resource{1 * kGiB, 1, 1}));
  EXPECT_EQ(s.used, (Resource{2 * kGiB, 1, 1}));
  EXPECT_EQ(s.left, (Resource{4 * kGiB, 1, 8}));
  EXPECT_FALSE(l.mark_used("a")) << "already used";
}

TEST(ResourceLedger, RefusalNamesWhatIsShortAndLocksNothing) {
  ResourceLedger l({4 * kGiB, 2, 10}, {1 * kGiB, 0, 0});
  l.lock("a", {2 * kGiB, 1, 1});
  try {
    l.lock("b", {2 * kGiB, 2, 1});
    FAIL() << "admitted past capacity";
  } catch (const EcmException& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInsufficientResources);
    const std::string m = e.what();
    EXPECT_NE(m.find("memory: asked 2048MiB, left 1024MiB"), std::string::npos) << m;
    EXPECT_NE(m.find("cores: asked 2, left 1"), std::string::npos) << m;
    EXPECT_EQ(m.find("instances"), std::string::npos) << m;
  }
  EXPECT_EQ(l.snapshot().locked, (Resource{2 * kGiB, 1, 1}));
}

TEST(ResourceLedger, ReleaseIsExactlyOnce) {
  ResourceLedger l({4 * kGiB, 2, 2}, {});
  l.lock("a", {1 * kGiB, 1, 1});
  EXPECT_TRUE(l.release("a"));
  EXPECT_FALSE(l.release("a"));
  EXPECT_FALSE(l.release("never"));
  EXPECT_EQ(l.snapshot().left, (Resource{4 * kGiB, 2, 2}));
}

TEST(ResourceLedger, ConcurrentCyclesReturnToZero) {
  ResourceLedger l({64 * kGiB, 64, 1000}, {});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) {
        const auto id = std::to_string(t) + "-" + std::to_string(i);
        l.lock(id, {kGiB / 4, 1, 1});
        if (i % 2) l.mark_used(id);
        l.release(id);
      }
    });
  }
  for (auto& th : threads)
    th.join();
  auto s = l.snapshot();
  EXPECT_EQ(s.used, Resource{});
  EXPECT_EQ(s.locked, Resource{});
  EXPECT_EQ(s.left, s.max);
}

TEST(ResourceLedger, MachineDetectionSeesMemoryAndCpus) {
  auto r = detect_machine_resources();
  EXPECT_GT(r.memory_bytes, 64ull << 20);
  EXPECT_GE(r.cores, 1u);
}
