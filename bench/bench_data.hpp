#pragma once
/// @file bench_data.hpp
/// @brief Shared data for the benchmarks: W1-shaped events as in-memory columns.
///
/// W1: user_id Zipf(1.1) over 1M users, 4 event types, 5% re-sent duplicates (an earlier event
/// sent again: same event_id and fields), event time spanning 10 one-minute tumbling windows.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace trove::bench {

/// @brief Columns of a W1 dataset, laid out as io::host_batch lays them out.
struct w1_data {
  std::vector<std::uint64_t> event_id;
  std::vector<std::uint64_t> user_id;
  std::vector<std::uint32_t> type_offsets;  // rows + 1
  std::string type_chars;
  std::vector<std::int64_t> ts;
  std::vector<double> amount;
  [[nodiscard]] std::size_t size() const { return event_id.size(); }
  /// Bytes of the columns the step reads per event (for bytes/s).
  [[nodiscard]] double bytes_per_event() const {
    return 8 + 8 + 8 + 8 + 4 + static_cast<double>(type_chars.size()) / static_cast<double>(size());
  }
};

/// @brief Generates W1 deterministically.
inline w1_data make_w1(std::size_t events, std::uint64_t users = 1'000'000, double zipf = 1.1,
                       double duplicate_ratio = 0.05, std::int64_t span_ms = 600'000,
                       std::uint64_t seed = 1) {
  std::mt19937_64 rng(seed);
  std::vector<double> cdf(users);
  double total = 0;
  for (std::uint64_t u = 0; u < users; ++u) {
    total += 1.0 / std::pow(static_cast<double>(u + 1), zipf);
    cdf[u] = total;
  }
  for (auto& c : cdf) c /= total;
  static const char* types[] = {"click", "view", "purchase", "add_to_cart"};
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  w1_data d;
  d.event_id.reserve(events);
  d.user_id.reserve(events);
  d.ts.reserve(events);
  d.amount.reserve(events);
  d.type_offsets.reserve(events + 1);
  d.type_offsets.push_back(0);
  std::vector<std::uint32_t> type_of;
  type_of.reserve(events);
  const std::int64_t start = 1'700'000'040'000;  // not window aligned on purpose
  for (std::size_t i = 0; i < events; ++i) {
    std::size_t src = i;
    if (i > 0 && unit(rng) < duplicate_ratio) {
      // Re-send of a recent event (within the last ~10k), as a retrying producer would.
      src = i - 1 - (rng() % std::min<std::size_t>(i, 10'000));
      d.event_id.push_back(d.event_id[src]);
      d.user_id.push_back(d.user_id[src]);
      type_of.push_back(type_of[src]);
      d.ts.push_back(d.ts[src]);
      d.amount.push_back(d.amount[src]);
    } else {
      d.event_id.push_back(rng());
      d.user_id.push_back(static_cast<std::uint64_t>(
          std::lower_bound(cdf.begin(), cdf.end(), unit(rng)) - cdf.begin()));
      type_of.push_back(static_cast<std::uint32_t>(rng() % 4));
      d.ts.push_back(start +
                     static_cast<std::int64_t>(i) * span_ms / static_cast<std::int64_t>(events));
      d.amount.push_back(static_cast<double>(rng() % 100000) / 100.0);
    }
    d.type_chars += types[type_of.back()];
    d.type_offsets.push_back(static_cast<std::uint32_t>(d.type_chars.size()));
  }
  return d;
}

/// @brief The dataset every kernel benchmark shares (built once; 10M events by default,
/// TROVE_BENCH_EVENTS overrides).
inline const w1_data& shared_w1() {
  static const w1_data data = [] {
    std::size_t events = 10'000'000;
    if (const char* env = std::getenv("TROVE_BENCH_EVENTS")) events = std::stoull(env);
    return make_w1(events);
  }();
  return data;
}

}  // namespace trove::bench
