/// @file kernels_xxhash64.cpp
/// @brief kernels/xxhash64.hpp against libxxhash's XXH64() on random inputs and edge cases.

#include <gtest/gtest.h>
#include <xxhash.h>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/xxhash64.hpp"

namespace {

using trove::kernels::hash128;

/// @brief n random bytes from rng.
std::vector<char> random_bytes(std::mt19937_64& rng, std::size_t n) {
  std::vector<char> bytes(n);
  for (char& byte : bytes) byte = static_cast<char>(rng() & 0xFF);
  return bytes;
}

/// @brief The 8 little-endian bytes of value, assembled portably.
std::string le_bytes(std::uint64_t value) {
  std::string bytes(8, '\0');
  for (std::size_t byte_idx = 0; byte_idx < 8; ++byte_idx) {
    bytes[byte_idx] = static_cast<char>((value >> (8 * byte_idx)) & 0xFF);
  }
  return bytes;
}

/// @brief Reference XXH64 of the 8 little-endian bytes of value.
std::uint64_t ref_u64(std::uint64_t value, std::uint64_t seed) {
  const std::string bytes = le_bytes(value);
  return XXH64(bytes.data(), bytes.size(), seed);
}

/// @brief Seeds that exercise the edges of the seed arithmetic (seed - prime1 wraps) plus random.
std::vector<std::uint64_t> test_seeds(std::mt19937_64& rng) {
  std::vector<std::uint64_t> seeds = {0,
                                      1,
                                      ~std::uint64_t{0},
                                      trove::kernels::xxh64_prime1,
                                      trove::kernels::fingerprint_seed_hi,
                                      trove::kernels::fingerprint_seed_lo};
  for (int seed_idx = 0; seed_idx < 10; ++seed_idx) seeds.push_back(rng());
  return seeds;
}

TEST(Xxhash64, EmptyInputMatchesLibrary) {
  std::mt19937_64 rng(1);
  for (std::uint64_t seed : test_seeds(rng)) {
    EXPECT_EQ(trove::kernels::xxh64(nullptr, 0, seed), XXH64(nullptr, 0, seed)) << seed;
    const char byte = 'x';
    EXPECT_EQ(trove::kernels::xxh64(&byte, 0, seed), XXH64(&byte, 0, seed)) << seed;
  }
}

TEST(Xxhash64, EveryLengthUpTo200MatchesLibrary) {
  std::mt19937_64 rng(2);
  const std::vector<std::uint64_t> seeds = test_seeds(rng);
  for (int trial = 0; trial < 20; ++trial) {
    const std::vector<char> bytes = random_bytes(rng, 200);
    for (std::size_t len = 0; len <= bytes.size(); ++len) {
      for (std::uint64_t seed : seeds) {
        ASSERT_EQ(trove::kernels::xxh64(bytes.data(), len, seed), XXH64(bytes.data(), len, seed))
            << "trial " << trial << " len " << len << " seed " << seed;
      }
    }
  }
}

TEST(Xxhash64, LongInputMatchesLibrary) {
  std::mt19937_64 rng(3);
  const std::vector<char> bytes = random_bytes(rng, (std::size_t{1} << 20) + 31);
  // 1 MiB exactly, and lengths leaving every stripe remainder class in the tail.
  for (std::size_t len :
       {std::size_t{1} << 20, (std::size_t{1} << 20) + 7, (std::size_t{1} << 20) + 13,
        (std::size_t{1} << 20) + 31, std::size_t{100003}}) {
    for (std::uint64_t seed : test_seeds(rng)) {
      EXPECT_EQ(trove::kernels::xxh64(bytes.data(), len, seed), XXH64(bytes.data(), len, seed))
          << "len " << len << " seed " << seed;
    }
  }
}

TEST(Xxhash64, UnalignedStartMatchesLibrary) {
  std::mt19937_64 rng(4);
  // 8-aligned storage, so that offset k really starts k bytes past an 8-byte boundary.
  std::vector<std::uint64_t> storage(64);
  char* const base = reinterpret_cast<char*>(storage.data());
  for (int trial = 0; trial < 50; ++trial) {
    const std::vector<char> bytes = random_bytes(rng, storage.size() * 8);
    std::memcpy(base, bytes.data(), bytes.size());
    const std::uint64_t seed = rng();
    for (std::size_t offset = 1; offset <= 7; ++offset) {
      for (std::size_t len = 0; len <= 200; len += 1 + len / 16) {
        ASSERT_EQ(trove::kernels::xxh64(base + offset, len, seed), XXH64(base + offset, len, seed))
            << "offset " << offset << " len " << len << " seed " << seed;
      }
    }
  }
}

TEST(Xxhash64, U64MatchesLibraryOnLittleEndianBytes) {
  std::mt19937_64 rng(5);
  const std::vector<std::uint64_t> seeds = test_seeds(rng);
  std::vector<std::uint64_t> values = {0, 1, ~std::uint64_t{0}, trove::kernels::null_tag};
  for (int value_idx = 0; value_idx < 20000; ++value_idx) values.push_back(rng());
  for (std::uint64_t value : values) {
    const std::uint64_t seed = seeds[value % seeds.size()];
    ASSERT_EQ(trove::kernels::xxh64_u64(value, seed), ref_u64(value, seed))
        << "value " << value << " seed " << seed;
    const std::uint64_t random_seed = rng();
    ASSERT_EQ(trove::kernels::xxh64_u64(value, random_seed), ref_u64(value, random_seed))
        << "value " << value << " seed " << random_seed;
  }
}

TEST(Xxhash64, U64EqualsBytesOfValueOnLittleEndianHost) {
  if constexpr (std::endian::native != std::endian::little) {
    GTEST_SKIP() << "host is not little-endian";
  }
  std::mt19937_64 rng(6);
  for (int trial = 0; trial < 10000; ++trial) {
    const std::uint64_t value = rng();
    const std::uint64_t seed = rng();
    ASSERT_EQ(trove::kernels::xxh64_u64(value, seed), XXH64(&value, sizeof value, seed));
  }
}

TEST(Xxhash64, UsableInConstantExpressions) {
  constexpr std::uint64_t from_u64 = trove::kernels::xxh64_u64(42, 7);
  constexpr std::uint64_t from_bytes = trove::kernels::combine_bytes(7, "trove-key", 9);
  constexpr std::uint64_t long_bytes =
      trove::kernels::combine_bytes(9, "a string longer than one 32-byte stripe", 39);
  EXPECT_EQ(from_u64, ref_u64(42, 7));
  EXPECT_EQ(from_bytes, XXH64("trove-key", 9, 7));
  EXPECT_EQ(long_bytes, XXH64("a string longer than one 32-byte stripe", 39, 9));
}

/// @brief One column of a test key: a fixed value, a string, or NULL.
struct column_value {
  enum class kind { fixed, bytes, null } type;
  std::uint64_t fixed = 0;
  std::string bytes;
};

/// @brief A random key of 1..6 columns of mixed kinds.
std::vector<column_value> random_key(std::mt19937_64& rng) {
  std::vector<column_value> key(1 + rng() % 6);
  for (column_value& column : key) {
    switch (rng() % 3) {
      case 0:
        column.type = column_value::kind::fixed;
        column.fixed = rng();
        break;
      case 1: {
        column.type = column_value::kind::bytes;
        const std::vector<char> bytes = random_bytes(rng, rng() % 80);
        column.bytes.assign(bytes.begin(), bytes.end());
        break;
      }
      default:
        column.type = column_value::kind::null;
    }
  }
  return key;
}

/// @brief The documented combining rule, written with libxxhash calls only.
std::uint64_t reference_key_hash(const std::vector<column_value>& key, std::uint64_t seed) {
  std::uint64_t h = seed;
  for (std::size_t column_idx = 0; column_idx < key.size(); ++column_idx) {
    const column_value& column = key[column_idx];
    switch (column.type) {
      case column_value::kind::fixed:
        h = ref_u64(column.fixed, h);
        break;
      case column_value::kind::bytes:
        h = XXH64(column.bytes.data(), column.bytes.size(), h);
        break;
      case column_value::kind::null:
        h = ref_u64(0x9E3779B97F4A7C15ull ^ column_idx, h);
        break;
    }
  }
  return h;
}

/// @brief The same key chained with the helpers under test; works for uint64_t and hash128.
template <typename Hash>
Hash chained_key_hash(const std::vector<column_value>& key, Hash h) {
  for (std::size_t column_idx = 0; column_idx < key.size(); ++column_idx) {
    const column_value& column = key[column_idx];
    switch (column.type) {
      case column_value::kind::fixed:
        h = trove::kernels::combine_fixed(h, column.fixed);
        break;
      case column_value::kind::bytes:
        h = trove::kernels::combine_bytes(h, column.bytes.data(), column.bytes.size());
        break;
      case column_value::kind::null:
        h = trove::kernels::combine_null(h, static_cast<std::uint32_t>(column_idx));
        break;
    }
  }
  return h;
}

TEST(Xxhash64, CombineHelpersMatchChainedLibraryCalls) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 5000; ++trial) {
    const std::vector<column_value> key = random_key(rng);
    const std::uint64_t seed = rng();
    ASSERT_EQ(chained_key_hash(key, seed), reference_key_hash(key, seed)) << "trial " << trial;
  }
}

