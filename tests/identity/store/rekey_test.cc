#include "services/identity/store/rekey.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/storage/migrations.h"
#include "gtest/gtest.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"
#include "services/identity/domain/access_policy.h"
#include "services/identity/domain/person.h"
#include "services/identity/service/identity_service.h"
#include "services/identity/store/key_index.h"
#include "services/identity/store/migrations.h"
#include "services/identity/store/person_store.h"
#include "tests/identity/test_matcher.h"
#include "tests/support/dev_pki.h"
#include "tests/support/service_server_fixture.h"
#include "tests/support/test_database.h"

namespace lotse::identity {
namespace {

using ::lotse::storage::Transaction;
using ::lotse::storage::TxMode;

const DuplicateMatcher& Matcher() { return SharedTestMatcher(); }

constexpr int64_t kCurrentRules = DuplicateMatcher::kBlockingKeyVersion;
// Rules some earlier release derived the keys under.
constexpr int64_t kOldRules = kCurrentRules - 1;

v1::Person MakePerson(const std::string& given, const std::string& family,
                      int year, const std::string& script = "Latn") {
  v1::Person p;
  v1::PersonName* name = p.add_names();
  name->set_given_names(given);
  name->set_family_names(family);
  name->set_script(script);
  name->set_kind(v1::NAME_KIND_CURRENT);
  p.mutable_birth_date()->set_year(year);
  return p;
}

// Persons of several scripts, none of them a duplicate of another.
std::vector<v1::Person> Population() {
  return {MakePerson("Mohammed", "Al-Hassan", 1990),
          MakePerson("Olena", "Kovalenko", 1985),
          MakePerson("Ayşe", "Yılmaz", 1979),
          MakePerson("Tesfaye", "Gebremedhin", 1995),
          MakePerson("Dragan", "Đorđević", 1970),
          MakePerson("محمد", "الحسن", 2001, "Arab"),
          MakePerson("Олена", "Шевченко", 1963, "Cyrl")};
}

// Population() as an agency registers it: every person with a Latin
// spelling, the papers' original script beside it.
std::vector<v1::Person> RegisteredPopulation() {
  std::vector<v1::Person> out;
  for (v1::Person p : Population()) {
    if (p.names(0).script() != "Latn") {
      v1::Person latin =
          MakePerson(p.names(0).script() == "Arab" ? "Mohamed" : "Olena",
                     p.names(0).script() == "Arab" ? "Al-Hasan" : "Shevchenko",
                     p.birth_date().year());
      *latin.add_names() = p.names(0);
      p = latin;
    }
    out.push_back(p);
  }
  return out;
}

std::string IdOf(const v1::Person& p) {
  return p.name().substr(std::string("persons/").size());
}

class RekeyTest : public testing::BothBackendsTest {
 protected:
  void SetUp() override {
    BothBackendsTest::SetUp();
    std::vector<storage::Migration> migrations = PersonMigrations();
    migrations.push_back(PersonErasureMigration());
    ASSERT_TRUE(storage::ApplyMigrations(db(), migrations).ok());
  }

  absl::Status Tx(const std::function<absl::Status(PersonStore&)>& body,
                  TxMode mode = TxMode::kReadWrite) {
    return storage::RunInTransaction(
        db(),
        [&](Transaction& tx) {
          PersonStore store(tx, Matcher());
          return body(store);
        },
        mode);
  }

  std::vector<v1::Person> CreateAll(const std::vector<v1::Person>& persons) {
    std::vector<v1::Person> out;
    absl::Status s = Tx([&](PersonStore& store) -> absl::Status {
      out.clear();
      for (const v1::Person& p : persons) {
        absl::StatusOr<v1::Person> created =
            store.Create(p, "agencies/kim-koeln");
        if (!created.ok()) return created.status();
        out.push_back(*created);
      }
      return absl::OkStatus();
    });
    EXPECT_TRUE(s.ok()) << s;
    return out;
  }

