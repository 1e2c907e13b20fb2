#include "common/server/internal/crl.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace lotse::server::internal {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct CrlFree {
  void operator()(X509_CRL* c) const { X509_CRL_free(c); }
};
struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using CrlPtr = std::unique_ptr<X509_CRL, CrlFree>;
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;

BioPtr MemoryBio(absl::string_view data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

// The last OpenSSL error as text, and the queue cleared.
std::string OpenSslError() {
  const unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0) return "no detail";
  char buffer[256];
  ERR_error_string_n(code, buffer, sizeof(buffer));
  return buffer;
}

std::string NameDer(const X509_NAME* name) {
  unsigned char* der = nullptr;
  const int length = i2d_X509_NAME(name, &der);
  if (length <= 0) return "";
  std::string out(reinterpret_cast<char*>(der), length);
  OPENSSL_free(der);
  return out;
}

std::string NameText(const X509_NAME* name) {
  BioPtr out(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(out.get(), name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long length = BIO_get_mem_data(out.get(), &data);
  return std::string(data, length > 0 ? length : 0);
}

std::string SerialHex(const ASN1_INTEGER* serial) {
  BnPtr bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (bn == nullptr) return "";
  char* hex = BN_bn2hex(bn.get());
  std::string out = hex == nullptr ? "" : hex;
  OPENSSL_free(hex);
  return out;
}

absl::Time FromAsn1Time(const ASN1_TIME* t) {
  std::tm tm = {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return absl::InfinitePast();
  return absl::FromTimeT(timegm(&tm));
}

std::vector<X509Ptr> ParseCertificates(absl::string_view pem) {
  std::vector<X509Ptr> certs;
  BioPtr in = MemoryBio(pem);
  while (X509* cert = PEM_read_bio_X509(in.get(), nullptr, nullptr, nullptr)) {
    certs.emplace_back(cert);
  }
  ERR_clear_error();  // the end of the input reads as an error
  return certs;
}

// Every CRL of one file: PEM blocks, or else the whole file as DER.
absl::StatusOr<std::vector<CrlPtr>> ParseCrls(const CrlFile& file) {
  std::vector<CrlPtr> crls;
  if (absl::StrContains(file.contents, "-----BEGIN X509 CRL-----")) {
    BioPtr in = MemoryBio(file.contents);
    while (X509_CRL* crl =
               PEM_read_bio_X509_CRL(in.get(), nullptr, nullptr, nullptr)) {
      crls.emplace_back(crl);
    }
    const unsigned long error = ERR_peek_last_error();
    ERR_clear_error();
    // Running out of PEM blocks is the normal end; anything else is a
    // damaged block.
    if (error != 0 && ERR_GET_REASON(error) != PEM_R_NO_START_LINE) {
      return absl::FailedPreconditionError(
          absl::StrCat(file.path, ": a CRL does not parse"));
    }
  } else {
    const unsigned char* p =
        reinterpret_cast<const unsigned char*>(file.contents.data());
    X509_CRL* crl =
        d2i_X509_CRL(nullptr, &p, static_cast<long>(file.contents.size()));
    ERR_clear_error();
    if (crl != nullptr) crls.emplace_back(crl);
  }
  if (crls.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(file.path, ": no CRL in it (PEM or DER)"));
  }
  return crls;
}

}  // namespace

absl::StatusOr<std::vector<CrlFile>> ReadCrlFiles(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<std::string> paths;
  if (fs::is_directory(path, ec)) {
    for (const fs::directory_entry& entry : fs::directory_iterator(path, ec)) {
      const std::string name = entry.path().filename().string();
      if (absl::StartsWith(name, ".")) continue;
      std::error_code file_ec;
      if (!fs::is_regular_file(entry.path(), file_ec)) continue;
      paths.push_back(entry.path().string());
    }
    if (ec) {
      return absl::NotFoundError(
          absl::StrCat("cannot list ", path, ": ", ec.message()));
    }
    if (paths.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, ": directory holds no CRL file"));
    }
    std::sort(paths.begin(), paths.end());
  } else {
    paths.push_back(path);
  }
  std::vector<CrlFile> files;
  for (const std::string& p : paths) {
    std::ifstream in(p, std::ios::binary);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", p));
    std::ostringstream buffer;
    buffer << in.rdbuf();
    files.push_back({p, buffer.str()});
  }
  return files;
}

