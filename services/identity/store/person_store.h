// Storage of persons, their duplicate-detection index and their
// agency-specific ids.
//
// Every call runs inside a transaction the caller owns, so that a change,
// its audit record and its outbox event commit together or not at all.
// Writes need a kReadWrite transaction. A write that fails leaves the
// transaction usable only for rollback (storage contract), so callers
// return the error and let the transaction roll back.
//
// Schema (PersonMigrations):
//   identity_persons            one row per person ever created. The
//                               client-supplied fields are one serialized
//                               lotse.identity.v1.Person (column data);
//                               what SQL selects, orders or joins on is a
//                               column: id, version (etag), times, creating
//                               agency, merged_into.
//   identity_person_keys        the blocking-key index (block_key,
//                               person_id): duplicate candidates and
//                               search come from point lookups here (or
//                               from its copy in memory, key_index.h),
//                               never from a scan of identity_persons.
//   identity_person_agency_ids  agency-specific ids; a partial unique index
//                               makes one linked (kind, scope, value) name
//                               at most one person.
//   identity_persons.match_form the matcher's prepared form of the record
//                               (DuplicateMatcher::EncodePrepared), written
//                               with every change of the record, so scoring
//                               a candidate decodes bytes instead of
//                               running ICU; NULL (rows of older releases)
//                               or of another format version is prepared
//                               afresh when read.
//   identity_persons.key_stamp  and identity_key_clock: every write of a
//                               person's blocking keys claims the next
//                               stamp of the one-row clock (ClaimKeyStamp),
//                               so "whose keys were written since stamp S"
//                               is one indexed query (KeyedSince). It lets
//                               CreatePerson score candidates in a read-only
//                               transaction and re-check only what changed
//                               since, under the write lock. On PostgreSQL
//                               claiming the stamp also serialises key
//                               writers (the clock row stays locked until
//                               commit), as SQLite's single writer does.
//                               A merge claims one for the merged person,
//                               whose keys it removes, so that KeyIndex
//                               copies see the removal.
//   identity_persons.key_rules  the key rules
//                               (DuplicateMatcher::kBlockingKeyVersion) the
//                               row's blocking keys were derived under,
//                               written in the same statement as every
//                               write of them; 0 for rows of releases
//                               before the column (unknown rules). Keys of
//                               other rules do not meet this binary's
//                               lookups, so the service re-derives them at
//                               start-up (rekey.h, which says why a column
//                               per person rather than one version for the
//                               table).
//
// Why proto bytes plus columns: the record is read and written whole, is
// nested (names, address, phones would need three child tables), and
// evolves with the contract; new optional fields need no migration. No
// query filters on a field inside it: names are searched through the
// blocking keys, which the store derives itself on every write so that the
// index can never disagree with the record.
//
// Concurrency: PostgreSQL runs at READ COMMITTED, so every
// read-modify-write of a person first takes the named lock
// "identity.person.{id}" (a merge takes both, in id order), and updates are
// additionally conditional on the version read. On SQLite the write
// transaction already excludes other writers.
//
// Merges: the merged row keeps its data and records merged_into = the
// survivor; rows that were merged into the merged person are re-pointed to
// the survivor, so resolving any id is one hop (the reader still follows
// longer chains, bounded, for safety).
#ifndef LOTSE_SERVICES_IDENTITY_STORE_PERSON_STORE_H_
#define LOTSE_SERVICES_IDENTITY_STORE_PERSON_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/storage/database.h"
#include "common/storage/migrations.h"
#include "lotse/identity/v1/person.pb.h"
#include "services/identity/domain/name_matching.h"

