// One kit for the service tests of identity, cases, courses and placement:
// a service running in-process behind a real mTLS server, on the test's
// backend (SQLite or PostgreSQL), set up the way the service process sets
// itself up.
//
// ServiceServerTest is a BothBackendsTest. Its SetUp gives each test a fresh
// database in db() and the dev PKI (tools/dev-pki.sh) in pki_. A fixture
// derived from it then, in its own SetUp:
//   1. calls StartRuntime, which applies the service's migrations and builds
//      runtime_: a WorkerPool, the error domain, and a GroupCommitter that
//      every write goes through, as in the process (ServiceRuntimeOptions may
//      turn it off: runtime_.Write then runs a transaction per call);
//   2. builds its service on runtime_ and feeds it what it must know before
//      the first call (e.g. RegisterDevAgencies);
//   3. calls Serve, which starts server_ on 127.0.0.1 (a free port) with
//      the service's TLS files from the dev PKI, no call logs, no drain
//      grace and a 500 ms shutdown deadline, and reports SERVING.
// Tests then call the service through Stub<Service>(client), as one of the
// dev PKI's client certificates.
//
// TearDown drains and drops the server (StopServing), then the committer
// and the pool (StopRuntime). A service built on runtime_ must be dropped in
// between, so a fixture that owns one overrides TearDown as:
//   StopServing(); service_.reset(); ServiceServerTest::TearDown();
// The same calls stop and restart a service on the same database in the
// middle of a test.
//
// The fixture also reads back what the service recorded: the events in its
// outbox (Emitted), its audit records (AuditOf) and any count (Count). The
// free functions below say what a refusal carries (Reason, ViolatedFields)
// and build identity's records of the dev PKI's agencies, for services that
// keep a local agency registry fed by identity's Agency* events.
#ifndef LOTSE_TESTS_SUPPORT_SERVICE_SERVER_FIXTURE_H_
#define LOTSE_TESTS_SUPPORT_SERVICE_SERVER_FIXTURE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/audit/audit_log.h"
#include "common/server/handler.h"
#include "common/server/server.h"
#include "common/server/service_main.h"
#include "common/storage/group_commit.h"
#include "common/storage/migrations.h"
#include "grpcpp/channel.h"
#include "grpcpp/impl/service_type.h"
#include "grpcpp/support/channel_arguments.h"
#include "grpcpp/support/status.h"
#include "lotse/events/v1/events.pb.h"
#include "lotse/identity/v1/agency.pb.h"
#include "tests/support/test_clock.h"
#include "tests/support/test_database.h"

namespace lotse::testing {

// The reason (ErrorInfo) of a refusal; empty when it carries none.
std::string Reason(const grpc::Status& status);

// The fields a refusal's BadRequest names, e.g. {"course.capacity"}.
std::set<std::string> ViolatedFields(const grpc::Status& status);

// One of the dev PKI's agencies: the identity its client certificate
// carries, the legal domain it is registered with, and the municipality it
// serves (AGS; empty for the administering agency).
struct DevAgency {
  const char* id;  // "kim-koeln"
  type::v1::LegalDomain legal_domain;
  const char* municipality_code;  // "05315000"
};

// Every agency tools/dev-pki.sh issues a client certificate for, in its
// order.
const std::vector<DevAgency>& DevAgencies();

// identity's record of an agency as its Agency* events carry it: name
// "agencies/{id}", certificate identity `id` (the dev PKI's convention),
// state ACTIVE or SUSPENDED, no update_time.
identity::v1::Agency AgencyRecord(const std::string& id,
                                  type::v1::LegalDomain legal_domain,
                                  const std::string& municipality_code,
                                  bool suspended = false);

// identity's event about `agency`, from source "identity": AgencySuspended
// when the record's state is SUSPENDED, else AgencyRegistered.
lotse::events::v1::Event AgencyEventOf(const identity::v1::Agency& agency,
                                       const std::string& event_id);

// Hands identity's record (AgencyRecord) of each dev PKI agency in `ids`, in
// that order, to `deliver`, which applies it to the service under test as
// identity's AgencyRegistered event would. Stops at the first error and
// returns it; NOT_FOUND for an id that is not in DevAgencies(). Agencies
// not in `ids` stay unknown to the service.
absl::Status RegisterDevAgencies(
    const std::vector<std::string>& ids,
    const std::function<absl::Status(const identity::v1::Agency&)>& deliver);

// How ServiceServerTest::StartRuntime builds the runtime.
struct ServiceRuntimeOptions {
  int workers = 8;
  size_t max_queued = 1024;
  // Writes through a GroupCommitter, as in the process.
  bool group_commit = true;
};

class ServiceServerTest : public BothBackendsTest {
 protected:
  // BothBackendsTest's database, then the dev PKI in pki_.
  void SetUp() override;
  // StopServing(), then StopRuntime().
  void TearDown() override;

