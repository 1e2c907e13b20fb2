// Per-person data keys for crypto-shredding (DESIGN.md section 4: "What
// cannot be rewritten ... carries personal fields encrypted under a
// per-person key, so erasure deletes the key").
//
// Each service keeps its own keys, in its own database: table
// lifecycle_person_keys (person PRIMARY KEY: the person id without
// "persons/"; data_key: 32 random bytes from OpenSSL's CSPRNG, NULL once
// shredded; create_us; shredded_us: when the key was shredded, else NULL).
// A shredded person keeps the row without its key as a marker, so that no
// new key is made for them.
//
// Every function takes the person as the bare id or as "persons/{id}"; both
// name the same key and seal alike.
// A record that stays in an append-only store (outbox events, the cases
// service's watch history) is sealed with the key of the person it is
// about; ShredPersonKey deletes the key, after which every such record of
// the person is unreadable while its row, sequence number and cursor
// position stay where they were.
//
// Sealed format: "LSK1" (4 bytes) || 12-byte random nonce || AES-256-GCM
// ciphertext || 16-byte tag. The additional authenticated data is the
// person id and the caller's `context` (e.g. "event_outbox"), so a sealed
// value moved to another person or another table does not open.
#ifndef LOTSE_COMMON_LIFECYCLE_PERSON_KEYS_H_
#define LOTSE_COMMON_LIFECYCLE_PERSON_KEYS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/storage/database.h"
#include "common/storage/migrations.h"

namespace lotse::lifecycle {

// Migration "common.lifecycle.0002_person_keys". Its script creates the
// table only when it does not exist yet: the outbox's migration
// (events::OutboxMigrations) runs the same script.
std::vector<storage::Migration> PersonKeyMigrations();

// Seals `plaintext` under the person's key, creating the key in `tx` when
// the person has none yet. FAILED_PRECONDITION (reason PERSON_ERASED) when
// the person's key was shredded: nothing new is written about an erased
// person. INVALID_ARGUMENT for an empty person id.
//
// The first seal for a person inserts their key row, which PostgreSQL keeps
// locked until `tx` ends; a concurrent first seal for the same person waits
// for it and then uses the same key. A transaction that also enqueues
// events should enqueue before it seals anything itself (EnqueueEvent takes
// the outbox lock before it seals), else two such transactions can
// deadlock, and one of them fails with a retryable ABORTED.
absl::StatusOr<std::string> SealForPerson(storage::Transaction& tx,
                                          absl::string_view person,
                                          absl::string_view context,
                                          absl::string_view plaintext);

// Opens what SealForPerson sealed. NOT_FOUND (reason PERSON_KEY_SHREDDED)
// when the person's key is gone (shredded, or never made in this
// database); DATA_LOSS when the value is not in the
// sealed format, or the tag does not verify (wrong person, wrong context,
// altered bytes).
absl::StatusOr<std::string> OpenForPerson(storage::Transaction& tx,
                                          absl::string_view person,
                                          absl::string_view context,
                                          absl::string_view sealed);

// Whether `value` starts with the sealed format's marker (values written
// before sealing existed are stored in the clear and read as they are).
bool IsSealed(absl::string_view value);

// Deletes the person's key and remembers that it was shredded (a later
// SealForPerson is FAILED_PRECONDITION instead of making a new key).
// Idempotent: shredding a person without a key, or twice, is OK.
absl::Status ShredPersonKey(storage::Transaction& tx, absl::string_view person);

// Whether the person's key was shredded (the person was erased in this
// service). Event handlers drop events about such a person instead of
// writing anything new about them (an event may arrive after the erasure,
// e.g. from a service that had not yet erased).
absl::StatusOr<bool> IsPersonShredded(storage::Transaction& tx,
                                      absl::string_view person);

}  // namespace lotse::lifecycle

#endif  // LOTSE_COMMON_LIFECYCLE_PERSON_KEYS_H_
