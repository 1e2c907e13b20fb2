// Signed checkpoints: signing and verification against the dev PKI, and
// their way through outbox, relay and inbox into a witness's table.
#include "common/audit/checkpoint.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/audit/audit_log.h"
#include "common/audit/checkpoint_exchange.h"
#include "common/audit/witness_store.h"
#include "common/errors/status.h"
#include "common/events/inbox.h"
#include "common/events/outbox.h"
#include "common/events/relay.h"
#include "common/server/server.h"
#include "common/storage/migrations.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "tests/support/dev_pki.h"
#include "tests/support/test_database.h"

namespace lotse::audit {
namespace {

namespace v1 = ::lotse::audit::v1;
using ::testing::HasSubstr;

std::string Pem(const std::string& relative) {
  absl::StatusOr<std::string> pem = server::ReadFile(
      absl::StrCat(lotse::testing::DevPkiDir(), "/", relative));
  EXPECT_TRUE(pem.ok()) << pem.status();
  return pem.value_or("");
}

std::unique_ptr<CheckpointSigner> Signer(const std::string& service,
                                         const std::string& cert,
                                         const std::string& key) {
  auto signer = CheckpointSigner::FromPem(service, Pem(cert), Pem(key));
  EXPECT_TRUE(signer.ok()) << signer.status();
  return signer.ok() ? *std::move(signer) : nullptr;
}

std::unique_ptr<CheckpointSigner> ServiceSigner(const std::string& service) {
  return Signer(service, absl::StrCat("servers/", service, ".crt"),
                absl::StrCat("servers/", service, ".key"));
}

std::unique_ptr<CheckpointVerifier> Verifier(
    absl::flat_hash_set<std::string> services = LotseServices(),
    const std::string& ca = "ca.crt") {
  auto verifier = CheckpointVerifier::FromPem(Pem(ca), std::move(services));
  EXPECT_TRUE(verifier.ok()) << verifier.status();
  return verifier.ok() ? *std::move(verifier) : nullptr;
}

AuditHead Head(int64_t seq, char fill = 'a') {
  return AuditHead{seq, std::string(32, fill)};
}

v1::SignedCheckpoint Signed(const CheckpointSigner& signer, int64_t seq,
                            char fill = 'a', Chain chain = Chain::kChanges) {
  auto checkpoint =
      signer.Sign(chain, Head(seq, fill), absl::FromUnixSeconds(1800000000));
  EXPECT_TRUE(checkpoint.ok()) << checkpoint.status();
  return checkpoint.value_or(v1::SignedCheckpoint());
}

std::string Reason(const absl::Status& status) {
  return ReasonOf(status).value_or(status.ToString());
}

TEST(CheckpointTest, ValidCheckpointVerifies) {
  auto signer = ServiceSigner("cases");
  ASSERT_NE(signer, nullptr);
  v1::SignedCheckpoint checkpoint = Signed(*signer, 42);
  EXPECT_EQ(checkpoint.head().service(), "cases");
  EXPECT_EQ(checkpoint.head().chain(), v1::AUDIT_CHAIN_CHANGES);
  EXPECT_EQ(checkpoint.head().seq(), 42);
  EXPECT_THAT(checkpoint.certificate_pem(), HasSubstr("BEGIN CERTIFICATE"));
  EXPECT_TRUE(Verifier()->Verify(checkpoint).ok());
  // The read chain's checkpoint too.
  EXPECT_TRUE(Verifier()->Verify(Signed(*signer, 7, 'b', Chain::kReads)).ok());
}

TEST(CheckpointTest, CanonicalBytesCoverEverySignedField) {
  auto signer = ServiceSigner("cases");
  ASSERT_NE(signer, nullptr);
  const v1::SignedCheckpoint base = Signed(*signer, 42);
  const std::string bytes = CanonicalCheckpointBytes(base);
  EXPECT_EQ(bytes.substr(0, 18), "LOTSE-CHECKPOINT-1");
  std::vector<v1::SignedCheckpoint> changed(5, base);
  changed[0].mutable_head()->set_service("casesx");
  changed[1].mutable_head()->set_chain(v1::AUDIT_CHAIN_READS);
  changed[2].mutable_head()->set_seq(43);
  changed[3].mutable_head()->set_hash(std::string(32, 'b'));
  changed[4].mutable_time()->set_nanos(1000);
  for (const v1::SignedCheckpoint& c : changed) {
    EXPECT_NE(CanonicalCheckpointBytes(c), bytes) << c.ShortDebugString();
  }
  // Signature and certificate are not signed.
  v1::SignedCheckpoint other = base;
  other.set_signature("x");
  other.set_certificate_pem("y");
  EXPECT_EQ(CanonicalCheckpointBytes(other), bytes);
}

TEST(CheckpointTest, ForgedSignatureIsRefused) {
  auto signer = ServiceSigner("cases");
  ASSERT_NE(signer, nullptr);
  v1::SignedCheckpoint flipped = Signed(*signer, 42);
  std::string signature = flipped.signature();
  signature[signature.size() / 2] ^= 0x01;
  flipped.set_signature(signature);
  EXPECT_EQ(Reason(Verifier()->Verify(flipped)), kBadSignature);

  // A head changed after signing: the signature no longer covers it.
  v1::SignedCheckpoint moved = Signed(*signer, 42);
  moved.mutable_head()->set_seq(41);
  absl::Status status = Verifier()->Verify(moved);
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Reason(status), kBadSignature);

