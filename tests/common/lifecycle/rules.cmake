# Retention rules, legal holds and the purge job (common/lifecycle).
lotse_add_gtest(retention_test
  SOURCES retention_test.cc
  LIBS lotse_lifecycle lotse_test_processes absl::strings absl::time)
