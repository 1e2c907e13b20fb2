#include "tests/support/service_server_fixture.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/errors/status.h"
#include "common/events/outbox.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "lotse/identity/v1/events.pb.h"
#include "tests/support/audit_trail.h"
#include "tests/support/dev_pki.h"

namespace lotse::testing {

std::string Reason(const grpc::Status& status) {
  return ReasonOf(FromGrpcStatus(status)).value_or("");
}

std::set<std::string> ViolatedFields(const grpc::Status& status) {
  std::set<std::string> fields;
  for (const FieldViolation& v : FieldViolationsOf(FromGrpcStatus(status))) {
    fields.insert(v.field);
  }
  return fields;
}

const std::vector<DevAgency>& DevAgencies() {
  // Köln's AGS is 05315000, Bonn's 05314000, Nürnberg's 09564000.
  static const auto* const kAgencies = new std::vector<DevAgency>{
      {"kim-koeln", type::v1::LEGAL_DOMAIN_KOMMUNE, "05315000"},
      {"kim-bonn", type::v1::LEGAL_DOMAIN_KOMMUNE, "05314000"},
      {"abh-koeln", type::v1::LEGAL_DOMAIN_AUSLAENDERBEHOERDE, "05315000"},
      {"bamf-nuernberg", type::v1::LEGAL_DOMAIN_BAMF, "09564000"},
      {"jobcenter-koeln", type::v1::LEGAL_DOMAIN_JOBCENTER, "05315000"},
      {"aa-koeln", type::v1::LEGAL_DOMAIN_ARBEITSAGENTUR, "05315000"},
      {"vhs-koeln", type::v1::LEGAL_DOMAIN_KURSTRAEGER, "05315000"},
      {"ihk-koeln", type::v1::LEGAL_DOMAIN_KAMMER, "05315000"},
      {"caritas-koeln", type::v1::LEGAL_DOMAIN_FREIER_TRAEGER, "05315000"},
      {"jugendamt-koeln", type::v1::LEGAL_DOMAIN_JUGENDAMT, "05315000"},
      {"sozialamt-koeln", type::v1::LEGAL_DOMAIN_SOZIALAMT, "05315000"},
      {"lotse-admin", type::v1::LEGAL_DOMAIN_ADMINISTRATION, ""},
  };
  return *kAgencies;
}

identity::v1::Agency AgencyRecord(const std::string& id,
                                  type::v1::LegalDomain legal_domain,
                                  const std::string& municipality_code,
                                  bool suspended) {
  identity::v1::Agency agency;
  agency.set_name(absl::StrCat("agencies/", id));
  agency.set_legal_domain(legal_domain);
  agency.set_municipality_code(municipality_code);
  agency.set_certificate_identity(id);
  agency.set_state(suspended ? identity::v1::AGENCY_STATE_SUSPENDED
                             : identity::v1::AGENCY_STATE_ACTIVE);
  return agency;
}

lotse::events::v1::Event AgencyEventOf(const identity::v1::Agency& agency,
                                       const std::string& event_id) {
  lotse::events::v1::Event event;
  event.set_event_id(event_id);
  event.set_source("identity");
  if (agency.state() == identity::v1::AGENCY_STATE_SUSPENDED) {
    identity::v1::AgencySuspended payload;
    *payload.mutable_agency() = agency;
    event.mutable_payload()->PackFrom(payload);
  } else {
    identity::v1::AgencyRegistered payload;
    *payload.mutable_agency() = agency;
    event.mutable_payload()->PackFrom(payload);
  }
  return event;
}

absl::Status RegisterDevAgencies(
    const std::vector<std::string>& ids,
    const std::function<absl::Status(const identity::v1::Agency&)>& deliver) {
  for (const std::string& id : ids) {
    const DevAgency* found = nullptr;
    for (const DevAgency& a : DevAgencies()) {
      if (id == a.id) found = &a;
    }
    if (found == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("no agency ", id, " in the dev PKI"));
    }
    absl::Status delivered = deliver(
        AgencyRecord(found->id, found->legal_domain, found->municipality_code));
    if (!delivered.ok()) {
      return absl::Status(delivered.code(),
                          absl::StrCat(id, ": ", delivered.message()));
    }
  }
  return absl::OkStatus();
}

