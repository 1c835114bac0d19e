pc_unit_test(test_wire SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_wire.c LIBS pc_common)
pc_unit_test(test_log SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_log.c LIBS pc_common)
pc_unit_test(test_net SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_net.c LIBS pc_common)
