// RecordEntitlement, GetEntitlement, ListEntitlements, RevokeEntitlement.
#include <map>
#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/api/etag.h"
#include "common/api/idempotency.h"
#include "common/api/paging.h"
#include "common/api/text.h"
#include "services/courses/domain/dates.h"
#include "services/courses/service/internal.h"

namespace lotse::courses {

using ::lotse::storage::Transaction;

namespace {

absl::Status RequireIssuerDomain(const agencies::LocalAgency& caller,
                                 int kind) {
  if (kind == v1::ENTITLEMENT_KIND_ADMISSION && caller.legal_domain != "BAMF") {
    return Denied("WRONG_LEGAL_DOMAIN", "only BAMF records admissions");
  }
  if (kind == v1::ENTITLEMENT_KIND_OBLIGATION &&
      caller.legal_domain != "AUSLAENDERBEHOERDE" &&
      caller.legal_domain != "JOBCENTER") {
    return Denied("WRONG_LEGAL_DOMAIN",
                  "only the immigration office (AUSLAENDERBEHOERDE) and the "
                  "Jobcenter record obligations");
  }
  return absl::OkStatus();
}

// The entitlement's own field violations (kind, course kinds, units,
// validity, texts); returns its course kinds without duplicates.
std::set<int> ValidateEntitlement(const v1::Entitlement& in,
                                  FieldViolations* v) {
  if (in.kind() == v1::ENTITLEMENT_KIND_UNSPECIFIED) {
    v->Add("entitlement.kind", "is required");
  } else if (!v1::EntitlementKind_IsValid(in.kind())) {
    v->Add("entitlement.kind", "unknown entitlement kind");
  }
  if (in.course_kinds().empty()) {
    v->Add("entitlement.course_kinds", "is required");
  }
  std::set<int> kinds;
  for (int i = 0; i < in.course_kinds_size(); ++i) {
    const int k = in.course_kinds(i);
    const std::string f = absl::StrCat("entitlement.course_kinds[", i, "]");
    if (k == 0 || !v1::CourseKind_IsValid(k)) {
      v->Add(f, "unknown course kind");
    } else if (!kinds.insert(k).second) {
      v->Add(f, "is a duplicate");
    }
  }
  if (in.units() < 1 || in.units() > 1500) {
    v->Add("entitlement.units", "must be 1..1500");
  }
  std::optional<int64_t> from = ValidateDate(
      in.valid_from(), in.has_valid_from(), true, "entitlement.valid_from", v);
  std::optional<int64_t> until =
      ValidateDate(in.valid_until(), in.has_valid_until(), true,
                   "entitlement.valid_until", v);
  if (from && until && *until < *from) {
    v->Add("entitlement.valid_until", "must not be before valid_from");
  }
  api::ValidateText(in.reference(), "entitlement.reference", {0, 64}, v);
  api::ValidateText(in.legal_basis(), "entitlement.legal_basis", {0, 100}, v);
  return kinds;
}

// Answers a repeated RecordEntitlement with the entitlement `name` the
// first one recorded.
absl::Status ReplayEntitlement(Transaction& tx, const std::string& name,
                               int64_t today, CoursesServiceImpl::Call& call,
                               v1::Entitlement* out) {
  absl::string_view id = name;
  absl::ConsumePrefix(&id, "entitlements/");
  absl::StatusOr<std::optional<EntitlementRow>> first = ReadEntitlement(tx, id);
  if (!first.ok()) return first.status();
  if (!first->has_value()) return NotFound("ENTITLEMENT", name);
  call.Touch((*first)->entitlement.person(), name);
  EntitlementOut(**first, today, out);
  return absl::OkStatus();
}

// The entitlement `id` of `person` that `caller` issues from `in`.
EntitlementRow NewEntitlementRow(const v1::Entitlement& in,
                                 const std::set<int>& kinds,
                                 const std::string& id,
                                 const std::string& person,
                                 const agencies::LocalAgency& caller,
                                 absl::Time now) {
  EntitlementRow row;
  row.id = id;
  row.create_us = ToMicros(now);
  v1::Entitlement& e = row.entitlement;
  e.set_person(person);
  e.set_kind(in.kind());
  for (int k : kinds) e.add_course_kinds(static_cast<v1::CourseKind>(k));
  e.set_units(in.units());
  *e.mutable_valid_from() = in.valid_from();
  *e.mutable_valid_until() = in.valid_until();
  e.set_reference(in.reference());
  e.set_legal_basis(in.legal_basis());
  e.set_issuing_agency(caller.name());
  *e.mutable_create_time() = api::ToTimestamp(now);
  *e.mutable_update_time() = api::ToTimestamp(now);
  return row;
}

}  // namespace

absl::Status CoursesServiceImpl::DoRecordEntitlement(
    const Rc& rc, const v1::RecordEntitlementRequest& request,
    v1::Entitlement* out) {
  const server::RelationsReachIdentity relations(runtime_, rc);
  Call call(this, rc, "RecordEntitlement", "entitlements");
  const v1::Entitlement& in = request.entitlement();
  FieldViolations v;
  api::ValidateRequestId(request.request_id(), "request_id", &v);
  if (!request.has_entitlement()) v.Add("entitlement", "is required");
  const std::string person = ParsePerson(in.person(), "entitlement.person", &v);
  const std::set<int> kinds = ValidateEntitlement(in, &v);
  if (!person.empty()) call.set_person_target(person, "entitlements");
  absl::Status status =
      call.Read([&](Transaction&, const agencies::LocalAgency& caller) {
        return RequireIssuerDomain(caller, in.kind());
      });
  if (!status.ok()) return call.Finish(status);
  if (!v.empty()) return call.Finish(v.ToStatus());
  status = RequireStanding(*this, rc, call.caller(), person);
  if (!status.ok()) return call.Finish(status);

  const absl::Time now = absl::FromUnixMicros(ToMicros(options_.clock()));
  status = call.Write([&](Transaction& tx,
                          const agencies::LocalAgency& caller) -> absl::Status {
    if (absl::Status s = RequireIssuerDomain(caller, in.kind()); !s.ok()) {
      return s;
    }
    const api::IdempotentCreate once(caller.id, rc.method, request);
    absl::StatusOr<std::optional<std::string>> seen = once.Lookup(tx);
    if (!seen.ok()) return seen.status();
    const int64_t today = DayOf(now);
    if (seen->has_value()) {
      return ReplayEntitlement(tx, **seen, today, call, out);
    }
    absl::StatusOr<std::string> survivor = ResolveMerged(tx, person);
    if (!survivor.ok()) return survivor.status();
    absl::StatusOr<std::string> id = api::NewId();
    if (!id.ok()) return id.status();
    const EntitlementRow row =
        NewEntitlementRow(in, kinds, *id, *survivor, caller, now);
    const v1::Entitlement& e = row.entitlement;
    if (absl::Status s = InsertEntitlement(tx, row); !s.ok()) return s;
    const std::string name = EntitlementName(row.id);
    v1::EntitlementRecorded event;
    event.set_entitlement(name);
    event.set_person(*survivor);
    event.set_kind(in.kind());
    *event.mutable_course_kinds() = e.course_kinds();
    event.set_issuing_agency(caller.name());
    *event.mutable_valid_until() = in.valid_until();
    if (absl::Status s = Enqueue(tx, event, *survivor); !s.ok()) return s;
    if (absl::Status s = once.Record(tx, name); !s.ok()) {
      return s;
    }
    call.Touch(*survivor, name);
    EntitlementOut(row, today, out);
    return absl::OkStatus();
  });
  return call.Finish(status);
}

absl::Status CoursesServiceImpl::DoGetEntitlement(
    const Rc& rc, const v1::GetEntitlementRequest& request,
    v1::Entitlement* out) {
  Call call(this, rc, "GetEntitlement", "entitlements");
  FieldViolations v;
  const std::string id =
      ParseSimpleName(request.name(), "entitlements", "name", &v);
  if (!v.empty()) return call.Finish(v.ToStatus());
  call.set_resource(request.name());
  const int64_t today = DayOf(options_.clock());
  bool owner = false, serves = false;
  absl::Status status = call.Read([&](Transaction& tx,
                                      const agencies::LocalAgency& caller) {
    absl::StatusOr<std::optional<EntitlementRow>> e = ReadEntitlement(tx, id);
    if (!e.ok()) return e.status();
    if (!e->has_value()) return NotFound("ENTITLEMENT", request.name());
    const v1::Entitlement& p = (*e)->entitlement;
    owner = p.issuing_agency() == caller.name();
    if (!owner) {
      absl::StatusOr<bool> s = AgencyServesPerson(tx, caller.id, p.person());
      if (!s.ok()) return s.status();
      serves = *s;
    }
    call.Touch(p.person(), request.name());
    EntitlementOut(**e, today, out);
    return absl::OkStatus();
  });
  if (status.ok()) {
    status = AuthorizeLanguageRead(*this, call, out->person(), owner, serves);
    if (!status.ok()) out->Clear();
  }
  return call.Finish(status);
}

namespace {

// Where a ListEntitlements page token continues: "<create_us> <id>" of the
// last entitlement of the page before.
void ParseEntitlementPosition(const std::string& token, int64_t* before_us,
                              std::string* before_id, FieldViolations* v) {
  if (token.empty()) return;
  std::vector<std::string> parts = absl::StrSplit(token, ' ');
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], before_us)) {
    v->Add("page_token", "is malformed");
  } else {
    *before_id = parts[1];
  }
}