  // Another service's genuine signature under cases' certificate.
  v1::SignedCheckpoint borrowed = Signed(*signer, 42);
  borrowed.set_signature(Signed(*ServiceSigner("courses"), 42).signature());
  EXPECT_EQ(Reason(Verifier()->Verify(borrowed)), kBadSignature);
}

TEST(CheckpointTest, CertificateOfAnotherCaIsRefused) {
  // Signed by a key whose certificate a rogue CA issued.
  auto rogue =
      Signer("cases", "test/rogue-client.crt", "test/rogue-client.key");
  ASSERT_NE(rogue, nullptr);
  EXPECT_EQ(Reason(Verifier()->Verify(Signed(*rogue, 42))),
            kUntrustedCertificate);
  // A genuine checkpoint checked against another CA.
  EXPECT_EQ(Reason(Verifier(LotseServices(), "test/rogue-ca.crt")
                       ->Verify(Signed(*ServiceSigner("cases"), 42))),
            kUntrustedCertificate);
  // No certificate at all.
  v1::SignedCheckpoint bare = Signed(*ServiceSigner("cases"), 42);
  bare.clear_certificate_pem();
  EXPECT_EQ(Reason(Verifier()->Verify(bare)), kUntrustedCertificate);
}

TEST(CheckpointTest, CertificateOfAnotherServiceIsRefused) {
  // courses' key and certificate, claiming to be cases.
  auto courses_as_cases =
      Signer("cases", "servers/courses.crt", "servers/courses.key");
  ASSERT_NE(courses_as_cases, nullptr);
  EXPECT_EQ(Reason(Verifier()->Verify(Signed(*courses_as_cases, 42))),
            kWrongService);
  // An agency's certificate (OU=KOMMUNE) from the right CA.
  auto agency =
      Signer("cases", "clients/kim-koeln.crt", "clients/kim-koeln.key");
  ASSERT_NE(agency, nullptr);
  EXPECT_EQ(Reason(Verifier()->Verify(Signed(*agency, 42))), kWrongService);
}

TEST(CheckpointTest, UnknownServiceIsRefused) {
  // The dev PKI's echo service has a genuine service certificate, but is
  // not a service whose chains are witnessed.
  EXPECT_EQ(Reason(Verifier()->Verify(Signed(*ServiceSigner("echo"), 42))),
            kUnknownService);
  // A witness that does not take cases' checkpoints.
  EXPECT_EQ(Reason(Verifier({"identity", "courses"})
                       ->Verify(Signed(*ServiceSigner("cases"), 42))),
            kUnknownService);
}

TEST(CheckpointTest, MalformedCheckpointIsRefused) {
  auto signer = ServiceSigner("cases");
  ASSERT_NE(signer, nullptr);
  v1::SignedCheckpoint short_hash = Signed(*signer, 42);
  short_hash.mutable_head()->set_hash("abc");
  absl::Status status = Verifier()->Verify(short_hash);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Reason(status), kMalformedCheckpoint);
  v1::SignedCheckpoint no_chain = Signed(*signer, 42);
  no_chain.mutable_head()->set_chain(v1::AUDIT_CHAIN_UNSPECIFIED);
  EXPECT_EQ(Reason(Verifier()->Verify(no_chain)), kMalformedCheckpoint);
  EXPECT_EQ(Reason(Verifier()->Verify(v1::SignedCheckpoint())),
            kMalformedCheckpoint);
}

TEST(CheckpointTest, KeyMustBelongToCertificate) {
  auto mismatched = CheckpointSigner::FromPem("cases", Pem("servers/cases.crt"),
                                              Pem("servers/courses.key"));
  EXPECT_EQ(mismatched.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckpointSigner::FromPem("cases", "junk", Pem("servers/cases.key"))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      CheckpointVerifier::FromPem("junk", LotseServices()).status().code(),
      absl::StatusCode::kInvalidArgument);
}