  void Exec(const std::string& sql, const std::vector<storage::Value>& params) {
    absl::Status s = storage::RunInTransaction(db(), [&](Transaction& tx) {
      return tx.Execute(sql, params).status();
    });
    ASSERT_TRUE(s.ok()) << s << " in " << sql;
  }

  int64_t Count(const std::string& sql,
                const std::vector<storage::Value>& params = {}) {
    int64_t n = -1;
    absl::Status s = storage::RunInTransaction(
        db(),
        [&](Transaction& tx) -> absl::Status {
          absl::StatusOr<storage::Rows> rows = tx.Query(sql, params);
          if (!rows.ok()) return rows.status();
          absl::StatusOr<int64_t> v = rows->front().GetInt(0);
          if (!v.ok()) return v.status();
          n = *v;
          return absl::OkStatus();
        },
        TxMode::kReadOnly);
    EXPECT_TRUE(s.ok()) << s;
    return n;
  }

  // What an upgrade finds: every row marked as keyed under `rules`, and
  // every live person's keys replaced by one that no lookup ever uses.
  void MakeStale(int64_t rules) {
    Exec("UPDATE identity_persons SET key_rules = $1", {rules});
    Exec("DELETE FROM identity_person_keys", {});
    Exec(
        "INSERT INTO identity_person_keys (block_key, person_id) "
        "SELECT 'garbage|' || id, id FROM identity_persons "
        "WHERE merged_into IS NULL AND erase_us IS NULL",
        {});
  }

  // Whether the store's candidate lookup for `person`'s own record (the
  // lookup FindDuplicates and CreatePerson make) returns it; through
  // `index` when given.
  bool Found(const v1::Person& person, KeyIndex* index = nullptr) {
    bool found = false;
    absl::Status s = Tx(
        [&](PersonStore& store) -> absl::Status {
          store.set_key_index(index);
          absl::StatusOr<Candidates> c =
              store.FindCandidates(ToMatchRecord(person), CandidateLimits());
          if (!c.ok()) return c.status();
          found = false;
          for (const std::string& id : c->person_ids) {
            if (id == IdOf(person)) found = true;
          }
          return absl::OkStatus();
        },
        TxMode::kReadOnly);
    EXPECT_TRUE(s.ok()) << s;
    return found;
  }

  std::set<std::string> KeysOf(const v1::Person& person) {
    std::set<std::string> keys;
    absl::Status s = Tx(
        [&](PersonStore& store) -> absl::Status {
          absl::StatusOr<std::vector<PersonStore::KeyRow>> rows =
              store.KeysOf({IdOf(person)});
          if (!rows.ok()) return rows.status();
          keys.clear();
          for (const PersonStore::KeyRow& row : *rows) {
            keys.insert(row.block_key);
          }
          return absl::OkStatus();
        },
        TxMode::kReadOnly);
    EXPECT_TRUE(s.ok()) << s;
    return keys;
  }

  // The keys the current rules give `person`'s record.
  std::set<std::string> ExpectedKeys(const v1::Person& person) {
    absl::StatusOr<PreparedRecord> prepared =
        Matcher().Prepare(ToMatchRecord(person));
    EXPECT_TRUE(prepared.ok()) << prepared.status();
    if (!prepared.ok()) return {};
    std::vector<std::string> keys = Matcher().BlockingKeys(*prepared);
    return std::set<std::string>(keys.begin(), keys.end());
  }

  int64_t StaleRows() {
    int64_t n = -1;
    absl::Status s = Tx(
        [&](PersonStore& store) -> absl::Status {
          absl::StatusOr<int64_t> stale = store.CountStaleKeyRows();
          if (!stale.ok()) return stale.status();
          n = *stale;
          return absl::OkStatus();
        },
        TxMode::kReadOnly);
    EXPECT_TRUE(s.ok()) << s;
    return n;
  }

  int64_t KeyStamp() {
    int64_t stamp = -1;
    absl::Status s = Tx(
        [&](PersonStore& store) -> absl::Status {
          absl::StatusOr<int64_t> read = store.ReadKeyStamp();
          if (!read.ok()) return read.status();
          stamp = *read;
          return absl::OkStatus();
        },
        TxMode::kReadOnly);
    EXPECT_TRUE(s.ok()) << s;
    return stamp;
  }

