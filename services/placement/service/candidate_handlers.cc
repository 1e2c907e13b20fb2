// CreateCandidateProfile, GetCandidateProfile, ListCandidateProfiles,
// UpdateCandidateProfile, SetQualificationRecognition.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/api/etag.h"
#include "common/api/idempotency.h"
#include "common/api/paging.h"
#include "common/api/text.h"
#include "services/placement/domain/kldb.h"
#include "services/placement/service/internal.h"

namespace lotse::placement {

using ::lotse::agencies::AuditedCall;
using ::lotse::agencies::LocalAgency;
using ::lotse::storage::Transaction;
using ::lotse::type::v1::DATA_CATEGORY_EMPLOYMENT;
using ::lotse::type::v1::DATA_CATEGORY_LANGUAGE;

namespace {

constexpr char kProfileWriters[] = "write candidate profiles";

void ApplyProfileMask(const v1::CandidateProfile& in,
                      const std::vector<std::string>& paths,
                      v1::CandidateProfile* out) {
  for (const std::string& p : paths) {
    if (p == "state") out->set_state(in.state());
    if (p == "skills") *out->mutable_skills() = in.skills();
    if (p == "experience") *out->mutable_experience() = in.experience();
    if (p == "qualifications") {
      *out->mutable_qualifications() = in.qualifications();
    }
    if (p == "preferred_places") {
      *out->mutable_preferred_places() = in.preferred_places();
    }
    if (p == "preferred_hours") {
      *out->mutable_preferred_hours() = in.preferred_hours();
    }
    if (p == "available_from") {
      *out->mutable_available_from() = in.available_from();
    }
    if (p == "wanted_offer_kinds") {
      *out->mutable_wanted_offer_kinds() = in.wanted_offer_kinds();
    }
    if (p == "stated_language_level") {
      out->set_stated_language_level(in.stated_language_level());
    }
  }
}

// Stamps the qualifications whose recognition state the caller set.
void StampRecognition(const LocalAgency& me, absl::Time now,
                      v1::CandidateProfile* p) {
  for (v1::Qualification& q : *p->mutable_qualifications()) {
    if (q.recognition_state() != v1::RECOGNITION_STATE_UNSPECIFIED &&
        q.recognition_agency().empty()) {
      q.set_recognition_agency(me.name());
      *q.mutable_recognition_update_time() = api::ToTimestamp(now);
    }
  }
}

// Clears the certified level (LANGUAGE) from a write's response when the
// caller may not read LANGUAGE; the stated level is echoed only when the
// caller just wrote it.
void FilterWriteResponse(const AccessView& access, bool wrote_stated,
                         v1::CandidateProfile* out) {
  if (access.Allowed(DATA_CATEGORY_LANGUAGE)) return;
  out->clear_certified_language_level();
  out->clear_certified_language_time();
  if (!wrote_stated) out->clear_stated_language_level();
}

// The new profile of the person `target` as `caller` creates it from `in`:
// the fields the service sets replace what the request sent, the
// qualifications get their ids and recognition stamps.
absl::StatusOr<CandidateRow> NewCandidateRow(const v1::CandidateProfile& in,
                                             const std::string& target,
                                             const LocalAgency& caller,
                                             absl::Time now) {
  CandidateRow row;
  row.person_id = target;
  row.version = 1;
  row.profile = in;
  v1::CandidateProfile& p = row.profile;
  p.clear_name();
  p.clear_etag();
  p.clear_certified_language_level();
  p.clear_certified_language_time();
  p.set_person(PersonName(target));
  if (p.state() == v1::CANDIDATE_STATE_UNSPECIFIED) {
    p.set_state(v1::CANDIDATE_STATE_ACTIVE);
  }
  p.set_creating_agency(caller.name());
  FieldViolations ids;
  if (absl::Status s = AssignQualificationIds(nullptr, &p, &ids); !s.ok()) {
    return s;
  }
  if (!ids.empty()) return ids.ToStatus();
  StampRecognition(caller, now, &p);
  *p.mutable_create_time() = api::ToTimestamp(now);
  *p.mutable_update_time() = api::ToTimestamp(now);
  return row;
}

}  // namespace

absl::Status PlacementServiceImpl::DoCreateCandidateProfile(
    const Rc& rc, const v1::CreateCandidateProfileRequest& request,
    v1::CandidateProfile* out) {
  AuditedCall call(call_env(), rc, "CreateCandidateProfile", "candidates");
  const absl::Time now = Now();
  const v1::CandidateProfile& in = request.candidate_profile();
  FieldViolations v;
  api::ValidateRequestId(request.request_id(), "request_id", &v);
  const std::string person_id = api::ParseNameId(
      in.person(), api::kPersonName, "candidate_profile.person", &v);
  ValidateProfile(in, {}, &v);
  if (!person_id.empty()) {
    call.set_person_target(PersonName(person_id), "candidate", {kEmployment});
  }
  LocalAgency me;
  absl::Status status =
      call.Read([&](Transaction&, const LocalAgency& caller) -> absl::Status {
        me = caller;
        if (absl::Status s = RequireDomain(
                caller, {"JOBCENTER", "ARBEITSAGENTUR"}, kProfileWriters);
            !s.ok()) {
          return s;
        }
        return v.ToStatus();
      });
  // Only for a person already in the caller's remit (identity's standing
  // check, the same answer for an unknown person); then one call says
  // whether the caller may see the certified level in the response.
  if (status.ok()) {
    status = RequireStanding(*this, rc, me, PersonName(person_id));
  }
  absl::StatusOr<AccessView> access;
  if (status.ok()) {
    access = AskAccess(*this, call, PersonName(person_id),
                       {DATA_CATEGORY_EMPLOYMENT, DATA_CATEGORY_LANGUAGE},
                       /*serves=*/true);
    if (!access.ok()) status = access.status();
  }
  if (status.ok()) {
    status = call.Write([&](Transaction& tx,
                            const LocalAgency& caller) -> absl::Status {
      const api::IdempotentCreate once(caller.id, rc.method, request);
      absl::StatusOr<std::optional<std::string>> seen = once.Lookup(tx);
      if (!seen.ok()) return seen.status();
      std::string target = person_id;
      if (seen->has_value()) {
        target = (**seen).substr(std::string("candidates/").size());
      } else {
        absl::StatusOr<std::string> survivor = SurvivorOf(tx, person_id);
        if (!survivor.ok()) return survivor.status();
        target = *survivor;
      }
      absl::StatusOr<ResolvedCandidate> existing = ResolveCandidate(tx, target);
      if (!existing.ok()) return existing.status();
      if (seen->has_value()) {
        if (!existing->row) return absl::InternalError("recorded profile gone");
        CandidateOut(*existing->row, existing->facts, out);
        call.Touch(PersonName(existing->person_id), "candidate", {kEmployment});
        return absl::OkStatus();
      }
      absl::StatusOr<std::optional<CandidateRow>> any =
          ReadCandidate(tx, target);
      if (!any.ok()) return any.status();
      if (any->has_value()) {
        return ErrorWithReason(absl::StatusCode::kAlreadyExists,
                               "PROFILE_EXISTS",
                               "the person already has a candidate profile");
      }
      absl::StatusOr<CandidateRow> row =
          NewCandidateRow(in, target, caller, now);
      if (!row.ok()) return row.status();
      const v1::CandidateProfile& p = row->profile;
      absl::StatusOr<int64_t> seq = NextIndexSeq(tx);
      if (!seq.ok()) return seq.status();
      if (absl::Status s = InsertCandidate(tx, *row, *seq); !s.ok()) return s;
      if (absl::Status s = once.Record(tx, CandidateName(target)); !s.ok()) {
        return s;
      }
      std::vector<std::string> categories = {kEmployment};
      if (p.stated_language_level() != 0) categories.push_back(kLanguage);
      call.Touch(PersonName(target), "candidate", categories);
      CandidateOut(*row, existing->facts, out);
      return absl::OkStatus();
    });
  }
  if (status.ok()) FilterWriteResponse(*access, /*wrote_stated=*/true, out);
  return call.Finish(status);
}

absl::Status PlacementServiceImpl::DoGetCandidateProfile(
    const Rc& rc, const v1::GetCandidateProfileRequest& request,
    v1::GetCandidateProfileResponse* out) {
  AuditedCall call(call_env(), rc, "GetCandidateProfile", request.name());
  FieldViolations v;
  const std::string id =
      api::ParseNameId(request.name(), kCandidatePattern, "name", &v);
  ResolvedCandidate found;
  LocalAgency me;
  absl::Status status = call.Read(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        me = caller;
        if (!v.empty()) return v.ToStatus();
        absl::StatusOr<ResolvedCandidate> r = ResolveCandidate(tx, id);
        if (!r.ok()) return r.status();
        if (!r->row) {
          return NotFound("CANDIDATE_NOT_FOUND", "no such candidate profile");
        }
        found = *std::move(r);
        return absl::OkStatus();
      });
  if (status.ok()) {
    const std::string person = PersonName(found.person_id);
    call.set_person_target(person, "candidate", {kEmployment});
    absl::StatusOr<AccessView> access = AskAccess(
        *this, call, person, {DATA_CATEGORY_EMPLOYMENT, DATA_CATEGORY_LANGUAGE},
        /*serves=*/found.row->profile.creating_agency() == me.name());
    if (!access.ok()) {
      status = access.status();
    } else {
      status = RequireAllowed(*access, DATA_CATEGORY_EMPLOYMENT);
    }
    if (status.ok()) {
      CandidateOut(*found.row, found.facts, out->mutable_candidate_profile());
      if (access->Allowed(DATA_CATEGORY_LANGUAGE)) {
        call.Touch(person, "candidate", {kEmployment, kLanguage});
      } else {
        call.Touch(person, "candidate", {kEmployment});
        WithholdLanguage(
            "candidate_profile", access->Reason(DATA_CATEGORY_LANGUAGE),
            out->mutable_candidate_profile(), out->mutable_withheld());
      }
    }
  }
  return call.Finish(status);
}

