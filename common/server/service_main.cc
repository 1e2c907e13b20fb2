#include "common/server/service_main.h"

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <thread>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/api/idempotency.h"
#include "common/api/time.h"
#include "common/audit/audit_log.h"
#include "common/audit/checkpoint.h"
#include "common/audit/checkpoint_exchange.h"
#include "common/audit/witness.h"
#include "common/events/delivery.h"
#include "common/events/outbox.h"
#include "common/events/sink.h"
#include "common/lifecycle/purge.h"
#include "common/lifecycle/retention.h"
#include "common/server/backup_command.h"
#include "common/server/flags.h"
#include "common/server/log.h"
#include "common/server/server.h"
#include "grpcpp/security/credentials.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace lotse::server {
namespace {

int Fail(const std::string& service, absl::string_view what,
         const absl::Status& status) {
  Log(LogLevel::kError, what,
      {{"service", service}, {"error", std::string(status.ToString())}});
  return 1;
}

// Relay options whose failures are logged and whose outcomes are counted
// per destination (lotse_events_delivered_total,
// lotse_event_delivery_failures_total). While a receiver is down every
// pending ordering key fails on each retry, so the log gets at most one
// line per destination every kFailureLogInterval, naming how many failures
// it stands for; the counter shows every attempt.
constexpr absl::Duration kFailureLogInterval = absl::Seconds(10);

// Connections of the read-audit database: its group committer holds one
// while it commits; refused and failed calls append in transactions of
// their own.
constexpr int kReadAuditConnections = 4;

struct FailureLogLimiter {
  struct Entry {
    absl::Time last_logged = absl::InfinitePast();
    int64_t unlogged = 0;
  };
  absl::Mutex mu;
  absl::flat_hash_map<std::string, Entry> by_destination ABSL_GUARDED_BY(mu);
};

events::RelayOptions ObservedRelayOptions(const std::string& service,
                                          prometheus::Registry& registry) {
  auto& delivered = prometheus::BuildCounter()
                        .Name("lotse_events_delivered_total")
                        .Help("Events acknowledged by a destination")
                        .Register(registry);
  auto& failed = prometheus::BuildCounter()
                     .Name("lotse_event_delivery_failures_total")
                     .Help("Event sends that a destination did not acknowledge")
                     .Register(registry);
  auto& leading = prometheus::BuildGauge()
                      .Name("lotse_event_relay_leading")
                      .Help(
                          "1 while this replica's relay to a destination "
                          "holds the lead and sends; 0 while it stands by")
                      .Register(registry);
  events::RelayOptions options;
  options.on_delivered = [&delivered](const std::string& destination) {
    delivered.Add({{"destination", destination}}).Increment();
  };
  options.on_lead_change = [&leading, service](const std::string& destination,
                                               bool lead) {
    leading.Add({{"destination", destination}}).Set(lead ? 1 : 0);
    Log(LogLevel::kInfo,
        lead ? "event relay took the lead" : "event relay gave up the lead",
        {{"service", service}, {"destination", destination}});
  };
  auto limiter = std::make_shared<FailureLogLimiter>();
  options.on_failure = [&failed, service,
                        limiter](const events::DeliveryFailure& failure) {
    failed.Add({{"destination", failure.destination}}).Increment();
    int64_t failures = 0;
    {
      absl::MutexLock lock(&limiter->mu);
      FailureLogLimiter::Entry& entry =
          limiter->by_destination[failure.destination];
      ++entry.unlogged;
      const absl::Time now = absl::Now();
      if (now - entry.last_logged < kFailureLogInterval) return;
      entry.last_logged = now;
      failures = entry.unlogged;
      entry.unlogged = 0;
    }
    Log(LogLevel::kWarning, "event delivery failed",
        {{"service", service},
         {"destination", failure.destination},
         {"failures", failures},
         {"seq", failure.seq},
         {"attempts", failure.attempts},
         {"code", std::string(absl::StatusCodeToString(failure.code))},
         {"error", failure.message},
         {"retry_in_ms",
          absl::ToInt64Milliseconds(failure.next_attempt - absl::Now())}});
  };
  return options;
}

bool HasMigration(const std::vector<storage::Migration>& migrations,
                  absl::string_view id) {
  return absl::c_any_of(
      migrations, [id](const storage::Migration& m) { return m.id == id; });
}

// The credentials this service calls other services with: its own client
// certificate (dev PKI: clients/svc-<service>), trusted by the same CA its
// server uses.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ServiceCredentials(
    const std::string& service, const ServerOptions& options) {
  if (options.insecure_dev) return grpc::InsecureChannelCredentials();
  std::string cert = absl::GetFlag(FLAGS_client_cert);
  std::string key = absl::GetFlag(FLAGS_client_key);
  const std::string dir = absl::GetFlag(FLAGS_tls_dir);
  if (cert.empty() && !dir.empty()) {
    cert = absl::StrCat(dir, "/clients/svc-", service, ".crt");
  }
  if (key.empty() && !dir.empty()) {
    key = absl::StrCat(dir, "/clients/svc-", service, ".key");
  }
  if (cert.empty() || key.empty()) {
    return absl::FailedPreconditionError(
        "calls to other services need --client_cert and --client_key (or "
        "--tls_dir)");
  }
  grpc::SslCredentialsOptions ssl;
  for (auto [path, out] : {std::pair{options.tls.ca, &ssl.pem_root_certs},
                           std::pair{cert, &ssl.pem_cert_chain},
                           std::pair{key, &ssl.pem_private_key}}) {
    absl::StatusOr<std::string> pem = ReadFile(path);
    if (!pem.ok()) return pem.status();
    *out = *std::move(pem);
  }
  return grpc::SslCredentials(ssl);
}

