#include "services/identity/service/relation_events.h"

#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/api/names.h"
#include "common/errors/status.h"
#include "lotse/cases/v1/events.pb.h"
#include "lotse/courses/v1/events.pb.h"
#include "lotse/identity/v1/events.pb.h"
#include "lotse/placement/v1/events.pb.h"
#include "services/identity/domain/agency.h"
#include "services/identity/domain/person.h"
#include "services/identity/store/lifecycle_store.h"
#include "services/identity/store/relation_store.h"

namespace lotse::identity {
namespace {

using ::lotse::storage::Transaction;

// The names other services give the resources relations rest on.
constexpr char kCase[] = "cases/{case}";
constexpr char kBooking[] = "courses/{course}/bookings/{booking}";
constexpr char kEntitlement[] = "entitlements/{entitlement}";
constexpr char kPlacement[] = "placements/{placement}";

// Ids out of the names an event carries; a malformed name is a violation.
class Names {
 public:
  std::string Person(const std::string& name, const std::string& field) {
    return ParsePersonName(name, field, &violations_);
  }
  std::string Agency(const std::string& name, const std::string& field) {
    return ParseAgencyName(name, field, &violations_);
  }
  // A resource of another service of the form `pattern`, used only as a
  // grouping key.
  std::string Source(const std::string& name, absl::string_view pattern,
                     const std::string& field) {
    api::ParseName(name, pattern, field, &violations_);
    return name;
  }
  // The violations name the event's fields; the relay's log shows them.
  absl::Status Check() const { return violations_.ToStatus(); }

