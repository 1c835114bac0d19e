pc_unit_test(test_sni SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_sni.c LIBS pc_dataplane)
pc_unit_test(test_dp_config SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_dp_config.c LIBS pc_dataplane)
pc_unit_test(test_pp2 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_pp2.c LIBS pc_dataplane)
pc_unit_test(test_tg SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_tg.c LIBS pc_dataplane)
