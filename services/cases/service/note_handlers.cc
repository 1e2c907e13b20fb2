// Notes: private to the agency that writes them, never shown to another.
#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/api/etag.h"
#include "common/api/idempotency.h"
#include "common/api/paging.h"
#include "common/api/text.h"
#include "common/api/time.h"
#include "common/errors/status.h"
#include "services/cases/domain/rules.h"
#include "services/cases/service/cases_service.h"
#include "services/cases/service/internal.h"

namespace lotse::cases {

using agencies::LocalAgency;
using api::StoreNow;
using api::ToTimestamp;
using internal::CaseTarget;
using internal::LoadCase;
using internal::LoadStep;
using internal::NoteToProto;
using server::RequestContext;
using storage::Transaction;

namespace {

absl::Status PrivateToWriter() {
  return ErrorWithReason(absl::StatusCode::kPermissionDenied,
                         "PRIVATE_TO_WRITER",
                         "notes are readable only by the writing agency");
}

std::string NoteTarget(absl::string_view name) {
  FieldViolations ignored;
  std::string c, s, n;
  if (ParseNoteName(name, "name", &c, &s, &n, &ignored)) {
    return NoteName(c, s, n);
  }
  return "cases";
}

}  // namespace

absl::Status CasesServiceImpl::DoCreateNote(const RequestContext& rc,
                                            const v1::CreateNoteRequest& req,
                                            v1::Note* resp) {
  const std::string target = CaseTarget(req.parent());
  agencies::AuditedCall call(call_env_, rc, "CreateNote", target);
  internal::AuditAs(call, target);
  return call.Finish(WriteAndWake(
      call, [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        internal::AuditAs(call, target, {internal::kCategoryNotes});
        FieldViolations violations;
        std::string cid, sid;
        if (absl::StrContains(req.parent(), "/steps/")) {
          ParseStepName(req.parent(), "parent", &cid, &sid, &violations);
        } else {
          cid = ParseCaseName(req.parent(), "parent", &violations);
        }
        api::ValidateRequestId(req.request_id(), "request_id", &violations);
        api::ValidateText(req.note().text(), "note.text", {1, 10000, true},
                          &violations);
        if (!violations.empty()) return violations.ToStatus();
        const std::string agency = AgencyName(caller.id);
        const api::IdempotentCreate once(caller.id, rc.method, req);
        absl::StatusOr<std::optional<std::string>> seen = once.Lookup(tx);
        if (!seen.ok()) return seen.status();
        if (seen->has_value()) {
          std::string c, s, n;
          FieldViolations ignored;
          ParseNoteName(**seen, "n", &c, &s, &n, &ignored);
          absl::StatusOr<std::optional<NoteRow>> first = ReadNote(tx, n);
          if (!first.ok()) return first.status();
          if (!first->has_value()) {
            return ErrorWithReason(absl::StatusCode::kNotFound,
                                   "NOTE_NOT_FOUND", "the note was deleted");
          }
          internal::AuditResource(call, **seen, {internal::kCategoryNotes});
          *resp = NoteToProto(**first);
          return absl::OkStatus();
        }
        absl::StatusOr<CaseRow> c = LoadCase(tx, cid, agency);
        if (!c.ok()) return c.status();
        if (!sid.empty()) {
          absl::StatusOr<StepRow> s = LoadStep(tx, cid, sid);
          if (!s.ok()) return s.status();
        }
        const absl::Time now = StoreNow();
        NoteRow row;
        row.id = NewId();
        row.case_id = cid;
        row.step_id = sid;
        row.version = 1;
        row.record.set_text(req.note().text());
        row.record.set_author_agency(agency);
        row.record.set_author_actor(rc.actor);
        *row.record.mutable_create_time() = ToTimestamp(now);
        *row.record.mutable_update_time() = ToTimestamp(now);
        if (absl::Status s = InsertNote(tx, row); !s.ok()) return s;
        const std::string name = NoteName(cid, sid, row.id);
        if (absl::Status s = once.Record(tx, name); !s.ok()) {
          return s;
        }
        internal::AuditResource(call, name, {internal::kCategoryNotes});
        *resp = NoteToProto(row);
        return absl::OkStatus();
      }));
}

absl::Status CasesServiceImpl::DoGetNote(const RequestContext& rc,
                                         const v1::GetNoteRequest& req,
                                         v1::Note* resp) {
  const std::string target = NoteTarget(req.name());
  agencies::AuditedCall call(call_env_, rc, "GetNote", target);
  internal::AuditAs(call, target);
  return call.Finish(call.Read(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        internal::AuditAs(call, target, {internal::kCategoryNotes});
        FieldViolations violations;
        std::string cid, sid, nid;
        ParseNoteName(req.name(), "name", &cid, &sid, &nid, &violations);
        if (!violations.empty()) return violations.ToStatus();
        absl::StatusOr<std::optional<NoteRow>> note = ReadNote(tx, nid);
        if (!note.ok()) return note.status();
        if (!note->has_value() || (*note)->case_id != cid ||
            (*note)->step_id != sid) {
          return ErrorWithReason(absl::StatusCode::kNotFound, "NOTE_NOT_FOUND",
                                 "no such note");
        }
        if ((*note)->record.author_agency() != AgencyName(caller.id)) {
          return PrivateToWriter();
        }
        *resp = NoteToProto(**note);
        return absl::OkStatus();
      }));
}

