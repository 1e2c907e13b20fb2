#include "services/cases/domain/step_transitions.h"

#include "absl/strings/str_cat.h"
#include "common/api/text.h"
#include "common/api/time.h"

namespace lotse::cases {

StepTransitionRequest TransitionOf(const v1::AcceptStepRequest&) {
  StepTransitionRequest t;
  t.to = v1::STEP_STATE_ACCEPTED;
  return t;
}

StepTransitionRequest TransitionOf(const v1::DeclineStepRequest& request) {
  StepTransitionRequest t;
  t.to = v1::STEP_STATE_DECLINED;
  t.decline_reason = request.reason();
  t.comment = request.comment();
  return t;
}

StepTransitionRequest TransitionOf(const v1::StartStepRequest&) {
  StepTransitionRequest t;
  t.to = v1::STEP_STATE_IN_PROGRESS;
  return t;
}

StepTransitionRequest TransitionOf(const v1::CompleteStepRequest& request) {
  StepTransitionRequest t;
  t.to = v1::STEP_STATE_DONE;
  t.outcome = request.outcome();
  t.comment = request.comment();
  return t;
}

StepTransitionRequest TransitionOf(const v1::CancelStepRequest& request) {
  StepTransitionRequest t;
  t.to = v1::STEP_STATE_CANCELLED;
  t.cancel_reason = request.reason();
  t.comment = request.comment();
  return t;
}

bool TransitionNeedsComment(const StepTransitionRequest& request) {
  switch (request.to) {
    case v1::STEP_STATE_DECLINED:
      return request.decline_reason == v1::STEP_DECLINE_REASON_OTHER ||
             request.decline_reason ==
                 v1::STEP_DECLINE_REASON_MISSING_INFORMATION;
    case v1::STEP_STATE_CANCELLED:
      return request.cancel_reason == v1::STEP_CANCEL_REASON_OTHER;
    default:
      return false;
  }
}

void ValidateTransition(const StepTransitionRequest& request,
                        FieldViolations* violations) {
  switch (request.to) {
    case v1::STEP_STATE_DECLINED:
      if (request.decline_reason == v1::STEP_DECLINE_REASON_UNSPECIFIED ||
          !v1::StepDeclineReason_IsValid(request.decline_reason)) {
        violations->Add("reason", "is required");
      }
      break;
    case v1::STEP_STATE_CANCELLED:
      if (request.cancel_reason == v1::STEP_CANCEL_REASON_UNSPECIFIED ||
          !v1::StepCancelReason_IsValid(request.cancel_reason)) {
        violations->Add("reason", "is required");
      }
      break;
    case v1::STEP_STATE_DONE:
      if (request.outcome == v1::STEP_OUTCOME_UNSPECIFIED ||
          !v1::StepOutcome_IsValid(request.outcome)) {
        violations->Add("outcome", "is required");
      }
      break;
    default:
      break;
  }
  const size_t min_chars = TransitionNeedsComment(request) ? 1 : 0;
  api::ValidateText(request.comment, "comment", {min_chars, 2000, true},
                    violations);
}

absl::StatusOr<StepActor> TransitionActor(v1::StepState to, bool case_owner,
                                          bool receiver) {
  if (to == v1::STEP_STATE_CANCELLED) {
    if (case_owner) return StepActor::kOwner;
    if (receiver) return StepActor::kReceiver;
    return ErrorWithReason(absl::StatusCode::kPermissionDenied,
                           "NOT_STEP_RECEIVER",
                           "only the case owner or the receiving agency may "
                           "cancel the step");
  }
  if (receiver) return StepActor::kReceiver;
  return ErrorWithReason(absl::StatusCode::kPermissionDenied,
                         "NOT_STEP_RECEIVER",
                         "only the receiving agency may do this");
}

absl::Status CheckStepTransition(v1::StepState from, v1::StepState to,
                                 StepActor actor) {
  if (StepTransitionAllowed(from, to, actor)) return absl::OkStatus();
  return ErrorWithReason(
      absl::StatusCode::kFailedPrecondition, "TRANSITION_NOT_ALLOWED",
      absl::StrCat("a step in state ", v1::StepState_Name(from),
                   " cannot move to ", v1::StepState_Name(to)),
      {{"state", v1::StepState_Name(from)},
       {"requested_state", v1::StepState_Name(to)}});
}

v1::StepTransition ApplyStepTransition(const StepTransitionRequest& request,
                                       absl::Time now,
                                       const std::string& agency,
                                       const std::string& actor,
                                       v1::Step* step) {
  const google::protobuf::Timestamp at = api::ToTimestamp(now);
  v1::StepTransition* t = step->add_transitions();
  t->set_from_state(step->state());
  t->set_to_state(request.to);
  *t->mutable_transition_time() = at;
  t->set_agency(agency);
  t->set_actor(actor);
  step->set_state(request.to);
  switch (request.to) {
    case v1::STEP_STATE_ACCEPTED:
      *step->mutable_accept_time() = at;
      break;
    case v1::STEP_STATE_IN_PROGRESS:
      *step->mutable_start_time() = at;
      break;
    case v1::STEP_STATE_DECLINED:
      step->set_decline_reason(request.decline_reason);
      break;
    case v1::STEP_STATE_CANCELLED:
      step->set_cancel_reason(request.cancel_reason);
      break;
    case v1::STEP_STATE_DONE:
      step->set_outcome(request.outcome);
      break;
    default:
      break;
  }
  if (IsFinalStepState(request.to)) {
    *step->mutable_end_time() = at;
    step->set_state_comment(request.comment);
  }
  *step->mutable_update_time() = at;
  return *t;
}

}  // namespace lotse::cases
