#include "common/errors/status.h"

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"

namespace lotse {
namespace {

TEST(FieldViolationsTest, EmptyIsOk) {
  FieldViolations v;
  EXPECT_TRUE(v.ToStatus().ok());
}

TEST(FieldViolationsTest, CarriesEveryViolation) {
  FieldViolations v;
  v.Add("person.names[0].family_name", "must not be empty");
  v.Add("page_size", "must not be negative");
  absl::Status s = v.ToStatus();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldViolationsOf(s), v.violations());
  EXPECT_NE(s.message().find("page_size"), absl::string_view::npos);
}

TEST(ErrorWithReasonTest, ReasonSurvivesTheRoundTripThroughGrpc) {
  absl::Status s =
      ErrorWithReason(absl::StatusCode::kPermissionDenied, "NO_LEGAL_BASIS",
                      "no rule or consent", {{"category", "HEALTH"}});
  grpc::Status g = ToGrpcStatus(s, "identity.lotse");
  EXPECT_EQ(g.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(g.error_message(), "no rule or consent");

  google::rpc::Status rich;
  ASSERT_TRUE(rich.ParseFromString(g.error_details()));
  EXPECT_EQ(rich.code(), grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_EQ(rich.details_size(), 1);
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(rich.details(0).UnpackTo(&info));
  EXPECT_EQ(info.reason(), "NO_LEGAL_BASIS");
  EXPECT_EQ(info.domain(), "identity.lotse");
  EXPECT_EQ(info.metadata().at("category"), "HEALTH");

  absl::Status back = FromGrpcStatus(g);
  EXPECT_EQ(back.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ReasonOf(back), "NO_LEGAL_BASIS");
  EXPECT_EQ(MetadataOf(back, "category"), "HEALTH");
  EXPECT_FALSE(MetadataOf(back, "person").has_value());
  EXPECT_FALSE(
      MetadataOf(absl::NotFoundError("plain"), "category").has_value());
}

TEST(WithRetryDelayTest, RetryInfoTravelsBesideTheReason) {
  absl::Status s =
      WithRetryDelay(ErrorWithReason(absl::StatusCode::kResourceExhausted,
                                     "AGENCY_RATE_LIMITED", "slow down",
                                     {{"limit", "agency_rate"}}),
                     absl::Milliseconds(1250));
  EXPECT_EQ(RetryDelayOf(s), absl::Milliseconds(1250));
  grpc::Status g = ToGrpcStatus(s, "cases.lotse");
  google::rpc::Status rich;
  ASSERT_TRUE(rich.ParseFromString(g.error_details()));
  ASSERT_EQ(rich.details_size(), 2);
  google::rpc::RetryInfo retry;
  ASSERT_TRUE(rich.details(1).UnpackTo(&retry));
  EXPECT_EQ(retry.retry_delay().seconds(), 1);
  EXPECT_EQ(retry.retry_delay().nanos(), 250000000);

  absl::Status back = FromGrpcStatus(g);
  EXPECT_EQ(back.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ReasonOf(back), "AGENCY_RATE_LIMITED");
  EXPECT_EQ(RetryDelayOf(back), absl::Milliseconds(1250));
}

TEST(WithRetryDelayTest, NegativeDelaysAreZeroAndOkCarriesNothing) {
  EXPECT_EQ(RetryDelayOf(WithRetryDelay(absl::ResourceExhaustedError("x"),
                                        absl::Seconds(-3))),
            absl::ZeroDuration());
  EXPECT_TRUE(WithRetryDelay(absl::OkStatus(), absl::Seconds(1)).ok());
  EXPECT_FALSE(RetryDelayOf(absl::ResourceExhaustedError("x")).has_value());
}

TEST(ToGrpcStatusTest, FieldViolationsBecomeBadRequest) {
  absl::Status s = InvalidArgumentError({{"a", "bad"}, {"b", "worse"}});
  grpc::Status g = ToGrpcStatus(s, "x");
  google::rpc::Status rich;
  ASSERT_TRUE(rich.ParseFromString(g.error_details()));
  google::rpc::BadRequest bad;
  ASSERT_TRUE(rich.details(0).UnpackTo(&bad));
  ASSERT_EQ(bad.field_violations_size(), 2);
  EXPECT_EQ(bad.field_violations(1).field(), "b");
  EXPECT_EQ(FieldViolationsOf(FromGrpcStatus(g)).size(), 2u);
}

TEST(ToGrpcStatusTest, InternalMessagesAreNotShownToClients) {
  grpc::Status g =
      ToGrpcStatus(absl::InternalError("duplicate key persons_pkey"), "x");
  EXPECT_EQ(g.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(g.error_message(), "internal error");
  EXPECT_TRUE(g.error_details().empty());
}

TEST(ToGrpcStatusTest, OkStaysOkAndPlainErrorsKeepTheirCode) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus(), "x").ok());
  grpc::Status g = ToGrpcStatus(absl::NotFoundError("persons/x"), "x");
  EXPECT_EQ(g.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(g.error_message(), "persons/x");
  EXPECT_TRUE(g.error_details().empty());
  EXPECT_FALSE(ReasonOf(FromGrpcStatus(g)).has_value());
}

TEST(FromGrpcStatusTest, GarbageDetailsAreIgnored) {
  grpc::Status g(grpc::StatusCode::ABORTED, "stale", "\xff\xfe not a proto");
  absl::Status s = FromGrpcStatus(g);
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(s.message(), "stale");
  EXPECT_FALSE(ReasonOf(s).has_value());
}

}  // namespace
}  // namespace lotse
