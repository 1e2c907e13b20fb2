#include "common/errors/status.h"

#include <algorithm>
#include <cstdint>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace lotse {
namespace {

constexpr char kTypePrefix[] = "type.googleapis.com/";
const std::string& BadRequestUrl() {
  static const auto* url = new std::string(absl::StrCat(
      kTypePrefix, google::rpc::BadRequest::descriptor()->full_name()));
  return *url;
}
const std::string& ErrorInfoUrl() {
  static const auto* url = new std::string(absl::StrCat(
      kTypePrefix, google::rpc::ErrorInfo::descriptor()->full_name()));
  return *url;
}

const std::string& RetryInfoUrl() {
  static const auto* url = new std::string(absl::StrCat(
      kTypePrefix, google::rpc::RetryInfo::descriptor()->full_name()));
  return *url;
}

template <typename Message>
std::optional<Message> PayloadOf(const absl::Status& status,
                                 const std::string& url) {
  auto cord = status.GetPayload(url);
  if (!cord.has_value()) return std::nullopt;
  Message message;
  if (!message.ParseFromString(std::string(*cord))) return std::nullopt;
  return message;
}

}  // namespace

void FieldViolations::Add(std::string field, std::string description) {
  violations_.push_back({std::move(field), std::move(description)});
}

absl::Status FieldViolations::ToStatus() const {
  if (violations_.empty()) return absl::OkStatus();
  return InvalidArgumentError(violations_);
}

absl::Status InvalidArgumentError(std::vector<FieldViolation> violations) {
  google::rpc::BadRequest bad_request;
  std::vector<std::string> parts;
  for (const FieldViolation& v : violations) {
    auto* fv = bad_request.add_field_violations();
    fv->set_field(v.field);
    fv->set_description(v.description);
    parts.push_back(absl::StrCat(v.field, ": ", v.description));
  }
  absl::Status status = absl::InvalidArgumentError(
      absl::StrCat("invalid request: ", absl::StrJoin(parts, "; ")));
  status.SetPayload(BadRequestUrl(),
                    absl::Cord(bad_request.SerializeAsString()));
  return status;
}

absl::Status ErrorWithReason(
    absl::StatusCode code, absl::string_view reason, absl::string_view message,
    std::vector<std::pair<std::string, std::string>> metadata) {
  absl::Status status(code, message);
  if (status.ok()) return status;  // OK carries no payload
  google::rpc::ErrorInfo info;
  info.set_reason(std::string(reason));
  for (auto& [key, value] : metadata) (*info.mutable_metadata())[key] = value;
  status.SetPayload(ErrorInfoUrl(), absl::Cord(info.SerializeAsString()));
  return status;
}

std::optional<std::string> ReasonOf(const absl::Status& status) {
  auto info = PayloadOf<google::rpc::ErrorInfo>(status, ErrorInfoUrl());
  if (!info.has_value()) return std::nullopt;
  return info->reason();
}

std::optional<std::string> MetadataOf(const absl::Status& status,
                                      absl::string_view key) {
  auto info = PayloadOf<google::rpc::ErrorInfo>(status, ErrorInfoUrl());
  if (!info.has_value()) return std::nullopt;
  auto it = info->metadata().find(std::string(key));
  if (it == info->metadata().end()) return std::nullopt;
  return it->second;
}

absl::Status WithRetryDelay(absl::Status status, absl::Duration delay) {
  if (status.ok()) return status;
  const int64_t millis = std::max<int64_t>(0, absl::ToInt64Milliseconds(delay));
  google::rpc::RetryInfo info;
  info.mutable_retry_delay()->set_seconds(millis / 1000);
  info.mutable_retry_delay()->set_nanos(
      static_cast<int32_t>((millis % 1000) * 1000000));
  status.SetPayload(RetryInfoUrl(), absl::Cord(info.SerializeAsString()));
  return status;
}

std::optional<absl::Duration> RetryDelayOf(const absl::Status& status) {
  auto info = PayloadOf<google::rpc::RetryInfo>(status, RetryInfoUrl());
  if (!info.has_value()) return std::nullopt;
  return absl::Seconds(info->retry_delay().seconds()) +
         absl::Nanoseconds(info->retry_delay().nanos());
}

std::vector<FieldViolation> FieldViolationsOf(const absl::Status& status) {
  std::vector<FieldViolation> out;
  auto bad = PayloadOf<google::rpc::BadRequest>(status, BadRequestUrl());
  if (!bad.has_value()) return out;
  for (const auto& fv : bad->field_violations()) {
    out.push_back({fv.field(), fv.description()});
  }
  return out;
}

grpc::Status ToGrpcStatus(const absl::Status& status,
                          absl::string_view domain) {
  if (status.ok()) return grpc::Status::OK;
  const auto code = static_cast<grpc::StatusCode>(status.code());
  std::string message(status.message());
  if (status.code() == absl::StatusCode::kInternal ||
      status.code() == absl::StatusCode::kUnknown) {
    message = "internal error";
  }
  google::rpc::Status rich;
  rich.set_code(static_cast<int>(code));
  rich.set_message(message);
  if (auto bad = PayloadOf<google::rpc::BadRequest>(status, BadRequestUrl())) {
    rich.add_details()->PackFrom(*bad);
  }
  if (auto info = PayloadOf<google::rpc::ErrorInfo>(status, ErrorInfoUrl())) {
    info->set_domain(std::string(domain));
    rich.add_details()->PackFrom(*info);
  }
  if (auto retry = PayloadOf<google::rpc::RetryInfo>(status, RetryInfoUrl())) {
    rich.add_details()->PackFrom(*retry);
  }
  if (rich.details_size() == 0) return grpc::Status(code, message);
  return grpc::Status(code, message, rich.SerializeAsString());
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  const auto code = static_cast<absl::StatusCode>(status.error_code());
  google::rpc::Status rich;
  if (status.error_details().empty() ||
      !rich.ParseFromString(status.error_details())) {
    return absl::Status(code, status.error_message());
  }
  absl::Status out(code, status.error_message());
  for (const auto& any : rich.details()) {
    google::rpc::BadRequest bad;
    google::rpc::ErrorInfo info;
    google::rpc::RetryInfo retry;
    if (any.UnpackTo(&bad)) {
      out.SetPayload(BadRequestUrl(), absl::Cord(bad.SerializeAsString()));
    } else if (any.UnpackTo(&info)) {
      out.SetPayload(ErrorInfoUrl(), absl::Cord(info.SerializeAsString()));
    } else if (any.UnpackTo(&retry)) {
      out.SetPayload(RetryInfoUrl(), absl::Cord(retry.SerializeAsString()));
    }
  }
  return out;
}

}  // namespace lotse
