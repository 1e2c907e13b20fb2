// The per-agency limiter on a test clock: the token bucket's refusals and
// retry delays, calls in flight, per-agency overrides, the bounded table,
// what refusals carry, and the parsing of the Limits flags.
#include "common/server/agency_limits.h"

#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/errors/status.h"
#include "common/server/flags.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/test_clock.h"

namespace lotse::server {
namespace {

using ::lotse::testing::TestClock;
using ::testing::HasSubstr;

class AgencyLimiterTest : public ::testing::Test {
 protected:
  std::unique_ptr<AgencyLimiter> Make(AgencyLimit defaults,
                                      size_t max_agencies = 100) {
    AgencyLimiterOptions options;
    options.defaults = defaults;
    options.overrides = overrides_;
    options.max_agencies = max_agencies;
    options.clock = clock_->AsFunction();
    options.on_refused = [this](const std::string& agency,
                                absl::string_view reason) {
      refused_.push_back(absl::StrCat(agency, " ", reason));
    };
    absl::StatusOr<std::unique_ptr<AgencyLimiter>> made =
        AgencyLimiter::Create(std::move(options));
    EXPECT_TRUE(made.ok()) << made.status();
    return made.ok() ? *std::move(made) : nullptr;
  }

  std::shared_ptr<TestClock> clock_ = std::make_shared<TestClock>();
  absl::flat_hash_map<std::string, AgencyLimit> overrides_;
  std::vector<std::string> refused_;
};

TEST_F(AgencyLimiterTest, BurstThenRateWithTheDelayOfTheNextToken) {
  auto limiter = Make({/*max_in_flight=*/0, /*rate=*/4, /*burst=*/3});
  ASSERT_NE(limiter, nullptr);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(limiter->Admit("kim-koeln").ok()) << "call " << i;
  }
  absl::StatusOr<AgencyLimiter::Permit> refused = limiter->Admit("kim-koeln");
  ASSERT_FALSE(refused.ok());
  const absl::Status& s = refused.status();
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ReasonOf(s), "AGENCY_RATE_LIMITED");
  EXPECT_EQ(MetadataOf(s, "limit"), "agency_rate");
  EXPECT_EQ(MetadataOf(s, "value"), "4");
  // Four tokens a second: the next one is due in 250 ms.
  EXPECT_EQ(RetryDelayOf(s), absl::Milliseconds(250));

  // 100 ms later 0.4 of a token has come back: 150 ms to go.
  clock_->Advance(absl::Milliseconds(100));
  refused = limiter->Admit("kim-koeln");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(RetryDelayOf(refused.status()), absl::Milliseconds(150));
  // After the delay the call is admitted, and the next one waits again.
  clock_->Advance(absl::Milliseconds(150));
  EXPECT_TRUE(limiter->Admit("kim-koeln").ok());
  EXPECT_FALSE(limiter->Admit("kim-koeln").ok());
  EXPECT_EQ(refused_,
            (std::vector<std::string>{"kim-koeln AGENCY_RATE_LIMITED",
                                      "kim-koeln AGENCY_RATE_LIMITED",
                                      "kim-koeln AGENCY_RATE_LIMITED"}));
}

TEST_F(AgencyLimiterTest, TheBucketRefillsOnlyUpToTheBurst) {
  auto limiter = Make({0, /*rate=*/10, /*burst=*/5});
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(limiter->Admit("a").ok());
  ASSERT_FALSE(limiter->Admit("a").ok());
  clock_->Advance(absl::Hours(1));
  int admitted = 0;
  while (limiter->Admit("a").ok()) ++admitted;
  EXPECT_EQ(admitted, 5);
}

TEST_F(AgencyLimiterTest, OneAgencyOverItsRateLeavesOthersAlone) {
  auto limiter = Make({0, /*rate=*/1, /*burst=*/2});
  ASSERT_TRUE(limiter->Admit("flooder").ok());
  ASSERT_TRUE(limiter->Admit("flooder").ok());
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(limiter->Admit("flooder").ok());
  EXPECT_TRUE(limiter->Admit("calm").ok());
  EXPECT_TRUE(limiter->Admit("calm").ok());
}

