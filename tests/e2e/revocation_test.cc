// Certificate revocation and rotation on a running service process, the
// way an operator does them: `tools/dev-pki.sh revoke NAME` rewrites the CRL
// the process was started with (--tls_crl), a Secret volume swaps the
// server certificate in place (kubelet's `..data` symlink), and broken CRLs
// appear at start or later. Each test has a PKI of its own, so revocations
// never leak into other tests.
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/server/server.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "lotse/cases/v1/cases_service.grpc.pb.h"
#include "tests/e2e/calls.h"
#include "tests/support/dev_pki.h"
#include "tests/support/process.h"

namespace lotse::testing {
namespace {

using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;

// The services re-read their TLS material this often here.
constexpr char kReloadInterval[] = "--tls_reload_interval=1s";
// How long a change on disk may take to reach new handshakes: one reload
// interval, with room for a loaded two-core machine.
constexpr absl::Duration kEffect = absl::Seconds(30);

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Writes `contents` beside `path` and renames it into place, as an operator
// should, so the process never reads half a file.
void WriteFile(const std::string& path, const std::string& contents) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << contents;
  }
  ASSERT_EQ(std::rename(tmp.c_str(), path.c_str()), 0) << path;
}

class RevocationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/lotse-e2e-revocation.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    pki_ = dir_ + "/pki";
    ASSERT_EQ(Shell(absl::StrCat(DevPki(), " ", pki_)), 0) << ShellLog();
    setenv("LOTSE_ACCESS_RULES",
           absl::StrCat(SourceDir(), "/config/access-rules.conf").c_str(), 1);
  }

  // A graceful stop, after which the process has removed its private copies
  // of the TLS material (lotse-tls.<pid>.* under /dev/shm or /tmp).
  void TearDown() override {
    if (cases_ != nullptr) {
      cases_->Signal(SIGTERM);
      EXPECT_EQ(cases_->WaitExit(absl::Seconds(60)).value_or(-1), 0)
          << cases_->ReadLog();
    }
    if (process_ == nullptr) return;
    const pid_t pid = process_->pid();
    process_->Signal(SIGTERM);
    EXPECT_EQ(process_->WaitExit(absl::Seconds(60)).value_or(-1), 0)
        << process_->ReadLog();
    for (const char* parent : {"/dev/shm", "/tmp"}) {
      std::error_code ec;
      for (const auto& entry :
           std::filesystem::directory_iterator(parent, ec)) {
        EXPECT_FALSE(absl::StartsWith(entry.path().filename().string(),
                                      absl::StrCat("lotse-tls.", pid, ".")))
            << entry.path();
      }
    }
  }

  static std::string DevPki() {
    return absl::StrCat(SourceDir(), "/tools/dev-pki.sh");
  }

  // Runs a shell command, its output appended to sh.log; the exit code.
  int Shell(const std::string& command) {
    const std::string line =
        absl::StrCat("(", command, ") >>", dir_, "/sh.log 2>&1");
    const int rc = std::system(line.c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  }
  std::string ShellLog() { return Slurp(dir_ + "/sh.log"); }

  std::vector<std::string> IdentityArgs(std::vector<std::string> extra) {
    std::vector<std::string> args = {
        "--listen=127.0.0.1:0",
        "--metrics_listen=127.0.0.1:0",
        absl::StrCat("--tls_dir=", pki_),
        absl::StrCat("--tls_crl=", pki_, "/crl/ca.crl"),
        kReloadInterval,
        absl::StrCat("--database=sqlite:", dir_, "/identity.db"),
        "--drain_grace=100ms",
        "--shutdown_deadline=1s"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  std::unique_ptr<ServiceProcess> Launch(
      const std::vector<std::string>& args,
      const std::string& binary = "services/identity/lotse_identity") {
    absl::StatusOr<ServiceProcess> p = ServiceProcess::Start(
        absl::StrCat(BinaryDir(), "/", binary), args,
        absl::StrCat(dir_, "/process-", ++launches_, ".log"));
    EXPECT_TRUE(p.ok()) << p.status();
    if (!p.ok()) return nullptr;
    return std::make_unique<ServiceProcess>(*std::move(p));
  }

  // Starts identity serving; sets port_ and metrics_port_.
  void StartIdentity(std::vector<std::string> extra = {}) {
    process_ = Launch(IdentityArgs(std::move(extra)));
    ASSERT_NE(process_, nullptr);
    absl::StatusOr<int> port = process_->WaitServing(absl::Seconds(60));
    ASSERT_TRUE(port.ok()) << process_->ReadLog();
    port_ = *port;
    std::smatch m;
    const std::string log = process_->ReadLog();
    ASSERT_TRUE(
        std::regex_search(log, m, std::regex("\"metrics_port\":([0-9]+)")))
        << log;
    metrics_port_ = std::stoi(m[1]);
  }

  // A channel of its own (never sharing a connection with another channel),
  // presenting client certificate `as` (a name under pki/clients).
  std::shared_ptr<grpc::Channel> FreshChannel(const std::string& as) {
    auto creds = server::ClientCredentialsFromDir(pki_, as);
    EXPECT_TRUE(creds.ok()) << creds.status();
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port_), *creds,
                                     args);
  }

  // A health check over mutual TLS on `channel`; `peer_pem` receives the
  // server certificate the handshake presented.
  static grpc::Status Check(grpc::Channel& channel,
                            std::string* peer_pem = nullptr) {
    auto stub = grpc::health::v1::Health::NewStub(
        std::shared_ptr<grpc::Channel>(&channel, [](grpc::Channel*) {}));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
    HealthCheckRequest request;
    HealthCheckResponse response;
    grpc::Status status = stub->Check(&context, request, &response);
    if (status.ok() && peer_pem != nullptr) {
      std::vector<grpc::string_ref> pem =
          context.auth_context()->FindPropertyValues(
              GRPC_X509_PEM_CERT_PROPERTY_NAME);
      *peer_pem = pem.empty() ? "" : std::string(pem[0].data(), pem[0].size());
    }
    return status;
  }

  // A health check on a new connection as `as`.
  grpc::Status CheckAs(const std::string& as) {
    return Check(*FreshChannel(as));
  }

  std::string Metrics() { return HttpGet(metrics_port_, "/metrics"); }

  std::string dir_;
  std::string pki_;
  std::unique_ptr<ServiceProcess> process_;
  std::unique_ptr<ServiceProcess> cases_;
  int port_ = 0;
  int metrics_port_ = 0;
  int launches_ = 0;
};

