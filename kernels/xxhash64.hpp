#pragma once
/// @file xxhash64.hpp
/// @brief Single-source XXH64 (bit-for-bit equal to libxxhash's XXH64()), the rule that combines
/// the columns of a key into one hash, the 128-bit key fingerprint and the slot finalizer.
///
/// Everything here is `TROVE_HD`, `noexcept` and free of library calls, so the same definitions
/// run in g++ (CPU backend) and nvcc (CUDA) code. Input bytes are read one at a time and assembled
/// little-endian: the pointers come from packed string buffers and are not aligned, and the result
/// must not depend on the host's byte order. g++ turns each byte assembly into one load.
///
/// **Combining the columns of a key.** A key of several columns is hashed as a chain, each column's
/// hash seeding the next:
///
///     h = seed
///     for each key column c (in key order, column index c = 0, 1, ...):
///       fixed-width value v:  h = combine_fixed(h, v)  == xxh64(8 little-endian bytes of v, h)
///       string s:             h = combine_bytes(h, s)  == xxh64(bytes of s, s.size(), h)
///       NULL:                 h = combine_null(h, c)   == xxh64_u64(null_tag ^ c, h)
///
/// Each column is a separate XXH64 call that mixes in its own length, so ("ab", "c") and
/// ("a", "bc") hash differently. A NULL hashes like the fixed value `null_tag ^ c` (and like the
/// 8-byte string holding it): a NULL ties with that one value out of 2^64 in its column only.
///
/// **Fingerprint.** fingerprint128 runs the chain twice, from `fingerprint_seed_hi` and
/// `fingerprint_seed_lo`. Treating the two halves as independent uniform 64-bit values, n distinct
/// keys contain a colliding pair with probability at most n^2 / 2^129 (birthday bound): about
/// 1.5e-21 for 10^9 keys, 1.5e-15 for 10^12. That is why string keys may be deduplicated by their
/// fingerprint instead of their bytes.

#include <cstddef>
#include <cstdint>

#include "kernels/macros.hpp"

