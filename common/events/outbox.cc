#include "common/events/outbox.h"

#include <openssl/rand.h>

#include <cstdint>
#include <string>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/errors/status.h"
#include "common/events/disclosure.h"
#include "common/events/relay.h"
#include "common/lifecycle/person_keys.h"
#include "google/protobuf/timestamp.pb.h"

namespace lotse::events {

std::vector<storage::Migration> OutboxMigrations() {
  // The partial index holds only undelivered rows, so "pending for one
  // destination in seq order" stays cheap however long the history grows.
  return {{"common.events.0001_outbox", R"sql(
CREATE TABLE event_outbox (
  seq {{AUTO_ID}},
  event_id TEXT NOT NULL UNIQUE,
  ordering_key TEXT NOT NULL,
  payload {{BLOB}} NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE event_outbox_cursor (
  destination TEXT PRIMARY KEY,
  next_seq BIGINT NOT NULL
);
CREATE TABLE event_outbox_delivery (
  destination TEXT NOT NULL,
  seq BIGINT NOT NULL REFERENCES event_outbox (seq),
  ordering_key TEXT NOT NULL,
  attempts BIGINT NOT NULL DEFAULT 0,
  next_attempt_at BIGINT NOT NULL DEFAULT 0,
  delivered_at BIGINT,
  last_error TEXT,
  PRIMARY KEY (destination, seq)
);
CREATE INDEX event_outbox_delivery_pending
  ON event_outbox_delivery (destination, seq) WHERE delivered_at IS NULL;
)sql"},
          // The person whose key seals the payload (NULL: in the clear), and
          // the key table itself, which a database that has an outbox needs
          // whether or not its service lists the keys' own migration.
          {"common.events.0002_outbox_person",
           absl::StrCat("ALTER TABLE event_outbox ADD COLUMN person TEXT;\n",
                        lifecycle::PersonKeyMigrations().front().sql)}};
}

namespace {

// The additional data of a sealed payload: the event id binds it to its
// row, so a payload copied into another row does not open.
std::string OutboxSealContext(absl::string_view event_id) {
  return absl::StrCat("event_outbox/", event_id);
}

// The person (bare id) whose key seals `event`: the one person its
// disclosure names when it carries data of theirs; empty for an event that
// stays in the clear (no person, several, or only ids as the lifecycle
// events). DATA_LOSS when the payload does not parse as its type.
absl::StatusOr<std::string> SealingPersonOf(
    const lotse::events::v1::Event& event) {
  absl::StatusOr<Disclosure> disclosure = DisclosureOf(event);
  if (!disclosure.ok()) return disclosure.status();
  if (disclosure->persons.size() != 1 || disclosure->categories.empty()) {
    return std::string();
  }
  absl::string_view person = disclosure->persons.front();
  if (!absl::ConsumePrefix(&person, "persons/") || person.empty()) {
    return std::string();
  }
  return std::string(person);
}

}  // namespace

absl::StatusOr<lotse::events::v1::Event> ReadOutboxEvent(
    storage::Transaction& tx, int64_t seq) {
  absl::StatusOr<storage::Rows> rows = tx.Query(
      "SELECT payload, person, event_id FROM event_outbox WHERE seq = $1",
      {storage::Value(seq)});
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return absl::NotFoundError("no outbox event at this seq");
  const storage::Row& row = rows->front();
  absl::StatusOr<std::string> bytes = row.GetBytes(0);
  if (!bytes.ok()) return bytes.status();
  if (!row.IsNull(1)) {
    absl::StatusOr<std::string> person = row.GetText(1);
    absl::StatusOr<std::string> event_id = row.GetText(2);
    if (!person.ok()) return person.status();
    if (!event_id.ok()) return event_id.status();
    bytes = lifecycle::OpenForPerson(tx, *person, OutboxSealContext(*event_id),
                                     *bytes);
    if (!bytes.ok()) return bytes.status();
  }
  lotse::events::v1::Event event;
  if (!event.ParseFromString(*bytes)) {
    return absl::DataLossError("outbox payload does not parse");
  }
  return event;
}

std::string NewEventId() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof(b)) != 1) {
    // OpenSSL's DRBG only fails when the OS gives it no entropy at all;
    // absl's generator is seeded from the OS too and still yields unique,
    // unguessable-enough ids for this purpose.
    absl::BitGen gen;
    for (unsigned char& c : b) c = absl::Uniform<unsigned char>(gen);
  }
  b[6] = (b[6] & 0x0f) | 0x40;  // version 4
  b[8] = (b[8] & 0x3f) | 0x80;  // RFC 4122 variant
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[b[i] >> 4]);
    out.push_back(kHex[b[i] & 0xf]);
  }
  return out;
}

