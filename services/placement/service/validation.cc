// Request validation shared by the handlers: every bad field is reported,
// none stops the others (common/api/text.h).
#include <algorithm>
#include <set>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/api/text.h"
#include "services/placement/domain/kldb.h"
#include "services/placement/service/internal.h"

namespace lotse::placement {
namespace {

bool Digits(absl::string_view s, size_t n) {
  return s.size() == n && std::all_of(s.begin(), s.end(), absl::ascii_isdigit);
}

bool Wants(const std::vector<std::string>& paths, absl::string_view path) {
  return paths.empty() ||
         std::find(paths.begin(), paths.end(), path) != paths.end();
}

void ValidateHours(const v1::WorkingHours& h, const std::string& field,
                   FieldViolations* v) {
  if (h.min_hours_per_week() < 0 || h.min_hours_per_week() > 60) {
    v->Add(field + ".min_hours_per_week", "must be 0..60");
  }
  if (h.max_hours_per_week() < 0 || h.max_hours_per_week() > 60) {
    v->Add(field + ".max_hours_per_week", "must be 0..60");
  } else if (h.max_hours_per_week() < h.min_hours_per_week()) {
    v->Add(field + ".max_hours_per_week",
           "must not be below min_hours_per_week");
  }
  for (int i = 0; i < h.day_periods_size(); ++i) {
    if (!type::v1::DayPeriod_IsValid(h.day_periods(i)) ||
        h.day_periods(i) == 0) {
      v->Add(absl::StrCat(field, ".day_periods[", i, "]"),
             "must be a day period");
    }
  }
}

void ValidateLevel(int level, const std::string& field, FieldViolations* v) {
  if (!type::v1::CefrLevel_IsValid(level)) {
    v->Add(field, "must be a CEFR level");
  }
}

}  // namespace

// A flat list of checks, one or two per field of the contract
// (offer.proto): longer than our usual functions, kept in one piece so
// that every rule on an offer's fields is found in one place.
void ValidateOffer(const v1::Offer& o, const std::vector<std::string>& paths,
                   bool creating, int64_t today, FieldViolations* v) {
  static const std::set<std::string> kWritable = {
      "title",
      "description",
      "occupation_code",
      "employer_name",
      "place",
      "hours",
      "start_date",
      "end_date",
      "required_language_level",
      "required_skills",
      "required_qualification_codes",
      "recognition_required",
      "positions_total",
      "training_duration_months",
      "chamber_agency"};
  for (const std::string& p : paths) {
    if (p == "kind") {
      v->Add("update_mask", "kind is immutable");
    } else if (kWritable.count(p) == 0) {
      v->Add("update_mask", absl::StrCat("unknown or read-only field: ", p));
    }
  }
  if (creating) {
    if (o.kind() == v1::OFFER_KIND_UNSPECIFIED ||
        !v1::OfferKind_IsValid(o.kind())) {
      v->Add("offer.kind", "is required (JOB or APPRENTICESHIP)");
    }
  }
  if (Wants(paths, "title")) {
    api::ValidateText(o.title(), "offer.title", {1, 200, false}, v);
  }
  if (Wants(paths, "description")) {
    api::ValidateText(o.description(), "offer.description", {0, 10000, true},
                      v);
  }
  if (Wants(paths, "occupation_code") && !IsKldb2010Code(o.occupation_code())) {
    v->Add("offer.occupation_code", kNotKldbCode);
  }
  if (Wants(paths, "employer_name")) {
    api::ValidateText(o.employer_name(), "offer.employer_name", {1, 200, false},
                      v);
  }
  if (Wants(paths, "place")) {
    const type::v1::Address& a = o.place();
    if (!Digits(a.postal_code(), 5)) {
      v->Add("offer.place.postal_code", "must be a German postal code");
    }
    api::ValidateText(a.locality(), "offer.place.locality", {1, 100, false}, v);
    if (!Digits(a.municipality_code(), 8)) {
      v->Add("offer.place.municipality_code",
             "must be a municipality key (AGS, eight digits)");
    }
    api::ValidateText(a.street(), "offer.place.street", {0, 200, false}, v);
    api::ValidateText(a.house_number(), "offer.place.house_number",
                      {0, 20, false}, v);
  }
  if (Wants(paths, "hours")) ValidateHours(o.hours(), "offer.hours", v);
  if (Wants(paths, "start_date")) {
    if (ValidateDate(o.start_date(), true, "offer.start_date", v) && creating &&
        *DayNumber(o.start_date()) < today) {
      v->Add("offer.start_date", "must not be in the past");
    }
  }
  if (Wants(paths, "end_date") &&
      ValidateDate(o.end_date(), false, "offer.end_date", v)) {
    std::optional<int64_t> end = DayNumber(o.end_date());
    std::optional<int64_t> start = DayNumber(o.start_date());
    if (end && start && *end < *start) {
      v->Add("offer.end_date", "must not be before start_date");
    }
  }
  if (Wants(paths, "required_language_level")) {
    ValidateLevel(o.required_language_level(), "offer.required_language_level",
                  v);
  }
  if (Wants(paths, "required_skills")) {
    if (o.required_skills_size() > 50) {
      v->Add("offer.required_skills", "at most 50");
    }
    for (int i = 0; i < o.required_skills_size() && i < 50; ++i) {
      api::ValidateText(o.required_skills(i),
                        absl::StrCat("offer.required_skills[", i, "]"),
                        {1, 100, false}, v);
    }
  }
  if (Wants(paths, "required_qualification_codes")) {
    if (o.required_qualification_codes_size() > 20) {
      v->Add("offer.required_qualification_codes", "at most 20");
    }
    for (int i = 0; i < o.required_qualification_codes_size() && i < 20; ++i) {
      if (!IsKldb2010Code(o.required_qualification_codes(i))) {
        v->Add(absl::StrCat("offer.required_qualification_codes[", i, "]"),
               kNotKldbCode);
      }
    }
  }
  if (Wants(paths, "positions_total") &&
      (o.positions_total() < 1 || o.positions_total() > 1000)) {
    v->Add("offer.positions_total", "must be 1..1000");
  }
  if (Wants(paths, "training_duration_months")) {
    const int m = o.training_duration_months();
    if (o.kind() == v1::OFFER_KIND_APPRENTICESHIP) {
      if (m < 12 || m > 48) {
        v->Add("offer.training_duration_months",
               "must be 12..48 for an apprenticeship");
      }
    } else if (m != 0 && creating) {
      v->Add("offer.training_duration_months", "only for apprenticeships");
    }
  }
  if (Wants(paths, "chamber_agency") && !o.chamber_agency().empty()) {
    api::ParseNameId(o.chamber_agency(), api::kAgencyName,
                     "offer.chamber_agency", v);
  }
}

// A flat list of checks, one or two per field of the contract
// (candidate.proto): longer than our usual functions, kept in one piece so
// that every rule on a profile's fields is found in one place.
void ValidateProfile(const v1::CandidateProfile& p,
                     const std::vector<std::string>& paths,
                     FieldViolations* v) {
  static const std::set<std::string> kWritable = {"state",
                                                  "skills",
                                                  "experience",
                                                  "qualifications",
                                                  "preferred_places",
                                                  "preferred_hours",
                                                  "available_from",
                                                  "wanted_offer_kinds",
                                                  "stated_language_level"};
  for (const std::string& path : paths) {
    if (kWritable.count(path) == 0) {
      v->Add("update_mask", absl::StrCat("unknown or read-only field: ", path));
    }
  }
  const std::string f = "candidate_profile";
  if (Wants(paths, "state") && !v1::CandidateState_IsValid(p.state())) {
    v->Add(f + ".state", "must be a candidate state");
  }
  if (Wants(paths, "skills")) {
    if (p.skills_size() > 100) v->Add(f + ".skills", "at most 100");
    for (int i = 0; i < p.skills_size() && i < 100; ++i) {
      const std::string field = absl::StrCat(f, ".skills[", i, "]");
      api::ValidateText(p.skills(i).label(), field + ".label", {1, 100, false},
                        v);
      if (!v1::SkillLevel_IsValid(p.skills(i).level())) {
        v->Add(field + ".level", "must be a skill level");
      }
    }
  }
  if (Wants(paths, "experience")) {
    if (p.experience_size() > 30) v->Add(f + ".experience", "at most 30");
    for (int i = 0; i < p.experience_size() && i < 30; ++i) {
      const std::string field = absl::StrCat(f, ".experience[", i, "]");
      const v1::OccupationExperience& e = p.experience(i);
      if (!IsKldb2010Code(e.occupation_code())) {
        v->Add(field + ".occupation_code", kNotKldbCode);
      }
      if (e.months() < 0 || e.months() > 600) {
        v->Add(field + ".months", "must be 0..600");
      }
      api::ValidateText(e.description(), field + ".description", {0, 500, true},
                        v);
    }
  }
  if (Wants(paths, "qualifications")) {
    if (p.qualifications_size() > 30) {
      v->Add(f + ".qualifications", "at most 30");
    }
    for (int i = 0; i < p.qualifications_size() && i < 30; ++i) {
      const std::string field = absl::StrCat(f, ".qualifications[", i, "]");
      const v1::Qualification& q = p.qualifications(i);
      api::ValidateText(q.title(), field + ".title", {1, 200, false}, v);
      if (!q.occupation_code().empty() &&
          !IsKldb2010Code(q.occupation_code())) {
        v->Add(field + ".occupation_code", kNotKldbCode);
      }
      if (!q.country_code().empty() &&
          (q.country_code().size() != 2 ||
           !absl::ascii_isupper(q.country_code()[0]) ||
           !absl::ascii_isupper(q.country_code()[1]))) {
        v->Add(field + ".country_code", "must be ISO 3166-1 alpha-2");
      }
      if (!v1::RecognitionState_IsValid(q.recognition_state())) {
        v->Add(field + ".recognition_state", "must be a recognition state");
      }
    }
  }
  if (Wants(paths, "preferred_places")) {
    if (p.preferred_places_size() > 10) {
      v->Add(f + ".preferred_places", "at most 10");
    }
    for (int i = 0; i < p.preferred_places_size() && i < 10; ++i) {
      const std::string field = absl::StrCat(f, ".preferred_places[", i, "]");
      const v1::PreferredPlace& pl = p.preferred_places(i);
      switch (pl.area_case()) {
        case v1::PreferredPlace::kMunicipalityCode:
          if (!Digits(pl.municipality_code(), 8)) {
            v->Add(field + ".municipality_code",
                   "must be a municipality key (AGS, eight digits)");
          }
          break;
        case v1::PreferredPlace::kPostalCode:
          if (!Digits(pl.postal_code(), 5)) {
            v->Add(field + ".postal_code", "must be a German postal code");
          }
          break;
        default:
          v->Add(field, "municipality_code or postal_code is required");
      }
      if (pl.max_distance_km() < 0 || pl.max_distance_km() > 200) {
        v->Add(field + ".max_distance_km", "must be 0..200");
      }
    }
  }
  if (Wants(paths, "preferred_hours")) {
    ValidateHours(p.preferred_hours(), f + ".preferred_hours", v);
  }
  if (Wants(paths, "available_from")) {
    ValidateDate(p.available_from(), false, f + ".available_from", v);
  }
  if (Wants(paths, "wanted_offer_kinds")) {
    for (int i = 0; i < p.wanted_offer_kinds_size(); ++i) {
      const int k = p.wanted_offer_kinds(i);
      if (k == 0 || !v1::OfferKind_IsValid(k)) {
        v->Add(absl::StrCat(f, ".wanted_offer_kinds[", i, "]"),
               "must be JOB or APPRENTICESHIP");
      }
    }
  }
  if (Wants(paths, "stated_language_level")) {
    ValidateLevel(p.stated_language_level(), f + ".stated_language_level", v);
  }
}

absl::Status AssignQualificationIds(const v1::CandidateProfile* before,
                                    v1::CandidateProfile* profile,
                                    FieldViolations* violations) {
  std::set<std::string> seen;
  for (int i = 0; i < profile->qualifications_size(); ++i) {
    v1::Qualification* q = profile->mutable_qualifications(i);
    q->clear_recognition_agency();
    q->clear_recognition_update_time();
    if (q->qualification_id().empty()) {
      absl::StatusOr<std::string> id = api::NewId();
      if (!id.ok()) return id.status();
      q->set_qualification_id(*id);
      continue;
    }
    const v1::Qualification* old = nullptr;
    if (before != nullptr) {
      for (const v1::Qualification& b : before->qualifications()) {
        if (b.qualification_id() == q->qualification_id()) old = &b;
      }
    }
    const std::string field = absl::StrCat("candidate_profile.qualifications[",
                                           i, "].qualification_id");
    if (old == nullptr) {
      violations->Add(field, "is not a qualification of this profile");
      continue;
    }
    if (!seen.insert(q->qualification_id()).second) {
      violations->Add(field, "appears twice");
      continue;
    }
    // Recognition is output of SetQualificationRecognition: kept as it was
    // unless the caller changes the state here.
    if (q->recognition_state() == old->recognition_state()) {
      q->set_recognition_agency(old->recognition_agency());
      *q->mutable_recognition_update_time() = old->recognition_update_time();
    }
  }
  return absl::OkStatus();
}

}  // namespace lotse::placement
