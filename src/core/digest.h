#pragma once

// Digests and their hex text, through libsodium: a library of its own (like config_node) so
// that what links the core alone (the lean `nightshift` binary) does not load libsodium.

#include <string>
#include <string_view>

namespace nightshift {

// Lower-case hex of `size` bytes at `data`.
std::string HexOf(const void* data, size_t size);
// SHA-256 of `data`, in lower-case hex (64 digits).
std::string Sha256Hex(std::string_view data);

}  // namespace nightshift
