# Control-plane unit tests (owned by the control-plane component).
pc_unit_test(test_store SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_store.c LIBS pc_store)
pc_unit_test(test_api_json SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_api_json.c
             LIBS pc_controlplane)
pc_unit_test(test_snap SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_snap.c LIBS pc_controlplane)