// An entitlement read for a list page, with whether the caller issued it
// or serves its person.
struct ListedEntitlement {
  EntitlementRow row;
  bool owner = false, serves = false;
};

// Adds to the page the listed entitlements whose LANGUAGE data the caller
// may read (its own, or by identity's decision, asked once per person).
void AddReadableEntitlements(CoursesServiceImpl& service,
                             const server::RequestContext& rc,
                             CoursesServiceImpl::Call& call,
                             const std::vector<ListedEntitlement>& items,
                             int64_t today, v1::ListEntitlementsResponse* out) {
  std::map<std::string, bool> decided;
  for (const ListedEntitlement& item : items) {
    const std::string& p = item.row.entitlement.person();
    bool allowed = item.owner;
    if (!allowed) {
      auto it = decided.find(p);
      if (it == decided.end()) {
        it = decided
                 .emplace(p, AuthorizeLanguageRead(service, call, p, false,
                                                   item.serves)
                                 .ok())
                 .first;
      }
      allowed = it->second;
    }
    if (!allowed) continue;
    EntitlementOut(item.row, today, out->add_entitlements());
    call.Touch(p, EntitlementName(item.row.id));
  }
}

}  // namespace

absl::Status CoursesServiceImpl::DoListEntitlements(
    const Rc& rc, const v1::ListEntitlementsRequest& request,
    v1::ListEntitlementsResponse* out) {
  Call call(this, rc, "ListEntitlements", "entitlements");
  FieldViolations v;
  const int page_size =
      api::NormalizePageSize(request.page_size(), "page_size", &v);
  std::string person = ParsePerson(request.person(), "person", &v, false);
  if (request.person().empty() && !request.issued_by_caller()) {
    v.Add("person", "is required unless issued_by_caller is set");
  }
  std::set<int> states;
  for (int i = 0; i < request.states_size(); ++i) {
    const int s = request.states(i);
    if (s == 0 || !v1::EntitlementState_IsValid(s)) {
      v.Add(absl::StrCat("states[", i, "]"), "unknown entitlement state");
    }
    states.insert(s);
  }
  const std::string fingerprint =
      absl::StrCat(request.person(), "|", request.issued_by_caller(), "|",
                   absl::StrJoin(states, ","));
  const std::string token =
      api::DecodePageToken(request.page_token(), fingerprint, "page_token", &v);
  int64_t before_us = 0;
  std::string before_id;
  ParseEntitlementPosition(token, &before_us, &before_id, &v);
  if (!v.empty()) return call.Finish(v.ToStatus());
  call.set_resource(person.empty() ? "entitlements" : person);
  const int64_t today = DayOf(options_.clock());
  std::vector<ListedEntitlement> items;
  std::string last_key;
  absl::Status status = call.Read([&](Transaction& tx,
                                      const agencies::LocalAgency& caller) {
    items.clear();
    last_key.clear();
    if (!person.empty()) {
      absl::StatusOr<std::string> s = ResolveMerged(tx, person);
      if (!s.ok()) return s.status();
      person = *s;
    }
    absl::StatusOr<std::vector<EntitlementRow>> rows = ListEntitlementRows(
        tx, person, request.issued_by_caller() ? caller.id : "", before_us,
        before_id, page_size + 1);
    if (!rows.ok()) return rows.status();
    const bool more = static_cast<int>(rows->size()) > page_size;
    if (more) rows->resize(page_size);
    for (EntitlementRow& e : *rows) {
      if (more) last_key = absl::StrCat(e.create_us, " ", e.id);
      if (!states.empty() && states.count(EntitlementStateAt(e, today)) == 0) {
        continue;
      }
      ListedEntitlement item;
      item.owner = e.entitlement.issuing_agency() == caller.name();
      if (!item.owner) {
        absl::StatusOr<bool> s =
            AgencyServesPerson(tx, caller.id, e.entitlement.person());
        if (!s.ok()) return s.status();
        item.serves = *s;
      }
      item.row = std::move(e);
      items.push_back(std::move(item));
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return call.Finish(status);
  AddReadableEntitlements(*this, rc, call, items, today, out);
  if (!last_key.empty()) {
    out->set_next_page_token(api::EncodePageToken(fingerprint, last_key));
  }
  return call.Finish(absl::OkStatus());
}

absl::Status CoursesServiceImpl::DoRevokeEntitlement(
    const Rc& rc, const v1::RevokeEntitlementRequest& request,
    v1::Entitlement* out) {
  const server::RelationsReachIdentity relations(runtime_, rc);
  Call call(this, rc, "RevokeEntitlement", "entitlements");
  FieldViolations v;
  const std::string id =
      ParseSimpleName(request.name(), "entitlements", "name", &v);
  if (request.etag().empty()) v.Add("etag", "is required");
  api::ValidateText(request.reason(), "reason", {1, 500}, &v);
  if (!v.empty()) return call.Finish(v.ToStatus());
  call.set_resource(request.name());
  const absl::Time now = absl::FromUnixMicros(ToMicros(options_.clock()));
  return call.Finish(
      call.Write([&](Transaction& tx,
                     const agencies::LocalAgency& caller) -> absl::Status {
        absl::StatusOr<std::optional<EntitlementRow>> found =
            ReadEntitlement(tx, id);
        if (!found.ok()) return found.status();
        if (!found->has_value()) return NotFound("ENTITLEMENT", request.name());
        const std::string person = (*found)->entitlement.person();
        // Serialise with bookings taking units of the person's entitlements.
        if (absl::Status s =
                tx.LockNamed(absl::StrCat("courses.person/", person));
            !s.ok()) {
          return s;
        }
        found = ReadEntitlement(tx, id);
        if (!found.ok()) return found.status();
        EntitlementRow row = **found;
        call.Touch(row.entitlement.person(), request.name());
        if (row.entitlement.issuing_agency() != caller.name()) {
          return Denied("NOT_ISSUER", "only the issuing agency may revoke it");
        }
        if (absl::Status s = api::CheckEtag(
                request.etag(), api::ComputeEtag(request.name(), row.version));
            !s.ok()) {
          return s;
        }
        if (row.revoked) {
          return Precondition("TRANSITION_NOT_ALLOWED", "already revoked");
        }
        row.revoked = true;
        row.entitlement.set_revoke_reason(request.reason());
        *row.entitlement.mutable_update_time() = api::ToTimestamp(now);
        ++row.version;
        if (absl::Status s = WriteEntitlement(tx, row); !s.ok()) return s;
        v1::EntitlementRevoked event;
        event.set_entitlement(request.name());
        event.set_person(row.entitlement.person());
        event.set_issuing_agency(caller.name());
        if (absl::Status s = Enqueue(tx, event, row.entitlement.person());
            !s.ok()) {
          return s;
        }
        EntitlementOut(row, DayOf(now), out);
        return absl::OkStatus();
      }));
}

}  // namespace lotse::courses