TEST_F(RevocationTest, RevokedAgencyIsRefusedAtTheHandshakeOthersGoOn) {
  StartIdentity();
  ASSERT_TRUE(CheckAs("kim-bonn").ok());
  ASSERT_TRUE(CheckAs("kim-koeln").ok());
  // A connection opened before the revocation.
  std::shared_ptr<grpc::Channel> before = FreshChannel("kim-bonn");
  ASSERT_TRUE(Check(*before).ok());

  ASSERT_EQ(Shell(absl::StrCat(DevPki(), " revoke kim-bonn ", pki_)), 0)
      << ShellLog();
  const absl::Time revoked = absl::Now();
  ASSERT_TRUE(Eventually([&] { return !CheckAs("kim-bonn").ok(); }, kEffect))
      << process_->ReadLog();
  std::printf("new kim-bonn connections refused %.1f s after the revocation\n",
              absl::ToDoubleSeconds(absl::Now() - revoked));

  const grpc::Status refused = CheckAs("kim-bonn");
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE)
      << refused.error_message();
  EXPECT_TRUE(CheckAs("kim-koeln").ok());
  // The connection opened before stays until it closes (no
  // --max_connection_age here).
  EXPECT_TRUE(Check(*before).ok());
  const std::string log = process_->ReadLog();
  EXPECT_TRUE(absl::StrContains(log, "refused a revoked client certificate"))
      << log;
  EXPECT_TRUE(absl::StrContains(log, "CN=kim-bonn")) << log;
  EXPECT_TRUE(absl::StrContains(log, "CRL reloaded")) << log;
  const std::string metrics = Metrics();
  EXPECT_TRUE(std::regex_search(
      metrics, std::regex("lotse_tls_revoked_handshakes_total [1-9]")))
      << metrics;
  EXPECT_TRUE(
      absl::StrContains(metrics, "lotse_tls_crl_revoked_certificates 1"))
      << metrics;
  EXPECT_TRUE(std::regex_search(
      metrics, std::regex("lotse_tls_crl_next_update_seconds [1-9]")))
      << metrics;
}