TEST(Xxhash64, CombineNullDependsOnColumnAndDiffersFromZero) {
  std::mt19937_64 rng(8);
  for (int trial = 0; trial < 1000; ++trial) {
    const std::uint64_t h = rng();
    const auto column = static_cast<std::uint32_t>(rng() % 1000);
    EXPECT_EQ(trove::kernels::combine_null(h, column), ref_u64(0x9E3779B97F4A7C15ull ^ column, h));
    EXPECT_NE(trove::kernels::combine_null(h, column), trove::kernels::combine_fixed(h, 0));
    EXPECT_NE(trove::kernels::combine_null(h, column), trove::kernels::combine_null(h, column + 1));
  }
}

TEST(Xxhash64, Fingerprint128MatchesTwoLibraryCalls) {
  std::mt19937_64 rng(9);
  EXPECT_EQ(trove::kernels::fingerprint_seed_hi, 0x243F6A8885A308D3ull);
  EXPECT_EQ(trove::kernels::fingerprint_seed_lo, 0x13198A2E03707344ull);
  for (int trial = 0; trial < 3000; ++trial) {
    const std::vector<char> bytes = random_bytes(rng, rng() % 300);
    const std::size_t offset = bytes.empty() ? 0 : rng() % (bytes.size() + 1);
    const char* const data = bytes.data() + offset;
    const std::size_t len = bytes.size() - offset;
    const hash128 fingerprint = trove::kernels::fingerprint128(data, len);
    ASSERT_EQ(fingerprint.hi, XXH64(data, len, 0x243F6A8885A308D3ull)) << "trial " << trial;
    ASSERT_EQ(fingerprint.lo, XXH64(data, len, 0x13198A2E03707344ull)) << "trial " << trial;
  }
}

