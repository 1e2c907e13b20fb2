#include "common/server/handler.h"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/api/time.h"
#include "common/server/internal/invalid_utf8.h"
#include "common/server/log.h"
#include "common/storage/database.h"
#include "google/protobuf/descriptor.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/impl/codegen/server_callback_handlers.h"
#include "grpcpp/impl/rpc_service_method.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/server_callback.h"

namespace lotse::server {

WorkerPool::WorkerPool(int threads, size_t max_queued)
    : max_queued_(max_queued) {
  if (threads < 1) threads = 1;
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
}

WorkerPool::~WorkerPool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : threads_) t.join();
}

bool WorkerPool::TrySubmit(absl::AnyInvocable<void()> task) {
  absl::MutexLock lock(&mu_);
  if (stopping_ || queue_.size() >= max_queued_) return false;
  queue_.push_back(std::move(task));
  return true;
}

void WorkerPool::Run() {
  while (true) {
    absl::AnyInvocable<void()> task;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](WorkerPool* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) {
            return p->stopping_ || !p->queue_.empty();
          },
          this));
      if (queue_.empty()) return;  // stopping and drained
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

grpc::Status ToClientStatus(const absl::Status& status,
                            absl::string_view domain) {
  if (status.code() == absl::StatusCode::kInternal ||
      status.code() == absl::StatusCode::kUnknown) {
    Log(LogLevel::kError, "internal error",
        {{"domain", std::string(domain)},
         {"detail", std::string(status.message())}});
    return ToGrpcStatus(status, domain);
  }
  if (absl::IsUnavailable(status) && !ReasonOf(status).has_value()) {
    const bool storage = storage::IsStorageUnavailable(status);
    // While a database is away every call fails this way; one line a
    // second, counting the calls it stands for, tells the operator as much
    // as thousands would.
    static std::atomic<int64_t> last_logged_micros{0};
    static std::atomic<int64_t> unlogged{0};
    const int64_t now = absl::ToUnixMicros(absl::Now());
    int64_t last = last_logged_micros.load(std::memory_order_relaxed);
    if (now - last >= absl::ToInt64Microseconds(absl::Seconds(1)) &&
        last_logged_micros.compare_exchange_strong(last, now)) {
      Log(LogLevel::kWarning, storage ? "storage unavailable" : "unavailable",
          {{"domain", std::string(domain)},
           {"detail", std::string(status.message())},
           {"calls_since_last_line", unlogged.exchange(0) + 1}});
    } else {
      unlogged.fetch_add(1, std::memory_order_relaxed);
    }
    return ToGrpcStatus(
        WithRetryDelay(
            storage ? ErrorWithReason(absl::StatusCode::kUnavailable,
                                      "STORAGE_UNAVAILABLE",
                                      "the service's database is unavailable "
                                      "right now; retry later, with the same "
                                      "request_id for a write")
                    : ErrorWithReason(absl::StatusCode::kUnavailable,
                                      "SERVICE_UNAVAILABLE",
                                      "the service cannot answer right now; "
                                      "retry later, with the same "
                                      "request_id for a write"),
            kUnavailableRetryDelay),
        domain);
  }
  return ToGrpcStatus(status, domain);
}

void FinishWithStatus(grpc::ServerUnaryReactor* reactor,
                      const absl::Status& status, absl::string_view domain) {
  reactor->Finish(ToClientStatus(status, domain));
}

