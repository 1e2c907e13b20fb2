#include "common/server/flags.h"

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

ABSL_FLAG(std::string, listen, "",
          "host:port to serve gRPC on; empty means the service's default");
ABSL_FLAG(std::string, metrics_listen, "",
          "host:port for the Prometheus /metrics endpoint; empty disables it");
ABSL_FLAG(std::string, health_listen, "",
          "host:port for a PLAINTEXT port that serves only grpc.health.v1 "
          "(for probes that cannot present a client certificate, such as "
          "Kubernetes grpc probes); empty disables it");
ABSL_FLAG(absl::Duration, max_connection_age, absl::InfiniteDuration(),
          "ask clients to reconnect after a connection has lived this long "
          "(calls in flight get one more minute), so load spreads over new "
          "replicas; inf keeps connections");
ABSL_FLAG(std::string, tls_dir, "",
          "directory made by tools/dev-pki.sh; sets --tls_cert/--tls_key/"
          "--tls_ca to its servers/<service>.crt/.key and ca.crt");
ABSL_FLAG(std::string, tls_cert, "", "server certificate chain (PEM)");
ABSL_FLAG(std::string, tls_key, "", "server private key (PEM)");
ABSL_FLAG(std::string, tls_ca, "",
          "CA bundle (PEM) that client certificates must chain to");
ABSL_FLAG(std::string, tls_crl, "",
          "certificate revocation list (PEM or DER) signed by the --tls_ca "
          "CA, or a directory of such files: client certificates it lists "
          "are refused at the handshake. Re-read every "
          "--tls_reload_interval; one that cannot be used stops start-up, "
          "later the last good one stays in force. Empty: no revocation "
          "check");
ABSL_FLAG(absl::Duration, tls_reload_interval, absl::Minutes(1),
          "how often --tls_cert, --tls_key, --tls_ca and --tls_crl are "
          "re-read (whole seconds, at least 1s); changes apply to new "
          "connections");
ABSL_FLAG(bool, insecure_dev, false,
          "serve plaintext without client certificates; the caller's agency "
          "is then taken from x-lotse-dev-* metadata. Development only");
ABSL_FLAG(bool, dev_clock, false,
          "honour x-lotse-dev-time metadata: a call's business records are "
          "stored at the (past) time it names, so a demo seed can write "
          "history. Development only");
ABSL_FLAG(std::string, database, "",
          "sqlite:/path/file.db or postgresql://... ; empty means "
          "sqlite:<service>.db in the working directory");
ABSL_FLAG(std::string, read_audit_database, "",
          "where the read audit chain (calls that changed nothing) is "
          "kept: sqlite:/path/file.db, postgresql://... or \"same\" (the "
          "service database, own table); empty means X.reads.db beside a "
          "SQLite file X.db, else the service database");
ABSL_FLAG(int32_t, database_connections, 17,
          "connections in the database pool; with fewer than "
          "--worker_threads + 1 (the group committer holds one), handlers "
          "wait for a connection");
ABSL_FLAG(bool, group_commit, true,
          "commit the write transactions of concurrent calls together (one "
          "WAL sync or PostgreSQL commit flush per batch); false runs one "
          "transaction per call");
ABSL_FLAG(int32_t, group_commit_writers, 1,
          "threads that commit batches; each holds a database connection "
          "while it commits. More than one only helps PostgreSQL, and only "
          "for writes that take few locks");
ABSL_FLAG(int32_t, max_message_bytes, 4 * 1024 * 1024,
          "largest request or response message accepted or sent");
ABSL_FLAG(int32_t, worker_threads, 16,
          "threads that run handlers which block on storage");
ABSL_FLAG(absl::Duration, drain_grace, absl::Seconds(2),
          "after SIGTERM, how long health reports NOT_SERVING before the "
          "server stops accepting calls, so load balancers move away first");
ABSL_FLAG(absl::Duration, shutdown_deadline, absl::Seconds(10),
          "after the grace period, how long in-flight calls may finish "
          "before they are cancelled");
ABSL_FLAG(bool, log_calls, true,
          "write one JSON line per call to stderr (no personal data)");
ABSL_FLAG(std::string, event_destinations, "",
          "where this service's events go: name=host:port,... (e.g. "
          "cases=cases:50052,placement=placement:50054); each destination "
          "receives the whole outbox and applies what it consumes");
ABSL_FLAG(std::string, client_cert, "",
          "client certificate (PEM) for calls to other services; empty "
          "means <tls_dir>/clients/svc-<service>.crt");
ABSL_FLAG(std::string, client_key, "",
          "private key (PEM) of --client_cert; empty means "
          "<tls_dir>/clients/svc-<service>.key");
ABSL_FLAG(absl::Duration, event_retention, absl::Hours(24 * 7),
          "delivered outbox events older than this are deleted");
ABSL_FLAG(absl::Duration, request_id_retention, absl::Hours(48),
          "request ids older than this are forgotten (the contracts "
          "promise at least 24 hours)");
ABSL_FLAG(absl::Duration, audit_checkpoint_interval, absl::Seconds(60),
          "how often this service signs the heads of its audit chains that "
          "moved and sends them to the other services (the "
          "--event_destinations) to witness; also once at shutdown");
ABSL_FLAG(absl::Duration, janitor_interval, absl::Minutes(10),
          "how often the retention clean-up runs");
ABSL_FLAG(std::string, retention_rules, "",
          "retention rules file (config/retention.conf): how long each kind "
          "of record is kept; a file that does not parse stops start-up. "
          "Empty: no rules, nothing is purged");
