// Transparency report benchmarks (bench/run_transparency_bench.sh):
//   --mode=setup       registers a person at identity as kim-koeln and opens
//                      the person's case at cases, so kim-koeln is the case
//                      owner; waits until identity grants the report; prints
//                      {"person":"persons/..."}
//   --mode=load_audit  appends --rows audit records to the change chain of
//                      the service database --database (service stopped),
//                      through common/audit's AppendAudit so the hash chain
//                      and the person index are exactly what the service
//                      writes; --person_rows of them are about --person,
//                      spread evenly, the others about random persons
//   --mode=report      closed loop of GetTransparencyReport for --person as
//                      kim-koeln at --concurrency (1 by default)
//   --mode=verify      VerifyAuditChain of the change chain of the service at
//                      --target, as a Lotse service; prints rows per second
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/internal/load.h"
#include "bench/internal/tls.h"
#include "common/audit/audit_log.h"
#include "common/storage/database.h"
#include "grpcpp/create_channel.h"
#include "lotse/audit/v1/audit_service.grpc.pb.h"
#include "lotse/cases/v1/cases_service.grpc.pb.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"

ABSL_FLAG(std::string, mode, "", "setup|load_audit|report|verify");
ABSL_FLAG(std::string, tls_dir, "", "tools/dev-pki.sh directory");
ABSL_FLAG(std::string, identity, "127.0.0.1:50051", "identity service");
ABSL_FLAG(std::string, cases, "127.0.0.1:50052", "setup: cases service");
ABSL_FLAG(std::string, target, "", "verify: the service asked");
ABSL_FLAG(std::string, database, "", "load_audit: service database URL");
ABSL_FLAG(std::string, service, "", "load_audit: the service's name");
ABSL_FLAG(int64_t, rows, 1000000, "load_audit: records appended");
ABSL_FLAG(int64_t, person_rows, 250, "load_audit: of them about --person");
ABSL_FLAG(std::string, person, "", "persons/{id}");
ABSL_FLAG(int, concurrency, 1, "report: calls in flight");
ABSL_FLAG(double, duration_s, 20, "report: measurement window");
ABSL_FLAG(double, warmup_s, 2, "report: warm-up");
ABSL_FLAG(int, service_timeout_ms, 5000, "report: per-service wait");