  int64_t KeyRulesOf(const v1::Person& person) {
    return Count("SELECT key_rules FROM identity_persons WHERE id = $1",
                 {IdOf(person)});
  }
};

TEST_P(RekeyTest, WritersRecordTheCurrentRulesSoNothingIsStale) {
  std::vector<v1::Person> persons = CreateAll(Population());
  ASSERT_EQ(persons.size(), Population().size());
  v1::Person changed = persons[0];
  changed.mutable_birth_date()->set_year(1991);
  absl::Status s = Tx([&](PersonStore& store) {
    return store.Update(IdOf(persons[0]), changed, persons[0].etag()).status();
  });
  ASSERT_TRUE(s.ok()) << s;
  for (const v1::Person& p : persons) EXPECT_EQ(KeyRulesOf(p), kCurrentRules);
  EXPECT_EQ(StaleRows(), 0);

  const int64_t stamp = KeyStamp();
  absl::StatusOr<RekeyResult> result = RekeyStaleKeys(db(), Matcher());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->stale, 0);
  EXPECT_EQ(result->rows, 0);
  EXPECT_EQ(result->batches, 0);
  EXPECT_EQ(KeyStamp(), stamp);  // wrote nothing
}

TEST_P(RekeyTest, EmptyStoreHasNothingToDo) {
  absl::StatusOr<RekeyResult> result = RekeyStaleKeys(db(), Matcher());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->stale, 0);
  EXPECT_EQ(result->batches, 0);
  absl::StatusOr<RekeyBatchResult> batch = RekeyBatch(db(), Matcher());
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_TRUE(batch->done);
  EXPECT_EQ(batch->rows, 0);
}

TEST_P(RekeyTest, KeysOfOlderRulesAreDerivedAfreshAndFoundAgain) {
  std::vector<v1::Person> persons = CreateAll(Population());
  ASSERT_EQ(persons.size(), Population().size());
  MakeStale(kOldRules);
  // The lookups of the current rules no longer meet these keys.
  for (const v1::Person& p : persons) EXPECT_FALSE(Found(p)) << p.name();
  EXPECT_EQ(StaleRows(), static_cast<int64_t>(persons.size()));

  absl::StatusOr<RekeyResult> result = RekeyStaleKeys(db(), Matcher());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->stale, static_cast<int64_t>(persons.size()));
  EXPECT_EQ(result->rows, static_cast<int64_t>(persons.size()));
  EXPECT_EQ(result->persons, static_cast<int64_t>(persons.size()));
  EXPECT_EQ(result->batches, 1);

  for (const v1::Person& p : persons) {
    EXPECT_TRUE(Found(p)) << p.name();
    EXPECT_EQ(KeysOf(p), ExpectedKeys(p)) << p.name();
    EXPECT_EQ(KeyRulesOf(p), kCurrentRules);
  }
  EXPECT_EQ(Count("SELECT COUNT(*) FROM identity_person_keys "
                  "WHERE block_key LIKE 'garbage|%'"),
            0);
  EXPECT_EQ(StaleRows(), 0);

  // A second start finds nothing to do and writes nothing.
  const int64_t stamp = KeyStamp();
  result = RekeyStaleKeys(db(), Matcher());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->stale, 0);
  EXPECT_EQ(result->rows, 0);
  EXPECT_EQ(result->batches, 0);
  EXPECT_EQ(KeyStamp(), stamp);
}

TEST_P(RekeyTest, KeysOfNewerRulesAreDerivedAfreshToo) {
  // A binary rolled back to older rules than the keys were written with.
  std::vector<v1::Person> persons = CreateAll(Population());
  MakeStale(kCurrentRules + 1);
  EXPECT_EQ(StaleRows(), static_cast<int64_t>(persons.size()));
  absl::StatusOr<RekeyResult> result = RekeyStaleKeys(db(), Matcher());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->rows, static_cast<int64_t>(persons.size()));
  for (const v1::Person& p : persons) {
    EXPECT_TRUE(Found(p)) << p.name();
    EXPECT_EQ(KeyRulesOf(p), kCurrentRules);
  }
}

