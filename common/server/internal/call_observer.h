// A server interceptor that observes every call — handlers, health,
// reflection and UNIMPLEMENTED methods alike — and records it once, when the
// status is sent: one JSON log line (method, agency, code, latency) and the
// per-RPC Prometheus metrics.
#ifndef LOTSE_COMMON_SERVER_INTERNAL_CALL_OBSERVER_H_
#define LOTSE_COMMON_SERVER_INTERNAL_CALL_OBSERVER_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/support/server_interceptor.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace lotse::server::internal {

// Per-RPC metrics. A method label per method called, but at most
// kMaxMethodLabels of them: calls to methods a client made up (answered
// UNIMPLEMENTED) would otherwise add time series without bound; later
// methods count under kOtherMethod. Thread-safe.
class RpcMetrics {
 public:
  static constexpr size_t kMaxMethodLabels = 1000;
  static constexpr char kOtherMethod[] = "_other";

  RpcMetrics(std::string service, prometheus::Registry& registry);
  void Record(const std::string& method, grpc::StatusCode code, double seconds);

 private:
  std::string MethodLabel(const std::string& method);

  std::string service_;
  absl::Mutex mu_;
  absl::flat_hash_set<std::string> methods_ ABSL_GUARDED_BY(mu_);
  prometheus::Family<prometheus::Counter>& calls_;
  prometheus::Family<prometheus::Counter>& errors_;
  prometheus::Family<prometheus::Histogram>& latency_;
};

class CallObserverFactory
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  CallObserverFactory(std::shared_ptr<RpcMetrics> metrics, bool log_calls,
                      bool insecure_dev)
      : metrics_(std::move(metrics)),
        log_calls_(log_calls),
        insecure_dev_(insecure_dev) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  std::shared_ptr<RpcMetrics> metrics_;
  bool log_calls_;
  bool insecure_dev_;
};

// Status code names as gRPC documents them ("OK", "NOT_FOUND", ...).
const char* StatusCodeName(grpc::StatusCode code);

}  // namespace lotse::server::internal

#endif  // LOTSE_COMMON_SERVER_INTERNAL_CALL_OBSERVER_H_