void ServiceServerTest::SetUp() {
  BothBackendsTest::SetUp();
  if (HasFatalFailure()) return;
  pki_ = DevPkiDir();
  ASSERT_FALSE(pki_.empty()) << "dev PKI could not be generated";
}

void ServiceServerTest::TearDown() {
  StopServing();
  StopRuntime();
}

void ServiceServerTest::StartRuntime(
    const std::vector<storage::Migration>& migrations,
    const std::string& error_domain, const ServiceRuntimeOptions& options) {
  absl::Status migrated = storage::ApplyMigrations(db(), migrations);
  ASSERT_TRUE(migrated.ok()) << migrated;
  pool_ =
      std::make_unique<server::WorkerPool>(options.workers, options.max_queued);
  committer_.reset();
  if (options.group_commit) {
    committer_ = std::make_unique<storage::GroupCommitter>(db());
  }
  runtime_.database = &db();
  runtime_.env.pool = pool_.get();
  runtime_.env.error_domain = error_domain;
  runtime_.committer = committer_.get();
}

void ServiceServerTest::Serve(const std::string& service_name,
                              grpc::Service* service) {
  service_name_ = service_name;
  server::ServerOptions options;
  options.service_name = service_name;
  options.listen = "127.0.0.1:0";
  options.log_calls = false;
  options.drain_grace = absl::ZeroDuration();
  options.shutdown_deadline = absl::Milliseconds(500);
  options.tls = server::TlsFilesFromDir(pki_, service_name);
  auto started = server::Server::Start(options, {service});
  ASSERT_TRUE(started.ok()) << started.status();
  server_ = *std::move(started);
  server_->SetServing(true);
}

void ServiceServerTest::StopServing() {
  if (server_) server_->Drain();
  server_.reset();
}

void ServiceServerTest::StopRuntime() {
  runtime_.committer = nullptr;
  runtime_.env.pool = nullptr;
  committer_.reset();
  pool_.reset();
}

std::vector<lotse::events::v1::Event> ServiceServerTest::Outbox() {
  std::vector<lotse::events::v1::Event> out;
  auto tx = db().Begin(storage::TxMode::kReadOnly);
  EXPECT_TRUE(tx.ok()) << tx.status();
  if (!tx.ok()) return out;
  auto rows = (*tx)->Query("SELECT seq FROM event_outbox ORDER BY seq");
  EXPECT_TRUE(rows.ok()) << rows.status();
  if (!rows.ok()) return out;
  for (const storage::Row& r : *rows) {
    // Payloads about one person are sealed with their key; the events of a
    // person erased since can no longer be read and are left out.
    absl::StatusOr<lotse::events::v1::Event> e =
        events::ReadOutboxEvent(**tx, *r.GetInt(0));
    if (!e.ok() && ReasonOf(e.status()) == "PERSON_KEY_SHREDDED") {
      continue;
    }
    EXPECT_TRUE(e.ok()) << e.status();
    if (!e.ok()) continue;
    EXPECT_EQ(e->source(), service_name_);
    out.push_back(*std::move(e));
  }
  return out;
}

std::vector<audit::AuditRecord> ServiceServerTest::AuditOf(
    const std::string& resource) {
  return BothChainsAbout(db(), resource);
}

int64_t ServiceServerTest::Count(const std::string& sql) {
  auto tx = db().Begin(storage::TxMode::kReadOnly);
  EXPECT_TRUE(tx.ok()) << tx.status();
  if (!tx.ok()) return -1;
  auto rows = (*tx)->Query(sql);
  EXPECT_TRUE(rows.ok()) << rows.status();
  if (!rows.ok() || rows->empty()) return -1;
  absl::StatusOr<int64_t> n = rows->front().GetInt(0);
  EXPECT_TRUE(n.ok()) << n.status();
  return n.ok() ? *n : -1;
}

std::shared_ptr<grpc::Channel> ServiceServerTest::Channel(
    const std::string& client, const grpc::ChannelArguments& args) {
  const std::string target =
      absl::StrCat("127.0.0.1:", server_ ? server_->port() : 0);
  auto creds = server::ClientCredentialsFromDir(pki_, client);
  if (!creds.ok()) {
    // Calls through it fail (UNAVAILABLE) instead of the test crashing.
    ADD_FAILURE() << client << ": " << creds.status();
    return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(),
                                     args);
  }
  return grpc::CreateCustomChannel(target, *creds, args);
}

}  // namespace lotse::testing
