// p50 ... p999 (DDSketch, kernels/aggregates/ddsketch.hpp) through agg_table on every backend,
// against exact quantiles computed here from the sorted values: every quantile within the relative
// accuracy of the exact value at its rank floor(q (n - 1)), over many seeds, for tiny and huge
// groups, skewed, uniform, negative, zero and integer values, nulls and NaNs, hopping windows,
// sketch-arena growth (the deferred additions), snapshot and restore; the owned and atomic CPU
// strategies give identical results; merging two sketches gives the sketch of the union.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "backend_fixture.hpp"
#include "kernels/agg_table.hpp"
#include "kernels/aggregates/ddsketch.hpp"
#include "kernels/row_status.hpp"

namespace trove::test {
namespace {

using kernels::value_kind;
constexpr double quantile_levels[] = {0.5, 0.9, 0.95, 0.99, 0.999};

struct qrow {
  std::uint64_t group = 0;
  std::int64_t t = 0;
  bool valid = true;
  std::uint64_t word = 0;  // the field's 8 bytes (f64 or i64)
};

using group_id = std::pair<std::int64_t, std::uint64_t>;
using quantile_row = std::array<double, 5>;  // NaN: no value

double as_double(const qrow& r, value_kind kind) {
  return kind == value_kind::f64 ? std::bit_cast<double>(r.word)
                                 : static_cast<double>(static_cast<std::int64_t>(r.word));
}

/// Exact quantiles per (window, group): the value of rank floor(q (n - 1)) of the sorted values
/// (nulls and NaNs not values).
std::map<group_id, quantile_row> exact_of(const std::vector<qrow>& rows, value_kind kind,
                                          std::int64_t size, std::int64_t slide) {
  std::map<group_id, std::vector<double>> values;
  for (const qrow& r : rows) {
    const std::int64_t latest = r.t - (((r.t % slide) + slide) % slide);
    for (std::int64_t s = latest; s + size > r.t; s -= slide) {
      auto& v = values[{s, r.group}];
      const double x = as_double(r, kind);
      if (r.valid && !std::isnan(x)) v.push_back(x);
    }
  }
  std::map<group_id, quantile_row> out;
  for (auto& [id, v] : values) {
    std::sort(v.begin(), v.end());
    quantile_row q;
    for (int i = 0; i < 5; ++i) {
      q[i] =
          v.empty()
              ? std::numeric_limits<double>::quiet_NaN()
              : v[static_cast<std::size_t>(quantile_levels[i] * static_cast<double>(v.size() - 1))];
    }
    out[id] = q;
  }
  return out;
}

std::map<group_id, quantile_row> quantiles_of(const kernels::agg_result& r) {
  std::map<group_id, quantile_row> out;
  EXPECT_EQ(r.fields.size(), 1u);
  if (r.fields.size() != 1) return out;
  for (std::size_t i = 0; i < r.rows; ++i) {
    quantile_row q;
    for (int k = 0; k < 5; ++k) q[k] = std::bit_cast<double>(r.fields[0].quantiles[k][i]);
    out[{r.window_start[i], r.keys[0].values[i]}] = q;
  }
  return out;
}

/// Every quantile within `accuracy` of the exact one (relative; values below 1e-9 in magnitude
/// count as 0).
void expect_within(const std::map<group_id, quantile_row>& exact,
                   const std::map<group_id, quantile_row>& got, double accuracy,
                   const std::string& context) {
  ASSERT_EQ(got.size(), exact.size()) << context;
  for (const auto& [id, e] : exact) {
    const auto it = got.find(id);
    ASSERT_NE(it, got.end()) << context << " group " << id.second;
    for (int k = 0; k < 5; ++k) {
      const std::string where = context + " group " + std::to_string(id.second) + " window " +
                                std::to_string(id.first) + " p" +
                                std::to_string(quantile_levels[k]);
      if (std::isnan(e[k])) {
        ASSERT_TRUE(std::isnan(it->second[k])) << where;
        continue;
      }
      const double x = std::abs(e[k]) < kernels::detail::dd_min_magnitude ? 0.0 : e[k];
      ASSERT_LE(std::abs(it->second[k] - x), accuracy * (1 + 1e-9) * std::abs(x))
          << where << ": got " << it->second[k] << " exact " << e[k];
    }
  }
}

enum class shape { uniform, lognormal, mixed_sign, integers };

std::vector<qrow> random_rows(std::mt19937_64& rng, std::size_t groups, shape s,
                              std::int64_t span) {
  std::lognormal_distribution<double> lognormal(3.0, 2.5);
  std::uniform_real_distribution<double> uniform(0.0, 1000.0);
  std::vector<qrow> rows;
  for (std::size_t g = 0; g < groups; ++g) {
    const std::uint64_t kind = rng() % 10;
    const std::size_t n = kind < 4   ? 1 + rng() % 8
                          : kind < 8 ? 9 + rng() % 500
                                     : 2000 + rng() % 30000;
    for (std::size_t i = 0; i < n; ++i) {
      qrow r;
      r.group = g * 104729 + 3;
      r.t = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(span));
      r.valid = rng() % 40 != 0;
      double x = 0;
      switch (s) {
        case shape::uniform:
          x = uniform(rng);
          break;
        case shape::lognormal:
          x = lognormal(rng);  // ~1e-3 .. 1e6: a long tail
          break;
        case shape::mixed_sign:
          x = (rng() % 2 ? -1.0 : 1.0) * lognormal(rng);
          if (rng() % 20 == 0) x = 0.0;
          if (rng() % 200 == 0) x = std::numeric_limits<double>::quiet_NaN();
          break;
        case shape::integers:
          r.word = static_cast<std::uint64_t>(static_cast<std::int64_t>(rng() % 2000001) - 1000000);
          break;
      }
      if (s != shape::integers) r.word = std::bit_cast<std::uint64_t>(x);
      rows.push_back(r);
    }
  }
  std::shuffle(rows.begin(), rows.end(), rng);
  return rows;
}

template <class P>
class DdSketchTest : public backend_test<P> {
 public:
  kernels::agg_options options(value_kind kind, std::int64_t size, std::int64_t slide,
                               double accuracy = 0.01) {
    kernels::agg_options o;
    o.key_is_string = {false};
    o.fields = {kind};
    o.field_nullable = {true};
    o.field_accumulators = {kernels::acc_bit(kernels::acc_kind::ddsketch)};
    o.quantile_accuracy = accuracy;
    o.window = {size, slide};
    o.initial_capacity = 1024;
    return o;
  }

