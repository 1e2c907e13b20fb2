#include "services/identity/store/match_form_cache.h"

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/storage/migrations.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "services/identity/domain/person.h"
#include "tests/identity/test_matcher.h"
#include "tests/support/test_database.h"

namespace lotse::identity {
namespace {

using ::lotse::storage::Transaction;
using ::lotse::storage::TxMode;

const DuplicateMatcher& Matcher() { return SharedTestMatcher(); }

v1::Person MakePerson(const std::string& given, const std::string& family,
                      int year) {
  v1::Person p;
  v1::PersonName* name = p.add_names();
  name->set_given_names(given);
  name->set_family_names(family);
  name->set_script("Latn");
  p.mutable_birth_date()->set_year(year);
  return p;
}

std::string IdOf(const v1::Person& p) {
  return p.name().substr(std::string("persons/").size());
}

class MatchFormCacheTest : public testing::BothBackendsTest {
 protected:
  void SetUp() override {
    BothBackendsTest::SetUp();
    std::vector<storage::Migration> migrations = PersonMigrations();
    migrations.push_back(PersonErasureMigration());
    ASSERT_TRUE(storage::ApplyMigrations(db(), migrations).ok());
  }

  absl::Status Tx(const std::function<absl::Status(PersonStore&)>& body) {
    return storage::RunInTransaction(db(), [&](Transaction& tx) {
      PersonStore store(tx, Matcher());
      return body(store);
    });
  }

  v1::Person Create(const v1::Person& p) {
    v1::Person out;
    absl::Status s = Tx([&](PersonStore& store) {
      absl::StatusOr<v1::Person> created =
          store.Create(p, "agencies/kim-koeln");
      if (!created.ok()) return created.status();
      out = *created;
      return absl::OkStatus();
    });
    EXPECT_TRUE(s.ok()) << s;
    return out;
  }

  v1::Person Rename(const v1::Person& person, const std::string& family) {
    v1::Person changed = person;
    changed.mutable_names(0)->set_family_names(family);
    v1::Person out;
    absl::Status s = Tx([&](PersonStore& store) {
      absl::StatusOr<v1::Person> updated =
          store.Update(IdOf(person), changed, person.etag());
      if (!updated.ok()) return updated.status();
      out = *updated;
      return absl::OkStatus();
    });
    EXPECT_TRUE(s.ok()) << s;
    return out;
  }

  // Id and encoded form of each candidate, for comparing two loads.
  static std::vector<std::string> Describe(
      const std::vector<MatchCandidate>& forms) {
    std::vector<std::string> out;
    for (const MatchCandidate& c : forms) {
      out.push_back(
          absl::StrCat(c.id, ":", Matcher().EncodePrepared(c.prepared)));
    }
    return out;
  }

  // The forms of `ids` through `cache`, in a read-only transaction.
  std::vector<std::string> LoadCached(MatchFormCache& cache,
                                      const std::vector<std::string>& ids) {
    std::vector<std::string> out;
    absl::Status s = storage::RunInTransaction(
        db(),
        [&](Transaction& tx) {
          PersonStore store(tx, Matcher());
          absl::StatusOr<std::vector<MatchCandidate>> forms =
              cache.Load(store, ids);
          if (!forms.ok()) return forms.status();
          out = Describe(*forms);
          return absl::OkStatus();
        },
        TxMode::kReadOnly);
    EXPECT_TRUE(s.ok()) << s;
    return out;
  }

