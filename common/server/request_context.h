// Who is calling, on whose behalf and why: the facts every handler needs
// before it touches personal data (DESIGN.md section 2).
//
// The calling agency is authenticated: it comes from the verified client
// certificate (CN = agency id, OU = legal domain). The acting caseworker and
// the purpose are asserted by the agency in request metadata; they are
// required on every call to a Lotse service and are written to the audit
// trail, never to plain logs.
#ifndef LOTSE_COMMON_SERVER_REQUEST_CONTEXT_H_
#define LOTSE_COMMON_SERVER_REQUEST_CONTEXT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpcpp/security/auth_context.h"
#include "grpcpp/server_context.h"

namespace lotse::server {

// Metadata keys a caller sets on every call.
inline constexpr char kActorMetadataKey[] = "x-lotse-actor";
inline constexpr char kPurposeMetadataKey[] = "x-lotse-purpose";
// Only honoured in --insecure_dev mode, where there is no certificate to
// take the agency from.
inline constexpr char kDevAgencyMetadataKey[] = "x-lotse-dev-agency";
inline constexpr char kDevDomainMetadataKey[] = "x-lotse-dev-domain";
// The time the call is to be recorded at (RFC 3339, not in the future),
// honoured only by a service started with --dev_clock; see
// api::DevClockScope. Lets the demo seed write months of history.
inline constexpr char kDevTimeMetadataKey[] = "x-lotse-dev-time";

// Legal domain in the certificate of another Lotse service (service-to-
// service calls such as event delivery).
inline constexpr char kServiceDomain[] = "SERVICE";

// x-lotse-actor: 1..128 printable ASCII characters (gRPC allows no other
// bytes in text metadata; control characters are refused).
inline constexpr size_t kMaxActorLength = 128;
// x-lotse-purpose: a purpose code, 1..64 characters of [a-z0-9-] (e.g.
// "case-management"), the form consents name purposes in.
inline constexpr size_t kMaxPurposeLength = 64;
inline constexpr char kPurposeAlphabet[] =
    "abcdefghijklmnopqrstuvwxyz0123456789-";

// True when `purpose` is a purpose code of the form above.
bool IsPurposeCode(absl::string_view purpose);

struct CallerIdentity {
  std::string agency_id;     // e.g. "jobcenter-koeln"
  std::string legal_domain;  // e.g. "JOBCENTER", or "SERVICE"
  bool is_service() const { return legal_domain == kServiceDomain; }
};

struct RequestContext {
  CallerIdentity caller;
  std::string actor;    // caseworker id within the calling agency
  std::string purpose;  // why the data is accessed
  absl::Time deadline = absl::InfiniteFuture();
  // The RPC being served, "lotse.courses.v1.CoursesService/CreateBooking"
  // (set by UnaryService; empty where the caller built the context by
  // hand). Idempotency keys and audit operations are named by it.
  std::string method;
  // From x-lotse-dev-time on a --dev_clock server: the time the work's
  // business records are stored at. InfinitePast: the real clock.
  absl::Time dev_time = absl::InfinitePast();
};

// Reads the caller from a verified peer certificate. UNAUTHENTICATED when
// the peer presented none or it lacks an agency id or legal domain.
absl::StatusOr<CallerIdentity> CallerFromAuthContext(
    const grpc::AuthContext& auth);

// Builds the request context of a call: caller from the certificate (or,
// when `insecure_dev`, from the x-lotse-dev-* metadata), actor and purpose
// from metadata. UNAUTHENTICATED with a reason when a part is missing or
// malformed: NO_CLIENT_CERTIFICATE / CERTIFICATE_WITHOUT_AGENCY (or
// MISSING_DEV_AGENCY in insecure_dev mode), MISSING_ACTOR / MISSING_PURPOSE
// (absent or empty), INVALID_ACTOR (not 1..128 printable ASCII characters),
// INVALID_PURPOSE (not a purpose code).
absl::StatusOr<RequestContext> ExtractRequestContext(
    const grpc::ServerContextBase& context, bool insecure_dev);

// Parses one attribute ("OU", "CN", ...) out of an RFC 2253 subject string
// as gRPC reports it ("CN=a,OU=B,O=Lotse Dev"), honouring backslash
// escapes. Empty when absent. Exposed for tests.
std::string SubjectAttribute(absl::string_view subject, absl::string_view key);

}  // namespace lotse::server

#endif  // LOTSE_COMMON_SERVER_REQUEST_CONTEXT_H_
