pc_unit_test(test_sni SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_sni.c LIBS pc_dataplane)
pc_unit_test(test_dp_config SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_dp_config.c
             ${CMAKE_CURRENT_SOURCE_DIR}/unit/testcerts.c LIBS pc_dataplane)
pc_unit_test(test_pp2 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_pp2.c LIBS pc_dataplane)
pc_unit_test(test_tg SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_tg.c LIBS pc_dataplane)
pc_unit_test(test_hc SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_hc.c LIBS pc_dataplane)
