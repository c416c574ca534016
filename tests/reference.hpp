#pragma once
/// @file reference.hpp
/// @brief The plain reference implementation of trove's semantics (std containers, one thread,
/// row by row) that kernel and end-to-end tests compare against. Written from the documented
/// semantics (README), not from the kernels: filter → dedup (TTL) → late → every open window →
/// aggregates (a late record whose key was accepted is a duplicate).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/row_status.hpp"

namespace trove::test {

/// @brief One input event of the test schema.
struct ref_event {
  std::uint64_t event_id = 0;
  std::string event_key;  ///< used instead of event_id when dedup is by string
  std::uint64_t user = 0;
  bool user_valid = true;
  std::string type;
  std::int64_t ts = 0;
  double amount = 0;
  bool amount_valid = true;
  std::int64_t qty = 0;
};

/// @brief Aggregates of one numeric field.
template <class T>
struct ref_field {
  std::uint64_t non_null = 0;
  T sum = 0;
  T min = std::numeric_limits<T>::max();
  T max = std::numeric_limits<T>::lowest();
  void add(T v) {
    ++non_null;
    sum += v;
    min = std::min(min, v);
    max = std::max(max, v);
  }
};

/// @brief One output row.
struct ref_row {
  std::uint64_t user = 0;
  bool user_valid = true;
  std::string type;
  std::int64_t window_start = 0;
  std::int64_t window_end = 0;
  std::uint64_t count = 0;
  ref_field<double> amount;
  ref_field<std::int64_t> qty;
  [[nodiscard]] auto key() const { return std::tie(window_start, user_valid, user, type); }
};

/// @brief Sequential reference of dedup + windowed aggregation.
class reference {
 public:
  reference(std::int64_t ttl_ms, std::int64_t size_ms, std::int64_t slide_ms, bool dedup = true,
            bool string_dedup = false)
      : ttl_(ttl_ms),
        size_(size_ms),
        slide_(slide_ms),
        dedup_(dedup),
        string_dedup_(string_dedup) {}

  /// @brief Processes one batch with the watermark in force when it arrives; returns statuses.
  std::vector<std::uint8_t> process(const std::vector<ref_event>& batch, std::int64_t watermark) {
    std::vector<std::uint8_t> status(batch.size());
    std::map<std::string, bool> accepted_in_batch;
    auto key_of = [&](const ref_event& e) {
      return string_dedup_ ? "s" + e.event_key : std::to_string(e.event_id);
    };
    // An entry accepted in this same batch stays live for the rest of the batch, whatever the
    // watermark: within a batch the first copy wins.
    auto live = [&](const std::string& key) {
      auto it = seen_.find(key);
      return it != seen_.end() &&
             (accepted_in_batch.count(key) || !(it->second + ttl_ <= watermark));
    };
    std::vector<std::size_t> late_rows;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const ref_event& e = batch[i];
      if (last_start(e.ts) + size_ <= emitted_) {
        // Duplicate is decided before late: a late record whose key is accepted (earlier, or
        // anywhere in this batch) is a duplicate. Decided once the batch's keys are known.
        late_rows.push_back(i);
        continue;
      }
      if (dedup_) {
        const std::string key = key_of(e);
        if (live(key)) {
          status[i] = kernels::status_duplicate;
          continue;
        }
        // The entry's first-seen time, raised so it is live under the watermark it was accepted
        // with (a record older than ttl behind the watermark still shadows its later copies).
        seen_[key] = e.ts + ttl_ <= watermark ? watermark - ttl_ + 1 : e.ts;
        accepted_in_batch[key] = true;
      }
      status[i] = kernels::status_accepted;
      for (std::int64_t k = 0; k < size_ / slide_; ++k) {
        const std::int64_t start = last_start(e.ts) - k * slide_;
        if (start + size_ <= emitted_) break;
        ref_row& row = groups_[{start, e.user_valid, e.user_valid ? e.user : 0, e.type}];
        row.user = e.user_valid ? e.user : 0;
        row.user_valid = e.user_valid;
        row.type = e.type;
        row.window_start = start;
        row.window_end = start + size_;
        ++row.count;
        if (e.amount_valid) row.amount.add(e.amount);
        row.qty.add(e.qty);
      }
    }
    for (std::size_t i : late_rows) {
      status[i] =
          dedup_ && live(key_of(batch[i])) ? kernels::status_duplicate : kernels::status_late;
    }
    return status;
  }

