// Integration plans: read a version, list versions, update.
#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/api/etag.h"
#include "common/api/names.h"
#include "common/api/paging.h"
#include "common/api/time.h"
#include "common/errors/status.h"
#include "lotse/cases/v1/events.pb.h"
#include "services/cases/domain/plan_rules.h"
#include "services/cases/domain/rules.h"
#include "services/cases/service/cases_service.h"
#include "services/cases/service/internal.h"

namespace lotse::cases {

using agencies::LocalAgency;
using api::StoreNow;
using api::ToTimestamp;
using internal::CaseToProto;
using internal::Emit;
using internal::LoadCase;
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

}  // namespace

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
        if (d.allowed) call.AddLegalBasisFor(person, d.basis);
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
        if (d.allowed) call.AddLegalBasisFor(person, d.basis);
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
        const PlanChange change =
            ValidatePlanChange(in, req.update_mask(), &violations);
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
        CheckGoalTargetDates(
            in, DayKeyOf(api::FromTimestamp(c->record.create_time())),
            &violations);
        if (!violations.empty()) return violations.ToStatus();
        absl::StatusOr<std::optional<v1::IntegrationPlan>> current =
            ReadPlan(tx, id, 0);
        if (!current.ok()) return current.status();
        if (!current->has_value()) return absl::InternalError("plan missing");
        v1::IntegrationPlan next = **current;
        if (change.goals) {
          ReplaceGoals(in, &next, &violations);
          if (!violations.empty()) return violations.ToStatus();
          absl::StatusOr<std::vector<StepRow>> steps = StepsOfCase(tx, id);
          if (!steps.ok()) return steps.status();
          for (const StepRow& s : *steps) {
            if (absl::Status st =
                    CheckGoalKept(next, StepName(id, s.id), s.record);
                !st.ok()) {
              return st;
            }
          }
        }
        if (change.summary) next.set_summary(in.summary());
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

}  // namespace lotse::cases
