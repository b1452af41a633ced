#include "core/digest.h"

#include <sodium.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>

#include "core/json.h"

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

std::string Base64Of(std::string_view bytes, bool url) {
  const int variant =
      url ? sodium_base64_VARIANT_URLSAFE_NO_PADDING : sodium_base64_VARIANT_ORIGINAL;
  std::string out(sodium_base64_encoded_len(bytes.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), variant);
  out.resize(std::strlen(out.c_str()));
  return out;
}

std::vector<std::string> SecretForms(std::string_view value) {
  constexpr size_t kMin = 8;
  std::vector<std::string> forms;
  if (value.size() < kMin) return forms;
  auto add = [&](std::string form) {
    if (form.size() >= kMin && std::find(forms.begin(), forms.end(), form) == forms.end()) {
      forms.push_back(std::move(form));
    }
  };
  add(std::string(value));
  std::string json = Json(std::string(value)).dump(-1, ' ', false, Json::error_handler_t::replace);
  add(json.substr(1, json.size() - 2));
  for (bool url : {false, true}) {
    add(Base64Of(value, url));
    // Inside a longer stream: the characters that only the value's bytes decide, with 0, 1 or
    // 2 bytes before it in its first group of three.
    for (size_t lead = 0; lead < 3; ++lead) {
      std::string padded(lead, '\0');
      padded += value;
      const std::string encoded = Base64Of(padded, url);
      const size_t from = (8 * lead + 5) / 6;
      const size_t to = 8 * padded.size() / 6;
      if (to > from) add(encoded.substr(from, to - from));
    }
  }
  for (bool plus : {false, true}) {
    std::string percent;
    for (unsigned char c : value) {
      if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
        percent += static_cast<char>(c);
      } else if (plus && c == ' ') {
        percent += '+';
      } else {
        char hex[4];
        std::snprintf(hex, sizeof hex, "%%%02X", c);
        percent += hex;
      }
    }
    add(percent);
  }
  const std::string hex = HexOf(value.data(), value.size());
  add(hex);
  std::string upper = hex;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  add(upper);
  return forms;
}

std::string RedactForms(std::string text, const std::vector<std::string>& forms) {
  constexpr std::string_view kRedacted = "[REDACTED]";
  std::vector<const std::string*> longest_first;
  for (const auto& form : forms) {
    if (!form.empty()) longest_first.push_back(&form);
  }
  std::sort(longest_first.begin(), longest_first.end(),
            [](const std::string* a, const std::string* b) { return a->size() > b->size(); });
  for (const std::string* form : longest_first) {
    for (size_t at = text.find(*form); at != std::string::npos;
         at = text.find(*form, at + kRedacted.size())) {
      text.replace(at, form->size(), kRedacted);
    }
  }
  return text;
}

}  // namespace nightshift