// Deletes what the retention flags let go, every --janitor_interval, until
// `stop` is notified. Only tables the service has are touched.
void RunJanitor(storage::Database& db, const std::string& service,
                bool has_outbox, bool has_request_ids,
                absl::Notification& stop) {
  const absl::Duration interval = absl::GetFlag(FLAGS_janitor_interval);
  while (!stop.WaitForNotificationWithTimeout(interval)) {
    auto drain = [&](const char* what, auto prune) {
      int64_t total = 0;
      for (;;) {
        absl::StatusOr<int64_t> n = prune();
        if (!n.ok()) {
          Log(LogLevel::kWarning, "retention clean-up failed",
              {{"service", service},
               {"what", what},
               {"error", std::string(n.status().message())}});
          return;
        }
        total += *n;
        if (*n < 1000 || stop.HasBeenNotified()) break;
      }
      if (total > 0) {
        Log(LogLevel::kInfo, "retention clean-up",
            {{"service", service}, {"what", what}, {"deleted", total}});
      }
    };
    if (has_outbox) {
      drain("delivered events", [&] {
        return events::PruneDeliveredEvents(
            db, absl::Now() - absl::GetFlag(FLAGS_event_retention));
      });
    }
    if (has_request_ids) {
      drain("request ids", [&] {
        return api::PurgeRequestIds(
            db, absl::Now() - absl::GetFlag(FLAGS_request_id_retention));
      });
    }
  }
}

// How long a stopping process waits for its last checkpoint to reach the
// witnesses.
constexpr absl::Duration kShutdownCheckpointWait = absl::Seconds(1);