absl::Status EnqueueEvent(storage::Transaction& tx,
                          lotse::events::v1::Event event) {
  if (!event.has_payload() || event.payload().type_url().empty()) {
    return absl::InvalidArgumentError("event has no payload");
  }
  if (event.event_id().empty()) event.set_event_id(NewEventId());
  const absl::Time now = absl::Now();
  if (!event.has_occurred_at()) {
    const int64_t micros = absl::ToUnixMicros(now);
    event.mutable_occurred_at()->set_seconds(micros / 1000000);
    event.mutable_occurred_at()->set_nanos(
        static_cast<int32_t>((micros % 1000000) * 1000));
  }
  absl::StatusOr<std::string> person = SealingPersonOf(event);
  if (!person.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("event payload does not parse as its type: ",
                     person.status().message()));
  }
  std::string bytes;
  if (!event.SerializeToString(&bytes)) {
    return absl::InternalError("cannot serialize event");
  }
  // Held until commit: the next writer draws its seq only after this one is
  // visible, so relays see the outbox grow strictly in seq order. Taken
  // before sealing, which may insert the person's key row: every writer
  // then takes the outbox lock before any key row lock, never after.
  if (absl::Status s = tx.LockNamed("lotse.outbox"); !s.ok()) return s;
  storage::Value person_value;
  if (!person->empty()) {
    // A shredded person's key is not made again: the caller learns that the
    // person was erased (FAILED_PRECONDITION, PERSON_ERASED).
    absl::StatusOr<std::string> sealed = lifecycle::SealForPerson(
        tx, *person, OutboxSealContext(event.event_id()), bytes);
    if (!sealed.ok()) return sealed.status();
    bytes = *std::move(sealed);
    person_value = storage::Value(*person);
  }
  auto inserted = tx.Query(
      "INSERT INTO event_outbox "
      "(event_id, ordering_key, payload, created_at, person) "
      "VALUES ($1, $2, $3, $4, $5) RETURNING seq",
      {storage::Value(event.event_id()), storage::Value(event.ordering_key()),
       storage::Value(storage::Bytes{std::move(bytes)}),
       storage::Value(absl::ToUnixMicros(now)), person_value});
  if (!inserted.ok()) return inserted.status();
  if (inserted->size() != 1) return absl::InternalError("outbox: no seq");
  absl::StatusOr<int64_t> seq = inserted->front().GetInt(0);
  if (!seq.ok()) return seq.status();
  // Delivery may start once the event is visible, and not before. The sink
  // outlives the commit: its call waits for the commit's outcome.
  tx.OnCommit([seq = *seq, sink = CollectCommittedEvents::Current()] {
    if (sink != nullptr) sink->Add(seq);
    NotifyAllRelays();
  });
  return absl::OkStatus();
}

namespace {
thread_local CommittedEvents* current_sink = nullptr;
}  // namespace

void CommittedEvents::Add(int64_t seq) {
  absl::MutexLock lock(&mu_);
  seqs_.push_back(seq);
}

std::vector<int64_t> CommittedEvents::seqs() const {
  absl::MutexLock lock(&mu_);
  return seqs_;
}

CollectCommittedEvents::CollectCommittedEvents(CommittedEvents* sink)
    : previous_(current_sink) {
  current_sink = sink;
}

CollectCommittedEvents::~CollectCommittedEvents() { current_sink = previous_; }

CommittedEvents* CollectCommittedEvents::Current() { return current_sink; }

absl::StatusOr<int64_t> PruneDeliveredEvents(storage::Database& db,
                                             absl::Time cutoff,
                                             int max_events) {
  int64_t deleted = 0;
  absl::Status status =
      storage::RunInTransaction(db, [&](storage::Transaction& tx) {
        deleted = 0;
        // Taken by every destination (below each cursor) and acknowledged
        // (no pending delivery row). With no cursor at all, MIN is NULL and
        // the age alone decides.
        absl::StatusOr<storage::Rows> rows = tx.Query(
            "SELECT o.seq FROM event_outbox o "
            "WHERE o.created_at < $1 "
            "AND (NOT EXISTS (SELECT 1 FROM event_outbox_cursor) "
            "     OR o.seq < (SELECT MIN(next_seq) FROM event_outbox_cursor)) "
            "AND NOT EXISTS (SELECT 1 FROM event_outbox_delivery d "
            "                WHERE d.seq = o.seq AND d.delivered_at IS NULL) "
            "ORDER BY o.seq LIMIT $2",
            {absl::ToUnixMicros(cutoff), static_cast<int64_t>(max_events)});
        if (!rows.ok()) return rows.status();
        for (const storage::Row& row : *rows) {
          absl::StatusOr<int64_t> seq = row.GetInt(0);
          if (!seq.ok()) return seq.status();
          absl::Status s =
              tx.Execute("DELETE FROM event_outbox_delivery WHERE seq = $1",
                         {*seq})
                  .status();
          if (s.ok()) {
            s = tx.Execute("DELETE FROM event_outbox WHERE seq = $1", {*seq})
                    .status();
          }
          if (!s.ok()) return s;
          ++deleted;
        }
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return deleted;
}

}  // namespace lotse::events
