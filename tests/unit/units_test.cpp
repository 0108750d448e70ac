#include "ecm/core/units.hpp"

#include <gtest/gtest.h>

using namespace ecm::core;
using std::chrono::milliseconds;

TEST(Units, DurationsNeedAUnit) {
  EXPECT_EQ(parse_duration("250ms"), milliseconds(250));
  EXPECT_EQ(parse_duration("30s"), milliseconds(30'000));
  EXPECT_EQ(parse_duration("5m"), milliseconds(300'000));
  EXPECT_EQ(parse_duration("2h"), milliseconds(7'200'000));
  EXPECT_EQ(parse_duration("1d"), milliseconds(86'400'000));
  EXPECT_EQ(parse_duration("0s"), milliseconds(0));
  for (const char* bad :
       {"", "10", "s", "10 s", "-1s", "1.5s", "10sec", "10S", "99999999999999999999d"}) {
    EXPECT_FALSE(parse_duration(bad)) << bad;
  }
}

TEST(Units, SizesBinaryAndDecimal) {
  EXPECT_EQ(parse_size("512B"), 512u);
  EXPECT_EQ(parse_size("64KiB"), 64u * 1024);
  EXPECT_EQ(parse_size("512MiB"), 512ull << 20);
  EXPECT_EQ(parse_size("2GiB"), 2ull << 30);
  EXPECT_EQ(parse_size("1TiB"), 1ull << 40);
  EXPECT_EQ(parse_size("3MB"), 3'000'000u);
  for (const char* bad : {"", "512", "MiB", "1.5GiB", "1gib", "-1B", "99999999999TiB"}) {
    EXPECT_FALSE(parse_size(bad)) << bad;
  }
}

TEST(Units, FormatDuration) {
  EXPECT_EQ(format_duration(milliseconds(1500)), "1500ms");
  EXPECT_EQ(format_duration(milliseconds(30'000)), "30s");
}