namespace trove::kernels {

/// @brief The five XXH64 primes (from the XXH64 specification; odd 64-bit values with well-mixed
/// bits, chosen by the xxHash author for their multiply/rotate avalanche).
inline constexpr std::uint64_t xxh64_prime1 = 0x9E3779B185EBCA87ull;
inline constexpr std::uint64_t xxh64_prime2 = 0xC2B2AE3D27D4EB4Full;
inline constexpr std::uint64_t xxh64_prime3 = 0x165667B19E3779F9ull;
inline constexpr std::uint64_t xxh64_prime4 = 0x85EBCA77C2B2AE63ull;
inline constexpr std::uint64_t xxh64_prime5 = 0x27D4EB2F165667C5ull;

/// @brief What a NULL contributes, xor'ed with its column index: 2^64 / golden ratio (the
/// splitmix64 increment), an arbitrary odd constant far from the small integers real data holds.
inline constexpr std::uint64_t null_tag = 0x9E3779B97F4A7C15ull;

/// @brief Seeds of the two halves of a fingerprint: the first 128 fractional bits of pi, a
/// "nothing up my sleeve" choice (as in Blowfish) that makes the two chains unrelated.
inline constexpr std::uint64_t fingerprint_seed_hi = 0x243F6A8885A308D3ull;
inline constexpr std::uint64_t fingerprint_seed_lo = 0x13198A2E03707344ull;

namespace detail {

/// @brief Rotates x left by r bits (0 < r < 64); compiles to one rotate instruction.
TROVE_HD TROVE_FORCEINLINE constexpr std::uint64_t rotl64(std::uint64_t x, int r) noexcept {
  return (x << r) | (x >> (64 - r));
}

/// @brief Byte byte_idx of p, zero-extended to 64 bits.
TROVE_HD TROVE_FORCEINLINE constexpr std::uint64_t byte_at(const char* p, int byte_idx) noexcept {
  return static_cast<unsigned char>(p[byte_idx]);
}

/// @brief Reads 8 bytes at p as a little-endian integer; p needs no alignment. Written out (not a
/// loop) so that g++ recognises the pattern and emits a single unaligned load.
TROVE_HD TROVE_FORCEINLINE constexpr std::uint64_t load_le64(const char* p) noexcept {
  return byte_at(p, 0) | byte_at(p, 1) << 8 | byte_at(p, 2) << 16 | byte_at(p, 3) << 24 |
         byte_at(p, 4) << 32 | byte_at(p, 5) << 40 | byte_at(p, 6) << 48 | byte_at(p, 7) << 56;
}

/// @brief Reads 4 bytes at p as a little-endian integer; p needs no alignment.
TROVE_HD TROVE_FORCEINLINE constexpr std::uint64_t load_le32(const char* p) noexcept {
  return byte_at(p, 0) | byte_at(p, 1) << 8 | byte_at(p, 2) << 16 | byte_at(p, 3) << 24;
}

/// @brief XXH64 round: folds one 8-byte lane into an accumulator.
TROVE_HD TROVE_FORCEINLINE constexpr std::uint64_t accumulate(std::uint64_t acc,
                                                              std::uint64_t lane) noexcept {
  acc += lane * xxh64_prime2;
  acc = rotl64(acc, 31);
  return acc * xxh64_prime1;
}

/// @brief XXH64 merge of one of the four stripe accumulators into the hash.
TROVE_HD TROVE_FORCEINLINE constexpr std::uint64_t merge_round(std::uint64_t h,
                                                               std::uint64_t acc) noexcept {
  h ^= accumulate(0, acc);
  return h * xxh64_prime1 + xxh64_prime4;
}

/// @brief XXH64 step for one whole 8-byte lane of the tail.
TROVE_HD TROVE_FORCEINLINE constexpr std::uint64_t tail_lane(std::uint64_t h,
                                                             std::uint64_t lane) noexcept {
  h ^= accumulate(0, lane);
  return rotl64(h, 27) * xxh64_prime1 + xxh64_prime4;
}

/// @brief XXH64 final avalanche: every input bit affects every output bit.
TROVE_HD TROVE_FORCEINLINE constexpr std::uint64_t avalanche(std::uint64_t h) noexcept {
  h ^= h >> 33;
  h *= xxh64_prime2;
  h ^= h >> 29;
  h *= xxh64_prime3;
  h ^= h >> 32;
  return h;
}

/// @brief XXH64 over chars, so that it can run in constant expressions (a void* cannot be cast
/// there).
TROVE_HD constexpr std::uint64_t xxh64_chars(const char* p, std::size_t len,
                                             std::uint64_t seed) noexcept {
  const char* const end = p + len;
  std::uint64_t h = 0;
  if (len >= 32) {
    // Four independent accumulators over 32-byte stripes: instruction-level parallelism.
    std::uint64_t acc1 = seed + xxh64_prime1 + xxh64_prime2;
    std::uint64_t acc2 = seed + xxh64_prime2;
    std::uint64_t acc3 = seed;
    std::uint64_t acc4 = seed - xxh64_prime1;
    const char* const last_stripe = end - 32;
    do {
      acc1 = accumulate(acc1, load_le64(p));
      acc2 = accumulate(acc2, load_le64(p + 8));
      acc3 = accumulate(acc3, load_le64(p + 16));
      acc4 = accumulate(acc4, load_le64(p + 24));
      p += 32;
    } while (p <= last_stripe);
    h = rotl64(acc1, 1) + rotl64(acc2, 7) + rotl64(acc3, 12) + rotl64(acc4, 18);
    h = merge_round(h, acc1);
    h = merge_round(h, acc2);
    h = merge_round(h, acc3);
    h = merge_round(h, acc4);
  } else {
    h = seed + xxh64_prime5;
  }
  h += static_cast<std::uint64_t>(len);

  // The remaining 0..31 bytes: whole 8-byte lanes, at most one 4-byte lane, then single bytes.
  std::size_t remaining = static_cast<std::size_t>(end - p);
  for (; remaining >= 8; remaining -= 8, p += 8) h = tail_lane(h, load_le64(p));
  if (remaining >= 4) {
    h ^= load_le32(p) * xxh64_prime1;
    h = rotl64(h, 23) * xxh64_prime2 + xxh64_prime3;
    remaining -= 4;
    p += 4;
  }
  for (; remaining > 0; --remaining, ++p) {
    h ^= byte_at(p, 0) * xxh64_prime5;
    h = rotl64(h, 11) * xxh64_prime1;
  }
  return avalanche(h);
}

}  // namespace detail

/// @brief XXH64 of the len bytes at data (any alignment; data may be null when len is 0).
TROVE_HD inline std::uint64_t xxh64(const void* data, std::size_t len,
                                    std::uint64_t seed) noexcept {
  return detail::xxh64_chars(static_cast<const char*>(data), len, seed);
}

/// @brief XXH64 of the 8 little-endian bytes of value, without the stripe and tail loops (the hot
/// path for integer keys); on a little-endian host, equal to xxh64(&value, 8, seed).
TROVE_HD TROVE_FORCEINLINE constexpr std::uint64_t xxh64_u64(std::uint64_t value,
                                                             std::uint64_t seed) noexcept {
  return detail::avalanche(detail::tail_lane(seed + xxh64_prime5 + 8, value));
}

/// @brief Chains a fixed-width key column (its value widened to 64 bits) into the key hash h.
TROVE_HD TROVE_FORCEINLINE constexpr std::uint64_t combine_fixed(std::uint64_t h,
                                                                 std::uint64_t value) noexcept {
  return xxh64_u64(value, h);
}

/// @brief Chains a string key column (len bytes at p, any alignment) into the key hash h.
TROVE_HD TROVE_FORCEINLINE constexpr std::uint64_t combine_bytes(std::uint64_t h, const char* p,
                                                                 std::size_t len) noexcept {
  return detail::xxh64_chars(p, len, h);
}

/// @brief Chains a NULL in key column `column` into the key hash h.
TROVE_HD TROVE_FORCEINLINE constexpr std::uint64_t combine_null(std::uint64_t h,
                                                                std::uint32_t column) noexcept {
  return xxh64_u64(null_tag ^ column, h);
}

/// @brief A 128-bit key fingerprint: two independent 64-bit hash chains.
struct hash128 {
  std::uint64_t hi;
  std::uint64_t lo;

