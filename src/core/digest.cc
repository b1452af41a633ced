#include "core/digest.h"

#include <sodium.h>

namespace nightshift {

std::string HexOf(const void* data, size_t size) {
  std::string hex(2 * size + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), static_cast<const unsigned char*>(data), size);
  hex.pop_back();
  return hex;
}

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  return HexOf(digest, sizeof digest);
}

}  // namespace nightshift