  /// @brief Emits and forgets every group of a window ending at or before the watermark.
  std::vector<ref_row> extract_closed(std::int64_t watermark) {
    emitted_ = std::max(emitted_, watermark);
    std::vector<ref_row> out;
    for (auto it = groups_.begin(); it != groups_.end();) {
      if (it->second.window_end <= watermark) {
        out.push_back(it->second);
        it = groups_.erase(it);
      } else {
        ++it;
      }
    }
    return out;
  }

  [[nodiscard]] std::size_t open_groups() const { return groups_.size(); }

 private:
  std::int64_t last_start(std::int64_t t) const {
    std::int64_t q = t / slide_;
    if (t % slide_ != 0 && t < 0) --q;
    return q * slide_;
  }

  std::int64_t ttl_, size_, slide_;
  bool dedup_, string_dedup_;
  std::int64_t emitted_ = std::numeric_limits<std::int64_t>::min();
  std::map<std::string, std::int64_t> seen_;
  std::map<std::tuple<std::int64_t, bool, std::uint64_t, std::string>, ref_row> groups_;
};

/// @brief Knobs of the random event generator.
struct event_shape {
  std::size_t events = 1000;
  std::uint64_t users = 100;
  double zipf = 0.0;  ///< 0 = uniform
  double duplicate_ratio = 0.05;
  std::int64_t start = 1'700'000'000'000;
  std::int64_t step_ms = 10;     ///< event time advance per event
  std::int64_t disorder_ms = 0;  ///< uniform jitter added to event times
  int types = 4;
  double null_ratio = 0.0;  ///< amount and user are sometimes null
  bool string_keys = false;
};

/// @brief Random events with re-sent duplicates (same event, later in the stream).
inline std::vector<ref_event> make_events(const event_shape& shape, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<double> cdf;
  if (shape.zipf > 0) {
    cdf.resize(shape.users);
    double total = 0;
    for (std::uint64_t u = 0; u < shape.users; ++u) {
      total += 1.0 / std::pow(static_cast<double>(u + 1), shape.zipf);
      cdf[u] = total;
    }
    for (auto& c : cdf) c /= total;
  }
  const char* type_names[] = {"click", "view", "purchase", "add_to_cart_with_a_long_name",
                              "",      "x",    "scroll",   "search"};
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<ref_event> events;
  events.reserve(shape.events);
  std::uint64_t next_id = 1;
  for (std::size_t i = 0; i < shape.events; ++i) {
    if (!events.empty() && unit(rng) < shape.duplicate_ratio) {
      events.push_back(events[rng() % events.size()]);  // a re-send
      continue;
    }
    ref_event e;
    e.event_id = next_id++ * 2654435761ull;
    e.event_key = "evt-" + std::to_string(e.event_id) + (shape.string_keys ? "-suffix" : "");
    if (shape.zipf > 0) {
      e.user = static_cast<std::uint64_t>(std::lower_bound(cdf.begin(), cdf.end(), unit(rng)) -
                                          cdf.begin());
    } else {
      e.user = rng() % shape.users;
    }
    e.user_valid = unit(rng) >= shape.null_ratio;
    e.type = type_names[rng() % static_cast<std::uint64_t>(shape.types)];
    e.ts = shape.start + static_cast<std::int64_t>(i) * shape.step_ms;
    if (shape.disorder_ms > 0) {
      e.ts += static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(shape.disorder_ms + 1));
    }
    e.amount = static_cast<double>(rng() % 100000) / 100.0 - 100.0;
    e.amount_valid = unit(rng) >= shape.null_ratio;
    e.qty = static_cast<std::int64_t>(rng() % 21) - 10;
    events.push_back(e);
  }
  return events;
}

}  // namespace trove::test