// --- exchange through outbox, relay and inbox
// ---------------------------------

double CounterValue(prometheus::Registry& registry, const std::string& name,
                    const std::string& label, const std::string& value) {
  double total = 0;
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const prometheus::ClientMetric& metric : family.metric) {
      for (const prometheus::ClientMetric::Label& l : metric.label) {
        if (l.name == label && l.value == value) total += metric.counter.value;
      }
    }
  }
  return total;
}

lotse::events::v1::Event AsEvent(const v1::SignedCheckpoint& checkpoint) {
  lotse::events::v1::Event event;
  event.set_event_id(events::NewEventId());
  event.mutable_payload()->PackFrom(checkpoint);
  return event;
}

AuditRecord Record(int i) {
  AuditRecord r;
  r.agency_id = "kim-koeln";
  r.legal_domain = "KOMMUNE";
  r.actor = absl::StrCat("cw-", i);
  r.purpose = "case-management";
  r.operation = "lotse.cases.v1.CasesService/GetCase";
  r.resource = absl::StrCat("cases/c", i);
  return r;
}

class CheckpointExchangeTest : public lotse::testing::BothBackendsTest {
 protected:
  void SetUp() override {
    BothBackendsTest::SetUp();
    if (HasFatalFailure()) return;
    std::vector<storage::Migration> migrations = AuditMigrations();
    for (const auto& m : events::OutboxMigrations()) migrations.push_back(m);
    for (const auto& m : events::InboxMigrations()) migrations.push_back(m);
    ASSERT_TRUE(storage::ApplyMigrations(db(), migrations).ok());
    auto witness_db = lotse::testing::NewTestDatabase(dialect());
    ASSERT_TRUE(witness_db.ok()) << witness_db.status();
    witness_db_ = *std::move(witness_db);
    ASSERT_TRUE(storage::ApplyMigrations(*witness_db_, migrations).ok());
    auto verifier = CheckpointVerifier::FromPem(
        Pem("ca.crt"), {"identity", "cases", "placement"});
    ASSERT_TRUE(verifier.ok());
    witness_ = std::make_unique<CheckpointWitness>(
        "courses", *std::move(verifier), &witness_metrics_,
        [this](const CheckpointReceipt& r) { receipts_.push_back(r); });
  }

  // Delivers `event` to the witness as the event sink would.
  void Deliver(const lotse::events::v1::Event& event) {
    auto applied = events::ApplyEventOnce(
        *witness_db_, event,
        witness_->Wrap(
            [](storage::Transaction&, const lotse::events::v1::Event&) {
              ADD_FAILURE() << "a checkpoint reached the service's own handler";
              return absl::OkStatus();
            }));
    ASSERT_TRUE(applied.ok()) << applied.status();
  }

  std::vector<v1::WitnessedCheckpoint> Held(const std::string& service) {
    v1::ListWitnessedCheckpointsRequest request;
    request.set_service(service);
    auto listed = ListWitnessedCheckpoints(*witness_db_, "courses", request);
    EXPECT_TRUE(listed.ok()) << listed.status();
    if (!listed.ok()) return {};
    return {listed->checkpoints().begin(), listed->checkpoints().end()};
  }

  double Rejected(const std::string& reason) {
    return CounterValue(witness_metrics_,
                        "lotse_audit_checkpoints_rejected_total", "reason",
                        reason);
  }

  std::unique_ptr<storage::Database> witness_db_;
  prometheus::Registry witness_metrics_;
  std::unique_ptr<CheckpointWitness> witness_;
  std::vector<CheckpointReceipt> receipts_;
};

