#include "common/server/internal/call_observer.h"

#include <chrono>

#include "common/server/agency_limits.h"
#include "common/server/log.h"
#include "common/server/request_context.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpc/grpc_security_constants.h"

namespace lotse::server::internal {
namespace {

const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
      0.1,    0.25,  0.5,    1.0,   2.5,  5.0,   10.0};
  return *buckets;
}

// The caller's agency for the log line: from the certificate, or from dev
// metadata in --insecure_dev mode. Unknown callers are logged as "-".
std::string AgencyOf(grpc::ServerContextBase* context, bool insecure_dev) {
  if (context == nullptr) return "-";
  if (insecure_dev) {
    auto it = context->client_metadata().find(kDevAgencyMetadataKey);
    if (it == context->client_metadata().end()) return "-";
    return std::string(it->second.data(), it->second.size());
  }
  auto auth = context->auth_context();
  if (auth == nullptr) return "-";
  auto values = auth->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME);
  if (values.empty()) return "-";
  return std::string(values.front().data(), values.front().size());
}

// Whether `status` refuses a call because its agency was over a limit. Such
// calls get no log line of their own: under a flood there would be one per
// call; the refusal hook (agency_limits.h) counts them and writes a
// rate-limited warning instead.
bool IsAgencyLimitRefusal(const grpc::Status& status) {
  if (status.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED ||
      status.error_details().empty()) {
    return false;
  }
  google::rpc::Status rich;
  if (!rich.ParseFromString(status.error_details())) return false;
  for (const auto& any : rich.details()) {
    google::rpc::ErrorInfo info;
    if (!any.UnpackTo(&info)) continue;
    return info.reason() == kAgencyRateLimitedReason ||
           info.reason() == kTooManyInFlightReason ||
           info.reason() == kTooManyWatchStreamsReason;
  }
  return false;
}

class CallObserver : public grpc::experimental::Interceptor {
 public:
  CallObserver(grpc::experimental::ServerRpcInfo* info,
               std::shared_ptr<RpcMetrics> metrics, bool log_calls,
               bool insecure_dev)
      : info_(info),
        metrics_(std::move(metrics)),
        log_calls_(log_calls),
        insecure_dev_(insecure_dev),
        start_(std::chrono::steady_clock::now()) {}

  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      Record(methods->GetSendStatus());
    }
    methods->Proceed();
  }

 private:
  void Record(const grpc::Status& status) {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_)
            .count();
    const std::string method = info_->method() ? info_->method() : "?";
    metrics_->Record(method, status.error_code(), seconds);
    if (!log_calls_ || IsAgencyLimitRefusal(status)) return;
    Log(status.ok() ? LogLevel::kInfo : LogLevel::kWarning, "rpc",
        {{"method", method},
         {"agency", AgencyOf(info_->server_context(), insecure_dev_)},
         {"code", std::string(StatusCodeName(status.error_code()))},
         {"latency_ms", seconds * 1000.0}});
  }

  grpc::experimental::ServerRpcInfo* info_;
  std::shared_ptr<RpcMetrics> metrics_;
  bool log_calls_;
  bool insecure_dev_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace

const char* StatusCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::OK:
      return "OK";
    case grpc::CANCELLED:
      return "CANCELLED";
    case grpc::UNKNOWN:
      return "UNKNOWN";
    case grpc::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::ABORTED:
      return "ABORTED";
    case grpc::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::INTERNAL:
      return "INTERNAL";
    case grpc::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

RpcMetrics::RpcMetrics(std::string service, prometheus::Registry& registry)
    : service_(std::move(service)),
      calls_(prometheus::BuildCounter()
                 .Name("lotse_rpc_calls_total")
                 .Help("Completed RPCs by method and status code")
                 .Register(registry)),
      errors_(prometheus::BuildCounter()
                  .Name("lotse_rpc_errors_total")
                  .Help("RPCs that ended with a non-OK status, by code")
                  .Register(registry)),
      latency_(prometheus::BuildHistogram()
                   .Name("lotse_rpc_duration_seconds")
                   .Help("Server-side RPC latency")
                   .Register(registry)) {}

std::string RpcMetrics::MethodLabel(const std::string& method) {
  absl::MutexLock lock(&mu_);
  if (methods_.contains(method)) return method;
  if (methods_.size() >= kMaxMethodLabels) return kOtherMethod;
  methods_.insert(method);
  return method;
}

void RpcMetrics::Record(const std::string& called, grpc::StatusCode code,
                        double seconds) {
  const std::string method = MethodLabel(called);
  const std::string code_name = StatusCodeName(code);
  calls_.Add({{"service", service_}, {"method", method}, {"code", code_name}})
      .Increment();
  if (code != grpc::OK) {
    errors_
        .Add({{"service", service_}, {"method", method}, {"code", code_name}})
        .Increment();
  }
  latency_.Add({{"service", service_}, {"method", method}}, LatencyBuckets())
      .Observe(seconds);
}

grpc::experimental::Interceptor* CallObserverFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new CallObserver(info, metrics_, log_calls_, insecure_dev_);
}

}  // namespace lotse::server::internal
