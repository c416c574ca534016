#pragma once
/// @file checkpoint_envelope.hpp
/// @brief What the checkpoint fuzz target and its seed writer share: the marker byte that asks the
/// target to wrap the rest of the input in a valid envelope, and that envelope, computed as
/// host/checkpoint/store.cpp writes it ([magic][u32 version][u64 payload length][payload]
/// [u64 XXH64(payload, seed 0)], little-endian), so that mutations reach the payload parsers past
/// the checksum.

#include <xxhash.h>

#include "host/checkpoint/store.hpp"

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace trove::fuzz {

/// @brief First byte of an input whose rest is a bare payload (wrapped by the target).
inline constexpr unsigned char wrap_marker = 0xFF;
inline constexpr std::string_view manifest_magic = "TROVECKP";
inline constexpr std::string_view segment_magic = "TROVEDDS";
inline constexpr std::string_view groups_magic = "TROVEAGS";
inline constexpr std::size_t envelope_head = 8 + 4 + 8;
inline constexpr std::size_t envelope_tail = 8;

/// @brief `payload` in a valid envelope with `magic`.
inline std::string wrap_envelope(std::string_view magic, std::string_view payload) {
  std::string out;
  out.reserve(envelope_head + payload.size() + envelope_tail);
  out.append(magic);
  const std::uint32_t version = trove::host::checkpoint_format_version;
  const std::uint64_t length = payload.size();
  const std::uint64_t checksum = XXH64(payload.data(), payload.size(), 0);
  out.append(reinterpret_cast<const char*>(&version), sizeof version);
  out.append(reinterpret_cast<const char*>(&length), sizeof length);
  out.append(payload);
  out.append(reinterpret_cast<const char*>(&checksum), sizeof checksum);
  return out;
}

/// @brief The payload of a well-formed envelope (no checks beyond its size).
inline std::string_view envelope_payload(std::string_view file) {
  if (file.size() < envelope_head + envelope_tail) return {};
  return file.substr(envelope_head, file.size() - envelope_head - envelope_tail);
}

}  // namespace trove::fuzz
