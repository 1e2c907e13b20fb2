#include "services/identity/domain/consent.h"

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "lotse/type/v1/data_category.pb.h"
#include "lotse/type/v1/legal_domain.pb.h"

namespace lotse::identity {
namespace {

TEST(ConsentTest, CategoriesMustBeKnownDistinctAndNeverPrivateNotes) {
  google::protobuf::RepeatedField<int> categories;
  categories.Add(type::v1::DATA_CATEGORY_LANGUAGE);
  categories.Add(type::v1::DATA_CATEGORY_LANGUAGE);
  categories.Add(type::v1::DATA_CATEGORY_UNSPECIFIED);
  categories.Add(type::v1::DATA_CATEGORY_PRIVATE_NOTES);
  FieldViolations violations;
  ValidateDataCategories(categories, "c", /*forbid_private=*/true, &violations);
  ASSERT_EQ(violations.violations().size(), 3u);
  EXPECT_EQ(violations.violations()[0].field, "c[1]");  // repeated
  EXPECT_EQ(violations.violations()[1].field, "c[2]");  // unspecified
  EXPECT_EQ(violations.violations()[2].field, "c[3]");  // private notes

  FieldViolations check;  // CheckAccess may ask about private notes
  categories.Clear();
  categories.Add(type::v1::DATA_CATEGORY_PRIVATE_NOTES);
  ValidateDataCategories(categories, "c", /*forbid_private=*/false, &check);
  EXPECT_TRUE(check.empty());
}

TEST(ConsentTest, PurposesAreShortLowercaseTokens) {
  FieldViolations violations;
  EXPECT_TRUE(ValidatePurpose("job-placement", "p", &violations));
  EXPECT_FALSE(ValidatePurpose("Job Placement", "p", &violations));
  EXPECT_FALSE(ValidatePurpose("", "p", &violations));
}

TEST(ConsentTest, EvidenceNeedsFormReferenceAndAPastDeclaration) {
  const absl::Time now = absl::FromUnixSeconds(1700000000);
  v1::ConsentEvidence evidence;
  evidence.set_form(v1::CONSENT_FORM_WRITTEN);
  evidence.set_document_reference("scan-17");
  evidence.mutable_declare_time()->set_seconds(1700000000 - 60);
  FieldViolations ok;
  ValidateConsentEvidence(evidence, true, "e", false, now, &ok);
  EXPECT_TRUE(ok.empty());

  FieldViolations missing;
  ValidateConsentEvidence(evidence, false, "e", false, now, &missing);
  EXPECT_FALSE(missing.empty());

  // Oral consent is not permitted for recording, but a withdrawal may be.
  evidence.set_form(v1::CONSENT_FORM_ORAL_DOCUMENTED);
  FieldViolations oral;
  ValidateConsentEvidence(evidence, true, "e", false, now, &oral);
  EXPECT_FALSE(oral.empty());
  FieldViolations oral_withdrawal;
  ValidateConsentEvidence(evidence, true, "e", true, now, &oral_withdrawal);
  EXPECT_TRUE(oral_withdrawal.empty());

  evidence.set_form(v1::CONSENT_FORM_WRITTEN);
  evidence.mutable_declare_time()->set_seconds(1700000000 + 3600);
  FieldViolations future;
  ValidateConsentEvidence(evidence, true, "e", false, now, &future);
  EXPECT_FALSE(future.empty());
}

TEST(ConsentTest, RecorderAndRecipientsSeeAConsentAndNoOneConsentsForItself) {
  v1::Consent consent;
  consent.set_recording_agency("agencies/kim-koeln");
  consent.set_recipient_legal_domain(type::v1::LEGAL_DOMAIN_JOBCENTER);
  EXPECT_TRUE(RecordsOrReceivesConsent(consent, "kim-koeln", "KOMMUNE"));
  EXPECT_TRUE(RecordsOrReceivesConsent(consent, "jc-koeln", "JOBCENTER"));
  EXPECT_FALSE(RecordsOrReceivesConsent(consent, "aa-koeln", "ARBEITSAGENTUR"));
  EXPECT_TRUE(ConsentForSelf(consent, "", "jc-koeln", "JOBCENTER"));
  EXPECT_FALSE(ConsentForSelf(consent, "", "kim-koeln", "KOMMUNE"));

  consent.set_recipient_agency("agencies/traeger-1");
  EXPECT_TRUE(RecordsOrReceivesConsent(consent, "traeger-1", "FREIER_TRAEGER"));
  EXPECT_FALSE(RecordsOrReceivesConsent(consent, "jc-koeln", "JOBCENTER"));
  EXPECT_TRUE(
      ConsentForSelf(consent, "traeger-1", "traeger-1", "FREIER_TRAEGER"));
}

}  // namespace
}  // namespace lotse::identity
