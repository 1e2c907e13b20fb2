#include "common/audit/audit_service.h"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/agencies/registry.h"
#include "common/api/names.h"
#include "common/api/paging.h"
#include "common/api/time.h"
#include "common/audit/witness_source.h"
#include "common/errors/status.h"
#include "lotse/type/v1/data_category.pb.h"
#include "lotse/type/v1/legal_domain.pb.h"

namespace lotse::audit {
namespace {

using ::lotse::agencies::AuditedCall;
using ::lotse::agencies::LocalAgency;
using ::lotse::storage::Transaction;

constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;
constexpr absl::Duration kDefaultWitnessTimeout = absl::Seconds(5);
// google.protobuf.Timestamp's range, 0001-01-01 to 9999-12-31.
constexpr int64_t kMinSeconds = -62135596800;
constexpr int64_t kMaxSeconds = 253402300799;

absl::Status NotDataProtection() {
  return ErrorWithReason(absl::StatusCode::kPermissionDenied,
                         "NOT_DATA_PROTECTION",
                         "only the data-protection role and Lotse services "
                         "may use the audit service");
}

v1::AuditChain ChainToProto(Chain chain) {
  return chain == Chain::kReads ? v1::AUDIT_CHAIN_READS
                                : v1::AUDIT_CHAIN_CHANGES;
}

// The chains a request names: both for UNSPECIFIED.
std::vector<Chain> ChainsOf(v1::AuditChain chain) {
  if (chain == v1::AUDIT_CHAIN_CHANGES) return {Chain::kChanges};
  if (chain == v1::AUDIT_CHAIN_READS) return {Chain::kReads};
  return {Chain::kChanges, Chain::kReads};
}

void ValidateChain(int chain, FieldViolations* violations) {
  if (!v1::AuditChain_IsValid(chain)) {
    violations->Add("chain", absl::StrCat("unknown chain ", chain));
  }
}

void ToProto(const AuditHead& head, const std::string& service, Chain chain,
             v1::AuditHead* out) {
  out->set_service(service);
  out->set_chain(ChainToProto(chain));
  out->set_seq(head.seq);
  out->set_hash(head.hash);
}

type::v1::DataCategory CategoryOf(const std::string& name) {
  type::v1::DataCategory category = type::v1::DATA_CATEGORY_UNSPECIFIED;
  type::v1::DataCategory_Parse(absl::StrCat("DATA_CATEGORY_", name), &category);
  return category;
}

void ToProto(const std::string& service, const ListedAuditRecord& listed,
             v1::AuditRecord* out) {
  const AuditRecord& r = listed.record;
  out->set_service(service);
  out->set_chain(ChainToProto(listed.chain));
  out->set_seq(r.seq);
  *out->mutable_time() = api::ToTimestamp(r.time);
  const bool is_service = r.legal_domain == server::kServiceDomain;
  out->set_agency(
      absl::StrCat(is_service ? "services/" : "agencies/", r.agency_id));
  type::v1::LegalDomain domain = type::v1::LEGAL_DOMAIN_UNSPECIFIED;
  if (!is_service) {
    type::v1::LegalDomain_Parse(absl::StrCat("LEGAL_DOMAIN_", r.legal_domain),
                                &domain);
  }
  out->set_legal_domain(domain);
  out->set_actor(r.actor);
  out->set_purpose(r.purpose);
  out->set_operation(r.operation);
  out->set_resource(r.resource);
  for (const std::string& c : r.data_categories) {
    // Categories outside the contract's enum (e.g. "STATISTICS") have no
    // value to carry them; the resource and operation still say what it was.
    if (type::v1::DataCategory category = CategoryOf(c);
        category != type::v1::DATA_CATEGORY_UNSPECIFIED) {
      out->add_data_categories(category);
    }
  }
  switch (r.outcome) {
    case Outcome::kAllowed:
      out->set_outcome(v1::AUDIT_OUTCOME_ALLOWED);
      break;
    case Outcome::kDenied:
      out->set_outcome(v1::AUDIT_OUTCOME_DENIED);
      break;
    case Outcome::kError:
      out->set_outcome(v1::AUDIT_OUTCOME_ERROR);
      break;
  }
  out->set_reason(r.reason);
  for (const LegalBasis& b : r.legal_bases) {
    v1::LegalBasis* basis = out->add_legal_bases();
    basis->set_category(CategoryOf(b.category));
    // BasisKind's values are LegalBasisKind's.
    basis->set_kind(static_cast<v1::LegalBasisKind>(b.kind));
    basis->set_rule_id(b.rule_id);
    basis->set_consent(b.consent);
  }
  for (const std::string& p : r.persons) {
    out->add_persons(absl::StrCat("persons/", p));
  }
  out->set_hash(r.hash);
}

// A time field: unset gives `unset`; out of Timestamp's range adds a
// violation.
absl::Time TimeField(bool has, const google::protobuf::Timestamp& ts,
                     absl::Time unset, const std::string& field,
                     FieldViolations* violations) {
  if (!has) return unset;
  if (ts.seconds() < kMinSeconds || ts.seconds() > kMaxSeconds ||
      ts.nanos() < 0 || ts.nanos() > 999999999) {
    violations->Add(field, "is not a valid timestamp");
    return unset;
  }
  return api::FromTimestamp(ts);
}

// Page-token key: "c:<seq>" or "r:<seq>".
std::string CursorKey(const AuditCursor& cursor) {
  return absl::StrCat(cursor.chain == Chain::kReads ? "r:" : "c:",
                      cursor.after_seq);
}

bool ParseCursorKey(absl::string_view key, AuditCursor* cursor) {
  if (absl::ConsumePrefix(&key, "c:")) {
    cursor->chain = Chain::kChanges;
  } else if (absl::ConsumePrefix(&key, "r:")) {
    cursor->chain = Chain::kReads;
  } else {
    return false;
  }
  return absl::SimpleAtoi(key, &cursor->after_seq) && cursor->after_seq >= 0;
}

}  // namespace

MergedIdsFn MergedIdsFromTable(std::string table, std::string merged_column,
                               std::string survivor_column,
                               std::string value_prefix) {
  const std::string sql =
      absl::StrCat("SELECT ", merged_column, " FROM ", table, " WHERE ",
                   survivor_column, " = $1 ORDER BY ", merged_column);
  return [sql, value_prefix](Transaction& tx, const std::string& person_id)
             -> absl::StatusOr<std::vector<std::string>> {
    absl::StatusOr<storage::Rows> rows =
        tx.Query(sql, {storage::Value(absl::StrCat(value_prefix, person_id))});
    if (!rows.ok()) return rows.status();
    std::vector<std::string> out;
    for (const storage::Row& row : *rows) {
      absl::StatusOr<std::string> value = row.GetText(0);
      if (!value.ok()) return value.status();
      absl::string_view id = *value;
      // A value without the prefix names no id this service wrote.
      if (!absl::ConsumePrefix(&id, value_prefix) || id.empty()) continue;
      out.emplace_back(id);
    }
    return out;
  };
}

AuditServiceImpl::AuditServiceImpl(const server::ServiceRuntime& runtime,
                                   AuditServiceOptions options)
    : UnaryService(
          [&runtime] {
            server::HandlerEnv env = runtime.env;
            env.error_domain = "lotse.audit";
            return env;
          }(),
          v1::AuditService::service_full_name()),
      options_([&options] {
        options.env.service = v1::AuditService::service_full_name();
        // Audit calls name persons in their resources themselves.
        options.env.persons_of_resource = nullptr;
        return std::move(options);
      }()),
      dbs_{options_.env.db, options_.env.read_audit_db} {
  Handle("GetAuditHead", this, &AuditServiceImpl::DoGetAuditHead);
  Handle("VerifyAuditChain", this, &AuditServiceImpl::DoVerifyAuditChain);
  Handle("ListAuditRecords", this, &AuditServiceImpl::DoListAuditRecords);
  Handle("ListWitnessedCheckpoints", this,
         &AuditServiceImpl::DoListWitnessedCheckpoints);
}

absl::Status AuditServiceImpl::Admit(AuditedCall& call,
                                     const AuditedCall::Body& body) {
  call.admit_services();
  return call.Read([&](Transaction& tx, const LocalAgency& caller) {
    if (caller.legal_domain != server::kServiceDomain &&
        caller.legal_domain != agencies::kDataProtectionDomain) {
      return NotDataProtection();
    }
    return body(tx, caller);
  });
}

absl::StatusOr<std::vector<std::string>> AuditServiceImpl::ResolvePersons(
    Transaction& tx, const std::string& person_id) const {
  std::vector<std::string> out = {person_id};
  if (!options_.merged_ids) return out;
  std::set<std::string> seen = {person_id};
  std::deque<std::string> queue = {person_id};
  while (!queue.empty()) {
    absl::StatusOr<std::vector<std::string>> merged =
        options_.merged_ids(tx, queue.front());
    queue.pop_front();
    if (!merged.ok()) return merged.status();
    for (std::string& id : *merged) {
      if (!seen.insert(id).second) continue;
      if (static_cast<int>(out.size()) >= kMaxResolvedPersons) {
        return ErrorWithReason(
            absl::StatusCode::kFailedPrecondition, "TOO_MANY_MERGED_IDS",
            absl::StrCat("more than ", kMaxResolvedPersons,
                         " ids were merged into the person"));
      }
      queue.push_back(id);
      out.push_back(std::move(id));
    }
  }
  return out;
}

absl::Status AuditServiceImpl::DoGetAuditHead(const Rc& rc,
                                              const v1::GetAuditHeadRequest&,
                                              v1::GetAuditHeadResponse* out) {
  AuditedCall call(options_.env, rc, "GetAuditHead", "auditChains");
  absl::Status s = Admit(
      call, [](Transaction&, const LocalAgency&) { return absl::OkStatus(); });
  for (Chain chain : {Chain::kChanges, Chain::kReads}) {
    if (!s.ok()) break;
    absl::StatusOr<AuditHead> head = ReadAuditHead(dbs_.For(chain), chain);
    if (!head.ok()) {
      s = head.status();
      break;
    }
    ToProto(*head, options_.service_name, chain, out->add_heads());
  }
  return call.Finish(s);
}

absl::Status AuditServiceImpl::DoVerifyAuditChain(
    const Rc& rc, const v1::VerifyAuditChainRequest& r,
    v1::VerifyAuditChainResponse* out) {
  AuditedCall call(options_.env, rc, "VerifyAuditChain", "auditChains");
  absl::Status s = Admit(call, [&](Transaction&, const LocalAgency&) {
    FieldViolations violations;
    ValidateChain(r.chain(), &violations);
    if (r.witness_timeout_ms() < 0) {
      violations.Add("witness_timeout_ms", "must not be negative");
    }
    return violations.ToStatus();
  });
  if (!s.ok()) return call.Finish(s);
  const absl::Duration timeout =
      r.witness_timeout_ms() == 0 ? kDefaultWitnessTimeout
                                  : absl::Milliseconds(r.witness_timeout_ms());
  out->set_service(options_.service_name);
  // The walk is long for a long chain; it runs after the admission's
  // transaction, each page in a short one of its own.
  for (Chain chain : ChainsOf(r.chain())) {
    VerifyOptions verify;
    verify.chain = chain;
    absl::StatusOr<VerifyReport> report =
        VerifyAuditChain(dbs_.For(chain), verify);
    if (!report.ok()) return call.Finish(report.status());
    v1::ChainVerification* v = out->add_chains();
    v->set_chain(ChainToProto(chain));
    v->set_intact(report->intact);
    v->set_records_checked(report->rows_checked);
    v->set_first_bad_seq(report->first_bad_seq);
    v->set_problem(report->problem);
    ToProto(report->head, options_.service_name, chain, v->mutable_head());
    if (options_.witnesses != nullptr) {
      if (absl::Status w =
              options_.witnesses->CheckChain(dbs_, chain, timeout, v);
          !w.ok()) {
        return call.Finish(w);
      }
    } else {
      // No witnesses: the restores are listed, explaining nothing.
      absl::StatusOr<std::vector<RestoreRecord>> restores =
          ListRestoreRecords(dbs_.For(chain), chain);
      if (!restores.ok()) return call.Finish(restores.status());
      for (const RestoreRecord& r : *restores) {
        v1::ChainRestore* restore = v->add_restores();
        restore->set_seq(r.seq);
        *restore->mutable_time() = api::ToTimestamp(r.time);
        restore->set_source(r.source);
      }
    }
  }
  return call.Finish(absl::OkStatus());
}

absl::Status AuditServiceImpl::DoListAuditRecords(
    const Rc& rc, const v1::ListAuditRecordsRequest& r,
    v1::ListAuditRecordsResponse* out) {
  std::vector<std::string> target_ids;
  const bool person_target =
      api::MatchName(r.person(), api::kPersonName, &target_ids);
  AuditedCall call(options_.env, rc, "ListAuditRecords",
                   person_target ? absl::StrCat(r.person(), "/auditRecords")
                                 : std::string("auditRecords"));
  AuditFilter filter;
  AuditCursor cursor;
  int page_size = kDefaultPageSize;
  // The token is bound to every filter field.
  auto fingerprint = [&r, &filter] {
    return absl::StrCat(
        r.person(), "\n", r.agency(), "\n",
        r.has_start_time() ? absl::ToUnixMicros(filter.start) : -1, "\n",
        r.has_end_time() ? absl::ToUnixMicros(filter.end) : -1, "\n",
        r.chain());
  };
  absl::Status s = Admit(call, [&](Transaction& tx, const LocalAgency&) {
    // May run more than once (see AuditedCall::Read).
    out->clear_resolved_persons();
    filter = AuditFilter{};
    FieldViolations violations;
    if (r.page_size() < 0) {
      violations.Add("page_size", "must not be negative");
    } else if (r.page_size() > 0) {
      page_size = std::min(r.page_size(), kMaxPageSize);
    }
    std::string person_id;
    if (!r.person().empty()) {
      person_id =
          api::ParseNameId(r.person(), api::kPersonName, "person", &violations);
    }
    if (!r.agency().empty()) {
      filter.agency_id =
          api::ParseNameId(r.agency(), api::kAgencyName, "agency", &violations);
    }
    filter.start = TimeField(r.has_start_time(), r.start_time(),
                             absl::InfinitePast(), "start_time", &violations);
    filter.end = TimeField(r.has_end_time(), r.end_time(),
                           absl::InfiniteFuture(), "end_time", &violations);
    if (r.has_start_time() && r.has_end_time() && filter.end <= filter.start) {
      violations.Add("end_time", "must be after start_time");
    }
    ValidateChain(r.chain(), &violations);
    if (r.person().empty() && r.agency().empty() && !r.has_start_time()) {
      violations.Add("person",
                     "one of person, agency or start_time is required");
    }
    const std::vector<Chain> chains = ChainsOf(r.chain());
    if (chains.size() == 1) filter.chain = chains[0];
    cursor.chain = chains[0];
    const std::string key = api::DecodePageToken(r.page_token(), fingerprint(),
                                                 "page_token", &violations);
    if (!key.empty() && (!ParseCursorKey(key, &cursor) ||
                         std::find(chains.begin(), chains.end(),
                                   cursor.chain) == chains.end())) {
      violations.Add("page_token", "is not a token of this listing");
    }
    if (!violations.empty()) return violations.ToStatus();
    if (!person_id.empty()) {
      absl::StatusOr<std::vector<std::string>> ids =
          ResolvePersons(tx, person_id);
      if (!ids.ok()) return ids.status();
      filter.person_ids = *std::move(ids);
      for (const std::string& id : filter.person_ids) {
        out->add_resolved_persons(absl::StrCat("persons/", id));
        call.AddPerson(id);
      }
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return call.Finish(s);

  absl::StatusOr<AuditRecordPage> page =
      ListAuditRecords(dbs_, filter, cursor, page_size);
  if (!page.ok()) return call.Finish(page.status());
  for (const ListedAuditRecord& listed : page->records) {
    ToProto(options_.service_name, listed, out->add_records());
  }
  if (page->next) {
    out->set_next_page_token(
        api::EncodePageToken(fingerprint(), CursorKey(*page->next)));
  }
  return call.Finish(absl::OkStatus());
}

absl::Status AuditServiceImpl::DoListWitnessedCheckpoints(
    const Rc& rc, const v1::ListWitnessedCheckpointsRequest& r,
    v1::ListWitnessedCheckpointsResponse* out) {
  AuditedCall call(options_.env, rc, "ListWitnessedCheckpoints", "auditChains");
  absl::Status s = Admit(
      call, [](Transaction&, const LocalAgency&) { return absl::OkStatus(); });
  if (!s.ok()) return call.Finish(s);
  if (options_.witnesses == nullptr) {
    return call.Finish(absl::UnimplementedError(
        "this service keeps no witnessed checkpoints yet"));
  }
  return call.Finish(options_.witnesses->ListWitnessedCheckpoints(r, out));
}

std::unique_ptr<AuditServiceImpl> MakeAuditService(
    const server::ServiceRuntime& runtime, std::string service_name,
    const agencies::CallEnvironment& env, MergedIdsFn merged_ids,
    std::shared_ptr<WitnessSource> witnesses) {
  AuditServiceOptions options;
  options.service_name = std::move(service_name);
  options.env = env;
  options.merged_ids = std::move(merged_ids);
  // By default, what the other services witnessed (service_main.h).
  options.witnesses = witnesses != nullptr
                          ? std::move(witnesses)
                          : WitnessSourceFor(runtime.witnesses);
  return std::make_unique<AuditServiceImpl>(runtime, std::move(options));
}

}  // namespace lotse::audit
