// The events identity consumes to learn which agencies relate to a person
// (DESIGN.md §4; identity_service.proto lists them): cases' CaseOpened,
// CaseTransferred, CaseClosed, CasePersonChanged and StepReferred; courses'
// CourseBooked, WaitlistPromoted, BookingCancelled, BookingHoldExpired,
// EntitlementRecorded and EntitlementRevoked; placement's
// PlacementProposed.
//
// What each means:
//   CaseOpened          owner agency: CASE_OWNER of the person (source: case)
//   CaseTransferred     the old owner's relation ends, the new owner's begins
//   CaseClosed          every relation the case granted ends
//   CasePersonChanged   the case's relations move to the corrected person
//   StepReferred        receiving agency: CASE_PARTICIPANT (source: case)
//   CourseBooked,
//   WaitlistPromoted    provider and booking agency: SERVES_PERSON (booking)
//   BookingCancelled,
//   BookingHoldExpired  the booking's relations end
//   EntitlementRecorded issuing agency: SERVES_PERSON (entitlement)
//   EntitlementRevoked  the entitlement's relation ends
//   PlacementProposed   proposing agency: SERVES_PERSON (placement)
//   ErasureReported     (any service) its state in the person's erasure,
//                       for GetErasureStatus; NOT_FOUND (reason
//                       ERASURE_NOT_FOUND, retried by the relay) when
//                       identity holds no erasure of the person
// Relations about an erased person are not recorded (an event sent before
// its producer applied the erasure may still arrive).
// A person named by an event that was merged counts as its survivor.
// Events of other types are accepted and ignored, so a producer may send its
// whole outbox. A consumed event whose names are malformed is refused
// (INVALID_ARGUMENT), which holds back that producer key until fixed:
// silently dropping it would lose a relation.
#ifndef LOTSE_SERVICES_IDENTITY_SERVICE_RELATION_EVENTS_H_
#define LOTSE_SERVICES_IDENTITY_SERVICE_RELATION_EVENTS_H_

#include "absl/status/status.h"
#include "common/storage/database.h"
#include "lotse/events/v1/events.pb.h"

namespace lotse::identity {

// An events::ApplyFn: applies `event` in `tx` (the inbox transaction).
absl::Status ApplyRelationEvent(storage::Transaction& tx,
                                const lotse::events::v1::Event& event);

}  // namespace lotse::identity

#endif  // LOTSE_SERVICES_IDENTITY_SERVICE_RELATION_EVENTS_H_
