// CreateOffer, GetOffer, ListOffers, UpdateOffer, WithdrawOffer. Offers
// carry no personal data: reads are not audited, writes are (against the
// offer), and WithdrawOffer audits each placement it ends.
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/api/etag.h"
#include "common/api/idempotency.h"
#include "common/api/paging.h"
#include "common/api/text.h"
#include "services/placement/service/internal.h"

namespace lotse::placement {

using ::lotse::agencies::AuditedCall;
using ::lotse::agencies::LocalAgency;
using ::lotse::storage::Transaction;

namespace {

constexpr char kPublishers[] = "publish offers";

// Applies the fields of `paths` from `in` to `out`.
void ApplyOfferMask(const v1::Offer& in, const std::vector<std::string>& paths,
                    v1::Offer* out) {
  for (const std::string& p : paths) {
    if (p == "title") out->set_title(in.title());
    if (p == "description") out->set_description(in.description());
    if (p == "occupation_code") out->set_occupation_code(in.occupation_code());
    if (p == "employer_name") out->set_employer_name(in.employer_name());
    if (p == "place") *out->mutable_place() = in.place();
    if (p == "hours") *out->mutable_hours() = in.hours();
    if (p == "start_date") *out->mutable_start_date() = in.start_date();
    if (p == "end_date") *out->mutable_end_date() = in.end_date();
    if (p == "required_language_level") {
      out->set_required_language_level(in.required_language_level());
    }
    if (p == "required_skills") {
      *out->mutable_required_skills() = in.required_skills();
    }
    if (p == "required_qualification_codes") {
      *out->mutable_required_qualification_codes() =
          in.required_qualification_codes();
    }
    if (p == "recognition_required") {
      out->set_recognition_required(in.recognition_required());
    }
    if (p == "positions_total") out->set_positions_total(in.positions_total());
    if (p == "training_duration_months") {
      out->set_training_duration_months(in.training_duration_months());
    }
    if (p == "chamber_agency") out->set_chamber_agency(in.chamber_agency());
  }
}

absl::StatusOr<OfferRow> LockedOffer(Transaction& tx, const std::string& id) {
  if (absl::Status s = LockOffer(tx, id); !s.ok()) return s;
  absl::StatusOr<std::optional<OfferRow>> row = ReadOffer(tx, id);
  if (!row.ok()) return row.status();
  if (!row->has_value()) return NotFound("OFFER_NOT_FOUND", "no such offer");
  return **row;
}

}  // namespace

absl::Status PlacementServiceImpl::DoCreateOffer(
    const Rc& rc, const v1::CreateOfferRequest& request, v1::Offer* out) {
  AuditedCall call(call_env(), rc, "CreateOffer", "offers");
  const absl::Time now = Now();
  absl::Status status = call.Write([&](Transaction& tx,
                                       const LocalAgency& me) -> absl::Status {
    if (absl::Status s = RequireDomain(
            me, {"ARBEITSAGENTUR", "JOBCENTER", "KAMMER"}, kPublishers);
        !s.ok()) {
      return s;
    }
    if (me.legal_domain == "KAMMER" &&
        request.offer().kind() != v1::OFFER_KIND_APPRENTICESHIP) {
      return Denied("WRONG_LEGAL_DOMAIN",
                    "chambers publish apprenticeships only");
    }
    FieldViolations v;
    api::ValidateRequestId(request.request_id(), "request_id", &v);
    ValidateOffer(request.offer(), {}, /*creating=*/true, DayIndex(now), &v);
    if (!v.empty()) return v.ToStatus();

    const api::IdempotentCreate once(me.id, rc.method, request);
    absl::StatusOr<std::optional<std::string>> seen = once.Lookup(tx);
    if (!seen.ok()) return seen.status();
    if (seen->has_value()) {
      absl::string_view id = **seen;
      id.remove_prefix(std::string("offers/").size());
      absl::StatusOr<std::optional<OfferRow>> row = ReadOffer(tx, id);
      if (!row.ok()) return row.status();
      if (!row->has_value()) return absl::InternalError("recorded offer gone");
      call.set_target(**seen);
      OfferOut(**row, out);
      return absl::OkStatus();
    }
    absl::StatusOr<std::string> id = api::NewId();
    if (!id.ok()) return id.status();
    OfferRow row;
    row.id = *id;
    row.version = 1;
    row.offer = request.offer();
    v1::Offer& o = row.offer;
    o.clear_name();
    o.clear_etag();
    o.clear_withdraw_reason();
    o.set_publishing_agency(me.name());
    o.set_positions_open(o.positions_total());
    o.set_state(v1::OFFER_STATE_OPEN);
    *o.mutable_create_time() = api::ToTimestamp(now);
    *o.mutable_update_time() = api::ToTimestamp(now);
    absl::StatusOr<int64_t> seq = NextIndexSeq(tx);
    if (!seq.ok()) return seq.status();
    if (absl::Status s = InsertOffer(tx, row, *seq); !s.ok()) return s;
    if (absl::Status s = once.Record(tx, OfferName(row.id)); !s.ok()) {
      return s;
    }
    call.set_target(OfferName(row.id));
    OfferOut(row, out);
    return absl::OkStatus();
  });
  return call.Finish(status);
}

absl::Status PlacementServiceImpl::DoGetOffer(
    const Rc& rc, const v1::GetOfferRequest& request, v1::Offer* out) {
  AuditedCall call(call_env(), rc, "GetOffer", request.name());
  call.set_audit_personal_only();
  absl::Status status =
      call.Read([&](Transaction& tx, const LocalAgency&) -> absl::Status {
        FieldViolations v;
        const std::string id =
            api::ParseNameId(request.name(), kOfferPattern, "name", &v);
        if (!v.empty()) return v.ToStatus();
        absl::StatusOr<std::optional<OfferRow>> row = ReadOffer(tx, id);
        if (!row.ok()) return row.status();
        if (!row->has_value()) {
          return NotFound("OFFER_NOT_FOUND", "no such offer");
        }
        OfferOut(**row, out);
        return absl::OkStatus();
      });
  return call.Finish(status);
}

absl::Status PlacementServiceImpl::DoListOffers(
    const Rc& rc, const v1::ListOffersRequest& request,
    v1::ListOffersResponse* out) {
  AuditedCall call(call_env(), rc, "ListOffers", "offers");
  call.set_audit_personal_only();
  absl::Status status = call.Read([&](Transaction& tx,
                                      const LocalAgency&) -> absl::Status {
    FieldViolations v;
    const int size =
        api::NormalizePageSize(request.page_size(), "page_size", &v);
    OfferFilter filter;
    for (int i = 0; i < request.states_size(); ++i) {
      const int s = request.states(i);
      if (s == 0 || !v1::OfferState_IsValid(s)) {
        v.Add(absl::StrCat("states[", i, "]"), "must be an offer state");
      }
      filter.states.push_back(s);
    }
    if (filter.states.empty()) filter.states = {v1::OFFER_STATE_OPEN};
    if (!v1::OfferKind_IsValid(request.kind())) {
      v.Add("kind", "must be an offer kind");
    }
    filter.kind = request.kind();
    const std::string& prefix = request.occupation_code_prefix();
    if (!prefix.empty() &&
        (prefix.size() > 5 ||
         !std::all_of(prefix.begin(), prefix.end(), absl::ascii_isdigit))) {
      v.Add("occupation_code_prefix", "must be 1..5 digits");
    }
    filter.occupation_code_prefix = prefix;
    const std::string& ags = request.municipality_code();
    if (!ags.empty() &&
        (ags.size() != 8 ||
         !std::all_of(ags.begin(), ags.end(), absl::ascii_isdigit))) {
      v.Add("municipality_code", "must be a municipality key (eight digits)");
    }
    filter.municipality_code = ags;
    if (!request.publishing_agency().empty()) {
      api::ParseNameId(request.publishing_agency(), api::kAgencyName,
                       "publishing_agency", &v);
      filter.publisher = request.publishing_agency();
    }
    v1::ListOffersRequest fp = request;
    fp.clear_page_size();
    fp.clear_page_token();
    const std::string fingerprint = fp.SerializeAsString();
    const std::string last = api::DecodePageToken(
        request.page_token(), fingerprint, "page_token", &v);
    std::optional<PageKey> after = PageKey{};
    if (!last.empty()) {
      after = PageKey::Decode(last);
      if (!after) v.Add("page_token", "is not a valid page token");
    }
    if (!v.empty()) return v.ToStatus();
    absl::StatusOr<std::vector<OfferRow>> rows =
        ListOffers(tx, filter, *after, size + 1);
    if (!rows.ok()) return rows.status();
    for (size_t i = 0; i < rows->size() && i < static_cast<size_t>(size); ++i) {
      OfferOut((*rows)[i], out->add_offers());
    }
    if (rows->size() > static_cast<size_t>(size)) {
      const OfferRow& l = (*rows)[size - 1];
      out->set_next_page_token(api::EncodePageToken(
          fingerprint,
          PageKey{ToMicros(api::FromTimestamp(l.offer.create_time())), l.id}
              .Encode()));
    }
    return absl::OkStatus();
  });
  return call.Finish(status);
}

absl::Status PlacementServiceImpl::DoUpdateOffer(
    const Rc& rc, const v1::UpdateOfferRequest& request, v1::Offer* out) {
  AuditedCall call(call_env(), rc, "UpdateOffer", request.offer().name());
  const absl::Time now = Now();
  FieldViolations v;
  const std::string id =
      api::ParseNameId(request.offer().name(), kOfferPattern, "offer.name", &v);
  if (request.offer().etag().empty()) v.Add("offer.etag", "is required");
  std::vector<std::string> paths(request.update_mask().paths().begin(),
                                 request.update_mask().paths().end());
  if (paths.empty()) v.Add("update_mask", "is required");
  absl::Status status = call.Write([&](Transaction& tx,
                                       const LocalAgency& me) -> absl::Status {
    if (absl::Status s = RequireDomain(
            me, {"ARBEITSAGENTUR", "JOBCENTER", "KAMMER"}, kPublishers);
        !s.ok()) {
      return s;
    }
    if (!v.empty()) return v.ToStatus();
    absl::StatusOr<OfferRow> row = LockedOffer(tx, id);
    if (!row.ok()) return row.status();
    v1::Offer& o = row->offer;
    if (o.publishing_agency() != me.name()) {
      return Denied("NOT_OFFER_PUBLISHER",
                    "only the publishing agency may change the offer");
    }
    FieldViolations fields;
    v1::Offer changed = o;
    ApplyOfferMask(request.offer(), paths, &changed);
    ValidateOffer(changed, paths, /*creating=*/false, DayIndex(now), &fields);
    if (!fields.empty()) return fields.ToStatus();
    if (absl::Status s =
            api::CheckEtag(request.offer().etag(),
                           api::ComputeEtag(OfferName(row->id), row->version));
        !s.ok()) {
      return s;
    }
    if (o.state() == v1::OFFER_STATE_WITHDRAWN) {
      return Precondition("OFFER_NOT_OPEN", "the offer is withdrawn");
    }
    const int hires = o.positions_total() - o.positions_open();
    if (changed.positions_total() < hires) {
      return ErrorWithReason(absl::StatusCode::kFailedPrecondition,
                             "POSITIONS_BELOW_HIRES",
                             absl::StrCat("the offer has ", hires, " hires"),
                             {{"hires", absl::StrCat(hires)}});
    }
    changed.set_positions_open(changed.positions_total() - hires);
    changed.set_state(changed.positions_open() == 0 ? v1::OFFER_STATE_FILLED
                                                    : v1::OFFER_STATE_OPEN);
    *changed.mutable_update_time() = api::ToTimestamp(now);
    row->offer = changed;
    ++row->version;
    absl::StatusOr<int64_t> seq = NextIndexSeq(tx);
    if (!seq.ok()) return seq.status();
    if (absl::Status s = UpdateOffer(tx, *row, *seq); !s.ok()) return s;
    OfferOut(*row, out);
    return absl::OkStatus();
  });
  return call.Finish(status);
}

absl::Status PlacementServiceImpl::DoWithdrawOffer(
    const Rc& rc, const v1::WithdrawOfferRequest& request, v1::Offer* out) {
  AuditedCall call(call_env(), rc, "WithdrawOffer", request.name());
  const absl::Time now = Now();
  FieldViolations v;
  const std::string id =
      api::ParseNameId(request.name(), kOfferPattern, "name", &v);
  if (request.etag().empty()) v.Add("etag", "is required");
  api::ValidateText(request.reason(), "reason", {1, 500, true}, &v);
  absl::Status status = call.Write([&](Transaction& tx,
                                       const LocalAgency& me) -> absl::Status {
    if (absl::Status s = RequireDomain(
            me, {"ARBEITSAGENTUR", "JOBCENTER", "KAMMER"}, kPublishers);
        !s.ok()) {
      return s;
    }
    if (!v.empty()) return v.ToStatus();
    absl::StatusOr<OfferRow> row = LockedOffer(tx, id);
    if (!row.ok()) return row.status();
    if (row->offer.publishing_agency() != me.name()) {
      return Denied("NOT_OFFER_PUBLISHER",
                    "only the publishing agency may withdraw the offer");
    }
    if (absl::Status s = api::CheckEtag(
            request.etag(), api::ComputeEtag(OfferName(row->id), row->version));
        !s.ok()) {
      return s;
    }
    if (row->offer.state() == v1::OFFER_STATE_WITHDRAWN) {
      return Precondition("OFFER_NOT_OPEN", "the offer is already withdrawn");
    }
    row->offer.set_state(v1::OFFER_STATE_WITHDRAWN);
    row->offer.set_withdraw_reason(request.reason());
    *row->offer.mutable_update_time() = api::ToTimestamp(now);
    ++row->version;
    absl::StatusOr<int64_t> seq = NextIndexSeq(tx);
    if (!seq.ok()) return seq.status();
    if (absl::Status s = UpdateOffer(tx, *row, *seq); !s.ok()) return s;
    v1::Offer named = row->offer;
    named.set_name(OfferName(row->id));
    absl::StatusOr<std::vector<PlacementRow>> open =
        OpenPlacementsOfOffer(tx, row->id);
    if (!open.ok()) return open.status();
    for (PlacementRow& p : *open) {
      if (absl::Status s =
              EndPlacement(tx, &p, named, v1::PLACEMENT_STATE_WITHDRAWN,
                           v1::PLACEMENT_END_REASON_OFFER_CLOSED, "", me.name(),
                           rc.actor, now);
          !s.ok()) {
        return s;
      }
      call.Touch(p.placement.person(), PlacementName(p.id), {kEmployment});
    }
    OfferOut(*row, out);
    return absl::OkStatus();
  });
  return call.Finish(status);
}

}  // namespace lotse::placement