  // The same straight from the database.
  std::vector<std::string> LoadStored(const std::vector<std::string>& ids) {
    std::vector<std::string> out;
    absl::Status s = Tx([&](PersonStore& store) {
      absl::StatusOr<std::vector<MatchCandidate>> forms =
          store.LoadMatchForms(ids);
      if (!forms.ok()) return forms.status();
      out = Describe(*forms);
      return absl::OkStatus();
    });
    EXPECT_TRUE(s.ok()) << s;
    return out;
  }
};

TEST_P(MatchFormCacheTest, AnswersLikeTheStoreAndThenFromMemory) {
  const std::string a = IdOf(Create(MakePerson("Mohammed", "Al-Hassan", 1990)));
  const std::string b =
      IdOf(Create(MakePerson("Oleksandr", "Kovalenko", 1985)));
  const std::string c = IdOf(Create(MakePerson("Ayşe", "Yılmaz", 1979)));
  // The order asked for, and an id that does not exist is left out.
  const std::vector<std::string> ids = {c, "zzzzzzzzzzzzzzzzzzzzzzzzzz", a, b};
  const std::vector<std::string> stored = LoadStored(ids);
  ASSERT_EQ(stored.size(), 3u);

  MatchFormCache cache(Matcher(), 1 << 20);
  EXPECT_EQ(LoadCached(cache, ids), stored);
  EXPECT_EQ(cache.stats().hits, 0);
  EXPECT_EQ(cache.stats().entries, 3);
  EXPECT_EQ(LoadCached(cache, ids), stored);
  EXPECT_EQ(cache.stats().hits, 3);
  // The unknown id is asked for again each time: it might be created.
  EXPECT_EQ(cache.stats().misses, 4 + 1);
}

TEST_P(MatchFormCacheTest, AnUpdateReplacesTheCachedForm) {
  const v1::Person person = Create(MakePerson("Oleksandr", "Kovalenko", 1985));
  const std::string id = IdOf(person);
  MatchFormCache cache(Matcher(), 1 << 20);
  const std::vector<std::string> before = LoadCached(cache, {id});
  ASSERT_EQ(before, LoadStored({id}));

  Rename(person, "Schmidt");
  const std::vector<std::string> after = LoadStored({id});
  ASSERT_NE(after, before);
  EXPECT_EQ(LoadCached(cache, {id}), after);
  EXPECT_EQ(LoadCached(cache, {id}), after);
}

// A reader that began before a change must not leave its older form in a
// cache that already follows the change.
TEST_P(MatchFormCacheTest, AReaderBehindTheCacheKeepsItsFormToItself) {
  const v1::Person person = Create(MakePerson("Oleksandr", "Kovalenko", 1985));
  const std::string other =
      IdOf(Create(MakePerson("Mohammed", "Al-Hassan", 1990)));
  const std::string id = IdOf(person);
  MatchFormCache cache(Matcher(), 1 << 20);

  absl::StatusOr<std::unique_ptr<Transaction>> old_tx =
      db().Begin(TxMode::kReadOnly);
  ASSERT_TRUE(old_tx.ok()) << old_tx.status();
  PersonStore old_store(**old_tx, Matcher());
  // Pins the old reader's snapshot (SQLite keeps it for the transaction).
  ASSERT_TRUE(old_store.ReadKeyStamp().ok());

  Rename(person, "Schmidt");
  const std::vector<std::string> renamed = LoadStored({id});
  // Another reader moves the cache past the rename without loading `id`.
  LoadCached(cache, {other});

  absl::StatusOr<std::vector<MatchCandidate>> old_view =
      cache.Load(old_store, {id});
  ASSERT_TRUE(old_view.ok()) << old_view.status();
  ASSERT_EQ(old_view->size(), 1u);
  old_tx->reset();  // ends the old reader (rolled back)

  EXPECT_EQ(LoadCached(cache, {id}), renamed);
}

TEST_P(MatchFormCacheTest, StaysWithinItsBudget) {
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    ids.push_back(IdOf(
        Create(MakePerson("Mohammed", absl::StrCat("Family", i), 1970 + i))));
  }
  const std::vector<std::string> stored = LoadStored(ids);
  constexpr size_t kBudget = 2048;
  MatchFormCache cache(Matcher(), kBudget);
  EXPECT_EQ(LoadCached(cache, ids), stored);
  EXPECT_EQ(LoadCached(cache, ids), stored);
  EXPECT_LE(cache.stats().bytes, static_cast<int64_t>(kBudget));
  EXPECT_GT(cache.stats().entries, 0);
  EXPECT_LT(cache.stats().entries, 20);
}

TEST_P(MatchFormCacheTest, WarmingFillsItFromTheStoredForms) {
  std::vector<std::string> ids;
  for (int i = 0; i < 12; ++i) {
    ids.push_back(IdOf(
        Create(MakePerson("Tesfaye", absl::StrCat("Family", i), 1960 + i))));
  }
  const v1::Person renamed_later =
      Create(MakePerson("Oleksandr", "Kovalenko", 1985));
  ids.push_back(IdOf(renamed_later));
  const std::vector<std::string> stored = LoadStored(ids);

  MatchFormCache cache(Matcher(), 1 << 20);
  absl::StatusOr<int64_t> warmed = cache.Warm(db());
  ASSERT_TRUE(warmed.ok()) << warmed.status();
  EXPECT_EQ(*warmed, 13);
  // Every form comes from memory, and is what the store has.
  EXPECT_EQ(LoadCached(cache, ids), stored);
  EXPECT_EQ(cache.stats().hits, 13);
  EXPECT_EQ(cache.stats().misses, 0);

  // A change after warming is not answered from the warmed entry.
  Rename(renamed_later, "Schmidt");
  const std::vector<std::string> after = LoadStored({IdOf(renamed_later)});
  EXPECT_EQ(LoadCached(cache, {IdOf(renamed_later)}), after);

  // Warming again adds nothing already there.
  warmed = cache.Warm(db());
  ASSERT_TRUE(warmed.ok()) << warmed.status();
  // (the renamed person's new form came back with the load above).
  EXPECT_EQ(*warmed, 0);
  EXPECT_EQ(cache.stats().entries, 13);
}

TEST_P(MatchFormCacheTest, WarmingStopsAtTheBudget) {
  std::vector<std::string> ids;
  for (int i = 0; i < 40; ++i) {
    ids.push_back(IdOf(
        Create(MakePerson("Mohammed", absl::StrCat("Family", i), 1970 + i))));
  }
  constexpr size_t kBudget = 4096;
  MatchFormCache cache(Matcher(), kBudget);
  absl::StatusOr<int64_t> warmed = cache.Warm(db());
  ASSERT_TRUE(warmed.ok()) << warmed.status();
  EXPECT_GT(*warmed, 0);
  EXPECT_LT(*warmed, 40);
  // Nothing warmed was dropped again to make room.
  EXPECT_EQ(cache.stats().entries, *warmed);
  EXPECT_LE(cache.stats().bytes, static_cast<int64_t>(kBudget));
  // Hits on a full cache drop nothing either: every warmed form is still
  // there after all were asked for, in either order.
  // Warming went in the scan's order: the order of creation on SQLite
  // (storage order), id order elsewhere.
  std::vector<std::string> warm_ids = ids;
  if (GetParam() != storage::Dialect::kSqlite) {
    std::sort(warm_ids.begin(), warm_ids.end());
  }
  warm_ids.resize(static_cast<size_t>(*warmed));
  EXPECT_EQ(LoadCached(cache, warm_ids), LoadStored(warm_ids));
  std::vector<std::string> reversed(warm_ids.rbegin(), warm_ids.rend());
  EXPECT_EQ(LoadCached(cache, reversed), LoadStored(reversed));
  EXPECT_EQ(cache.stats().entries, *warmed);
  EXPECT_EQ(cache.stats().misses, 0);
  EXPECT_EQ(LoadCached(cache, ids), LoadStored(ids));
}

TEST_P(MatchFormCacheTest, NoBudgetReadsEveryFormFromTheDatabase) {
  const std::string id =
      IdOf(Create(MakePerson("Oleksandr", "Kovalenko", 1985)));
  MatchFormCache cache(Matcher(), 0);
  EXPECT_EQ(LoadCached(cache, {id}), LoadStored({id}));
  EXPECT_EQ(LoadCached(cache, {id}), LoadStored({id}));
  EXPECT_EQ(cache.stats().hits, 0);
  EXPECT_EQ(cache.stats().entries, 0);
}

// The value of `name`'s series with label result=`result` (or the only
// series when `result` is empty); -1 when the registry has no such series.
double MetricValue(prometheus::Registry& registry, const std::string& name,
                   const std::string& result = "") {
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const prometheus::ClientMetric& metric : family.metric) {
      const bool matches = result.empty() ? metric.label.empty()
                                          : (metric.label.size() == 1 &&
                                             metric.label[0].name == "result" &&
                                             metric.label[0].value == result);
      if (!matches) continue;
      return family.type == prometheus::MetricType::Counter
                 ? metric.counter.value
                 : metric.gauge.value;
    }
  }
  return -1;
}

