#include "common/server/request_context.h"

#include <chrono>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/errors/status.h"
#include "grpc/grpc_security_constants.h"

namespace lotse::server {
namespace {

std::string FirstProperty(const grpc::AuthContext& auth, const char* name) {
  std::vector<grpc::string_ref> values = auth.FindPropertyValues(name);
  if (values.empty()) return "";
  return std::string(values.front().data(), values.front().size());
}

std::string FirstMetadata(const grpc::ServerContextBase& context,
                          absl::string_view key) {
  const auto& md = context.client_metadata();
  auto it = md.find(grpc::string_ref(key.data(), key.size()));
  if (it == md.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

// Metadata values are ASCII by the HTTP/2 rules gRPC enforces for non-binary
// keys; we additionally refuse control characters, which have no place in
// an id or a purpose and would corrupt log and audit lines.
bool IsPrintableAscii(absl::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isprint(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

absl::Status Missing(absl::string_view key, absl::string_view reason) {
  return ErrorWithReason(
      absl::StatusCode::kUnauthenticated, reason,
      absl::StrCat("every call must name the ", key,
                   " metadata (the acting caseworker and the purpose of "
                   "the access are required for the audit trail)"));
}

}  // namespace

bool IsPurposeCode(absl::string_view purpose) {
  return !purpose.empty() && purpose.size() <= kMaxPurposeLength &&
         purpose.find_first_not_of(kPurposeAlphabet) == absl::string_view::npos;
}

std::string SubjectAttribute(absl::string_view subject, absl::string_view key) {
  // Split on unescaped commas, then compare the part before '='.
  std::string part;
  auto flush = [&](std::string& p) -> std::optional<std::string> {
    size_t eq = p.find('=');
    if (eq != std::string::npos &&
        absl::StripAsciiWhitespace(absl::string_view(p).substr(0, eq)) == key) {
      return std::string(
          absl::StripAsciiWhitespace(absl::string_view(p).substr(eq + 1)));
    }
    return std::nullopt;
  };
  for (size_t i = 0; i < subject.size(); ++i) {
    char c = subject[i];
    if (c == '\\' && i + 1 < subject.size()) {
      part.push_back(subject[++i]);
    } else if (c == ',') {
      if (auto v = flush(part)) return *v;
      part.clear();
    } else {
      part.push_back(c);
    }
  }
  if (auto v = flush(part)) return *v;
  return "";
}

absl::StatusOr<CallerIdentity> CallerFromAuthContext(
    const grpc::AuthContext& auth) {
  if (!auth.IsPeerAuthenticated()) {
    return ErrorWithReason(absl::StatusCode::kUnauthenticated,
                           "NO_CLIENT_CERTIFICATE",
                           "a verified client certificate is required");
  }
  CallerIdentity caller;
  caller.agency_id = FirstProperty(auth, GRPC_X509_CN_PROPERTY_NAME);
  caller.legal_domain = SubjectAttribute(
      FirstProperty(auth, GRPC_X509_SUBJECT_PROPERTY_NAME), "OU");
  if (caller.agency_id.empty() || caller.legal_domain.empty()) {
    return ErrorWithReason(
        absl::StatusCode::kUnauthenticated, "CERTIFICATE_WITHOUT_AGENCY",
        "the client certificate must name the agency (CN) and its legal "
        "domain (OU)");
  }
  return caller;
}

absl::StatusOr<RequestContext> ExtractRequestContext(
    const grpc::ServerContextBase& context, bool insecure_dev) {
  RequestContext rc;
  if (insecure_dev) {
    rc.caller.agency_id = FirstMetadata(context, kDevAgencyMetadataKey);
    rc.caller.legal_domain = FirstMetadata(context, kDevDomainMetadataKey);
    if (rc.caller.agency_id.empty() || rc.caller.legal_domain.empty()) {
      return ErrorWithReason(
          absl::StatusCode::kUnauthenticated, "MISSING_DEV_AGENCY",
          absl::StrCat("in --insecure_dev mode every call must name ",
                       kDevAgencyMetadataKey, " and ", kDevDomainMetadataKey));
    }
  } else {
    std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
    if (auth == nullptr) {
      return ErrorWithReason(absl::StatusCode::kUnauthenticated,
                             "NO_CLIENT_CERTIFICATE",
                             "a verified client certificate is required");
    }
    absl::StatusOr<CallerIdentity> caller = CallerFromAuthContext(*auth);
    if (!caller.ok()) return caller.status();
    rc.caller = *std::move(caller);
  }
  rc.actor = FirstMetadata(context, kActorMetadataKey);
  rc.purpose = FirstMetadata(context, kPurposeMetadataKey);
  if (rc.actor.empty()) return Missing(kActorMetadataKey, "MISSING_ACTOR");
  if (rc.actor.size() > kMaxActorLength || !IsPrintableAscii(rc.actor)) {
    return ErrorWithReason(
        absl::StatusCode::kUnauthenticated, "INVALID_ACTOR",
        absl::StrCat(kActorMetadataKey, " metadata must be 1..",
                     kMaxActorLength, " printable ASCII characters"));
  }
  if (rc.purpose.empty()) {
    return Missing(kPurposeMetadataKey, "MISSING_PURPOSE");
  }
  if (!IsPurposeCode(rc.purpose)) {
    return ErrorWithReason(
        absl::StatusCode::kUnauthenticated, "INVALID_PURPOSE",
        absl::StrCat(kPurposeMetadataKey,
                     " metadata must be a purpose code: 1..", kMaxPurposeLength,
                     " characters of [a-z0-9-], e.g. \"case-management\""));
  }
  rc.deadline = absl::FromChrono(context.deadline());
  return rc;
}

}  // namespace lotse::server