TEST_P(CheckpointExchangeTest, WitnessKeepsNewerAndRefusesStaleHeads) {
  auto cases = ServiceSigner("cases");
  ASSERT_NE(cases, nullptr);
  Deliver(AsEvent(Signed(*cases, 10)));
  Deliver(AsEvent(Signed(*cases, 12)));
  // The same head again (a new event id): nothing new.
  Deliver(AsEvent(Signed(*cases, 12)));
  // Older than the newest held: refused, not stored.
  Deliver(AsEvent(Signed(*cases, 11)));
  std::vector<v1::WitnessedCheckpoint> held = Held("cases");
  ASSERT_EQ(held.size(), 2u);
  EXPECT_EQ(held[0].checkpoint().head().seq(), 12);  // newest first
  EXPECT_EQ(held[1].checkpoint().head().seq(), 10);
  EXPECT_EQ(held[0].witness(), "courses");
  EXPECT_FALSE(held[0].conflicting());
  EXPECT_EQ(Rejected(kStaleHead), 1);
  ASSERT_EQ(receipts_.size(), 1u);
  EXPECT_EQ(receipts_[0].outcome, kStaleHead);
  EXPECT_EQ(receipts_[0].seq, 11);
  EXPECT_EQ(
      CounterValue(witness_metrics_, "lotse_audit_checkpoints_witnessed_total",
                   "service", "cases"),
      2);
  // Chains are separate: a low seq of the read chain is not stale.
  Deliver(AsEvent(Signed(*cases, 3, 'c', Chain::kReads)));
  EXPECT_EQ(Held("cases").size(), 3u);
}

TEST_P(CheckpointExchangeTest, SameSeqOtherHashIsKeptAsConflict) {
  auto cases = ServiceSigner("cases");
  ASSERT_NE(cases, nullptr);
  Deliver(AsEvent(Signed(*cases, 10, 'a')));
  Deliver(AsEvent(Signed(*cases, 10, 'b')));
  std::vector<v1::WitnessedCheckpoint> held = Held("cases");
  ASSERT_EQ(held.size(), 2u);
  int conflicting = 0;
  for (const auto& w : held) conflicting += w.conflicting() ? 1 : 0;
  EXPECT_EQ(conflicting, 1);
  ASSERT_EQ(receipts_.size(), 1u);
  EXPECT_EQ(receipts_[0].outcome, "conflict");
  EXPECT_EQ(
      CounterValue(witness_metrics_, "lotse_audit_checkpoints_witnessed_total",
                   "outcome", "conflict"),
      1);
}

TEST_P(CheckpointExchangeTest, ForgedCheckpointsAreAcknowledgedNotStored) {
  auto cases = ServiceSigner("cases");
  ASSERT_NE(cases, nullptr);
  v1::SignedCheckpoint forged = Signed(*cases, 50);
  forged.mutable_head()->set_seq(60);  // no longer what was signed
  Deliver(AsEvent(forged));
  // From a service this witness does not take checkpoints of.
  Deliver(AsEvent(Signed(*ServiceSigner("echo"), 5)));
  // Its own checkpoint sent back to it.
  Deliver(AsEvent(Signed(*ServiceSigner("courses"), 5)));
  // A rogue CA's certificate.
  Deliver(AsEvent(Signed(
      *Signer("cases", "test/rogue-client.crt", "test/rogue-client.key"), 70)));
  // Not a checkpoint at all under the checkpoint type.
  lotse::events::v1::Event garbage = AsEvent(Signed(*cases, 1));
  garbage.mutable_payload()->set_value("\xff\xff");
  Deliver(garbage);
  EXPECT_TRUE(Held("cases").empty());
  EXPECT_TRUE(Held("echo").empty());
  EXPECT_TRUE(Held("courses").empty());
  EXPECT_EQ(Rejected(kBadSignature), 1);
  EXPECT_EQ(Rejected(kUnknownService), 2);
  EXPECT_EQ(Rejected(kUntrustedCertificate), 1);
  EXPECT_EQ(Rejected(kMalformedCheckpoint), 1);
  EXPECT_EQ(receipts_.size(), 5u);
  // A valid one afterwards is still taken: refusals hold nothing back.
  Deliver(AsEvent(Signed(*cases, 2)));
  EXPECT_EQ(Held("cases").size(), 1u);
}

TEST_P(CheckpointExchangeTest, OtherEventsReachTheServiceHandler) {
  lotse::events::v1::Event other;
  other.set_event_id(events::NewEventId());
  other.mutable_payload()->PackFrom(v1::AuditHead());
  int handled = 0;
  auto applied = events::ApplyEventOnce(
      *witness_db_, other,
      witness_->Wrap(
          [&handled](storage::Transaction&, const lotse::events::v1::Event&) {
            ++handled;
            return absl::OkStatus();
          }));
  ASSERT_TRUE(applied.ok());
  EXPECT_EQ(handled, 1);
}

// Sends events straight into the witness's inbox, as the event sink would.
class InboxSender : public events::EventSender {
 public:
  InboxSender(storage::Database& db, events::ApplyFn apply)
      : db_(db), apply_(std::move(apply)) {}
  absl::Status Send(const lotse::events::v1::Event& event,
                    absl::Time) override {
    return events::ApplyEventOnce(db_, event, apply_).status();
  }

 private:
  storage::Database& db_;
  events::ApplyFn apply_;
};