absl::Status CasesServiceImpl::DoListNotes(const RequestContext& rc,
                                           const v1::ListNotesRequest& req,
                                           v1::ListNotesResponse* resp) {
  const std::string target = CaseTarget(req.parent());
  agencies::AuditedCall call(call_env_, rc, "ListNotes", target);
  internal::AuditAs(call, target);
  return call.Finish(call.Read(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        internal::AuditAs(call, target, {internal::kCategoryNotes});
        FieldViolations violations;
        std::string cid, sid;
        const bool on_step = absl::StrContains(req.parent(), "/steps/");
        if (on_step) {
          ParseStepName(req.parent(), "parent", &cid, &sid, &violations);
        } else {
          cid = ParseCaseName(req.parent(), "parent", &violations);
        }
        const int page =
            api::NormalizePageSize(req.page_size(), "page_size", &violations);
        const std::string last = api::DecodePageToken(
            req.page_token(), req.parent(), "page_token", &violations);
        int64_t after_us = 0;
        std::string after_id;
        if (!last.empty()) {
          std::vector<std::string> parts = absl::StrSplit(last, '|');
          if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &after_us)) {
            violations.Add("page_token", "is not a valid page token");
          } else {
            after_id = parts[1];
          }
        }
        if (!violations.empty()) return violations.ToStatus();
        const std::string agency = AgencyName(caller.id);
        absl::StatusOr<CaseRow> c = LoadCase(tx, cid, agency);
        if (!c.ok()) return c.status();
        absl::StatusOr<std::vector<NoteRow>> notes =
            cases::ListNotes(tx, cid, sid, on_step, agency, !last.empty(),
                             after_us, after_id, page + 1);
        if (!notes.ok()) return notes.status();
        for (int i = 0; i < static_cast<int>(notes->size()) && i < page; ++i) {
          *resp->add_notes() = NoteToProto((*notes)[i]);
        }
        if (static_cast<int>(notes->size()) > page) {
          const NoteRow& l = (*notes)[page - 1];
          resp->set_next_page_token(api::EncodePageToken(
              req.parent(),
              absl::StrCat(ToMicros(api::FromTimestamp(l.record.create_time())),
                           "|", l.id)));
        }
        return absl::OkStatus();
      }));
}

absl::Status CasesServiceImpl::DoUpdateNote(const RequestContext& rc,
                                            const v1::UpdateNoteRequest& req,
                                            v1::Note* resp) {
  const std::string target = NoteTarget(req.note().name());
  agencies::AuditedCall call(call_env_, rc, "UpdateNote", target);
  internal::AuditAs(call, target);
  return call.Finish(WriteAndWake(
      call, [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        internal::AuditAs(call, target, {internal::kCategoryNotes});
        FieldViolations violations;
        std::string cid, sid, nid;
        ParseNoteName(req.note().name(), "note.name", &cid, &sid, &nid,
                      &violations);
        if (req.note().etag().empty()) {
          violations.Add("note.etag", "is required");
        }
        if (req.update_mask().paths_size() != 1 ||
            req.update_mask().paths(0) != "text") {
          violations.Add("update_mask", "must be exactly \"text\"");
        }
        api::ValidateText(req.note().text(), "note.text", {1, 10000, true},
                          &violations);
        if (!violations.empty()) return violations.ToStatus();
        if (absl::Status s = LockCase(tx, cid); !s.ok()) return s;
        absl::StatusOr<std::optional<NoteRow>> note = ReadNote(tx, nid);
        if (!note.ok()) return note.status();
        if (!note->has_value() || (*note)->case_id != cid ||
            (*note)->step_id != sid) {
          return ErrorWithReason(absl::StatusCode::kNotFound, "NOTE_NOT_FOUND",
                                 "no such note");
        }
        NoteRow row = **note;
        if (row.record.author_agency() != AgencyName(caller.id)) {
          return PrivateToWriter();
        }
        if (absl::Status s =
                api::CheckEtag(req.note().etag(), NoteToProto(row).etag());
            !s.ok()) {
          return s;
        }
        row.record.set_text(req.note().text());
        *row.record.mutable_update_time() = ToTimestamp(StoreNow());
        ++row.version;
        if (absl::Status s = cases::UpdateNote(tx, row); !s.ok()) return s;
        *resp = NoteToProto(row);
        return absl::OkStatus();
      }));
}

absl::Status CasesServiceImpl::DoDeleteNote(const RequestContext& rc,
                                            const v1::DeleteNoteRequest& req,
                                            google::protobuf::Empty*) {
  const std::string target = NoteTarget(req.name());
  agencies::AuditedCall call(call_env_, rc, "DeleteNote", target);
  internal::AuditAs(call, target);
  return call.Finish(WriteAndWake(
      call, [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        internal::AuditAs(call, target, {internal::kCategoryNotes});
        FieldViolations violations;
        std::string cid, sid, nid;
        ParseNoteName(req.name(), "name", &cid, &sid, &nid, &violations);
        if (req.etag().empty()) violations.Add("etag", "is required");
        if (!violations.empty()) return violations.ToStatus();
        if (absl::Status s = LockCase(tx, cid); !s.ok()) return s;
        absl::StatusOr<std::optional<NoteRow>> note = ReadNote(tx, nid);
        if (!note.ok()) return note.status();
        if (!note->has_value() || (*note)->case_id != cid ||
            (*note)->step_id != sid) {
          return ErrorWithReason(absl::StatusCode::kNotFound, "NOTE_NOT_FOUND",
                                 "no such note");
        }
        if ((*note)->record.author_agency() != AgencyName(caller.id)) {
          return PrivateToWriter();
        }
        if (absl::Status s =
                api::CheckEtag(req.etag(), NoteToProto(**note).etag());
            !s.ok()) {
          return s;
        }
        return cases::DeleteNote(tx, nid);
      }));
}

}  // namespace lotse::cases
