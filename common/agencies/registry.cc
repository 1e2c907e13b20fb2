#include "common/agencies/registry.h"

#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/api/names.h"
#include "common/errors/status.h"
#include "lotse/identity/v1/events.pb.h"

namespace lotse::agencies {
namespace {

using ::lotse::storage::Row;
using ::lotse::storage::Rows;
using ::lotse::storage::Transaction;

constexpr char kInit[] = R"sql(
CREATE TABLE local_agencies (
  id TEXT PRIMARY KEY,
  certificate_identity TEXT NOT NULL,
  legal_domain TEXT NOT NULL,
  municipality_code TEXT NOT NULL,
  suspended BIGINT NOT NULL,
  update_us BIGINT NOT NULL
);
CREATE INDEX local_agencies_by_certificate
  ON local_agencies (certificate_identity);
CREATE INDEX local_agencies_by_domain
  ON local_agencies (legal_domain, municipality_code, id);
)sql";

constexpr char kColumns[] =
    "id, certificate_identity, legal_domain, municipality_code, suspended, "
    "update_us";

absl::StatusOr<LocalAgency> FromRow(const Row& r) {
  LocalAgency a;
  absl::StatusOr<std::string> id = r.GetText(0), cert = r.GetText(1),
                              domain = r.GetText(2),
                              municipality = r.GetText(3);
  absl::StatusOr<int64_t> suspended = r.GetInt(4), update = r.GetInt(5);
  for (const absl::Status& s :
       {id.status(), cert.status(), domain.status(), municipality.status(),
        suspended.status(), update.status()}) {
    if (!s.ok()) return s;
  }
  a.id = *std::move(id);
  a.certificate_identity = *std::move(cert);
  a.legal_domain = *std::move(domain);
  a.municipality_code = *std::move(municipality);
  a.suspended = *suspended != 0;
  a.update_us = *update;
  return a;
}

absl::StatusOr<std::optional<LocalAgency>> First(absl::StatusOr<Rows> rows) {
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::nullopt;
  absl::StatusOr<LocalAgency> a = FromRow(rows->front());
  if (!a.ok()) return a.status();
  return std::optional<LocalAgency>(*std::move(a));
}

absl::Status Denied(absl::string_view reason, absl::string_view message) {
  return ErrorWithReason(absl::StatusCode::kPermissionDenied, reason, message);
}

}  // namespace

absl::StatusOr<std::optional<LocalAgency>> CallerCache::Find(
    absl::string_view certificate_identity, const Loader& load) {
  uint64_t generation = 0;
  bool bypass = false;
  {
    absl::MutexLock lock(&mu_);
    bypass = changing_ > 0;
    if (!bypass) {
      auto it = entries_.find(certificate_identity);
      if (it != entries_.end()) {
        if (it->second.expires > now_()) {
          ++stats_.hits;
          return std::optional<LocalAgency>(it->second.agency);
        }
        entries_.erase(it);
      }
    }
    generation = generation_;
    ++stats_.loads;
  }
  absl::StatusOr<std::optional<LocalAgency>> found = load();
  if (bypass || !found.ok() || !found->has_value()) return found;
  absl::MutexLock lock(&mu_);
  // A change that began after the read above may have committed since (the
  // generation moved) or may still commit (changing_): what was read may be
  // the old record either way.
  if (changing_ > 0 || generation_ != generation) return found;
  if (entries_.size() >= kMaxEntries) entries_.clear();
  entries_[std::string(certificate_identity)] = Entry{**found, now_() + ttl_};
  return found;
}

void CallerCache::InvalidateWith(storage::Transaction& tx) {
  {
    absl::MutexLock lock(&mu_);
    ++changing_;
  }
  // The hook itself does nothing: the change ends when the transaction
  // drops it, after running it on commit or unrun on a rollback.
  std::shared_ptr<void> end(nullptr, [this](void*) { EndChange(); });
  tx.OnCommit([end = std::move(end)] {});
}

void CallerCache::EndChange() {
  absl::MutexLock lock(&mu_);
  --changing_;
  ++generation_;
  entries_.clear();
}

void CallerCache::Clear() {
  absl::MutexLock lock(&mu_);
  ++generation_;
  entries_.clear();
}

CallerCache::Stats CallerCache::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

CallerCache& LocalCallerCache() {
  static CallerCache* const cache = new CallerCache();
  return *cache;
}

storage::Migration RegistryMigration() {
  return {"common.agencies.0001_init", kInit};
}

std::string DomainName(type::v1::LegalDomain domain) {
  absl::string_view name = type::v1::LegalDomain_Name(domain);
  absl::ConsumePrefix(&name, "LEGAL_DOMAIN_");
  return std::string(name);
}

