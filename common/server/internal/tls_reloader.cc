#include "common/server/internal/tls_reloader.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/server/log.h"

namespace lotse::server::internal {
namespace {

// At most one log line per this long about refused revoked certificates.
constexpr absl::Duration kRefusalLogInterval = absl::Seconds(10);

absl::StatusOr<std::string> Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

double UnixSeconds(absl::Time t) {
  if (t == absl::InfiniteFuture()) return 0;  // no nextUpdate: no deadline
  return absl::ToDoubleSeconds(t - absl::UnixEpoch());
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime(absl::RFC3339_sec, t, absl::UTCTimeZone());
}

// What a server certificate and key file say: the certificate's serial and
// notAfter, after checking that both parse, match and have not expired.
struct ServerCertificate {
  std::string serial;
  absl::Time not_after;
};

absl::StatusOr<ServerCertificate> CheckServerCertificate(
    const std::string& cert_path, absl::string_view cert_pem,
    const std::string& key_path, absl::string_view key_pem, absl::Time now) {
  BIO* cert_bio =
      BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size()));
  X509* cert = PEM_read_bio_X509(cert_bio, nullptr, nullptr, nullptr);
  BIO_free(cert_bio);
  BIO* key_bio =
      BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, nullptr);
  BIO_free(key_bio);
  ERR_clear_error();
  absl::Status status;
  ServerCertificate out;
  if (cert == nullptr) {
    status = absl::FailedPreconditionError(
        absl::StrCat(cert_path, ": no PEM certificate in it"));
  } else if (key == nullptr) {
    status = absl::FailedPreconditionError(
        absl::StrCat(key_path, ": no PEM private key in it"));
  } else if (X509_check_private_key(cert, key) != 1) {
    status = absl::FailedPreconditionError(absl::StrCat(
        key_path, " is not the private key of the certificate ", cert_path));
  } else {
    std::tm tm = {};
    ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm);
    out.not_after = absl::FromTimeT(timegm(&tm));
    BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
    char* hex = bn == nullptr ? nullptr : BN_bn2hex(bn);
    out.serial = hex == nullptr ? "" : hex;
    OPENSSL_free(hex);
    BN_free(bn);
    if (out.not_after <= now) {
      status = absl::FailedPreconditionError(absl::StrCat(
          cert_path, ": the certificate expired at ", Rfc3339(out.not_after)));
    }
  }
  ERR_clear_error();
  X509_free(cert);
  EVP_PKEY_free(key);
  if (!status.ok()) return status;
  return out;
}

bool HasCertificate(absl::string_view pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ERR_clear_error();
  X509_free(cert);
  return cert != nullptr;
}

// Writes `data` to a new file readable by this user only, with `mtime`.
absl::Status WritePrivateFile(const std::string& path, absl::string_view data,
                              time_t mtime) {
  unlink(path.c_str());
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot write ", path));
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  const struct timespec times[2] = {{mtime, 0}, {mtime, 0}};
  const bool ok = done == data.size() && futimens(fd, times) == 0;
  close(fd);
  if (!ok) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

// A private directory for the served copies: on tmpfs (/dev/shm) when
// there is one, so that the key copy never reaches a disk. Directories left
// by processes that no longer run (killed before they could remove theirs)
// are removed first.
absl::StatusOr<std::string> MakeServedDir() {
  std::vector<std::string> parents = {"/dev/shm"};
  if (const char* tmp = getenv("TMPDIR"); tmp != nullptr && *tmp != '\0') {
    parents.push_back(tmp);
  }
  parents.push_back("/tmp");
  constexpr absl::string_view kPrefix = "lotse-tls.";
  for (const std::string& parent : parents) {
    if (access(parent.c_str(), W_OK | X_OK) != 0) continue;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(parent, ec)) {
      const std::string name = entry.path().filename().string();
      if (!absl::StartsWith(name, kPrefix)) continue;
      std::vector<std::string> parts =
          absl::StrSplit(name.substr(kPrefix.size()), '.');
      int pid = 0;
      if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &pid) || pid <= 0) {
        continue;
      }
      if (kill(pid, 0) != 0 && errno == ESRCH) {
        std::error_code ignored;
        std::filesystem::remove_all(entry.path(), ignored);
      }
    }
    std::string pattern =
        absl::StrCat(parent, "/", kPrefix, getpid(), ".XXXXXX");
    if (mkdtemp(pattern.data()) != nullptr) return pattern;
  }
  return absl::FailedPreconditionError(
      "no writable directory (/dev/shm, $TMPDIR, /tmp) for the served TLS "
      "material");
}

