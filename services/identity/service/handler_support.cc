#include "services/identity/service/handler_support.h"

#include <utility>

#include "absl/time/clock.h"
#include "common/errors/status.h"
#include "services/identity/domain/agency.h"

namespace lotse::identity {

using ::lotse::agencies::LocalAgency;
using ::lotse::server::RequestContext;
using ::lotse::storage::Transaction;

absl::CivilDay TodayInGermany() {
  static const absl::TimeZone* const zone = [] {
    auto* tz = new absl::TimeZone(absl::UTCTimeZone());
    if (!absl::LoadTimeZone("Europe/Berlin", tz)) *tz = absl::UTCTimeZone();
    return tz;
  }();
  return absl::ToCivilDay(absl::Now(), *zone);
}

std::string PersonTarget(absl::string_view name, absl::string_view suffix) {
  FieldViolations ignored;
  const std::string id = ParsePersonName(name, "", &ignored);
  return id.empty() ? "persons" : absl::StrCat(PersonResourceName(id), suffix);
}

void AuditPerson(agencies::AuditedCall& call, std::string resource,
                 std::string reason) {
  call.TouchResource(std::move(resource), {kCoreIdentity}, std::move(reason));
}

absl::Status HideAbsentPerson(const AccessPolicy& policy,
                              const RequestContext& rc,
                              const LocalAgency& caller, DataCategory category,
                              absl::Status status) {
  if (rc.caller.is_service() || ReasonOf(status) != "PERSON_NOT_FOUND") {
    return status;
  }
  return RefusalWithoutStanding(policy, SubjectOf(caller), category, rc.purpose,
                                std::move(status));
}

absl::Status RequireNotAdministration(const LocalAgency& caller) {
  if (caller.legal_domain != kAdministrationDomain &&
      caller.legal_domain != agencies::kDataProtectionDomain) {
    return absl::OkStatus();
  }
  return ErrorWithReason(absl::StatusCode::kPermissionDenied,
                         "WRONG_LEGAL_DOMAIN",
                         "administering and data-protection agencies do not "
                         "work with persons");
}

absl::Status MergedError(const PersonLookup& lookup) {
  return ErrorWithReason(absl::StatusCode::kFailedPrecondition, "PERSON_MERGED",
                         "the person was merged into another; use the "
                         "survivor",
                         {{"survivor", lookup.person.name()}});
}

absl::StatusOr<PersonLookup> FindPerson(Transaction& tx,
                                        const DuplicateMatcher& matcher,
                                        const std::string& id, bool for_write) {
  PersonStore store(tx, matcher);
  absl::StatusOr<PersonLookup> found = store.Get(id);
  if (!found.ok()) return found.status();
  if (for_write && found->merged) {
    return ErrorWithReason(
        absl::StatusCode::kFailedPrecondition, "PERSON_MERGED",
        "the person was merged into another; write to the survivor",
        {{"survivor", PersonResourceName(found->id)}});
  }
  return found;
}

absl::StatusOr<PersonAccess> DecidePersonAccess(Transaction& tx,
                                                const AccessPolicy& policy,
                                                const RequestContext& rc,
                                                const LocalAgency& caller,
                                                const PersonLookup& person) {
  absl::StatusOr<Standing> standing =
      LoadStanding(tx, person.id, person.person.creating_agency(), caller.id,
                   /*with_residence=*/false);
  if (!standing.ok()) return standing.status();
  const AccessSubject subject = SubjectOf(caller);
  const absl::Time now = absl::Now();
  PersonAccess access;
  access.core = DecideFromStanding(policy, subject, person.id, *standing,
                                   DataCategory::kCoreIdentity, rc.purpose, {},
                                   false, now);
  access.contact =
      DecideFromStanding(policy, subject, person.id, *standing,
                         DataCategory::kContact, rc.purpose, {}, false, now);
  return access;
}

absl::StatusOr<PersonAccess> RequireCoreIdentityRead(
    Transaction& tx, const AccessPolicy& policy, const RequestContext& rc,
    const LocalAgency& caller, const PersonLookup& person) {
  absl::StatusOr<PersonAccess> access =
      DecidePersonAccess(tx, policy, rc, caller, person);
  if (!access.ok()) return access.status();
  if (!access->core.allowed) return DeniedError(access->core);
  return access;
}

void ShowTo(const PersonAccess& access, v1::Person* person) {
  if (access.contact.allowed) return;
  person->clear_contact();
  person->add_withheld_categories(type::v1::DATA_CATEGORY_CONTACT);
}

absl::StatusOr<AccessDecision> DecideAccess(
    Transaction& tx, const AccessPolicy& policy, const PersonLookup& person,
    const AccessSubject& subject, DataCategory category,
    const std::string& purpose, std::vector<Relation> asserted, bool wrote_data,
    absl::Time now) {
  absl::StatusOr<Standing> standing = LoadStanding(
      tx, person.id, person.person.creating_agency(), subject.agency_id,
      /*with_residence=*/category == DataCategory::kResidenceStatus);
  if (!standing.ok()) return standing.status();
  return DecideFromStanding(policy, subject, person.id, *standing, category,
                            purpose, std::move(asserted), wrote_data, now);
}

absl::Status RequireRead(Transaction& tx, const AccessPolicy& policy,
                         const PersonLookup& person, const LocalAgency& caller,
                         DataCategory category, const RequestContext& rc) {
  if (rc.caller.is_service()) return absl::OkStatus();
  absl::StatusOr<AccessDecision> decision =
      DecideAccess(tx, policy, person, SubjectOf(caller), category, rc.purpose,
                   {}, false, absl::Now());
  if (!decision.ok()) return decision.status();
  if (!decision->allowed) return DeniedError(*decision);
  return absl::OkStatus();
}

v1::ResidenceStatusChanged ResidenceChanged(const ResidenceRecord& record) {
  v1::ResidenceStatusChanged changed;
  changed.set_person(PersonResourceName(record.person_id));
  changed.set_residence_status(
      ResidenceResourceName(record.person_id, record.id));
  changed.set_title_kind(record.fields.title_kind());
  *changed.mutable_valid_from() = record.fields.valid_from();
  if (record.fields.has_valid_until()) {
    *changed.mutable_valid_until() = record.fields.valid_until();
  }
  changed.set_work_permission(record.fields.work_permission());
  changed.set_integration_course_obligation(
      record.fields.integration_course_obligation());
  changed.set_recording_agency(record.recording_agency);
  return changed;
}

}  // namespace lotse::identity
