// Steps (referrals): create, read, list, update, and the five transitions.
#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/api/etag.h"
#include "common/api/idempotency.h"
#include "common/api/paging.h"
#include "common/api/text.h"
#include "common/api/time.h"
#include "common/errors/status.h"
#include "lotse/cases/v1/events.pb.h"
#include "services/cases/domain/plan_rules.h"
#include "services/cases/domain/rules.h"
#include "services/cases/domain/step_transitions.h"
#include "services/cases/service/cases_service.h"
#include "services/cases/service/internal.h"

namespace lotse::cases {

using agencies::LocalAgency;
using api::StoreNow;
using api::ToTimestamp;
using internal::CaseTarget;
using internal::CaseToProto;
using internal::Emit;
using internal::LoadCase;
using internal::LoadStep;
using internal::StepToProto;
using server::RequestContext;
using storage::Transaction;

namespace {

std::string StepTarget(absl::string_view name) {
  FieldViolations ignored;
  std::string c, s;
  if (ParseStepName(name, "name", &c, &s, &ignored)) return StepName(c, s);
  return "cases";
}

void ValidateDate(const type::v1::Date& d, const std::string& field,
                  FieldViolations* violations) {
  if (!IsValidDate(d)) violations->Add(field, "is not a valid date");
}

// FAILED_PRECONDITION, reason DEPENDENCIES_NOT_DONE (metadata "steps"),
// unless every step `step` depends on is DONE.
absl::Status RequireDependenciesDone(Transaction& tx, const v1::Step& step) {
  std::vector<std::string> missing;
  for (const std::string& d : step.depends_on()) {
    std::string dc, ds;
    FieldViolations ignored;
    if (!ParseStepName(d, "d", &dc, &ds, &ignored)) continue;
    absl::StatusOr<std::optional<StepRow>> dep = ReadStep(tx, dc, ds);
    if (!dep.ok()) return dep.status();
    if (!dep->has_value() || (*dep)->record.state() != v1::STEP_STATE_DONE) {
      missing.push_back(d);
    }
  }
  if (missing.empty()) return absl::OkStatus();
  return ErrorWithReason(absl::StatusCode::kFailedPrecondition,
                         "DEPENDENCIES_NOT_DONE",
                         "steps this one depends on are not done",
                         {{"steps", absl::StrJoin(missing, ",")}});
}

// The checks of CreateStep that need no storage, after the parent and the
// request id: sets the receiving agency's id and the ids of the steps the
// new one depends on (in the same case).
void ValidateNewStep(const v1::Step& in, const std::string& case_id,
                     std::string* receiver_id, std::vector<std::string>* deps,
                     FieldViolations* violations) {
  if (in.kind() == v1::STEP_KIND_UNSPECIFIED ||
      !v1::StepKind_IsValid(in.kind())) {
    violations->Add("step.kind", "is required");
  }
  *receiver_id = ParseAgencyName(in.receiving_agency(), "step.receiving_agency",
                                 violations);
  api::ValidateText(in.description(), "step.description", {0, 2000, true},
                    violations);
  if (in.depends_on_size() > 20) {
    violations->Add("step.depends_on", "at most 20 dependencies");
  }
  for (int i = 0; i < in.depends_on_size(); ++i) {
    std::string dc, ds;
    const std::string f = absl::StrCat("step.depends_on[", i, "]");
    if (ParseStepName(in.depends_on(i), f, &dc, &ds, violations)) {
      if (dc != case_id) {
        violations->Add(f, "must be a step of the same case");
      } else {
        deps->push_back(ds);
      }
    }
  }
  const int32_t today = DayKeyOf(StoreNow());
  if (in.has_due_date()) {
    ValidateDate(in.due_date(), "step.due_date", violations);
    if (IsValidDate(in.due_date()) && DateKey(in.due_date()) < today) {
      violations->Add("step.due_date", "must not be before the referral date");
    }
  }
}

// NOT_FOUND (AGENCY_NOT_FOUND) or FAILED_PRECONDITION (AGENCY_NOT_ACTIVE)
// unless the agency a step is referred to is registered and active.
absl::Status CheckReceiver(Transaction& tx, const std::string& receiver_id) {
  absl::StatusOr<std::optional<LocalAgency>> receiver =
      ReadAgency(tx, receiver_id);
  if (!receiver.ok()) return receiver.status();
  if (!receiver->has_value()) {
    return ErrorWithReason(absl::StatusCode::kNotFound, "AGENCY_NOT_FOUND",
                           "no such agency in the registry");
  }
  if ((*receiver)->suspended) {
    return ErrorWithReason(absl::StatusCode::kFailedPrecondition,
                           "AGENCY_NOT_ACTIVE",
                           "the receiving agency is suspended");
  }
  return absl::OkStatus();
}

// A violation "step.goal_id" unless the current plan of the case has a
// goal `goal_id`.
absl::Status CheckGoalExists(Transaction& tx, const std::string& case_id,
                             const std::string& goal_id,
                             FieldViolations* violations) {
  absl::StatusOr<std::optional<v1::IntegrationPlan>> plan =
      ReadPlan(tx, case_id, 0);
  if (!plan.ok()) return plan.status();
  if (!plan->has_value() || !PlanHasGoal(**plan, goal_id)) {
    violations->Add("step.goal_id", "no such goal in the current plan");
  }
  return absl::OkStatus();
}

// The checks of UpdateStep that need no storage, after name and etag: sets
// the paths the mask names and, for "depends_on", the new dependencies'
// step ids (same case, not the step itself).
void ValidateStepUpdate(const v1::Step& in,
                        const google::protobuf::FieldMask& mask,
                        const std::string& cid, const std::string& sid,
                        absl::flat_hash_set<std::string>* paths,
                        std::vector<std::string>* deps,
                        FieldViolations* violations) {
  if (mask.paths_size() == 0) {
    violations->Add("update_mask", "is required");
  }
  for (const std::string& p : mask.paths()) {
    if (p == "description" || p == "goal_id" || p == "depends_on" ||
        p == "due_date") {
      paths->insert(p);
    } else {
      violations->Add("update_mask",
                      absl::StrCat("path \"", p, "\" cannot be changed"));
    }
  }
  if (paths->contains("description")) {
    api::ValidateText(in.description(), "step.description", {0, 2000, true},
                      violations);
  }
  if (paths->contains("depends_on")) {
    if (in.depends_on_size() > 20) {
      violations->Add("step.depends_on", "at most 20 dependencies");
    }
    for (int i = 0; i < in.depends_on_size(); ++i) {
      std::string dc, ds;
      const std::string f = absl::StrCat("step.depends_on[", i, "]");
      if (ParseStepName(in.depends_on(i), f, &dc, &ds, violations)) {
        if (dc != cid) {
          violations->Add(f, "must be a step of the same case");
        } else if (ds == sid) {
          violations->Add(f, "a step cannot depend on itself");
        } else {
          deps->push_back(ds);
        }
      }
    }
  }
  if (paths->contains("due_date") && in.has_due_date()) {
    ValidateDate(in.due_date(), "step.due_date", violations);
  }
}

// Violations for new dependencies `deps` of step `sid` that are no step of
// the case or would close a dependency cycle.
absl::Status CheckNewDependencies(Transaction& tx, const std::string& cid,
                                  const std::string& sid,
                                  const std::vector<std::string>& deps,
                                  FieldViolations* violations) {
  absl::StatusOr<std::vector<StepRow>> all = StepsOfCase(tx, cid);
  if (!all.ok()) return all.status();
  absl::flat_hash_map<std::string, std::vector<std::string>> graph;
  for (const StepRow& other : *all) {
    std::vector<std::string>& edges = graph[other.id];
    for (const std::string& d : other.record.depends_on()) {
      std::string dc, ds;
      FieldViolations ignored;
      if (ParseStepName(d, "d", &dc, &ds, &ignored)) {
        edges.push_back(ds);
      }
    }
  }
  for (size_t i = 0; i < deps.size(); ++i) {
    if (!graph.contains(deps[i])) {
      violations->Add(absl::StrCat("step.depends_on[", i, "]"),
                      "no such step in the case");
    }
  }
  if (violations->empty()) {
    std::vector<std::string> cycle = FindDependencyCycle(sid, deps, graph);
    if (!cycle.empty()) {
      std::vector<std::string> names;
      for (const std::string& n : cycle) {
        names.push_back(StepName(cid, n));
      }
      violations->Add("step.depends_on",
                      absl::StrCat("would form a dependency cycle: ",
                                   absl::StrJoin(names, " -> ")));
    }
  }
  return absl::OkStatus();
}

// A new step of case `c` as CreateStep asks (`deps`: the ids of the
// steps it depends on), REFERRED by `owner`'s `actor` at `now`.
StepRow NewStepRow(const CaseRow& c, const v1::Step& in,
                   const std::vector<std::string>& deps,
                   const std::string& owner, const std::string& actor,
                   absl::Time now) {
  StepRow row;
  row.id = NewId();
  row.case_id = c.id;
  row.version = 1;
  row.municipality_code = c.record.municipality_code();
  v1::Step& s = row.record;
  s.set_kind(in.kind());
  s.set_goal_id(in.goal_id());
  s.set_receiving_agency(in.receiving_agency());
  s.set_referring_agency(owner);
  s.set_description(in.description());
  for (const std::string& d : deps) s.add_depends_on(StepName(c.id, d));
  if (in.has_due_date()) *s.mutable_due_date() = in.due_date();
  s.set_state(v1::STEP_STATE_REFERRED);
  *s.mutable_create_time() = ToTimestamp(now);
  *s.mutable_update_time() = ToTimestamp(now);
  v1::StepTransition* t = s.add_transitions();
  t->set_to_state(v1::STEP_STATE_REFERRED);
  *t->mutable_transition_time() = ToTimestamp(now);
  t->set_agency(owner);
  t->set_actor(actor);
  return row;
}

// Changes the fields of `rec` that `paths` name to those of `in` (`deps`:
// the new dependencies' step ids in case `cid`); returns the event naming
// the changed fields.
v1::StepUpdated ApplyStepUpdate(const v1::Step& in,
                                const absl::flat_hash_set<std::string>& paths,
                                const std::string& cid,
                                const std::vector<std::string>& deps,
                                v1::Step* rec) {
  v1::StepUpdated updated;
  for (const char* p : {"description", "goal_id", "depends_on", "due_date"}) {
    if (paths.contains(p)) updated.add_changed_fields(p);
  }
  if (paths.contains("description")) {
    rec->set_description(in.description());
  }
  if (paths.contains("goal_id")) rec->set_goal_id(in.goal_id());
  if (paths.contains("depends_on")) {
    rec->clear_depends_on();
    for (const std::string& d : deps) {
      rec->add_depends_on(StepName(cid, d));
    }
  }
  if (paths.contains("due_date")) {
    if (in.has_due_date()) {
      *rec->mutable_due_date() = in.due_date();
    } else {
      rec->clear_due_date();
    }
  }
  return updated;
}

}  // namespace

absl::Status CasesServiceImpl::DoCreateStep(const RequestContext& rc,
                                            const v1::CreateStepRequest& req,
                                            v1::Step* resp) {
  const server::RelationsReachIdentity relations(runtime_, rc);
  const v1::Step& in = req.step();
  const std::string target = CaseTarget(req.parent());
  agencies::AuditedCall call(call_env_, rc, "CreateStep", target);
  internal::AuditAs(call, target);
  const agencies::AuditedCall::Body create =
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
    FieldViolations violations;
    const std::string id = ParseCaseName(req.parent(), "parent", &violations);
    api::ValidateRequestId(req.request_id(), "request_id", &violations);
    std::string receiver_id;
    std::vector<std::string> deps;
    ValidateNewStep(in, id, &receiver_id, &deps, &violations);
    if (!violations.empty()) return violations.ToStatus();
    if (absl::Status s = LockCase(tx, id); !s.ok()) return s;
    const std::string owner = AgencyName(caller.id);
    const api::IdempotentCreate once(caller.id, rc.method, req);
    absl::StatusOr<std::optional<std::string>> seen = once.Lookup(tx);
    if (!seen.ok()) return seen.status();
    if (seen->has_value()) {
      std::string sc, ss;
      FieldViolations ignored;
      ParseStepName(**seen, "n", &sc, &ss, &ignored);
      absl::StatusOr<StepRow> first = LoadStep(tx, sc, ss);
      if (!first.ok()) return first.status();
      internal::AuditResource(call, **seen);
      *resp = StepToProto(*first);
      return absl::OkStatus();
    }
    absl::StatusOr<CaseRow> c = LoadCase(tx, id, owner);
    if (!c.ok()) return c.status();
    if (c->record.owner_agency() != owner) return internal::NotCaseOwner();
    if (c->record.state() == v1::CASE_STATE_CLOSED) {
      return internal::CaseClosed();
    }
    if (absl::Status st = CheckReceiver(tx, receiver_id); !st.ok()) {
      return st;
    }
    for (size_t i = 0; i < deps.size(); ++i) {
      absl::StatusOr<std::optional<StepRow>> dep = ReadStep(tx, id, deps[i]);
      if (!dep.ok()) return dep.status();
      if (!dep->has_value()) {
        violations.Add(absl::StrCat("step.depends_on[", i, "]"),
                       "no such step in the case");
      }
    }
    if (!in.goal_id().empty()) {
      if (absl::Status st = CheckGoalExists(tx, id, in.goal_id(), &violations);
          !st.ok()) {
        return st;
      }
    }
    if (!violations.empty()) return violations.ToStatus();
    const absl::Time now = StoreNow();
    const StepRow row = NewStepRow(*c, in, deps, owner, rc.actor, now);
    if (absl::Status st = InsertStep(tx, row); !st.ok()) return st;
    if (!internal::Participates(c->record, in.receiving_agency())) {
      c->record.add_participating_agencies(in.receiving_agency());
      *c->record.mutable_update_time() = ToTimestamp(now);
      ++c->version;
      if (absl::Status st = cases::UpdateCase(tx, *c); !st.ok()) return st;
    }
    const std::string name = StepName(id, row.id);
    if (absl::Status st = once.Record(tx, name); !st.ok()) {
      return st;
    }
    v1::StepReferred referred;
    referred.set_step(name);
    referred.set_case_name(CaseName(id));
    referred.set_person(c->record.person());
    referred.set_kind(in.kind());
    referred.set_receiving_agency(in.receiving_agency());
    referred.set_referring_agency(owner);
    if (in.has_due_date()) *referred.mutable_due_date() = in.due_date();
    if (absl::Status st = Emit(tx, CaseToProto(*c), referred); !st.ok()) {
      return st;
    }
    internal::AuditResource(call, name);
    *resp = StepToProto(row);
    return absl::OkStatus();
  };
  absl::Status status = WriteAndWake(call, create);
  // An agency registered a moment ago may not have reached this service
  // yet: identity is asked, as it is for a caller (registry.h).
  if (!status.ok()) {
    absl::Status learned =
        agencies::LearnNamedAgency(*runtime_.database, call_env_.lookup_agency,
                                   in.receiving_agency(), rc.deadline, status);
    status = learned.ok() ? WriteAndWake(call, create) : learned;
  }
  return call.Finish(status);
}

