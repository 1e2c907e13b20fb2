// Fuzz target: page sizes and page tokens (common/api/paging.h). The input
// gives a page size, a filter fingerprint, a last key and a token a client
// might send. Checked: any token decodes to a key or to "" with a
// violation; a token issued for a key comes back with that key under its
// own fingerprint and is refused under another.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/api/paging.h"
#include "common/errors/status.h"

namespace {

[[noreturn]] void Broken(const char* what) {
  std::fprintf(stderr, "paging invariant broken: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace api = ::lotse::api;
  FuzzedDataProvider in(data, size);
  const int32_t page_size = in.ConsumeIntegral<int32_t>();
  const std::string fingerprint = in.ConsumeRandomLengthString(64);
  const std::string last_key = in.ConsumeRandomLengthString(256);
  const std::string token = in.ConsumeRemainingBytesAsString();

  lotse::FieldViolations size_violations;
  const int normalized =
      api::NormalizePageSize(page_size, "page_size", &size_violations);
  if (page_size < 0) {
    if (size_violations.empty() || normalized != 0) {
      Broken("negative page size accepted");
    }
  } else if (!size_violations.empty() || normalized < 1 ||
             normalized > api::kMaxPageSize) {
    Broken("page size out of range");
  }

  lotse::FieldViolations violations;
  const std::string key =
      api::DecodePageToken(token, fingerprint, "page_token", &violations);
  if (!violations.empty() && !key.empty()) Broken("refused token gave a key");
  if (token.empty() && (!violations.empty() || !key.empty())) {
    Broken("empty token is not the first page");
  }

  const std::string issued = api::EncodePageToken(fingerprint, last_key);
  lotse::FieldViolations round_trip;
  if (api::DecodePageToken(issued, fingerprint, "page_token", &round_trip) !=
          last_key ||
      !round_trip.empty()) {
    Broken("issued token does not give back its key");
  }
  lotse::FieldViolations other;
  api::DecodePageToken(issued, fingerprint + "x", "page_token", &other);
  if (other.empty() && !issued.empty()) {
    Broken("token accepted with other filters");
  }
  return 0;
}
