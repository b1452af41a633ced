# The GitHub and GitLab adapters behind RemoteForge (remote.h). Included from CMakeLists.txt
# after nightshift_forge is defined.
find_package(OpenSSL REQUIRED)  # RS256 for GitHub App JWTs

target_sources(nightshift_forge PRIVATE github.cc gitlab.cc remote_http.cc)
target_link_libraries(nightshift_forge PRIVATE OpenSSL::Crypto)

# The test signs and verifies JWTs itself, hence OpenSSL::Crypto.
nightshift_test(remote_test SOURCES remote_test.cc
  LIBS nightshift_forge PkgConfig::HTTPLIB OpenSSL::Crypto)
