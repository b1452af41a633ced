#pragma once

// Digests and their hex text, through libsodium: a library of its own (like config_node) so
// that what links the core alone (the lean `nightshift` binary) does not load libsodium.

#include <string>
#include <string_view>
#include <vector>

namespace nightshift {

// Lower-case hex of `size` bytes at `data`.
std::string HexOf(const void* data, size_t size);
// SHA-256 of `data`, in lower-case hex (64 digits).
std::string Sha256Hex(std::string_view data);

// Base64 of `bytes`: the standard alphabet with padding, or (`url`) the URL-safe one without.
std::string Base64Of(std::string_view bytes, bool url = false);

// Every form a secret's value may take in what a run prints, for redaction: the value; as a JSON
// string holds it; its base64 in both alphabets, alone and as the part of a longer base64
// stream that only the value decides (at each of the three alignments); percent-encoded (all
// but unreserved characters, and with '+' for spaces); hex in both cases. Forms shorter than
// 8 bytes are left out (they would shred text), as is a value shorter than that.
std::vector<std::string> SecretForms(std::string_view value);

// `text` with every occurrence of each of `forms` replaced by "[REDACTED]", longest forms
// first; a replacement is never searched again.
std::string RedactForms(std::string text, const std::vector<std::string>& forms);

}  // namespace nightshift