namespace lotse::identity {

// "identity.0101_persons", "identity.0102_person_keys",
// "identity.0103_person_agency_ids",
// "identity.0104_person_agency_ids_by_issuer",
// "identity.0105_person_match_forms", "identity.0106_person_key_rules", in
// this order.
std::vector<storage::Migration> PersonMigrations();

// Migration "identity.0601_person_erasure": identity_persons.erase_us, set
// when the person was erased (see PersonStore::Erase). Apply after
// PersonMigrations.
storage::Migration PersonErasureMigration();

// The result of reading a person by an id that may have been merged.
// NOT_FOUND with reason PERSON_NOT_FOUND for person `id`. The handlers show
// it to Lotse's services only; an agency gets the refusal it would get for
// a person it may not read (person_access.h).
absl::Status PersonNotFoundError(absl::string_view id);

struct PersonLookup {
  // The person's record with all output-only fields set (name, etag,
  // times, creating_agency, merged_names). For a merged id, the survivor's.
  lotse::identity::v1::Person person;
  std::string id;  // the id of `person` (the survivor's for a merged id)
  // True when the id asked for was merged; `person` is then its survivor.
  bool merged = false;
};

struct PersonPage {
  std::vector<lotse::identity::v1::Person> persons;
  // Where the next page starts; empty on the last page. Opaque; wrap it in
  // an api page token before it leaves the service.
  std::string next_cursor;
};

// At most this many distinct keys are looked up per FindCandidates /
// Search call; more set Candidates::truncated.
inline constexpr size_t kMaxCandidateLookupKeys = 2000;

struct CandidateLimits {
  // At most this many persons are read per lookup key: a common name in a
  // common year costs a bounded read, never a scan.
  int per_key = 200;
  // At most this many candidates are returned, those sharing the most keys
  // with the query first.
  int total = 100;
};

struct Candidates {
  std::vector<std::string> person_ids;  // best (most shared keys) first
  // True when a per-key or the overall cap cut candidates off.
  bool truncated = false;
};

// A candidate ready for DuplicateMatcher::Compare.
struct MatchCandidate {
  std::string id;
  PreparedRecord prepared;
};

// A candidate with its form as DuplicateMatcher::EncodePrepared bytes of
// the current format, for keeping it in memory (MatchFormCache).
struct EncodedMatchCandidate {
  std::string id;
  PreparedRecord prepared;
  std::string encoded;
};

// A row of identity_person_agency_ids, as the contract's AgencyId (name,
// kind, value, issuing_agency, unlinked, times, etag set).
struct LinkResult {
  lotse::identity::v1::AgencyId agency_id;
  bool created = false;  // false: the same id was already linked to them
};

struct AgencyIdPage {
  std::vector<lotse::identity::v1::AgencyId> agency_ids;
  std::string next_cursor;  // empty on the last page
};

class KeyIndex;

class PersonStore {
 public:
  // `tx` and `matcher` must outlive the store. The matcher derives the
  // blocking keys on every write.
  PersonStore(storage::Transaction& tx, const DuplicateMatcher& matcher);

  // The transaction the store works in, for the other stores' queries.
  storage::Transaction& transaction() { return tx_; }

  // Inserts `person` (its client-supplied fields; output-only fields and
  // unknown fields are dropped) under a new random id with its blocking
  // keys. `creating_agency` is "agencies/{id}". Validation is the caller's
  // job; INVALID_ARGUMENT only for text the matcher cannot read.
  absl::StatusOr<lotse::identity::v1::Person> Create(
      const lotse::identity::v1::Person& person,
      absl::string_view creating_agency);
  // Create with the record's prepared form computed by the caller
  // (matcher.Prepare(ToMatchRecord(person))), so the write needs no ICU.
  absl::StatusOr<lotse::identity::v1::Person> Create(
      const lotse::identity::v1::Person& person,
      absl::string_view creating_agency, const PreparedRecord& prepared);

  // The current stamp of the key clock (see the schema above): every
  // person whose keys were written by a transaction that committed before
  // this read has key_stamp <= the result.
  absl::StatusOr<int64_t> ReadKeyStamp();
  // Claims the next stamp for this transaction's key writes (once per
  // store; later calls return the same stamp). Create and Update call it
  // themselves; call it first to serialise with other key writers before
  // KeyedSince. Needs a read-write transaction.
  absl::StatusOr<int64_t> ClaimKeyStamp();
  // Ids of persons sharing a key in `lookup_keys` whose keys were written
  // with a stamp above `stamp` (i.e. after a ReadKeyStamp that returned
  // it), not merged.
  absl::StatusOr<std::vector<std::string>> KeyedSince(
      int64_t stamp, const std::vector<std::string>& lookup_keys);

  // Ids of persons whose keys were written with a stamp in (after, upto],
  // at most `limit` of them. Merged persons are included: a merge claims a
  // stamp for the merged person, whose keys it removes.
  absl::StatusOr<std::vector<std::string>> KeyedBetween(int64_t after,
                                                        int64_t upto,
                                                        int limit);
  // The same as (stamp, id) pairs in stamp order, at most `limit`.
  struct StampedId {
    int64_t stamp = 0;
    std::string id;
  };
  absl::StatusOr<std::vector<StampedId>> KeyedInStampOrder(int64_t after,
                                                           int64_t upto,
                                                           int limit);

