// Configuration of a Lotse server process: Abseil flags, each of which can
// also be set from the environment as LOTSE_<FLAG_NAME_IN_UPPER_CASE>
// (e.g. --metrics_listen ⇐ LOTSE_METRICS_LISTEN). A flag on the command line
// wins over the environment, which wins over the default — the order
// Kubernetes manifests (env) and operators at a shell (flags) expect.
#ifndef LOTSE_COMMON_SERVER_FLAGS_H_
#define LOTSE_COMMON_SERVER_FLAGS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/server/agency_limits.h"
#include "common/server/usage.h"

ABSL_DECLARE_FLAG(std::string, listen);
ABSL_DECLARE_FLAG(std::string, metrics_listen);
ABSL_DECLARE_FLAG(std::string, health_listen);
ABSL_DECLARE_FLAG(absl::Duration, max_connection_age);
ABSL_DECLARE_FLAG(std::string, tls_dir);
ABSL_DECLARE_FLAG(std::string, tls_cert);
ABSL_DECLARE_FLAG(std::string, tls_key);
ABSL_DECLARE_FLAG(std::string, tls_ca);
ABSL_DECLARE_FLAG(std::string, tls_crl);
ABSL_DECLARE_FLAG(absl::Duration, tls_reload_interval);
ABSL_DECLARE_FLAG(bool, insecure_dev);
ABSL_DECLARE_FLAG(bool, dev_clock);
ABSL_DECLARE_FLAG(std::string, database);
ABSL_DECLARE_FLAG(std::string, read_audit_database);
ABSL_DECLARE_FLAG(int32_t, database_connections);
ABSL_DECLARE_FLAG(bool, group_commit);
ABSL_DECLARE_FLAG(int32_t, group_commit_writers);
ABSL_DECLARE_FLAG(int32_t, max_message_bytes);
ABSL_DECLARE_FLAG(int32_t, worker_threads);
ABSL_DECLARE_FLAG(absl::Duration, drain_grace);
ABSL_DECLARE_FLAG(absl::Duration, shutdown_deadline);
ABSL_DECLARE_FLAG(bool, log_calls);
ABSL_DECLARE_FLAG(std::string, event_destinations);
ABSL_DECLARE_FLAG(std::string, client_cert);
ABSL_DECLARE_FLAG(std::string, client_key);
ABSL_DECLARE_FLAG(absl::Duration, event_retention);
ABSL_DECLARE_FLAG(absl::Duration, request_id_retention);
ABSL_DECLARE_FLAG(absl::Duration, janitor_interval);
ABSL_DECLARE_FLAG(absl::Duration, audit_checkpoint_interval);
ABSL_DECLARE_FLAG(std::string, retention_rules);
ABSL_DECLARE_FLAG(absl::Duration, purge_interval);
ABSL_DECLARE_FLAG(int32_t, purge_batch);
ABSL_DECLARE_FLAG(int32_t, agency_max_in_flight);
ABSL_DECLARE_FLAG(double, agency_rate);
ABSL_DECLARE_FLAG(int32_t, agency_burst);
ABSL_DECLARE_FLAG(std::string, agency_limits);
ABSL_DECLARE_FLAG(int32_t, agency_limit_table_size);

namespace lotse::server {

// Sets every registered flag that has a LOTSE_<NAME> environment variable
// from it. Call before absl::ParseCommandLine so the command line wins.
// Returns INVALID_ARGUMENT naming the variable when a value does not parse.
absl::Status ApplyEnvironmentOverrides();

// The flags above in the groups --help shows them in: Server, TLS,
// Storage, Events, Data lifecycle, Limits.
std::vector<FlagGroup> ServerFlagGroups();

// The per-agency limits the Limits flags describe (agency_limits.h), without
// clock or refusal hook. INVALID_ARGUMENT naming the flag when a value is
// invalid: a negative limit, a rate set with a burst below 1, a malformed
// --agency_limits entry, a table size below 1.
absl::StatusOr<AgencyLimiterOptions> AgencyLimitsFromFlags();

// --help (see usage.h: `usage`, then `groups`), else environment override,
// then command line. Exits with a message on a bad value (as
// absl::ParseCommandLine does for bad flags). Returns positional arguments.
std::vector<char*> ParseFlags(int argc, char** argv, absl::string_view usage,
                              const std::vector<FlagGroup>& groups);

}  // namespace lotse::server

#endif  // LOTSE_COMMON_SERVER_FLAGS_H_
