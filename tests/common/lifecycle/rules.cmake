# Retention rules, legal holds and the purge job (common/lifecycle).
lotse_add_gtest(retention_test
  SOURCES retention_test.cc
  LIBS lotse_lifecycle lotse_test_processes absl::strings absl::time)
lotse_add_gtest(holds_test
  SOURCES holds_test.cc
  LIBS lotse_lifecycle lotse_test_support absl::strings absl::time
  POSTGRES)

# A service process with a purge task of its own, for the process tests of
# the purge job and of --retention_rules.
add_executable(purge_test_service purge_test_service.cc)
target_link_libraries(purge_test_service PRIVATE lotse_server lotse_lifecycle
  lotse_audit absl::strings)
lotse_add_gtest(service_purge_test
  SOURCES service_purge_test.cc
  LIBS lotse_test_processes lotse_storage absl::strings absl::time)
add_dependencies(service_purge_test purge_test_service)
lotse_add_gtest(purge_test
  SOURCES purge_test.cc
  LIBS lotse_lifecycle lotse_audit lotse_test_support absl::strings absl::time
  POSTGRES)

