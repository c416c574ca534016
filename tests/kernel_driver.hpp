#pragma once
/// @file kernel_driver.hpp
/// @brief Drives the kernels batch by batch the way the runtime does (classify → dedup →
/// aggregate → extract) over ref_events, so kernel results can be compared with the reference.

#include <algorithm>
#include <memory>
#include <vector>

#include "backend_fixture.hpp"
#include "kernels/agg_table.hpp"
#include "kernels/classify.hpp"
#include "kernels/dedup_set.hpp"
#include "reference.hpp"

namespace trove::test {

/// @brief Configuration of a driven run.
struct driver_options {
  std::int64_t ttl_ms = 60'000;
  std::int64_t size_ms = 60'000;
  std::int64_t slide_ms = 60'000;
  std::int64_t lateness_ms = 0;
  bool dedup = true;
  bool string_dedup = false;
  std::size_t dedup_capacity = 1024;
  std::size_t agg_capacity = 1024;
  std::size_t dedup_max_bytes = std::size_t{1} << 34;
  bool track_updates = false;
  bool track_checkpoint = false;
  /// Growth strategies from this size on (the tables' defaults unless set).
  std::size_t dedup_incremental_min_slots = kernels::dedup_options{}.incremental_min_slots;
  std::size_t agg_prefill_min_slots = kernels::agg_options{}.prefill_min_slots;
};

/// @brief Converts kernel results into reference rows.
inline std::vector<ref_row> to_rows(const kernels::agg_result& r) {
  std::vector<ref_row> rows(r.rows);
  for (std::size_t i = 0; i < r.rows; ++i) {
    ref_row& row = rows[i];
    row.user_valid = r.keys[0].valid[i] != 0;
    row.user = row.user_valid ? r.keys[0].values[i] : 0;
    row.type.assign(r.keys[1].chars.data() + r.keys[1].offsets[i],
                    r.keys[1].offsets[i + 1] - r.keys[1].offsets[i]);
    row.window_start = r.window_start[i];
    row.window_end = r.window_end[i];
    row.count = r.count[i];
    const auto& a = r.fields[0];
    row.amount.non_null = a.non_null[i];
    row.amount.sum = std::bit_cast<double>(a.sum[i]);
    row.amount.min = std::bit_cast<double>(a.min[i]);
    row.amount.max = std::bit_cast<double>(a.max[i]);
    const auto& q = r.fields[1];
    row.qty.non_null = q.non_null[i];
    row.qty.sum = static_cast<std::int64_t>(q.sum[i]);
    row.qty.min = static_cast<std::int64_t>(q.min[i]);
    row.qty.max = static_cast<std::int64_t>(q.max[i]);
  }
  return rows;
}

/// @brief Sorts rows by (window, key) so two implementations can be compared.
inline void sort_rows(std::vector<ref_row>& rows) {
  std::sort(rows.begin(), rows.end(),
            [](const ref_row& a, const ref_row& b) { return a.key() < b.key(); });
}

/// @brief Checks two row sets for equality: exact except float sums (1e-9 relative).
inline void expect_same_rows(std::vector<ref_row> expected, std::vector<ref_row> actual,
                             const std::string& context) {
  sort_rows(expected);
  sort_rows(actual);
  ASSERT_EQ(expected.size(), actual.size()) << context;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const ref_row& e = expected[i];
    const ref_row& a = actual[i];
    const std::string where = context + " row " + std::to_string(i) + " user " +
                              std::to_string(e.user) + " type '" + e.type + "' window " +
                              std::to_string(e.window_start);
    ASSERT_EQ(e.key(), a.key()) << where;
    ASSERT_EQ(e.window_end, a.window_end) << where;
    ASSERT_EQ(e.count, a.count) << where;
    ASSERT_EQ(e.amount.non_null, a.amount.non_null) << where;
    if (e.amount.non_null) {
      ASSERT_NEAR(e.amount.sum, a.amount.sum, 1e-9 * std::max(1.0, std::abs(e.amount.sum)))
          << where;
      ASSERT_EQ(e.amount.min, a.amount.min) << where;
      ASSERT_EQ(e.amount.max, a.amount.max) << where;
    }
    ASSERT_EQ(e.qty.non_null, a.qty.non_null) << where;
    ASSERT_EQ(e.qty.sum, a.qty.sum) << where;
    ASSERT_EQ(e.qty.min, a.qty.min) << where;
    ASSERT_EQ(e.qty.max, a.qty.max) << where;
  }
}

