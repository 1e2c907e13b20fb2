// The identity client's circuit breaker, on a clock the test moves.
#include "common/clients/internal/circuit_breaker.h"

#include <vector>

#include "gtest/gtest.h"

namespace lotse::clients::internal {
namespace {

class CircuitBreakerTest : public ::testing::Test {
 protected:
  CircuitBreaker Make(int failures, absl::Duration open_for) {
    return CircuitBreaker({failures, open_for, nullptr},
                          [this] { return now_; });
  }
  absl::Time now_ = absl::FromUnixSeconds(1000);
};

TEST_F(CircuitBreakerTest, OpensAfterUnansweredCallsInARow) {
  CircuitBreaker breaker = Make(3, absl::Seconds(1));
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(breaker.Allow());
    breaker.Record(false);
  }
  // An answer in between starts the count afresh.
  ASSERT_TRUE(breaker.Allow());
  breaker.Record(true);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(breaker.Allow());
    breaker.Record(false);
  }
  EXPECT_FALSE(breaker.open());
  ASSERT_TRUE(breaker.Allow());
  breaker.Record(false);
  EXPECT_TRUE(breaker.open());
  EXPECT_FALSE(breaker.Allow());
  now_ += absl::Milliseconds(999);
  EXPECT_FALSE(breaker.Allow());
}

TEST_F(CircuitBreakerTest, LetsOneTrialOutAtATimeAndClosesOnAnAnswer) {
  CircuitBreaker breaker = Make(1, absl::Seconds(1));
  ASSERT_TRUE(breaker.Allow());
  breaker.Record(false);
  EXPECT_FALSE(breaker.Allow());
  now_ += absl::Seconds(1);
  EXPECT_TRUE(breaker.Allow());   // the trial
  EXPECT_FALSE(breaker.Allow());  // no second one while it is out
  breaker.Record(false);          // unanswered: open for another second
  EXPECT_FALSE(breaker.Allow());
  now_ += absl::Milliseconds(500);
  EXPECT_FALSE(breaker.Allow());
  now_ += absl::Milliseconds(500);
  EXPECT_TRUE(breaker.Allow());
  breaker.Record(true);
  EXPECT_FALSE(breaker.open());
  EXPECT_TRUE(breaker.Allow());
  EXPECT_TRUE(breaker.Allow());
}

TEST_F(CircuitBreakerTest, TellsWhenItOpensAndCloses) {
  std::vector<bool> changes;
  CircuitBreaker breaker(
      {2, absl::Seconds(1), [&](bool open) { changes.push_back(open); }},
      [this] { return now_; });
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(breaker.Allow());
    breaker.Record(false);
  }
  EXPECT_EQ(changes, std::vector<bool>({true}));
  now_ += absl::Seconds(1);
  ASSERT_TRUE(breaker.Allow());
  breaker.Record(false);  // still open: no news
  EXPECT_EQ(changes, std::vector<bool>({true}));
  now_ += absl::Seconds(1);
  ASSERT_TRUE(breaker.Allow());
  breaker.Record(true);
  EXPECT_EQ(changes, std::vector<bool>({true, false}));
  ASSERT_TRUE(breaker.Allow());
  breaker.Record(true);
  EXPECT_EQ(changes.size(), 2u);
}

TEST_F(CircuitBreakerTest, ZeroFailuresNeverOpens) {
  CircuitBreaker breaker = Make(0, absl::Seconds(1));
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(breaker.Allow());
    breaker.Record(false);
  }
  EXPECT_FALSE(breaker.open());
}

}  // namespace
}  // namespace lotse::clients::internal