TEST(Xxhash64, MultiColumnFingerprintIsTwoReferenceChains) {
  std::mt19937_64 rng(10);
  for (int trial = 0; trial < 3000; ++trial) {
    const std::vector<column_value> key = random_key(rng);
    const hash128 expected{reference_key_hash(key, 0x243F6A8885A308D3ull),
                           reference_key_hash(key, 0x13198A2E03707344ull)};
    ASSERT_TRUE(chained_key_hash(key, trove::kernels::fingerprint_start()) == expected)
        << "trial " << trial;
  }
}

TEST(Xxhash64, Hash128Equality) {
  const hash128 a{1, 2};
  EXPECT_TRUE(a == (hash128{1, 2}));
  EXPECT_FALSE(a == (hash128{1, 3}));
  EXPECT_FALSE(a == (hash128{0, 2}));
  EXPECT_TRUE(a != (hash128{2, 1}));
}

/// @brief Independent splitmix64 generator (Vigna), used as the reference for mix64.
std::uint64_t splitmix64_next(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

TEST(Xxhash64, Mix64IsTheSplitmix64Finalizer) {
  // Published first output of splitmix64 seeded with 0 (Vigna's reference splitmix64.c).
  EXPECT_EQ(trove::kernels::mix64(0x9E3779B97F4A7C15ull), 0xE220A8397B1DCDAFull);
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 10000; ++trial) {
    std::uint64_t state = rng();
    const std::uint64_t before = state;
    ASSERT_EQ(trove::kernels::mix64(before + 0x9E3779B97F4A7C15ull), splitmix64_next(state));
  }
}

TEST(Xxhash64, Mix64Avalanches) {
  // Flipping any one input bit flips each output bit about half the time.
  std::mt19937_64 rng(12);
  constexpr int trials = 2000;
  for (int bit = 0; bit < 64; ++bit) {
    std::vector<int> flips(64, 0);
    for (int trial = 0; trial < trials; ++trial) {
      const std::uint64_t x = rng();
      const std::uint64_t diff =
          trove::kernels::mix64(x) ^ trove::kernels::mix64(x ^ (std::uint64_t{1} << bit));
      for (int out = 0; out < 64; ++out) flips[out] += static_cast<int>((diff >> out) & 1);
    }
    for (int out = 0; out < 64; ++out) {
      // 2000 trials: mean 1000, sd ~22; 0.4..0.6 is ~9 sd and never trips by chance.
      EXPECT_GT(flips[out], trials * 4 / 10) << "in " << bit << " out " << out;
      EXPECT_LT(flips[out], trials * 6 / 10) << "in " << bit << " out " << out;
    }
  }
}

}  // namespace