namespace {

namespace idv1 = ::lotse::identity::v1;
using ::lotse::bench::CallDone;

void Prepare(grpc::ClientContext* context, absl::Duration timeout) {
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  context->AddMetadata("x-lotse-actor", "bench-1");
  context->AddMetadata("x-lotse-purpose", "access-request");
}

std::shared_ptr<grpc::Channel> ChannelAs(const std::string& target,
                                         const std::string& client) {
  auto creds = lotse::bench::MakeMutualTlsChannelCredentials(
      absl::GetFlag(FLAGS_tls_dir), client);
  if (!creds.ok()) {
    std::fprintf(stderr, "%s\n", creds.status().ToString().c_str());
    std::exit(2);
  }
  return grpc::CreateChannel(target, *creds);
}

absl::Status Setup() {
  auto identity = idv1::IdentityService::NewStub(
      ChannelAs(absl::GetFlag(FLAGS_identity), "kim-koeln"));
  auto cases = lotse::cases::v1::CasesService::NewStub(
      ChannelAs(absl::GetFlag(FLAGS_cases), "kim-koeln"));
  idv1::CreatePersonRequest create;
  create.set_request_id("transparency-bench-person");
  idv1::Person* p = create.mutable_person();
  idv1::PersonName* n = p->add_names();
  n->set_given_names("Amal");
  n->set_family_names("Transparenz");
  n->set_kind(idv1::NAME_KIND_CURRENT);
  p->mutable_birth_date()->set_year(1988);
  create.set_confirm_new_person(true);
  idv1::Person person;
  grpc::Status s;
  for (int i = 0; i < 100; ++i) {
    grpc::ClientContext c;
    Prepare(&c, absl::Seconds(10));
    s = identity->CreatePerson(&c, create, &person);
    if (s.ok()) break;
    absl::SleepFor(absl::Milliseconds(300));
  }
  if (!s.ok()) return absl::InternalError("CreatePerson: " + s.error_message());
  lotse::cases::v1::OpenCaseRequest open;
  open.set_request_id("transparency-bench-case");
  open.mutable_case_record()->set_person(person.name());
  open.mutable_case_record()->set_responsible_actor("bench-1");
  lotse::cases::v1::Case opened;
  for (int i = 0; i < 100; ++i) {
    grpc::ClientContext c;
    Prepare(&c, absl::Seconds(10));
    s = cases->OpenCase(&c, open, &opened);
    if (s.ok()) break;  // the agency may not have reached cases yet
    absl::SleepFor(absl::Milliseconds(300));
  }
  if (!s.ok()) return absl::InternalError("OpenCase: " + s.error_message());
  idv1::GetTransparencyReportRequest request;
  request.set_person(person.name());
  idv1::TransparencyReport report;
  for (int i = 0; i < 100; ++i) {
    grpc::ClientContext c;
    Prepare(&c, absl::Seconds(10));
    s = identity->GetTransparencyReport(&c, request, &report);
    if (s.ok()) break;  // the case's relation travels by event
    absl::SleepFor(absl::Milliseconds(300));
  }
  if (!s.ok()) {
    return absl::InternalError("GetTransparencyReport: " + s.error_message());
  }
  std::printf("{\"mode\":\"setup\",\"person\":\"%s\"}\n",
              person.name().c_str());
  return absl::OkStatus();
}

absl::Status LoadAudit() {
  auto db = lotse::storage::OpenDatabase(absl::GetFlag(FLAGS_database), 1);
  if (!db.ok()) return db.status();
  const int64_t rows = absl::GetFlag(FLAGS_rows);
  const int64_t person_rows = absl::GetFlag(FLAGS_person_rows);
  const std::string person = absl::GetFlag(FLAGS_person);
  const std::string service = absl::GetFlag(FLAGS_service);
  if (person.empty() || person_rows > rows) {
    return absl::InvalidArgumentError("--person and --person_rows <= --rows");
  }
  // Every `every`-th record is about the person.
  const int64_t every = person_rows > 0 ? rows / person_rows : rows + 1;
  const char* agencies[] = {"jobcenter-koeln", "vhs-koeln", "abh-koeln",
                            "bamf-nuernberg", "kim-koeln"};
  const char* domains[] = {"JOBCENTER", "KURSTRAEGER", "AUSLAENDERBEHOERDE",
                           "BAMF", "KOMMUNE"};
  absl::BitGen gen;
  // History: the records span the last 30 days, oldest first.
  const absl::Time start = absl::Now() - absl::Hours(24 * 30);
  const absl::Duration step = absl::Hours(24 * 30) / std::max<int64_t>(rows, 1);
  const absl::Time begin = absl::Now();
  constexpr int64_t kBatch = 5000;
  int64_t about_person = 0;
  for (int64_t done = 0; done < rows;) {
    const int64_t batch = std::min(kBatch, rows - done);
    absl::Status s = lotse::storage::RunInTransaction(
        **db, [&](lotse::storage::Transaction& tx) -> absl::Status {
          for (int64_t i = done; i < done + batch; ++i) {
            lotse::audit::AuditRecord r;
            r.time = start + step * i;
            const int a = static_cast<int>(i % 5);
            r.agency_id = agencies[a];
            r.legal_domain = domains[a];
            r.actor = absl::StrCat("cw-", i % 97);
            r.purpose = "case-management";
            r.operation =
                absl::StrCat("lotse.", service, ".v1.Service/GetRecord");
            const bool mine =
                person_rows > 0 && i % every == 0 && i / every < person_rows;
            r.resource = mine ? absl::StrCat(person, "/records")
                              : absl::StrFormat("persons/bulk%016x/records",
                                                absl::Uniform<uint64_t>(gen));
            r.data_categories = {"CORE_IDENTITY"};
            r.outcome = lotse::audit::Outcome::kAllowed;
            if (absl::Status a = lotse::audit::AppendAudit(tx, r); !a.ok()) {
              return a;
            }
          }
          return absl::OkStatus();
        });
    if (!s.ok()) return s;
    for (int64_t i = done; i < done + batch; ++i) {
      if (person_rows > 0 && i % every == 0 && i / every < person_rows) {
        ++about_person;
      }
    }
    done += batch;
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - begin);
  std::printf(
      "{\"mode\":\"load_audit\",\"service\":\"%s\",\"rows\":%lld,"
      "\"person_rows\":%lld,\"seconds\":%.1f}\n",
      service.c_str(), static_cast<long long>(rows),
      static_cast<long long>(about_person), seconds);
  return absl::OkStatus();
}

absl::Status Report() {
  auto stub = idv1::IdentityService::NewStub(
      ChannelAs(absl::GetFlag(FLAGS_identity), "kim-koeln"));
  idv1::GetTransparencyReportRequest request;
  request.set_person(absl::GetFlag(FLAGS_person));
  request.set_service_timeout_ms(absl::GetFlag(FLAGS_service_timeout_ms));
  // One call first, to see what the report holds.
  {
    grpc::ClientContext c;
    Prepare(&c, absl::Seconds(30));
    idv1::TransparencyReport report;
    grpc::Status s = stub->GetTransparencyReport(&c, request, &report);
    if (!s.ok()) return absl::InternalError(s.error_message());
    std::printf(
        "{\"mode\":\"report_size\",\"entries\":%d,\"missing_services\":%d}\n",
        report.entries_size(), report.missing_services_size());
  }
  struct Call {
    grpc::ClientContext context;
    idv1::TransparencyReport response;
  };
  lotse::bench::LoadOptions options;
  options.concurrency = absl::GetFlag(FLAGS_concurrency);
  options.duration = absl::Seconds(absl::GetFlag(FLAGS_duration_s));
  options.warmup = absl::Seconds(absl::GetFlag(FLAGS_warmup_s));
  absl::StatusOr<lotse::bench::LoadResult> result =
      lotse::bench::RunClosedLoop(options, [&](CallDone done) {
        auto* call = new Call();
        Prepare(&call->context, absl::Seconds(30));
        stub->async()->GetTransparencyReport(
            &call->context, &request, &call->response,
            [call, done = std::move(done)](grpc::Status s) {
              if (s.ok() && call->response.missing_services_size() > 0) {
                s = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                 "a service was missing from the report");
              }
              delete call;
              done(s);
            });
      });
  if (!result.ok()) return result.status();
  std::printf("report %s\n", lotse::bench::FormatHuman(*result).c_str());
  if (!result->first_error.empty()) {
    std::printf("first error: %s\n", result->first_error.c_str());
  }
  std::printf("{\"mode\":\"report\",%s,\"tls\":true}\n",
              lotse::bench::FormatJsonFields(*result).c_str());
  std::fflush(stdout);
  if (result->errors > 0 || result->calls == 0) {
    return absl::InternalError("run saw errors or no calls");
  }
  return absl::OkStatus();
}

