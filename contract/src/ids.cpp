#include "bellhop/contract/ids.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <random>
#include <stdexcept>

#include "bellhop/contract/encoding.hpp"
#include "bellhop/contract/secrets.hpp"
#include "bellhop/contract/timestamp.hpp"

namespace bellhop::contract {
namespace {

constexpr char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

// Per-thread generator seeded from the OS: ids need uniqueness, not secrecy.
std::uint64_t random64() {
  thread_local std::mt19937_64 engine = [] {
    std::uint64_t s = std::random_device{}();
    if (const auto seed = random_bytes(8)) {
      for (const char b : *seed) s = (s << 8) ^ static_cast<unsigned char>(b);
    }
    return std::mt19937_64(s);
  }();
  return engine();
}

}  // namespace

std::string make_message_id(std::chrono::system_clock::time_point now) {
  const auto ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count());
  // 128 bits: 48 of time, 80 of randomness; 26 base32 digits carry 130 bits (top 2 zero).
  const std::uint64_t r1 = random64();
  const std::uint64_t r2 = random64();
  const unsigned __int128 value = (static_cast<unsigned __int128>(ms & 0xFFFFFFFFFFFFull) << 80) |
                                  (static_cast<unsigned __int128>(r1 & 0xFFFFull) << 64) | r2;
  std::string out(26, '0');
  unsigned __int128 v = value;
  for (int i = 25; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = crockford[static_cast<unsigned>(v & 31)];
    v >>= 5;
  }
  return out;
}

std::string make_random_hex(std::size_t bytes) {
  std::string raw;
  raw.reserve(bytes + 8);
  while (raw.size() < bytes) {
    auto v = random64();
    for (int i = 0; i < 8; ++i, v >>= 8) raw.push_back(static_cast<char>(v & 0xff));
  }
  raw.resize(bytes);
  return to_hex(raw);
}

std::array<unsigned char, 32> sha256(std::string_view data) {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  std::array<unsigned char, 32> out{};
  if (md == nullptr || EVP_Digest(data.data(), data.size(), out.data(), nullptr, md, nullptr) != 1) {
    throw std::runtime_error("OpenSSL could not compute SHA-256");
  }
  return out;
}

std::string sha256_hex(std::string_view data, std::size_t bytes) {
  const auto digest = sha256(data);
  return to_hex({reinterpret_cast<const char*>(digest.data()), std::min(bytes, digest.size())});
}

std::string make_conversation_id(std::string_view property_id, std::string_view channel,
                                 std::string_view guest) {
  std::string input;
  input.reserve(property_id.size() + channel.size() + guest.size() + 2);
  input.append(property_id).append(1, '\0').append(channel).append(1, '\0').append(guest);
  return "c_" + sha256_hex(input, 16);
}

std::string format_timestamp(std::chrono::system_clock::time_point t) {
  return contract::format_rfc3339(t);
}

}  // namespace bellhop::contract
