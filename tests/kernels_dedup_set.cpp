// Direct tests of dedup_set::apply on every backend and both slot layouts (128-bit keys, and
// exact 64-bit keys): TTL boundaries, first-row-wins within a batch, determinism across thread
// counts, forced slot collisions, growth, the memory cap, expiry on rebuild, the degenerate batch
// and event times at the ends of the accepted range. Every status is compared with a plain model
// written from the documented semantics (README) or with values derived by hand in the test.
#include <omp.h>

#include <unistd.h>
#include <algorithm>
#include <climits>
#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "backend_fixture.hpp"
#include "kernels/classify.hpp"
#include "kernels/dedup_set.hpp"
#include "kernels/dedup_set_impl.hpp"
#include "kernels/error.hpp"
#include "kernels/row_status.hpp"
#include "kernels/window.hpp"

namespace trove::test {
namespace {

using kernels::hash128;
constexpr std::uint8_t accepted = kernels::status_accepted;
constexpr std::uint8_t duplicate = kernels::status_duplicate;
constexpr std::uint8_t late = kernels::status_late;
constexpr std::uint8_t filtered = kernels::status_filtered;
constexpr std::uint8_t bad = kernels::status_bad;

/// The plain model: a map from key to first_seen; a row is a duplicate when its key was accepted
/// earlier in this batch, or earlier and first_seen + ttl > watermark (no overflow: 128 bits).
class dedup_model {
 public:
  explicit dedup_model(std::int64_t ttl) : ttl_(ttl) {}

  /// Returns the statuses after the batch and the number of rows this batch made duplicates.
  std::pair<std::vector<std::uint8_t>, std::size_t> apply(const std::vector<hash128>& keys,
                                                          const std::vector<std::int64_t>& times,
                                                          std::vector<std::uint8_t> status,
                                                          std::int64_t watermark) {
    std::set<std::pair<std::uint64_t, std::uint64_t>> in_batch;
    std::size_t marked = 0;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (status[i] != accepted) continue;
      const auto key = std::make_pair(keys[i].hi, keys[i].lo);
      const auto it = seen_.find(key);
      const bool live = it != seen_.end() &&
                        (in_batch.count(key) != 0 || static_cast<__int128>(it->second) + ttl_ >
                                                         static_cast<__int128>(watermark));
      if (live) {
        status[i] = duplicate;
        ++marked;
        continue;
      }
      seen_[key] = times[i];
      in_batch.insert(key);
    }
    // Duplicate before late: a late row whose key is live once the batch's keys are in (accepted
    // earlier, or anywhere in this batch) is a duplicate; late rows never insert.
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (status[i] != late) continue;
      const auto key = std::make_pair(keys[i].hi, keys[i].lo);
      const auto it = seen_.find(key);
      if (it != seen_.end() &&
          (in_batch.count(key) != 0 ||
           static_cast<__int128>(it->second) + ttl_ > static_cast<__int128>(watermark))) {
        status[i] = duplicate;
        ++marked;
      }
    }
    return {status, marked};
  }

  /// Keys whose entry is live at the watermark.
  [[nodiscard]] std::size_t live(std::int64_t watermark) const {
    std::size_t n = 0;
    for (const auto& [key, t0] : seen_) {
      n += static_cast<__int128>(t0) + ttl_ > static_cast<__int128>(watermark) ? 1 : 0;
    }
    return n;
  }

 private:
  std::int64_t ttl_;
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::int64_t> seen_;
};

struct batch_result {
  std::vector<std::uint8_t> status;
  std::size_t marked = 0;  // apply()'s return value
};

template <class P>
class DedupSetTest : public backend_test<P> {
 public:
  /// A dedup set; max_load <= 0 keeps the library's default.
  std::unique_ptr<kernels::dedup_set> make(std::int64_t ttl, bool exact,
                                           std::size_t capacity = 1024,
                                           std::size_t max_bytes = std::size_t{1} << 34,
                                           double max_load = 0) {
    kernels::dedup_options options;
    options.ttl_ms = ttl;
    options.initial_capacity = capacity;
    options.max_bytes = max_bytes;
    if (max_load > 0) options.max_load = max_load;
    options.exact_64bit_keys = exact;
    return this->be().make_dedup_set(options, {});
  }

  /// Bytes of one slot of the layout, as the set reports its memory.
  std::size_t slot_bytes(bool exact) {
    const kernels::table_stats stats = make(1, exact)->stats();
    return stats.bytes / stats.capacity;
  }

  /// Uploads one batch, applies it and downloads the statuses.
  batch_result apply(kernels::dedup_set& set, const std::vector<hash128>& keys,
                     const std::vector<std::int64_t>& times,
                     const std::vector<std::uint8_t>& status, std::int64_t watermark) {
    EXPECT_EQ(keys.size(), times.size());
    EXPECT_EQ(keys.size(), status.size());
    auto d_keys = this->upload(keys);
    auto d_times = this->upload(times);
    auto d_status = this->upload(status);
    batch_result r;
    r.marked = set.apply(d_keys.template as<hash128>(), d_times.template as<std::int64_t>(),
                         d_status.template as<std::uint8_t>(), keys.size(), watermark, {});
    r.status = this->template download<std::uint8_t>(d_status, keys.size());
    return r;
  }

