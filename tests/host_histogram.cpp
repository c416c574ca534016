// host/histogram.hpp against a sorted reference: percentiles are never below the true
// nearest-rank value and at most one bucket (a factor 2^(1/8)) above it, on random data of many
// shapes and seeds and on the edge cases; record_series() fills the same buckets as one record()
// per value.

#include "host/histogram.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace trove::host {
namespace {

constexpr double base = 0.001;
const double growth = std::exp2(1.0 / histogram::sub_buckets);
const double top = base * std::exp2(histogram::doublings);  // values above land in the last bucket

const double quantiles[] = {0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 1.0};

/// Nearest-rank q-quantile of sorted values (the histogram's definition).
double reference_quantile(const std::vector<double>& sorted, double q) {
  auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

void expect_matches_reference(const histogram& h, std::vector<double> values) {
  std::sort(values.begin(), values.end());
  ASSERT_EQ(h.count(), values.size());
  EXPECT_DOUBLE_EQ(h.max(), values.back());
  double previous = 0;
  for (double q : quantiles) {
    const double expected = reference_quantile(values, q);
    const double got = h.percentile(q);
    SCOPED_TRACE(testing::Message() << "q=" << q << " expected=" << expected << " got=" << got);
    EXPECT_GE(got, previous) << "percentiles must not decrease with q";
    previous = got;
    EXPECT_LE(got, h.max());
    // upper-bound reporting: never below the true value (1e-12: rounding at a bucket boundary)
    EXPECT_GE(got, expected * (1 - 1e-12));
    if (expected < base) {
      EXPECT_LE(got, base);
    } else if (expected < top / growth) {
      EXPECT_LE(got, expected * growth * (1 + 1e-12));
    } else {
      EXPECT_LE(got, h.max());  // beyond the range: capped at the exact max
    }
  }
}

TEST(Histogram, EmptyReportsZero) {
  histogram h(base);
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.max(), 0);
  EXPECT_EQ(h.sum(), 0);
  for (double q : quantiles) EXPECT_EQ(h.percentile(q), 0) << q;
}

TEST(Histogram, OneValueIsExact) {
  // a single value is its own max, and percentiles are capped at the max
  for (double value : {0.0, 0.0004, 0.001, 1.0, 37.25, 1e6, 1e15}) {
    histogram h(base);
    h.record(value);
    for (double q : quantiles) EXPECT_DOUBLE_EQ(h.percentile(q), value) << value << " q=" << q;
  }
}

TEST(Histogram, AllEqualValuesAreExact) {
  histogram h(base);
  h.record(12.5, 1000);
  for (int i = 0; i < 500; ++i) h.record(12.5);
  EXPECT_EQ(h.count(), 1500u);
  EXPECT_DOUBLE_EQ(h.sum(), 12.5 * 1500);
  for (double q : quantiles) EXPECT_DOUBLE_EQ(h.percentile(q), 12.5);
}

TEST(Histogram, NegativeAndNanCountAsZero) {
  histogram h(base);
  h.record(-5);
  h.record(std::nan(""));
  EXPECT_EQ(h.count(), 2u);
  EXPECT_EQ(h.bucket(0), 2u);
  EXPECT_EQ(h.sum(), 0);
  EXPECT_LE(h.percentile(1.0), base);
}

TEST(Histogram, RandomDataMatchesSortedReference) {
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    std::mt19937_64 rng(seed);
    const std::size_t n = 1 + rng() % 20000;
    std::vector<double> values(n);
    switch (seed % 5) {
      case 0: {  // uniform milliseconds
        std::uniform_real_distribution<double> d(0, 1000);
        for (auto& v : values) v = d(rng);
        break;
      }
      case 1: {  // lognormal latencies
        std::lognormal_distribution<double> d(2, 1.5);
        for (auto& v : values) v = d(rng);
        break;
      }
      case 2: {  // exponential with a long tail
        std::exponential_distribution<double> d(0.05);
        for (auto& v : values) v = d(rng);
        break;
      }
      case 3: {  // huge range: 1e-5 .. 1e13, beyond both ends of the bucket grid
        std::uniform_real_distribution<double> d(-5, 13);
        for (auto& v : values) v = std::pow(10.0, d(rng));
        break;
      }
      default: {  // few distinct values (ties across ranks)
        for (auto& v : values) v = static_cast<double>(rng() % 7) * 3.5;
        break;
      }
    }
    histogram h(base);
    for (double v : values) h.record(v);
    expect_matches_reference(h, values);
  }
}

TEST(Histogram, WeightedRecordAndMergeEqualSeparateRecords) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> d(0, 500);
  histogram one(base), a(base), b(base);
  for (int i = 0; i < 1000; ++i) {
    const double v = d(rng);
    const std::uint64_t count = 1 + rng() % 5;
    for (std::uint64_t c = 0; c < count; ++c) one.record(v);
    (i % 2 ? a : b).record(v, count);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), one.count());
  EXPECT_DOUBLE_EQ(a.max(), one.max());
  EXPECT_NEAR(a.sum(), one.sum(), 1e-9 * one.sum());
  for (std::size_t bucket = 0; bucket < histogram::bucket_count; ++bucket) {
    ASSERT_EQ(a.bucket(bucket), one.bucket(bucket)) << bucket;
  }
}

TEST(Histogram, RecordSeriesFillsTheSameBucketsAsRecordingEachValue) {
  for (std::uint64_t seed = 1; seed <= 60; ++seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> unit(0, 1);
    const std::uint64_t n = seed % 10 == 0 ? 1 : 1 + rng() % 50000;
    // latencies of a batch: first event waited longest, later ones less (negative step), some
    // series rising, constant, crossing zero, or spanning many doublings
    double first = std::pow(10.0, -4 + 8 * unit(rng));
    double step = -first / static_cast<double>(n) * (0.5 + unit(rng));
    if (seed % 7 == 0) step = -step;
    if (seed % 11 == 0) step = 0;
    if (seed % 13 == 0) first = -first / 2;
    SCOPED_TRACE(testing::Message()
                 << "seed " << seed << " first " << first << " step " << step << " n " << n);
    histogram series(base), each(base);
    series.record_series(first, step, n);
    double positive_sum = 0;
    std::vector<double> values;
    for (std::uint64_t i = 0; i < n; ++i) {
      const double v = first + static_cast<double>(i) * step;
      each.record(v);
      values.push_back(v);
      positive_sum += v > 0 ? v : 0;
    }
    EXPECT_EQ(series.count(), n);
    EXPECT_DOUBLE_EQ(series.max(), each.max());
    EXPECT_NEAR(series.sum(), positive_sum, 1e-9 * std::abs(positive_sum) + 1e-9);
    for (std::size_t bucket = 0; bucket < histogram::bucket_count; ++bucket) {
      ASSERT_EQ(series.bucket(bucket), each.bucket(bucket)) << "bucket " << bucket;
    }
  }
}

TEST(Histogram, RecordSeriesOfNothingRecordsNothing) {
  histogram h(base);
  h.record_series(5, 1, 0);
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.max(), 0);
}

}  // namespace
}  // namespace trove::host
