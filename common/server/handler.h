// How every Lotse service serves its RPCs (docs/ARCHITECTURE.md shows the
// whole path of one call): a service derives from UnaryService, names its
// contract, and registers each RPC's work in its constructor. The request
// context is checked first (caller, actor, purpose, deadline, method), the
// work runs on a bounded worker pool — never on gRPC's callback threads,
// which must not block on storage — and the absl::Status result is mapped
// to a gRPC status with details at the edge.
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
#include "common/server/agency_limits.h"
#include "common/server/request_context.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "grpcpp/impl/codegen/server_callback_handlers.h"
#include "grpcpp/impl/rpc_service_method.h"
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
  // Honour x-lotse-dev-time (request_context.h); without it a call that
  // carries the metadata is refused (INVALID_ARGUMENT, DEV_CLOCK_DISABLED).
  bool dev_clock = false;
  std::string error_domain;  // ErrorInfo.domain, e.g. "identity.lotse"
  // Admits each call of an agency before anything else is done for it
  // (agency_limits.h); callers with a Lotse service certificate are not
  // limited. Null: no per-agency limits.
  AgencyLimiter* limiter = nullptr;
};

// The retry delay (RetryInfo) of a call refused because the worker pool's
// queue is full (reason SERVER_OVERLOADED).
inline constexpr absl::Duration kServerOverloadedRetryDelay =
    absl::Milliseconds(100);

// The retry delay (RetryInfo) of a call that failed because the service's
// database, or something below the service's own checks, was unavailable.
inline constexpr absl::Duration kUnavailableRetryDelay = absl::Seconds(1);

// `status` as a client may see it (ToGrpcStatus with the texts of
// internals withheld). Logs the original text of what it withholds (the
// UNAVAILABLE ones at most once a second, with the number of calls since
// the last line); such texts come from storage and libraries, never from
// requests, so they carry no personal data.
//   - INTERNAL and UNKNOWN: "internal error" (ToGrpcStatus).
//   - UNAVAILABLE without a reason: its text names files, hosts and server
//     messages, so it becomes a generic text with reason
//     STORAGE_UNAVAILABLE (storage::IsStorageUnavailable) or
//     SERVICE_UNAVAILABLE, and a retry delay of kUnavailableRetryDelay.
//     An UNAVAILABLE that carries a reason (CHECK_UNAVAILABLE,
//     SERVER_DRAINING, ...) was written for clients and passes unchanged.
grpc::Status ToClientStatus(const absl::Status& status,
                            absl::string_view domain);

// Finishes `reactor` with ToClientStatus(status, domain).
void FinishWithStatus(grpc::ServerUnaryReactor* reactor,
                      const absl::Status& status, absl::string_view domain);

namespace internal {

// Queues `work` on the pool for a call whose request context is `rc`, and
// finishes `reactor` with its result — or without running it when the call
// was cancelled or its deadline passed while queued, or with
// RESOURCE_EXHAUSTED (reason SERVER_OVERLOADED, retry delay
// kServerOverloadedRetryDelay) when the queue is full. `permit`, the call's
// place among its agency's calls in flight, is given back once the reactor
// is finished (or the work is dropped).
void RunOnPool(const HandlerEnv& env, grpc::CallbackServerContext* context,
               grpc::ServerUnaryReactor* reactor, RequestContext rc,
               absl::AnyInvocable<absl::Status(const RequestContext&)> work,
               AgencyLimiter::Permit permit = AgencyLimiter::Permit());

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
// The request context is checked first (before the request is parsed),
// then the calling agency's limits (HandlerEnv::limiter), the work runs on
// the worker pool, and its absl::Status is mapped at the edge. Clients,
// generated stubs, server reflection and health see the contract's service: on
// the wire it is the same.
//
// A service names the contract's service and maps each RPC to its work in
// the constructor:
//
//   class PlacementServiceImpl final : public server::UnaryService {
//    public:
//     explicit PlacementServiceImpl(server::ServiceRuntime& runtime)
//         : UnaryService(runtime.env,
//                        v1::PlacementService::service_full_name()),
//           runtime_(runtime) {
//       Handle("GetOffer", this, &PlacementServiceImpl::DoGetOffer);
//       Handle("WithdrawOffer",
//              [this](const RequestContext& rc,
//                     const v1::WithdrawOfferRequest& r, v1::Offer* out) {
//                return DoChangeOffer(rc, ..., out);
//              });
//       ...
//     }
//   };
//
// Handle() aborts the process at start-up when the name is not a unary RPC
// of the service, its request or response type differs from the work's, or
// the RPC is handled twice — so any test that constructs the service
// catches a mistake. An RPC of the contract that is not handled answers
// UNIMPLEMENTED. A server-streaming RPC is served with HandleServerStream;
// client streaming is not supported.
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