absl::Status PlacementServiceImpl::DoListCandidateProfiles(
    const Rc& rc, const v1::ListCandidateProfilesRequest& request,
    v1::ListCandidateProfilesResponse* out) {
  AuditedCall call(call_env(), rc, "ListCandidateProfiles", "candidates");
  FieldViolations v;
  const int size = api::NormalizePageSize(request.page_size(), "page_size", &v);
  CandidateFilter filter;
  if (!v1::CandidateState_IsValid(request.state())) {
    v.Add("state", "must be a candidate state");
  }
  filter.state = request.state();
  if (!request.creating_agency().empty()) {
    api::ParseNameId(request.creating_agency(), api::kAgencyName,
                     "creating_agency", &v);
    filter.creating_agency = request.creating_agency();
  }
  v1::ListCandidateProfilesRequest fp = request;
  fp.clear_page_size();
  fp.clear_page_token();
  const std::string fingerprint = fp.SerializeAsString();
  const std::string last =
      api::DecodePageToken(request.page_token(), fingerprint, "page_token", &v);
  std::optional<PageKey> after = PageKey{};
  if (!last.empty()) {
    after = PageKey::Decode(last);
    if (!after) v.Add("page_token", "is not a valid page token");
  }
  LocalAgency me;
  int checks = 0;
  bool more = true;
  PageKey cursor = after.value_or(PageKey{});
  absl::Status status;
  // Walks the profiles newest first, keeping those the caller may read,
  // until the page is full, the rows end or the check budget is spent.
  while (status.ok() && more && out->candidate_profiles_size() < size &&
         checks < options().max_access_checks) {
    std::vector<std::pair<CandidateRow, std::optional<PersonFacts>>> batch;
    status = call.Read(
        [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
          me = caller;
          if (!v.empty()) return v.ToStatus();
          batch.clear();
          absl::StatusOr<std::vector<CandidateRow>> rows =
              ListCandidates(tx, filter, cursor, size + 1);
          if (!rows.ok()) return rows.status();
          for (CandidateRow& r : *rows) {
            absl::StatusOr<std::optional<PersonFacts>> f =
                ReadFacts(tx, r.person_id);
            if (!f.ok()) return f.status();
            batch.emplace_back(std::move(r), *f);
          }
          return absl::OkStatus();
        });
    if (!status.ok()) break;
    more = batch.size() > static_cast<size_t>(size);
    size_t used = 0;
    for (auto& [row, facts] : batch) {
      if (out->candidate_profiles_size() >= size ||
          checks >= options().max_access_checks) {
        more = true;
        break;
      }
      ++used;
      cursor = PageKey{ToMicros(api::FromTimestamp(row.profile.create_time())),
                       row.person_id};
      ++checks;
      const std::string person = PersonName(row.person_id);
      absl::StatusOr<AccessView> access =
          AskAccess(*this, call, person,
                    {DATA_CATEGORY_EMPLOYMENT, DATA_CATEGORY_LANGUAGE},
                    /*serves=*/row.profile.creating_agency() == me.name());
      if (!access.ok()) {
        if (access.status().code() == absl::StatusCode::kNotFound) continue;
        status = access.status();
        break;
      }
      if (!access->Allowed(DATA_CATEGORY_EMPLOYMENT)) continue;
      const int index = out->candidate_profiles_size();
      v1::CandidateProfile* p = out->add_candidate_profiles();
      CandidateOut(row, facts, p);
      if (access->Allowed(DATA_CATEGORY_LANGUAGE)) {
        call.Touch(person, "candidate", {kEmployment, kLanguage});
      } else {
        call.Touch(person, "candidate", {kEmployment});
        WithholdLanguage(absl::StrCat("candidate_profiles[", index, "]"),
                         access->Reason(DATA_CATEGORY_LANGUAGE), p,
                         out->mutable_withheld());
      }
    }
    if (used < batch.size()) more = true;
  }
  if (status.ok() && more && !cursor.empty()) {
    out->set_next_page_token(
        api::EncodePageToken(fingerprint, cursor.Encode()));
  }
  if (!status.ok()) {
    out->Clear();
  }
  return call.Finish(status);
}

