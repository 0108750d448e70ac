#include "ecm/core/engine_status.hpp"

#include <gtest/gtest.h>

#include <map>
#include <set>

using namespace ecm::core;
using S = EngineStatus;

TEST(EngineStatus, TransitionTable) {
  const std::set<S> available = {S::kUnlock, S::kLocked, S::kIdle, S::kBusy, S::kRunning};
  const std::set<S> ends = {S::kSuccess, S::kFailed};
  // The legal targets of each state, written out; every other pair must be refused.
  std::map<S, std::set<S>> legal;
  legal[S::kStarting] = available;
  legal[S::kStarting].insert({S::kShuttingDown, S::kSuccess, S::kFailed});
  for (S a : available) {
    legal[a] = available;
    legal[a].erase(a);
    legal[a].insert({S::kShuttingDown, S::kSuccess, S::kFailed});
  }
  legal[S::kShuttingDown] = ends;
  const S all[] = {S::kStarting, S::kRunning, S::kShuttingDown, S::kSuccess, S::kFailed,
                   S::kUnlock,   S::kLocked,  S::kIdle,         S::kBusy};
  int allowed = 0;
  for (S from : all) {
    for (S to : all) {
      const bool expected = legal[from].count(to) != 0;
      allowed += expected;
      EXPECT_EQ(can_transition(from, to), expected) << to_string(from) << " -> " << to_string(to);
    }
  }
  EXPECT_EQ(allowed, 8 + 5 * 7 + 2);
}

TEST(EngineStatus, AvailableAndCompletedAsTheRmCountsThem) {
  for (S s : {S::kUnlock, S::kLocked, S::kIdle, S::kBusy, S::kRunning}) {
    EXPECT_TRUE(is_available(s)) << to_string(s);
    EXPECT_FALSE(is_completed(s)) << to_string(s);
  }
  for (S s : {S::kShuttingDown, S::kFailed, S::kSuccess}) {
    EXPECT_TRUE(is_completed(s)) << to_string(s);
    EXPECT_FALSE(is_available(s)) << to_string(s);
  }
  EXPECT_FALSE(is_available(S::kStarting));
  EXPECT_FALSE(is_completed(S::kStarting));
}

TEST(EngineStatus, NamesRoundTripCaseInsensitively) {
  for (S s : {S::kStarting, S::kRunning, S::kShuttingDown, S::kSuccess, S::kFailed, S::kUnlock,
              S::kLocked, S::kIdle, S::kBusy}) {
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