  /// Applies a batch of accepted rows to both the set and the model and compares them.
  void check(kernels::dedup_set& set, dedup_model& model, const std::vector<hash128>& keys,
             const std::vector<std::int64_t>& times, std::int64_t watermark,
             const std::string& context, std::vector<std::uint8_t> status = {}) {
    if (status.empty()) status.assign(keys.size(), accepted);
    const auto expected = model.apply(keys, times, status, watermark);
    const batch_result actual = apply(set, keys, times, status, watermark);
    ASSERT_EQ(expected.first.size(), actual.status.size()) << context;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      ASSERT_EQ(int{expected.first[i]}, int{actual.status[i]})
          << context << ": row " << i << " key {" << keys[i].hi << ", " << keys[i].lo
          << "} t=" << times[i] << " watermark " << watermark;
    }
    EXPECT_EQ(expected.second, actual.marked) << context << ": apply()'s duplicate count";
  }
};
TYPED_TEST_SUITE(DedupSetTest, all_backends, backend_names);

hash128 key_of(std::uint64_t v) {
  return hash128{v, 0};
}

const char* layout(bool exact) {
  return exact ? "exact 64-bit keys" : "128-bit keys";
}

constexpr std::int64_t tmin = kernels::min_event_time;
constexpr std::int64_t tmax = kernels::max_event_time;

