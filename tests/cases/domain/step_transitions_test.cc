// What the five step transitions require, who may make them and what they
// change on the step.
#include "services/cases/domain/step_transitions.h"

#include <set>
#include <string>

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace lotse::cases {
namespace {

std::set<std::string> Fields(const FieldViolations& violations) {
  std::set<std::string> out;
  for (const FieldViolation& v : violations.violations()) out.insert(v.field);
  return out;
}

std::set<std::string> Violated(const StepTransitionRequest& request) {
  FieldViolations violations;
  ValidateTransition(request, &violations);
  return Fields(violations);
}

TEST(StepTransitionsTest, RequestsNameTheirTargetState) {
  EXPECT_EQ(TransitionOf(v1::AcceptStepRequest()).to, v1::STEP_STATE_ACCEPTED);
  EXPECT_EQ(TransitionOf(v1::StartStepRequest()).to,
            v1::STEP_STATE_IN_PROGRESS);
  v1::DeclineStepRequest decline;
  decline.set_reason(v1::STEP_DECLINE_REASON_OTHER);
  decline.set_comment("no capacity");
  const StepTransitionRequest d = TransitionOf(decline);
  EXPECT_EQ(d.to, v1::STEP_STATE_DECLINED);
  EXPECT_EQ(d.decline_reason, v1::STEP_DECLINE_REASON_OTHER);
  EXPECT_EQ(d.comment, "no capacity");
  v1::CompleteStepRequest complete;
  complete.set_outcome(v1::STEP_OUTCOME_ACHIEVED);
  EXPECT_EQ(TransitionOf(complete).outcome, v1::STEP_OUTCOME_ACHIEVED);
  v1::CancelStepRequest cancel;
  cancel.set_reason(v1::STEP_CANCEL_REASON_OTHER);
  EXPECT_EQ(TransitionOf(cancel).cancel_reason, v1::STEP_CANCEL_REASON_OTHER);
}

TEST(StepTransitionsTest, DeclineAndCancelNeedAReasonCompleteAnOutcome) {
  EXPECT_TRUE(Violated(TransitionOf(v1::AcceptStepRequest())).empty());
  EXPECT_TRUE(Violated(TransitionOf(v1::StartStepRequest())).empty());
  EXPECT_EQ(Violated(TransitionOf(v1::DeclineStepRequest())),
            std::set<std::string>{"reason"});
  EXPECT_EQ(Violated(TransitionOf(v1::CancelStepRequest())),
            std::set<std::string>{"reason"});
  EXPECT_EQ(Violated(TransitionOf(v1::CompleteStepRequest())),
            std::set<std::string>{"outcome"});
  v1::CompleteStepRequest unknown;
  unknown.set_outcome(static_cast<v1::StepOutcome>(999));
  EXPECT_EQ(Violated(TransitionOf(unknown)), std::set<std::string>{"outcome"});
}

TEST(StepTransitionsTest, SomeReasonsNeedAComment) {
  v1::DeclineStepRequest decline;
  for (v1::StepDeclineReason reason :
       {v1::STEP_DECLINE_REASON_OTHER,
        v1::STEP_DECLINE_REASON_MISSING_INFORMATION}) {
    decline.set_reason(reason);
    EXPECT_TRUE(TransitionNeedsComment(TransitionOf(decline)));
    EXPECT_EQ(Violated(TransitionOf(decline)),
              std::set<std::string>{"comment"});
    decline.set_comment("details");
    EXPECT_TRUE(Violated(TransitionOf(decline)).empty());
    decline.clear_comment();
  }
  v1::CancelStepRequest cancel;
  cancel.set_reason(v1::STEP_CANCEL_REASON_OTHER);
  EXPECT_EQ(Violated(TransitionOf(cancel)), std::set<std::string>{"comment"});
  cancel.set_reason(v1::STEP_CANCEL_REASON_CASE_CLOSED);
  EXPECT_FALSE(TransitionNeedsComment(TransitionOf(cancel)));
  EXPECT_TRUE(Violated(TransitionOf(cancel)).empty());
  v1::CompleteStepRequest complete;
  complete.set_outcome(v1::STEP_OUTCOME_ACHIEVED);
  complete.set_comment(std::string(2001, 'x'));
  EXPECT_EQ(Violated(TransitionOf(complete)), std::set<std::string>{"comment"});
}

TEST(StepTransitionsTest, ReceiverMovesOwnerOnlyCancels) {
  EXPECT_EQ(*TransitionActor(v1::STEP_STATE_ACCEPTED, false, true),
            StepActor::kReceiver);
  absl::StatusOr<StepActor> owner_accepts =
      TransitionActor(v1::STEP_STATE_ACCEPTED, true, false);
  EXPECT_EQ(owner_accepts.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ReasonOf(owner_accepts.status()), "NOT_STEP_RECEIVER");
  EXPECT_EQ(*TransitionActor(v1::STEP_STATE_CANCELLED, true, false),
            StepActor::kOwner);
  EXPECT_EQ(*TransitionActor(v1::STEP_STATE_CANCELLED, true, true),
            StepActor::kOwner);
  EXPECT_EQ(*TransitionActor(v1::STEP_STATE_CANCELLED, false, true),
            StepActor::kReceiver);
  absl::StatusOr<StepActor> stranger =
      TransitionActor(v1::STEP_STATE_CANCELLED, false, false);
  EXPECT_EQ(ReasonOf(stranger.status()), "NOT_STEP_RECEIVER");
}

TEST(StepTransitionsTest, AMoveOutsideTheStateMachineIsRefused) {
  EXPECT_TRUE(CheckStepTransition(v1::STEP_STATE_REFERRED,
                                  v1::STEP_STATE_ACCEPTED, StepActor::kReceiver)
                  .ok());
  const absl::Status refused = CheckStepTransition(
      v1::STEP_STATE_REFERRED, v1::STEP_STATE_DONE, StepActor::kReceiver);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReasonOf(refused), "TRANSITION_NOT_ALLOWED");
  EXPECT_EQ(MetadataOf(refused, "state"), "STEP_STATE_REFERRED");
  EXPECT_EQ(MetadataOf(refused, "requested_state"), "STEP_STATE_DONE");
}

TEST(StepTransitionsTest, ApplyRecordsTheMoveAndItsDetails) {
  const absl::Time now = absl::FromUnixSeconds(1700000000);
  v1::Step step;
  step.set_state(v1::STEP_STATE_REFERRED);
  v1::StepTransition t = ApplyStepTransition(
      TransitionOf(v1::AcceptStepRequest()), now, "agencies/jc", "w1", &step);
  EXPECT_EQ(t.from_state(), v1::STEP_STATE_REFERRED);
  EXPECT_EQ(t.to_state(), v1::STEP_STATE_ACCEPTED);
  EXPECT_EQ(t.agency(), "agencies/jc");
  EXPECT_EQ(t.actor(), "w1");
  EXPECT_EQ(step.state(), v1::STEP_STATE_ACCEPTED);
  EXPECT_EQ(step.accept_time().seconds(), 1700000000);
  EXPECT_FALSE(step.has_end_time());
  EXPECT_EQ(step.transitions_size(), 1);

  v1::CancelStepRequest cancel;
  cancel.set_reason(v1::STEP_CANCEL_REASON_OTHER);
  cancel.set_comment("moved away");
  ApplyStepTransition(TransitionOf(cancel), now + absl::Seconds(5),
                      "agencies/kim", "w2", &step);
  EXPECT_EQ(step.state(), v1::STEP_STATE_CANCELLED);
  EXPECT_EQ(step.cancel_reason(), v1::STEP_CANCEL_REASON_OTHER);
  EXPECT_EQ(step.state_comment(), "moved away");
  EXPECT_EQ(step.end_time().seconds(), 1700000005);
  EXPECT_EQ(step.update_time().seconds(), 1700000005);
  EXPECT_EQ(step.transitions_size(), 2);
}

}  // namespace
}  // namespace lotse::cases