TEST_P(RekeyTest, AnInterruptedRekeyContinuesWhereItStopped) {
  std::vector<v1::Person> persons = CreateAll(Population());
  const int64_t n = static_cast<int64_t>(persons.size());
  ASSERT_GT(n, 3);
  MakeStale(kOldRules);

  // One batch, then the process dies.
  absl::StatusOr<RekeyBatchResult> batch = RekeyBatch(db(), Matcher(), 3);
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_FALSE(batch->done);
  EXPECT_EQ(batch->rows, 3);
  EXPECT_EQ(batch->persons, 3);
  EXPECT_EQ(StaleRows(), n - 3);
  int found = 0;
  for (const v1::Person& p : persons) {
    // Never a person without keys: old ones or new ones.
    EXPECT_FALSE(KeysOf(p).empty()) << p.name();
    const bool rekeyed = KeyRulesOf(p) == kCurrentRules;
    EXPECT_EQ(Found(p), rekeyed) << p.name();
    if (rekeyed) {
      EXPECT_EQ(KeysOf(p), ExpectedKeys(p));
      ++found;
    } else {
      EXPECT_EQ(KeysOf(p), std::set<std::string>{"garbage|" + IdOf(p)});
    }
  }
  EXPECT_EQ(found, 3);

  // The next start re-keys only what is left.
  absl::StatusOr<RekeyResult> result = RekeyStaleKeys(db(), Matcher(), 2);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->stale, n - 3);
  EXPECT_EQ(result->rows, n - 3);
  EXPECT_EQ(result->batches, (n - 3 + 1) / 2);
  for (const v1::Person& p : persons) {
    EXPECT_TRUE(Found(p)) << p.name();
    EXPECT_EQ(KeysOf(p), ExpectedKeys(p)) << p.name();
  }
  EXPECT_EQ(StaleRows(), 0);
}

TEST_P(RekeyTest, MergedAndErasedPersonsGetNoKeysOnlyTheRules) {
  std::vector<v1::Person> persons =
      CreateAll({MakePerson("Mohammed", "Al-Hassan", 1990),
                 MakePerson("Muhammad", "Alhassan", 1990),
                 MakePerson("Olena", "Kovalenko", 1985)});
  ASSERT_EQ(persons.size(), 3u);
  absl::Status s = Tx([&](PersonStore& store) -> absl::Status {
    absl::StatusOr<v1::Person> merged =
        store.Merge(IdOf(persons[0]), persons[0].etag(), IdOf(persons[1]),
                    persons[1].etag());
    if (!merged.ok()) return merged.status();
    return store.Erase(IdOf(persons[2])).status();
  });
  ASSERT_TRUE(s.ok()) << s;
  MakeStale(kOldRules);
  EXPECT_EQ(StaleRows(), 3);

  absl::StatusOr<RekeyResult> result = RekeyStaleKeys(db(), Matcher());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->rows, 3);
  EXPECT_EQ(result->persons, 1);
  EXPECT_TRUE(Found(persons[0]));
  EXPECT_TRUE(KeysOf(persons[1]).empty());
  EXPECT_TRUE(KeysOf(persons[2]).empty());
  EXPECT_FALSE(Found(persons[1]));
  EXPECT_FALSE(Found(persons[2]));
  for (const v1::Person& p : persons) EXPECT_EQ(KeyRulesOf(p), kCurrentRules);
  EXPECT_EQ(StaleRows(), 0);
}