absl::Status CasesServiceImpl::DoGetStep(const RequestContext& rc,
                                         const v1::GetStepRequest& req,
                                         v1::Step* resp) {
  const std::string target = StepTarget(req.name());
  agencies::AuditedCall call(call_env_, rc, "GetStep", target);
  internal::AuditAs(call, target);
  return call.Finish(call.Read(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        FieldViolations violations;
        std::string cid, sid;
        ParseStepName(req.name(), "name", &cid, &sid, &violations);
        if (!violations.empty()) return violations.ToStatus();
        absl::StatusOr<CaseRow> c = LoadCase(tx, cid, AgencyName(caller.id));
        if (!c.ok()) return c.status();
        absl::StatusOr<StepRow> s = LoadStep(tx, cid, sid);
        if (!s.ok()) return s.status();
        *resp = StepToProto(*s);
        return absl::OkStatus();
      }));
}

absl::Status CasesServiceImpl::DoListSteps(const RequestContext& rc,
                                           const v1::ListStepsRequest& req,
                                           v1::ListStepsResponse* resp) {
  const std::string target =
      req.parent() == "cases/-" ? "cases" : CaseTarget(req.parent());
  agencies::AuditedCall call(call_env_, rc, "ListSteps", target);
  internal::AuditAs(call, target);
  return call.Finish(call.Read([&](Transaction& tx,
                                   const LocalAgency& caller) -> absl::Status {
    FieldViolations violations;
    StepFilter f;
    f.viewer_agency = AgencyName(caller.id);
    if (req.parent() != "cases/-") {
      f.case_id = ParseCaseName(req.parent(), "parent", &violations);
    }
    f.limit = api::NormalizePageSize(req.page_size(), "page_size", &violations);
    for (int i = 0; i < req.states_size(); ++i) {
      const int s = req.states(i);
      if (s == v1::STEP_STATE_UNSPECIFIED || !v1::StepState_IsValid(s)) {
        violations.Add(absl::StrCat("states[", i, "]"), "must be a step state");
      } else {
        f.states.push_back(s);
      }
    }
    for (int i = 0; i < req.kinds_size(); ++i) {
      const int k = req.kinds(i);
      if (k == v1::STEP_KIND_UNSPECIFIED || !v1::StepKind_IsValid(k)) {
        violations.Add(absl::StrCat("kinds[", i, "]"), "must be a step kind");
      } else {
        f.kinds.push_back(k);
      }
    }
    if (!req.receiving_agency().empty()) {
      ParseAgencyName(req.receiving_agency(), "receiving_agency", &violations);
      f.receiving_agency = req.receiving_agency();
    }
    v1::ListStepsRequest filter = req;
    filter.clear_page_size();
    filter.clear_page_token();
    const std::string fp = api::RequestFingerprint(filter);
    const std::string last =
        api::DecodePageToken(req.page_token(), fp, "page_token", &violations);
    if (!last.empty()) {
      std::vector<std::string> parts = absl::StrSplit(last, '|');
      if (parts.size() != 2 ||
          !absl::SimpleAtoi(parts[0], &f.after_create_us)) {
        violations.Add("page_token", "is not a valid page token");
      } else {
        f.after_id = parts[1];
        f.has_after = true;
      }
    }
    if (!violations.empty()) return violations.ToStatus();
    if (!f.case_id.empty()) {
      absl::StatusOr<CaseRow> c = LoadCase(tx, f.case_id, f.viewer_agency);
      if (!c.ok()) return c.status();
    }
    const int page = f.limit;
    f.limit = page + 1;
    absl::StatusOr<std::vector<StepRow>> rows = cases::ListSteps(tx, f);
    if (!rows.ok()) return rows.status();
    for (int i = 0; i < static_cast<int>(rows->size()) && i < page; ++i) {
      *resp->add_steps() = StepToProto((*rows)[i]);
    }
    if (static_cast<int>(rows->size()) > page) {
      const StepRow& l = (*rows)[page - 1];
      resp->set_next_page_token(api::EncodePageToken(
          fp, absl::StrCat(ToMicros(api::FromTimestamp(l.record.create_time())),
                           "|", l.id)));
    }
    return absl::OkStatus();
  }));
}

