#include "common/api/etag.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <initializer_list>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/errors/status.h"

namespace lotse::api {
namespace {

constexpr absl::string_view kPrefix = "lotse.etag\n";

// SHA-256, fetched from the provider store once: the one-shot SHA256()
// fetches it (under the store's lock) and allocates and frees a digest
// context on every call.
const EVP_MD* Sha256() {
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
  static const EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
#else
  return EVP_sha256();
#endif
}

// One digest context per thread, reset for every etag.
class ThreadDigest {
 public:
  ThreadDigest() : ctx_(EVP_MD_CTX_new()) {}
  ~ThreadDigest() { EVP_MD_CTX_free(ctx_); }
  ThreadDigest(const ThreadDigest&) = delete;
  ThreadDigest& operator=(const ThreadDigest&) = delete;

  // SHA-256 of the concatenation of `parts` into `out`; false if OpenSSL
  // failed (out of memory).
  bool Digest(std::initializer_list<absl::string_view> parts,
              unsigned char out[SHA256_DIGEST_LENGTH]) {
    const EVP_MD* md = Sha256();
    if (ctx_ == nullptr || md == nullptr ||
        EVP_DigestInit_ex(ctx_, md, nullptr) != 1) {
      return false;
    }
    for (absl::string_view p : parts) {
      if (EVP_DigestUpdate(ctx_, p.data(), p.size()) != 1) return false;
    }
    unsigned int size = 0;
    return EVP_DigestFinal_ex(ctx_, out, &size) == 1 &&
           size == SHA256_DIGEST_LENGTH;
  }

 private:
  EVP_MD_CTX* const ctx_;
};

}  // namespace

std::string ComputeEtag(absl::string_view resource_name, int64_t version) {
  const absl::AlphaNum number(version);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  thread_local ThreadDigest thread_digest;
  if (!thread_digest.Digest({kPrefix, resource_name, "\n", number.Piece()},
                            digest)) {
    // The same hash the slow way.
    const std::string input =
        absl::StrCat(kPrefix, resource_name, "\n", number.Piece());
    SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(),
           digest);
  }
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
