#include "common/audit/checkpoint.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <cstdint>
#include <fstream>
#include <memory>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/errors/status.h"

namespace lotse::audit {
namespace {

namespace v1 = ::lotse::audit::v1;

constexpr absl::string_view kCheckpointMagic = "LOTSE-CHECKPOINT-1";
constexpr size_t kHashSize = 32;
constexpr char kServiceDomain[] = "SERVICE";

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using MdCtxPtr =
    std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using StoreCtxPtr =
    std::unique_ptr<X509_STORE_CTX,
                    Deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;

void PutU64(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

void PutU32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

void PutString(std::string& out, absl::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out.append(s.data(), s.size());
}

BioPtr MemBio(absl::string_view pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

X509Ptr ParseCertificate(absl::string_view pem) {
  if (pem.empty()) return nullptr;
  BioPtr bio = MemBio(pem);
  if (bio == nullptr) return nullptr;
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  return cert;
}

// The digest to sign with: SHA-256, except for keys that hash themselves.
const EVP_MD* DigestFor(const EVP_PKEY* key) {
  const int id = EVP_PKEY_get_base_id(key);
  if (id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448) return nullptr;
  return EVP_sha256();
}

// One attribute of the certificate's subject, e.g. NID_commonName; empty
// when absent.
std::string SubjectEntry(X509* cert, int nid) {
  const X509_NAME* name = X509_get_subject_name(cert);
  if (name == nullptr) return "";
  const int index = X509_NAME_get_index_by_NID(name, nid, -1);
  if (index < 0) return "";
  const ASN1_STRING* data =
      X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  if (data == nullptr) return "";
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
                     static_cast<size_t>(ASN1_STRING_length(data)));
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// A checkpoint refused for what it claims (who signed, for whom).
absl::Status Denied(const char* reason, absl::string_view message) {
  return ErrorWithReason(absl::StatusCode::kPermissionDenied, reason, message);
}

}  // namespace

v1::AuditChain ChainToProto(Chain chain) {
  return chain == Chain::kReads ? v1::AUDIT_CHAIN_READS
                                : v1::AUDIT_CHAIN_CHANGES;
}

std::optional<Chain> ChainFromProto(v1::AuditChain chain) {
  if (chain == v1::AUDIT_CHAIN_CHANGES) return Chain::kChanges;
  if (chain == v1::AUDIT_CHAIN_READS) return Chain::kReads;
  return std::nullopt;
}

std::string CanonicalCheckpointBytes(const v1::SignedCheckpoint& checkpoint) {
  const v1::AuditHead& head = checkpoint.head();
  std::string out(kCheckpointMagic);
  PutString(out, head.service());
  out.push_back(static_cast<char>(head.chain()));
  PutU64(out, static_cast<uint64_t>(head.seq()));
  PutString(out, head.hash());
  const int64_t micros =
      checkpoint.time().seconds() * 1000000 + checkpoint.time().nanos() / 1000;
  PutU64(out, static_cast<uint64_t>(micros));
  return out;
}

absl::flat_hash_set<std::string> LotseServices() {
  return {"identity", "cases", "courses", "placement"};
}

// --- signer -----------------------------------------------------------------

absl::StatusOr<std::unique_ptr<CheckpointSigner>> CheckpointSigner::FromPem(
    std::string service, absl::string_view certificate_pem,
    absl::string_view key_pem) {
  X509Ptr cert = ParseCertificate(certificate_pem);
  if (cert == nullptr) {
    return absl::InvalidArgumentError("checkpoint certificate does not parse");
  }
  BioPtr bio = MemBio(key_pem);
  KeyPtr key(bio == nullptr ? nullptr
                            : PEM_read_bio_PrivateKey(bio.get(), nullptr,
                                                      nullptr, nullptr));
  ERR_clear_error();
  if (key == nullptr) {
    return absl::InvalidArgumentError("checkpoint signing key does not parse");
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        "checkpoint signing key does not belong to the certificate");
  }
  // Attach the first certificate only, re-encoded, so that what a witness
  // receives is exactly the certificate whose key signed.
  BioPtr out(BIO_new(BIO_s_mem()));
  if (out == nullptr || PEM_write_bio_X509(out.get(), cert.get()) != 1) {
    return absl::InternalError("cannot encode the checkpoint certificate");
  }
  char* data = nullptr;
  const long length = BIO_get_mem_data(out.get(), &data);
  std::string pem(data, static_cast<size_t>(length));
  return std::unique_ptr<CheckpointSigner>(
      new CheckpointSigner(std::move(service), std::move(pem), key.release()));
}

absl::StatusOr<std::unique_ptr<CheckpointSigner>> CheckpointSigner::FromFiles(
    std::string service, const std::string& certificate_path,
    const std::string& key_path) {
  absl::StatusOr<std::string> cert = ReadWholeFile(certificate_path);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadWholeFile(key_path);
  if (!key.ok()) return key.status();
  return FromPem(std::move(service), *cert, *key);
}

CheckpointSigner::~CheckpointSigner() { EVP_PKEY_free(key_); }

absl::StatusOr<v1::SignedCheckpoint> CheckpointSigner::Sign(
    Chain chain, const AuditHead& head, absl::Time time) const {
  v1::SignedCheckpoint checkpoint;
  v1::AuditHead* h = checkpoint.mutable_head();
  h->set_service(service_);
  h->set_chain(ChainToProto(chain));
  h->set_seq(head.seq);
  h->set_hash(head.hash);
  const int64_t micros = absl::ToUnixMicros(time);
  checkpoint.mutable_time()->set_seconds(micros / 1000000);
  checkpoint.mutable_time()->set_nanos(
      static_cast<int32_t>((micros % 1000000) * 1000));
  if (micros < 0 && micros % 1000000 != 0) {
    // Timestamp nanos are never negative.
    checkpoint.mutable_time()->set_seconds(micros / 1000000 - 1);
    checkpoint.mutable_time()->set_nanos(
        static_cast<int32_t>((micros % 1000000 + 1000000) * 1000));
  }
  const std::string bytes = CanonicalCheckpointBytes(checkpoint);
  MdCtxPtr ctx(EVP_MD_CTX_new());
  size_t length = 0;
  if (ctx == nullptr ||
      EVP_DigestSignInit(ctx.get(), nullptr, DigestFor(key_), nullptr, key_) !=
          1 ||
      EVP_DigestSign(ctx.get(), nullptr, &length,
                     reinterpret_cast<const unsigned char*>(bytes.data()),
                     bytes.size()) != 1) {
    ERR_clear_error();
    return absl::InternalError("cannot sign the checkpoint");
  }
  std::string signature(length, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(&signature[0]),
                     &length,
                     reinterpret_cast<const unsigned char*>(bytes.data()),
                     bytes.size()) != 1) {
    ERR_clear_error();
    return absl::InternalError("cannot sign the checkpoint");
  }
  signature.resize(length);
  checkpoint.set_signature(std::move(signature));
  checkpoint.set_certificate_pem(certificate_pem_);
  return checkpoint;
}

// --- verifier
// -----------------------------------------------------------------

absl::StatusOr<std::unique_ptr<CheckpointVerifier>> CheckpointVerifier::FromPem(
    absl::string_view ca_pem, absl::flat_hash_set<std::string> services) {
  X509_STORE* store = X509_STORE_new();
  if (store == nullptr) return absl::InternalError("X509_STORE_new failed");
  BioPtr bio = MemBio(ca_pem);
  int added = 0;
  while (bio != nullptr) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (cert == nullptr) break;
    if (X509_STORE_add_cert(store, cert.get()) == 1) ++added;
  }
  ERR_clear_error();
  if (added == 0) {
    X509_STORE_free(store);
    return absl::InvalidArgumentError("no CA certificate in the CA bundle");
  }
  return std::unique_ptr<CheckpointVerifier>(
      new CheckpointVerifier(store, std::move(services)));
}