 private:
  FieldViolations violations_;
};

// The survivor's id when `person_id` was merged (merges re-point earlier
// merges, so one hop suffices); the id itself otherwise, also when identity
// does not know it (the relation waits for nobody).
absl::StatusOr<std::string> Survivor(Transaction& tx,
                                     const std::string& person_id) {
  absl::StatusOr<storage::Rows> rows = tx.Query(
      "SELECT merged_into FROM identity_persons WHERE id = $1", {person_id});
  if (!rows.ok()) return rows.status();
  if (rows->empty() || (*rows)[0].IsNull(0)) return person_id;
  return (*rows)[0].GetText(0);
}

absl::Status Grant(Transaction& tx, const std::string& person_id,
                   const std::string& agency_id, Relation relation,
                   const std::string& source) {
  absl::StatusOr<std::string> person = Survivor(tx, person_id);
  if (!person.ok()) return person.status();
  // Nothing new is recorded about an erased person: an event another
  // service sent before it applied the erasure may still arrive.
  absl::StatusOr<std::optional<ErasureRecord>> erased =
      ReadErasure(tx, *person);
  if (!erased.ok()) return erased.status();
  if (erased->has_value()) return absl::OkStatus();
  return GrantRelation(tx, *person, agency_id, relation, source);
}

// A service's report on an erasure, for GetErasureStatus. A report for a
// person identity holds no erasure of cannot come from Lotse's own flow (the
// erasure row commits with the PersonErased event that asks for the
// report); it is refused, so the relay keeps it and retries, and its log
// shows the problem, instead of the report being lost.
absl::Status Apply(Transaction& tx,
                   const lotse::identity::v1::ErasureReported& e) {
  return RecordErasureReport(tx, e, absl::Now());
}

absl::Status Apply(Transaction& tx, const lotse::cases::v1::CaseOpened& e) {
  Names n;
  const std::string source = n.Source(e.case_name(), kCase, "case_name");
  const std::string person = n.Person(e.person(), "person");
  const std::string owner = n.Agency(e.owner_agency(), "owner_agency");
  if (absl::Status s = n.Check(); !s.ok()) return s;
  return Grant(tx, person, owner, Relation::kCaseOwner, source);
}

absl::Status Apply(Transaction& tx,
                   const lotse::cases::v1::CaseTransferred& e) {
  Names n;
  const std::string source = n.Source(e.case_name(), kCase, "case_name");
  const std::string person = n.Person(e.person(), "person");
  const std::string from = n.Agency(e.from_agency(), "from_agency");
  const std::string to = n.Agency(e.to_agency(), "to_agency");
  if (absl::Status s = n.Check(); !s.ok()) return s;
  if (absl::Status s =
          RevokeSourceRelation(tx, source, from, Relation::kCaseOwner);
      !s.ok()) {
    return s;
  }
  return Grant(tx, person, to, Relation::kCaseOwner, source);
}

absl::Status Apply(Transaction& tx, const lotse::cases::v1::CaseClosed& e) {
  Names n;
  const std::string source = n.Source(e.case_name(), kCase, "case_name");
  if (absl::Status s = n.Check(); !s.ok()) return s;
  return RevokeSource(tx, source);
}

absl::Status Apply(Transaction& tx,
                   const lotse::cases::v1::CasePersonChanged& e) {
  Names n;
  const std::string source = n.Source(e.case_name(), kCase, "case_name");
  const std::string from = n.Person(e.from_person(), "from_person");
  const std::string to = n.Person(e.to_person(), "to_person");
  if (absl::Status s = n.Check(); !s.ok()) return s;
  absl::StatusOr<std::string> from_survivor = Survivor(tx, from);
  if (!from_survivor.ok()) return from_survivor.status();
  absl::StatusOr<std::string> to_survivor = Survivor(tx, to);
  if (!to_survivor.ok()) return to_survivor.status();
  return MoveSourcePerson(tx, source, *from_survivor, *to_survivor);
}

absl::Status Apply(Transaction& tx, const lotse::cases::v1::StepReferred& e) {
  Names n;
  const std::string source = n.Source(e.case_name(), kCase, "case_name");
  const std::string person = n.Person(e.person(), "person");
  const std::string receiver =
      n.Agency(e.receiving_agency(), "receiving_agency");
  if (absl::Status s = n.Check(); !s.ok()) return s;
  return Grant(tx, person, receiver, Relation::kCaseParticipant, source);
}

// A booking's provider and booking agency serve the person, whether the
// seat was booked at once or came from the waitlist.
absl::Status ApplyBooked(Transaction& tx,
                         const lotse::courses::v1::BookingContext& c) {
  Names n;
  const std::string source = n.Source(c.booking(), kBooking, "context.booking");
  const std::string person = n.Person(c.person(), "context.person");
  const std::string provider =
      n.Agency(c.provider_agency(), "context.provider_agency");
  const std::string booker =
      n.Agency(c.booking_agency(), "context.booking_agency");
  if (absl::Status s = n.Check(); !s.ok()) return s;
  if (absl::Status s =
          Grant(tx, person, provider, Relation::kServesPerson, source);
      !s.ok()) {
    return s;
  }
  return Grant(tx, person, booker, Relation::kServesPerson, source);
}

absl::Status Apply(Transaction& tx, const lotse::courses::v1::CourseBooked& e) {
  return ApplyBooked(tx, e.context());
}
absl::Status Apply(Transaction& tx,
                   const lotse::courses::v1::WaitlistPromoted& e) {
  return ApplyBooked(tx, e.context());
}

template <typename BookingEnded>
absl::Status ApplyBookingEnded(Transaction& tx, const BookingEnded& e) {
  Names n;
  const std::string source =
      n.Source(e.context().booking(), kBooking, "context.booking");
  if (absl::Status s = n.Check(); !s.ok()) return s;
  return RevokeSource(tx, source);
}

absl::Status Apply(Transaction& tx,
                   const lotse::courses::v1::BookingCancelled& e) {
  return ApplyBookingEnded(tx, e);
}
absl::Status Apply(Transaction& tx,
                   const lotse::courses::v1::BookingHoldExpired& e) {
  return ApplyBookingEnded(tx, e);
}

absl::Status Apply(Transaction& tx,
                   const lotse::courses::v1::EntitlementRecorded& e) {
  Names n;
  const std::string source =
      n.Source(e.entitlement(), kEntitlement, "entitlement");
  const std::string person = n.Person(e.person(), "person");
  const std::string issuer = n.Agency(e.issuing_agency(), "issuing_agency");
  if (absl::Status s = n.Check(); !s.ok()) return s;
  return Grant(tx, person, issuer, Relation::kServesPerson, source);
}

absl::Status Apply(Transaction& tx,
                   const lotse::courses::v1::EntitlementRevoked& e) {
  Names n;
  const std::string source =
      n.Source(e.entitlement(), kEntitlement, "entitlement");
  if (absl::Status s = n.Check(); !s.ok()) return s;
  return RevokeSource(tx, source);
}

absl::Status Apply(Transaction& tx,
                   const lotse::placement::v1::PlacementProposed& e) {
  Names n;
  const auto& c = e.context();
  const std::string source =
      n.Source(c.placement(), kPlacement, "context.placement");
  const std::string person = n.Person(c.person(), "context.person");
  const std::string proposer =
      n.Agency(c.proposing_agency(), "context.proposing_agency");
  if (absl::Status s = n.Check(); !s.ok()) return s;
  return Grant(tx, person, proposer, Relation::kServesPerson, source);
}

// Unpacks the payload as M and applies it; false when it is not an M.
template <typename M>
bool TryApply(Transaction& tx, const lotse::events::v1::Event& event,
              absl::Status* status) {
  if (!event.payload().Is<M>()) return false;
  M message;
  if (!event.payload().UnpackTo(&message)) {
    *status = absl::InvalidArgumentError(absl::StrCat(
        "event payload is not a valid ", M::descriptor()->full_name()));
    return true;
  }
  *status = Apply(tx, message);
  return true;
}

}  // namespace

absl::Status ApplyRelationEvent(Transaction& tx,
                                const lotse::events::v1::Event& event) {
  absl::Status status;
  if (TryApply<lotse::cases::v1::CaseOpened>(tx, event, &status) ||
      TryApply<lotse::cases::v1::CaseTransferred>(tx, event, &status) ||
      TryApply<lotse::cases::v1::CaseClosed>(tx, event, &status) ||
      TryApply<lotse::cases::v1::CasePersonChanged>(tx, event, &status) ||
      TryApply<lotse::cases::v1::StepReferred>(tx, event, &status) ||
      TryApply<lotse::courses::v1::CourseBooked>(tx, event, &status) ||
      TryApply<lotse::courses::v1::WaitlistPromoted>(tx, event, &status) ||
      TryApply<lotse::courses::v1::BookingCancelled>(tx, event, &status) ||
      TryApply<lotse::courses::v1::BookingHoldExpired>(tx, event, &status) ||
      TryApply<lotse::courses::v1::EntitlementRecorded>(tx, event, &status) ||
      TryApply<lotse::courses::v1::EntitlementRevoked>(tx, event, &status) ||
      TryApply<lotse::placement::v1::PlacementProposed>(tx, event, &status) ||
      TryApply<lotse::identity::v1::ErasureReported>(tx, event, &status)) {
    return status;
  }
  return absl::OkStatus();  // not an event identity consumes
}

}  // namespace lotse::identity