// The witness of the other services' checkpoints: verified against the
// deployment CA (--tls_ca); without one (--insecure_dev) every checkpoint
// is refused and counted. Refusals and conflicts are logged without
// personal data (a checkpoint holds none).
std::unique_ptr<audit::CheckpointWitness> MakeCheckpointWitness(
    const std::string& service, const ServerOptions& options) {
  std::unique_ptr<audit::CheckpointVerifier> verifier;
  if (!options.insecure_dev && !options.tls.ca.empty()) {
    absl::flat_hash_set<std::string> others = audit::LotseServices();
    others.erase(service);
    absl::StatusOr<std::unique_ptr<audit::CheckpointVerifier>> made =
        audit::CheckpointVerifier::FromFile(options.tls.ca, std::move(others));
    if (made.ok()) {
      verifier = *std::move(made);
    } else {
      Log(LogLevel::kWarning, "audit checkpoints cannot be verified",
          {{"service", service},
           {"error", std::string(made.status().message())}});
    }
  }
  return std::make_unique<audit::CheckpointWitness>(
      service, std::move(verifier), options.metrics_registry.get(),
      [service](const audit::CheckpointReceipt& r) {
        const bool conflict = r.outcome == "conflict";
        Log(conflict ? LogLevel::kError : LogLevel::kWarning,
            conflict ? "audit checkpoint conflicts with one witnessed "
                       "before: the chain was rewritten"
                     : "audit checkpoint refused",
            {{"service", service},
             {"of_service", r.service},
             {"chain", r.chain},
             {"seq", r.seq},
             {"outcome", r.outcome},
             {"error", r.message}});
      });
}

// Signs with the server's own TLS key and certificate (--tls_key,
// --tls_cert). Null, logged, where there is none (--insecure_dev).
std::unique_ptr<audit::CheckpointPublisher> MakeCheckpointPublisher(
    const std::string& service, const ServerOptions& options,
    const std::vector<events::Destination>& destinations, storage::Database& db,
    storage::Database* read_audit_db, prometheus::Registry& metrics) {
  if (options.insecure_dev || options.tls.cert.empty() ||
      options.tls.key.empty()) {
    Log(LogLevel::kWarning,
        "audit checkpoints disabled: no service certificate to sign with",
        {{"service", service}});
    return nullptr;
  }
  absl::StatusOr<std::unique_ptr<audit::CheckpointSigner>> signer =
      audit::CheckpointSigner::FromFiles(service, options.tls.cert,
                                         options.tls.key);
  if (!signer.ok()) {
    Log(LogLevel::kWarning, "audit checkpoints disabled",
        {{"service", service},
         {"error", std::string(signer.status().message())}});
    return nullptr;
  }
  audit::CheckpointPublisherOptions publisher;
  publisher.interval = absl::GetFlag(FLAGS_audit_checkpoint_interval);
  for (const events::Destination& d : destinations) {
    publisher.destinations.push_back(d.name);
  }
  publisher.on_error = [service](const absl::Status& status) {
    Log(LogLevel::kWarning, "audit checkpoint not published",
        {{"service", service}, {"error", std::string(status.message())}});
  };
  return std::make_unique<audit::CheckpointPublisher>(
      db, read_audit_db, *std::move(signer), &metrics, std::move(publisher));
}

// The witnesses of this service's chains are the --event_destinations
// services, asked with its client certificate.
std::unique_ptr<audit::ServiceWitnesses> MakeServiceWitnesses(
    const std::string& service, const ServerOptions& options,
    const std::vector<events::Destination>& destinations, storage::Database& db,
    storage::Database* read_audit_db) {
  std::vector<audit::WitnessTarget> targets;
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  std::unique_ptr<audit::CheckpointVerifier> verifier;
  if (!options.insecure_dev && !destinations.empty()) {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> made =
        ServiceCredentials(service, options);
    if (made.ok()) credentials = *std::move(made);
    absl::StatusOr<std::unique_ptr<audit::CheckpointVerifier>> v =
        audit::CheckpointVerifier::FromFile(options.tls.ca,
                                            audit::LotseServices());
    if (v.ok()) verifier = *std::move(v);
    for (const events::Destination& d : destinations) {
      if (audit::LotseServices().contains(d.name) && d.name != service) {
        targets.push_back({d.name, d.address});
      }
    }
  }
  return std::make_unique<audit::ServiceWitnesses>(
      service, db, read_audit_db, std::move(targets), std::move(credentials),
      std::move(verifier));
}

}  // namespace

