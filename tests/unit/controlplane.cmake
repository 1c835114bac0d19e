# Control-plane unit tests (owned by the control-plane component).
pc_unit_test(test_store SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_store.c LIBS pc_store)