  // Serves server-streaming RPC `method` (its short name) with `open`,
  // which gRPC's callback API calls once per stream with the parsed
  // request and which returns the stream's reactor. Unlike unary work it
  // runs on gRPC's thread and must not block; the reactor checks the
  // request context (ExtractRequestContext) itself. A request protobuf
  // cannot parse is refused by gRPC before `open` runs. Aborts at start-up
  // as Handle() does when the RPC is not a server-streaming RPC of the
  // service with these types, or is handled twice.
  template <typename Request, typename Response>
  void HandleServerStream(absl::string_view method,
                          std::function<grpc::ServerWriteReactor<Response>*(
                              grpc::CallbackServerContext*, const Request*)>
                              open) {
    static_assert(std::is_base_of_v<google::protobuf::Message, Request> &&
                      std::is_base_of_v<google::protobuf::Message, Response>,
                  "request and response must be generated messages");
    const std::string* path =
        CheckedPath(method, Request::default_instance(),
                    Response::default_instance(), /*server_streaming=*/true);
    auto* rpc = new grpc::internal::RpcServiceMethod(
        path->c_str(), grpc::internal::RpcMethod::SERVER_STREAMING,
        new grpc::internal::CallbackServerStreamingHandler<Request, Response>(
            std::move(open)));
    rpc->SetServerApiType(grpc::internal::RpcServiceMethod::ApiType::CALL_BACK);
    AddMethod(rpc);
    ++methods_added_;
  }

  const google::protobuf::ServiceDescriptor& descriptor() const {
    return *service_;
  }

  // Serves one call of unary RPC `method` (its short name, "GetPerson")
  // in-process, the way the gRPC edge serves it once the request context
  // is established: parses `request_bytes` as the edge parses the wire
  // bytes (INVALID_ARGUMENT with reason INVALID_UTF8 or MALFORMED_REQUEST),
  // sets rc.method, runs the work on the calling thread (under rc.dev_time
  // when set) and serializes its response into *response_bytes. Returns the
  // work's status, which the edge would map with ToGrpcStatus. UNIMPLEMENTED
  // for an RPC the service does not handle (as on the wire). The worker pool,
  // cancellation and the deadline are not involved. For drivers without
  // sockets, such as the fuzz targets; thread-safe like the work itself.
  absl::Status CallInProcess(absl::string_view method, RequestContext rc,
                             absl::string_view request_bytes,
                             std::string* response_bytes) const;

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

  // Checks that `method` is an RPC of the service of the given kind and
  // types, not handled yet (else aborts: a misconfigured binary must not
  // start), and returns its path "/<service>/<method>", which lives as
  // long as the service (gRPC keeps a pointer to it).
  const std::string* CheckedPath(
      absl::string_view method,
      const google::protobuf::Message& request_prototype,
      const google::protobuf::Message& response_prototype,
      bool server_streaming);

  void AddRawMethod(absl::string_view method,
                    const google::protobuf::Message& request_prototype,
                    const google::protobuf::Message& response_prototype,
                    Work work);

  const HandlerEnv env_;
  const google::protobuf::ServiceDescriptor* service_;
  std::vector<std::unique_ptr<HandledMethod>> handled_;  // unary ones
  std::vector<const google::protobuf::MethodDescriptor*> registered_;
  std::deque<std::string> paths_;  // stable addresses
  int methods_added_ = 0;          // the grpc::Service index of the next
};

}  // namespace lotse::server

#endif  // LOTSE_COMMON_SERVER_HANDLER_H_