ABSL_FLAG(absl::Duration, purge_interval, absl::Hours(1),
          "how often the purge job erases what the retention rules say is "
          "due (the first run one interval after start-up)");
ABSL_FLAG(int32_t, purge_batch, 200,
          "records the purge job erases per transaction; smaller batches "
          "hold the write lock for less time");
ABSL_FLAG(int32_t, agency_max_in_flight, 256,
          "calls one agency may have in flight in this process at once (0: "
          "no limit); more are refused with RESOURCE_EXHAUSTED, reason "
          "AGENCY_TOO_MANY_IN_FLIGHT. Sized for one agency system of a "
          "large municipality (a few hundred caseworkers keep a few dozen "
          "calls in flight at peak); well above --worker_threads, so it only "
          "stops one agency from filling the whole queue. Callers with a "
          "Lotse service certificate are not limited");
ABSL_FLAG(double, agency_rate, 1000,
          "calls per second one agency may send to this process on average "
          "(token bucket; 0: no limit); more are refused with "
          "RESOURCE_EXHAUSTED, reason AGENCY_RATE_LIMITED, and a retry "
          "delay. Sized for the same large municipality, which peaks below "
          "100 calls per second: ten times that leaves room for batch "
          "imports. One replica on two cores serves a few thousand cheap "
          "reads or a few hundred writes per second; where that is less, "
          "lower it (README, Limits)");
ABSL_FLAG(int32_t, agency_burst, 2000,
          "calls one agency may send at once after a quiet spell, above "
          "--agency_rate (the bucket's size; at least 1 when a rate is set)");
ABSL_FLAG(std::string, agency_limits, "",
          "per-agency exceptions to the three flags above: "
          "agency:max_in_flight:rate[:burst],... (e.g. "
          "\"import-bot:8:50,jobcenter-koeln:512:3000:6000\"; 0 means no "
          "limit, an omitted burst is --agency_burst)");
ABSL_FLAG(int32_t, agency_limit_table_size, 10000,
          "agencies whose limits are tracked at once (a few hundred are "
          "registered); beyond it, idle ones are forgotten and, if none is "
          "idle, newcomers share one bucket under the default limits");

namespace lotse::server {

absl::Status ApplyEnvironmentOverrides() {
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    std::string var = absl::StrCat("LOTSE_", absl::AsciiStrToUpper(name));
    const char* value = std::getenv(var.c_str());
    if (value == nullptr) continue;
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      return absl::InvalidArgumentError(
          absl::StrCat("environment variable ", var, ": ", error));
    }
  }
  return absl::OkStatus();
}

std::vector<FlagGroup> ServerFlagGroups() {
  return {
      {"Server",
       {"listen", "metrics_listen", "health_listen", "max_connection_age",
        "max_message_bytes", "worker_threads", "drain_grace",
        "shutdown_deadline", "log_calls"}},
      {"TLS",
       {"tls_dir", "tls_cert", "tls_key", "tls_ca", "tls_crl",
        "tls_reload_interval", "insecure_dev", "dev_clock"}},
      {"Storage",
       {"database", "read_audit_database", "database_connections",
        "group_commit", "group_commit_writers", "request_id_retention",
        "janitor_interval"}},
      {"Events",
       {"event_destinations", "client_cert", "client_key", "event_retention",
        "audit_checkpoint_interval"}},
      {"Data lifecycle", {"retention_rules", "purge_interval", "purge_batch"}},
      {"Limits",
       {"agency_max_in_flight", "agency_rate", "agency_burst", "agency_limits",
        "agency_limit_table_size"}},
  };
}

absl::StatusOr<AgencyLimiterOptions> AgencyLimitsFromFlags() {
  AgencyLimiterOptions options;
  options.defaults.max_in_flight = absl::GetFlag(FLAGS_agency_max_in_flight);
  options.defaults.rate = absl::GetFlag(FLAGS_agency_rate);
  options.defaults.burst = absl::GetFlag(FLAGS_agency_burst);
  // One flag at a time, so that the message names the one that is wrong.
  const AgencyLimit& d = options.defaults;
  for (const auto& [part, flag] :
       {std::pair{AgencyLimit{d.max_in_flight, 0, 0}, "--agency_max_in_flight"},
        std::pair{AgencyLimit{0, d.rate, 1}, "--agency_rate"},
        std::pair{AgencyLimit{0, d.rate, d.burst}, "--agency_burst"}}) {
    if (absl::Status s = ValidateAgencyLimit(part, flag); !s.ok()) return s;
  }
  absl::StatusOr<absl::flat_hash_map<std::string, AgencyLimit>> overrides =
      ParseAgencyOverrides(absl::GetFlag(FLAGS_agency_limits),
                           options.defaults);
  if (!overrides.ok()) return overrides.status();
  options.overrides = *std::move(overrides);
  const int32_t table = absl::GetFlag(FLAGS_agency_limit_table_size);
  if (table < 1) {
    return absl::InvalidArgumentError(
        "--agency_limit_table_size must be at least 1");
  }
  options.max_agencies = static_cast<size_t>(table);
  return options;
}

std::vector<char*> ParseFlags(int argc, char** argv, absl::string_view usage,
                              const std::vector<FlagGroup>& groups) {
  HandleHelpFlag(argc, argv, usage, groups);
  if (absl::Status s = ApplyEnvironmentOverrides(); !s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    std::exit(2);
  }
  return absl::ParseCommandLine(argc, argv);
}

}  // namespace lotse::server