// The certificate a service calls other services with (svc-*) is revoked
// like an agency's; a connection it opened before is closed by
// --max_connection_age and its reconnection refused.
TEST_F(RevocationTest, RevokedServiceCertificateIsRefusedOnReconnection) {
  StartIdentity({"--max_connection_age=2s"});
  std::shared_ptr<grpc::Channel> before = FreshChannel("svc-cases");
  ASSERT_TRUE(Check(*before).ok());
  ASSERT_TRUE(CheckAs("svc-courses").ok());

  ASSERT_EQ(Shell(absl::StrCat(DevPki(), " revoke svc-cases ", pki_)), 0)
      << ShellLog();
  ASSERT_TRUE(Eventually([&] { return !CheckAs("svc-cases").ok(); }, kEffect))
      << process_->ReadLog();
  EXPECT_EQ(CheckAs("svc-cases").error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(CheckAs("svc-courses").ok());
  // Asked to reconnect after two seconds, the old channel's new handshake
  // is refused too.
  EXPECT_TRUE(Eventually([&] { return !Check(*before).ok(); }, kEffect));
  EXPECT_EQ(Check(*before).error_code(), grpc::StatusCode::UNAVAILABLE);
}

// The same seen from the process that holds the certificate: the cases
// service checks access with identity as svc-cases; revoked, those checks
// fail closed once its connection to identity is renewed.
TEST_F(RevocationTest, RevokedServiceCertificateStopsItsCallsToOtherServices) {
  const int cases_port = FreeLocalPort();
  StartIdentity(
      {"--max_connection_age=2s",
       absl::StrCat("--event_destinations=cases=127.0.0.1:", cases_port)});
  cases_ =
      Launch({absl::StrCat("--listen=127.0.0.1:", cases_port),
              absl::StrCat("--tls_dir=", pki_),
              absl::StrCat("--database=sqlite:", dir_, "/cases.db"),
              absl::StrCat("--identity_target=127.0.0.1:", port_),
              absl::StrCat("--event_destinations=identity=127.0.0.1:", port_),
              "--drain_grace=100ms", "--shutdown_deadline=1s"},
             "services/cases/lotse_cases");
  ASSERT_NE(cases_, nullptr);
  ASSERT_TRUE(cases_->WaitServing(absl::Seconds(60)).ok()) << cases_->ReadLog();
  std::unique_ptr<ServiceProcess> seed =
      Launch({absl::StrCat("--identity=127.0.0.1:", port_),
              absl::StrCat("--tls_dir=", pki_)},
             "tools/lotse_seed_demo");
  ASSERT_NE(seed, nullptr);
  ASSERT_EQ(seed->WaitExit(absl::Seconds(120)).value_or(-1), 0)
      << seed->ReadLog();

  // kim-koeln opens a case of a person nobody knows: cases asks identity,
  // which answers "no relation"; without identity's answer the call fails
  // closed with UNAVAILABLE. A new person each time, so nothing is cached.
  auto creds = server::ClientCredentialsFromDir(pki_, "kim-koeln");
  ASSERT_TRUE(creds.ok());
  auto stub = lotse::cases::v1::CasesService::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", cases_port), *creds));
  int probes = 0;
  auto probe = [&] {
    lotse::cases::v1::OpenCaseRequest request;
    request.set_request_id(absl::StrCat("revocation-probe-", ++probes));
    request.mutable_case_record()->set_person(
        absl::StrCat("persons/unknown-", probes));
    request.mutable_case_record()->set_responsible_actor("cm-1");
    lotse::cases::v1::Case opened;
    return e2e::Call([&](grpc::ClientContext* c) {
      return stub->OpenCase(c, request, &opened);
    });
  };
  // The agencies reach cases as events from identity.
  ASSERT_TRUE(Eventually(
      [&] {
        return probe().error_code() == grpc::StatusCode::PERMISSION_DENIED;
      },
      absl::Seconds(60)))
      << e2e::Describe(probe()) << "\n"
      << cases_->ReadLog();
  EXPECT_EQ(e2e::Reason(probe()), "NO_RELATION");

  ASSERT_EQ(Shell(absl::StrCat(DevPki(), " revoke svc-cases ", pki_)), 0)
      << ShellLog();
  ASSERT_TRUE(Eventually(
      [&] { return probe().error_code() == grpc::StatusCode::UNAVAILABLE; },
      kEffect))
      << e2e::Describe(probe()) << "\n"
      << process_->ReadLog();
  EXPECT_TRUE(absl::StrContains(process_->ReadLog(),
                                "refused a revoked client certificate"));
  // kim-koeln itself is not revoked: identity still answers it directly.
  EXPECT_TRUE(CheckAs("kim-koeln").ok());
}

// cert-manager rotates a Secret in place: kubelet writes the new files to
// a fresh directory and swaps the `..data` symlink the file links go
// through. New connections get the new certificate without a restart; a
// broken one is not served.
TEST_F(RevocationTest, ServerCertificateSwappedInPlaceReachesNewConnections) {
  const std::string secret = dir_ + "/secret";
  ASSERT_EQ(Shell(absl::StrCat(
                "set -e; mkdir -p ", secret, "/..v1; cd ", secret, "; cp ",
                pki_, "/servers/identity.crt ..v1/tls.crt; cp ", pki_,
                "/servers/identity.key ..v1/tls.key; cp ", pki_,
                "/ca.crt ..v1/ca.crt; ln -s ..v1 ..data; for f in tls.crt "
                "tls.key ca.crt; do ln -s ..data/$f $f; done")),
            0)
      << ShellLog();
  const std::string first = Slurp(secret + "/..v1/tls.crt");
  StartIdentity({absl::StrCat("--tls_cert=", secret, "/tls.crt"),
                 absl::StrCat("--tls_key=", secret, "/tls.key"),
                 absl::StrCat("--tls_ca=", secret, "/ca.crt")});
  std::string seen;
  ASSERT_TRUE(Check(*FreshChannel("kim-koeln"), &seen).ok());
  EXPECT_EQ(seen, first);

  // A new certificate for the same name from the same CA.
  ASSERT_EQ(
      Shell(absl::StrCat("set -e; rm ", pki_, "/servers/identity.*; ", DevPki(),
                         " ", pki_, "; cd ", secret, "; mkdir ..v2; cp ", pki_,
                         "/servers/identity.crt ..v2/tls.crt; cp ", pki_,
                         "/servers/identity.key ..v2/tls.key; cp ", pki_,
                         "/ca.crt ..v2/ca.crt; ln -s ..v2 ..data_tmp; "
                         "mv -T ..data_tmp ..data")),
      0)
      << ShellLog();
  const std::string second = Slurp(secret + "/..v2/tls.crt");
  ASSERT_NE(second, first);
  ASSERT_TRUE(Eventually(
      [&] {
        std::string pem;
        return Check(*FreshChannel("kim-koeln"), &pem).ok() && pem == second;
      },
      kEffect))
      << process_->ReadLog();
  EXPECT_TRUE(absl::StrContains(process_->ReadLog(),
                                "server certificate changed on disk"));

  // A broken certificate next (its key from another pair): not served, the
  // last good one stays in use.
  ASSERT_EQ(Shell(absl::StrCat("set -e; cd ", secret,
                               "; mkdir ..v3; cp ..v2/tls.crt ..v2/ca.crt "
                               "..v3/; cp ",
                               pki_,
                               "/servers/cases.key ..v3/tls.key; ln -s ..v3 "
                               "..data_tmp; mv -T ..data_tmp ..data")),
            0)
      << ShellLog();
  ASSERT_TRUE(Eventually(
      [&] { return absl::StrContains(process_->ReadLog(), "is unusable"); },
      kEffect))
      << process_->ReadLog();
  std::string pem;
  EXPECT_TRUE(Check(*FreshChannel("kim-koeln"), &pem).ok());
  EXPECT_EQ(pem, second);
  const std::string metrics = Metrics();
  EXPECT_TRUE(std::regex_search(
      metrics, std::regex("lotse_tls_reload_failures_total\\{material="
                          "\"server_certificate\"\\} [1-9]")))
      << metrics;
}

// A CRL the process cannot use at start refuses the start, saying why.
TEST_F(RevocationTest, UnusableCrlAtStartRefusesToStart) {
  const std::string crl = pki_ + "/crl/ca.crl";
  struct Broken {
    std::string name;
    std::string make;    // shell command that writes the CRL at $CRL
    std::string reason;  // what the log must say
  };
  // A CRL signed by the rogue CA, whose name is the dev CA's.
  const std::string rogue = absl::StrCat(
      "d=$(mktemp -d); : >$d/index; sed -e \"s|^database = .*|database = "
      "$d/index|\" -e \"s|^crlnumber = .*||\" -e \"s|^certificate = "
      ".*|certificate = ",
      pki_,
      "/test/rogue-ca.crt|\" -e \"s|^private_key = .*|private_key = ", pki_,
      "/test/rogue-ca.key|\" ", pki_,
      "/ca-db/ca.cnf >$d/cnf; openssl ca -batch -config $d/cnf -gencrl -out "
      "$CRL");
  const std::vector<Broken> cases = {
      {"garbage", "echo 'not a CRL' >$CRL", "no CRL in it"},
      {"missing", "rm -f $CRL", "cannot read"},
      {"rogue signature", rogue, "signature does not verify"},
      {"expired",
       absl::StrCat("openssl ca -batch -config ", pki_,
                    "/ca-db/ca.cnf -gencrl -crl_lastupdate 20200101000000Z "
                    "-crl_nextupdate 20200102000000Z -out $CRL"),
       "expired"},
  };
  for (const Broken& broken : cases) {
    SCOPED_TRACE(broken.name);
    ASSERT_EQ(Shell(absl::StrCat("CRL=", crl, "; ", broken.make)), 0)
        << ShellLog();
    std::unique_ptr<ServiceProcess> p = Launch(IdentityArgs({}));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->WaitExit(absl::Seconds(60)).value_or(-1), 1) << p->ReadLog();
    const std::string log = p->ReadLog();
    EXPECT_TRUE(absl::StrContains(log, "--tls_crl")) << log;
    EXPECT_TRUE(absl::StrContains(log, broken.reason)) << log;
    EXPECT_FALSE(absl::StrContains(log, "\"msg\":\"serving\"")) << log;
  }
}

