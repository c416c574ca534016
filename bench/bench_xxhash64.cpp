/// @file bench_xxhash64.cpp
/// @brief trove's single-source XXH64 (host build) against libxxhash's XXH64() in the same run, on
/// 8-byte integer keys and on 16- and 64-byte string keys. Compare the pairs as ratios.

#include <benchmark/benchmark.h>
#include <xxhash.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "kernels/xxhash64.hpp"

namespace {

/// @brief Keys hashed per benchmark iteration: large enough to amortise the loop, small enough
/// (256 KiB of 64-byte keys) to stay in L2, so the hash and not memory is measured.
constexpr std::size_t keys_per_batch = 4096;

/// @brief keys_per_batch random 64-bit keys (fixed seed: every run hashes the same data).
std::vector<std::uint64_t> make_u64_keys() {
  std::mt19937_64 rng(42);
  std::vector<std::uint64_t> keys(keys_per_batch);
  for (std::uint64_t& key : keys) key = rng();
  return keys;
}

/// @brief keys_per_batch random strings of key_len bytes, packed back to back like a string
/// column (so most keys start unaligned when key_len is not a multiple of 8).
std::vector<char> make_string_keys(std::size_t key_len) {
  std::mt19937_64 rng(43);
  std::vector<char> bytes(keys_per_batch * key_len);
  for (char& byte : bytes) byte = static_cast<char>(rng() & 0xFF);
  return bytes;
}

void report(benchmark::State& state, std::size_t key_len) {
  const auto keys = static_cast<std::int64_t>(state.iterations() * keys_per_batch);
  state.SetItemsProcessed(keys);
  state.SetBytesProcessed(keys * static_cast<std::int64_t>(key_len));
}

void BM_trove_xxh64_u64(benchmark::State& state) {
  const std::vector<std::uint64_t> keys = make_u64_keys();
  for (auto _ : state) {
    std::uint64_t sum = 0;
    for (std::uint64_t key : keys) sum += trove::kernels::xxh64_u64(key, 0);
    benchmark::DoNotOptimize(sum);
  }
  report(state, sizeof(std::uint64_t));
}

void BM_libxxhash_u64(benchmark::State& state) {
  const std::vector<std::uint64_t> keys = make_u64_keys();
  for (auto _ : state) {
    std::uint64_t sum = 0;
    for (const std::uint64_t& key : keys) sum += XXH64(&key, sizeof key, 0);
    benchmark::DoNotOptimize(sum);
  }
  report(state, sizeof(std::uint64_t));
}

void BM_trove_xxh64_string(benchmark::State& state) {
  const auto key_len = static_cast<std::size_t>(state.range(0));
  const std::vector<char> bytes = make_string_keys(key_len);
  for (auto _ : state) {
    std::uint64_t sum = 0;
    for (std::size_t offset = 0; offset < bytes.size(); offset += key_len) {
      sum += trove::kernels::xxh64(bytes.data() + offset, key_len, 0);
    }
    benchmark::DoNotOptimize(sum);
  }
  report(state, key_len);
}

void BM_libxxhash_string(benchmark::State& state) {
  const auto key_len = static_cast<std::size_t>(state.range(0));
  const std::vector<char> bytes = make_string_keys(key_len);
  for (auto _ : state) {
    std::uint64_t sum = 0;
    for (std::size_t offset = 0; offset < bytes.size(); offset += key_len) {
      sum += XXH64(bytes.data() + offset, key_len, 0);
    }
    benchmark::DoNotOptimize(sum);
  }
  report(state, key_len);
}

}  // namespace

BENCHMARK(BM_trove_xxh64_u64);
BENCHMARK(BM_libxxhash_u64);
BENCHMARK(BM_trove_xxh64_string)->Arg(16)->Arg(64);
BENCHMARK(BM_libxxhash_string)->Arg(16)->Arg(64);

BENCHMARK_MAIN();
