// The shared main() of every Lotse service: flags (with LOTSE_* environment
// overrides), the service's database with its migrations, the gRPC server
// with TLS, health, reflection and metrics, and the SIGTERM drain.
//
// Start-up order: open the database, apply migrations, build the handlers,
// start serving (health NOT_SERVING), then report SERVING.
//
// Besides the RPCs, the process runs: event delivery from the outbox to the
// destinations named by --event_destinations (one relay each, calling with
// the service's client certificate), the event sink when the service
// consumes events, and a janitor that prunes delivered outbox events older
// than --event_retention and request ids older than --request_id_retention. A
// replica that cannot migrate never opens its port, so it never receives
// traffic. SIGTERM or SIGINT drain the server (see Server::Drain) and the
// process exits 0.
#ifndef LOTSE_COMMON_SERVER_SERVICE_MAIN_H_
#define LOTSE_COMMON_SERVER_SERVICE_MAIN_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/events/delivery.h"
#include "common/events/inbox.h"
#include "common/events/outbox.h"
#include "common/server/agency_limits.h"
#include "common/server/handler.h"
#include "common/server/request_context.h"
#include "common/server/usage.h"
#include "common/storage/database.h"
#include "common/storage/group_commit.h"
#include "common/storage/migrations.h"
#include "grpcpp/impl/codegen/service_type.h"
#include "prometheus/registry.h"

namespace lotse::audit {
class ServiceWitnesses;  // common/audit/witness.h
}  // namespace lotse::audit

namespace lotse::lifecycle {
class RetentionRules;  // common/lifecycle/retention.h
struct PurgeTask;      // common/lifecycle/purge.h
}  // namespace lotse::lifecycle

namespace lotse::server {

// What a service's handlers get from the process.
struct ServiceRuntime {
  storage::Database* database = nullptr;
  HandlerEnv env;
  // The process's Prometheus metrics (served on --metrics_listen); services
  // may register their own in make_services.
  prometheus::Registry* metrics = nullptr;
  // Batches the write transactions of concurrent calls into one commit
  // (storage/group_commit.h). Null in tests that build a runtime by hand;
  // Write() then runs a transaction per call.
  storage::GroupCommitter* committer = nullptr;
  // Where the read audit chain lives (audit/audit_log.h: calls that changed
  // nothing are audited there) and its own group committer. Null: the
  // service database holds it, committed through `committer`.
  storage::Database* read_audit_database = nullptr;
  storage::GroupCommitter* read_audit_committer = nullptr;
  // The process's outbox relays (null when it has no --event_destinations,
  // and in tests that build a runtime by hand).
  events::EventDelivery* delivery = nullptr;
  // What the other services witnessed of this service's audit chains
  // (audit/witness.h), for its AuditService: VerifyAuditChain against the
  // witnessed heads and ListWitnessedCheckpoints. Null in tests that build
  // a runtime by hand.
  audit::ServiceWitnesses* witnesses = nullptr;
  // The retention rules loaded from --retention_rules (never null in a
  // running service: no flag means no rules, nothing purged). Event
  // handlers pass them to lifecycle::ApplyPersonErased.
  const lifecycle::RetentionRules* retention = nullptr;
  // Counts and (rate-limited) logs calls refused before any work because
  // the calling agency was over a limit (agency_limits.h, ObserveRefusals):
  // the per-agency limits use it, and services with limits of their own
  // (the cases watch streams) report theirs to it. Null in tests that
  // build a runtime by hand.
  RefusalHook refusals;
  // Run when the process drains (SIGTERM), after health turned NOT_SERVING
  // and the drain grace passed, before the server stops accepting calls:
  // services end their long-lived streams here (see Server::Drain).
  std::vector<std::function<void()>> on_drain;

