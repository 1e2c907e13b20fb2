#include "common/agencies/audited_call.h"

#include <algorithm>
#include <optional>
#include <tuple>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/audit/audit_log.h"
#include "common/events/outbox.h"
#include "common/server/log.h"

namespace lotse::agencies {

CallEnvironment CallEnvironment::ForRuntime(
    std::string service, const server::ServiceRuntime& runtime,
    AgencyLookup lookup_agency) {
  CallEnvironment env;
  env.service = std::move(service);
  env.db = runtime.database;
  env.commit_write =
      [&runtime](
          const std::function<absl::Status(storage::Transaction&)>& body) {
        return runtime.Write(body);
      };
  env.read_audit_db = runtime.read_audit_database != nullptr
                          ? runtime.read_audit_database
                          : runtime.database;
  env.commit_read_audit =
      [&runtime](
          const std::function<absl::Status(storage::Transaction&)>& body) {
        return runtime.WriteReadAudit(body);
      };
  env.lookup_agency = std::move(lookup_agency);
  return env;
}

using ::lotse::storage::Transaction;

bool AuditedCall::Entry::operator<(const Entry& o) const {
  return std::tie(resource, categories, reason) <
         std::tie(o.resource, o.categories, o.reason);
}

bool AuditedCall::Entry::operator==(const Entry& o) const {
  return resource == o.resource && categories == o.categories &&
         reason == o.reason;
}

AuditedCall::AuditedCall(const CallEnvironment& env,
                         const server::RequestContext& rc,
                         absl::string_view method, std::string target)
    : env_(env),
      rc_(rc),
      method_(absl::StrCat(env.service, "/", method)),
      target_(std::move(target)) {
  // Until a phase resolves the caller, audit records name the certificate's
  // identity: a call refused as UNKNOWN_AGENCY is still attributable.
  caller_.id = rc.caller.agency_id;
  caller_.legal_domain = rc.caller.legal_domain;
}

absl::Status AuditedCall::Resolve(Transaction& tx) {
  if (admit_services_ && rc_.caller.is_service()) {
    // Authenticated by its certificate alone: services are in no registry.
    caller_ = LocalAgency{};
    caller_.id = rc_.caller.agency_id;
    caller_.legal_domain = server::kServiceDomain;
    return absl::OkStatus();
  }
  absl::StatusOr<LocalAgency> resolved =
      env_.resolve_caller ? env_.resolve_caller(tx, rc_.caller)
                          : ResolveCaller(tx, rc_.caller);
  if (!resolved.ok()) return resolved.status();
  caller_ = *std::move(resolved);
  return absl::OkStatus();
}

absl::Status AuditedCall::Attempt(
    const std::function<absl::Status()>& attempt) {
  if (env_.resolve_caller) return attempt();
  return RunResolvingCaller(*env_.db, env_.lookup_agency, rc_, attempt);
}

absl::Status AuditedCall::Read(const Body& body) {
  const size_t mark = trail_.size();
  const size_t appended_mark = appended_.size();
  const size_t bases_mark = bases_.size();
  absl::Status status = Attempt([&] {
    return storage::RunInTransaction(
        *env_.db,
        [&](Transaction& tx) -> absl::Status {
          trail_.resize(mark);
          appended_.resize(appended_mark);
          bases_.resize(bases_mark);
          if (absl::Status s = Resolve(tx); !s.ok()) return s;
          absl::Status s = body(tx, caller_);
          // Also for a refusal: it is audited as access to the person.
          if (absl::Status p = ResolvePersons(tx); !p.ok() && s.ok()) return p;
          return s;
        },
        storage::TxMode::kReadOnly);
  });
  if (status.ok()) {
    caller_resolved_ = true;
  } else {
    trail_.resize(mark);
    appended_.resize(appended_mark);
    bases_.resize(bases_mark);
  }
  return status;
}

absl::Status AuditedCall::Write(const Body& body) {
  const size_t mark = trail_.size();
  const size_t appended_mark = appended_.size();
  const size_t bases_mark = bases_.size();
  // The body may run on a group committer's thread; its events still count
  // as this call's (server::RelationsReachIdentity).
  events::CommittedEvents* const sink =
      events::CollectCommittedEvents::Current();
  absl::Status status = Attempt([&] {
    return env_.commit_write([&](Transaction& tx) -> absl::Status {
      const events::CollectCommittedEvents collect(sink);
      trail_.resize(mark);
      appended_.resize(appended_mark);
      bases_.resize(bases_mark);
      if (!caller_resolved_) {
        if (absl::Status s = Resolve(tx); !s.ok()) return s;
      }
      if (absl::Status s = body(tx, caller_); !s.ok()) {
        // Best effort: lets the refusal name the person.
        ResolvePersons(tx).IgnoreError();
        return s;
      }
      if (absl::Status s = ResolvePersons(tx); !s.ok()) return s;
      return AppendAudits(tx, audit::Chain::kChanges);
    });
  });
  if (status.ok()) {
    audited_ = true;
    caller_resolved_ = true;
  } else {
    trail_.resize(mark);
    appended_.resize(appended_mark);
    bases_.resize(bases_mark);
  }
  return status;
}

void AuditedCall::Touch(const std::string& person, const std::string& record,
                        std::vector<std::string> categories) {
  std::sort(categories.begin(), categories.end());
  trail_.push_back(
      {absl::StrCat(person, "/", record), std::move(categories), ""});
}

void AuditedCall::TouchResource(std::string resource,
                                std::vector<std::string> categories,
                                std::string reason) {
  std::sort(categories.begin(), categories.end());
  trail_.push_back(
      {std::move(resource), std::move(categories), std::move(reason)});
}

void AuditedCall::AppendRecord(audit::AuditRecord record) {
  appended_.push_back(std::move(record));
}

void AuditedCall::AddPerson(absl::string_view person) {
  absl::ConsumePrefix(&person, "persons/");
  if (person.empty()) return;
  persons_.emplace_back(person);
}

void AuditedCall::AddLegalBasis(audit::LegalBasis basis, std::string resource) {
  bases_.push_back({std::move(resource), "", std::move(basis)});
}

void AuditedCall::AddLegalBasisFor(absl::string_view person,
                                   audit::LegalBasis basis) {
  absl::ConsumePrefix(&person, "persons/");
  if (person.empty()) return;
  bases_.push_back({"", std::string(person), std::move(basis)});
}

void AuditedCall::set_target_categories(std::vector<std::string> categories) {
  target_categories_ = std::move(categories);
}

void AuditedCall::set_person_target(const std::string& person,
                                    const std::string& record,
                                    std::vector<std::string> categories) {
  target_ = absl::StrCat(person, "/", record);
  std::sort(categories.begin(), categories.end());
  target_categories_ = std::move(categories);
}

std::vector<AuditedCall::Entry> AuditedCall::Entries() const {
  if (trail_.empty()) return {{target_, target_categories_, ""}};
  std::vector<Entry> out = trail_;
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

absl::Status AuditedCall::ResolvePersons(Transaction& tx) {
  if (env_.persons_of_resource) {
    std::vector<std::string> resources = {target_};
    for (const Entry& e : trail_) resources.push_back(e.resource);
    for (const std::string& resource : resources) {
      if (resource.empty() || absl::StartsWith(resource, "persons/") ||
          resource_persons_.count(resource) > 0) {
        continue;
      }
      absl::StatusOr<std::vector<std::string>> persons =
          env_.persons_of_resource(tx, resource);
      if (!persons.ok()) return persons.status();
      resource_persons_[resource] = *std::move(persons);
    }
  }
  return ResolveOwnBases(tx);
}

bool AuditedCall::OwnBasesPending() const {
  if (!env_.basis_of_access) return false;
  for (const Entry& e : Entries()) {
    for (const std::string& category : e.categories) {
      if (!e.resource.empty() &&
          own_bases_asked_.count({e.resource, category}) == 0) {
        return true;
      }
    }
  }
  return false;
}

absl::Status AuditedCall::ResolveOwnBases(Transaction& tx) {
  if (!env_.basis_of_access) return absl::OkStatus();
  std::vector<Entry> entries = trail_;
  entries.push_back({target_, target_categories_, ""});
  for (const Entry& e : entries) {
    for (const std::string& category : e.categories) {
      auto key = std::make_pair(e.resource, category);
      if (e.resource.empty() || own_bases_asked_.count(key) > 0) continue;
      absl::StatusOr<std::optional<audit::LegalBasis>> basis =
          env_.basis_of_access(tx, caller_, e.resource, category);
      if (!basis.ok()) return basis.status();
      if (*basis) own_bases_[key] = **basis;
      own_bases_asked_.insert(std::move(key));
    }
  }
  return absl::OkStatus();
}

audit::AuditRecord AuditedCall::RecordOf(Entry entry, bool allowed,
                                         audit::Chain chain) const {
  audit::AuditRecord record;
  record.agency_id = caller_.id;
  record.legal_domain = rc_.caller.legal_domain;
  record.actor = rc_.actor;
  record.purpose = rc_.purpose;
  record.operation = method_;
  record.persons = persons_;
  if (auto it = resource_persons_.find(entry.resource);
      it != resource_persons_.end()) {
    record.persons.insert(record.persons.end(), it->second.begin(),
                          it->second.end());
  }
  record.resource = std::move(entry.resource);
  record.data_categories = std::move(entry.categories);
  record.reason = std::move(entry.reason);
  if (!allowed) return record;
  // The ground of each category: as given, else what the caller is, else
  // what the service knows, else OWNER for what the caller wrote.
  std::optional<audit::BasisKind> implied;
  if (caller_.legal_domain == server::kServiceDomain) {
    implied = audit::BasisKind::kService;
  } else if (caller_.legal_domain == kDataProtectionDomain) {
    implied = audit::BasisKind::kDataProtection;
  }
  const auto about = [&](const std::string& person) {
    return record.resource == absl::StrCat("persons/", person) ||
           absl::StartsWith(record.resource,
                            absl::StrCat("persons/", person, "/")) ||
           std::find(record.persons.begin(), record.persons.end(), person) !=
               record.persons.end();
  };
  for (const std::string& category : record.data_categories) {
    bool given = false;
    for (const GivenBasis& g : bases_) {
      if (g.basis.category != category ||
          (!g.resource.empty() && g.resource != record.resource) ||
          (!g.person.empty() && !about(g.person))) {
        continue;
      }
      given = true;
      if (std::find(record.legal_bases.begin(), record.legal_bases.end(),
                    g.basis) == record.legal_bases.end()) {
        record.legal_bases.push_back(g.basis);
      }
    }
    if (given) continue;
    if (implied) {
      record.legal_bases.push_back({category, *implied, "", ""});
    } else if (auto own = own_bases_.find({record.resource, category});
               own != own_bases_.end()) {
      record.legal_bases.push_back(own->second);
    } else if (chain == audit::Chain::kChanges) {
      record.legal_bases.push_back(
          {category, audit::BasisKind::kOwner, "", ""});
    }
  }
  return record;
}

absl::Status AuditedCall::AppendAudits(Transaction& tx, audit::Chain chain) {
  for (Entry& entry : Entries()) {
    audit::AuditRecord record =
        RecordOf(std::move(entry), /*allowed=*/true, chain);
    if (absl::Status s = audit::AppendAudit(tx, record, chain); !s.ok()) {
      return s;
    }
  }
  for (const audit::AuditRecord& record : appended_) {
    if (absl::Status s = audit::AppendAudit(tx, record, chain); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status AuditedCall::Finish(absl::Status status) {
  if (status.ok()) {
    if (audited_) return status;
    if (personal_only_ && trail_.empty() && appended_.empty() &&
        target_categories_.empty()) {
      return status;
    }
    if (OwnBasesPending()) {
      // Categories named after the last phase (e.g. those identity
      // allowed) get the service's own ground from a read of their own.
      absl::Status resolved = storage::RunInTransaction(
          *env_.db, [&](Transaction& tx) { return ResolveOwnBases(tx); },
          storage::TxMode::kReadOnly);
      if (!resolved.ok()) return resolved;
    }
    auto append = [&](Transaction& tx) {
      return AppendAudits(tx, audit::Chain::kReads);
    };
    return env_.commit_read_audit ? env_.commit_read_audit(append)
                                  : env_.commit_write(append);
  }
  storage::Database& read_audit_db =
      env_.read_audit_db != nullptr ? *env_.read_audit_db : *env_.db;
  if (env_.persons_of_resource && resource_persons_.count(target_) == 0) {
    // Refused before a phase looked: look the target's persons up now.
    // Best effort; the refusal is audited either way.
    storage::RunInTransaction(
        *env_.db, [&](Transaction& tx) { return ResolvePersons(tx); },
        storage::TxMode::kReadOnly)
        .IgnoreError();
  }
  for (Entry& entry : Entries()) {
    audit::AuditRecord record =
        RecordOf(std::move(entry), /*allowed=*/false, audit::Chain::kReads);
    absl::Status audited = audit::AppendFailedCallAudit(
        read_audit_db, std::move(record), status, audit::Chain::kReads);
    if (!audited.ok()) {
      // The caller still gets the call's own error; the lost record is
      // visible to operators (method only: no personal data in logs).
      server::Log(
          server::LogLevel::kError, "audit of failed call not written",
          {{"operation", method_}, {"error", std::string(audited.message())}});
    }
  }
  return status;
}

}  // namespace lotse::agencies
