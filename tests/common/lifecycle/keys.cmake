# Per-person data keys and sealing (person_keys.h), and a service's share
# of an erasure (erasure.h).
lotse_add_gtest(lifecycle_person_keys_test
  SOURCES person_keys_test.cc
  LIBS lotse_person_keys lotse_errors lotse_storage lotse_test_support
       absl::strings absl::synchronization
  POSTGRES)
lotse_add_gtest(lifecycle_erasure_test
  SOURCES erasure_test.cc
  LIBS lotse_lifecycle lotse_person_keys lotse_events lotse_audit lotse_errors
       lotse_storage lotse_test_support absl::strings absl::time
  POSTGRES)
