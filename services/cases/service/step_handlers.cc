// Integration plans, steps and their transitions, notes.
#include <algorithm>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/api/etag.h"
#include "common/api/idempotency.h"
#include "common/api/names.h"
#include "common/api/paging.h"
#include "common/api/text.h"
#include "common/api/time.h"
#include "common/errors/status.h"
#include "lotse/cases/v1/events.pb.h"
#include "services/cases/domain/rules.h"
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
using internal::NoteToProto;
using internal::StepToProto;
using server::RequestContext;
using storage::Transaction;

namespace {

// "cases/{case}/plan" -> case id.
std::string ParsePlanName(absl::string_view name, const std::string& field,
                          FieldViolations* violations) {
  return api::ParseNameId(name, "cases/{case}/plan", field, violations);
}

std::string PlanTarget(absl::string_view name) {
  FieldViolations ignored;
  const std::string id = ParsePlanName(name, "name", &ignored);
  return id.empty() ? "cases" : internal::PlanName(id);
}

std::string StepTarget(absl::string_view name) {
  FieldViolations ignored;
  std::string c, s;
  if (ParseStepName(name, "name", &c, &s, &ignored)) return StepName(c, s);
  return "cases";
}

std::string NewGoalId() { return absl::StrCat("g-", NewId().substr(0, 16)); }

bool ValidGoalId(absl::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
      return false;
    }
  }
  return true;
}

void ValidateDate(const type::v1::Date& d, const std::string& field,
                  FieldViolations* violations) {
  if (!IsValidDate(d)) violations->Add(field, "is not a valid date");
}