TEST_P(RekeyTest, FormsOfAnotherFormatArePreparedFromTheRecordAndStored) {
  std::vector<v1::Person> persons = CreateAll(Population());
  MakeStale(kOldRules);
  // One row without a form (an older release), one whose form does not
  // decode under the current format.
  Exec("UPDATE identity_persons SET match_form = NULL WHERE id = $1",
       {IdOf(persons[5])});
  Exec("UPDATE identity_persons SET match_form = $1 WHERE id = $2",
       {storage::Bytes{"not a form"}, IdOf(persons[6])});

  absl::StatusOr<RekeyResult> result = RekeyStaleKeys(db(), Matcher());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->persons, static_cast<int64_t>(persons.size()));
  for (const v1::Person& p : {persons[5], persons[6]}) {
    EXPECT_TRUE(Found(p)) << p.name();
    EXPECT_EQ(KeysOf(p), ExpectedKeys(p)) << p.name();
    std::string form;
    absl::Status s = Tx(
        [&](PersonStore& store) -> absl::Status {
          absl::StatusOr<std::string> stored =
              store.ReadStoredMatchForm(IdOf(p));
          if (!stored.ok()) return stored.status();
          form = *stored;
          return absl::OkStatus();
        },
        TxMode::kReadOnly);
    ASSERT_TRUE(s.ok()) << s;
    EXPECT_TRUE(Matcher().DecodePrepared(form).ok()) << p.name();
  }
}

