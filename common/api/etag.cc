#include "common/api/etag.h"

#include <openssl/sha.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/errors/status.h"

namespace lotse::api {

std::string ComputeEtag(absl::string_view resource_name, int64_t version) {
  const std::string input =
      absl::StrCat("lotse.etag\n", resource_name, "\n", version);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(),
         digest);
  // 16 bytes are plenty to tell versions of one resource apart.
  return absl::WebSafeBase64Escape(
      absl::string_view(reinterpret_cast<const char*>(digest), 16));
}

absl::Status CheckEtag(absl::string_view supplied, absl::string_view current) {
  if (supplied == current) return absl::OkStatus();
  return ErrorWithReason(absl::StatusCode::kAborted, "ETAG_MISMATCH",
                         "the resource changed since it was read; re-read, "
                         "re-apply and retry");
}

}  // namespace lotse::api
