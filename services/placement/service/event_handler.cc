// The consumer of identity's and courses' events (see
// PlacementServiceImpl::EventHandler and the file comment of
// placement_service.h). Runs inside the inbox transaction; the match index
// picks the changes up through the change counter.
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/agencies/registry.h"
#include "common/audit/audit_log.h"
#include "common/lifecycle/erasure.h"
#include "common/lifecycle/holds.h"
#include "common/lifecycle/person_keys.h"
#include "lotse/courses/v1/events.pb.h"
#include "lotse/identity/v1/events.pb.h"
#include "services/placement/service/internal.h"

namespace lotse::placement {

using ::lotse::storage::Transaction;

namespace {

// An audit record of a change the consumer made to a person's data.
absl::Status AuditConsumer(Transaction& tx, const std::string& person,
                           const std::string& record, const char* operation,
                           const char* purpose,
                           std::vector<std::string> categories) {
  audit::AuditRecord r;
  r.agency_id = "placement";
  r.legal_domain = server::kServiceDomain;
  r.actor = "event-consumer";
  r.purpose = purpose;
  r.operation = absl::StrCat("placement/", operation);
  r.resource = absl::StrCat(person, "/", record);
  r.data_categories = std::move(categories);
  return audit::AppendAudit(tx, r);
}

std::string PersonIdOf(absl::string_view name) {
  std::vector<std::string> ids;
  if (!api::MatchName(name, api::kPersonName, &ids)) return "";
  return ids.front();
}

PersonFacts Blank(const std::string& person_id) {
  PersonFacts f;
  f.person_id = person_id;
  return f;
}

absl::Status ApplyResidence(Transaction& tx,
                            const identity::v1::ResidenceStatusChanged& e,
                            int64_t event_us, int64_t now_us) {
  const std::string given = PersonIdOf(e.person());
  if (given.empty()) {
    return absl::InvalidArgumentError("residence event without a person");
  }
  absl::StatusOr<std::string> person_id = SurvivorOf(tx, given);
  if (!person_id.ok()) return person_id.status();
  absl::StatusOr<std::optional<PersonFacts>> stored = ReadFacts(tx, *person_id);
  if (!stored.ok()) return stored.status();
  PersonFacts f = stored->value_or(Blank(*person_id));
  // Redeliveries and reordering: only a newer fact replaces the stored one.
  if (stored->has_value() && event_us < f.residence_event_us) {
    return absl::OkStatus();
  }
  f.work_permission = e.work_permission();
  f.work_permission_valid_until = DayNumber(e.valid_until());
  f.residence_recording_agency = e.recording_agency();
  f.residence_event_us = event_us;
  f.update_us = now_us;
  absl::StatusOr<int64_t> seq = NextIndexSeq(tx);
  if (!seq.ok()) return seq.status();
  if (absl::Status s = UpsertFacts(tx, f, *seq); !s.ok()) return s;
  return AuditConsumer(tx, PersonName(*person_id), "facts",
                       "ApplyResidenceStatusChanged", "work-permission",
                       {kResidence});
}

absl::Status ApplyResult(Transaction& tx,
                         const courses::v1::CourseResultRecorded& e,
                         int64_t event_us, int64_t now_us) {
  if (!e.passed() || e.achieved_level() == type::v1::CEFR_LEVEL_UNSPECIFIED) {
    return absl::OkStatus();
  }
  const std::string given = PersonIdOf(e.context().person());
  if (given.empty()) {
    return absl::InvalidArgumentError("course result without a person");
  }
  absl::StatusOr<std::string> person_id = SurvivorOf(tx, given);
  if (!person_id.ok()) return person_id.status();
  absl::StatusOr<std::optional<PersonFacts>> stored = ReadFacts(tx, *person_id);
  if (!stored.ok()) return stored.status();
  PersonFacts f = stored->value_or(Blank(*person_id));
  // A certificate raises the level, never lowers it.
  if (e.achieved_level() <= f.certified_level) return absl::OkStatus();
  f.certified_level = e.achieved_level();
  f.certified_us = event_us;
  f.update_us = now_us;
  absl::StatusOr<int64_t> seq = NextIndexSeq(tx);
  if (!seq.ok()) return seq.status();
  if (absl::Status s = UpsertFacts(tx, f, *seq); !s.ok()) return s;
  return AuditConsumer(tx, PersonName(*person_id), "facts",
                       "ApplyCourseResultRecorded", "language-level",
                       {kLanguage});
}

// The merged person's candidate profile moves to the survivor (as a
// redirect), or is set aside when the survivor has one.
absl::Status MergeProfiles(Transaction& tx, const std::string& merged,
                           const std::string& survivor, int64_t seq,
                           absl::Time now) {
  absl::StatusOr<std::optional<CandidateRow>> gone = ReadCandidate(tx, merged);
  if (!gone.ok()) return gone.status();
  absl::StatusOr<std::optional<CandidateRow>> kept =
      ReadCandidate(tx, survivor);
  if (!kept.ok()) return kept.status();
  if (gone->has_value() && (*gone)->merged_into.empty()) {
    CandidateRow old = **gone;
    if (!kept->has_value()) {
      // The profile moves: a copy under the survivor, the old row becomes
      // a redirect.
      CandidateRow moved = old;
      moved.person_id = survivor;
      moved.profile.set_person(PersonName(survivor));
      *moved.profile.mutable_update_time() = api::ToTimestamp(now);
      ++moved.version;
      if (absl::Status s = InsertCandidate(tx, moved, seq); !s.ok()) return s;
      old.merged_into = survivor;
    }
    // Both had one: the survivor's stays, the merged one is set aside.
    old.profile.set_state(v1::CANDIDATE_STATE_INACTIVE);
    *old.profile.mutable_update_time() = api::ToTimestamp(now);
    ++old.version;
    if (absl::Status s = UpdateCandidate(tx, old, seq); !s.ok()) return s;
    if (absl::Status s =
            AuditConsumer(tx, PersonName(survivor), "candidate",
                          "ApplyPersonMerged", "person-merge", {kEmployment});
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

// The merged person's facts join the survivor's: the higher certificate;
// the survivor's residence facts unless it has none.
absl::Status MergeFacts(Transaction& tx, const std::string& merged,
                        const std::string& survivor, int64_t seq,
                        absl::Time now) {
  absl::StatusOr<std::optional<PersonFacts>> gf = ReadFacts(tx, merged);
  if (!gf.ok()) return gf.status();
  if (gf->has_value()) {
    absl::StatusOr<std::optional<PersonFacts>> sf = ReadFacts(tx, survivor);
    if (!sf.ok()) return sf.status();
    PersonFacts f = sf->value_or(Blank(survivor));
    const PersonFacts& g = **gf;
    if (g.certified_level > f.certified_level) {
      f.certified_level = g.certified_level;
      f.certified_us = g.certified_us;
    }
    if (f.residence_event_us == 0 && g.residence_event_us != 0) {
      f.work_permission = g.work_permission;
      f.work_permission_valid_until = g.work_permission_valid_until;
      f.residence_recording_agency = g.residence_recording_agency;
      f.residence_event_us = g.residence_event_us;
    }
    f.update_us = ToMicros(now);
    if (absl::Status s = UpsertFacts(tx, f, seq); !s.ok()) return s;
  }
  return absl::OkStatus();
}

// Placements and notices follow the person.
absl::Status MergePlacements(Transaction& tx, const std::string& merged,
                             const std::string& survivor, absl::Time now) {
  absl::StatusOr<std::vector<PlacementRow>> placements =
      PlacementsOfPerson(tx, merged);
  if (!placements.ok()) return placements.status();
  for (PlacementRow& p : *placements) {
    // A second open placement for the same offer cannot stand (one per
    // candidate and offer): the merged person's is withdrawn.
    if (IsOpenState(p.placement.state())) {
      absl::string_view offer_id = p.placement.offer();
      absl::ConsumePrefix(&offer_id, "offers/");
      absl::StatusOr<std::optional<PlacementRow>> other =
          OpenPlacement(tx, offer_id, survivor);
      if (!other.ok()) return other.status();
      if (other->has_value()) {
        absl::StatusOr<std::optional<OfferRow>> offer = ReadOffer(tx, offer_id);
        if (!offer.ok()) return offer.status();
        v1::Offer named = (*offer)->offer;
        named.set_name(OfferName((*offer)->id));
        if (absl::Status s =
                EndPlacement(tx, &p, named, v1::PLACEMENT_STATE_WITHDRAWN,
                             v1::PLACEMENT_END_REASON_OTHER, "person merged",
                             "", "event-consumer", now);
            !s.ok()) {
          return s;
        }
      }
    }
    p.placement.set_person(PersonName(survivor));
    p.placement.set_candidate(CandidateName(survivor));
    ++p.version;
    if (absl::Status s = UpdatePlacement(tx, p); !s.ok()) return s;
    if (absl::Status s =
            AuditConsumer(tx, PersonName(survivor), PlacementName(p.id),
                          "ApplyPersonMerged", "person-merge", {kEmployment});
        !s.ok()) {
      return s;
    }
  }
  absl::StatusOr<std::vector<NoticeRow>> notices = NoticesOfPerson(tx, merged);
  if (!notices.ok()) return notices.status();
  for (NoticeRow& n : *notices) {
    n.notice.set_person(PersonName(survivor));
    ++n.version;
    if (absl::Status s = UpdateNotice(tx, n); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status ApplyMerge(Transaction& tx, const identity::v1::PersonMerged& e,
                        absl::Time now) {
  const std::string merged = PersonIdOf(e.merged());
  const std::string survivor = PersonIdOf(e.survivor());
  if (merged.empty() || survivor.empty() || merged == survivor) {
    return absl::InvalidArgumentError("merge event without two persons");
  }
  if (absl::Status s = RecordMerge(tx, merged, survivor); !s.ok()) return s;
  absl::StatusOr<int64_t> seq = NextIndexSeq(tx);
  if (!seq.ok()) return seq.status();
  if (absl::Status s = MergeProfiles(tx, merged, survivor, *seq, now);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = MergeFacts(tx, merged, survivor, *seq, now); !s.ok()) {
    return s;
  }
  return MergePlacements(tx, merged, survivor, now);
}

// Whether the person `name` ("persons/x") was erased here. False for a
// malformed name: the event's own handling reports it.
absl::StatusOr<bool> Shredded(Transaction& tx, absl::string_view name) {
  const std::string id = PersonIdOf(name);
  if (id.empty()) return false;
  return lifecycle::IsPersonShredded(tx, id);
}

}  // namespace

events::ApplyFn PlacementServiceImpl::EventHandler() {
  return [this](Transaction& tx,
                const lotse::events::v1::Event& event) -> absl::Status {
    const google::protobuf::Any& payload = event.payload();
    absl::StatusOr<bool> agency = agencies::ApplyAgencyEvent(tx, payload);
    if (!agency.ok()) return agency.status();
    if (*agency) return absl::OkStatus();
    const absl::Time now = Now();
    const int64_t event_us =
        event.has_occurred_at()
            ? ToMicros(api::FromTimestamp(event.occurred_at()))
            : ToMicros(now);
    if (payload.Is<identity::v1::ResidenceStatusChanged>()) {
      identity::v1::ResidenceStatusChanged e;
      if (!payload.UnpackTo(&e)) {
        return absl::InvalidArgumentError("malformed ResidenceStatusChanged");
      }
      absl::StatusOr<bool> shredded = Shredded(tx, e.person());
      if (!shredded.ok()) return shredded.status();
      if (*shredded) return absl::OkStatus();
      return ApplyResidence(tx, e, event_us, ToMicros(now));
    }
    if (payload.Is<courses::v1::CourseResultRecorded>()) {
      courses::v1::CourseResultRecorded e;
      if (!payload.UnpackTo(&e)) {
        return absl::InvalidArgumentError("malformed CourseResultRecorded");
      }
      absl::StatusOr<bool> shredded = Shredded(tx, e.context().person());
      if (!shredded.ok()) return shredded.status();
      if (*shredded) return absl::OkStatus();
      return ApplyResult(tx, e, event_us, ToMicros(now));
    }
    if (payload.Is<identity::v1::PersonMerged>()) {
      identity::v1::PersonMerged e;
      if (!payload.UnpackTo(&e)) {
        return absl::InvalidArgumentError("malformed PersonMerged");
      }
      for (const std::string& p : {e.merged(), e.survivor()}) {
        absl::StatusOr<bool> shredded = Shredded(tx, p);
        if (!shredded.ok()) return shredded.status();
        if (*shredded) return absl::OkStatus();
      }
      return ApplyMerge(tx, e, now);
    }
    if (payload.Is<identity::v1::LegalHoldPlaced>()) {
      identity::v1::LegalHoldPlaced e;
      if (!payload.UnpackTo(&e)) {
        return absl::InvalidArgumentError("malformed LegalHoldPlaced");
      }
      return lifecycle::ApplyHold(tx, e.hold());
    }
    if (payload.Is<identity::v1::LegalHoldReleased>()) {
      identity::v1::LegalHoldReleased e;
      if (!payload.UnpackTo(&e)) {
        return absl::InvalidArgumentError("malformed LegalHoldReleased");
      }
      return lifecycle::ApplyHold(tx, e.hold());
    }
    if (payload.Is<identity::v1::PersonErased>()) {
      identity::v1::PersonErased e;
      if (!payload.UnpackTo(&e)) {
        return absl::InvalidArgumentError("malformed PersonErased");
      }
      // Erased here already: nothing left to do or to report.
      absl::StatusOr<bool> shredded = Shredded(tx, e.person());
      if (!shredded.ok()) return shredded.status();
      if (*shredded) return absl::OkStatus();
      static const lifecycle::RetentionRules* const kNoRules =
          new lifecycle::RetentionRules();
      return lifecycle::ApplyPersonErased(
          tx, e, "placement",
          runtime_.retention != nullptr ? *runtime_.retention : *kNoRules,
          ErasePlacementPerson, now);
    }
    // Nothing placement keeps derives from the core record (see
    // placement_service.h).
    if (payload.Is<identity::v1::PersonRectified>()) return absl::OkStatus();
    return absl::OkStatus();  // not for us
  };
}

}  // namespace lotse::placement