absl::Status CasesServiceImpl::DoUpdateStep(const RequestContext& rc,
                                            const v1::UpdateStepRequest& req,
                                            v1::Step* resp) {
  const v1::Step& in = req.step();
  const std::string target = StepTarget(in.name());
  agencies::AuditedCall call(call_env_, rc, "UpdateStep", target);
  internal::AuditAs(call, target);
  return call.Finish(WriteAndWake(
      call, [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        FieldViolations violations;
        std::string cid, sid;
        ParseStepName(in.name(), "step.name", &cid, &sid, &violations);
        if (in.etag().empty()) violations.Add("step.etag", "is required");
        absl::flat_hash_set<std::string> paths;
        std::vector<std::string> deps;
        ValidateStepUpdate(in, req.update_mask(), cid, sid, &paths, &deps,
                           &violations);
        if (!violations.empty()) return violations.ToStatus();
        if (absl::Status s = LockCase(tx, cid); !s.ok()) return s;
        const std::string owner = AgencyName(caller.id);
        absl::StatusOr<CaseRow> c = LoadCase(tx, cid, owner);
        if (!c.ok()) return c.status();
        absl::StatusOr<StepRow> s = LoadStep(tx, cid, sid);
        if (!s.ok()) return s.status();
        if (c->record.owner_agency() != owner) return internal::NotCaseOwner();
        if (absl::Status st = api::CheckEtag(in.etag(), StepToProto(*s).etag());
            !st.ok()) {
          return st;
        }
        if (IsFinalStepState(s->record.state())) {
          return ErrorWithReason(
              absl::StatusCode::kFailedPrecondition, "TRANSITION_NOT_ALLOWED",
              "a step in a final state cannot change",
              {{"state", v1::StepState_Name(s->record.state())}});
        }
        if (paths.contains("due_date") && in.has_due_date() &&
            DateKey(in.due_date()) <
                DayKeyOf(api::FromTimestamp(s->record.create_time()))) {
          violations.Add("step.due_date",
                         "must not be before the referral date");
        }
        if (paths.contains("goal_id") && !in.goal_id().empty()) {
          if (absl::Status st =
                  CheckGoalExists(tx, cid, in.goal_id(), &violations);
              !st.ok()) {
            return st;
          }
        }
        if (paths.contains("depends_on")) {
          if (absl::Status st =
                  CheckNewDependencies(tx, cid, sid, deps, &violations);
              !st.ok()) {
            return st;
          }
        }
        if (!violations.empty()) return violations.ToStatus();
        v1::Step& rec = s->record;
        v1::StepUpdated updated = ApplyStepUpdate(in, paths, cid, deps, &rec);
        *rec.mutable_update_time() = ToTimestamp(StoreNow());
        ++s->version;
        if (absl::Status st =
                cases::UpdateStep(tx, *s, paths.contains("depends_on"));
            !st.ok()) {
          return st;
        }
        updated.set_step(StepName(cid, sid));
        updated.set_case_name(CaseName(cid));
        if (rec.has_due_date()) *updated.mutable_due_date() = rec.due_date();
        if (absl::Status st = Emit(tx, CaseToProto(*c), updated); !st.ok()) {
          return st;
        }
        *resp = StepToProto(*s);
        return absl::OkStatus();
      }));
}