class RevocationCheck final
    : public grpc::experimental::ExternalCertificateVerifier {
 public:
  explicit RevocationCheck(std::shared_ptr<TlsReloader> reloader)
      : reloader_(std::move(reloader)) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)> /*callback*/,
              grpc::Status* sync_status) override {
    const grpc::string_ref pem = request->peer_cert();
    absl::Status status =
        reloader_->CheckPeer(absl::string_view(pem.data(), pem.size()));
    *sync_status = status.ok() ? grpc::Status::OK
                               : grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                              std::string(status.message()));
    return true;  // decided synchronously
  }

  void Cancel(
      grpc::experimental::TlsCustomVerificationCheckRequest* /*request*/)
      override {}

 private:
  std::shared_ptr<TlsReloader> reloader_;
};

}  // namespace

TlsReloader::Metrics::Metrics(prometheus::Registry& registry)
    : reloads(prometheus::BuildCounter()
                  .Name("lotse_tls_reloads_total")
                  .Help("Changed TLS material loaded while running, by "
                        "material (crl, server_certificate)")
                  .Register(registry)),
      failures(prometheus::BuildCounter()
                   .Name("lotse_tls_reload_failures_total")
                   .Help("Changed TLS material that could not be loaded (the "
                         "last good one stays in force), by material")
                   .Register(registry)),
      crl_next_update(prometheus::BuildGauge()
                          .Name("lotse_tls_crl_next_update_seconds")
                          .Help("Earliest nextUpdate (Unix time) of the CRLs "
                                "in force; 0 without CRLs")
                          .Register(registry)
                          .Add({})),
      crl_revoked(prometheus::BuildGauge()
                      .Name("lotse_tls_crl_revoked_certificates")
                      .Help("Certificates the CRLs in force revoke")
                      .Register(registry)
                      .Add({})),
      cert_not_after(prometheus::BuildGauge()
                         .Name("lotse_tls_server_certificate_not_after_seconds")
                         .Help("notAfter (Unix time) of the server "
                               "certificate being served")
                         .Register(registry)
                         .Add({})),
      revoked_handshakes(prometheus::BuildCounter()
                             .Name("lotse_tls_revoked_handshakes_total")
                             .Help("Handshakes refused because the client "
                                   "certificate is revoked")
                             .Register(registry)
                             .Add({})) {}

TlsReloader::TlsReloader(TlsReloadOptions options,
                         prometheus::Registry& registry)
    : options_(std::move(options)), metrics_(registry) {}

absl::StatusOr<std::shared_ptr<TlsReloader>> TlsReloader::Start(
    const TlsReloadOptions& options, prometheus::Registry& registry) {
  if (options.interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "the TLS reload interval must be positive");
  }
  std::shared_ptr<TlsReloader> reloader(new TlsReloader(options, registry));
  absl::StatusOr<std::string> served = MakeServedDir();
  if (!served.ok()) return served.status();
  reloader->served_dir_ = *std::move(served);
  if (absl::Status s = reloader->ReloadServerCertificate(/*at_start=*/true);
      !s.ok()) {
    return s;
  }
  if (!options.crl.empty()) {
    if (absl::Status s = reloader->ReloadCrl(/*at_start=*/true); !s.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("--tls_crl: ", s.message()));
    }
  }
  reloader->thread_ = std::thread([r = reloader.get()] { r->Run(); });
  return reloader;
}

TlsReloader::~TlsReloader() { Stop(); }

void TlsReloader::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
  if (!served_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(served_dir_, ec);
    served_dir_.clear();
  }
}

std::string TlsReloader::served_cert() const {
  return absl::StrCat(served_dir_, "/current/tls.crt");
}
std::string TlsReloader::served_key() const {
  return absl::StrCat(served_dir_, "/current/tls.key");
}
std::string TlsReloader::served_ca() const {
  return absl::StrCat(served_dir_, "/current/ca.crt");
}