TEST_P(MatchFormCacheTest, ExportsItsUseForSizingTheBudget) {
  const std::string a = IdOf(Create(MakePerson("Mohammed", "Al-Hassan", 1990)));
  const v1::Person b = Create(MakePerson("Oleksandr", "Kovalenko", 1985));
  prometheus::Registry registry;
  MatchFormCache cache(Matcher(), 1 << 20);
  cache.ExportMetrics(registry);
  const std::string hits = "lotse_identity_match_form_cache_lookups_total";
  EXPECT_EQ(
      MetricValue(registry, "lotse_identity_match_form_cache_budget_bytes"),
      1 << 20);
  EXPECT_EQ(MetricValue(registry, "lotse_identity_match_form_cache_entries"),
            0);

  LoadCached(cache, {a, IdOf(b)});
  LoadCached(cache, {a, IdOf(b)});
  EXPECT_EQ(MetricValue(registry, hits, "hit"), 2);
  EXPECT_EQ(MetricValue(registry, hits, "miss"), 2);
  EXPECT_EQ(MetricValue(registry, "lotse_identity_match_form_cache_entries"),
            2);
  const double two_entries =
      MetricValue(registry, "lotse_identity_match_form_cache_bytes");
  EXPECT_EQ(two_entries, cache.stats().bytes);
  EXPECT_GT(two_entries, 0);

  // A changed person leaves the cache when the next reader catches up.
  Rename(b, "Kowalenko");
  LoadCached(cache, {a});
  EXPECT_EQ(MetricValue(registry, "lotse_identity_match_form_cache_entries"),
            1);
  EXPECT_LT(MetricValue(registry, "lotse_identity_match_form_cache_bytes"),
            two_entries);
  EXPECT_EQ(MetricValue(registry, hits, "hit"), 3);
  EXPECT_EQ(
      MetricValue(registry, "lotse_identity_match_form_cache_clears_total"), 0);
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(MatchFormCacheTest);

}  // namespace
}  // namespace lotse::identity
