# Retention rules, legal holds and the purge job (common/lifecycle).
lotse_add_gtest(retention_test
  SOURCES retention_test.cc
  LIBS lotse_lifecycle lotse_test_processes absl::strings absl::time)
lotse_add_gtest(holds_test
  SOURCES holds_test.cc
  LIBS lotse_lifecycle lotse_test_support absl::strings absl::time
  POSTGRES)
