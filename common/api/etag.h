// Etags (DESIGN.md section 6): an opaque version tag per resource that
// changes on every change of the record. Updates pass the etag they read;
// a stale one is ABORTED (reason ETAG_MISMATCH) and changes nothing.
//
// Etags are derived from the resource name and a version counter the store
// increments on every write, hashed so that clients cannot read a counter
// into them or build one for another resource.
#ifndef LOTSE_COMMON_API_ETAG_H_
#define LOTSE_COMMON_API_ETAG_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace lotse::api {

// The etag of version `version` of `resource_name` (e.g. "agencies/x"):
// 22 characters of [A-Za-z0-9_-], the first 16 bytes of
// SHA-256("lotse.etag\n" + resource_name + "\n" + decimal version), web-safe
// base64 without padding. Thread-safe; each thread reuses one digest
// context, so a call allocates only the string it returns.
std::string ComputeEtag(absl::string_view resource_name, int64_t version);

// OK when `supplied` equals `current`; otherwise ABORTED with reason
// ETAG_MISMATCH. An empty `supplied` is a missing required field, which
// request validation reports before this is called.
absl::Status CheckEtag(absl::string_view supplied, absl::string_view current);

}  // namespace lotse::api

#endif  // LOTSE_COMMON_API_ETAG_H_