absl::StatusOr<CrlSet> CrlSet::Parse(const std::vector<CrlFile>& files,
                                     absl::string_view ca_pem, absl::Time now) {
  std::vector<X509Ptr> cas = ParseCertificates(ca_pem);
  if (cas.empty()) {
    return absl::FailedPreconditionError(
        "the CA bundle holds no certificate to verify CRLs with");
  }
  CrlSet set;
  for (const CrlFile& file : files) {
    absl::StatusOr<std::vector<CrlPtr>> crls = ParseCrls(file);
    if (!crls.ok()) return crls.status();
    for (const CrlPtr& crl : *crls) {
      const X509_NAME* issuer = X509_CRL_get_issuer(crl.get());
      bool known_issuer = false;
      bool verified = false;
      for (const X509Ptr& ca : cas) {
        if (X509_NAME_cmp(issuer, X509_get_subject_name(ca.get())) != 0) {
          continue;
        }
        known_issuer = true;
        EVP_PKEY* key = X509_get0_pubkey(ca.get());
        if (key != nullptr && X509_CRL_verify(crl.get(), key) == 1) {
          verified = true;
          break;
        }
      }
      ERR_clear_error();
      if (!known_issuer) {
        return absl::FailedPreconditionError(
            absl::StrCat(file.path, ": the CRL's issuer ", NameText(issuer),
                         " is not a certificate of the CA bundle"));
      }
      if (!verified) {
        return absl::FailedPreconditionError(absl::StrCat(
            file.path, ": the CRL's signature does not verify with the CA ",
            NameText(issuer)));
      }
      if (const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl.get());
          next != nullptr) {
        const absl::Time next_update = FromAsn1Time(next);
        if (next_update <= now) {
          return absl::FailedPreconditionError(
              absl::StrCat(file.path, ": the CRL expired (nextUpdate ",
                           absl::FormatTime(absl::RFC3339_sec, next_update,
                                            absl::UTCTimeZone()),
                           "); the CA must issue a fresh one"));
        }
        set.next_update_ = std::min(set.next_update_, next_update);
      }
      absl::flat_hash_set<std::string>& serials = set.revoked_[NameDer(issuer)];
      STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl.get());
      for (int i = 0; i < sk_X509_REVOKED_num(revoked); ++i) {
        const X509_REVOKED* entry = sk_X509_REVOKED_value(revoked, i);
        if (serials.insert(SerialHex(X509_REVOKED_get0_serialNumber(entry)))
                .second) {
          ++set.revoked_count_;
        }
      }
      ++set.crl_count_;
    }
  }
  if (set.crl_count_ == 0) {
    return absl::FailedPreconditionError("no CRL given");
  }
  return set;
}

absl::StatusOr<bool> CrlSet::IsRevoked(absl::string_view cert_pem) const {
  BioPtr in = MemoryBio(cert_pem);
  X509Ptr cert(PEM_read_bio_X509(in.get(), nullptr, nullptr, nullptr));
  if (cert == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("peer certificate does not parse: ", OpenSslError()));
  }
  auto it = revoked_.find(NameDer(X509_get_issuer_name(cert.get())));
  if (it == revoked_.end()) return false;
  return it->second.contains(SerialHex(X509_get0_serialNumber(cert.get())));
}

CertificateName NameOf(absl::string_view cert_pem) {
  BioPtr in = MemoryBio(cert_pem);
  X509Ptr cert(PEM_read_bio_X509(in.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (cert == nullptr) return {};
  return {SerialHex(X509_get0_serialNumber(cert.get())),
          NameText(X509_get_subject_name(cert.get()))};
}

}  // namespace lotse::server::internal