namespace internal {

void RunOnPool(const HandlerEnv& env, grpc::CallbackServerContext* context,
               grpc::ServerUnaryReactor* reactor, RequestContext rc,
               absl::AnyInvocable<absl::Status(const RequestContext&)> work,
               AgencyLimiter::Permit permit) {
  const std::string& domain = env.error_domain;
  bool queued = env.pool->TrySubmit([context, reactor, domain,
                                     rc = std::move(rc), work = std::move(work),
                                     permit = std::move(permit)]() mutable {
    // A call whose client gave up, or whose deadline passed while it was
    // queued, is not worth starting.
    absl::Status status;
    if (context->IsCancelled()) {
      status = absl::CancelledError("call cancelled");
    } else if (absl::Now() >= rc.deadline) {
      status = absl::DeadlineExceededError("deadline exceeded");
    } else if (rc.dev_time != absl::InfinitePast()) {
      const api::DevClockScope clock(rc.dev_time);
      status = work(rc);
    } else {
      status = work(rc);
    }
    // The agency's place is free before the client hears the answer, so a
    // client that sends its next call at once is not refused for this one.
    permit = AgencyLimiter::Permit();
    FinishWithStatus(reactor, status, domain);
  });
  if (!queued) {
    FinishWithStatus(
        reactor,
        WithRetryDelay(ErrorWithReason(absl::StatusCode::kResourceExhausted,
                                       "SERVER_OVERLOADED",
                                       "server busy, retry with backoff"),
                       kServerOverloadedRetryDelay),
        env.error_domain);
  }
}

}  // namespace internal

namespace {

// The request's bytes in one piece (only on the error path).
std::string Flatten(const grpc::ByteBuffer& bytes) {
  std::string out;
  std::vector<grpc::Slice> slices;
  if (!bytes.Dump(&slices).ok()) return out;
  for (const grpc::Slice& slice : slices) {
    out.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return out;
}

absl::Status NotAValid(const google::protobuf::Message& message) {
  return ErrorWithReason(absl::StatusCode::kInvalidArgument,
                         kMalformedRequestReason,
                         absl::StrCat("the request is not a valid ",
                                      message.GetDescriptor()->full_name()));
}

// INVALID_ARGUMENT with `violations` and reason INVALID_UTF8.
absl::Status InvalidUtf8Error(std::vector<FieldViolation> violations) {
  const absl::Status with_violations =
      InvalidArgumentError(std::move(violations));
  absl::Status status =
      ErrorWithReason(absl::StatusCode::kInvalidArgument, kInvalidUtf8Reason,
                      with_violations.message());
  with_violations.ForEachPayload(
      [&status](absl::string_view type_url, const absl::Cord& payload) {
        status.SetPayload(type_url, payload);
      });
  return status;
}

// Parses `bytes` into `message`. INVALID_ARGUMENT when that fails: with
// field violations for string fields that are not valid UTF-8, the reason
// protobuf refuses most requests a client built with a generated stub.
absl::Status ParseRequest(const grpc::ByteBuffer& bytes,
                          google::protobuf::Message* message) {
  if (!bytes.Valid()) return NotAValid(*message);  // no message was sent
  // Deserialize consumes its buffer; the copy shares the slices.
  grpc::ByteBuffer copy(bytes);
  if (grpc::SerializationTraits<google::protobuf::Message>::Deserialize(&copy,
                                                                        message)
          .ok()) {
    return absl::OkStatus();
  }
  const std::string wire = Flatten(bytes);
  internal::Utf8Scan scan =
      internal::FindInvalidUtf8Fields(*message->GetDescriptor(), wire);
  if (!scan.well_formed || scan.violations.empty()) return NotAValid(*message);
  return InvalidUtf8Error(std::move(scan.violations));
}

absl::Status SerializeResponse(const google::protobuf::Message& message,
                               grpc::ByteBuffer* bytes) {
  bool own_buffer = false;
  grpc::Status status =
      grpc::SerializationTraits<google::protobuf::Message>::Serialize(
          message, bytes, &own_buffer);
  if (!status.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot serialize ", message.GetDescriptor()->full_name(),
                     ": ", status.error_message()));
  }
  return absl::OkStatus();
}