TEST_P(CheckpointExchangeTest, PublisherSendsMovedHeadsThroughTheOutbox) {
  prometheus::Registry metrics;
  CheckpointPublisherOptions options;
  options.destinations = {"courses"};
  CheckpointPublisher publisher(db(), nullptr, ServiceSigner("cases"), &metrics,
                                options);
  // Empty chains: nothing to witness.
  EXPECT_EQ(publisher.PublishIfMoved().value_or(-1), 0);
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(AppendAuditStandalone(db(), Record(i)).ok());
  }
  EXPECT_EQ(publisher.PublishIfMoved().value_or(-1), 1);
  // The head did not move.
  EXPECT_EQ(publisher.PublishIfMoved().value_or(-1), 0);
  ASSERT_TRUE(AppendAuditStandalone(db(), Record(4), Chain::kReads).ok());
  ASSERT_TRUE(AppendAuditStandalone(db(), Record(5)).ok());
  EXPECT_EQ(publisher.PublishIfMoved().value_or(-1), 2);
  EXPECT_EQ(CounterValue(metrics, "lotse_audit_checkpoints_published_total",
                         "chain", "changes"),
            2);

  InboxSender sender(*witness_db_,
                     witness_->Wrap([](storage::Transaction&,
                                       const lotse::events::v1::Event&) {
                       return absl::OkStatus();
                     }));
  events::RelayOptions relay_options;
  relay_options.destination = "courses";
  events::OutboxRelay relay(db(), sender, relay_options);
  EXPECT_EQ(relay.DeliverPendingOnce().value_or(-1), 3);
  EXPECT_EQ(publisher.CountDelivered().value_or(-1), 3);
  EXPECT_EQ(publisher.CountDelivered().value_or(-1), 0);  // counted once
  EXPECT_EQ(CounterValue(metrics, "lotse_audit_checkpoints_delivered_total",
                         "destination", "courses"),
            3);
  std::vector<v1::WitnessedCheckpoint> held = Held("cases");
  ASSERT_EQ(held.size(), 3u);
  const absl::StatusOr<AuditHead> head = ReadAuditHead(db());
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(held[0].checkpoint().head().seq(), head->seq);
  EXPECT_EQ(held[0].checkpoint().head().hash(), head->hash);

  // At shutdown the moved head is published once more.
  ASSERT_TRUE(AppendAuditStandalone(db(), Record(6)).ok());
  EXPECT_EQ(publisher.Stop().size(), 1u);
  EXPECT_TRUE(publisher.Stop().empty());
}

TEST_P(CheckpointExchangeTest, ListWitnessedPagesAndRefusesBadInput) {
  auto cases = ServiceSigner("cases");
  ASSERT_NE(cases, nullptr);
  for (int seq = 1; seq <= 5; ++seq) Deliver(AsEvent(Signed(*cases, seq)));
  v1::ListWitnessedCheckpointsRequest request;
  request.set_service("cases");
  request.set_chain(v1::AUDIT_CHAIN_CHANGES);
  request.set_page_size(2);
  std::vector<int64_t> seqs;
  for (int page = 0; page < 10; ++page) {
    auto listed = ListWitnessedCheckpoints(*witness_db_, "courses", request);
    ASSERT_TRUE(listed.ok()) << listed.status();
    for (const auto& w : listed->checkpoints()) {
      seqs.push_back(w.checkpoint().head().seq());
    }
    if (listed->next_page_token().empty()) break;
    request.set_page_token(listed->next_page_token());
  }
  EXPECT_EQ(seqs, (std::vector<int64_t>{5, 4, 3, 2, 1}));

  v1::ListWitnessedCheckpointsRequest bad;
  EXPECT_EQ(
      ListWitnessedCheckpoints(*witness_db_, "courses", bad).status().code(),
      absl::StatusCode::kInvalidArgument);
  bad.set_service("cases");
  bad.set_page_size(-1);
  EXPECT_EQ(
      ListWitnessedCheckpoints(*witness_db_, "courses", bad).status().code(),
      absl::StatusCode::kInvalidArgument);
  bad.set_page_size(2);
  bad.set_page_token("not-a-token");
  EXPECT_EQ(
      ListWitnessedCheckpoints(*witness_db_, "courses", bad).status().code(),
      absl::StatusCode::kInvalidArgument);
  // A token of another service's listing.
  request.set_service("identity");
  EXPECT_EQ(ListWitnessedCheckpoints(*witness_db_, "courses", request)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(CheckpointExchangeTest);

}  // namespace
}  // namespace lotse::audit
