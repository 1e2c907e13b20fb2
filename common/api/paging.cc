#include "common/api/paging.h"

#include <openssl/evp.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace lotse::api {
namespace {

// Version byte first, so the format can change without misreading old
// tokens (they fail the version check and the client restarts the list).
constexpr char kVersion = '\x01';
constexpr size_t kFingerprintBytes = 8;
constexpr size_t kCheckBytes = 8;

std::string Sha256(absl::string_view domain, absl::string_view data) {
  // One EVP digest over domain and data, as SHA256_Update twice did (the
  // SHA256_* functions are deprecated in OpenSSL 3).
  std::string input;
  input.reserve(domain.size() + data.size());
  input.append(domain.data(), domain.size());
  input.append(data.data(), data.size());
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(input.data(), input.size(), digest, &length, EVP_sha256(),
             nullptr);
  return std::string(reinterpret_cast<const char*>(digest), length);
}

std::string ShortFingerprint(absl::string_view filter_fingerprint) {
  return Sha256("lotse.page_token.filters\n", filter_fingerprint)
      .substr(0, kFingerprintBytes);
}

std::string Check(absl::string_view body) {
  return Sha256("lotse.page_token.check\n", body).substr(0, kCheckBytes);
}

}  // namespace

int NormalizePageSize(int32_t page_size, const std::string& field,
                      FieldViolations* violations) {
  if (page_size < 0) {
    violations->Add(field, "must not be negative");
    return 0;
  }
  if (page_size == 0) return kDefaultPageSize;
  return page_size > kMaxPageSize ? kMaxPageSize : page_size;
}

std::string EncodePageToken(absl::string_view filter_fingerprint,
                            absl::string_view last_key) {
  std::string body =
      absl::StrCat(absl::string_view(&kVersion, 1),
                   ShortFingerprint(filter_fingerprint), last_key);
  return absl::WebSafeBase64Escape(absl::StrCat(body, Check(body)));
}

std::string DecodePageToken(absl::string_view token,
                            absl::string_view filter_fingerprint,
                            const std::string& field,
                            FieldViolations* violations) {
  if (token.empty()) return "";
  std::string raw;
  if (token.size() > 4096 || !absl::WebSafeBase64Unescape(token, &raw) ||
      raw.size() < 1 + kFingerprintBytes + kCheckBytes) {
    violations->Add(field, "is not a page token issued by this service");
    return "";
  }
  absl::string_view body(raw.data(), raw.size() - kCheckBytes);
  absl::string_view check(raw.data() + body.size(), kCheckBytes);
  if (body[0] != kVersion || Check(body) != check) {
    violations->Add(field, "is not a page token issued by this service");
    return "";
  }
  if (body.substr(1, kFingerprintBytes) !=
      ShortFingerprint(filter_fingerprint)) {
    violations->Add(field, "was issued for a request with other filter fields");
    return "";
  }
  return std::string(body.substr(1 + kFingerprintBytes));
}

}  // namespace lotse::api
