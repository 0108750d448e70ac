#include "ecm/core/names.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace ecm::core;

TEST(Names, SafeNamesRefuseEscapes) {
  EXPECT_TRUE(is_safe_name("shell"));
  EXPECT_TRUE(is_safe_name("spark-3.4_x"));
  for (const std::string& bad :
       std::vector<std::string>{"", ".", "..", "../x", "a/b", "/abs", "-rf", "a b",
                                std::string("a\0b", 3), std::string(65, 'a')}) {
    EXPECT_FALSE(is_safe_name(bad)) << bad;
  }
}

TEST(Names, UserNamesFollowPosixShape) {
  EXPECT_TRUE(is_valid_user_name("alice"));
  EXPECT_TRUE(is_valid_user_name("_svc-01"));
  EXPECT_TRUE(is_valid_user_name("machine$"));
  for (const std::string& bad :
       std::vector<std::string>{"", "../x", "Alice", "1abc", "a/b", "a$b", "a.b",
                                std::string(33, 'a'), std::string("al\0ice", 6)}) {
    EXPECT_FALSE(is_valid_user_name(bad)) << bad;
  }
}

TEST(Names, RelativePathsStayInside) {
  EXPECT_TRUE(is_safe_relative_path("conf/app.properties"));
  EXPECT_TRUE(is_safe_relative_path("a"));
  for (const char* bad : {"", "/etc/passwd", "../x", "a/../../x", "a//b", "a/", "./a", "a/./b"}) {
    EXPECT_FALSE(is_safe_relative_path(bad)) << bad;
  }
}