// Sets rc->dev_time from x-lotse-dev-time when the call carries it:
// INVALID_ARGUMENT with reason DEV_CLOCK_DISABLED when the server was not
// started with --dev_clock, INVALID_DEV_TIME when the value is not an RFC
// 3339 time or lies in the future (stored times must never run ahead of
// the real clock, or later real records would appear older).
absl::Status ApplyDevTime(const HandlerEnv& env,
                          const grpc::CallbackServerContext& context,
                          RequestContext* rc) {
  const auto& metadata = context.client_metadata();
  const auto it = metadata.find(kDevTimeMetadataKey);
  if (it == metadata.end()) return absl::OkStatus();
  if (!env.dev_clock) {
    return ErrorWithReason(
        absl::StatusCode::kInvalidArgument, "DEV_CLOCK_DISABLED",
        absl::StrCat(kDevTimeMetadataKey,
                     " is honoured only by a server started with --dev_clock"));
  }
  const std::string value(it->second.data(), it->second.size());
  absl::Time at;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, value, &at, &error) ||
      at > absl::Now()) {
    return ErrorWithReason(
        absl::StatusCode::kInvalidArgument, "INVALID_DEV_TIME",
        absl::StrCat(kDevTimeMetadataKey,
                     " must be an RFC 3339 time not in the future"));
  }
  rc->dev_time = at;
  return absl::OkStatus();
}

[[noreturn]] void MisconfiguredService(absl::string_view what) {
  Log(LogLevel::kError, "misconfigured service",
      {{"detail", std::string(what)}});
  std::abort();
}

}  // namespace

struct UnaryService::HandledMethod {
  std::string path;  // "/lotse.x.v1.XService/Method"; gRPC keeps a pointer
  const google::protobuf::MethodDescriptor* descriptor = nullptr;
  const google::protobuf::Message* request_prototype = nullptr;
  const google::protobuf::Message* response_prototype = nullptr;
  Work work;
};

UnaryService::UnaryService(HandlerEnv env, absl::string_view service_full_name)
    : env_(std::move(env)),
      service_(
          google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
              std::string(service_full_name))) {
  if (service_ == nullptr) {
    MisconfiguredService(
        absl::StrCat("no service ", service_full_name, " is linked in"));
  }
}

UnaryService::~UnaryService() = default;

const std::string* UnaryService::CheckedPath(
    absl::string_view method,
    const google::protobuf::Message& request_prototype,
    const google::protobuf::Message& response_prototype,
    bool server_streaming) {
  const google::protobuf::MethodDescriptor* descriptor =
      service_->FindMethodByName(std::string(method));
  const std::string name = absl::StrCat(service_->full_name(), ".", method);
  if (descriptor == nullptr) {
    MisconfiguredService(absl::StrCat("no RPC ", name));
  }
  if (descriptor->client_streaming() ||
      descriptor->server_streaming() != server_streaming) {
    MisconfiguredService(
        absl::StrCat(name, server_streaming ? " is not a server-streaming RPC"
                                            : " is a streaming RPC"));
  }
  if (descriptor->input_type() != request_prototype.GetDescriptor() ||
      descriptor->output_type() != response_prototype.GetDescriptor()) {
    MisconfiguredService(
        absl::StrCat(name, " takes ", descriptor->input_type()->full_name(),
                     " and returns ", descriptor->output_type()->full_name(),
                     ", not ", request_prototype.GetDescriptor()->full_name(),
                     " and ", response_prototype.GetDescriptor()->full_name()));
  }
  if (absl::c_linear_search(registered_, descriptor)) {
    MisconfiguredService(absl::StrCat(name, " is handled twice"));
  }
  registered_.push_back(descriptor);
  paths_.push_back(absl::StrCat("/", service_->full_name(), "/", method));
  return &paths_.back();
}

