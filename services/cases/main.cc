// lotse_cases: the cases service process. See common/server/service_main.h
// for flags, start-up and shutdown.
//
// Identity is asked (persons, access, standing) through the client the
// --identity_* flags describe (common/clients/identity_client_flags.h),
// with the svc-cases certificate. When it cannot be built every such check
// fails closed: OpenCase is UNAVAILABLE and case views withhold every
// category but case status.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/time/clock.h"
#include "common/audit/audit_service.h"
#include "common/clients/identity_client.h"
#include "common/clients/identity_client_flags.h"
#include "common/lifecycle/purge.h"
#include "common/server/flags.h"
#include "common/server/server.h"
#include "common/server/service_main.h"
#include "services/cases/service/cases_service.h"
#include "services/cases/service/identity_access_checker.h"
#include "services/cases/store/case_store.h"
#include "services/cases/store/lifecycle_store.h"
#include "services/cases/store/migrations.h"

ABSL_FLAG(int32_t, waiting_time_suppression_threshold, 5,
          "waiting-time statistics: groups with fewer referrals are "
          "suppressed");
ABSL_FLAG(int32_t, watch_streams_per_agency, 100,
          "WatchCaseEvents streams one agency may have open at once (0: no "
          "cap); one more is refused with RESOURCE_EXHAUSTED, reason "
          "TOO_MANY_WATCH_STREAMS. Sized for a municipality's system that "
          "watches with one stream per caseworker session: a few dozen");
ABSL_FLAG(int32_t, watch_streams_total, 1000,
          "WatchCaseEvents streams the process serves at once (0: no cap); "
          "each buffers up to 256 events, so this bounds their memory");

namespace {

// Without an identity target (--identity_target empty) cases still serves,
// refusing what needs an access check; a flag with a wrong value stops
// start-up.
absl::StatusOr<std::unique_ptr<lotse::cases::AccessChecker>> MakeAccessChecker(
    prometheus::Registry* metrics) {
  absl::StatusOr<std::unique_ptr<lotse::clients::GrpcIdentityClient>> client =
      lotse::clients::IdentityClientFromFlags("cases", metrics);
  if (absl::IsFailedPrecondition(client.status())) {
    return std::make_unique<lotse::cases::UnavailableAccessChecker>();
  }
  if (!client.ok()) return client.status();
  return std::make_unique<lotse::cases::IdentityAccessChecker>(
      *std::move(client));
}

}  // namespace

int main(int argc, char** argv) {
  // Lives as long as the process; built after flags are parsed.
  static std::unique_ptr<lotse::cases::AccessChecker> access;
  lotse::server::ServiceDefinition definition;
  definition.name = "cases";
  definition.default_listen = "127.0.0.1:50052";
  definition.description =
      "The cases service of Lotse: cases, integration plans, service-chain "
      "steps and referrals, private notes, the shared case view and its event "
      "stream.";
  definition.flag_groups = {
      lotse::clients::IdentityClientFlagGroup(),
      {"Cases",
       {"waiting_time_suppression_threshold", "watch_streams_per_agency",
        "watch_streams_total"}}};
  definition.health_service_names = {
      lotse::cases::v1::CasesService::service_full_name()};
  definition.migrations = lotse::cases::CasesMigrations();
  // Built by make_services, used by the event handler made after it.
  static lotse::cases::CasesServiceImpl* service = nullptr;
  definition.make_services = [](lotse::server::ServiceRuntime& runtime)
      -> absl::StatusOr<std::vector<std::unique_ptr<grpc::Service>>> {
    const int32_t per_agency = absl::GetFlag(FLAGS_watch_streams_per_agency);
    const int32_t total = absl::GetFlag(FLAGS_watch_streams_total);
    if (per_agency < 0 || total < 0) {
      return absl::InvalidArgumentError(
          "--watch_streams_per_agency and --watch_streams_total must be 0 "
          "(no cap) or more");
    }
    absl::StatusOr<std::unique_ptr<lotse::cases::AccessChecker>> checker =
        MakeAccessChecker(runtime.metrics);
    if (!checker.ok()) return checker.status();
    access = *std::move(checker);
    std::vector<std::unique_ptr<grpc::Service>> services;
    lotse::cases::CasesOptions options;
    options.suppression_threshold =
        absl::GetFlag(FLAGS_waiting_time_suppression_threshold);
    options.watch.max_streams_per_agency = per_agency;
    options.watch.max_streams_total = total;
    options.watch.on_refused = runtime.refusals;
    auto cases = std::make_unique<lotse::cases::CasesServiceImpl>(
        runtime, access.get(), options);
    service = cases.get();
    services.push_back(lotse::audit::MakeAuditService(
        runtime, "cases", service->call_env(),
        lotse::audit::MergedIdsFromTable("person_merges", "merged", "survivor",
                                         "persons/")));
    // Watch streams end with SERVER_DRAINING and a resume cursor when the
    // process drains, not CANCELLED at the shutdown deadline.
    runtime.on_drain.push_back([] { service->DrainWatchers(); });
    services.push_back(std::move(cases));
    return services;
  };
  // Courses', placement's and identity's events move steps and keep the
  // agency registry; the applier wakes the watchers after each commit.
  definition.make_event_handler = [](lotse::server::ServiceRuntime&) {
    return service->EventApplier();
  };
  // Closed cases and their notes leave after their retention periods
  // (--retention_rules, kinds "case" and "note").
  definition.make_purge_tasks = [](lotse::server::ServiceRuntime&) {
    return lotse::cases::CasePurgeTasks();
  };
  // A restored database numbers new case events after every cursor issued
  // before the restore, so no client's cursor skips them.
  definition.on_restore = [](lotse::storage::Transaction& tx) {
    return lotse::cases::FenceRestoredCaseEvents(tx, absl::Now());
  };
  return lotse::server::RunService(argc, argv, definition);
}
