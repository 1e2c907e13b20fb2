#include "services/placement/store/migrations.h"

#include "common/agencies/registry.h"
#include "common/api/idempotency.h"
#include "common/audit/audit_log.h"
#include "common/events/inbox.h"
#include "common/events/outbox.h"
#include "common/lifecycle/holds.h"
#include "common/lifecycle/person_keys.h"

namespace lotse::placement {
namespace {

// The service's own tables. Each keeps the record's protobuf message in
// `data` (what the API returns, without the derived fields) and, as
// columns, what it is searched, constrained or counted by; the store
// writes both from one record, so they never disagree. Times are Unix
// microseconds, days are days since 1970-01-01.
//
// `index_seq` (offers, candidates, person facts) is the value of the
// change counter `placement_index_version` drawn by the transaction that
// last wrote the row. Drawing it updates that one row, which serialises
// the writers on it until they commit, so counter order is commit order
// on PostgreSQL too: a replica that has applied everything up to seq S
// catches up by reading the rows with index_seq > S (see
// PlacementStore's ChangedSince).
constexpr char kInit[] = R"sql(
CREATE TABLE placement_index_version (
  id BIGINT PRIMARY KEY,
  seq BIGINT NOT NULL
);
INSERT INTO placement_index_version (id, seq) VALUES (1, 0);

CREATE TABLE placement_offers (
  id TEXT PRIMARY KEY,
  publisher TEXT NOT NULL,
  kind BIGINT NOT NULL,
  state BIGINT NOT NULL,
  occupation_code TEXT NOT NULL,
  municipality_code TEXT NOT NULL,
  positions_total BIGINT NOT NULL CHECK (positions_total >= 1),
  positions_open BIGINT NOT NULL
    CHECK (positions_open >= 0 AND positions_open <= positions_total),
  create_us BIGINT NOT NULL,
  version BIGINT NOT NULL,
  index_seq BIGINT NOT NULL,
  data {{BLOB}} NOT NULL
);
CREATE INDEX placement_offers_by_state ON placement_offers
  (state, create_us, id);
CREATE INDEX placement_offers_by_index_seq ON placement_offers (index_seq);

CREATE TABLE placement_candidates (
  person_id TEXT PRIMARY KEY,
  creating_agency TEXT NOT NULL,
  state BIGINT NOT NULL,
  merged_into TEXT,
  create_us BIGINT NOT NULL,
  version BIGINT NOT NULL,
  index_seq BIGINT NOT NULL,
  data {{BLOB}} NOT NULL
);
CREATE INDEX placement_candidates_by_time ON placement_candidates
  (create_us, person_id);
CREATE INDEX placement_candidates_by_index_seq
  ON placement_candidates (index_seq);

CREATE TABLE placement_person_facts (
  person_id TEXT PRIMARY KEY,
  work_permission BIGINT NOT NULL,
  work_permission_valid_until BIGINT,
  residence_recording_agency TEXT NOT NULL,
  residence_event_us BIGINT NOT NULL,
  certified_level BIGINT NOT NULL,
  certified_us BIGINT NOT NULL,
  update_us BIGINT NOT NULL,
  index_seq BIGINT NOT NULL
);
CREATE INDEX placement_person_facts_by_index_seq
  ON placement_person_facts (index_seq);

CREATE TABLE placement_person_merges (
  merged TEXT PRIMARY KEY,
  survivor TEXT NOT NULL
);

CREATE TABLE placement_placements (
  id TEXT PRIMARY KEY,
  offer_id TEXT NOT NULL,
  person_id TEXT NOT NULL,
  proposing_agency TEXT NOT NULL,
  state BIGINT NOT NULL,
  create_us BIGINT NOT NULL,
  version BIGINT NOT NULL,
  data {{BLOB}} NOT NULL
);
-- One open placement (PROPOSED, APPLIED, INTERVIEW) per candidate and offer.
CREATE UNIQUE INDEX placement_placements_one_open
  ON placement_placements (offer_id, person_id) WHERE state IN (1, 2, 3);
CREATE INDEX placement_placements_by_offer
  ON placement_placements (offer_id, create_us, id);
CREATE INDEX placement_placements_by_person
  ON placement_placements (person_id, create_us, id);
CREATE INDEX placement_placements_by_time
  ON placement_placements (create_us, id);

CREATE TABLE placement_notices (
  id TEXT PRIMARY KEY,
  office TEXT NOT NULL,
  hiring_agency TEXT NOT NULL,
  person_id TEXT NOT NULL,
  acknowledged BIGINT NOT NULL,
  create_us BIGINT NOT NULL,
  version BIGINT NOT NULL,
  data {{BLOB}} NOT NULL
);
CREATE INDEX placement_notices_by_office
  ON placement_notices (office, create_us, id);
)sql";

// Anchor columns of retention (placement_store.h, "lifecycle") and the
// indexes the purge tasks read them by.
constexpr char kLifecycle[] = R"sql(
ALTER TABLE placement_candidates ADD COLUMN change_us BIGINT;
ALTER TABLE placement_placements ADD COLUMN end_us BIGINT;
ALTER TABLE placement_offers ADD COLUMN withdraw_us BIGINT;
CREATE INDEX placement_candidates_by_change
  ON placement_candidates (change_us);
CREATE INDEX placement_placements_by_end ON placement_placements (end_us);
CREATE INDEX placement_offers_by_withdraw ON placement_offers (withdraw_us);
)sql";

}  // namespace

std::vector<storage::Migration> PlacementMigrations() {
  std::vector<storage::Migration> all;
  auto append = [&all](std::vector<storage::Migration> more) {
    for (auto& m : more) all.push_back(std::move(m));
  };
  append(audit::AuditMigrations());
  append(events::OutboxMigrations());
  append(events::InboxMigrations());
  append(api::ApiMigrations());
  all.push_back(agencies::RegistryMigration());
  all.push_back({"placement.0001_init", kInit});
  // The AuditService's person filter asks which ids were merged into a
  // survivor.
  all.push_back({"placement.0002_person_merges_by_survivor",
                 "CREATE INDEX placement_person_merges_by_survivor ON "
                 "placement_person_merges (survivor, merged);"});
  // Legal holds and per-person data keys (common/lifecycle).
  append(lifecycle::HoldMigrations());
  append(lifecycle::PersonKeyMigrations());
  // Records written before this migration keep NULL anchors: the times
  // are only in their protobuf records, which SQL cannot read, and a
  // guessed earlier time could purge what the rules still keep. The purge
  // job never takes them; they leave with their person's erasure.
  all.push_back({"placement.0003_lifecycle", kLifecycle});
  return all;
}

}  // namespace lotse::placement