  // Applies `migrations` to db() (already applied ones are skipped, so a
  // restart may call this again) and builds runtime_ on db(): errors in
  // `error_domain` ("cases.lotse"), a new pool and, unless
  // options.group_commit is false, a new committer. Fails the test
  // (fatally: check HasFatalFailure() after it) when the migrations fail.
  void StartRuntime(const std::vector<storage::Migration>& migrations,
                    const std::string& error_domain,
                    const ServiceRuntimeOptions& options = {});

  // Starts server_ serving `service` under the name `service_name` (its
  // server certificate in the dev PKI, its logs and metrics) and sets it
  // SERVING. `service` must outlive the server. Fails the test (fatally)
  // when the server does not start (calls through Stub then fail).
  void Serve(const std::string& service_name, grpc::Service* service);

  // Drains and drops server_, if any: in-flight calls end.
  void StopServing();
  // Drops the committer (after its queued writes) and the pool (after its
  // queued work). The server must be stopped and the service dropped.
  void StopRuntime();

  // A channel to server_ with `client`'s certificate, a file under the dev
  // PKI's clients/ (e.g. "lotse-admin", "kim-koeln"). Channels with equal
  // `args` may share one connection; add an argument of your own to get a
  // connection of its own.
  std::shared_ptr<grpc::Channel> Channel(
      const std::string& client,
      const grpc::ChannelArguments& args = grpc::ChannelArguments());

  // A stub of `Service` (e.g. cases::v1::CasesService) over Channel(client).
  template <class Service>
  std::unique_ptr<typename Service::Stub> Stub(
      const std::string& client,
      const grpc::ChannelArguments& args = grpc::ChannelArguments()) {
    return Service::NewStub(Channel(client, args));
  }

  // The payloads of type `Event` in the service's outbox, in the order
  // they were written; expects every event to come from the service Serve
  // started.
  template <class Event>
  std::vector<Event> Emitted() {
    std::vector<Event> out;
    for (const lotse::events::v1::Event& e : Outbox()) {
      Event payload;
      if (e.payload().UnpackTo(&payload)) out.push_back(payload);
    }
    return out;
  }

  // The events in the outbox, in order (see Emitted).
  std::vector<lotse::events::v1::Event> Outbox();

  // The audit records about `resource` and below it (e.g. a person), at
  // most 1000 of each chain (changes and reads), in time order (the change
  // chain's first where times tie).
  std::vector<audit::AuditRecord> AuditOf(const std::string& resource);

  // The one integer `sql` selects, e.g. "SELECT COUNT(*) FROM x"; -1, and
  // a failed expectation, when there is none.
  int64_t Count(const std::string& sql);

  std::string pki_;
  std::string service_name_;  // given to Serve
  std::unique_ptr<server::WorkerPool> pool_;
  std::unique_ptr<storage::GroupCommitter> committer_;
  server::ServiceRuntime runtime_;
  std::unique_ptr<server::Server> server_;
  // For services that take a clock: options.clock = clock_->AsFunction().
  std::shared_ptr<TestClock> clock_ = std::make_shared<TestClock>();
};

}  // namespace lotse::testing

#endif  // LOTSE_TESTS_SUPPORT_SERVICE_SERVER_FIXTURE_H_