  void aggregate(kernels::agg_table& table, const std::vector<qrow>& rows) {
    const std::size_t n = rows.size();
    kernels::agg_input in;
    in.num_rows = n;
    in.keys.count = 1;
    std::vector<std::uint64_t> groups(n), times(n), words(n);
    std::vector<bool> valid(n);
    for (std::size_t i = 0; i < n; ++i) {
      groups[i] = rows[i].group;
      times[i] = static_cast<std::uint64_t>(rows[i].t);
      words[i] = rows[i].word;
      valid[i] = rows[i].valid;
    }
    in.keys.columns[0] = this->fixed_column(groups);
    in.d_event_time = reinterpret_cast<const std::int64_t*>(this->fixed_column(times).d_values);
    this->keep_.push_back(this->upload(std::vector<std::uint8_t>(n, kernels::status_accepted)));
    in.d_status = this->keep_.back().template as<std::uint8_t>();
    in.fields[0] = this->fixed_column(words, valid);
    table.aggregate(in, this->stream());
    this->release_columns();
  }
};
TYPED_TEST_SUITE(DdSketchTest, all_backends, backend_names);

TYPED_TEST(DdSketchTest, QuantilesWithinTheAccuracyOverManySeeds) {
  for (std::uint64_t seed = 1; seed <= 12; ++seed) {
    std::mt19937_64 rng(seed);
    const auto s = static_cast<shape>(seed % 4);
    const value_kind kind = s == shape::integers ? value_kind::i64 : value_kind::f64;
    const double accuracy = seed % 3 == 0 ? 0.05 : seed % 3 == 1 ? 0.01 : 0.002;
    const std::int64_t size = 1000, slide = seed % 5 == 0 ? 250 : 1000;
    auto o = this->options(kind, size, slide, accuracy);
    auto table = this->be().make_agg_table(o, this->stream());
    const std::vector<qrow> rows = random_rows(rng, 30, s, 2000);
    for (std::size_t at = 0; at < rows.size(); at += 5000) {
      this->aggregate(*table, std::vector<qrow>(rows.begin() + static_cast<std::ptrdiff_t>(at),
                                                rows.begin() + static_cast<std::ptrdiff_t>(std::min(
                                                                   rows.size(), at + 5000))));
    }
    expect_within(exact_of(rows, kind, size, slide),
                  quantiles_of(table->extract_closed(INT64_MAX, this->stream())), accuracy,
                  "seed " + std::to_string(seed));
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TYPED_TEST(DdSketchTest, ManyGroupsPastTheirInlineEntriesInOneBatch) {
  // 4000 groups of 9 to 60 distinct buckets in one batch: the arena (room for 64 blocks at
  // first) is full many times over, so most additions are deferred and added again.
  std::mt19937_64 rng(21);
  const std::int64_t size = 100;
  auto o = this->options(value_kind::f64, size, size, 0.02);
  auto table = this->be().make_agg_table(o, this->stream());
  for (int round = 0; round < 3; ++round) {
    std::vector<qrow> rows;
    for (std::uint64_t g = 0; g < 4000; ++g) {
      const std::size_t n = 9 + (g * 7 + static_cast<std::uint64_t>(round)) % 52;
      for (std::size_t i = 0; i < n; ++i) {
        qrow r;
        r.group = g;
        r.t = round * size + static_cast<std::int64_t>(rng() % size);
        r.word = std::bit_cast<std::uint64_t>(std::ldexp(1.0 + static_cast<double>(i), round));
        rows.push_back(r);
      }
    }
    std::shuffle(rows.begin(), rows.end(), rng);
    this->aggregate(*table, rows);
    expect_within(exact_of(rows, value_kind::f64, size, size),
                  quantiles_of(table->extract_closed((round + 1) * size, this->stream())), 0.02,
                  "round " + std::to_string(round));
    if (::testing::Test::HasFatalFailure()) return;
  }
}

// The bug of HllTest.TheArenaGrowsWithTheGroupsNotWithTheRowsThatWaitForThem, for DDSketch
// blocks (and their deferred additions).
TYPED_TEST(DdSketchTest, TheArenaGrowsWithTheGroupsNotWithTheRowsThatWaitForThem) {
  auto o = this->options(value_kind::f64, 1000, 1000);
  auto table = this->be().make_agg_table(o, this->stream());
  const std::size_t empty = table->stats().sketch_bytes;
  std::mt19937_64 rng(3);
  std::vector<qrow> rows(200000);
  for (auto& r : rows) {
    r = qrow{rng() % 100, 5, true,
             std::bit_cast<std::uint64_t>(1.0 + static_cast<double>(rng() % 100000))};
  }
  this->aggregate(*table, rows);
  const kernels::detail::dd_params dd = kernels::detail::dd_params_for(0.01);
  const std::size_t need = 100 * kernels::detail::dd_block_words(dd.buckets) * 8;  // 2.5 MB
  EXPECT_LE(table->stats().sketch_bytes, empty + 4 * need);
  expect_within(exact_of(rows, value_kind::f64, 1000, 1000),
                quantiles_of(table->extract_closed(INT64_MAX, this->stream())), 0.01, "");
}

TYPED_TEST(DdSketchTest, SnapshotAndRestoreKeepEverySketch) {
  std::mt19937_64 rng(9);
  const std::int64_t size = 1000;
  auto o = this->options(value_kind::f64, size, size);
  const std::vector<qrow> rows = random_rows(rng, 25, shape::mixed_sign, 3000);
  const auto cut = static_cast<std::ptrdiff_t>(rows.size() / 2);
  auto a = this->be().make_agg_table(o, this->stream());
  this->aggregate(*a, std::vector<qrow>(rows.begin(), rows.begin() + cut));
  const kernels::agg_snapshot snap = a->snapshot(this->stream());
  auto b = this->be().make_agg_table(o, this->stream());
  b->restore(snap, a->emitted_watermark(), this->stream());
  const std::vector<qrow> second(rows.begin() + cut, rows.end());
  this->aggregate(*a, second);
  this->aggregate(*b, second);
  const auto from_a = quantiles_of(a->extract_closed(INT64_MAX, this->stream()));
  const auto from_b = quantiles_of(b->extract_closed(INT64_MAX, this->stream()));
  ASSERT_EQ(from_a.size(), from_b.size());
  for (const auto& [id, q] : from_a) {
    for (int k = 0; k < 5; ++k) {
      EXPECT_EQ(std::bit_cast<std::uint64_t>(q[k]), std::bit_cast<std::uint64_t>(from_b.at(id)[k]))
          << "group " << id.second;
    }
  }
  expect_within(exact_of(rows, value_kind::f64, size, size), from_b, 0.01, "restored");
}

TYPED_TEST(DdSketchTest, CollapseRuleAtTheEdgesOfTheRange) {
  // Below 1e-9 in magnitude: 0. Above 1e18: the top bucket (a lower bound of the value).
  auto o = this->options(value_kind::f64, 1000, 1000);
  auto table = this->be().make_agg_table(o, this->stream());
  std::vector<qrow> rows;
  auto add = [&](std::uint64_t group, double x) {
    rows.push_back(qrow{group, 5, true, std::bit_cast<std::uint64_t>(x)});
  };
  add(1, 1e-12);
  add(2, 1e30);
  add(3, -std::numeric_limits<double>::infinity());
  add(4, std::numeric_limits<double>::quiet_NaN());  // not a value: null quantiles
  this->aggregate(*table, rows);
  const auto got = quantiles_of(table->extract_closed(INT64_MAX, this->stream()));
  EXPECT_EQ(got.at({0, 1})[0], 0.0);
  EXPECT_GE(got.at({0, 2})[0], 1e18 * 0.98);
  EXPECT_LE(got.at({0, 2})[0], 1e18 * 1.02);
  EXPECT_LE(got.at({0, 3})[0], -1e18 * 0.98);
  EXPECT_TRUE(std::isnan(got.at({0, 4})[0]));
}

std::map<group_id, quantile_row> run_on(kernels::backend& be,
                                        const std::vector<std::vector<qrow>>& batches) {
  kernels::agg_options o;
  o.key_is_string = {false};
  o.fields = {value_kind::f64};
  o.field_accumulators = {kernels::acc_bit(kernels::acc_kind::ddsketch)};
  o.window = {1000, 500};
  o.initial_capacity = 1024;
  const kernels::stream_view stream{};
  auto table = be.make_agg_table(o, stream);
  std::map<group_id, quantile_row> all;
  std::int64_t watermark = 0;
  for (const auto& rows : batches) {
    const std::size_t n = rows.size();
    std::vector<std::uint64_t> groups(n), times(n), words(n);
    for (std::size_t i = 0; i < n; ++i) {
      groups[i] = rows[i].group;
      times[i] = static_cast<std::uint64_t>(rows[i].t);
      words[i] = rows[i].word;
    }
    std::vector<kernels::device_buffer> keep;
    auto upload = [&](const auto& v) {
      using T = typename std::decay_t<decltype(v)>::value_type;
      keep.emplace_back(be, std::max<std::size_t>(v.size(), 1) * sizeof(T), stream);
      be.copy_to_device(keep.back().data(), v.data(), v.size() * sizeof(T), stream);
      return keep.back().data();
    };
    kernels::agg_input in;
    in.num_rows = n;
    in.keys.count = 1;
    in.keys.columns[0].d_values = static_cast<const std::uint64_t*>(upload(groups));
    in.d_event_time = static_cast<const std::int64_t*>(upload(times));
    in.d_status = static_cast<const std::uint8_t*>(
        upload(std::vector<std::uint8_t>(n, kernels::status_accepted)));
    in.fields[0].d_values = static_cast<const std::uint64_t*>(upload(words));
    table->aggregate(in, stream);
    be.synchronize(stream);
    watermark += 700;
    for (const auto& [id, q] : quantiles_of(table->extract_closed(watermark, stream))) all[id] = q;
  }
  for (const auto& [id, q] : quantiles_of(table->extract_closed(INT64_MAX, stream))) all[id] = q;
  return all;
}

TEST(DdSketchStrategies, OwnedAndAtomicGiveIdenticalQuantiles) {
  std::mt19937_64 rng(13);
  std::lognormal_distribution<double> lognormal(2.0, 2.0);
  std::vector<std::vector<qrow>> batches;
  std::int64_t t0 = 0;
  for (int b = 0; b < 6; ++b) {
    std::vector<qrow> rows;
    for (int i = 0; i < 30000; ++i) {
      qrow r;
      r.group = rng() % 400;
      r.t = t0 + static_cast<std::int64_t>(rng() % 1000);
      r.word = std::bit_cast<std::uint64_t>((rng() % 3 == 0 ? -1 : 1) * lognormal(rng));
      rows.push_back(r);
    }
    batches.push_back(std::move(rows));
    t0 += 700;
  }
  auto owned = kernels::make_cpu_backend(kernels::cpu_strategy::owned);
  auto atomic = kernels::make_cpu_backend(kernels::cpu_strategy::atomic);
  const auto a = run_on(*owned, batches);
  const auto b = run_on(*atomic, batches);
  ASSERT_GT(a.size(), 1000u);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [id, q] : a) {
    for (int k = 0; k < 5; ++k) {
      ASSERT_EQ(std::bit_cast<std::uint64_t>(q[k]), std::bit_cast<std::uint64_t>(b.at(id)[k]))
          << "group " << id.second << " window " << id.first;
    }
  }
}

TEST(DdSketchMerge, MergeOfTwoSketchesIsTheSketchOfTheUnion) {
  using kernels::detail::ddsketch_acc;
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    std::mt19937_64 rng(seed);
    const kernels::detail::dd_params dd = kernels::detail::dd_params_for(0.01);
    const std::uint64_t block = kernels::detail::dd_block_words(dd.buckets);
    std::vector<std::uint64_t> arena(block * 4, 0);
    std::uint64_t used = 0, pending = 0, full = 0;
    kernels::detail::sketch_arena_ref ref;
    ref.d_words = arena.data();
    ref.capacity = arena.size();
    ref.d_used = &used;
    ref.d_full = &full;
    ref.dd_log_gamma = dd.log_gamma;
    ref.dd_key_min = dd.key_min;
    ref.dd_buckets = dd.buckets;
    ref.d_pending_count = &pending;
    std::uint64_t whole[ddsketch_acc::words], left[ddsketch_acc::words], right[ddsketch_acc::words];
    ddsketch_acc::init(whole, value_kind::f64);
    ddsketch_acc::init(left, value_kind::f64);
    ddsketch_acc::init(right, value_kind::f64);
    // Sizes covering sparse + sparse (union sparse or not), sparse + dense, dense + dense.
    const std::size_t n_left = seed % 3 == 0 ? rng() % 5 : rng() % 2000;
    const std::size_t n_right = seed % 5 == 0 ? rng() % 5 : rng() % 2000;
    std::lognormal_distribution<double> lognormal(1.0, 3.0);
    for (std::size_t i = 0; i < n_left + n_right; ++i) {
      const double x = (rng() % 4 == 0 ? -1 : 1) * lognormal(rng);
      const std::uint64_t w = std::bit_cast<std::uint64_t>(x);
      ddsketch_acc::update<false>(whole, w, value_kind::f64, ref);
      ddsketch_acc::update<true>(i < n_left ? left : right, w, value_kind::f64, ref);
    }
    ddsketch_acc::merge(left, right, ref);
    ASSERT_EQ(pending, 0u);
    double a[5], b[5];
    ddsketch_acc::quantiles(left, ref, a);
    ddsketch_acc::quantiles(whole, ref, b);
    for (int k = 0; k < 5; ++k) {
      EXPECT_EQ(std::bit_cast<std::uint64_t>(a[k]), std::bit_cast<std::uint64_t>(b[k]))
          << "seed " << seed << " quantile " << k;
    }
  }
}

}  // namespace
}  // namespace trove::test
