#include "services/identity/service/transparency_handlers.h"

#include <algorithm>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/errors/status.h"
#include "common/server/flags.h"
#include "common/server/server.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "services/identity/domain/person.h"
#include "services/identity/domain/transparency.h"
#include "services/identity/service/handler_support.h"
#include "services/identity/store/agency_store.h"
#include "services/identity/store/lifecycle_store.h"
#include "services/identity/store/relation_store.h"

ABSL_FLAG(std::string, audit_peers, "",
          "name=host:port of the other services' AuditService "
          "(cases, courses, placement), asked for a person's transparency "
          "report; e.g. cases=127.0.0.1:50052,courses=127.0.0.1:50053,"
          "placement=127.0.0.1:50054");

namespace lotse::identity {
namespace {

using ::google::protobuf::util::TimeUtil;
using ::lotse::agencies::AuditedCall;
using ::lotse::agencies::LocalAgency;
using ::lotse::storage::Transaction;

// At most this many holds are listed in a report (newest first); a person
// has a handful.
constexpr int kMaxReportHolds = 500;

// The part of the call's remaining time kept for answering after the
// services were asked.
absl::Duration AnswerReserve(absl::Duration remaining) {
  return std::min(absl::Milliseconds(200), remaining / 5);
}

absl::Time TimeOf(const google::protobuf::Timestamp& t) {
  return absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(t));
}

google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  return TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

void CheckTime(const google::protobuf::Timestamp& t, const char* field,
               FieldViolations* violations) {
  // The range google.protobuf.Timestamp allows (years 1 to 9999).
  constexpr int64_t kMinSeconds = -62135596800;
  constexpr int64_t kMaxSeconds = 253402300799;
  if (t.seconds() < kMinSeconds || t.seconds() > kMaxSeconds || t.nanos() < 0 ||
      t.nanos() > 999999999) {
    violations->Add(field, "is not a valid timestamp");
  }
}

}  // namespace

TransparencyReports::TransparencyReports(
    const agencies::CallEnvironment& env,
    std::shared_ptr<const DuplicateMatcher> matcher,
    std::vector<AuditPeer> peers)
    : env_(env), matcher_(std::move(matcher)), peers_(std::move(peers)) {}