absl::Status CasesServiceImpl::DoAcceptStep(const RequestContext& rc,
                                            const v1::AcceptStepRequest& r,
                                            v1::Step* out) {
  return DoTransition(rc, "AcceptStep", r.name(), r.etag(), TransitionOf(r),
                      out);
}

absl::Status CasesServiceImpl::DoDeclineStep(const RequestContext& rc,
                                             const v1::DeclineStepRequest& r,
                                             v1::Step* out) {
  return DoTransition(rc, "DeclineStep", r.name(), r.etag(), TransitionOf(r),
                      out);
}

absl::Status CasesServiceImpl::DoStartStep(const RequestContext& rc,
                                           const v1::StartStepRequest& r,
                                           v1::Step* out) {
  return DoTransition(rc, "StartStep", r.name(), r.etag(), TransitionOf(r),
                      out);
}

absl::Status CasesServiceImpl::DoCompleteStep(const RequestContext& rc,
                                              const v1::CompleteStepRequest& r,
                                              v1::Step* out) {
  return DoTransition(rc, "CompleteStep", r.name(), r.etag(), TransitionOf(r),
                      out);
}

absl::Status CasesServiceImpl::DoCancelStep(const RequestContext& rc,
                                            const v1::CancelStepRequest& r,
                                            v1::Step* out) {
  return DoTransition(rc, "CancelStep", r.name(), r.etag(), TransitionOf(r),
                      out);
}

