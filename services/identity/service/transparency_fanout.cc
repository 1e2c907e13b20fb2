#include "services/identity/service/transparency_fanout.h"

#include <algorithm>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "common/errors/status.h"
#include "common/events/delivery.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/client_context.h"
#include "lotse/type/v1/data_category.pb.h"
#include "lotse/type/v1/legal_domain.pb.h"

namespace lotse::identity {
namespace {

namespace pb = ::lotse::audit::v1;
using ::google::protobuf::util::TimeUtil;

constexpr int kPageSize = 1000;

absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(t));
}

google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  return TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

pb::AuditOutcome OutcomeOf(audit::Outcome outcome) {
  switch (outcome) {
    case audit::Outcome::kAllowed:
      return pb::AUDIT_OUTCOME_ALLOWED;
    case audit::Outcome::kDenied:
      return pb::AUDIT_OUTCOME_DENIED;
    case audit::Outcome::kError:
      return pb::AUDIT_OUTCOME_ERROR;
  }
  return pb::AUDIT_OUTCOME_UNSPECIFIED;
}

// Local page tokens: "<c|r>:<after_seq>".
std::string LocalToken(audit::Chain chain, int64_t after_seq) {
  return absl::StrCat(chain == audit::Chain::kChanges ? "c:" : "r:", after_seq);
}

// What one peer's thread hands back.
struct PeerResult {
  bool done = false;
  bool ok = false;
  std::vector<pb::AuditRecord> records;
};

// Shared by the waiting call and the peers' threads, which may outlive the
// call when a peer ignores its deadline.
struct Gathering {
  absl::Mutex mu;
  std::vector<PeerResult> results ABSL_GUARDED_BY(mu);
  int pending ABSL_GUARDED_BY(mu) = 0;
};

// All pages of `source` for every one of `persons`; an error stops it.
absl::StatusOr<std::vector<pb::AuditRecord>> AllPages(
    AuditRecordSource& source, const std::vector<std::string>& persons,
    absl::Time start, absl::Time end, absl::Time deadline) {
  std::vector<pb::AuditRecord> out;
  for (const std::string& person : persons) {
    pb::ListAuditRecordsRequest request;
    request.set_person(person);
    if (start != absl::InfinitePast()) {
      *request.mutable_start_time() = ToTimestamp(start);
    }
    if (end != absl::InfiniteFuture()) {
      *request.mutable_end_time() = ToTimestamp(end);
    }
    request.set_page_size(kPageSize);
    for (;;) {
      if (absl::Now() >= deadline) {
        return absl::DeadlineExceededError("audit records not in time");
      }
      absl::StatusOr<pb::ListAuditRecordsResponse> page =
          source.List(request, deadline);
      if (!page.ok()) return page.status();
      for (pb::AuditRecord& r : *page->mutable_records()) {
        out.push_back(std::move(r));
      }
      if (page->next_page_token().empty()) break;
      request.set_page_token(page->next_page_token());
    }
  }
  return out;
}

}  // namespace

GrpcAuditRecordSource::GrpcAuditRecordSource(
    std::shared_ptr<grpc::Channel> channel)
    : stub_(pb::AuditService::NewStub(std::move(channel))) {}

