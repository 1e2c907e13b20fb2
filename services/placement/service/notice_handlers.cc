// ListTrainingTolerationNotices, AcknowledgeTrainingTolerationNotice: only
// the addressed immigration office sees its notices.
#include <string>

#include "absl/strings/str_cat.h"
#include "common/api/etag.h"
#include "common/api/paging.h"
#include "services/placement/service/internal.h"

namespace lotse::placement {

using ::lotse::agencies::AuditedCall;
using ::lotse::agencies::LocalAgency;
using ::lotse::storage::Transaction;

absl::Status PlacementServiceImpl::DoListTrainingTolerationNotices(
    const Rc& rc, const v1::ListTrainingTolerationNoticesRequest& request,
    v1::ListTrainingTolerationNoticesResponse* out) {
  AuditedCall call(call_env(), rc, "ListTrainingTolerationNotices",
                   "trainingTolerationNotices");
  absl::Status status = call.Read([&](Transaction& tx,
                                      const LocalAgency& me) -> absl::Status {
    if (absl::Status s = RequireDomain(me, {"AUSLAENDERBEHOERDE"},
                                       "read training-toleration notices");
        !s.ok()) {
      return s;
    }
    FieldViolations v;
    const int size =
        api::NormalizePageSize(request.page_size(), "page_size", &v);
    v1::ListTrainingTolerationNoticesRequest fp = request;
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
    absl::StatusOr<std::vector<NoticeRow>> rows =
        ListNotices(tx, me.id, request.unacknowledged_only(), *after, size + 1);
    if (!rows.ok()) return rows.status();
    for (size_t i = 0; i < rows->size() && i < static_cast<size_t>(size); ++i) {
      const NoticeRow& n = (*rows)[i];
      NoticeOut(n, out->add_notices());
      call.Touch(n.notice.person(), NoticeName(n.id),
                 {kEmployment, kResidence});
    }
    if (rows->size() > static_cast<size_t>(size)) {
      const NoticeRow& l = (*rows)[size - 1];
      out->set_next_page_token(api::EncodePageToken(
          fingerprint,
          PageKey{ToMicros(api::FromTimestamp(l.notice.create_time())), l.id}
              .Encode()));
    }
    return absl::OkStatus();
  });
  return call.Finish(status);
}

absl::Status PlacementServiceImpl::DoAcknowledgeTrainingTolerationNotice(
    const Rc& rc, const v1::AcknowledgeTrainingTolerationNoticeRequest& request,
    v1::TrainingTolerationNotice* out) {
  AuditedCall call(call_env(), rc, "AcknowledgeTrainingTolerationNotice",
                   request.name());
  const absl::Time now = Now();
  FieldViolations v;
  const std::string id =
      api::ParseNameId(request.name(), kNoticePattern, "name", &v);
  if (request.etag().empty()) v.Add("etag", "is required");
  absl::Status status = call.Write([&](Transaction& tx,
                                       const LocalAgency& me) -> absl::Status {
    if (absl::Status s = RequireDomain(me, {"AUSLAENDERBEHOERDE"},
                                       "acknowledge training-toleration "
                                       "notices");
        !s.ok()) {
      return s;
    }
    if (!v.empty()) return v.ToStatus();
    absl::StatusOr<std::optional<NoticeRow>> found = ReadNotice(tx, id);
    if (!found.ok()) return found.status();
    // Another office's notice is not revealed.
    if (!found->has_value() ||
        (*found)->notice.immigration_office() != me.name()) {
      return NotFound("NOTICE_NOT_FOUND", "no such notice");
    }
    NoticeRow row = **found;
    if (absl::Status s = api::CheckEtag(
            request.etag(), api::ComputeEtag(NoticeName(row.id), row.version));
        !s.ok()) {
      return s;
    }
    if (!row.notice.acknowledged()) {
      row.notice.set_acknowledged(true);
      *row.notice.mutable_acknowledge_time() = api::ToTimestamp(now);
      ++row.version;
      if (absl::Status s = UpdateNotice(tx, row); !s.ok()) return s;
    }
    call.Touch(row.notice.person(), NoticeName(row.id),
               {kEmployment, kResidence});
    NoticeOut(row, out);
    return absl::OkStatus();
  });
  return call.Finish(status);
}

}  // namespace lotse::placement
