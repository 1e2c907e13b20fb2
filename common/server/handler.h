// Running unary RPC handlers: the request context is checked first (caller,
// actor, purpose), the work runs on a bounded worker pool — never on gRPC's
// callback threads, which must not block on storage — and the absl::Status
// result is mapped to a gRPC status with details at the edge.
//
//   grpc::ServerUnaryReactor* GetPerson(grpc::CallbackServerContext* ctx,
//                                       const GetPersonRequest* req,
//                                       Person* resp) override {
//     return ServeUnary(env_, ctx, req, resp,
//         [this](const RequestContext& rc, const GetPersonRequest& r,
//                Person* out) { return domain_.GetPerson(rc, r, out); });
//   }
#ifndef LOTSE_COMMON_SERVER_HANDLER_H_
#define LOTSE_COMMON_SERVER_HANDLER_H_

#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/errors/status.h"
#include "common/server/request_context.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"

namespace lotse::server {

// A fixed set of threads with a bounded queue. Thread-safe.
class WorkerPool {
 public:
  WorkerPool(int threads, size_t max_queued);
  ~WorkerPool();  // finishes queued work, then joins

  // False when the queue is full (the caller answers RESOURCE_EXHAUSTED).
  bool TrySubmit(absl::AnyInvocable<void()> task);

 private:
  void Run();

  const size_t max_queued_;
  absl::Mutex mu_;
  std::deque<absl::AnyInvocable<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

// What every handler of one process shares.
struct HandlerEnv {
  WorkerPool* pool = nullptr;
  bool insecure_dev = false;
  std::string error_domain;  // ErrorInfo.domain, e.g. "identity.lotse"
};

// Finishes `reactor` with `status` mapped for the client, logging the
// original text of internal errors (which the client does not see).
void FinishWithStatus(grpc::ServerUnaryReactor* reactor,
                      const absl::Status& status, absl::string_view domain);

template <typename Request, typename Response, typename Fn>
grpc::ServerUnaryReactor* ServeUnary(const HandlerEnv& env,
                                     grpc::CallbackServerContext* context,
                                     const Request* request, Response* response,
                                     Fn fn) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<RequestContext> rc =
      ExtractRequestContext(*context, env.insecure_dev);
  if (!rc.ok()) {
    FinishWithStatus(reactor, rc.status(), env.error_domain);
    return reactor;
  }
  const std::string domain = env.error_domain;
  bool queued = env.pool->TrySubmit([context, request, response, reactor,
                                     domain, rc = *std::move(rc),
                                     fn = std::move(fn)]() mutable {
    // A call whose client gave up, or whose deadline passed while it
    // was queued, is not worth starting.
    if (context->IsCancelled()) {
      FinishWithStatus(reactor, absl::CancelledError("call cancelled"), domain);
      return;
    }
    if (absl::Now() >= rc.deadline) {
      FinishWithStatus(
          reactor, absl::DeadlineExceededError("deadline exceeded"), domain);
      return;
    }
    FinishWithStatus(reactor, fn(rc, *request, response), domain);
  });
  if (!queued) {
    FinishWithStatus(
        reactor,
        ErrorWithReason(absl::StatusCode::kResourceExhausted,
                        "SERVER_OVERLOADED", "server busy, retry with backoff"),
        env.error_domain);
  }
  return reactor;
}

// The common case: the work is a member function of the service,
//   return ServeUnary(env_, ctx, req, resp, this, &MyService::DoGetPerson);
template <typename Service, typename Request, typename Response>
grpc::ServerUnaryReactor* ServeUnary(
    const HandlerEnv& env, grpc::CallbackServerContext* context,
    const Request* request, Response* response, Service* service,
    absl::Status (Service::*work)(const RequestContext&, const Request&,
                                  Response*)) {
  return ServeUnary(
      env, context, request, response,
      [service, work](const RequestContext& rc, const Request& r,
                      Response* out) { return (service->*work)(rc, r, out); });
}

}  // namespace lotse::server

#endif  // LOTSE_COMMON_SERVER_HANDLER_H_
