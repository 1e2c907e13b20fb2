// lotse_identity: the identity service process. See
// common/server/service_main.h for flags, start-up and shutdown.
//
// --bootstrap_admin_agency (env LOTSE_BOOTSTRAP_ADMIN_AGENCY, default
// "lotse-admin"): the deployment's first administering agency. At start-up,
// before serving, it is registered (if no agency with that id exists) with
// legal domain ADMINISTRATION and the id as its certificate identity, so
// the client certificate with that CN (dev PKI: clients/lotse-admin) can
// register every other agency. Empty: no bootstrap.
//
// --access_rules (env LOTSE_ACCESS_RULES, default
// "config/access-rules.conf", relative to the working directory): the
// deployment's legal-basis rules (DESIGN.md section 4). Loaded once at
// start-up; a missing or malformed file stops the start rather than
// serving person data without rules.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "common/audit/audit_service.h"
#include "common/events/delivery.h"
#include "common/server/flags.h"
#include "common/server/service_main.h"
#include "services/identity/domain/access_policy.h"
#include "services/identity/service/identity_service.h"
#include "services/identity/service/relation_events.h"
#include "services/identity/store/migrations.h"
#include "services/identity/store/purge_tasks.h"

ABSL_FLAG(std::string, bootstrap_admin_agency, "lotse-admin",
          "Id (and certificate identity) of the administering agency "
          "registered at start-up if absent; empty for none.");
ABSL_FLAG(std::string, access_rules, "config/access-rules.conf",
          "Path of the access rules file (who may read which category of "
          "a person's data).");

ABSL_FLAG(int, match_form_cache_mb, 256,
          "Memory for the match forms of duplicate candidates, in MiB (about "
          "250 bytes a person: 256 holds a million persons), filled at "
          "start-up; 0 reads every form from the database.");

ABSL_FLAG(bool, key_index, true,
          "Keep the blocking keys of all persons in memory (about 100 bytes "
          "a person, built from the database at start-up) and find "
          "duplicate and search candidates there; false looks them up in "
          "the database.");

int main(int argc, char** argv) {
  lotse::server::ServiceDefinition definition;
  definition.name = "identity";
  definition.default_listen = "127.0.0.1:50051";
  definition.description =
      "The identity service of Lotse: persons and their agency ids, residence "
      "status and work permission, consents, the agency registry, and the "
      "access decisions of every service.";
  definition.flag_groups = {
      {"Identity",
       {"bootstrap_admin_agency", "access_rules", "match_form_cache_mb",
        "key_index", "audit_peers"}}};
  definition.health_service_names = {
      lotse::identity::v1::IdentityService::service_full_name()};
  definition.migrations = lotse::identity::IdentityMigrations();
  definition.make_services = [](lotse::server::ServiceRuntime& runtime)
      -> absl::StatusOr<std::vector<std::unique_ptr<grpc::Service>>> {
    const std::string admin = absl::GetFlag(FLAGS_bootstrap_admin_agency);
    if (!admin.empty()) {
      absl::Status bootstrapped =
          lotse::identity::BootstrapAdminAgency(*runtime.database, admin);
      if (!bootstrapped.ok()) return bootstrapped;
    }
    absl::StatusOr<lotse::identity::AccessPolicy> policy =
        lotse::identity::AccessPolicy::LoadFile(
            absl::GetFlag(FLAGS_access_rules));
    if (!policy.ok()) return policy.status();
    auto identity =
        std::make_unique<lotse::identity::IdentityServiceImpl>(runtime);
    // One policy for the person RPCs and for residence/consents/CheckAccess.
    auto rules = std::make_shared<const lotse::identity::AccessPolicy>(
        *std::move(policy));
    const int cache_mb = absl::GetFlag(FLAGS_match_form_cache_mb);
    if (cache_mb < 0) {
      return absl::InvalidArgumentError("--match_form_cache_mb must be >= 0");
    }
    absl::Status enabled =
        identity->EnablePersons(rules, static_cast<size_t>(cache_mb) << 20,
                                absl::GetFlag(FLAGS_key_index));
    if (!enabled.ok()) return enabled;
    enabled = identity->EnableAccess(rules);
    if (!enabled.ok()) return enabled;
    absl::StatusOr<std::vector<lotse::identity::AuditPeer>> peers =
        lotse::identity::AuditPeersFromFlags(*runtime.database,
                                             runtime.read_audit_database);
    if (!peers.ok()) return peers.status();
    enabled = identity->EnableTransparency(*std::move(peers));
    if (!enabled.ok()) return enabled;
    // Every service identity sends events to reports its share of an
    // erasure back.
    absl::StatusOr<std::vector<lotse::events::Destination>> destinations =
        lotse::events::ParseDestinations(
            absl::GetFlag(FLAGS_event_destinations));
    if (!destinations.ok()) return destinations.status();
    std::vector<std::string> reporting;
    for (const lotse::events::Destination& d : *destinations) {
      reporting.push_back(d.name);
    }
    identity->EnableLifecycle(std::move(reporting), runtime.retention);
    std::vector<std::unique_ptr<grpc::Service>> services;
    // Identity knows its merges from its own persons table.
    services.push_back(lotse::audit::MakeAuditService(
        runtime, "identity", identity->call_env(),
        lotse::audit::MergedIdsFromTable("identity_persons", "id",
                                         "merged_into")));
    services.push_back(std::move(identity));
    return services;
  };
  // Relations to persons that cases, courses and placement establish.
  definition.make_event_handler = [](lotse::server::ServiceRuntime&) {
    return lotse::events::ApplyFn(lotse::identity::ApplyRelationEvent);
  };
  // Revisions, residence statuses and consents, as the retention rules say.
  definition.make_purge_tasks = [](lotse::server::ServiceRuntime& runtime) {
    return lotse::identity::IdentityPurgeTasks(runtime.retention);
  };
  return lotse::server::RunService(argc, argv, definition);
}