absl::Status PlacementServiceImpl::DoUpdateCandidateProfile(
    const Rc& rc, const v1::UpdateCandidateProfileRequest& request,
    v1::CandidateProfile* out) {
  const v1::CandidateProfile& in = request.candidate_profile();
  AuditedCall call(call_env(), rc, "UpdateCandidateProfile", in.name());
  const absl::Time now = Now();
  FieldViolations v;
  const std::string id = api::ParseNameId(in.name(), kCandidatePattern,
                                          "candidate_profile.name", &v);
  if (in.etag().empty()) v.Add("candidate_profile.etag", "is required");
  std::vector<std::string> paths(request.update_mask().paths().begin(),
                                 request.update_mask().paths().end());
  if (paths.empty()) v.Add("update_mask", "is required");
  ValidateProfile(in, paths, &v);
  for (const std::string& p : paths) {
    if (p == "state" && in.state() == v1::CANDIDATE_STATE_UNSPECIFIED) {
      v.Add("candidate_profile.state", "is required");
    }
  }
  LocalAgency me;
  std::string person_id;
  std::string creator;
  absl::Status status = call.Read(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        me = caller;
        if (absl::Status s = RequireDomain(
                caller, {"JOBCENTER", "ARBEITSAGENTUR"}, kProfileWriters);
            !s.ok()) {
          return s;
        }
        if (!v.empty()) return v.ToStatus();
        absl::StatusOr<ResolvedCandidate> r = ResolveCandidate(tx, id);
        if (!r.ok()) return r.status();
        if (!r->row) {
          return NotFound("CANDIDATE_NOT_FOUND", "no such candidate profile");
        }
        person_id = r->person_id;
        creator = r->row->profile.creating_agency();
        return absl::OkStatus();
      });
  absl::StatusOr<AccessView> access;
  if (status.ok()) {
    call.set_person_target(PersonName(person_id), "candidate", {kEmployment});
    access = AskAccess(*this, call, PersonName(person_id),
                       {DATA_CATEGORY_EMPLOYMENT, DATA_CATEGORY_LANGUAGE},
                       /*serves=*/creator == me.name());
    status = access.ok() ? RequireAllowed(*access, DATA_CATEGORY_EMPLOYMENT)
                         : access.status();
  }
  bool wrote_stated = false;
  for (const std::string& p : paths) {
    wrote_stated |= p == "stated_language_level";
  }
  if (status.ok()) {
    status = call.Write([&](Transaction& tx,
                            const LocalAgency& caller) -> absl::Status {
      absl::StatusOr<std::optional<CandidateRow>> found =
          ReadCandidate(tx, person_id);
      if (!found.ok()) return found.status();
      if (!found->has_value() || !(*found)->merged_into.empty()) {
        return NotFound("CANDIDATE_NOT_FOUND", "no such candidate profile");
      }
      CandidateRow row = **found;
      // The etag is that of the name the caller read.
      if (absl::Status s = api::CheckEtag(
              in.etag(), api::ComputeEtag(CandidateName(id), row.version));
          !s.ok()) {
        return s;
      }
      const v1::CandidateProfile before = row.profile;
      ApplyProfileMask(in, paths, &row.profile);
      FieldViolations ids;
      if (absl::Status s = AssignQualificationIds(&before, &row.profile, &ids);
          !s.ok()) {
        return s;
      }
      if (!ids.empty()) return ids.ToStatus();
      StampRecognition(caller, now, &row.profile);
      *row.profile.mutable_update_time() = api::ToTimestamp(now);
      ++row.version;
      absl::StatusOr<int64_t> seq = NextIndexSeq(tx);
      if (!seq.ok()) return seq.status();
      if (absl::Status s = UpdateCandidate(tx, row, *seq); !s.ok()) return s;
      std::vector<std::string> categories = {kEmployment};
      if (wrote_stated) categories.push_back(kLanguage);
      call.Touch(PersonName(person_id), "candidate", categories);
      absl::StatusOr<std::optional<PersonFacts>> facts =
          ReadFacts(tx, person_id);
      if (!facts.ok()) return facts.status();
      CandidateOut(row, *facts, out);
      return absl::OkStatus();
    });
  }
  if (status.ok()) FilterWriteResponse(*access, wrote_stated, out);
  return call.Finish(status);
}