absl::Status UpsertAgency(Transaction& tx, const LocalAgency& agency) {
  if (agency.id.empty()) return absl::InvalidArgumentError("agency without id");
  // One writer at a time per table, so two deliveries of events of the same
  // agency cannot both insert.
  if (absl::Status s = tx.LockNamed("common.local_agencies"); !s.ok()) return s;
  LocalCallerCache().InvalidateWith(tx);
  absl::StatusOr<Rows> found = tx.Query(
      "SELECT update_us FROM local_agencies WHERE id = $1", {agency.id});
  if (!found.ok()) return found.status();
  const std::vector<storage::Value> values = {
      agency.id,
      agency.certificate_identity.empty() ? agency.id
                                          : agency.certificate_identity,
      agency.legal_domain,
      agency.municipality_code,
      int64_t{agency.suspended ? 1 : 0},
      agency.update_us};
  if (found->empty()) {
    return tx
        .Execute(absl::StrCat("INSERT INTO local_agencies (", kColumns,
                              ") VALUES ($1, $2, $3, $4, $5, $6)"),
                 values)
        .status();
  }
  absl::StatusOr<int64_t> stored = found->front().GetInt(0);
  if (!stored.ok()) return stored.status();
  if (*stored > agency.update_us) return absl::OkStatus();  // an older event
  return tx
      .Execute(
          "UPDATE local_agencies SET certificate_identity = $2, "
          "legal_domain = $3, municipality_code = $4, suspended = $5, "
          "update_us = $6 WHERE id = $1",
          values)
      .status();
}

absl::Status UpsertAgency(Transaction& tx, const identity::v1::Agency& agency) {
  std::vector<std::string> ids;
  if (!api::MatchName(agency.name(), api::kAgencyName, &ids)) {
    return absl::InvalidArgumentError("agency event without a valid name");
  }
  LocalAgency row;
  row.id = std::move(ids.front());
  row.certificate_identity = agency.certificate_identity();
  row.legal_domain = DomainName(agency.legal_domain());
  row.municipality_code = agency.municipality_code();
  row.suspended = agency.state() == identity::v1::AGENCY_STATE_SUSPENDED;
  row.update_us = agency.update_time().seconds() * 1000000 +
                  agency.update_time().nanos() / 1000;
  return UpsertAgency(tx, row);
}

absl::StatusOr<bool> ApplyAgencyEvent(Transaction& tx,
                                      const google::protobuf::Any& payload) {
  identity::v1::AgencyRegistered registered;
  identity::v1::AgencyUpdated updated;
  identity::v1::AgencySuspended suspended;
  identity::v1::AgencyReactivated reactivated;
  const identity::v1::Agency* agency = nullptr;
  if (payload.UnpackTo(&registered)) {
    agency = &registered.agency();
  } else if (payload.UnpackTo(&updated)) {
    agency = &updated.agency();
  } else if (payload.UnpackTo(&suspended)) {
    agency = &suspended.agency();
  } else if (payload.UnpackTo(&reactivated)) {
    agency = &reactivated.agency();
  } else {
    return false;
  }
  if (absl::Status s = UpsertAgency(tx, *agency); !s.ok()) return s;
  return true;
}

absl::StatusOr<std::optional<LocalAgency>> ReadAgency(Transaction& tx,
                                                      absl::string_view id) {
  return First(tx.Query(
      absl::StrCat("SELECT ", kColumns, " FROM local_agencies WHERE id = $1"),
      {std::string(id)}));
}

absl::StatusOr<std::optional<LocalAgency>> FindAgencyByCertificate(
    Transaction& tx, absl::string_view certificate_identity) {
  // Should two agencies ever claim one identity (a rotation seen out of
  // order), the newest record wins.
  return First(tx.Query(
      absl::StrCat("SELECT ", kColumns,
                   " FROM local_agencies WHERE certificate_identity = $1 "
                   "ORDER BY update_us DESC LIMIT 1"),
      {std::string(certificate_identity)}));
}

absl::StatusOr<std::vector<LocalAgency>> ListActiveAgencies(
    Transaction& tx, absl::string_view legal_domain,
    absl::string_view municipality_code) {
  absl::StatusOr<Rows> rows =
      municipality_code.empty()
          ? tx.Query(absl::StrCat("SELECT ", kColumns,
                                  " FROM local_agencies WHERE legal_domain = "
                                  "$1 AND suspended = 0 ORDER BY id"),
                     {std::string(legal_domain)})
          : tx.Query(
                absl::StrCat("SELECT ", kColumns,
                             " FROM local_agencies WHERE legal_domain = "
                             "$1 AND municipality_code = $2 AND "
                             "suspended = 0 ORDER BY id"),
                {std::string(legal_domain), std::string(municipality_code)});
  if (!rows.ok()) return rows.status();
  std::vector<LocalAgency> out;
  out.reserve(rows->size());
  for (const Row& r : *rows) {
    absl::StatusOr<LocalAgency> a = FromRow(r);
    if (!a.ok()) return a.status();
    out.push_back(*std::move(a));
  }
  return out;
}