  // Runs a short read-write transaction body: through the group committer
  // when there is one, else in a transaction of its own. Same contract as
  // storage::RunInTransaction (the body may run more than once).
  absl::Status Write(
      const std::function<absl::Status(storage::Transaction&)>& body) const;
  // The same for a transaction in the read-audit database: through
  // read_audit_committer when there is one, else a transaction of its own
  // there; both null means Write.
  absl::Status WriteReadAudit(
      const std::function<absl::Status(storage::Transaction&)>& body) const;
};

// The database URL of the read audit chain for a service whose data is at
// `database_url`, given --read_audit_database `flag`: the flag when set;
// "same" and, when the flag is empty, an in-memory SQLite database or
// PostgreSQL (whose buffer cache a commit does not empty) give "" — the
// service database, in its own table; a SQLite file "X.db" gives the file
// "X.reads.db" beside it (other names get ".reads" appended).
std::string ReadAuditDatabaseUrl(absl::string_view database_url,
                                 absl::string_view flag);

// Declared first in a handler whose writes create or end relations that
// identity decides access by (DESIGN.md section 4: a case's owner and
// participants, bookings, entitlements, placements), so that a call to
// identity right after this one returned already sees them. It collects
// the events the handler's writes commit (events::CollectCommittedEvents;
// the write paths carry it to the group committer's thread) and, when the
// handler returns, waits until the "identity" destination has acknowledged
// them: at most kWait, and at most half the time left before the call's
// deadline, so that the answer still reaches the client in time. No wait
// when the call committed no events, when the process has no "identity"
// destination, or while identity is unreachable. The call's answer never
// depends on the wait: its writes are committed, and what identity has not
// received in time it receives later (eventual, as without the wait).
class RelationsReachIdentity {
 public:
  static constexpr absl::Duration kWait = absl::Seconds(2);

  RelationsReachIdentity(const ServiceRuntime& runtime,
                         const RequestContext& rc);
  ~RelationsReachIdentity();
  RelationsReachIdentity(const RelationsReachIdentity&) = delete;
  RelationsReachIdentity& operator=(const RelationsReachIdentity&) = delete;

 private:
  events::EventDelivery* const delivery_;
  const absl::Time call_deadline_;
  events::CommittedEvents committed_;
  events::CollectCommittedEvents collect_;
};

struct ServiceDefinition {
  std::string name;            // "identity": logs, metrics, TLS file names
  std::string default_listen;  // e.g. "127.0.0.1:50051"
  // What the process is, in a sentence or two, for --help.
  std::string description;
  // The service's own flags as --help groups them, after the common ones
  // (flags.h, ServerFlagGroups); a group titled like a common one ("Storage")
  // adds to it.
  std::vector<FlagGroup> flag_groups;
  std::vector<std::string> health_service_names;
  std::vector<storage::Migration> migrations;
  // Applies the events other services deliver to this one (DeliverEvent of
  // lotse.events.v1.EventSinkService, served when this is set; only callers
  // with a Lotse service certificate may deliver). Each event is applied
  // once (events/inbox.h): the migrations must include InboxMigrations().
  // Called after make_services, so it may use what that built.
  std::function<events::ApplyFn(ServiceRuntime&)> make_event_handler;
  // The service's purge tasks (lifecycle/purge.h), one per resource kind it
  // owns; the process's purge job runs them every --purge_interval against
  // the --retention_rules. Called after make_services. Unset: the job only
  // prunes the audit chains.
  std::function<std::vector<lifecycle::PurgeTask>(ServiceRuntime&)>
      make_purge_tasks;
  // Run by the restore and mark-restored commands (backup_command.h) in
  // the transaction that marks a restored database, after its migrations:
  // what the service must change so that the restored history is never
  // confused with the history it replaced (cases: the watch cursors). May
  // be empty.
  std::function<absl::Status(storage::Transaction&)> on_restore;
  // Called once the database is migrated; the returned services are
  // registered with the server and live until the process exits.
  std::function<absl::StatusOr<std::vector<std::unique_ptr<grpc::Service>>>(
      ServiceRuntime&)>
      make_services;
};

// The --help text of the service: usage line, description, defaults of
// --listen and --database, the environment rule, then the flags by group.
std::string ServiceUsage(const ServiceDefinition& definition);

// Runs the service until SIGTERM/SIGINT. Returns the process exit code.
// --help prints the usage and the flags (see usage.h) and exits 0. With a
// command argument (backup, restore, mark-restored) it runs that command
// on the service's databases instead of serving (backup_command.h).
int RunService(int argc, char** argv, const ServiceDefinition& definition);

}  // namespace lotse::server

#endif  // LOTSE_COMMON_SERVER_SERVICE_MAIN_H_