TEST_F(AgencyLimiterTest, CallsInFlightAreGivenBackWhenPermitsEnd) {
  auto limiter = Make({/*max_in_flight=*/2, 0, 0});
  absl::StatusOr<AgencyLimiter::Permit> first = limiter->Admit("a");
  absl::StatusOr<AgencyLimiter::Permit> second = limiter->Admit("a");
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(limiter->in_flight("a"), 2);
  absl::StatusOr<AgencyLimiter::Permit> third = limiter->Admit("a");
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(ReasonOf(third.status()), "AGENCY_TOO_MANY_IN_FLIGHT");
  EXPECT_EQ(MetadataOf(third.status(), "limit"), "agency_max_in_flight");
  EXPECT_EQ(MetadataOf(third.status(), "value"), "2");
  EXPECT_EQ(RetryDelayOf(third.status()), kInFlightRetryDelay);
  EXPECT_TRUE(limiter->Admit("b").ok());  // its own count

  // Moving a permit moves the place; destroying it gives the place back.
  AgencyLimiter::Permit moved = *std::move(first);
  EXPECT_EQ(limiter->in_flight("a"), 2);
  moved = AgencyLimiter::Permit();
  EXPECT_EQ(limiter->in_flight("a"), 1);
  EXPECT_TRUE(limiter->Admit("a").ok());  // a temporary: ends at once
  EXPECT_EQ(limiter->in_flight("a"), 1);
}

TEST_F(AgencyLimiterTest, InFlightRefusalsDoNotSpendTokens) {
  auto limiter = Make({/*max_in_flight=*/1, /*rate=*/1, /*burst=*/2});
  absl::StatusOr<AgencyLimiter::Permit> held = limiter->Admit("a");
  ASSERT_TRUE(held.ok());
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(ReasonOf(limiter->Admit("a").status()),
              "AGENCY_TOO_MANY_IN_FLIGHT");
  }
  *held = AgencyLimiter::Permit();
  EXPECT_TRUE(limiter->Admit("a").ok());  // the second token is still there
}

TEST_F(AgencyLimiterTest, OverridesReplaceTheDefaultsForTheirAgency) {
  overrides_["import-bot"] = {/*max_in_flight=*/0, /*rate=*/1, /*burst=*/1};
  overrides_["big-jobcenter"] = {0, 0, 0};  // no limit
  auto limiter = Make({0, /*rate=*/1, /*burst=*/3});
  EXPECT_TRUE(limiter->Admit("import-bot").ok());
  EXPECT_FALSE(limiter->Admit("import-bot").ok());
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(limiter->Admit("big-jobcenter").ok());
  }
  EXPECT_EQ(limiter->LimitOf("import-bot").burst, 1);
  EXPECT_EQ(limiter->LimitOf("anyone").burst, 3);
}

TEST_F(AgencyLimiterTest, TheTableStaysBoundedAndForgetsOnlyIdleAgencies) {
  auto limiter = Make({/*max_in_flight=*/5, /*rate=*/1, /*burst=*/1},
                      /*max_agencies=*/3);
  // Three agencies that each hold a call and spent their token.
  std::vector<AgencyLimiter::Permit> held;
  for (const char* a : {"a", "b", "c"}) {
    absl::StatusOr<AgencyLimiter::Permit> p = limiter->Admit(a);
    ASSERT_TRUE(p.ok());
    held.push_back(*std::move(p));
  }
  EXPECT_EQ(limiter->tracked_agencies(), 3u);
  // Made-up agencies beyond the table share one bucket, under the defaults:
  // the first gets its token, the next is refused as the shared entry.
  EXPECT_TRUE(limiter->Admit("x1").ok());
  absl::StatusOr<AgencyLimiter::Permit> shared = limiter->Admit("x2");
  ASSERT_FALSE(shared.ok());
  EXPECT_EQ(refused_.back(), "_other AGENCY_RATE_LIMITED");
  for (int i = 0; i < 1000; ++i) {
    limiter->Admit(absl::StrCat("made-up-", i)).IgnoreError();
  }
  EXPECT_EQ(limiter->tracked_agencies(), 3u);
  // The tracked agencies kept their state: "a" has no token left.
  EXPECT_EQ(ReasonOf(limiter->Admit("a").status()), "AGENCY_RATE_LIMITED");

  // Once idle with a full bucket again, they make room for newcomers.
  held.clear();
  clock_->Advance(absl::Seconds(5));
  EXPECT_TRUE(limiter->Admit("newcomer").ok());
  EXPECT_EQ(limiter->in_flight("newcomer"), 0);
  EXPECT_LE(limiter->tracked_agencies(), 3u);
  absl::StatusOr<AgencyLimiter::Permit> again = limiter->Admit("newcomer");
  EXPECT_FALSE(again.ok()) << "the newcomer has a bucket of its own";
}