std::string ServiceUsage(const ServiceDefinition& definition) {
  return absl::StrCat(
      "Usage: lotse_", definition.name, " [--flag=value ...]\n       lotse_",
      definition.name,
      " backup --backup_to=FILE | restore --restore_from=FILE | mark-restored "
      "[--flag=value ...]\n\n",
      WrapText(definition.description), "\n",
      WrapText(absl::StrCat(
          "Serves gRPC on ", definition.default_listen,
          " (--listen) with its data in sqlite:", definition.name,
          ".db (--database) unless told otherwise. Every flag can also be "
          "set from the environment as LOTSE_<FLAG> (--database: "
          "LOTSE_DATABASE); the command line wins.")));
}

absl::Status ServiceRuntime::Write(
    const std::function<absl::Status(storage::Transaction&)>& body) const {
  // The committer runs the body on its own thread: a --dev_clock call's
  // time goes with it.
  const absl::Time dev_time = api::DevClockScope::Current();
  if (committer != nullptr && dev_time != absl::InfinitePast()) {
    return committer->Run([&](storage::Transaction& tx) {
      const api::DevClockScope clock(dev_time);
      return body(tx);
    });
  }
  if (committer != nullptr) return committer->Run(body);
  return storage::RunInTransaction(*database, body);
}

absl::Status ServiceRuntime::WriteReadAudit(
    const std::function<absl::Status(storage::Transaction&)>& body) const {
  if (read_audit_committer != nullptr) return read_audit_committer->Run(body);
  if (read_audit_database != nullptr) {
    return storage::RunInTransaction(*read_audit_database, body);
  }
  return Write(body);
}

std::string ReadAuditDatabaseUrl(absl::string_view database_url,
                                 absl::string_view flag) {
  if (flag == "same") return "";
  if (!flag.empty()) return std::string(flag);
  constexpr absl::string_view kSqlite = "sqlite:";
  if (!absl::StartsWith(database_url, kSqlite)) return "";
  absl::string_view path = database_url.substr(kSqlite.size());
  if (path.empty() || path == ":memory:" || absl::StartsWith(path, "file:")) {
    return "";
  }
  if (absl::ConsumeSuffix(&path, ".db")) {
    return absl::StrCat(kSqlite, path, ".reads.db");
  }
  return absl::StrCat(kSqlite, path, ".reads");
}

RelationsReachIdentity::RelationsReachIdentity(const ServiceRuntime& runtime,
                                               const RequestContext& rc)
    : delivery_(runtime.delivery),
      call_deadline_(rc.deadline),
      collect_(&committed_) {}

RelationsReachIdentity::~RelationsReachIdentity() {
  if (delivery_ == nullptr) return;
  const std::vector<int64_t> seqs = committed_.seqs();
  if (seqs.empty()) return;
  const absl::Time now = absl::Now();
  const absl::Time until =
      std::min(now + kWait, now + (call_deadline_ - now) / 2);
  delivery_->AwaitDelivered("identity", seqs, until);
}