absl::Status CasesServiceImpl::DoTransition(
    const RequestContext& rc, absl::string_view method, const std::string& name,
    const std::string& etag, const StepTransitionRequest& req, v1::Step* resp) {
  const std::string target = StepTarget(name);
  agencies::AuditedCall call(call_env_, rc, method, target);
  internal::AuditAs(call, target);
  return call.Finish(WriteAndWake(
      call, [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        FieldViolations violations;
        std::string cid, sid;
        ParseStepName(name, "name", &cid, &sid, &violations);
        if (etag.empty()) violations.Add("etag", "is required");
        ValidateTransition(req, &violations);
        if (!violations.empty()) return violations.ToStatus();
        if (absl::Status s = LockCase(tx, cid); !s.ok()) return s;
        const std::string agency = AgencyName(caller.id);
        absl::StatusOr<CaseRow> c = LoadCase(tx, cid, agency);
        if (!c.ok()) return c.status();
        absl::StatusOr<StepRow> s = LoadStep(tx, cid, sid);
        if (!s.ok()) return s.status();
        v1::Step& rec = s->record;
        absl::StatusOr<StepActor> actor =
            TransitionActor(req.to, c->record.owner_agency() == agency,
                            rec.receiving_agency() == agency);
        if (!actor.ok()) return actor.status();
        // StepToProto's etag, without copying the step's history for it.
        if (absl::Status st = api::CheckEtag(
                etag, api::ComputeEtag(StepName(cid, sid), s->version));
            !st.ok()) {
          return st;
        }
        if (absl::Status st = CheckStepTransition(rec.state(), req.to, *actor);
            !st.ok()) {
          return st;
        }
        if (req.to == v1::STEP_STATE_IN_PROGRESS) {
          if (absl::Status st = RequireDependenciesDone(tx, rec); !st.ok()) {
            return st;
          }
        }
        const v1::StepTransition t =
            ApplyStepTransition(req, StoreNow(), agency, rc.actor, &rec);
        ++s->version;
        if (absl::Status st = cases::UpdateStepState(tx, *s); !st.ok()) {
          return st;
        }
        v1::StepStateChanged changed;
        changed.set_step(StepName(cid, sid));
        changed.set_case_name(CaseName(cid));
        changed.set_person(c->record.person());
        changed.set_kind(rec.kind());
        changed.set_receiving_agency(rec.receiving_agency());
        *changed.mutable_transition() = t;
        changed.set_decline_reason(rec.decline_reason());
        changed.set_cancel_reason(rec.cancel_reason());
        changed.set_outcome(rec.outcome());
        // Emit needs the case's name, not its etag: no CaseToProto copy.
        c->record.set_name(CaseName(cid));
        if (absl::Status st = Emit(tx, c->record, changed); !st.ok()) {
          return st;
        }
        *resp = StepToProto(*s);
        return absl::OkStatus();
      }));
}

}  // namespace lotse::cases