absl::Status PlacementServiceImpl::DoSetQualificationRecognition(
    const Rc& rc, const v1::SetQualificationRecognitionRequest& request,
    v1::Qualification* out) {
  AuditedCall call(call_env(), rc, "SetQualificationRecognition",
                   request.name());
  const absl::Time now = Now();
  FieldViolations v;
  const std::string id =
      api::ParseNameId(request.name(), kCandidatePattern, "name", &v);
  if (request.qualification_id().empty()) {
    v.Add("qualification_id", "is required");
  }
  if (request.recognition_state() == v1::RECOGNITION_STATE_UNSPECIFIED ||
      !v1::RecognitionState_IsValid(request.recognition_state())) {
    v.Add("recognition_state", "is required");
  }
  if (!request.occupation_code().empty() &&
      !IsKldb2010Code(request.occupation_code())) {
    v.Add("occupation_code", kNotKldbCode);
  }
  LocalAgency me;
  std::string person_id;
  std::string creator;
  absl::Status status = call.Read(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        me = caller;
        if (absl::Status s =
                RequireDomain(caller, {"KAMMER", "JOBCENTER", "ARBEITSAGENTUR"},
                              "set recognition states");
            !s.ok()) {
          return s;
        }
        if (!v.empty()) return v.ToStatus();
        absl::StatusOr<ResolvedCandidate> r = ResolveCandidate(tx, id);
        if (!r.ok()) return r.status();
        if (!r->row) {
          return NotFound("CANDIDATE_NOT_FOUND", "no such candidate profile");
        }
        person_id = r->person_id;
        creator = r->row->profile.creating_agency();
        return absl::OkStatus();
      });
  // Chambers write recognition states by their own right and see nothing
  // else; employment agencies change the profile and need EMPLOYMENT
  // access like any other update.
  if (status.ok() && me.legal_domain != "KAMMER") {
    call.set_person_target(PersonName(person_id), "candidate", {kEmployment});
    absl::StatusOr<AccessView> access =
        AskAccess(*this, call, PersonName(person_id),
                  {DATA_CATEGORY_EMPLOYMENT}, creator == me.name());
    status = access.ok() ? RequireAllowed(*access, DATA_CATEGORY_EMPLOYMENT)
                         : access.status();
  }
  if (status.ok()) {
    status = call.Write([&](Transaction& tx,
                            const LocalAgency& caller) -> absl::Status {
      absl::StatusOr<std::optional<CandidateRow>> found =
          ReadCandidate(tx, person_id);
      if (!found.ok()) return found.status();
      if (!found->has_value() || !(*found)->merged_into.empty()) {
        return NotFound("CANDIDATE_NOT_FOUND", "no such candidate profile");
      }
      CandidateRow row = **found;
      if (!request.etag().empty()) {
        if (absl::Status s = api::CheckEtag(
                request.etag(),
                api::ComputeEtag(CandidateName(id), row.version));
            !s.ok()) {
          return s;
        }
      }
      v1::Qualification* q = nullptr;
      for (v1::Qualification& each : *row.profile.mutable_qualifications()) {
        if (each.qualification_id() == request.qualification_id()) q = &each;
      }
      if (q == nullptr) {
        return NotFound("QUALIFICATION_NOT_FOUND",
                        "the profile has no such qualification");
      }
      q->set_recognition_state(request.recognition_state());
      if (!request.occupation_code().empty()) {
        q->set_occupation_code(request.occupation_code());
      }
      q->set_recognition_agency(caller.name());
      *q->mutable_recognition_update_time() = api::ToTimestamp(now);
      *out = *q;
      *row.profile.mutable_update_time() = api::ToTimestamp(now);
      ++row.version;
      absl::StatusOr<int64_t> seq = NextIndexSeq(tx);
      if (!seq.ok()) return seq.status();
      if (absl::Status s = UpdateCandidate(tx, row, *seq); !s.ok()) return s;
      call.Touch(
          PersonName(person_id),
          absl::StrCat("candidate/qualifications/", request.qualification_id()),
          {kEmployment});
      return absl::OkStatus();
    });
  }
  return call.Finish(status);
}

}  // namespace lotse::placement