absl::StatusOr<std::unique_ptr<CheckpointVerifier>>
CheckpointVerifier::FromFile(const std::string& ca_path,
                             absl::flat_hash_set<std::string> services) {
  absl::StatusOr<std::string> pem = ReadWholeFile(ca_path);
  if (!pem.ok()) return pem.status();
  return FromPem(*pem, std::move(services));
}

CheckpointVerifier::~CheckpointVerifier() { X509_STORE_free(store_); }

absl::Status CheckpointVerifier::Verify(
    const v1::SignedCheckpoint& checkpoint) const {
  const v1::AuditHead& head = checkpoint.head();
  if (!checkpoint.has_head() || head.service().empty() ||
      !ChainFromProto(head.chain()).has_value() || head.seq() < 0 ||
      head.hash().size() != kHashSize || !checkpoint.has_time() ||
      checkpoint.signature().empty()) {
    return ErrorWithReason(
        absl::StatusCode::kInvalidArgument, kMalformedCheckpoint,
        "a checkpoint needs a service, a chain, a seq >= 0, a "
        "32-byte hash, a time and a signature");
  }
  if (!services_.contains(head.service())) {
    return Denied(kUnknownService,
                  absl::StrCat("checkpoints of service '", head.service(),
                               "' are not accepted here"));
  }
  X509Ptr cert = ParseCertificate(checkpoint.certificate_pem());
  if (cert == nullptr) {
    return Denied(kUntrustedCertificate,
                  "the checkpoint's certificate does not parse");
  }
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (ctx == nullptr ||
      X509_STORE_CTX_init(ctx.get(), store_, cert.get(), nullptr) != 1) {
    return absl::InternalError("cannot set up certificate verification");
  }
  if (X509_verify_cert(ctx.get()) != 1) {
    const int error = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return Denied(kUntrustedCertificate,
                  absl::StrCat("the checkpoint's certificate does not chain "
                               "to the deployment CA: ",
                               X509_verify_cert_error_string(error)));
  }
  if (SubjectEntry(cert.get(), NID_organizationalUnitName) != kServiceDomain ||
      SubjectEntry(cert.get(), NID_commonName) != head.service()) {
    return Denied(kWrongService,
                  absl::StrCat("the checkpoint's certificate is not the "
                               "service certificate of '",
                               head.service(), "'"));
  }
  EVP_PKEY* key = X509_get0_pubkey(cert.get());
  const std::string bytes = CanonicalCheckpointBytes(checkpoint);
  MdCtxPtr md(EVP_MD_CTX_new());
  const bool valid =
      key != nullptr && md != nullptr &&
      EVP_DigestVerifyInit(md.get(), nullptr, DigestFor(key), nullptr, key) ==
          1 &&
      EVP_DigestVerify(
          md.get(),
          reinterpret_cast<const unsigned char*>(checkpoint.signature().data()),
          checkpoint.signature().size(),
          reinterpret_cast<const unsigned char*>(bytes.data()),
          bytes.size()) == 1;
  ERR_clear_error();
  if (!valid) {
    return Denied(kBadSignature,
                  "the checkpoint's signature does not verify with its "
                  "certificate");
  }
  return absl::OkStatus();
}

}  // namespace lotse::audit