TYPED_TEST(DedupSetTest, TtlExpiresExactlyAtFirstSeenPlusTtl) {
  for (bool exact : {false, true}) {
    constexpr std::int64_t ttl = 1000;
    auto set = this->make(ttl, exact);
    dedup_model model(ttl);
    const hash128 k = key_of(42);
    const hash128 neg = key_of(7);  // negative event times
    const hash128 top = key_of(9);  // the latest accepted event time
    const hash128 low = key_of(0);  // the earliest accepted event time, key 0
    struct step {
      std::vector<hash128> keys;
      std::vector<std::int64_t> times;
      std::int64_t watermark;
      std::vector<std::uint8_t> expected;
    };
    const std::vector<step> steps = {
        {{k, neg, top, low},
         {5000, -10'000, tmax, tmin},
         INT64_MIN,
         {accepted, accepted, accepted, accepted}},
        // One millisecond before first_seen + ttl: still live. A duplicate does not refresh it.
        {{low}, {0}, tmin + ttl - 1, {duplicate}},
        {{k, neg, top, low},
         {5500, -9500, 0, 0},
         -9001,
         {duplicate, duplicate, duplicate, accepted}},
        {{k}, {5600}, 5999, {duplicate}},
        // Exactly at first_seen + ttl: expired; the first copy of the batch is accepted again and
        // its event time (6200, neither the smallest nor the largest copy) becomes first_seen.
        {{k, k, k, neg},
         {6200, 5100, 9000, -9000},
         6000,
         {accepted, duplicate, duplicate, accepted}},
        {{k, top}, {6300, 0}, 7199, {duplicate, duplicate}},
        {{k, top}, {6400, 0}, 7200, {accepted, duplicate}},
        {{top}, {0}, tmax + ttl - 1, {duplicate}},
        {{k, top}, {6500, 0}, tmax + ttl, {accepted, accepted}},
        {{k, top}, {6600, 0}, INT64_MAX, {accepted, accepted}},
    };
    for (std::size_t s = 0; s < steps.size(); ++s) {
      const step& st = steps[s];
      const std::string context = std::string(layout(exact)) + " step " + std::to_string(s);
      const batch_result r =
          this->apply(*set, st.keys, st.times, std::vector<std::uint8_t>(st.keys.size(), accepted),
                      st.watermark);
      EXPECT_EQ(st.expected, r.status) << context;
      // The model agrees with the hand-written expectations (it is the reference elsewhere).
      EXPECT_EQ(st.expected,
                model
                    .apply(st.keys, st.times, std::vector<std::uint8_t>(st.keys.size(), accepted),
                           st.watermark)
                    .first)
          << context << " (model)";
    }
  }
}

TYPED_TEST(DedupSetTest, ZeroTtlExpiresAtTheEventTimeButNotWithinTheBatch) {
  for (bool exact : {false, true}) {
    auto set = this->make(0, exact);
    const hash128 k = key_of(1);
    EXPECT_EQ(this->apply(*set, {k, k}, {100, 100}, {accepted, accepted}, 50).status,
              (std::vector<std::uint8_t>{accepted, duplicate}))
        << layout(exact);
    EXPECT_EQ(this->apply(*set, {k}, {100}, {accepted}, 99).status,
              std::vector<std::uint8_t>{duplicate})
        << layout(exact);
    // Expired for the whole batch, yet the batch's first copy still wins over its second.
    EXPECT_EQ(
        this->apply(*set, {k, k, k}, {100, 50, 200}, {accepted, accepted, accepted}, 100).status,
        (std::vector<std::uint8_t>{accepted, duplicate, duplicate}))
        << layout(exact);
  }
}

TYPED_TEST(DedupSetTest, FirstRowWinsAndOtherStatusesAreUntouched) {
  for (bool exact : {false, true}) {
    // Hand-made: a key whose first copy is late never enters the set through it: its second copy
    // is accepted, and the late copy is then a duplicate of it (duplicate is decided before
    // late). A late row of a key no one accepted stays late; filtered rows are left alone.
    {
      auto set = this->make(1000, exact);
      const hash128 a = key_of(1), b = key_of(2), c = key_of(3);
      const std::vector<std::uint8_t> in = {late, accepted, accepted, filtered, accepted, late};
      const batch_result r = this->apply(*set, {a, a, b, b, a, c}, {1, 2, 3, 4, 5, 6}, in, 0);
      EXPECT_EQ(r.status, (std::vector<std::uint8_t>{duplicate, accepted, accepted, filtered,
                                                     duplicate, late}))
          << layout(exact);
      EXPECT_EQ(r.marked, 2u) << layout(exact);
    }
    // bug: late re-send counted late — a re-send of a record accepted in an earlier batch that
    // arrives after its window closed is a duplicate, not late; an expired entry does not count.
    {
      auto set = this->make(100, exact);
      const hash128 a = key_of(7), b = key_of(8);
      this->apply(*set, {a, b}, {10, 20}, {accepted, accepted}, 0);
      const batch_result r = this->apply(*set, {a, b}, {10, 20}, {late, late}, 115);
      EXPECT_EQ(r.status, (std::vector<std::uint8_t>{late, duplicate})) << layout(exact);
    }
    // Random: many keys, copies at random positions, a mix of statuses, three batches per seed.
    for (std::uint64_t seed = 1; seed <= 6; ++seed) {
      std::mt19937_64 rng(seed);
      constexpr std::int64_t ttl = 1000;
      auto set = this->make(ttl, exact, seed % 2 ? 1024 : 1 << 14);
      dedup_model model(ttl);
      std::vector<hash128> pool = {{0, 0}, {1, 0}, {~0ull, 0}, {1ull << 63, 0}};
      if (!exact) {
        pool.insert(pool.end(), {{0, 1}, {~0ull, ~0ull}, {0, ~0ull}, {1, 1}});
      }
      while (pool.size() < 3000) {
        pool.push_back(hash128{rng(), exact || seed % 3 == 0 ? 0 : rng()});
      }
      const std::uint8_t others[] = {late, filtered, bad};
      for (int b = 0; b < 3; ++b) {
        const std::size_t n = 2000 + rng() % 6000;
        std::vector<hash128> keys;
        std::vector<std::int64_t> times;
        std::vector<std::uint8_t> status;
        while (keys.size() < n) {
          // A key with 1..6 copies, later scattered by the shuffle below.
          const hash128 k = pool[rng() % pool.size()];
          const std::size_t copies = 1 + rng() % 6;
          for (std::size_t c = 0; c < copies && keys.size() < n; ++c) {
            keys.push_back(k);
            times.push_back(b * 700 + static_cast<std::int64_t>(rng() % 1000));
            status.push_back(rng() % 8 == 0 ? others[rng() % 3] : accepted);
          }
        }
        std::vector<std::size_t> perm(n);
        for (std::size_t i = 0; i < n; ++i) perm[i] = i;
        std::shuffle(perm.begin(), perm.end(), rng);
        std::vector<hash128> k2(n);
        std::vector<std::int64_t> t2(n);
        std::vector<std::uint8_t> s2(n);
        for (std::size_t i = 0; i < n; ++i) {
          k2[i] = keys[perm[i]];
          t2[i] = times[perm[i]];
          s2[i] = status[perm[i]];
        }
        this->check(*set, model, k2, t2, b * 700,
                    std::string(layout(exact)) + " seed " + std::to_string(seed) + " batch " +
                        std::to_string(b),
                    s2);
        if (::testing::Test::HasFatalFailure()) return;
      }
    }
  }
}

TYPED_TEST(DedupSetTest, ExactLayoutComparesTheWholeWord) {
  // Keys that share low bits, high bits or their mixed home must stay distinct.
  auto set = this->make(1'000'000, true);
  std::vector<hash128> keys;
  for (std::uint64_t v : {0ull, 1ull, 1ull << 32, (1ull << 32) + 1, 1ull << 63, ~0ull, ~0ull - 1,
                          0xFFFFFFFFull, 0xFFFFFFFF00000000ull}) {
    keys.push_back(key_of(v));
  }
  const std::vector<std::uint8_t> ok(keys.size(), accepted);
  EXPECT_EQ(this->apply(*set, keys, std::vector<std::int64_t>(keys.size(), 1), ok, 0).status, ok);
  EXPECT_EQ(this->apply(*set, keys, std::vector<std::int64_t>(keys.size(), 2), ok, 0).status,
            std::vector<std::uint8_t>(keys.size(), duplicate));
}

// Both CPU strategies: the owned one (each slot's rows in arrival order on its owner) and the
// atomic one (the GPU's claim protocol, rows racing on shared slots), whose first-copy-wins rule
// must give the statuses arrival order gives whatever the interleaving. Statuses are exact: no
// float is involved.
TYPED_TEST(DedupSetTest, SameStatusesWhateverTheOpenMpThreadCount) {
  if constexpr (std::is_same_v<TypeParam, cuda_param>) {
    GTEST_SKIP() << "OpenMP thread counts only apply to the CPU backend";
  } else {
    struct restore_threads {
      int n = omp_get_max_threads();
      ~restore_threads() { omp_set_num_threads(n); }
    } restore;
    for (bool exact : {false, true}) {
      std::mt19937_64 rng(99);
      constexpr std::int64_t ttl = 5000;
      // Batch 0 fills the table; batch 1 holds copies of its keys (some expired at batch 1's
      // watermark), new keys with copies interleaved, and rows of other statuses.
      std::vector<hash128> pool(60'000);
      for (auto& k : pool) k = hash128{rng(), exact ? 0 : rng()};
      std::vector<hash128> k0(pool.begin(), pool.begin() + 30'000);
      std::vector<std::int64_t> t0(k0.size());
      for (auto& t : t0) t = static_cast<std::int64_t>(rng() % 10'000);
      const std::size_t n = 150'000;
      std::vector<hash128> k1(n);
      std::vector<std::int64_t> t1(n);
      std::vector<std::uint8_t> s1(n);
      for (std::size_t i = 0; i < n; ++i) {
        k1[i] = pool[rng() % pool.size()];
        t1[i] = 10'000 + static_cast<std::int64_t>(rng() % 10'000);
        s1[i] = rng() % 10 == 0 ? filtered : accepted;
      }
      dedup_model model(ttl);
      model.apply(k0, t0, std::vector<std::uint8_t>(k0.size(), accepted), 0);
      const auto expected = model.apply(k1, t1, s1, 10'000).first;
      std::vector<std::vector<std::uint8_t>> results;
      for (int threads : {1, 2, 4}) {
        omp_set_num_threads(threads);
        auto set = this->make(ttl, exact, 1024);
        const batch_result r0 =
            this->apply(*set, k0, t0, std::vector<std::uint8_t>(k0.size(), accepted), 0);
        ASSERT_EQ(std::count(r0.status.begin(), r0.status.end(), accepted),
                  static_cast<std::ptrdiff_t>(k0.size()))
            << layout(exact) << ", " << threads << " threads";
        const batch_result r1 = this->apply(*set, k1, t1, s1, 10'000);
        for (std::size_t i = 0; i < n; ++i) {
          ASSERT_EQ(int{expected[i]}, int{r1.status[i]})
              << layout(exact) << ", " << threads << " threads, row " << i;
        }
        results.push_back(r1.status);
      }
      EXPECT_EQ(results[0], results[1]) << layout(exact);
      EXPECT_EQ(results[0], results[2]) << layout(exact);
    }
  }
}

/// Distinct random keys that all have the given home slot in a table of `capacity` slots of the
/// layout (exact keys have a zero low word).
template <class Slot>
std::vector<hash128> colliding_keys(std::size_t count, std::size_t capacity, std::uint64_t home,
                                    std::uint64_t seed, bool exact) {
  const kernels::detail::dedup_ref<Slot> probe{nullptr, capacity - 1, 0};
  std::mt19937_64 rng(seed);
  std::set<std::pair<std::uint64_t, std::uint64_t>> seen;
  std::vector<hash128> keys;
  const std::uint64_t fixed_hi = rng();
  while (keys.size() < count) {
    // 128-bit: half share their high word (they differ only in the low one), half are random.
    const hash128 k =
        exact ? hash128{rng(), 0} : hash128{keys.size() % 2 ? fixed_hi : rng(), rng()};
    if (probe.home(k) != home || !seen.insert({k.hi, k.lo}).second) continue;
    keys.push_back(k);
  }
  return keys;
}

TYPED_TEST(DedupSetTest, KeysSharingOneHomeSlot) {
  constexpr std::size_t capacity = 1024;
  constexpr std::int64_t ttl = 10'000;
  for (bool exact : {false, true}) {
    const std::vector<hash128> keys =
        exact ? colliding_keys<kernels::detail::dedup_slot64>(300, capacity, 517, 5, true)
              : colliding_keys<kernels::detail::dedup_slot128>(300, capacity, 517, 5, false);
    for (double max_load : {0.9, 0.5}) {  // 0.9: one probe chain of 300 keys; 0.5: rebuilt
      const std::string context =
          std::string(layout(exact)) + " max_load " + std::to_string(max_load);
      std::mt19937_64 rng(17);
      auto set = this->make(ttl, exact, capacity, std::size_t{1} << 34, max_load);
      dedup_model model(ttl);
      auto batch = [&](std::size_t first, std::size_t last, std::size_t resend_upto,
                       std::int64_t t_base) {
        std::vector<hash128> k;
        std::vector<std::int64_t> t;
        for (std::size_t i = first; i < last; ++i) {
          for (std::size_t c = 0; c < 1 + i % 3; ++c) {  // 1..3 copies of each new key
            k.push_back(keys[i]);
            t.push_back(t_base + static_cast<std::int64_t>(i));
          }
        }
        for (std::size_t i = 0; i < resend_upto; ++i) {
          k.push_back(keys[i]);
          t.push_back(t_base + 1);
        }
        std::vector<std::size_t> perm(k.size());
        for (std::size_t i = 0; i < perm.size(); ++i) perm[i] = i;
        std::shuffle(perm.begin(), perm.end(), rng);
        std::vector<hash128> k2;
        std::vector<std::int64_t> t2;
        for (std::size_t p : perm) {
          k2.push_back(k[p]);
          t2.push_back(t[p]);
        }
        return std::make_pair(k2, t2);
      };
      // Batch 1: the first 150 keys, with copies. Batch 2: the other 150 plus re-sends of batch
      // 1. Batch 3 (watermark 10'150): batch 1's entries with first_seen <= 150 expired, the
      // rest live; every key is re-sent once.
      auto [k1, t1] = batch(0, 150, 0, 0);
      this->check(*set, model, k1, t1, 0, context + " batch 1");
      auto [k2, t2] = batch(150, 300, 150, 500);
      this->check(*set, model, k2, t2, 500, context + " batch 2");
      auto [k3, t3] = batch(300, 300, 300, 20'000);
      this->check(*set, model, k3, t3, 10'150, context + " batch 3");
      if (::testing::Test::HasFatalFailure()) return;
      if (max_load == 0.9) {
        ASSERT_EQ(set->stats().rebuilds, 0u) << context << ": the keys must share one chain";
      } else {
        EXPECT_GT(set->stats().rebuilds, 0u) << context;
      }
      // Every key at once in a fresh set, twice.
      const std::vector<std::uint8_t> all(keys.size(), accepted);
      auto other = this->make(ttl, exact, capacity, std::size_t{1} << 34, max_load);
      const batch_result first =
          this->apply(*other, keys, std::vector<std::int64_t>(300, 1), all, 0);
      EXPECT_EQ(first.status, all) << context;
      const batch_result second =
          this->apply(*other, keys, std::vector<std::int64_t>(300, 2), all, 100);
      EXPECT_EQ(second.status, std::vector<std::uint8_t>(300, duplicate)) << context;
      EXPECT_EQ(second.marked, 300u) << context;
    }
  }
}

TYPED_TEST(DedupSetTest, GrowsFromTheMinimumToAMillionKeys) {
  constexpr std::size_t total = 1'000'000;
  constexpr std::size_t batch = 65'536;
  kernels::dedup_options defaults;
  auto set = this->make(1'000'000'000, true, 1024);  // the runtime's layout for integer keys
  const std::size_t capacity0 = set->stats().capacity;
  // Odd multiplier: a bijection of u64, so the keys are distinct.
  auto key = [](std::size_t i) { return key_of((i + 1) * 0x9E3779B97F4A7C15ull); };
  for (int pass = 0; pass < 2; ++pass) {
    const std::uint8_t want = pass == 0 ? accepted : duplicate;
    // The second pass re-sends in reverse order, in batches of another size.
    const std::size_t size = pass == 0 ? batch : 100'000;
    for (std::size_t begin = 0; begin < total; begin += size) {
      const std::size_t n = std::min(size, total - begin);
      std::vector<hash128> keys(n);
      for (std::size_t i = 0; i < n; ++i) {
        keys[i] = key(pass == 0 ? begin + i : total - 1 - (begin + i));
      }
      const batch_result r = this->apply(*set, keys, std::vector<std::int64_t>(n, 1000 + pass),
                                         std::vector<std::uint8_t>(n, accepted), 0);
      const auto good = std::count(r.status.begin(), r.status.end(), want);
      ASSERT_EQ(good, static_cast<std::ptrdiff_t>(n)) << "pass " << pass << " batch at " << begin;
      ASSERT_EQ(r.marked, pass == 0 ? 0u : n) << "pass " << pass << " batch at " << begin;
    }
  }
  const kernels::table_stats stats = set->stats();
  EXPECT_GT(stats.capacity, capacity0);
  EXPECT_GE(static_cast<double>(stats.capacity) * defaults.max_load, static_cast<double>(total))
      << "load above max_load";
  EXPECT_GT(stats.rebuilds, 0u);
  EXPECT_EQ(stats.bytes, stats.capacity * this->slot_bytes(true));
}

// Incremental rebuilds (dedup_set.hpp), forced at every table size, with slices of 1 to 64
// slots per row: growth and expiry purges run while batches of random keys keep coming (re-sends of
// keys from earlier batches, copies within a batch, other statuses), so that every phase
// boundary — counting, filling, migrating with the old table frozen — falls between or under
// batches; the statuses must equal the model's, batch by batch.
TYPED_TEST(DedupSetTest, IncrementalRebuildsMatchTheModel) {
  for (bool exact : {false, true}) {
    for (std::size_t steps : {1, 4, 16, 64}) {
      const std::string context =
          std::string(layout(exact)) + " slots per row " + std::to_string(steps);
      kernels::dedup_options o;
      o.ttl_ms = 4000;
      o.initial_capacity = 1024;
      o.exact_64bit_keys = exact;
      o.incremental_min_slots = 0;
      o.incremental_slots_per_row = steps;
      auto set = this->be().make_dedup_set(o, {});
      dedup_model model(o.ttl_ms);
      std::mt19937_64 rng(steps * 2 + (exact ? 1 : 0));
      std::vector<hash128> pool;
      while (pool.size() < 30'000) pool.push_back(hash128{rng(), exact ? 0 : rng()});
      const std::uint8_t others[] = {late, filtered, bad};
      std::size_t most_keys = 0;
      for (int b = 0; b < 160; ++b) {
        // Mostly small batches (the incremental path), now and then a large one that forces the
        // rest of a rebuild at once.
        const std::size_t n = rng() % 16 == 0 ? 3000 + rng() % 3000 : 1 + rng() % 600;
        std::vector<hash128> keys;
        std::vector<std::int64_t> times;
        std::vector<std::uint8_t> status;
        while (keys.size() < n) {
          // New keys early on (growth), a narrowing window of the pool later (re-sends).
          const std::size_t span = std::min<std::size_t>(pool.size(), 1000 + 250 * b);
          const hash128 k = pool[rng() % span];
          const std::size_t copies = 1 + rng() % 3;
          for (std::size_t c = 0; c < copies && keys.size() < n; ++c) {
            keys.push_back(k);
            times.push_back(b * 100 + static_cast<std::int64_t>(rng() % 400));
            status.push_back(rng() % 10 == 0 ? others[rng() % 3] : accepted);
          }
        }
        this->check(*set, model, keys, times, b * 100 - 300,
                    context + " batch " + std::to_string(b), status);
        if (::testing::Test::HasFatalFailure()) return;
        most_keys = std::max(most_keys, set->stats().entries);
      }
      const kernels::table_stats stats = set->stats();
      EXPECT_GT(stats.rebuilds, stats.blocking_rebuilds) << context << ": none was incremental";
      EXPECT_GT(most_keys, 4000u) << context << ": the table never grew";
    }
  }
}

/// The least power of two at or above x.
std::size_t pow2_at_least(double x) {
  std::size_t p = 1;
  while (static_cast<double>(p) < x) p *= 2;
  return p;
}

/// A stream whose live key set is flat, then (when `shrink_to` is set) falls to that many new keys
/// per batch: each batch brings `rate` new keys (some twice), a few re-sends of recent keys (live:
/// duplicates) and of older ones (expired: accepted again), at event time 100 ms per batch with a
/// watermark one batch behind. Every status is compared with the model's.
struct flat_stream_trace {
  std::vector<std::size_t> capacity, live, rebuilds;  // after each batch (live: the model's)
};
template <class Test>
flat_stream_trace run_flat_stream(Test& test, const kernels::dedup_options& o, std::size_t rate,
                                  std::size_t batches, std::size_t shrink_to, std::size_t shrink_at,
                                  const std::string& context) {
  auto set = test.be().make_dedup_set(o, {});
  dedup_model model(o.ttl_ms);
  std::mt19937_64 rng(rate + batches + (o.exact_64bit_keys ? 1 : 0));
  flat_stream_trace trace;
  std::vector<std::size_t>& capacity = trace.capacity;
  std::vector<std::size_t>& live = trace.live;
  std::vector<hash128> sent;  // every new key, in order
  for (std::size_t b = 0; b < batches; ++b) {
    const std::size_t fresh = shrink_to != 0 && b >= shrink_at ? shrink_to : rate;
    const auto t = static_cast<std::int64_t>(b) * 100;
    std::vector<hash128> keys;
    std::vector<std::int64_t> times;
    for (std::size_t i = 0; i < fresh; ++i) {
      const hash128 k{rng(), o.exact_64bit_keys ? 0 : rng()};
      sent.push_back(k);
      keys.push_back(k);
      if (i % 20 == 0) keys.push_back(k);  // a copy in the batch
    }
    // Re-sends from the last ~2 ttl of keys: the newer half live, the older half expired.
    const std::size_t window =
        std::min(sent.size(), 2 * fresh * static_cast<std::size_t>(o.ttl_ms / 100));
    for (std::size_t i = 0; i < fresh / 10; ++i) {
      keys.push_back(sent[sent.size() - 1 - rng() % window]);
    }
    std::shuffle(keys.begin(), keys.end(), rng);
    for (std::size_t i = 0; i < keys.size(); ++i) {
      times.push_back(t + static_cast<std::int64_t>(rng() % 100));
    }
    test.check(*set, model, keys, times, t - 100, context + " batch " + std::to_string(b));
    if (::testing::Test::HasFatalFailure()) return {};
    capacity.push_back(set->stats().capacity);
    trace.rebuilds.push_back(set->stats().rebuilds);
    // The model counts live keys in one pass over all it saw: every 10th batch (it moves slowly).
    live.push_back(b % 10 == 0 || live.empty() ? model.live(t - 100) : live.back());
  }
  return trace;
}

// bug: issue 15, memory at steady state — an incremental rebuild sized the new table for its live
// count plus the old table's whole remaining room, and added the inserts made during the count on
// top of the counted entries; capacities never shrank, so a flat live set (18M keys) ratcheted the
// table up to 268M slots. A flat live set must settle at a capacity of at most one power of two
// above live / max_load (headroom for the inserts during a rebuild), and stay there, over many
// rebuilds, incremental or at once, with statuses equal to the model's.
TYPED_TEST(DedupSetTest, FlatLiveSetKeepsASteadyCapacity) {
  for (bool incremental : {true, false}) {
    for (bool exact : {false, true}) {
      if (!incremental && !exact) continue;  // the rebuild at once does not depend on the layout
      const std::string context =
          std::string(layout(exact)) + (incremental ? ", incremental" : ", at once");
      kernels::dedup_options o;
      o.ttl_ms = 2000;  // 20 batches: ~10k live keys
      o.initial_capacity = 1024;
      o.exact_64bit_keys = exact;
      o.incremental_min_slots = incremental ? 0 : SIZE_MAX;
      const std::size_t batches = 300;
      const flat_stream_trace trace = run_flat_stream(*this, o, 500, batches, 0, 0, context);
      const auto& [capacity, live, rebuilds] = trace;
      if (::testing::Test::HasFatalFailure()) return;
      // Flat from the second ttl on; the second half of the run is the steady state.
      const std::size_t most_live = *std::max_element(live.begin() + 40, live.end());
      const std::size_t least_live = *std::min_element(live.begin() + 40, live.end());
      ASSERT_LT(most_live, least_live + least_live / 10) << context << ": the live set is not flat";
      const std::size_t bound = 2 * pow2_at_least(static_cast<double>(most_live) / o.max_load);
      const std::size_t half = batches / 2;
      for (std::size_t b = half; b < batches; ++b) {
        ASSERT_LE(capacity[b], bound)
            << context << ": batch " << b << ", " << most_live << " live keys at most";
        ASSERT_EQ(capacity[b], capacity[half]) << context << ": batch " << b << " changed capacity";
      }
      EXPECT_GE(rebuilds.back() - rebuilds[half], 5u) << context << ": too few rebuilds to tell";
    }
  }
}

// A live set that falls eight-fold gives memory back: the table shrinks to what the smaller set
// needs (the same bound as a flat set's) and stays there, while statuses stay the model's.
TYPED_TEST(DedupSetTest, FallingLiveSetShrinksTheTable) {
  for (bool exact : {false, true}) {
    const std::string context = layout(exact);
    kernels::dedup_options o;
    o.ttl_ms = 2000;
    o.initial_capacity = 1024;
    o.exact_64bit_keys = exact;
    o.incremental_min_slots = 0;
    // After the fall the table rebuilds (and shrinks) once its used slots, expired ones
    // included, reach incremental_start_load: ~140 batches here.
    const std::size_t batches = 440, shrink_at = 60;
    const flat_stream_trace trace =
        run_flat_stream(*this, o, 1000, batches, 125, shrink_at, context);
    const auto& [capacity, live, rebuilds] = trace;
    if (::testing::Test::HasFatalFailure()) return;
    const std::size_t peak = capacity[shrink_at - 1];
    const std::size_t most_live = *std::max_element(live.begin() + shrink_at + 40, live.end());
    const std::size_t bound = 2 * pow2_at_least(static_cast<double>(most_live) / o.max_load);
    ASSERT_GT(peak, bound) << context << ": the table never needed more than the small set";
    for (std::size_t b = batches - 120; b < batches; ++b) {
      ASSERT_LE(capacity[b], bound)
          << context << ": batch " << b << ", " << most_live << " live keys at most";
      ASSERT_EQ(capacity[b], capacity[batches - 120]) << context << ": batch " << b;
    }
  }
}

TYPED_TEST(DedupSetTest, MemoryCapThrowsBeforeTouchingTheBatch) {
  for (bool exact : {false, true}) {
    const std::size_t cap = 2048 * this->slot_bytes(exact);  // room for 2048 slots
    constexpr std::int64_t ttl = 1'000'000;
    auto set = this->make(ttl, exact, 1024, cap, 0.5);
    std::vector<hash128> a(400), b(400);
    for (std::size_t i = 0; i < 400; ++i) {
      a[i] = key_of(i + 1);
      b[i] = key_of(i + 100'001);
    }
    const std::vector<std::uint8_t> ok(400, accepted);
    ASSERT_EQ(this->apply(*set, a, std::vector<std::int64_t>(400, 5), ok, 0).status, ok);
    const kernels::table_stats before = set->stats();

    // 400 live + 400 incoming need 4096 slots at max_load 0.5.
    auto d_keys = this->upload(b);
    auto d_times = this->upload(std::vector<std::int64_t>(400, 6));
    auto d_status = this->upload(ok);
    try {
      set->apply(d_keys.template as<hash128>(), d_times.template as<std::int64_t>(),
                 d_status.template as<std::uint8_t>(), 400, 0, {});
      ADD_FAILURE() << layout(exact) << ": no capacity_error past dedup.max_bytes";
    } catch (const capacity_error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("dedup.max_bytes"), std::string::npos) << what;
      EXPECT_NE(what.find(std::to_string(cap)), std::string::npos) << what;
      EXPECT_NE(what.find("dedup.ttl"), std::string::npos) << what;
    }
    // Nothing silently dropped or called a duplicate, and the table is as before.
    EXPECT_EQ(this->template download<std::uint8_t>(d_status, 400), ok) << layout(exact);
    const kernels::table_stats after = set->stats();
    EXPECT_EQ(after.capacity, before.capacity) << layout(exact);
    EXPECT_EQ(after.used, before.used) << layout(exact);
    EXPECT_EQ(after.rebuilds, before.rebuilds) << layout(exact);
    // Still usable: batch a's keys are still duplicates, and a batch that fits is applied.
    std::vector<hash128> again(a.begin(), a.begin() + 50);
    again.insert(again.end(), b.begin(), b.begin() + 50);
    std::vector<std::uint8_t> want(50, duplicate);
    want.resize(100, accepted);
    EXPECT_EQ(this->apply(*set, again, std::vector<std::int64_t>(100, 7),
                          std::vector<std::uint8_t>(100, accepted), 0)
                  .status,
              want)
        << layout(exact);
  }
}

TYPED_TEST(DedupSetTest, MemoryCapIsInclusive) {
  // 700 incoming keys at max_load 0.5 need exactly 2048 slots.
  std::vector<hash128> keys(700);
  for (std::size_t i = 0; i < keys.size(); ++i) keys[i] = key_of(i * 3 + 1);
  const std::vector<std::uint8_t> ok(keys.size(), accepted);
  const std::vector<std::int64_t> times(keys.size(), 0);
  for (bool exact : {false, true}) {
    const std::size_t cap = 2048 * this->slot_bytes(exact);
    {
      auto set = this->make(1000, exact, 1024, cap, 0.5);
      EXPECT_EQ(this->apply(*set, keys, times, ok, 0).status, ok) << layout(exact);
      EXPECT_EQ(set->stats().capacity, 2048u) << layout(exact);
    }
    {
      auto set = this->make(1000, exact, 1024, cap - 1, 0.5);
      auto d_keys = this->upload(keys);
      auto d_times = this->upload(times);
      auto d_status = this->upload(ok);
      EXPECT_THROW(set->apply(d_keys.template as<hash128>(), d_times.template as<std::int64_t>(),
                              d_status.template as<std::uint8_t>(), keys.size(), 0, {}),
                   capacity_error)
          << layout(exact);
      EXPECT_EQ(this->template download<std::uint8_t>(d_status, keys.size()), ok) << layout(exact);
    }
  }
}

TYPED_TEST(DedupSetTest, RebuildDropsExpiredEntries) {
  for (bool exact : {false, true}) {
    constexpr std::int64_t ttl = 1000;
    auto set = this->make(ttl, exact, 4096, std::size_t{1} << 34, 0.5);  // rebuilt past 2048
    dedup_model model(ttl);
    std::vector<hash128> a(1500), b(600);
    std::vector<std::int64_t> ta(a.size()), tb(b.size(), 2000);
    for (std::size_t i = 0; i < a.size(); ++i) {
      a[i] = key_of(i + 1);
      ta[i] = static_cast<std::int64_t>(i);  // expired at watermark 2000 iff t <= 1000
    }
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = key_of(1'000'000 + i);
    const std::string context = layout(exact);
    this->check(*set, model, a, ta, 0, context + " batch a");
    ASSERT_EQ(set->stats().used, 1500u) << context;
    ASSERT_EQ(set->stats().rebuilds, 0u) << context;
    // 1500 + 600 > 2048 triggers a rebuild at watermark 2000: 1001 entries are dropped, 499 +
    // 600 fit in the same capacity.
    this->check(*set, model, b, tb, 2000, context + " batch b");
    const kernels::table_stats stats = set->stats();
    EXPECT_EQ(stats.rebuilds, 1u) << context;
    EXPECT_EQ(stats.capacity, 4096u) << context;
    EXPECT_EQ(stats.used, model.live(2000)) << context;
    EXPECT_EQ(stats.used, 499u + 600u) << context;
    // Every key again: the dropped ones are accepted, the rest are duplicates.
    std::vector<hash128> all = a;
    all.insert(all.end(), b.begin(), b.end());
    this->check(*set, model, all, std::vector<std::int64_t>(all.size(), 2500), 2000,
                context + " all again");
    this->check(*set, model, all, std::vector<std::int64_t>(all.size(), 2600), 2000,
                context + " all twice");
  }
}

TYPED_TEST(DedupSetTest, EmptyBatchIsANoOp) {
  for (bool exact : {false, true}) {
    auto set = this->make(1000, exact);
    const hash128 k = key_of(5);
    ASSERT_EQ(this->apply(*set, {k}, {10}, {accepted}, 0).status,
              std::vector<std::uint8_t>{accepted});
    const kernels::table_stats before = set->stats();
    // A watermark that would expire everything, and no row: nothing happens.
    EXPECT_EQ(set->apply(nullptr, nullptr, nullptr, 0, INT64_MAX, {}), 0u);
    const kernels::table_stats after = set->stats();
    EXPECT_EQ(after.used, before.used);
    EXPECT_EQ(after.capacity, before.capacity);
    EXPECT_EQ(after.rebuilds, before.rebuilds);
    EXPECT_EQ(this->apply(*set, {k}, {11}, {accepted}, 500).status,
              std::vector<std::uint8_t>{duplicate})
        << layout(exact);
  }
}

// Event times are any int64 the decoders accept, but the dedup slot keeps its state sentinels
// (INT64_MIN, INT64_MIN + 1 "busy", then the in-batch claims) in the first_seen word. Classify
// marks times outside [min_event_time, max_event_time] bad, so they never reach the table: run
// classify then dedup as the runtime does, with the sentinel values as event times. A busy
// first_seen would make the next probe of its slot spin forever, so the check runs in a child
// process with a time limit: a hang fails the test instead of the suite.
template <class P>
class DedupSetDeathTest : public DedupSetTest<P> {
 public:
  /// Two rounds of classify + dedup over rows with out-of-range event times and one valid copy
  /// of the same key; true when every status is as expected.
  bool sentinel_rounds() {
    const std::vector<std::int64_t> times = {
        INT64_MIN, INT64_MIN + 1, INT64_MIN + 2, INT64_MIN + 3 + (std::int64_t{1} << 32),
        tmin - 1,  tmax + 1,      INT64_MAX};
    bool ok = true;
    for (bool exact : {false, true}) {
      auto set = this->make(1000, exact);
      for (int round = 0; round < 2; ++round) {
        const std::size_t n = times.size() + 1;
        std::vector<std::uint64_t> words(n), ids(n, 77);
        for (std::size_t i = 0; i < times.size(); ++i) {
          words[i] = static_cast<std::uint64_t>(times[i]);
        }
        words[n - 1] = 100;  // a valid copy of the same key, after the bad ones
        kernels::classify_input in;
        in.num_rows = n;
        in.d_event_time = reinterpret_cast<const std::int64_t*>(this->fixed_column(words).d_values);
        in.dedup_keys.count = 1;
        in.dedup_keys.columns[0] = this->fixed_column(ids);
        kernels::device_buffer status(this->be(), n);
        kernels::device_buffer keys(this->be(), n * sizeof(hash128));
        this->be().classify(in, status.template as<std::uint8_t>(), keys.template as<hash128>(),
                            {});
        set->apply(keys.template as<hash128>(), in.d_event_time, status.template as<std::uint8_t>(),
                   n, INT64_MIN + 500, {});
        std::vector<std::uint8_t> want(times.size(), bad);
        want.push_back(round == 0 ? accepted : duplicate);
        ok = ok && this->template download<std::uint8_t>(status, n) == want;
      }
    }
    return ok;
  }
};
TYPED_TEST_SUITE(DedupSetDeathTest, all_backends, backend_names);

TYPED_TEST(DedupSetDeathTest, SentinelEventTimesNeverReachTheTable) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        alarm(5);
        std::_Exit(this->sentinel_rounds() ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "")
      << "exit code 1: wrong statuses; killed by SIGALRM: a probe hung";
}

}  // namespace
}  // namespace trove::test
