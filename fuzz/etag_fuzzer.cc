// Fuzz target: etags (common/api/etag.h). The input gives a resource name,
// a version and an etag a client might send. Checked: an etag is 22
// characters of [A-Za-z0-9_-], the same for the same version and
// different for the next; a supplied etag passes only when it is the
// current one, and is otherwise ABORTED with reason ETAG_MISMATCH.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/ascii.h"
#include "common/api/etag.h"
#include "common/errors/status.h"

namespace {

[[noreturn]] void Broken(const char* what) {
  std::fprintf(stderr, "etag invariant broken: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const int64_t version = in.ConsumeIntegral<int64_t>();
  const std::string name = in.ConsumeRandomLengthString(128);
  const std::string supplied = in.ConsumeRemainingBytesAsString();

  const std::string etag = lotse::api::ComputeEtag(name, version);
  if (etag.size() != 22) Broken("not 22 characters");
  for (char c : etag) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' &&
        c != '-') {
      Broken("character outside [A-Za-z0-9_-]");
    }
  }
  if (lotse::api::ComputeEtag(name, version) != etag) Broken("not stable");
  if (version < INT64_MAX &&
      lotse::api::ComputeEtag(name, version + 1) == etag) {
    Broken("next version has the same etag");
  }
  if (!lotse::api::CheckEtag(etag, etag).ok()) Broken("current etag refused");
  const absl::Status checked = lotse::api::CheckEtag(supplied, etag);
  if (supplied == etag) {
    if (!checked.ok()) Broken("equal etag refused");
  } else if (checked.code() != absl::StatusCode::kAborted ||
             lotse::ReasonOf(checked) != "ETAG_MISMATCH") {
    Broken("stale etag not ABORTED / ETAG_MISMATCH");
  }
  return 0;
}