  /// @brief Equal when both halves are equal.
  friend TROVE_HD constexpr bool operator==(const hash128& a, const hash128& b) noexcept {
    return a.hi == b.hi && a.lo == b.lo;
  }
};

/// @brief The fingerprint of a key before any column is chained in (the two seeds).
TROVE_HD TROVE_FORCEINLINE constexpr hash128 fingerprint_start() noexcept {
  return {fingerprint_seed_hi, fingerprint_seed_lo};
}

/// @brief Chains a fixed-width key column into both halves of fingerprint f.
TROVE_HD TROVE_FORCEINLINE constexpr hash128 combine_fixed(hash128 f,
                                                           std::uint64_t value) noexcept {
  return {combine_fixed(f.hi, value), combine_fixed(f.lo, value)};
}

/// @brief Chains a string key column into both halves of fingerprint f.
TROVE_HD TROVE_FORCEINLINE constexpr hash128 combine_bytes(hash128 f, const char* p,
                                                           std::size_t len) noexcept {
  return {combine_bytes(f.hi, p, len), combine_bytes(f.lo, p, len)};
}

/// @brief Chains a NULL in key column `column` into both halves of fingerprint f.
TROVE_HD TROVE_FORCEINLINE constexpr hash128 combine_null(hash128 f,
                                                          std::uint32_t column) noexcept {
  return {combine_null(f.hi, column), combine_null(f.lo, column)};
}

/// @brief Fingerprint of a one-column key of len bytes at data:
/// {xxh64(data, len, fingerprint_seed_hi), xxh64(data, len, fingerprint_seed_lo)}.
TROVE_HD inline hash128 fingerprint128(const void* data, std::size_t len) noexcept {
  return combine_bytes(fingerprint_start(), static_cast<const char*>(data), len);
}

/// @brief Finalizer that turns a key or hash into a table slot hash: the splitmix64 / Stafford
/// "Mix13" bijection. A bijection, so distinct 64-bit keys never collide before the reduction to a
/// slot; every input bit flips each output bit with probability close to 1/2.
TROVE_HD TROVE_FORCEINLINE constexpr std::uint64_t mix64(std::uint64_t x) noexcept {
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace trove::kernels
