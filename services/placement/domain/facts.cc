#include "services/placement/domain/facts.h"

#include <utility>

#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/civil_time.h"

namespace lotse::placement {
namespace {

// Lowercase of one code point for the scripts NormaliseSkillLabel covers.
uint32_t LowerCodePoint(uint32_t cp) {
  if (cp >= 'A' && cp <= 'Z') return cp + 0x20;
  if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) return cp + 0x20;  // Latin-1
  if (cp >= 0x410 && cp <= 0x42F) return cp + 0x20;              // А..Я
  if (cp >= 0x400 && cp <= 0x40F) return cp + 0x50;              // Ѐ..Џ
  return cp;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    // Only two- and three-byte sequences are ever re-encoded here; longer
    // ones are copied through unchanged by the caller.
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string IdAfter(absl::string_view name, absl::string_view prefix) {
  absl::ConsumePrefix(&name, prefix);
  return std::string(name);
}

std::optional<geo::GeoPoint> CentreOf(const std::string& postal_code) {
  return geo::PostalCodeCentre(postal_code);
}

HoursFacts HoursOf(const v1::WorkingHours& hours) {
  HoursFacts out;
  out.min_per_week = static_cast<float>(hours.min_hours_per_week());
  out.max_per_week = static_cast<float>(hours.max_hours_per_week());
  out.day_periods = DayPeriodMaskOf(hours.day_periods());
  return out;
}

}  // namespace

std::optional<int32_t> DayFromDate(const type::v1::Date& date) {
  if (date.year() < 1900 || date.year() > 9999 || date.month() < 1 ||
      date.month() > 12 || date.day() < 1 || date.day() > 31) {
    return std::nullopt;
  }
  const absl::CivilDay day(date.year(), date.month(), date.day());
  // CivilDay normalises 31 February to 3 March; such a date is not valid.
  if (day.month() != date.month() || day.day() != date.day()) {
    return std::nullopt;
  }
  return static_cast<int32_t>(day - absl::CivilDay(1970, 1, 1));
}

int32_t DayOf(absl::Time t) {
  return static_cast<int32_t>(absl::ToCivilDay(t, absl::UTCTimeZone()) -
                              absl::CivilDay(1970, 1, 1));
}

std::string NormaliseSkillLabel(absl::string_view label) {
  std::string out;
  out.reserve(label.size());
  bool pending_space = false;
  size_t i = 0;
  while (i < label.size()) {
    const unsigned char c = static_cast<unsigned char>(label[i]);
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      pending_space = !out.empty();
      ++i;
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    if (c < 0x80) {
      AppendUtf8(LowerCodePoint(c), &out);
      ++i;
    } else if ((c & 0xE0) == 0xC0 && i + 1 < label.size()) {
      const uint32_t cp = ((c & 0x1F) << 6) | (label[i + 1] & 0x3F);
      AppendUtf8(LowerCodePoint(cp), &out);
      i += 2;
    } else {
      // Three- and four-byte sequences (and stray bytes) are copied as
      // written: no letter with a case in them is lowered here.
      out.push_back(static_cast<char>(c));
      ++i;
    }
  }
  return out;
}

DayPeriodMask DayPeriodMaskOf(
    const google::protobuf::RepeatedField<int>& day_periods) {
  DayPeriodMask mask = 0;
  for (int period : day_periods) {
    if (period > 0 && period < 8)
      mask |= static_cast<DayPeriodMask>(1 << period);
  }
  return mask;
}

LanguageLevel CandidateFacts::EffectiveLanguageLevel() const {
  if (language_withheld) return {};
  if (certified_language_level != type::v1::CEFR_LEVEL_UNSPECIFIED) {
    return {certified_language_level, v1::LANGUAGE_LEVEL_SOURCE_COURSE_RESULT};
  }
  if (stated_language_level != type::v1::CEFR_LEVEL_UNSPECIFIED) {
    return {stated_language_level, v1::LANGUAGE_LEVEL_SOURCE_PROFILE};
  }
  return {};
}

CandidateFacts CandidateFacts::WithheldFor(bool see_residence,
                                           bool see_language) const {
  CandidateFacts copy = *this;
  if (!see_residence) {
    copy.residence_withheld = true;
    copy.work_permission = type::v1::WORK_PERMISSION_UNSPECIFIED;
    copy.work_permission_valid_until_day.reset();
  }
  if (!see_language) {
    copy.language_withheld = true;
    copy.certified_language_level = type::v1::CEFR_LEVEL_UNSPECIFIED;
    copy.stated_language_level = type::v1::CEFR_LEVEL_UNSPECIFIED;
  }
  return copy;
}

OfferFacts OfferFactsFromProto(const v1::Offer& offer) {
  OfferFacts f;
  f.offer_id = IdAfter(offer.name(), "offers/");
  f.kind = offer.kind();
  f.occupation_code = offer.occupation_code();
  f.municipality_code = offer.place().municipality_code();
  f.postal_code = offer.place().postal_code();
  f.place_centre = CentreOf(f.postal_code);
  f.hours = HoursOf(offer.hours());
  f.start_day = DayFromDate(offer.start_date()).value_or(0);
  f.required_language_level = offer.required_language_level();
  for (const std::string& skill : offer.required_skills()) {
    f.required_skills.push_back(NormaliseSkillLabel(skill));
  }
  f.required_qualification_codes.assign(
      offer.required_qualification_codes().begin(),
      offer.required_qualification_codes().end());
  f.recognition_required = offer.recognition_required();
  f.positions_open = offer.positions_open();
  f.create_time = absl::FromUnixSeconds(offer.create_time().seconds()) +
                  absl::Nanoseconds(offer.create_time().nanos());
  return f;
}

CandidateFacts CandidateFactsFromProfile(
    const v1::CandidateProfile& profile,
    type::v1::WorkPermission work_permission,
    std::optional<int32_t> work_permission_valid_until_day) {
  CandidateFacts f;
  f.person_id = IdAfter(profile.person(), "persons/");
  f.active = profile.state() != v1::CANDIDATE_STATE_INACTIVE;
  for (int kind : profile.wanted_offer_kinds()) {
    f.wanted_kinds.push_back(static_cast<v1::OfferKind>(kind));
  }
  f.work_permission = work_permission;
  f.work_permission_valid_until_day = work_permission_valid_until_day;
  f.certified_language_level = profile.certified_language_level();
  f.stated_language_level = profile.stated_language_level();
  for (const v1::OccupationExperience& e : profile.experience()) {
    f.experience.push_back({e.occupation_code(), e.months()});
  }
  for (const v1::Skill& s : profile.skills()) {
    f.skills.push_back({NormaliseSkillLabel(s.label()), s.level()});
  }
  for (const v1::Qualification& q : profile.qualifications()) {
    f.qualifications.push_back({q.occupation_code(), q.recognition_state()});
  }
  for (const v1::PreferredPlace& p : profile.preferred_places()) {
    PlaceFacts place;
    place.municipality_code = p.municipality_code();
    place.postal_code = p.postal_code();
    if (!place.postal_code.empty()) place.centre = CentreOf(place.postal_code);
    place.max_distance_km = p.max_distance_km();
    f.preferred_places.push_back(std::move(place));
  }
  f.preferred_hours = HoursOf(profile.preferred_hours());
  if (profile.has_available_from()) {
    f.available_from_day = DayFromDate(profile.available_from());
  }
  return f;
}

}  // namespace lotse::placement