/// @brief Runs events through the kernels of one backend.
template <class Fixture>
class kernel_driver {
 public:
  kernel_driver(Fixture& fx, const driver_options& options) : fx_(fx), options_(options) {
    kernels::window_spec window{options.size_ms, options.slide_ms};
    if (options.dedup) {
      kernels::dedup_options d;
      d.ttl_ms = options.ttl_ms;
      d.initial_capacity = options.dedup_capacity;
      d.max_bytes = options.dedup_max_bytes;
      d.exact_64bit_keys = !options.string_dedup;
      d.incremental_min_slots = options.dedup_incremental_min_slots;
      dedup_ = fx.be().make_dedup_set(d, fx.stream());
    }
    kernels::agg_options a;
    a.key_is_string = {false, true};
    a.fields = {kernels::value_kind::f64, kernels::value_kind::i64};
    a.window = window;
    a.initial_capacity = options.agg_capacity;
    a.track_updates = options.track_updates;
    a.track_checkpoint = options.track_checkpoint;
    a.prefill_min_slots = options.agg_prefill_min_slots;
    agg_ = fx.be().make_agg_table(a, fx.stream());
  }

  /// @brief Processes one batch with the given watermark; returns per-row statuses.
  std::vector<std::uint8_t> process(const std::vector<ref_event>& batch, std::int64_t watermark) {
    const std::size_t n = batch.size();
    std::vector<std::uint64_t> ids(n), users(n), ts(n), amount(n), qty(n);
    std::vector<std::string> types(n), keys(n);
    std::vector<bool> user_valid(n), amount_valid(n);
    for (std::size_t i = 0; i < n; ++i) {
      const ref_event& e = batch[i];
      ids[i] = e.event_id;
      keys[i] = e.event_key;
      users[i] = e.user;
      user_valid[i] = e.user_valid;
      types[i] = e.type;
      ts[i] = static_cast<std::uint64_t>(e.ts);
      amount[i] = std::bit_cast<std::uint64_t>(e.amount);
      amount_valid[i] = e.amount_valid;
      qty[i] = static_cast<std::uint64_t>(e.qty);
    }
    fx_.release_columns();
    kernels::column_view ts_col = fx_.fixed_column(ts);
    kernels::classify_input in;
    in.num_rows = n;
    in.d_event_time = reinterpret_cast<const std::int64_t*>(ts_col.d_values);
    in.window = {options_.size_ms, options_.slide_ms};
    in.emitted_watermark = agg_->emitted_watermark();
    if (options_.dedup) {
      in.dedup_keys.count = 1;
      in.dedup_keys.columns[0] =
          options_.string_dedup ? fx_.string_column(keys) : fx_.fixed_column(ids);
    }
    const kernels::stream_view stream = fx_.stream();
    kernels::device_buffer status(fx_.be(), std::max<std::size_t>(n, 1), stream);
    kernels::device_buffer dedup_keys(fx_.be(), std::max<std::size_t>(n, 1) * 16, stream);
    auto* d_status = status.template as<std::uint8_t>();
    fx_.be().classify(in, d_status, dedup_keys.template as<kernels::hash128>(), stream);
    if (dedup_) {
      dedup_->apply(dedup_keys.template as<kernels::hash128>(), in.d_event_time, d_status, n,
                    watermark, stream);
      if (collect_) {  // what a checkpoint keeps of this batch
        std::vector<kernels::dedup_entry> entries(n);
        entries.resize(dedup_->collect_accepted(dedup_keys.template as<kernels::hash128>(),
                                                in.d_event_time, d_status, n, watermark,
                                                entries.data(), stream));
        collected_.insert(collected_.end(), entries.begin(), entries.end());
      }
    }
    kernels::agg_input agg;
    agg.num_rows = n;
    agg.keys.count = 2;
    agg.keys.columns[0] = fx_.fixed_column(users, user_valid);
    agg.keys.columns[1] = fx_.string_column(types);
    agg.d_event_time = in.d_event_time;
    agg.d_status = d_status;
    agg.fields[0] = fx_.fixed_column(amount, amount_valid);
    agg.fields[1] = fx_.fixed_column(qty);
    for (const auto& t : types) agg.key_string_bytes += t.size();
    agg_->aggregate(agg, stream);
    return fx_.template download<std::uint8_t>(status, n);
  }

  kernels::agg_table& table() { return *agg_; }
  kernels::dedup_set* dedup() { return dedup_.get(); }

  /// @brief Keep the dedup entries every batch adds (collect_accepted), as a checkpoint does.
  void collect(bool on) { collect_ = on; }
  [[nodiscard]] const std::vector<kernels::dedup_entry>& collected() const { return collected_; }

 private:
  bool collect_ = false;
  std::vector<kernels::dedup_entry> collected_;
  Fixture& fx_;
  driver_options options_;
  std::unique_ptr<kernels::dedup_set> dedup_;
  std::unique_ptr<kernels::agg_table> agg_;
};

}  // namespace trove::test
