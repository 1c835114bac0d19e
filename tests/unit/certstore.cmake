# Certificate store unit tests, and the in-memory test-certificate generator
# (pc_testcerts, testcerts.h) that any component's unit tests may link.
add_library(pc_testcerts STATIC ${CMAKE_CURRENT_SOURCE_DIR}/unit/testcerts.c)
target_include_directories(pc_testcerts PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/unit)
target_link_libraries(pc_testcerts PUBLIC OpenSSL::SSL OpenSSL::Crypto)

pc_unit_test(test_cs_import SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_cs_import.c
             LIBS certstore pc_testcerts)
pc_unit_test(test_cs_keywrap SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_cs_keywrap.c
             LIBS certstore pc_testcerts)
pc_unit_test(test_cs_ctx SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_cs_ctx.c
             LIBS certstore pc_testcerts)
# Randomized import fuzzing, bounded to 3000 iterations and 20 s.
pc_unit_test(test_cs_fuzz SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_cs_fuzz.c
             LIBS certstore pc_testcerts TIMEOUT 120)