// Categories the caller may not read directly among `goals`.
std::vector<type::v1::DataCategory> SensitiveGoalCategories(
    const v1::IntegrationPlan& plan) {
  std::vector<type::v1::DataCategory> out;
  for (const v1::Goal& g : plan.goals()) {
    const type::v1::DataCategory c = GoalCategory(g.life_area());
    if (c != type::v1::DATA_CATEGORY_CASE_STATUS &&
        std::find(out.begin(), out.end(), c) == out.end()) {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

// ---- Plans ----

absl::Status CasesServiceImpl::DoGetPlan(
    const RequestContext& rc, const v1::GetIntegrationPlanRequest& req,
    v1::IntegrationPlan* resp) {
  std::string agency;
  std::string person;
  const std::string target = PlanTarget(req.name());
  agencies::AuditedCall call(call_env_, rc, "GetIntegrationPlan", target);
  internal::AuditAs(call, target);
  absl::Status status = call.Read(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        FieldViolations violations;
        const std::string id = ParsePlanName(req.name(), "name", &violations);
        if (req.version() < 0) violations.Add("version", "must be >= 0");
        if (!violations.empty()) return violations.ToStatus();
        agency = AgencyName(caller.id);
        absl::StatusOr<CaseRow> c = LoadCase(tx, id, agency);
        if (!c.ok()) return c.status();
        person = c->record.person();
        absl::StatusOr<std::optional<v1::IntegrationPlan>> plan =
            ReadPlan(tx, id, req.version());
        if (!plan.ok()) return plan.status();
        if (!plan->has_value()) {
          return ErrorWithReason(absl::StatusCode::kNotFound,
                                 "PLAN_VERSION_NOT_FOUND",
                                 "no such plan version");
        }
        *resp = **plan;
        resp->set_name(internal::PlanName(id));
        resp->set_etag(internal::PlanEtag(id, c->record.plan_version()));
        return absl::OkStatus();
      });
  // Outside the transaction: identity is asked.
  if (status.ok())
    status = [&]() -> absl::Status {
      const std::vector<type::v1::DataCategory> sensitive =
          SensitiveGoalCategories(*resp);
      if (sensitive.empty()) return absl::OkStatus();
      std::vector<std::string> categories = {internal::kCategoryCaseStatus};
      for (type::v1::DataCategory c : sensitive) {
        categories.push_back(type::v1::DataCategory_Name(c).substr(14));
      }
      internal::AuditAs(call, target, std::move(categories));
      absl::StatusOr<std::vector<AccessDecision>> decisions = access_->Check(
          agency, person, sensitive, rc.purpose,
          {identity::v1::RELATION_CASE_PARTICIPANT}, rc.deadline);
      if (!decisions.ok()) {
        return ErrorWithReason(absl::StatusCode::kUnavailable,
                               "CHECK_UNAVAILABLE",
                               "the access check did not answer");
      }
      for (const AccessDecision& d : *decisions) {
        if (!d.allowed) {
          resp->Clear();
          return ErrorWithReason(
              absl::StatusCode::kPermissionDenied,
              type::v1::AccessDenialReason_Name(d.denial_reason).substr(21),
              "the plan has goals of a category the caller may not read; "
              "use GetCaseView");
        }
      }
      return absl::OkStatus();
    }();
  return call.Finish(status);
}

absl::Status CasesServiceImpl::DoListPlans(
    const RequestContext& rc, const v1::ListIntegrationPlanVersionsRequest& req,
    v1::ListIntegrationPlanVersionsResponse* resp) {
  std::string agency;
  std::string person;
  const std::string target = PlanTarget(req.name());
  agencies::AuditedCall call(call_env_, rc, "ListIntegrationPlanVersions",
                             target);
  internal::AuditAs(call, target);
  absl::Status status = call.Read(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        FieldViolations violations;
        const std::string id = ParsePlanName(req.name(), "name", &violations);
        const int page =
            api::NormalizePageSize(req.page_size(), "page_size", &violations);
        const std::string last = api::DecodePageToken(
            req.page_token(), req.name(), "page_token", &violations);
        int before = 0;
        if (!last.empty() && !absl::SimpleAtoi(last, &before)) {
          violations.Add("page_token", "is not a valid page token");
        }
        if (!violations.empty()) return violations.ToStatus();
        agency = AgencyName(caller.id);
        absl::StatusOr<CaseRow> c = LoadCase(tx, id, agency);
        if (!c.ok()) return c.status();
        person = c->record.person();
        absl::StatusOr<std::vector<v1::IntegrationPlan>> plans =
            ListPlans(tx, id, before, page + 1);
        if (!plans.ok()) return plans.status();
        for (int i = 0; i < static_cast<int>(plans->size()) && i < page; ++i) {
          v1::IntegrationPlan* p = resp->add_plans();
          *p = (*plans)[i];
          p->set_name(internal::PlanName(id));
          p->set_etag(internal::PlanEtag(id, c->record.plan_version()));
        }
        if (static_cast<int>(plans->size()) > page) {
          resp->set_next_page_token(api::EncodePageToken(
              req.name(), absl::StrCat((*plans)[page - 1].version())));
        }
        return absl::OkStatus();
      });
  // Outside the transaction: identity is asked.
  if (status.ok())
    status = [&]() -> absl::Status {
      std::vector<type::v1::DataCategory> sensitive;
      for (const v1::IntegrationPlan& p : resp->plans()) {
        for (type::v1::DataCategory c : SensitiveGoalCategories(p)) {
          if (std::find(sensitive.begin(), sensitive.end(), c) ==
              sensitive.end()) {
            sensitive.push_back(c);
          }
        }
      }
      if (sensitive.empty()) return absl::OkStatus();
      absl::StatusOr<std::vector<AccessDecision>> decisions = access_->Check(
          agency, person, sensitive, rc.purpose,
          {identity::v1::RELATION_CASE_PARTICIPANT}, rc.deadline);
      if (!decisions.ok()) {
        return ErrorWithReason(absl::StatusCode::kUnavailable,
                               "CHECK_UNAVAILABLE",
                               "the access check did not answer");
      }
      for (const AccessDecision& d : *decisions) {
        if (!d.allowed) {
          resp->Clear();
          return ErrorWithReason(
              absl::StatusCode::kPermissionDenied,
              type::v1::AccessDenialReason_Name(d.denial_reason).substr(21),
              "a plan version has goals the caller may not read");
        }
      }
      return absl::OkStatus();
    }();
  return call.Finish(status);
}

absl::Status CasesServiceImpl::DoUpdatePlan(
    const RequestContext& rc, const v1::UpdateIntegrationPlanRequest& req,
    v1::IntegrationPlan* resp) {
  const v1::IntegrationPlan& in = req.plan();
  const std::string target = PlanTarget(in.name());
  agencies::AuditedCall call(call_env_, rc, "UpdateIntegrationPlan", target);
  internal::AuditAs(call, target);
  return call.Finish(WriteAndWake(
      call, [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        FieldViolations violations;
        const std::string id =
            ParsePlanName(in.name(), "plan.name", &violations);
        if (in.etag().empty()) violations.Add("plan.etag", "is required");
        bool set_goals = false, set_summary = false;
        if (req.update_mask().paths_size() == 0) {
          violations.Add("update_mask", "is required");
        }
        for (const std::string& path : req.update_mask().paths()) {
          if (path == "goals") {
            set_goals = true;
          } else if (path == "summary") {
            set_summary = true;
          } else {
            violations.Add("update_mask",
                           "only \"goals\" and \"summary\" can be changed");
          }
        }
        if (in.goals_size() > 100) {
          violations.Add("plan.goals", "at most 100 goals");
        }
        absl::flat_hash_set<std::string> ids;
        for (int i = 0; i < in.goals_size(); ++i) {
          const v1::Goal& g = in.goals(i);
          const std::string f = absl::StrCat("plan.goals[", i, "]");
          if (!g.goal_id().empty()) {
            if (!ValidGoalId(g.goal_id())) {
              violations.Add(f + ".goal_id", "must be 1..64 of [a-z0-9-]");
            } else if (!ids.insert(g.goal_id()).second) {
              violations.Add(f + ".goal_id", "is used twice");
            }
          }
          if (g.life_area() == v1::LIFE_AREA_UNSPECIFIED ||
              !v1::LifeArea_IsValid(g.life_area())) {
            violations.Add(f + ".life_area", "is required");
          }
          api::ValidateText(g.description(), f + ".description",
                            {1, 1000, true}, &violations);
          if (g.status() == v1::GOAL_STATUS_UNSPECIFIED ||
              !v1::GoalStatus_IsValid(g.status())) {
            violations.Add(f + ".status", "is required");
          }
          if (g.has_target_date()) {
            ValidateDate(g.target_date(), f + ".target_date", &violations);
          }
        }
        api::ValidateText(in.summary(), "plan.summary", {0, 4000, true},
                          &violations);
        api::ValidateText(in.change_note(), "plan.change_note", {0, 1000, true},
                          &violations);
        if (!violations.empty()) return violations.ToStatus();
        if (absl::Status s = LockCase(tx, id); !s.ok()) return s;
        const std::string owner = AgencyName(caller.id);
        absl::StatusOr<CaseRow> c = LoadCase(tx, id, owner);
        if (!c.ok()) return c.status();
        if (c->record.owner_agency() != owner) return internal::NotCaseOwner();
        if (absl::Status s = api::CheckEtag(
                in.etag(), internal::PlanEtag(id, c->record.plan_version()));
            !s.ok()) {
          return s;
        }
        if (c->record.state() == v1::CASE_STATE_CLOSED) {
          return internal::CaseClosed();
        }
        // Target dates not before the case was opened.
        const int32_t opened =
            DayKeyOf(api::FromTimestamp(c->record.create_time()));
        for (int i = 0; i < in.goals_size(); ++i) {
          if (in.goals(i).has_target_date() &&
              DateKey(in.goals(i).target_date()) < opened) {
            violations.Add(absl::StrCat("plan.goals[", i, "].target_date"),
                           "must not be before the case was opened");
          }
        }
        if (!violations.empty()) return violations.ToStatus();
        absl::StatusOr<std::optional<v1::IntegrationPlan>> current =
            ReadPlan(tx, id, 0);
        if (!current.ok()) return current.status();
        if (!current->has_value()) return absl::InternalError("plan missing");
        v1::IntegrationPlan next = **current;
        if (set_goals) {
          // Known goal ids must exist in the current plan.
          absl::flat_hash_set<std::string> existing;
          for (const v1::Goal& g : next.goals()) existing.insert(g.goal_id());
          for (int i = 0; i < in.goals_size(); ++i) {
            if (!in.goals(i).goal_id().empty() &&
                !existing.contains(in.goals(i).goal_id())) {
              violations.Add(absl::StrCat("plan.goals[", i, "].goal_id"),
                             "no such goal in the current plan; leave empty "
                             "for a new goal");
            }
          }
          if (!violations.empty()) return violations.ToStatus();
          next.clear_goals();
          absl::flat_hash_set<std::string> kept;
          for (const v1::Goal& g : in.goals()) {
            v1::Goal* out = next.add_goals();
            *out = g;
            if (out->goal_id().empty()) out->set_goal_id(NewGoalId());
            kept.insert(out->goal_id());
          }
          absl::StatusOr<std::vector<StepRow>> steps = StepsOfCase(tx, id);
          if (!steps.ok()) return steps.status();
          for (const StepRow& s : *steps) {
            if (!s.record.goal_id().empty() &&
                !IsFinalStepState(s.record.state()) &&
                !kept.contains(s.record.goal_id())) {
              return ErrorWithReason(
                  absl::StatusCode::kFailedPrecondition, "GOAL_IN_USE",
                  "an open step serves a goal the change removes",
                  {{"step", StepName(id, s.id)},
                   {"goal_id", s.record.goal_id()}});
            }
          }
        }
        if (set_summary) next.set_summary(in.summary());
        next.set_change_note(in.change_note());
        next.set_version(c->record.plan_version() + 1);
        next.set_author_agency(owner);
        next.set_author_actor(rc.actor);
        const absl::Time now = StoreNow();
        *next.mutable_create_time() = ToTimestamp(now);
        next.set_name(internal::PlanName(id));
        next.clear_etag();
        if (absl::Status s = InsertPlan(tx, id, next); !s.ok()) return s;
        c->record.set_plan_version(next.version());
        *c->record.mutable_update_time() = ToTimestamp(now);
        ++c->version;
        if (absl::Status s = cases::UpdateCase(tx, *c); !s.ok()) return s;
        v1::IntegrationPlanUpdated updated;
        updated.set_case_name(CaseName(id));
        updated.set_person(c->record.person());
        updated.set_version(next.version());
        if (absl::Status s = Emit(tx, CaseToProto(*c), updated); !s.ok()) {
          return s;
        }
        *resp = next;
        resp->set_etag(internal::PlanEtag(id, next.version()));
        return absl::OkStatus();
      }));
}

// ---- Steps ----

absl::Status CasesServiceImpl::DoCreateStep(const RequestContext& rc,
                                            const v1::CreateStepRequest& req,
                                            v1::Step* resp) {
  const server::RelationsReachIdentity relations(runtime_, rc);
  const v1::Step& in = req.step();
  const std::string target = CaseTarget(req.parent());
  agencies::AuditedCall call(call_env_, rc, "CreateStep", target);
  internal::AuditAs(call, target);
  return call.Finish(WriteAndWake(
      call, [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        FieldViolations violations;
        const std::string id =
            ParseCaseName(req.parent(), "parent", &violations);
        api::ValidateRequestId(req.request_id(), "request_id", &violations);
        if (in.kind() == v1::STEP_KIND_UNSPECIFIED ||
            !v1::StepKind_IsValid(in.kind())) {
          violations.Add("step.kind", "is required");
        }
        const std::string receiver_id = ParseAgencyName(
            in.receiving_agency(), "step.receiving_agency", &violations);
        api::ValidateText(in.description(), "step.description", {0, 2000, true},
                          &violations);
        if (in.depends_on_size() > 20) {
          violations.Add("step.depends_on", "at most 20 dependencies");
        }
        std::vector<std::string> deps;
        for (int i = 0; i < in.depends_on_size(); ++i) {
          std::string dc, ds;
          const std::string f = absl::StrCat("step.depends_on[", i, "]");
          if (ParseStepName(in.depends_on(i), f, &dc, &ds, &violations)) {
            if (dc != id) {
              violations.Add(f, "must be a step of the same case");
            } else {
              deps.push_back(ds);
            }
          }
        }
        const int32_t today = DayKeyOf(absl::Now());
        if (in.has_due_date()) {
          ValidateDate(in.due_date(), "step.due_date", &violations);
          if (IsValidDate(in.due_date()) && DateKey(in.due_date()) < today) {
            violations.Add("step.due_date",
                           "must not be before the referral date");
          }
        }
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
        absl::StatusOr<std::optional<LocalAgency>> receiver =
            ReadAgency(tx, receiver_id);
        if (!receiver.ok()) return receiver.status();
        if (!receiver->has_value()) {
          return ErrorWithReason(absl::StatusCode::kNotFound,
                                 "AGENCY_NOT_FOUND",
                                 "no such agency in the registry");
        }
        if ((*receiver)->suspended) {
          return ErrorWithReason(absl::StatusCode::kFailedPrecondition,
                                 "AGENCY_NOT_ACTIVE",
                                 "the receiving agency is suspended");
        }
        for (size_t i = 0; i < deps.size(); ++i) {
          absl::StatusOr<std::optional<StepRow>> dep =
              ReadStep(tx, id, deps[i]);
          if (!dep.ok()) return dep.status();
          if (!dep->has_value()) {
            violations.Add(absl::StrCat("step.depends_on[", i, "]"),
                           "no such step in the case");
          }
        }
        if (!in.goal_id().empty()) {
          absl::StatusOr<std::optional<v1::IntegrationPlan>> plan =
              ReadPlan(tx, id, 0);
          if (!plan.ok()) return plan.status();
          bool found = false;
          if (plan->has_value()) {
            for (const v1::Goal& g : (*plan)->goals()) {
              if (g.goal_id() == in.goal_id()) found = true;
            }
          }
          if (!found) {
            violations.Add("step.goal_id", "no such goal in the current plan");
          }
        }
        if (!violations.empty()) return violations.ToStatus();
        const absl::Time now = StoreNow();
        StepRow row;
        row.id = NewId();
        row.case_id = id;
        row.version = 1;
        row.municipality_code = c->record.municipality_code();
        v1::Step& s = row.record;
        s.set_kind(in.kind());
        s.set_goal_id(in.goal_id());
        s.set_receiving_agency(in.receiving_agency());
        s.set_referring_agency(owner);
        s.set_description(in.description());
        for (const std::string& d : deps) s.add_depends_on(StepName(id, d));
        if (in.has_due_date()) *s.mutable_due_date() = in.due_date();
        s.set_state(v1::STEP_STATE_REFERRED);
        *s.mutable_create_time() = ToTimestamp(now);
        *s.mutable_update_time() = ToTimestamp(now);
        v1::StepTransition* t = s.add_transitions();
        t->set_to_state(v1::STEP_STATE_REFERRED);
        *t->mutable_transition_time() = ToTimestamp(now);
        t->set_agency(owner);
        t->set_actor(rc.actor);
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
      }));
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
        if (req.update_mask().paths_size() == 0) {
          violations.Add("update_mask", "is required");
        }
        for (const std::string& p : req.update_mask().paths()) {
          if (p == "description" || p == "goal_id" || p == "depends_on" ||
              p == "due_date") {
            paths.insert(p);
          } else {
            violations.Add("update_mask",
                           absl::StrCat("path \"", p, "\" cannot be changed"));
          }
        }
        if (paths.contains("description")) {
          api::ValidateText(in.description(), "step.description",
                            {0, 2000, true}, &violations);
        }
        std::vector<std::string> deps;
        if (paths.contains("depends_on")) {
          if (in.depends_on_size() > 20) {
            violations.Add("step.depends_on", "at most 20 dependencies");
          }
          for (int i = 0; i < in.depends_on_size(); ++i) {
            std::string dc, ds;
            const std::string f = absl::StrCat("step.depends_on[", i, "]");
            if (ParseStepName(in.depends_on(i), f, &dc, &ds, &violations)) {
              if (dc != cid) {
                violations.Add(f, "must be a step of the same case");
              } else if (ds == sid) {
                violations.Add(f, "a step cannot depend on itself");
              } else {
                deps.push_back(ds);
              }
            }
          }
        }
        if (paths.contains("due_date") && in.has_due_date()) {
          ValidateDate(in.due_date(), "step.due_date", &violations);
        }
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
          absl::StatusOr<std::optional<v1::IntegrationPlan>> plan =
              ReadPlan(tx, cid, 0);
          if (!plan.ok()) return plan.status();
          bool found = false;
          if (plan->has_value()) {
            for (const v1::Goal& g : (*plan)->goals()) {
              if (g.goal_id() == in.goal_id()) found = true;
            }
          }
          if (!found) {
            violations.Add("step.goal_id", "no such goal in the current plan");
          }
        }
        if (paths.contains("depends_on")) {
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
              violations.Add(absl::StrCat("step.depends_on[", i, "]"),
                             "no such step in the case");
            }
          }
          if (violations.empty()) {
            std::vector<std::string> cycle =
                FindDependencyCycle(sid, deps, graph);
            if (!cycle.empty()) {
              std::vector<std::string> names;
              for (const std::string& n : cycle) {
                names.push_back(StepName(cid, n));
              }
              violations.Add("step.depends_on",
                             absl::StrCat("would form a dependency cycle: ",
                                          absl::StrJoin(names, " -> ")));
            }
          }
        }
        if (!violations.empty()) return violations.ToStatus();
        v1::StepUpdated updated;
        v1::Step& rec = s->record;
        for (const char* p :
             {"description", "goal_id", "depends_on", "due_date"}) {
          if (paths.contains(p)) updated.add_changed_fields(p);
        }
        if (paths.contains("description")) {
          rec.set_description(in.description());
        }
        if (paths.contains("goal_id")) rec.set_goal_id(in.goal_id());
        if (paths.contains("depends_on")) {
          rec.clear_depends_on();
          for (const std::string& d : deps) {
            rec.add_depends_on(StepName(cid, d));
          }
        }
        if (paths.contains("due_date")) {
          if (in.has_due_date()) {
            *rec.mutable_due_date() = in.due_date();
          } else {
            rec.clear_due_date();
          }
        }
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

