// What a service fuzz target runs a service on, and how it feeds it one
// input.
//
// ServiceHarness builds what the service process builds before it serves
// (common/server/service_main.cc) and what the service tests build
// (tests/support/service_server_fixture.h): a SQLite database — a fresh
// file in a temporary directory, removed at exit — with the service's
// migrations applied, and a ServiceRuntime on it with empty retention rules.
// Writes run a transaction per call (no group committer), so one input is
// one deterministic sequence of transactions on the fuzzer's thread.
//
// RunServiceInput then serves one input (fuzz/support/service_input.h) the
// way the gRPC edge does: a call through UnaryService::CallInProcess with
// the request context the certificate and metadata would give, or an
// event through the checks of EventSinkService and events::ApplyEventOnce
// with the service's inbox handler. The state the inputs leave behind
// (persons, cases, bookings, ...) stays for the next inputs, so the fuzzer
// can reach handlers past their existence checks.
#ifndef LOTSE_FUZZ_SUPPORT_SERVICE_HARNESS_H_
#define LOTSE_FUZZ_SUPPORT_SERVICE_HARNESS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/events/inbox.h"
#include "common/lifecycle/retention.h"
#include "common/server/handler.h"
#include "common/server/service_main.h"
#include "common/storage/database.h"
#include "common/storage/migrations.h"

namespace lotse::fuzz {

class ServiceHarness {
 public:
  // Aborts, saying why on stderr, when the database cannot be created or
  // migrated: a fuzz target cannot run without it.
  ServiceHarness(const std::vector<storage::Migration>& migrations,
                 const std::string& error_domain);
  ~ServiceHarness();

  ServiceHarness(const ServiceHarness&) = delete;
  ServiceHarness& operator=(const ServiceHarness&) = delete;

  server::ServiceRuntime& runtime() { return runtime_; }
  storage::Database& db() { return *db_; }

 private:
  std::string dir_;
  std::unique_ptr<storage::Database> db_;
  std::unique_ptr<server::WorkerPool> pool_;
  lifecycle::RetentionRules retention_;
  server::ServiceRuntime runtime_;
};

// Serves one fuzz input to `service` (events go to `apply` on `db`). Inputs
// too short to choose a call are ignored. Aborts — the fuzzer's finding —
// when the outcome is one no request may cause: INTERNAL or UNKNOWN (an
// input must be refused with a code a client can act on, and internal
// errors mean a broken invariant), or a refusal that the edge cannot map to
// a gRPC status. Crashes and sanitizer reports are findings by themselves.
void RunServiceInput(const server::UnaryService& service, storage::Database& db,
                     const events::ApplyFn& apply, const uint8_t* data,
                     size_t size);

// Registers the dev PKI agencies `ids` (testing::DevAgencies()) with the
// service as identity's AgencyRegistered events would, each applied once
// through the inbox (`apply` on `db`) with a growing update time. Aborts,
// saying why on stderr, when one is refused: the targets' calls need them.
void RegisterDevAgenciesOrAbort(storage::Database& db,
                                const events::ApplyFn& apply,
                                const std::vector<std::string>& ids);

}  // namespace lotse::fuzz

#endif  // LOTSE_FUZZ_SUPPORT_SERVICE_HARNESS_H_
