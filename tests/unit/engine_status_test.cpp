#include "ecm/core/engine_status.hpp"

#include <gtest/gtest.h>

using namespace ecm::core;
using S = EngineStatus;

TEST(EngineStatus, TransitionTable) {
  const S all[] = {S::kStarting, S::kRunning, S::kShuttingDown, S::kSuccess, S::kFailed};
  // Every legal transition, spelled out; everything else must be refused.
  const std::pair<S, S> legal[] = {
      {S::kStarting, S::kRunning}, {S::kStarting, S::kShuttingDown}, {S::kStarting, S::kFailed},
      {S::kStarting, S::kSuccess}, {S::kRunning, S::kShuttingDown},  {S::kRunning, S::kSuccess},
      {S::kRunning, S::kFailed},   {S::kShuttingDown, S::kSuccess},  {S::kShuttingDown, S::kFailed},
  };
  for (S from : all) {
    for (S to : all) {
      bool expected = false;
      for (auto [f, t] : legal)
        expected |= (f == from && t == to);
      EXPECT_EQ(can_transition(from, to), expected) << to_string(from) << " -> " << to_string(to);
    }
  }
}

TEST(EngineStatus, NamesRoundTripCaseInsensitively) {
  for (S s : {S::kStarting, S::kRunning, S::kShuttingDown, S::kSuccess, S::kFailed}) {
    EXPECT_EQ(engine_status_from_string(to_string(s)), s);
  }
  EXPECT_EQ(engine_status_from_string("running"), S::kRunning);
  EXPECT_EQ(engine_status_from_string("SHUTTINGDOWN"), S::kShuttingDown);
  EXPECT_FALSE(engine_status_from_string("Runnin"));
  EXPECT_FALSE(engine_status_from_string(""));
}

TEST(EngineStatus, OnlySuccessAndFailedAreEnded) {
  EXPECT_TRUE(is_ended(S::kSuccess));
  EXPECT_TRUE(is_ended(S::kFailed));
  EXPECT_FALSE(is_ended(S::kShuttingDown));
  EXPECT_FALSE(is_ended(S::kRunning));
  EXPECT_FALSE(is_ended(S::kStarting));
}