int RunService(int argc, char** argv, const ServiceDefinition& definition) {
  // Block the termination signals before any thread exists, so every thread
  // inherits the mask and only the sigwait below ever receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::vector<FlagGroup> groups = ServerFlagGroups();
  groups.insert(groups.end(), definition.flag_groups.begin(),
                definition.flag_groups.end());
  groups.push_back(BackupFlagGroup());
  const std::vector<char*> positional =
      ParseFlags(argc, argv, ServiceUsage(definition), groups);
  const std::string& name = definition.name;
  if (positional.size() > 2 ||
      (positional.size() == 2 && !IsBackupCommand(positional[1]))) {
    std::fprintf(stderr,
                 "unexpected arguments: the only commands are backup, "
                 "restore and mark-restored\n");
    return 2;
  }
  if (positional.size() == 2) {
    std::string url = absl::GetFlag(FLAGS_database);
    if (url.empty()) url = absl::StrCat("sqlite:", name, ".db");
    BackupTarget target;
    target.service = name;
    target.database_url = url;
    target.read_audit_url =
        ReadAuditDatabaseUrl(url, absl::GetFlag(FLAGS_read_audit_database));
    target.migrations = definition.migrations;
    target.on_restore = definition.on_restore;
    return RunBackupCommand(positional[1], target);
  }

  // The retention rules before anything else: a deployment whose rules do
  // not parse must not start, and must say which line is wrong.
  lifecycle::RetentionRules retention;
  if (const std::string path = absl::GetFlag(FLAGS_retention_rules);
      !path.empty()) {
    absl::StatusOr<lifecycle::RetentionRules> loaded =
        lifecycle::RetentionRules::Load(path);
    if (!loaded.ok()) {
      return Fail(name, "bad --retention_rules", loaded.status());
    }
    retention = *std::move(loaded);
  }
  if (absl::GetFlag(FLAGS_purge_interval) <= absl::ZeroDuration()) {
    return Fail(name, "bad --purge_interval",
                absl::InvalidArgumentError("must be positive"));
  }
  if (absl::GetFlag(FLAGS_purge_batch) < 1) {
    return Fail(name, "bad --purge_batch",
                absl::InvalidArgumentError("must be at least 1"));
  }

  absl::StatusOr<AgencyLimiterOptions> limits = AgencyLimitsFromFlags();
  if (!limits.ok()) return Fail(name, "bad limit flags", limits.status());

  std::string database_url = absl::GetFlag(FLAGS_database);
  if (database_url.empty()) database_url = absl::StrCat("sqlite:", name, ".db");
  absl::StatusOr<std::unique_ptr<storage::Database>> db = storage::OpenDatabase(
      database_url, absl::GetFlag(FLAGS_database_connections));
  if (!db.ok()) return Fail(name, "cannot open database", db.status());

  ServerOptions options;
  options.service_name = name;
  options.health_service_names = definition.health_service_names;
  options.listen = absl::GetFlag(FLAGS_listen);
  if (options.listen.empty()) options.listen = definition.default_listen;
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  options.health_listen = absl::GetFlag(FLAGS_health_listen);
  options.max_connection_age = absl::GetFlag(FLAGS_max_connection_age);
  if (options.max_connection_age <= absl::ZeroDuration()) {
    // Zero would send every client away as soon as it connected.
    return Fail(name, "bad --max_connection_age",
                absl::InvalidArgumentError("must be positive (or inf)"));
  }
  options.insecure_dev = absl::GetFlag(FLAGS_insecure_dev);
  if (const std::string dir = absl::GetFlag(FLAGS_tls_dir); !dir.empty()) {
    options.tls = TlsFilesFromDir(dir, name);
  }
  if (!absl::GetFlag(FLAGS_tls_cert).empty())
    options.tls.cert = absl::GetFlag(FLAGS_tls_cert);
  if (!absl::GetFlag(FLAGS_tls_key).empty())
    options.tls.key = absl::GetFlag(FLAGS_tls_key);
  if (!absl::GetFlag(FLAGS_tls_ca).empty())
    options.tls.ca = absl::GetFlag(FLAGS_tls_ca);
  options.tls.crl = absl::GetFlag(FLAGS_tls_crl);
  options.tls_reload_interval = absl::GetFlag(FLAGS_tls_reload_interval);
  if (options.tls_reload_interval <= absl::ZeroDuration()) {
    return Fail(name, "bad --tls_reload_interval",
                absl::InvalidArgumentError("must be positive"));
  }
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.drain_grace = absl::GetFlag(FLAGS_drain_grace);
  options.shutdown_deadline = absl::GetFlag(FLAGS_shutdown_deadline);
  options.log_calls = absl::GetFlag(FLAGS_log_calls);

  // Per-agency limits, before the pool whose queued calls hold permits.
  options.metrics_registry = std::make_shared<prometheus::Registry>();
  const RefusalHook refusals =
      ObserveRefusals(*options.metrics_registry, name, limits->max_agencies);
  limits->on_refused = refusals;
  absl::StatusOr<std::unique_ptr<AgencyLimiter>> limiter =
      AgencyLimiter::Create(*std::move(limits));
  if (!limiter.ok()) return Fail(name, "bad limit flags", limiter.status());

  // Handlers are created before the server starts (gRPC registers services
  // at build time) but only answer once migrations have run and health
  // says SERVING.
  WorkerPool pool(
      absl::GetFlag(FLAGS_worker_threads),
      /*max_queued=*/static_cast<size_t>(absl::GetFlag(FLAGS_worker_threads)) *
          256);
  // The read audit chain: its own SQLite file beside the data, so that
  // audited reads never commit to the data file (audit/audit_log.h).
  std::unique_ptr<storage::Database> read_audit_db;
  if (const std::string url = ReadAuditDatabaseUrl(
          database_url, absl::GetFlag(FLAGS_read_audit_database));
      !url.empty()) {
    absl::StatusOr<std::unique_ptr<storage::Database>> opened =
        storage::OpenDatabase(url, kReadAuditConnections);
    if (!opened.ok()) {
      return Fail(name, "cannot open the read audit database", opened.status());
    }
    read_audit_db = *std::move(opened);
    if (absl::Status s = storage::ApplyMigrations(*read_audit_db,
                                                  audit::ReadAuditMigrations());
        !s.ok()) {
      return Fail(name, "read audit migrations failed", s);
    }
  }

  ServiceRuntime runtime;
  runtime.database = db->get();
  runtime.read_audit_database = read_audit_db.get();
  runtime.env.pool = &pool;
  runtime.env.insecure_dev = options.insecure_dev;
  runtime.env.dev_clock = absl::GetFlag(FLAGS_dev_clock);
  runtime.env.error_domain = absl::StrCat(name, ".lotse");
  runtime.env.limiter = limiter->get();
  runtime.refusals = refusals;
  runtime.retention = &retention;

  if (absl::Status s = storage::ApplyMigrations(**db, definition.migrations);
      !s.ok()) {
    return Fail(name, "migrations failed", s);
  }

  // The process's one group committer: every service's write phases go
  // through ServiceRuntime::Write, and so through it.
  std::optional<storage::GroupCommitter> committer;
  if (absl::GetFlag(FLAGS_group_commit)) {
    storage::GroupCommitter::Options commit_options;
    commit_options.writers =
        std::max(1, absl::GetFlag(FLAGS_group_commit_writers));
    committer.emplace(**db, commit_options);
    runtime.committer = &*committer;
  }
  std::optional<storage::GroupCommitter> read_audit_committer;
  if (absl::GetFlag(FLAGS_group_commit) && read_audit_db != nullptr) {
    read_audit_committer.emplace(*read_audit_db,
                                 storage::GroupCommitter::Options{});
    runtime.read_audit_committer = &*read_audit_committer;
  }
  // Before make_services, so services can register metrics of their own.
  runtime.metrics = options.metrics_registry.get();

  // Event delivery before the services exist. Commits that enqueue events
  // wake its relays by themselves (events/outbox.h).
  absl::StatusOr<std::vector<events::Destination>> destinations =
      events::ParseDestinations(absl::GetFlag(FLAGS_event_destinations));
  if (!destinations.ok()) {
    return Fail(name, "bad --event_destinations", destinations.status());
  }
  std::unique_ptr<events::EventDelivery> delivery;
  if (!destinations->empty()) {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
        ServiceCredentials(name, options);
    if (!credentials.ok()) {
      return Fail(name, "no client credentials for event delivery",
                  credentials.status());
    }
    absl::StatusOr<std::unique_ptr<events::EventDelivery>> started =
        events::EventDelivery::Start(
            **db, *destinations, *credentials,
            ObservedRelayOptions(name, *options.metrics_registry));
    if (!started.ok()) {
      return Fail(name, "cannot start event delivery", started.status());
    }
    delivery = *std::move(started);
    runtime.delivery = delivery.get();
  }

  // What the other services witnessed of this one's chains, for its
  // AuditService; they are asked at the --event_destinations addresses.
  std::unique_ptr<audit::ServiceWitnesses> witnesses = MakeServiceWitnesses(
      name, options, *destinations, **db, read_audit_db.get());
  runtime.witnesses = witnesses.get();

  auto services = definition.make_services(runtime);
  if (!services.ok())
    return Fail(name, "cannot build services", services.status());
  // Checkpoints of the other services' audit chains are kept as a witness
  // (audit/checkpoint_exchange.h) before the service's own handler sees
  // any event.
  std::unique_ptr<audit::CheckpointWitness> witness;
  if (definition.make_event_handler) {
    witness = MakeCheckpointWitness(name, options);
    events::ApplyFn handler =
        witness->Wrap(definition.make_event_handler(runtime));
    const bool insecure = options.insecure_dev;
    services->push_back(std::make_unique<events::EventSinkService>(
        **db, std::move(handler),
        [insecure](grpc::CallbackServerContext* context) -> absl::Status {
          if (insecure) return absl::OkStatus();
          absl::StatusOr<CallerIdentity> caller =
              CallerFromAuthContext(*context->auth_context());
          if (!caller.ok()) return caller.status();
          if (!caller->is_service()) {
            return absl::PermissionDeniedError(
                "only Lotse services deliver events");
          }
          return absl::OkStatus();
        }));
  }
  std::vector<grpc::Service*> raw;
  for (auto& s : *services) raw.push_back(s.get());

  // The purge job: the service's own tasks plus the audit chains, which
  // every service prunes (lifecycle/purge.h).
  std::vector<lifecycle::PurgeTask> purge_tasks;
  if (definition.make_purge_tasks) {
    purge_tasks = definition.make_purge_tasks(runtime);
  }
  lifecycle::PurgeOptions purge_options;
  purge_options.service = name;
  purge_options.interval = absl::GetFlag(FLAGS_purge_interval);
  purge_options.batch_size = absl::GetFlag(FLAGS_purge_batch);
  purge_options.read_audit_database = read_audit_db.get();
  purge_options.has_holds =
      HasMigration(definition.migrations, "common.lifecycle.0001_holds");
  purge_options.on_error = [name](const absl::Status& status) {
    Log(LogLevel::kWarning, "purge failed",
        {{"service", name}, {"error", std::string(status.message())}});
  };
  lifecycle::PurgeJob purge(**db, retention, std::move(purge_tasks),
                            std::move(purge_options),
                            options.metrics_registry.get());

  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options, raw);
  if (!server.ok()) return Fail(name, "cannot start server", server.status());
  (*server)->SetServing(true);
  Log(LogLevel::kInfo, "serving",
      {{"service", name}, {"port", static_cast<int64_t>((*server)->port())}});

  std::unique_ptr<audit::CheckpointPublisher> checkpoints;
  if (HasMigration(definition.migrations, "common.events.0001_outbox")) {
    checkpoints =
        MakeCheckpointPublisher(name, options, *destinations, **db,
                                read_audit_db.get(), *options.metrics_registry);
    if (checkpoints != nullptr) checkpoints->Start();
  }

  purge.Start();

  absl::Notification stop_janitor;
  std::thread janitor(
      RunJanitor, std::ref(**db), name,
      HasMigration(definition.migrations, "common.events.0001_outbox"),
      HasMigration(definition.migrations, "common.api.0001_request_ids"),
      std::ref(stop_janitor));

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  Log(LogLevel::kInfo, "signal received",
      {{"service", name}, {"signal", static_cast<int64_t>(signal_number)}});
  (*server)->Drain([&runtime] {
    for (const auto& hook : runtime.on_drain) hook();
  });
  stop_janitor.Notify();
  janitor.join();
  purge.Stop();  // before the databases close
  if (checkpoints != nullptr) {
    // The heads the process ends with, witnessed before it goes when the
    // witnesses answer within kShutdownCheckpointWait; otherwise the
    // checkpoint waits in the outbox for the next start.
    const std::vector<int64_t> seqs = checkpoints->Stop();
    if (delivery != nullptr) {
      const absl::Time until = absl::Now() + kShutdownCheckpointWait;
      for (const events::Destination& d : *destinations) {
        delivery->AwaitDelivered(d.name, seqs, until);
      }
    }
  }
  delivery.reset();  // undelivered events stay in the outbox
  return 0;
}

}  // namespace lotse::server
