#include "services/identity/domain/romanization.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace lotse::identity {
namespace {

std::string Romanized(const std::string& text, const std::string& script,
                      const std::vector<std::string>& nationalities = {}) {
  absl::StatusOr<std::string> out = RomanizeName(text, script, nationalities);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.value_or("<error>");
}

TEST(RomanizationTest, TransformFollowsScriptAndNationality) {
  EXPECT_EQ(RomanizationTransformId("Cyrl", {"UA"}), "Ukrainian-Latin/BGN");
  EXPECT_EQ(RomanizationTransformId("Cyrl", {"RS"}), "Serbian-Latin/BGN");
  EXPECT_EQ(RomanizationTransformId("Cyrl", {"ME"}), "Serbian-Latin/BGN");
  EXPECT_EQ(RomanizationTransformId("Cyrl", {"BA"}), "Serbian-Latin/BGN");
  EXPECT_EQ(RomanizationTransformId("Cyrl", {"MK"}), "Macedonian-Latin/BGN");
  EXPECT_EQ(RomanizationTransformId("Cyrl", {"BY"}), "Belarusian-Latin/BGN");
  EXPECT_EQ(RomanizationTransformId("Cyrl", {"RU"}), "Russian-Latin/BGN");
  EXPECT_EQ(RomanizationTransformId("Cyrl", {}), "Russian-Latin/BGN");
  // The first nationality with its own rules decides.
  EXPECT_EQ(RomanizationTransformId("Cyrl", {"DE", "UA", "RU"}),
            "Ukrainian-Latin/BGN");
  EXPECT_EQ(RomanizationTransformId("Arab", {"IR"}), "Persian-Latin/BGN");
  EXPECT_EQ(RomanizationTransformId("Arab", {"AF"}), "Persian-Latin/BGN");
  EXPECT_EQ(RomanizationTransformId("Arab", {"SY"}), "Arabic-Latin/BGN");
  EXPECT_EQ(RomanizationTransformId("Ethi", {"ER"}), "Amharic-Latin/BGN");
  EXPECT_EQ(RomanizationTransformId("Grek", {"GR"}), "Any-Latin");
}

TEST(RomanizationTest, CyrillicByTheLanguagesOwnRules) {
  // Ukrainian "и" is "y", "г" is "h"; the Russian way reads them as "i"
  // and "g".
  EXPECT_EQ(Romanized("Олександр", "Cyrl", {"UA"}), "Oleksandr");
  EXPECT_EQ(Romanized("Шевченко", "Cyrl", {"UA"}), "Shevchenko");
  EXPECT_EQ(Romanized("Григорій", "Cyrl", {"UA"}), "Hryhoriy");
  EXPECT_EQ(Romanized("Григорий", "Cyrl", {"RU"}), "Grigoriy");
  // Serbian "ц" is "c" and "ћ" "c" (with its accent dropped), not "ts".
  EXPECT_EQ(Romanized("Јовановић", "Cyrl", {"RS"}), "Jovanovic");
  EXPECT_EQ(Romanized("Цвијановић", "Cyrl", {"RS"}), "Cvijanovic");
  EXPECT_EQ(Romanized("Цветков", "Cyrl", {"RU"}), "Tsvetkov");
}

TEST(RomanizationTest, ArabicPersianAndGeez) {
  const std::string arabic = Romanized("محمد الحسن", "Arab", {"SY"});
  EXPECT_FALSE(arabic.empty());
  const std::string persian = Romanized("محمد", "Arab", {"IR"});
  EXPECT_FALSE(persian.empty());
  const std::string tigrinya = Romanized("ሃብተ", "Ethi", {"ER"});
  EXPECT_FALSE(tigrinya.empty());
  for (const std::string& s : {arabic, persian, tigrinya}) {
    SCOPED_TRACE(s);
    for (char c : s) {
      EXPECT_TRUE((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                  c == ' ' || c == '-');
    }
    EXPECT_TRUE(s[0] >= 'A' && s[0] <= 'Z');
  }
}

TEST(RomanizationTest, TidiesToTitleCasedAsciiWords) {
  EXPECT_EQ(Romanized("ОЛЕНА  КОВАЛЕНКО-ШЕВЧУК", "Cyrl", {"UA"}),
            "Olena Kovalenko-Shevchuk");
  // Soft signs and apostrophes vanish inside a word.
  EXPECT_EQ(Romanized("Ігор'", "Cyrl", {"UA"}), "Ihor");
  EXPECT_EQ(Romanized("", "Cyrl", {"UA"}), "");
  EXPECT_EQ(Romanized(" - ", "Cyrl", {"UA"}), "");
  const std::string long_name(300, 'a');
  EXPECT_EQ(Romanized(long_name, "Latn").size(), 200u);
}

TEST(RomanizationTest, InvalidUtf8IsInvalidArgument) {
  absl::StatusOr<std::string> out = RomanizeName("\xff\xfe", "Cyrl", {});
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(RomanizationTest, SafeFromManyThreads) {
  // Two rule sets, so that threads share the cache and clone different
  // transforms at once.
  const std::string ukrainian = Romanized("Григорій", "Cyrl", {"UA"});
  const std::string russian = Romanized("Григорий", "Cyrl", {"RU"});
  ASSERT_NE(ukrainian, russian);
  std::vector<std::thread> threads;
  std::vector<std::vector<std::string>> results(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      for (int n = 0; n < 50; ++n) {
        absl::StatusOr<std::string> out =
            i % 2 == 0 ? RomanizeName("Григорій", "Cyrl", {"UA"})
                       : RomanizeName("Григорий", "Cyrl", {"RU"});
        results[i].push_back(out.ok() ? *out : out.status().ToString());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < 8; ++i) {
    for (const std::string& r : results[i]) {
      EXPECT_EQ(r, i % 2 == 0 ? ukrainian : russian) << i;
    }
  }
}

}  // namespace
}  // namespace lotse::identity
