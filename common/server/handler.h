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
//
// New services use UnaryService (below), which does the same from the raw
// request bytes and so can also answer requests protobuf cannot parse.
#ifndef LOTSE_COMMON_SERVER_HANDLER_H_
#define LOTSE_COMMON_SERVER_HANDLER_H_

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/errors/status.h"
#include "common/server/request_context.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "grpcpp/impl/service_type.h"
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

namespace internal {

// Queues `work` on the pool for a call whose request context is `rc`, and
// finishes `reactor` with its result — or without running it when the call
// was cancelled or its deadline passed while queued, or with
// RESOURCE_EXHAUSTED when the queue is full.
void RunOnPool(const HandlerEnv& env, grpc::CallbackServerContext* context,
               grpc::ServerUnaryReactor* reactor, RequestContext rc,
               absl::AnyInvocable<absl::Status(const RequestContext&)> work);

// The request and response types of a work lambda's operator().
template <typename Call>
struct WorkSignature;
template <typename Lambda, typename Req, typename Resp>
struct WorkSignature<absl::Status (Lambda::*)(const RequestContext&, const Req&,
                                              Resp*) const> {
  using Request = Req;
  using Response = Resp;
};
template <typename Lambda, typename Req, typename Resp>
struct WorkSignature<absl::Status (Lambda::*)(const RequestContext&, const Req&,
                                              Resp*)> {
  using Request = Req;
  using Response = Resp;
};

}  // namespace internal

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
  internal::RunOnPool(env, context, reactor, *std::move(rc),
                      [request, response,
                       fn = std::move(fn)](const RequestContext& rc) mutable {
                        return fn(rc, *request, response);
                      });
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

// The reasons (ErrorInfo) UnaryService gives requests it cannot parse.
inline constexpr char kInvalidUtf8Reason[] = "INVALID_UTF8";
inline constexpr char kMalformedRequestReason[] = "MALFORMED_REQUEST";

// A service whose unary RPCs are served from the raw request bytes, so that
// a request protobuf refuses to parse still gets an answer a client can act
// on: INVALID_ARGUMENT with reason INVALID_UTF8 and a field violation for
// every string field that is not valid UTF-8
// ("person.names[0].given_names[1]: must be valid UTF-8"), or with reason
// MALFORMED_REQUEST and "the request is not a valid <message>" for bytes
// that are no such message at all.
// gRPC's generated (typed) services answer both with a bare UNIMPLEMENTED
// before any of our code runs.
//
// Everything else is ServeUnary's: the request context is checked first
// (before the request is parsed), the work runs on the worker pool, and its
// absl::Status is mapped at the edge. Clients, generated stubs, server
// reflection and health are unaffected: on the wire it is the same service.
//
// Converting a service: derive from UnaryService instead of the generated
// CallbackService, name the contract's service, and map each RPC to its
// work in the constructor (the work functions stay as they are):
//
//   class IdentityServiceImpl final : public server::UnaryService {
//    public:
//     explicit IdentityServiceImpl(server::ServiceRuntime& runtime)
//         : UnaryService(runtime.env,
//                        v1::IdentityService::service_full_name()),
//           runtime_(runtime) {
//       Handle("GetAgency", this, &IdentityServiceImpl::DoGet);
//       Handle("SuspendAgency",
//              [this](const RequestContext& rc,
//                     const v1::SuspendAgencyRequest& r, v1::Agency* out) {
//                return DoChangeState(rc, ..., out);
//              });
//       ...
//     }
//   };
//
// and delete the per-RPC `grpc::ServerUnaryReactor* X(...) override`
// methods. Handle() aborts the process at start-up when the name is not a
// unary RPC of the service, its request or response type differs from the
// work's, or the RPC is handled twice — so any test that constructs the
// service catches a mistake. An RPC of the contract that is not handled
// answers UNIMPLEMENTED. Streaming RPCs are not supported.
//
// Handle() must be called before the service is registered with a server
// (i.e. in the constructor); the service must outlive the server.
class UnaryService : public grpc::Service {
 public:
  // The work of one RPC, type-erased (see Handle() for the typed forms).
  using Work = std::function<absl::Status(const RequestContext&,
                                          const google::protobuf::Message&,
                                          google::protobuf::Message*)>;

  // `service_full_name`: e.g. v1::IdentityService::service_full_name(); the
  // contract must be linked in (its generated .pb.cc registers it).
  UnaryService(HandlerEnv env, absl::string_view service_full_name);
  ~UnaryService() override;

  UnaryService(const UnaryService&) = delete;
  UnaryService& operator=(const UnaryService&) = delete;

  // Serves RPC `method` (its short name, "GetPerson") with a member
  // function: Handle("GetPerson", this, &MyService::DoGetPerson).
  template <typename Owner, typename Request, typename Response>
  void Handle(absl::string_view method, Owner* owner,
              absl::Status (Owner::*work)(const RequestContext&, const Request&,
                                          Response*)) {
    HandleTyped<Request, Response>(
        method, [owner, work](const RequestContext& rc, const Request& request,
                              Response* response) {
          return (owner->*work)(rc, request, response);
        });
  }

  // Serves RPC `method` with a lambda taking
  // (const RequestContext&, const Request&, Response*). It may be called
  // concurrently from several worker threads.
  template <typename Fn>
  void Handle(absl::string_view method, Fn work) {
    using Signature = internal::WorkSignature<decltype(&Fn::operator())>;
    HandleTyped<typename Signature::Request, typename Signature::Response>(
        method, std::move(work));
  }

  const google::protobuf::ServiceDescriptor& descriptor() const {
    return *service_;
  }

 private:
  struct HandledMethod;

  template <typename Request, typename Response, typename Fn>
  void HandleTyped(absl::string_view method, Fn work) {
    static_assert(std::is_base_of_v<google::protobuf::Message, Request> &&
                      std::is_base_of_v<google::protobuf::Message, Response>,
                  "request and response must be generated messages");
    AddRawMethod(method, Request::default_instance(),
                 Response::default_instance(),
                 [work = std::move(work)](const RequestContext& rc,
                                          const google::protobuf::Message& in,
                                          google::protobuf::Message* out) {
                   // AddRawMethod made `in` and `out` from the prototypes.
                   return work(rc, static_cast<const Request&>(in),
                               static_cast<Response*>(out));
                 });
  }

  void AddRawMethod(absl::string_view method,
                    const google::protobuf::Message& request_prototype,
                    const google::protobuf::Message& response_prototype,
                    Work work);

  const HandlerEnv env_;
  const google::protobuf::ServiceDescriptor* service_;
  std::vector<std::unique_ptr<HandledMethod>>
      handled_;  // in grpc::Service order
};

}  // namespace lotse::server

#endif  // LOTSE_COMMON_SERVER_HANDLER_H_