void UnaryService::AddRawMethod(
    absl::string_view method,
    const google::protobuf::Message& request_prototype,
    const google::protobuf::Message& response_prototype, Work work) {
  const std::string* path =
      CheckedPath(method, request_prototype, response_prototype,
                  /*server_streaming=*/false);
  auto entry = std::make_unique<HandledMethod>();
  entry->path = *path;
  entry->descriptor = registered_.back();
  entry->request_prototype = &request_prototype;
  entry->response_prototype = &response_prototype;
  entry->work = std::move(work);
  const HandledMethod* m = entry.get();
  handled_.push_back(std::move(entry));

  AddMethod(new grpc::internal::RpcServiceMethod(
      m->path.c_str(), grpc::internal::RpcMethod::NORMAL_RPC,
      /*handler=*/nullptr));
  const HandlerEnv* env = &env_;
  MarkMethodRawCallback(
      methods_added_++,
      new grpc::internal::CallbackUnaryHandler<grpc::ByteBuffer,
                                               grpc::ByteBuffer>(
          [env, m](grpc::CallbackServerContext* context,
                   const grpc::ByteBuffer* request_bytes,
                   grpc::ByteBuffer* response_bytes) {
            grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
            absl::StatusOr<RequestContext> rc =
                ExtractRequestContext(*context, env->insecure_dev);
            if (!rc.ok()) {
              FinishWithStatus(reactor, rc.status(), env->error_domain);
              return reactor;
            }
            // Before the request is even parsed: a refused call costs no
            // more than this.
            AgencyLimiter::Permit permit;
            if (env->limiter != nullptr && !rc->caller.is_service()) {
              absl::StatusOr<AgencyLimiter::Permit> admitted =
                  env->limiter->Admit(rc->caller.agency_id);
              if (!admitted.ok()) {
                FinishWithStatus(reactor, admitted.status(), env->error_domain);
                return reactor;
              }
              permit = *std::move(admitted);
            }
            std::unique_ptr<google::protobuf::Message> request(
                m->request_prototype->New());
            if (absl::Status parsed = ParseRequest(*request_bytes, &*request);
                !parsed.ok()) {
              FinishWithStatus(reactor, parsed, env->error_domain);
              return reactor;
            }
            rc->method = m->path.substr(1);
            if (absl::Status dev = ApplyDevTime(*env, *context, &*rc);
                !dev.ok()) {
              FinishWithStatus(reactor, dev, env->error_domain);
              return reactor;
            }
            internal::RunOnPool(
                *env, context, reactor, *std::move(rc),
                [m, request = std::move(request),
                 response_bytes](const RequestContext& rc) -> absl::Status {
                  std::unique_ptr<google::protobuf::Message> response(
                      m->response_prototype->New());
                  absl::Status status = m->work(rc, *request, response.get());
                  if (!status.ok()) return status;
                  return SerializeResponse(*response, response_bytes);
                },
                std::move(permit));
            return reactor;
          }));
}

absl::Status UnaryService::CallInProcess(absl::string_view method,
                                         RequestContext rc,
                                         absl::string_view request_bytes,
                                         std::string* response_bytes) const {
  const HandledMethod* m = nullptr;
  for (const std::unique_ptr<HandledMethod>& h : handled_) {
    if (h->descriptor->name() == method) m = h.get();
  }
  if (m == nullptr) {
    return absl::UnimplementedError(
        absl::StrCat(service_->full_name(), ".", method, " is not served"));
  }
  grpc::Slice slice(request_bytes.data(), request_bytes.size());
  const grpc::ByteBuffer bytes(&slice, 1);
  std::unique_ptr<google::protobuf::Message> request(
      m->request_prototype->New());
  if (absl::Status parsed = ParseRequest(bytes, &*request); !parsed.ok()) {
    return parsed;
  }
  rc.method = m->path.substr(1);
  std::unique_ptr<google::protobuf::Message> response(
      m->response_prototype->New());
  absl::Status status;
  if (rc.dev_time != absl::InfinitePast()) {
    const api::DevClockScope clock(rc.dev_time);
    status = m->work(rc, *request, response.get());
  } else {
    status = m->work(rc, *request, response.get());
  }
  if (!status.ok()) return status;
  if (!response->SerializeToString(response_bytes)) {
    return absl::InternalError(absl::StrCat(
        "cannot serialize ", response->GetDescriptor()->full_name()));
  }
  return absl::OkStatus();
}

}  // namespace lotse::server