absl::Status Verify() {
  auto stub = lotse::audit::v1::AuditService::NewStub(
      ChannelAs(absl::GetFlag(FLAGS_target), "svc-identity"));
  lotse::audit::v1::VerifyAuditChainRequest request;
  request.set_chain(lotse::audit::v1::AUDIT_CHAIN_CHANGES);
  lotse::audit::v1::VerifyAuditChainResponse response;
  grpc::ClientContext c;
  Prepare(&c, absl::Minutes(30));
  const absl::Time begin = absl::Now();
  grpc::Status s = stub->VerifyAuditChain(&c, request, &response);
  const double seconds = absl::ToDoubleSeconds(absl::Now() - begin);
  if (!s.ok()) return absl::InternalError(s.error_message());
  int64_t rows = 0;
  bool intact = true;
  for (const auto& chain : response.chains()) {
    rows += chain.records_checked();
    intact = intact && chain.intact();
  }
  std::printf(
      "{\"mode\":\"verify\",\"service\":\"%s\",\"rows\":%lld,\"intact\":%s,"
      "\"seconds\":%.2f,\"rows_per_s\":%.0f}\n",
      response.service().c_str(), static_cast<long long>(rows),
      intact ? "true" : "false", seconds, rows / std::max(seconds, 1e-9));
  return intact ? absl::OkStatus() : absl::DataLossError("chain not intact");
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "transparency report benchmarks: --mode=setup|load_audit|report|verify");
  absl::ParseCommandLine(argc, argv);
  const std::string mode = absl::GetFlag(FLAGS_mode);
  absl::Status s;
  if (mode == "setup") {
    s = Setup();
  } else if (mode == "load_audit") {
    s = LoadAudit();
  } else if (mode == "report") {
    s = Report();
  } else if (mode == "verify") {
    s = Verify();
  } else {
    s = absl::InvalidArgumentError("unknown --mode");
  }
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