  // A row of identity_person_keys.
  struct KeyRow {
    std::string block_key;
    std::string person_id;
  };
  // Rows of identity_person_keys in (block_key, person_id) order, after
  // (`after_key`, `after_id`) unless `first`, at most `limit`: a scan of the
  // whole index in pages, each one indexed range read.
  absl::StatusOr<std::vector<KeyRow>> ScanKeys(bool first,
                                               absl::string_view after_key,
                                               absl::string_view after_id,
                                               int limit);
  // The key rows of persons `ids`, in batches.
  absl::StatusOr<std::vector<KeyRow>> KeysOf(
      const std::vector<std::string>& ids);

  // A row of identity_persons whose keys were derived under other key
  // rules than this binary's (key_rules differs), for re-keying (rekey.h).
  struct StaleKeyRow {
    std::string id;
    int64_t version = 0;    // the row's version when it was read
    int64_t key_rules = 0;  // the rules its keys follow
    // False for merged and erased persons, which have no keys.
    bool live = false;
    // Live persons only: the stored match_form ("" when NULL) and the
    // record (a serialized Person, as stored).
    std::string match_form;
    std::string data;
  };
  // At most `limit` such rows, those of older rules first. Indexed range
  // reads that stop after `limit` rows; rows RekeyRows brought to the
  // current rules are not returned again, so reading again continues with
  // what is left.
  absl::StatusOr<std::vector<StaleKeyRow>> ReadStaleKeyRows(int limit);
  // How many rows ReadStaleKeyRows would return without a limit.
  absl::StatusOr<int64_t> CountStaleKeyRows();
  // A stale row with what re-keying writes for it.
  struct RekeyItem {
    const StaleKeyRow* row = nullptr;
    // Live persons: the record's form under the current rules, not null.
    const PreparedRecord* prepared = nullptr;
    // A new match_form to store with the keys; "" keeps the stored one.
    absl::string_view form;
  };
  // Brings the rows of `items` to the current key rules. A live person's
  // keys are replaced by those of its `prepared` form (its match_form by
  // `form` unless that is empty), and a key stamp is claimed for them
  // (ClaimKeyStamp), so in-memory copies of the index and of the forms
  // learn of the change. A merged or erased person only has its rules
  // recorded. Only rows that are as they were read (version and key_rules)
  // are written; a row changed since is left alone (its writer derived its
  // keys afresh, or a later ReadStaleKeyRows returns it again). A few
  // statements per 100 rows. Needs a read-write transaction.
  struct Rekeyed {
    int64_t rows = 0;     // rows written
    int64_t persons = 0;  // of them live persons, whose keys were replaced
  };
  absl::StatusOr<Rekeyed> RekeyRows(const std::vector<RekeyItem>& items);

  // From now on FindCandidates and Search answer from `index` (caught up to
  // this transaction's snapshot first) instead of identity_person_keys,
  // unless this store claimed a key stamp (uncommitted key writes the index
  // cannot see): then they query the table. Null (the default) queries the
  // table always. `index` must outlive the store.
  void set_key_index(KeyIndex* index) { key_index_ = index; }

  // The prepared forms of persons `ids` (in that order; ids that do not
  // exist are left out), from match_form where it is current, else
  // prepared from the record. Reads in batches, not one query per id.
  absl::StatusOr<std::vector<MatchCandidate>> LoadMatchForms(
      const std::vector<std::string>& ids);
  // The same with each form's bytes in the current format.
  absl::StatusOr<std::vector<EncodedMatchCandidate>> LoadEncodedMatchForms(
      const std::vector<std::string>& ids);
  // The stored match_form bytes of person `id` ("" when NULL), for tests.
  absl::StatusOr<std::string> ReadStoredMatchForm(absl::string_view id);

  // Stored forms of persons that are not merged, at most `limit` of them
  // after position `after` ("" = from the start; else the `position` of
  // the last form of the previous page): for filling the MatchFormCache in
  // one pass. The bytes are as stored (possibly of an older format, which
  // the cache's reader notices); rows without a form are left out. The
  // order is the table's storage order where the backend has one (SQLite:
  // rowid, so a pass reads the table's pages once, in file order, instead
  // of one random row lookup per person through the id index), else id
  // order. INVALID_ARGUMENT for a position this backend did not give.
  struct StoredForm {
    std::string id;
    std::string encoded;
    std::string position;  // opaque; continues a scan after this form
  };
  absl::StatusOr<std::vector<StoredForm>> ScanMatchForms(
      absl::string_view after, int limit);