absl::StatusOr<LocalAgency> ResolveCaller(
    Transaction& tx, const server::CallerIdentity& caller) {
  absl::StatusOr<std::optional<LocalAgency>> found = LocalCallerCache().Find(
      caller.agency_id,
      [&] { return FindAgencyByCertificate(tx, caller.agency_id); });
  if (!found.ok()) return found.status();
  if (!found->has_value()) {
    return Denied("UNKNOWN_AGENCY",
                  "the client certificate belongs to no registered agency");
  }
  if ((*found)->legal_domain != caller.legal_domain) {
    return Denied("LEGAL_DOMAIN_MISMATCH",
                  "the client certificate's legal domain differs from the "
                  "registered one");
  }
  if ((*found)->suspended) {
    return Denied("AGENCY_SUSPENDED", "the agency is suspended");
  }
  return **std::move(found);
}

namespace {

bool IsUnknownAgency(const absl::Status& status) {
  return status.code() == absl::StatusCode::kPermissionDenied &&
         ReasonOf(status).value_or("") == "UNKNOWN_AGENCY";
}

}  // namespace

absl::Status LearnUnknownCaller(storage::Database& db,
                                const AgencyLookup& lookup,
                                const server::CallerIdentity& caller,
                                absl::Time deadline, absl::Status refusal) {
  if (!lookup || !IsUnknownAgency(refusal)) return refusal;
  // The dev PKI and most deployments bind the agency id itself into the
  // certificate, so the certificate's identity names the agency to ask for.
  absl::StatusOr<identity::v1::Agency> agency =
      lookup(absl::StrCat("agencies/", caller.agency_id), deadline);
  if (!agency.ok()) {
    const absl::StatusCode code = agency.status().code();
    if (code == absl::StatusCode::kNotFound ||
        code == absl::StatusCode::kUnimplemented) {
      return refusal;
    }
    return ErrorWithReason(
        absl::StatusCode::kUnavailable, "AGENCY_REGISTRY_UNAVAILABLE",
        "the calling agency is not yet known here and identity could not "
        "confirm it in time; retry");
  }
  if (absl::Status s = storage::RunInTransaction(
          db, [&](Transaction& tx) { return UpsertAgency(tx, *agency); });
      !s.ok()) {
    return s;
  }
  const std::string& bound = agency->certificate_identity().empty()
                                 ? caller.agency_id
                                 : agency->certificate_identity();
  if (bound != caller.agency_id) return refusal;
  return absl::OkStatus();
}

absl::Status LearnNamedAgency(storage::Database& db, const AgencyLookup& lookup,
                              absl::string_view agency, absl::Time deadline,
                              absl::Status refusal) {
  if (!lookup || refusal.code() != absl::StatusCode::kNotFound ||
      ReasonOf(refusal).value_or("") != "AGENCY_NOT_FOUND" ||
      !absl::StartsWith(agency, "agencies/")) {
    return refusal;
  }
  absl::StatusOr<identity::v1::Agency> known = lookup(agency, deadline);
  if (!known.ok()) {
    const absl::StatusCode code = known.status().code();
    if (code == absl::StatusCode::kNotFound ||
        code == absl::StatusCode::kUnimplemented) {
      return refusal;
    }
    return ErrorWithReason(
        absl::StatusCode::kUnavailable, "AGENCY_REGISTRY_UNAVAILABLE",
        "the agency is not yet known here and identity could not confirm it "
        "in time; retry");
  }
  if (known->name() != agency) return refusal;
  return storage::RunInTransaction(
      db, [&](Transaction& tx) { return UpsertAgency(tx, *known); });
}

absl::Status RunResolvingCaller(storage::Database& db,
                                const AgencyLookup& lookup,
                                const server::RequestContext& rc,
                                const std::function<absl::Status()>& attempt) {
  absl::Status status = attempt();
  if (!lookup || !IsUnknownAgency(status)) return status;
  absl::Status learned =
      LearnUnknownCaller(db, lookup, rc.caller, rc.deadline, status);
  if (!learned.ok()) return learned;
  return attempt();
}

}  // namespace lotse::agencies