absl::StatusOr<pb::ListAuditRecordsResponse> GrpcAuditRecordSource::List(
    const pb::ListAuditRecordsRequest& request, absl::Time deadline) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(deadline));
  context.AddMetadata("x-lotse-actor", "svc-identity");
  context.AddMetadata("x-lotse-purpose", "transparency-report");
  pb::ListAuditRecordsResponse response;
  grpc::Status status = stub_->ListAuditRecords(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

LocalAuditRecordSource::LocalAuditRecordSource(storage::Database& changes,
                                               storage::Database* reads)
    : changes_(changes), reads_(reads) {}

absl::StatusOr<pb::ListAuditRecordsResponse> LocalAuditRecordSource::List(
    const pb::ListAuditRecordsRequest& request, absl::Time deadline) {
  (void)deadline;  // one local page is short; the gathering bounds the rest
  absl::string_view person = request.person();
  if (!absl::ConsumePrefix(&person, "persons/") || person.empty() ||
      absl::StrContains(person, '/')) {
    return absl::InvalidArgumentError("person must be persons/{person}");
  }
  audit::AuditFilter filter;
  filter.person_ids = {std::string(person)};
  if (request.has_start_time()) filter.start = FromProto(request.start_time());
  if (request.has_end_time()) filter.end = FromProto(request.end_time());
  audit::AuditCursor cursor;
  if (!request.page_token().empty()) {
    absl::string_view token = request.page_token();
    if (absl::ConsumePrefix(&token, "r:")) {
      cursor.chain = audit::Chain::kReads;
    } else if (!absl::ConsumePrefix(&token, "c:")) {
      return absl::InvalidArgumentError("bad page token");
    }
    if (!absl::SimpleAtoi(token, &cursor.after_seq)) {
      return absl::InvalidArgumentError("bad page token");
    }
  }
  const int page_size = std::clamp(
      request.page_size() <= 0 ? 100 : request.page_size(), 1, kPageSize);
  audit::AuditDatabases dbs;
  dbs.changes = &changes_;
  dbs.reads = reads_;
  absl::StatusOr<audit::AuditRecordPage> page =
      audit::ListAuditRecords(dbs, filter, cursor, page_size);
  if (!page.ok()) return page.status();
  pb::ListAuditRecordsResponse response;
  for (const audit::ListedAuditRecord& r : page->records) {
    *response.add_records() = ToProto(r.record, "identity", r.chain);
  }
  if (page->next.has_value()) {
    response.set_next_page_token(
        LocalToken(page->next->chain, page->next->after_seq));
  }
  response.add_resolved_persons(request.person());
  return response;
}

pb::AuditRecord ToProto(const audit::AuditRecord& record,
                        absl::string_view service, audit::Chain chain) {
  pb::AuditRecord out;
  out.set_service(std::string(service));
  out.set_chain(chain == audit::Chain::kChanges ? pb::AUDIT_CHAIN_CHANGES
                                                : pb::AUDIT_CHAIN_READS);
  out.set_seq(record.seq);
  *out.mutable_time() = ToTimestamp(record.time);
  if (absl::StartsWith(record.agency_id, "services/") ||
      record.legal_domain == "SERVICE") {
    out.set_agency(absl::StartsWith(record.agency_id, "services/")
                       ? record.agency_id
                       : absl::StrCat("services/", record.agency_id));
  } else {
    out.set_agency(absl::StrCat("agencies/", record.agency_id));
    lotse::type::v1::LegalDomain domain;
    if (lotse::type::v1::LegalDomain_Parse(
            absl::StrCat("LEGAL_DOMAIN_", record.legal_domain), &domain)) {
      out.set_legal_domain(domain);
    }
  }
  out.set_actor(record.actor);
  out.set_purpose(record.purpose);
  out.set_operation(record.operation);
  out.set_resource(record.resource);
  for (const std::string& c : record.data_categories) {
    lotse::type::v1::DataCategory category;
    if (lotse::type::v1::DataCategory_Parse(absl::StrCat("DATA_CATEGORY_", c),
                                            &category)) {
      out.add_data_categories(category);
    }
  }
  out.set_outcome(OutcomeOf(record.outcome));
  out.set_reason(record.reason);
  for (const audit::LegalBasis& b : record.legal_bases) {
    pb::LegalBasis* basis = out.add_legal_bases();
    lotse::type::v1::DataCategory category;
    if (lotse::type::v1::DataCategory_Parse(
            absl::StrCat("DATA_CATEGORY_", b.category), &category)) {
      basis->set_category(category);
    }
    // BasisKind's values are LegalBasisKind's.
    basis->set_kind(static_cast<pb::LegalBasisKind>(b.kind));
    basis->set_rule_id(b.rule_id);
    basis->set_consent(b.consent);
  }
  for (const std::string& p : record.persons) {
    out.add_persons(absl::StrCat("persons/", p));
  }
  out.set_hash(record.hash);
  return out;
}

GatheredRecords GatherAuditRecords(const std::vector<AuditPeer>& peers,
                                   const std::vector<std::string>& persons,
                                   absl::Time start, absl::Time end,
                                   absl::Time deadline) {
  auto gathering = std::make_shared<Gathering>();
  {
    absl::MutexLock lock(&gathering->mu);
    gathering->results.resize(peers.size());
    gathering->pending = static_cast<int>(peers.size());
  }
  for (size_t i = 0; i < peers.size(); ++i) {
    // Detached: a peer that ignores its deadline must not hold the report;
    // its thread finishes on its own and writes into the shared state only.
    std::thread([gathering, i, source = peers[i].source, persons, start, end,
                 deadline] {
      absl::StatusOr<std::vector<pb::AuditRecord>> records =
          source == nullptr ? absl::StatusOr<std::vector<pb::AuditRecord>>(
                                  absl::UnavailableError("no source"))
                            : AllPages(*source, persons, start, end, deadline);
      absl::MutexLock lock(&gathering->mu);
      PeerResult& result = gathering->results[i];
      result.done = true;
      result.ok = records.ok();
      if (records.ok()) result.records = *std::move(records);
      --gathering->pending;
    }).detach();
  }
  GatheredRecords out;
  absl::MutexLock lock(&gathering->mu);
  gathering->mu.AwaitWithDeadline(
      absl::Condition(
          +[](Gathering* g)
               ABSL_EXCLUSIVE_LOCKS_REQUIRED(g->mu) { return g->pending == 0; },
          gathering.get()),
      deadline);
  for (size_t i = 0; i < peers.size(); ++i) {
    PeerResult& result = gathering->results[i];
    if (result.done && result.ok) {
      out.answered.push_back(peers[i].service);
      out.records.push_back({peers[i].service, std::move(result.records)});
    } else {
      out.missing.push_back(peers[i].service);
    }
  }
  return out;
}

absl::StatusOr<std::vector<AuditPeerAddress>> ParseAuditPeers(
    absl::string_view text) {
  absl::StatusOr<std::vector<events::Destination>> parsed =
      events::ParseDestinations(text);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--audit_peers: ", parsed.status().message()));
  }
  std::vector<AuditPeerAddress> out;
  for (events::Destination& d : *parsed) {
    if (d.name != "cases" && d.name != "courses" && d.name != "placement") {
      return absl::InvalidArgumentError(absl::StrCat(
          "--audit_peers: \"", d.name,
          "\" is not one of the services asked: cases, courses, placement"));
    }
    out.push_back({std::move(d.name), std::move(d.address)});
  }
  return out;
}

}  // namespace lotse::identity