  // The person with `id`, following merges to the final survivor.
  // NOT_FOUND if the id never existed.
  absl::StatusOr<PersonLookup> Get(absl::string_view id);

  // Replaces the client-supplied fields of person `id` with those of
  // `replacement` (the caller applied the update mask and validated) if
  // `etag` is current, and re-derives its blocking keys. NOT_FOUND;
  // FAILED_PRECONDITION reason PERSON_MERGED (metadata "survivor") for a
  // merged id; ABORTED reason ETAG_MISMATCH for a stale etag.
  absl::StatusOr<lotse::identity::v1::Person> Update(
      absl::string_view id, const lotse::identity::v1::Person& replacement,
      absl::string_view etag);

  // Persons that are not merged, newest first (create time, then id,
  // descending), at most `limit`, starting after `cursor` ("" = first
  // page). Keyset paging: a person that exists throughout a listing is
  // returned exactly once however many are created meanwhile. Only persons
  // created by `creating_agency` when it is not empty. INVALID_ARGUMENT for
  // a cursor this store did not issue.
  absl::StatusOr<PersonPage> List(absl::string_view creating_agency,
                                  absl::string_view cursor, int limit);

  // The persons `agency` ("agencies/{id}") is related to: it created them,
  // it holds a linked (not unlinked) agency id for them, or another service
  // told identity of a relation (relation_store.h, whose migration must be
  // applied too). Merged persons are left out
  // (their survivor is listed when related). Order, paging and cursor errors as
  // List. Cost grows with the agency's own persons and links only.
  absl::StatusOr<PersonPage> ListVisible(absl::string_view agency,
                                         absl::string_view cursor, int limit);

  // Ids of persons sharing at least one lookup key with `record`
  // (DuplicateMatcher::LookupKeys), excluding `exclude_id`; scoring them is
  // the caller's job. Merged persons have no keys and are never returned.
  // Per distinct key the first `per_key` persons in id order are taken
  // (`exclude_id` among them); then the `total` sharing the most keys,
  // ties in id order.
  absl::StatusOr<Candidates> FindCandidates(const MatchRecord& record,
                                            const CandidateLimits& limits,
                                            absl::string_view exclude_id = "");
  // The same for a prepared record (no ICU).
  absl::StatusOr<Candidates> FindCandidates(const PreparedRecord& record,
                                            const CandidateLimits& limits,
                                            absl::string_view exclude_id = "");

  // FindCandidates for a free-text search record (SearchRecord in
  // person.h). A spelling with only one name field matches stored names
  // whatever their other field is: its keys "K|-@Y" are widened to
  // "K|A@Y".."K|Z@Y" (the matcher's keys pair a part's phonetic key with
  // the first letter of a key of the other field, always A-Z). Still only
  // point lookups, each capped.
  absl::StatusOr<Candidates> Search(const MatchRecord& record,
                                    const CandidateLimits& limits);
  absl::StatusOr<Candidates> Search(const PreparedRecord& record,
                                    const CandidateLimits& limits);

  // Links (kind, value) to person `id` for `issuing_agency`
  // ("agencies/{id}"). `value` is normalised (NormalizeAgencyIdValue).
  // National kinds are unique nationwide, the others per issuing agency.
  // Linking an id the person already holds returns the existing link.
  // NOT_FOUND; FAILED_PRECONDITION PERSON_MERGED; ALREADY_EXISTS reason
  // AGENCY_ID_TAKEN (metadata "person") if it names another person.
  absl::StatusOr<LinkResult> LinkAgencyId(
      absl::string_view id, lotse::identity::v1::AgencyIdKind kind,
      absl::string_view value, absl::string_view issuing_agency);

  // Marks link `link_id` of person `id` unlinked (kept as history).
  // NOT_FOUND (no such link of that person); FAILED_PRECONDITION
  // PERSON_MERGED; FAILED_PRECONDITION ALREADY_UNLINKED; ABORTED
  // ETAG_MISMATCH. Who may unlink is the caller's check.
  absl::StatusOr<lotse::identity::v1::AgencyId> UnlinkAgencyId(
      absl::string_view id, absl::string_view link_id, absl::string_view etag);

