// The rules of the five step transitions (AcceptStep, DeclineStep,
// StartStep, CompleteStep, CancelStep): what each request must carry, who
// may move a step, which state may follow which, and what a move changes
// on the step. Pure functions: no storage, no gRPC.
//
// A handler validates the request (ValidateTransition), finds the caller's
// role (TransitionActor), checks the move (CheckStepTransition) and applies
// it (ApplyStepTransition).
#ifndef LOTSE_SERVICES_CASES_DOMAIN_STEP_TRANSITIONS_H_
#define LOTSE_SERVICES_CASES_DOMAIN_STEP_TRANSITIONS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/errors/status.h"
#include "lotse/cases/v1/cases_service.pb.h"
#include "lotse/cases/v1/step.pb.h"
#include "services/cases/domain/rules.h"

namespace lotse::cases {

// One of the five transition requests: the state it asks for and what it
// says about the move (the fields the other RPCs lack stay unspecified).
struct StepTransitionRequest {
  v1::StepState to = v1::STEP_STATE_UNSPECIFIED;
  v1::StepDeclineReason decline_reason = v1::STEP_DECLINE_REASON_UNSPECIFIED;
  v1::StepCancelReason cancel_reason = v1::STEP_CANCEL_REASON_UNSPECIFIED;
  v1::StepOutcome outcome = v1::STEP_OUTCOME_UNSPECIFIED;
  std::string comment;
};

StepTransitionRequest TransitionOf(const v1::AcceptStepRequest& request);
StepTransitionRequest TransitionOf(const v1::DeclineStepRequest& request);
StepTransitionRequest TransitionOf(const v1::StartStepRequest& request);
StepTransitionRequest TransitionOf(const v1::CompleteStepRequest& request);
StepTransitionRequest TransitionOf(const v1::CancelStepRequest& request);

// Whether the move needs a comment: a decline for OTHER or
// MISSING_INFORMATION, a cancellation for OTHER.
bool TransitionNeedsComment(const StepTransitionRequest& request);

// Adds a violation for each thing `request` lacks: "reason" when a decline
// or cancellation has no known reason, "outcome" when a completion has no
// known outcome, "comment" when it is missing where
// TransitionNeedsComment, longer than 2000 characters or not valid text.
void ValidateTransition(const StepTransitionRequest& request,
                        FieldViolations* violations);

// The role in which the calling agency moves a step to `to`. The receiving
// agency moves it along every transition; the case owner may only cancel
// it, and an agency that is both cancels as owner (from any open state,
// where a receiver cancels only ACCEPTED or IN_PROGRESS steps).
// PERMISSION_DENIED, reason NOT_STEP_RECEIVER, for anyone else.
absl::StatusOr<StepActor> TransitionActor(v1::StepState to, bool case_owner,
                                          bool receiver);

// OK when `actor` may move a step from `from` to `to`
// (StepTransitionAllowed); else FAILED_PRECONDITION, reason
// TRANSITION_NOT_ALLOWED, with metadata "state" and "requested_state".
absl::Status CheckStepTransition(v1::StepState from, v1::StepState to,
                                 StepActor actor);

// Moves `step` as `request` says, at `now`, by `actor` of `agency`
// ("agencies/x"): appends the transition and returns a copy of it, sets
// the state and, by target state, the accept or start time, the decline or
// cancel reason, or the outcome. A final state also sets the end time and
// the state comment. Always sets the update time. Does not check that the
// move is allowed.
v1::StepTransition ApplyStepTransition(const StepTransitionRequest& request,
                                       absl::Time now,
                                       const std::string& agency,
                                       const std::string& actor,
                                       v1::Step* step);

}  // namespace lotse::cases

#endif  // LOTSE_SERVICES_CASES_DOMAIN_STEP_TRANSITIONS_H_