TEST_P(RekeyTest, ARowChangedSinceItWasReadIsLeftToItsWriter) {
  std::vector<v1::Person> persons = CreateAll(Population());
  MakeStale(kOldRules);
  std::vector<PersonStore::StaleKeyRow> rows;
  absl::Status s = Tx(
      [&](PersonStore& store) -> absl::Status {
        absl::StatusOr<std::vector<PersonStore::StaleKeyRow>> read =
            store.ReadStaleKeyRows(100);
        if (!read.ok()) return read.status();
        rows = *std::move(read);
        return absl::OkStatus();
      },
      TxMode::kReadOnly);
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_EQ(rows.size(), persons.size());
  const PersonStore::StaleKeyRow* row = nullptr;
  for (const PersonStore::StaleKeyRow& r : rows) {
    if (r.id == IdOf(persons[1])) row = &r;
  }
  ASSERT_NE(row, nullptr);
  EXPECT_TRUE(row->live);

  // Another writer changes the person between the read and the write.
  v1::Person renamed = MakePerson("Olha", "Kowalenko", 1985);
  s = Tx([&](PersonStore& store) {
    return store.Update(IdOf(persons[1]), renamed, persons[1].etag()).status();
  });
  ASSERT_TRUE(s.ok()) << s;
  const std::set<std::string> written = KeysOf(persons[1]);
  EXPECT_EQ(written, ExpectedKeys(renamed));

  absl::StatusOr<PreparedRecord> stale_form =
      Matcher().Prepare(ToMatchRecord(persons[1]));
  ASSERT_TRUE(stale_form.ok());
  // The batch holds the changed row and one that did not change.
  const PersonStore::StaleKeyRow* unchanged =
      &rows[rows.front().id == row->id ? 1 : 0];
  absl::StatusOr<PreparedRecord> unchanged_form =
      Matcher().DecodePrepared(unchanged->match_form);
  ASSERT_TRUE(unchanged_form.ok()) << unchanged_form.status();
  absl::StatusOr<PersonStore::Rekeyed> rekeyed;
  s = Tx([&](PersonStore& store) -> absl::Status {
    rekeyed = store.RekeyRows(
        {{row, &*stale_form, ""}, {unchanged, &*unchanged_form, ""}});
    return rekeyed.status();
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(rekeyed->rows, 1);
  EXPECT_EQ(rekeyed->persons, 1);
  // The writer's keys stand; the unchanged row got the current ones.
  EXPECT_EQ(KeysOf(persons[1]), written);
  EXPECT_EQ(KeyRulesOf(persons[1]), kCurrentRules);
  for (const v1::Person& p : persons) {
    if (IdOf(p) != unchanged->id) continue;
    EXPECT_TRUE(Found(p)) << p.name();
    EXPECT_EQ(KeysOf(p), ExpectedKeys(p)) << p.name();
    EXPECT_EQ(KeyRulesOf(p), kCurrentRules);
  }
}

TEST_P(RekeyTest, InMemoryIndexesCatchUpWithTheRekey) {
  std::vector<v1::Person> persons = CreateAll(Population());
  MakeStale(kOldRules);
  // An index built on the stale keys (another replica's, say).
  KeyIndex index;
  ASSERT_TRUE(index.Build(db(), Matcher()).ok());
  EXPECT_FALSE(Found(persons[0], &index));
  const int64_t stamp = KeyStamp();

  absl::StatusOr<RekeyResult> result = RekeyStaleKeys(db(), Matcher(), 4);
  ASSERT_TRUE(result.ok()) << result.status();
  // Each batch claimed a key stamp, which tells the index what changed.
  EXPECT_EQ(KeyStamp(), stamp + result->batches);
  for (const v1::Person& p : persons) {
    EXPECT_TRUE(Found(p, &index)) << p.name();
  }
}

TEST_P(RekeyTest, ABatchLargerThanOneStatementRekeysEveryRow) {
  // More rows than RekeyRows writes per statement, and more keys than one
  // INSERT carries, with merged and erased rows between the live ones.
  std::vector<v1::Person> drafts;
  const char* const kSyllables[] = {"ka", "lo", "mi", "ra", "su", "te", "vo"};
  for (int i = 0; i < 250; ++i) {
    const std::string given = absl::StrCat(
        kSyllables[i % 7], kSyllables[(i / 7) % 7], kSyllables[(i / 49) % 7]);
    drafts.push_back(MakePerson(absl::StrCat(given, "na"),
                                absl::StrCat("Be", given), 1950 + i % 60));
  }
  std::vector<v1::Person> persons = CreateAll(drafts);
  ASSERT_EQ(persons.size(), drafts.size());
  absl::Status s = Tx([&](PersonStore& store) -> absl::Status {
    absl::StatusOr<v1::Person> merged =
        store.Merge(IdOf(persons[10]), persons[10].etag(), IdOf(persons[11]),
                    persons[11].etag());
    if (!merged.ok()) return merged.status();
    return store.Erase(IdOf(persons[150])).status();
  });
  ASSERT_TRUE(s.ok()) << s;
  MakeStale(kOldRules);

  absl::StatusOr<RekeyResult> result = RekeyStaleKeys(db(), Matcher());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->rows, 250);
  EXPECT_EQ(result->persons, 248);
  EXPECT_EQ(result->batches, 1);
  for (size_t i = 0; i < persons.size(); ++i) {
    if (i == 11 || i == 150) {
      EXPECT_TRUE(KeysOf(persons[i]).empty());
      continue;
    }
    EXPECT_TRUE(Found(persons[i])) << persons[i].name();
    EXPECT_EQ(KeysOf(persons[i]), ExpectedKeys(persons[i]));
  }
  EXPECT_EQ(StaleRows(), 0);
}

TEST_P(RekeyTest, RefusesAnEmptyBatch) {
  absl::StatusOr<RekeyBatchResult> batch = RekeyBatch(db(), Matcher(), 0);
  EXPECT_EQ(batch.status().code(), absl::StatusCode::kInvalidArgument);
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(RekeyTest);

// The service re-keys at start-up, before it serves: FindDuplicates finds
// persons whose keys an earlier release wrote under other rules.
class RekeyOnStartTest : public testing::ServiceServerTest {
 protected:
  void SetUp() override {
    ServiceServerTest::SetUp();
    if (HasFatalFailure()) return;
    StartRuntime(IdentityMigrations(), "identity.lotse",
                 {/*workers=*/4, /*max_queued=*/64});
    if (HasFatalFailure()) return;
    ASSERT_TRUE(BootstrapAdminAgency(db(), "lotse-admin").ok());
    StartService();
    if (HasFatalFailure()) return;
    v1::RegisterAgencyRequest request;
    request.set_request_id("reg-kim-koeln");
    request.set_agency_id("kim-koeln");
    request.mutable_agency()->set_display_name("KIM Köln");
    request.mutable_agency()->set_legal_domain(type::v1::LEGAL_DOMAIN_KOMMUNE);
    request.mutable_agency()->set_municipality_code("05315000");
    request.mutable_agency()->set_certificate_identity("kim-koeln");
    v1::Agency agency;
    grpc::ClientContext context;
    Prepare(&context);
    grpc::Status status = Stub<v1::IdentityService>("lotse-admin")
                              ->RegisterAgency(&context, request, &agency);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  void TearDown() override {
    StopServing();
    service_.reset();
    ServiceServerTest::TearDown();
  }

  // A process start: the service on the database as it is, key index on.
  void StartService() {
    service_ = std::make_unique<IdentityServiceImpl>(runtime_);
    auto policy = AccessPolicy::LoadFile(
        absl::StrCat(testing::SourceDir(), "/config/access-rules.conf"));
    ASSERT_TRUE(policy.ok()) << policy.status();
    auto rules = std::make_shared<const AccessPolicy>(*std::move(policy));
    absl::Status enabled =
        service_->EnablePersons(rules, /*match_form_cache_bytes=*/0,
                                /*key_index=*/true);
    ASSERT_TRUE(enabled.ok()) << enabled;
    ASSERT_TRUE(service_->EnableAccess(rules).ok());
    Serve("identity", service_.get());
  }

  void StopService() {
    StopServing();
    service_.reset();
  }

  static void Prepare(grpc::ClientContext* context) {
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(20));
    context->AddMetadata("x-lotse-actor", "cw-17");
    context->AddMetadata("x-lotse-purpose", "case-management");
  }

  // The persons FindDuplicates returns for `draft`, as kim-koeln.
  std::set<std::string> Duplicates(const v1::Person& draft) {
    v1::FindDuplicatesRequest request;
    *request.mutable_draft() = draft;
    v1::FindDuplicatesResponse response;
    grpc::ClientContext context;
    Prepare(&context);
    grpc::Status status = Stub<v1::IdentityService>("kim-koeln")
                              ->FindDuplicates(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    std::set<std::string> names;
    for (const v1::DuplicateCandidate& c : response.candidates()) {
      names.insert(c.person().name());
    }
    return names;
  }

  std::unique_ptr<IdentityServiceImpl> service_;
};

TEST_P(RekeyOnStartTest, ARestartAfterARulesChangeFindsThePersonsAgain) {
  std::vector<std::string> names;
  std::vector<v1::Person> persons = RegisteredPopulation();
  for (size_t i = 0; i < persons.size(); ++i) {
    v1::CreatePersonRequest request;
    request.set_request_id(absl::StrCat("c-", i));
    *request.mutable_person() = persons[i];
    request.set_confirm_new_person(true);
    v1::Person created;
    grpc::ClientContext context;
    Prepare(&context);
    grpc::Status status = Stub<v1::IdentityService>("kim-koeln")
                              ->CreatePerson(&context, request, &created);
    ASSERT_TRUE(status.ok()) << status.error_message();
    names.push_back(created.name());
  }
  for (size_t i = 0; i < persons.size(); ++i) {
    EXPECT_EQ(Duplicates(persons[i]).count(names[i]), 1u) << names[i];
  }

  // The process stops; the stored keys turn out to follow older rules.
  StopService();
  for (const char* sql :
       {"UPDATE identity_persons SET key_rules = key_rules - 1",
        "DELETE FROM identity_person_keys",
        "INSERT INTO identity_person_keys (block_key, person_id) "
        "SELECT 'garbage|' || id, id FROM identity_persons"}) {
    absl::Status s = storage::RunInTransaction(
        db(), [&](Transaction& tx) { return tx.Execute(sql).status(); });
    ASSERT_TRUE(s.ok()) << s << " in " << sql;
  }

  StartService();
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(Count(absl::StrCat("SELECT COUNT(*) FROM identity_persons "
                               "WHERE key_rules <> ",
                               kCurrentRules)),
            0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM identity_person_keys "
                  "WHERE block_key LIKE 'garbage|%'"),
            0);
  for (size_t i = 0; i < persons.size(); ++i) {
    EXPECT_EQ(Duplicates(persons[i]).count(names[i]), 1u) << names[i];
  }
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(RekeyOnStartTest);

}  // namespace
}  // namespace lotse::identity