// A CRL that breaks while the process runs is ignored: the last good one
// stays in force, the failure is logged and counted.
TEST_F(RevocationTest, CrlBrokenLaterKeepsTheLastGoodOne) {
  ASSERT_EQ(Shell(absl::StrCat(DevPki(), " revoke kim-bonn ", pki_)), 0)
      << ShellLog();
  StartIdentity();
  ASSERT_EQ(CheckAs("kim-bonn").error_code(), grpc::StatusCode::UNAVAILABLE);
  ASSERT_TRUE(CheckAs("kim-koeln").ok());

  WriteFile(pki_ + "/crl/ca.crl", "-----BEGIN X509 CRL-----\ntruncated");
  ASSERT_TRUE(Eventually(
      [&] {
        return absl::StrContains(process_->ReadLog(), "CRL reload failed");
      },
      kEffect))
      << process_->ReadLog();
  EXPECT_EQ(CheckAs("kim-bonn").error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(CheckAs("kim-koeln").ok());
  const std::string metrics = Metrics();
  EXPECT_TRUE(std::regex_search(
      metrics,
      std::regex(
          "lotse_tls_reload_failures_total\\{material=\"crl\"\\} [1-9]")))
      << metrics;

  // A good CRL again: the process takes it (and still refuses kim-bonn).
  ASSERT_EQ(Shell(absl::StrCat(DevPki(), " revoke kim-bonn ", pki_)), 0)
      << ShellLog();
  ASSERT_TRUE(Eventually(
      [&] { return absl::StrContains(process_->ReadLog(), "CRL reloaded"); },
      kEffect))
      << process_->ReadLog();
  EXPECT_EQ(CheckAs("kim-bonn").error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(CheckAs("kim-koeln").ok());
}

}  // namespace
}  // namespace lotse::testing