TEST(AgencyLimitsValidationTest, BadLimitsAreRefused) {
  EXPECT_TRUE(ValidateAgencyLimit({0, 0, 0}, "x").ok());
  EXPECT_TRUE(ValidateAgencyLimit({10, 2.5, 1}, "x").ok());
  for (const AgencyLimit& bad :
       {AgencyLimit{-1, 0, 0}, AgencyLimit{0, -1, 5}, AgencyLimit{0, 5, 0},
        AgencyLimit{0, std::numeric_limits<double>::infinity(), 5},
        AgencyLimit{0, std::numeric_limits<double>::quiet_NaN(), 5}}) {
    absl::Status s = ValidateAgencyLimit(bad, "--flag");
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr("--flag"));
  }
  AgencyLimiterOptions options;
  options.defaults = {0, 5, 0};
  EXPECT_FALSE(AgencyLimiter::Create(options).ok());
  options.defaults = {0, 5, 5};
  options.max_agencies = 0;
  EXPECT_FALSE(AgencyLimiter::Create(options).ok());
}

TEST(AgencyLimitsValidationTest, OverridesParse) {
  absl::StatusOr<absl::flat_hash_map<std::string, AgencyLimit>> parsed =
      ParseAgencyOverrides(" import-bot:8:50 , jobcenter-koeln:512:2000:4000",
                           AgencyLimit{256, 1000, 77});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ(parsed->at("import-bot"), (AgencyLimit{8, 50, 77}));
  EXPECT_EQ(parsed->at("jobcenter-koeln"), (AgencyLimit{512, 2000, 4000}));
  EXPECT_TRUE(ParseAgencyOverrides("", {}).value().empty());
}

TEST(AgencyLimitsValidationTest, MalformedOverridesNameTheEntry) {
  const AgencyLimit defaults{256, 1000, 2000};
  for (const char* bad :
       {"import-bot", "import-bot:8", "import-bot:8:50:1:2", "bad/name:1:1",
        ":1:1", "a:x:1", "a:1:fast", "a:1:1:many", "a:-1:1", "a:1:-5",
        "a:1:5:0", "a:1:1,a:2:2"}) {
    absl::StatusOr<absl::flat_hash_map<std::string, AgencyLimit>> parsed =
        ParseAgencyOverrides(bad, defaults);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
    EXPECT_THAT(parsed.status().message(), HasSubstr("--agency_limits")) << bad;
  }
}

// The flags as the process reads them: defaults pass, each bad value is
// refused naming its flag.
class AgencyLimitFlagsTest : public ::testing::Test {
 protected:
  void TearDown() override {
    absl::SetFlag(&FLAGS_agency_max_in_flight, 256);
    absl::SetFlag(&FLAGS_agency_rate, 1000);
    absl::SetFlag(&FLAGS_agency_burst, 2000);
    absl::SetFlag(&FLAGS_agency_limits, "");
    absl::SetFlag(&FLAGS_agency_limit_table_size, 10000);
  }
};

TEST_F(AgencyLimitFlagsTest, DefaultsAreValid) {
  absl::StatusOr<AgencyLimiterOptions> options = AgencyLimitsFromFlags();
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->defaults, (AgencyLimit{256, 1000, 2000}));
  EXPECT_TRUE(options->overrides.empty());
  EXPECT_EQ(options->max_agencies, 10000u);
}

TEST_F(AgencyLimitFlagsTest, BadValuesAreRefusedNamingTheFlag) {
  struct Case {
    std::function<void()> set;
    const char* flag;
  };
  const std::vector<Case> cases = {
      {[] { absl::SetFlag(&FLAGS_agency_max_in_flight, -1); },
       "--agency_max_in_flight"},
      {[] { absl::SetFlag(&FLAGS_agency_rate, -0.5); }, "--agency_rate"},
      {[] { absl::SetFlag(&FLAGS_agency_burst, 0); }, "--agency_burst"},
      {[] { absl::SetFlag(&FLAGS_agency_limits, "kim-koeln:1"); },
       "--agency_limits"},
      {[] { absl::SetFlag(&FLAGS_agency_limit_table_size, 0); },
       "--agency_limit_table_size"},
  };
  for (const Case& c : cases) {
    TearDown();
    c.set();
    absl::StatusOr<AgencyLimiterOptions> options = AgencyLimitsFromFlags();
    EXPECT_EQ(options.status().code(), absl::StatusCode::kInvalidArgument)
        << c.flag;
    EXPECT_THAT(options.status().message(), HasSubstr(c.flag));
  }
  // No rate: the burst does not matter.
  TearDown();
  absl::SetFlag(&FLAGS_agency_rate, 0);
  absl::SetFlag(&FLAGS_agency_burst, 0);
  EXPECT_TRUE(AgencyLimitsFromFlags().ok());
}

}  // namespace
}  // namespace lotse::server