absl::Status TransparencyReports::Get(
    const server::RequestContext& rc,
    const v1::GetTransparencyReportRequest& request,
    v1::TransparencyReport* response) const {
  AuditedCall call(env_, rc, "GetTransparencyReport",
                   PersonTarget(request.person()));
  std::string survivor;
  std::vector<std::string> covered;
  std::vector<HoldRecord> holds;
  absl::Status status = call.Read(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        FieldViolations violations;
        const std::string id =
            ParsePersonName(request.person(), "person", &violations);
        if (request.service_timeout_ms() < 0) {
          violations.Add("service_timeout_ms", "must not be negative");
        }
        const size_t before_times = violations.violations().size();
        if (request.has_start_time()) {
          CheckTime(request.start_time(), "start_time", &violations);
        }
        if (request.has_end_time()) {
          CheckTime(request.end_time(), "end_time", &violations);
        }
        if (request.has_start_time() && request.has_end_time() &&
            violations.violations().size() == before_times &&
            TimeOf(request.end_time()) <= TimeOf(request.start_time())) {
          violations.Add("end_time", "must be after start_time");
        }
        if (!violations.empty()) return violations.ToStatus();
        // The domain first: other domains learn nothing about the person.
        if (absl::Status s = DecideReportAccess(caller.legal_domain,
                                                /*person_exists=*/true,
                                                /*owns_open_case=*/true);
            !s.ok()) {
          return s;
        }
        absl::StatusOr<PersonLookup> found =
            FindPerson(tx, *matcher_, id, /*for_write=*/false);
        if (!found.ok() &&
            found.status().code() != absl::StatusCode::kNotFound) {
          return found.status();
        }
        bool owner = false;
        if (found.ok() && caller.legal_domain == "KOMMUNE") {
          absl::StatusOr<std::vector<Relation>> relations =
              RelationsBetween(tx, found->id, caller.id);
          if (!relations.ok()) return relations.status();
          owner = std::find(relations->begin(), relations->end(),
                            Relation::kCaseOwner) != relations->end();
        }
        if (absl::Status s =
                DecideReportAccess(caller.legal_domain, found.ok(), owner);
            !s.ok()) {
          return s;
        }
        survivor = PersonResourceName(found->id);
        // The holds on the person and their cases, active or not: why data
        // the person may expect gone is still kept.
        HoldFilter filter;
        filter.person_id = found->id;
        filter.include_inactive = true;
        absl::StatusOr<HoldPage> page =
            ListHolds(tx, filter, absl::Now(), "", kMaxReportHolds);
        if (!page.ok()) return page.status();
        holds = std::move(page->holds);
        covered.push_back(survivor);
        for (const std::string& merged : found->person.merged_names()) {
          if (merged != survivor) covered.push_back(merged);
        }
        call.set_target(survivor);
        call.TouchResource(survivor, {});
        return absl::OkStatus();
      });
  if (!status.ok()) return call.Finish(std::move(status));

  // Ask the services, outside any transaction.
  const absl::Time now = absl::Now();
  absl::Duration timeout =
      request.service_timeout_ms() == 0
          ? kDefaultServiceTimeout
          : std::min(absl::Milliseconds(request.service_timeout_ms()),
                     kMaxServiceTimeout);
  absl::Time deadline = now + timeout;
  if (rc.deadline != absl::InfiniteFuture()) {
    const absl::Duration remaining = rc.deadline - now;
    deadline = std::min(deadline, rc.deadline - AnswerReserve(remaining));
  }
  const absl::Time start = request.has_start_time()
                               ? TimeOf(request.start_time())
                               : absl::InfinitePast();
  const absl::Time end =
      request.has_end_time() ? TimeOf(request.end_time()) : now;
  GatheredRecords gathered =
      GatherAuditRecords(peers_, covered, start, end, deadline);
  // A service not configured as a peer is missing too.
  std::vector<std::string> missing = MissingServices(gathered.answered);

  // The agencies named, from the registry.
  AgencyDirectory agencies;
  const std::vector<std::string> named = AgenciesNamed(gathered.records);
  if (!named.empty()) {
    status =
        call.Read([&](Transaction& tx, const LocalAgency&) -> absl::Status {
          agencies.clear();
          for (const std::string& name : named) {
            absl::StatusOr<std::optional<AgencyRecord>> record =
                ReadAgency(tx, name.substr(std::string("agencies/").size()));
            if (!record.ok()) return record.status();
            if (!record->has_value()) continue;
            AgencyFacts facts;
            facts.display_name = (*record)->display_name;
            type::v1::LegalDomain domain;
            if (type::v1::LegalDomain_Parse(
                    absl::StrCat("LEGAL_DOMAIN_", (*record)->legal_domain),
                    &domain)) {
              facts.legal_domain = domain;
            }
            agencies[name] = std::move(facts);
          }
          return absl::OkStatus();
        });
    if (!status.ok()) return call.Finish(std::move(status));
  }

  response->Clear();
  response->set_person(survivor);
  for (const std::string& c : covered) response->add_covered_persons(c);
  if (start != absl::InfinitePast()) {
    *response->mutable_start_time() = ToTimestamp(start);
  }
  *response->mutable_end_time() = ToTimestamp(end);
  *response->mutable_create_time() = ToTimestamp(now);
  for (v1::TransparencyEntry& e :
       BuildReportEntries(gathered.records, agencies)) {
    *response->add_entries() = std::move(e);
  }
  for (HoldRecord& hold : holds) {
    *response->add_legal_holds() = std::move(hold.hold);
  }
  for (const std::string& s : ReportServices()) {
    if (std::find(missing.begin(), missing.end(), s) == missing.end()) {
      response->add_answered_services(s);
    } else {
      response->add_missing_services(s);
    }
  }
  return call.Finish(absl::OkStatus());
}

absl::StatusOr<std::vector<AuditPeer>> AuditPeersFromFlags(
    storage::Database& changes, storage::Database* reads) {
  std::vector<AuditPeer> peers;
  peers.push_back(
      {"identity", std::make_shared<LocalAuditRecordSource>(changes, reads)});
  absl::StatusOr<std::vector<AuditPeerAddress>> addresses =
      ParseAuditPeers(absl::GetFlag(FLAGS_audit_peers));
  if (!addresses.ok()) return addresses.status();
  if (addresses->empty()) return peers;
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (absl::GetFlag(FLAGS_insecure_dev)) {
    credentials = grpc::InsecureChannelCredentials();
  } else {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> tls =
        server::ClientCredentialsFromDir(absl::GetFlag(FLAGS_tls_dir),
                                         "svc-identity");
    if (!tls.ok()) return tls.status();
    credentials = *std::move(tls);
  }
  for (const AuditPeerAddress& a : *addresses) {
    peers.push_back(
        {a.service, std::make_shared<GrpcAuditRecordSource>(
                        grpc::CreateChannel(a.address, credentials))});
  }
  return peers;
}

}  // namespace lotse::identity