absl::Status TlsReloader::Serve(absl::string_view cert, absl::string_view key,
                                absl::string_view ca) {
  const int generation = ++generation_;
  const std::string dir = absl::StrCat(served_dir_, "/gen-", generation);
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::InternalError(absl::StrCat("cannot create ", dir));
  }
  // gRPC's file watcher takes a key and certificate as a pair only if
  // their modification times did not change while it read them; distinct
  // times per generation make a swap between the two reads visible.
  const time_t mtime = std::max<time_t>(time(nullptr), last_mtime_ + 1);
  last_mtime_ = mtime;
  for (const auto& [name, data] :
       {std::pair<const char*, absl::string_view>{"tls.crt", cert},
        {"tls.key", key},
        {"ca.crt", ca}}) {
    if (absl::Status s =
            WritePrivateFile(absl::StrCat(dir, "/", name), data, mtime);
        !s.ok()) {
      return s;
    }
  }
  const std::string link = absl::StrCat(served_dir_, "/current.tmp");
  unlink(link.c_str());
  if (symlink(absl::StrCat("gen-", generation).c_str(), link.c_str()) != 0 ||
      rename(link.c_str(), absl::StrCat(served_dir_, "/current").c_str()) !=
          0) {
    return absl::InternalError(
        absl::StrCat("cannot point ", served_dir_, "/current at ", dir));
  }
  // The generation before the previous one: nothing reads it any more.
  std::error_code ec;
  std::filesystem::remove_all(
      absl::StrCat(served_dir_, "/gen-", generation - 2), ec);
  return absl::OkStatus();
}

void TlsReloader::Run() {
  while (!stop_.WaitForNotificationWithTimeout(options_.interval)) {
    ReloadOnce();
  }
}

void TlsReloader::ReloadOnce() {
  ReloadServerCertificate(/*at_start=*/false).IgnoreError();
  if (!options_.crl.empty()) ReloadCrl(/*at_start=*/false).IgnoreError();
}

absl::Status TlsReloader::CheckPeer(absl::string_view cert_pem) {
  std::shared_ptr<const CrlSet> crls;
  {
    absl::MutexLock lock(&mu_);
    crls = crls_;
  }
  if (crls == nullptr) return absl::OkStatus();
  absl::StatusOr<bool> revoked = crls->IsRevoked(cert_pem);
  if (!revoked.ok())
    return absl::UnauthenticatedError(revoked.status().message());
  if (*revoked) {
    metrics_.revoked_handshakes.Increment();
    int64_t refusals = 0;
    {
      absl::MutexLock lock(&log_mu_);
      ++unlogged_refusals_;
      const absl::Time now = absl::Now();
      if (now - last_refusal_log_ >= kRefusalLogInterval) {
        last_refusal_log_ = now;
        refusals = unlogged_refusals_;
        unlogged_refusals_ = 0;
      }
    }
    if (refusals > 0) {
      // Serial and subject name the certificate (an agency or service id,
      // never a person).
      const CertificateName name = NameOf(cert_pem);
      Log(LogLevel::kWarning, "refused a revoked client certificate",
          {{"service", options_.service},
           {"serial", name.serial},
           {"subject", name.subject},
           {"refusals", refusals}});
    }
    return absl::UnauthenticatedError("client certificate is revoked");
  }
  return absl::OkStatus();
}

absl::Status TlsReloader::ReloadServerCertificate(bool at_start) {
  struct Material {
    absl::StatusOr<std::string> cert, key, ca;
    absl::Status status;
    // A file that cannot be read is "seen" as its error, so that it is
    // reported once.
    std::string seen;
  };
  auto read = [this] {
    Material m{Slurp(options_.cert), Slurp(options_.key), Slurp(options_.ca),
               absl::OkStatus(), ""};
    m.status = !m.cert.ok()  ? m.cert.status()
               : !m.key.ok() ? m.key.status()
                             : m.ca.status();
    m.seen = m.status.ok() ? absl::StrCat(*m.cert, "\n", *m.key, "\n", *m.ca)
                           : m.status.ToString();
    return m;
  };
  Material m = read();
  if (!at_start && m.seen == cert_seen_) return absl::OkStatus();
  // Files caught in the middle of a change (one renamed, the other not yet)
  // read differently twice in a row: look again next round.
  if (!at_start && read().seen != m.seen) return absl::OkStatus();
  cert_seen_ = m.seen;
  const absl::Status& status = m.status;
  const absl::StatusOr<std::string>& cert = m.cert;
  const absl::StatusOr<std::string>& key = m.key;
  const absl::StatusOr<std::string>& ca = m.ca;
  absl::StatusOr<ServerCertificate> checked =
      status.ok() ? CheckServerCertificate(options_.cert, *cert, options_.key,
                                           *key, absl::Now())
                  : absl::StatusOr<ServerCertificate>(
                        absl::FailedPreconditionError(status.message()));
  if (checked.ok() && !HasCertificate(*ca)) {
    checked = absl::FailedPreconditionError(
        absl::StrCat(options_.ca, ": no PEM certificate in it"));
  }
  if (checked.ok()) {
    if (absl::Status s = Serve(*cert, *key, *ca); !s.ok()) checked = s;
  }
  if (!checked.ok()) {
    if (at_start) return checked.status();
    metrics_.failures.Add({{"material", "server_certificate"}}).Increment();
    Log(LogLevel::kError,
        "server certificate, key or CA bundle on disk is unusable; still "
        "serving the last good ones",
        {{"service", options_.service},
         {"error", std::string(checked.status().message())}});
    return checked.status();
  }
  if (!at_start) {
    metrics_.reloads.Add({{"material", "server_certificate"}}).Increment();
    Log(LogLevel::kInfo, "server certificate changed on disk",
        {{"service", options_.service},
         {"serial", checked->serial},
         {"not_after", Rfc3339(checked->not_after)}});
  }
  metrics_.cert_not_after.Set(UnixSeconds(checked->not_after));
  return absl::OkStatus();
}

