# The scripted model server (OpenAI Chat Completions and Anthropic Messages on loopback) for
# tests of the agent's LLM clients. Included from tests/support/CMakeLists.txt.
add_library(nightshift_model_server model_server.cc)
target_include_directories(nightshift_model_server PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(nightshift_model_server PUBLIC nightshift_core PkgConfig::HTTPLIB)

nightshift_test(model_server_test SOURCES model_server_test.cc LIBS nightshift_model_server)