absl::Status CasesServiceImpl::DoTransition(const RequestContext& rc,
                                            absl::string_view method,
                                            const TransitionRequest& req,
                                            v1::Step* resp) {
  const std::string target = StepTarget(req.name);
  agencies::AuditedCall call(call_env_, rc, method, target);
  internal::AuditAs(call, target);
  return call.Finish(WriteAndWake(
      call, [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        FieldViolations violations;
        std::string cid, sid;
        ParseStepName(req.name, "name", &cid, &sid, &violations);
        if (req.etag.empty()) violations.Add("etag", "is required");
        switch (req.to) {
          case v1::STEP_STATE_DECLINED:
            if (req.decline_reason == v1::STEP_DECLINE_REASON_UNSPECIFIED ||
                !v1::StepDeclineReason_IsValid(req.decline_reason)) {
              violations.Add("reason", "is required");
            }
            break;
          case v1::STEP_STATE_CANCELLED:
            if (req.cancel_reason == v1::STEP_CANCEL_REASON_UNSPECIFIED ||
                !v1::StepCancelReason_IsValid(req.cancel_reason)) {
              violations.Add("reason", "is required");
            }
            break;
          case v1::STEP_STATE_DONE:
            if (req.outcome == v1::STEP_OUTCOME_UNSPECIFIED ||
                !v1::StepOutcome_IsValid(req.outcome)) {
              violations.Add("outcome", "is required");
            }
            break;
          default:
            break;
        }
        api::ValidateText(
            req.comment, "comment",
            {req.comment_required ? size_t{1} : size_t{0}, 2000, true},
            &violations);
        if (!violations.empty()) return violations.ToStatus();
        if (absl::Status s = LockCase(tx, cid); !s.ok()) return s;
        const std::string agency = AgencyName(caller.id);
        absl::StatusOr<CaseRow> c = LoadCase(tx, cid, agency);
        if (!c.ok()) return c.status();
        absl::StatusOr<StepRow> s = LoadStep(tx, cid, sid);
        if (!s.ok()) return s.status();
        v1::Step& rec = s->record;
        const bool receiver = rec.receiving_agency() == agency;
        const bool owner = c->record.owner_agency() == agency;
        StepActor actor = StepActor::kReceiver;
        if (req.to == v1::STEP_STATE_CANCELLED) {
          if (!owner && !receiver) {
            return ErrorWithReason(absl::StatusCode::kPermissionDenied,
                                   "NOT_STEP_RECEIVER",
                                   "only the case owner or the receiving "
                                   "agency may cancel the step");
          }
          // The owner may cancel from any open state; a receiver from
          // ACCEPTED or IN_PROGRESS.
          actor = owner ? StepActor::kOwner : StepActor::kReceiver;
        } else if (!receiver) {
          return ErrorWithReason(absl::StatusCode::kPermissionDenied,
                                 "NOT_STEP_RECEIVER",
                                 "only the receiving agency may do this");
        }
        if (absl::Status st = api::CheckEtag(req.etag, StepToProto(*s).etag());
            !st.ok()) {
          return st;
        }
        const v1::StepState from = rec.state();
        if (!StepTransitionAllowed(from, req.to, actor)) {
          return internal::TransitionNotAllowed(from, req.to);
        }
        if (req.to == v1::STEP_STATE_IN_PROGRESS) {
          std::vector<std::string> missing;
          for (const std::string& d : rec.depends_on()) {
            std::string dc, ds;
            FieldViolations ignored;
            if (!ParseStepName(d, "d", &dc, &ds, &ignored)) continue;
            absl::StatusOr<std::optional<StepRow>> dep = ReadStep(tx, dc, ds);
            if (!dep.ok()) return dep.status();
            if (!dep->has_value() ||
                (*dep)->record.state() != v1::STEP_STATE_DONE) {
              missing.push_back(d);
            }
          }
          if (!missing.empty()) {
            return ErrorWithReason(absl::StatusCode::kFailedPrecondition,
                                   "DEPENDENCIES_NOT_DONE",
                                   "steps this one depends on are not done",
                                   {{"steps", absl::StrJoin(missing, ",")}});
          }
        }
        const absl::Time now = StoreNow();
        v1::StepTransition* t = rec.add_transitions();
        t->set_from_state(from);
        t->set_to_state(req.to);
        *t->mutable_transition_time() = ToTimestamp(now);
        t->set_agency(agency);
        t->set_actor(rc.actor);
        rec.set_state(req.to);
        switch (req.to) {
          case v1::STEP_STATE_ACCEPTED:
            *rec.mutable_accept_time() = ToTimestamp(now);
            break;
          case v1::STEP_STATE_IN_PROGRESS:
            *rec.mutable_start_time() = ToTimestamp(now);
            break;
          case v1::STEP_STATE_DECLINED:
            rec.set_decline_reason(req.decline_reason);
            break;
          case v1::STEP_STATE_CANCELLED:
            rec.set_cancel_reason(req.cancel_reason);
            break;
          case v1::STEP_STATE_DONE:
            rec.set_outcome(req.outcome);
            break;
          default:
            break;
        }
        if (IsFinalStepState(req.to)) {
          *rec.mutable_end_time() = ToTimestamp(now);
          rec.set_state_comment(req.comment);
        }
        *rec.mutable_update_time() = ToTimestamp(now);
        ++s->version;
        if (absl::Status st = cases::UpdateStep(tx, *s); !st.ok()) return st;
        v1::StepStateChanged changed;
        changed.set_step(StepName(cid, sid));
        changed.set_case_name(CaseName(cid));
        changed.set_person(c->record.person());
        changed.set_kind(rec.kind());
        changed.set_receiving_agency(rec.receiving_agency());
        *changed.mutable_transition() = *t;
        changed.set_decline_reason(rec.decline_reason());
        changed.set_cancel_reason(rec.cancel_reason());
        changed.set_outcome(rec.outcome());
        if (absl::Status st = Emit(tx, CaseToProto(*c), changed); !st.ok()) {
          return st;
        }
        *resp = StepToProto(*s);
        return absl::OkStatus();
      }));
}

// ---- Notes ----

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