  // The agency ids of person `id` (no merge resolution: pass the survivor's
  // id) in link order, at most `limit`, after `cursor`.
  absl::StatusOr<AgencyIdPage> ListAgencyIds(absl::string_view id,
                                             bool include_unlinked,
                                             absl::string_view cursor,
                                             int limit);

  // The agency that linked the (kind, value) of a national kind, and the
  // person it names (the link's person; not resolved through merges,
  // which move links), or nullopt when no linked id matches.
  struct LinkedId {
    std::string person_id;
    std::string issuing_agency;  // "agencies/{agency}"
  };
  absl::StatusOr<std::optional<LinkedId>> FindNationalLink(
      lotse::identity::v1::AgencyIdKind kind, absl::string_view value);

  // The person a linked (kind, value) names. For agency-local kinds
  // `issuing_agency` scopes the lookup; it is ignored for national kinds.
  // NOT_FOUND if no linked id matches.
  absl::StatusOr<PersonLookup> LookupByAgencyId(
      lotse::identity::v1::AgencyIdKind kind, absl::string_view value,
      absl::string_view issuing_agency);

  // Erases person `id` and every person merged into it: their rows stay as
  // tombstones without personal data (an empty record, no match form, no
  // creating agency; erase_us set) so that the key clock still tells the
  // in-memory copies of the index to drop them, and their blocking keys and
  // agency ids are deleted. Every method of the store treats an erased
  // person as one that never existed. Returns the ids erased, `id` first.
  // NOT_FOUND (also for an erased person); FAILED_PRECONDITION
  // PERSON_MERGED for a merged id. The other tables about the person are
  // the caller's.
  absl::StatusOr<std::vector<std::string>> Erase(absl::string_view id);

  // The id of the erased person whose erasure covered `id` (the id itself,
  // or the survivor it was merged into), or nullopt when `id` was not
  // erased or never existed.
  absl::StatusOr<std::optional<std::string>> ErasedAs(absl::string_view id);

  // Merges person `merged_id` into `survivor_id`: the survivor keeps its
  // fields; the merged person's agency ids (linked and unlinked) move to
  // it; the merged person's blocking keys are removed; reads of the merged
  // id answer with the survivor from now on. Both etags must be current.
  // INVALID_ARGUMENT (field "merged") if both are the same person;
  // NOT_FOUND; FAILED_PRECONDITION PERSON_MERGED if either is merged;
  // ABORTED ETAG_MISMATCH. Returns the survivor as it is now.
  absl::StatusOr<lotse::identity::v1::Person> Merge(
      absl::string_view survivor_id, absl::string_view survivor_etag,
      absl::string_view merged_id, absl::string_view merged_etag);

 private:
  struct Row;
  static absl::Status DecodeRow(const storage::Row& r, Row* row);
  absl::StatusOr<bool> ReadRow(absl::string_view id, Row* row);
  // `with_merged_names` false skips the query for persons merged into this
  // one (a person just created has none).
  absl::StatusOr<lotse::identity::v1::Person> ToPerson(
      const Row& row, bool with_merged_names = true);
  absl::Status LockPerson(absl::string_view id);
  absl::Status MergedError(const Row& row);
  // Inserts (person id, blocking key) rows, a bounded number per statement;
  // rows already there are left as they are.
  absl::Status InsertKeys(
      const std::vector<std::pair<std::string, std::string>>& rows);
  // Writes the blocking keys of `prepared` for person `id`, first deleting
  // its old ones unless `fresh` (a person created in this transaction).
  absl::Status ReplaceKeys(absl::string_view id, const PreparedRecord& prepared,
                           bool fresh);
  absl::StatusOr<Candidates> SearchKeys(std::vector<std::string> keys,
                                        const CandidateLimits& limits);
  absl::StatusOr<Candidates> Lookup(const std::vector<std::string>& keys,
                                    const CandidateLimits& limits,
                                    absl::string_view exclude_id);

  storage::Transaction& tx_;
  const DuplicateMatcher& matcher_;
  int64_t claimed_stamp_ = 0;  // 0 until ClaimKeyStamp
  KeyIndex* key_index_ = nullptr;
};

}  // namespace lotse::identity

#endif  // LOTSE_SERVICES_IDENTITY_STORE_PERSON_STORE_H_