absl::Status TlsReloader::ReloadCrl(bool at_start) {
  const absl::Time now = absl::Now();
  struct Material {
    absl::StatusOr<std::vector<CrlFile>> files;
    absl::StatusOr<std::string> ca;
    absl::Status status;
    std::string seen;
  };
  auto read = [this] {
    Material m{ReadCrlFiles(options_.crl), Slurp(options_.ca), absl::OkStatus(),
               ""};
    m.status = !m.files.ok() ? m.files.status() : m.ca.status();
    m.seen = m.status.ToString();
    if (m.status.ok()) {
      m.seen = *m.ca;
      for (const CrlFile& f : *m.files) {
        absl::StrAppend(&m.seen, "\n", f.path, "\n", f.contents);
      }
    }
    return m;
  };
  Material m = read();
  const absl::Status& status = m.status;
  const absl::StatusOr<std::vector<CrlFile>>& files = m.files;
  const absl::StatusOr<std::string>& ca = m.ca;
  std::string& seen = m.seen;
  if (!at_start && seen == crl_seen_) {
    // Unchanged. A CRL past its nextUpdate stays in force (refusing every
    // client would be an outage); say so once.
    absl::MutexLock lock(&mu_);
    if (crls_ != nullptr && crl_next_update_ <= now && !stale_logged_) {
      stale_logged_ = true;
      Log(LogLevel::kWarning,
          "CRL is past its nextUpdate and no fresh one arrived; still "
          "enforcing it",
          {{"service", options_.service},
           {"next_update", Rfc3339(crl_next_update_)}});
    }
    return absl::OkStatus();
  }
  // A file caught while being written reads differently twice in a row:
  // look again next round.
  if (!at_start && read().seen != seen) return absl::OkStatus();
  crl_seen_ = std::move(seen);
  absl::StatusOr<CrlSet> parsed =
      status.ok() ? CrlSet::Parse(*files, *ca, now)
                  : absl::StatusOr<CrlSet>(
                        absl::FailedPreconditionError(status.message()));
  if (!parsed.ok()) {
    if (at_start) return parsed.status();
    metrics_.failures.Add({{"material", "crl"}}).Increment();
    Log(LogLevel::kError, "CRL reload failed; the last good CRL stays in force",
        {{"service", options_.service},
         {"error", std::string(parsed.status().message())}});
    return parsed.status();
  }
  const absl::Time next_update = parsed->next_update();
  const int64_t revoked = parsed->revoked_count();
  const int64_t count = parsed->crl_count();
  {
    absl::MutexLock lock(&mu_);
    crls_ = std::make_shared<const CrlSet>(*std::move(parsed));
    crl_next_update_ = next_update;
    stale_logged_ = false;
  }
  metrics_.crl_next_update.Set(UnixSeconds(next_update));
  metrics_.crl_revoked.Set(static_cast<double>(revoked));
  if (!at_start) metrics_.reloads.Add({{"material", "crl"}}).Increment();
  Log(LogLevel::kInfo, at_start ? "CRL loaded" : "CRL reloaded",
      {{"service", options_.service},
       {"crls", count},
       {"revoked", revoked},
       {"next_update", next_update == absl::InfiniteFuture()
                           ? std::string("none")
                           : Rfc3339(next_update)}});
  return absl::OkStatus();
}

std::shared_ptr<grpc::experimental::CertificateVerifier> RevocationVerifier(
    std::shared_ptr<TlsReloader> reloader) {
  return grpc::experimental::ExternalCertificateVerifier::Create<
      RevocationCheck>(std::move(reloader));
}

}  // namespace lotse::server::internal
