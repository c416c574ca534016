// Direct tests of the classify pass and count_status on every backend: filter predicates on every
// value kind (a null never matches), late rows against the emitted watermark, the dedup key
// (exact for one fixed-width column, a fingerprint otherwise) and the status histogram. Expected
// values are computed in the test with plain C++ comparisons and brute-force window loops.
#include <algorithm>
#include <bit>
#include <climits>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "backend_fixture.hpp"
#include "kernels/classify.hpp"
#include "kernels/row_status.hpp"

namespace trove::test {
namespace {

using kernels::compare_op;
using kernels::hash128;
using kernels::value_kind;
constexpr std::uint8_t accepted = kernels::status_accepted;
constexpr std::uint8_t late = kernels::status_late;
constexpr std::uint8_t filtered = kernels::status_filtered;
constexpr std::uint8_t bad = kernels::status_bad;
constexpr compare_op all_ops[] = {compare_op::eq, compare_op::ne, compare_op::lt,
                                  compare_op::le, compare_op::gt, compare_op::ge};

const char* op_name(compare_op op) {
  switch (op) {
    case compare_op::eq:
      return "==";
    case compare_op::ne:
      return "!=";
    case compare_op::lt:
      return "<";
    case compare_op::le:
      return "<=";
    case compare_op::gt:
      return ">";
    default:
      return ">=";
  }
}

template <class T>
bool holds(compare_op op, const T& a, const T& b) {
  switch (op) {
    case compare_op::eq:
      return a == b;
    case compare_op::ne:
      return a != b;
    case compare_op::lt:
      return a < b;
    case compare_op::le:
      return a <= b;
    case compare_op::gt:
      return a > b;
    default:
      return a >= b;
  }
}

/// A fixed-width word compared as the given kind, with the C++ operators of that type.
bool holds_word(compare_op op, value_kind kind, std::uint64_t a, std::uint64_t b) {
  switch (kind) {
    case value_kind::i64:
      return holds(op, static_cast<std::int64_t>(a), static_cast<std::int64_t>(b));
    case value_kind::u64:
      return holds(op, a, b);
    default:
      return holds(op, std::bit_cast<double>(a), std::bit_cast<double>(b));
  }
}

std::uint64_t word(double d) {
  return std::bit_cast<std::uint64_t>(d);
}
std::uint64_t word(std::int64_t v) {
  return static_cast<std::uint64_t>(v);
}

template <class P>
class ClassifyTest : public backend_test<P> {
 public:
  /// Event times all 0 unless given; the buffer is kept alive in the fixture.
  const std::int64_t* times(std::size_t n, const std::vector<std::int64_t>& t = {}) {
    std::vector<std::uint64_t> words(n, 0);
    for (std::size_t i = 0; i < t.size(); ++i) words[i] = static_cast<std::uint64_t>(t[i]);
    return reinterpret_cast<const std::int64_t*>(this->fixed_column(words).d_values);
  }

  /// Runs classify; statuses start as 0xEE so a row left unwritten shows.
  std::vector<std::uint8_t> classify(const kernels::classify_input& in,
                                     std::vector<hash128>* keys = nullptr) {
    const std::size_t n = in.num_rows;
    auto status = this->upload(std::vector<std::uint8_t>(n, 0xEE));
    kernels::device_buffer d_keys(this->be(), std::max<std::size_t>(n, 1) * sizeof(hash128));
    this->be().classify(in, status.template as<std::uint8_t>(), d_keys.template as<hash128>(),
                        this->stream());
    if (keys) *keys = this->template download<hash128>(d_keys, n);
    return this->template download<std::uint8_t>(status, n);
  }

  /// Runs count_status.
  std::vector<std::uint64_t> count(const std::vector<std::uint8_t>& status) {
    auto d_status = this->upload(status);
    std::vector<std::uint64_t> counts(kernels::status_count, 12345);
    this->be().count_status(d_status.template as<std::uint8_t>(), status.size(), counts.data(),
                            this->stream());
    return counts;
  }
};
TYPED_TEST_SUITE(ClassifyTest, all_backends, backend_names);

/// Random picks from `candidates`, null with probability 1/8.
template <class T>
std::pair<std::vector<T>, std::vector<bool>> sample(const std::vector<T>& candidates, std::size_t n,
                                                    std::mt19937_64& rng) {
  std::vector<T> values(n);
  std::vector<bool> valid(n);
  for (std::size_t i = 0; i < n; ++i) {
    values[i] = candidates[rng() % candidates.size()];
    valid[i] = rng() % 8 != 0;
  }
  return {values, valid};
}

TYPED_TEST(ClassifyTest, FixedWidthPredicatesOnEveryKind) {
  std::mt19937_64 rng(1);
  const std::size_t n = 1500;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  struct column_case {
    const char* name;
    std::vector<std::uint64_t> candidates;
    std::vector<value_kind> kinds;  // how the predicate reads the words
  };
  const std::vector<column_case> cases = {
      {"i64",
       {word(INT64_MIN), word(std::int64_t{-5}), word(std::int64_t{-1}), 0, 1, 5, 1000,
        word(INT64_MAX)},
       {value_kind::i64, value_kind::u64}},
      {"u64",
       {0, 1, 5, 1ull << 62, 1ull << 63, (1ull << 63) + 1, ~0ull - 1, ~0ull},
       {value_kind::u64, value_kind::i64}},
      {"f64",
       {word(-inf), word(-1e300), word(-2.5), word(-0.0), word(0.0), word(1e-300), word(2.5),
        word(inf), word(nan)},
       {value_kind::f64}},
  };
  const std::int64_t* d_times = this->times(n);
  for (const column_case& c : cases) {
    auto [values, valid] = sample(c.candidates, n, rng);
    const kernels::column_view col = this->fixed_column(values, valid);
    std::vector<std::uint64_t> constants = c.candidates;
    constants.push_back(word(std::int64_t{3}));
    for (value_kind kind : c.kinds) {
      for (compare_op op : all_ops) {
        for (std::uint64_t constant : constants) {
          kernels::classify_input in;
          in.num_rows = n;
          in.d_event_time = d_times;
          in.num_predicates = 1;
          in.predicates[0].column = col;
          in.predicates[0].op = op;
          in.predicates[0].kind = kind;
          in.predicates[0].value = constant;
          const auto got = this->classify(in);
          for (std::size_t i = 0; i < n; ++i) {
            const bool keep = valid[i] && holds_word(op, kind, values[i], constant);
            ASSERT_EQ(int{got[i]}, int{keep ? accepted : filtered})
                << c.name << " column read as kind " << int(kind) << ": row " << i << " value "
                << (valid[i] ? std::to_string(values[i]) : "null") << " " << op_name(op) << " "
                << constant;
          }
        }
      }
    }
  }
}

TYPED_TEST(ClassifyTest, StringPredicatesCompareBytesUnsigned) {
  std::mt19937_64 rng(2);
  const std::size_t n = 2000;
  const std::vector<std::string> candidates = {"",
                                               "a",
                                               "ab",
                                               "abc",
                                               std::string("a\0", 2),
                                               std::string("\0", 1),
                                               "b",
                                               "B",
                                               "\x7F",
                                               "\x80",
                                               "\xC3\xA9",  // é
                                               "\xFF",
                                               "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"};
  auto [values, valid] = sample(candidates, n, rng);
  const kernels::column_view col = this->string_column(values, valid);
  std::vector<std::string> constants = candidates;
  constants.push_back("aa");
  const std::int64_t* d_times = this->times(n);
  for (compare_op op : all_ops) {
    for (const std::string& constant : constants) {
      auto d_constant = this->upload(std::vector<char>(constant.begin(), constant.end()));
      kernels::classify_input in;
      in.num_rows = n;
      in.d_event_time = d_times;
      in.num_predicates = 1;
      in.predicates[0].column = col;
      in.predicates[0].op = op;
      in.predicates[0].d_string = d_constant.template as<char>();
      in.predicates[0].string_length = static_cast<std::uint32_t>(constant.size());
      const auto got = this->classify(in);
      for (std::size_t i = 0; i < n; ++i) {
        // std::string compares as unsigned bytes (char_traits<char>::compare is memcmp-like).
        const bool keep = valid[i] && holds(op, values[i].compare(constant), 0);
        ASSERT_EQ(int{got[i]}, int{keep ? accepted : filtered})
            << "row " << i << " '" << values[i] << "' (" << values[i].size() << " bytes"
            << (valid[i] ? "" : ", null") << ") " << op_name(op) << " '" << constant << "' ("
            << constant.size() << " bytes)";
      }
    }
  }
}

TYPED_TEST(ClassifyTest, PredicatesAreAndedAndFilterComesBeforeLate) {
  std::mt19937_64 rng(3);
  const std::size_t n = 5000;
  std::vector<std::uint64_t> a(n), b(n);
  std::vector<std::string> s(n);
  std::vector<bool> b_valid(n);
  std::vector<std::int64_t> t(n);
  const char* names[] = {"x", "y", "zz", ""};
  for (std::size_t i = 0; i < n; ++i) {
    a[i] = word(static_cast<std::int64_t>(rng() % 200) - 100);
    b[i] = word(static_cast<double>(rng() % 1000) / 10.0);
    b_valid[i] = rng() % 10 != 0;
    s[i] = names[rng() % 4];
    t[i] = static_cast<std::int64_t>(rng() % 10'000);
  }
  const std::string y = "y";
  auto d_y = this->upload(std::vector<char>(y.begin(), y.end()));
  kernels::classify_input in;
  in.num_rows = n;
  in.d_event_time = this->times(n, t);
  in.window = {1000, 1000};
  in.emitted_watermark = 5000;  // rows before 5000 are late
  in.num_predicates = kernels::max_predicates;
  const kernels::column_view ca = this->fixed_column(a);
  const kernels::column_view cb = this->fixed_column(b, b_valid);
  const kernels::column_view cs = this->string_column(s);
  // a > -50, a <= 60, a != 7, b >= 10.0, b < 90.0, s != "y", s >= "" (always), a >= -50 (dup).
  const kernels::predicate p[] = {
      {ca, compare_op::gt, value_kind::i64, word(std::int64_t{-50}), nullptr, 0},
      {ca, compare_op::le, value_kind::i64, word(std::int64_t{60}), nullptr, 0},
      {ca, compare_op::ne, value_kind::i64, word(std::int64_t{7}), nullptr, 0},
      {cb, compare_op::ge, value_kind::f64, word(10.0), nullptr, 0},
      {cb, compare_op::lt, value_kind::f64, word(90.0), nullptr, 0},
      {cs, compare_op::ne, value_kind::i64, 0, d_y.template as<char>(), 1},
      {cs, compare_op::ge, value_kind::i64, 0, d_y.template as<char>(), 0},
      {ca, compare_op::ge, value_kind::i64, word(std::int64_t{-50}), nullptr, 0},
  };
  for (std::size_t i = 0; i < kernels::max_predicates; ++i) in.predicates[i] = p[i];
  const auto got = this->classify(in);
  std::size_t counts[3] = {};
  for (std::size_t i = 0; i < n; ++i) {
    const auto av = static_cast<std::int64_t>(a[i]);
    const double bv = std::bit_cast<double>(b[i]);
    const bool keep = av > -50 && av <= 60 && av != 7 && b_valid[i] && bv >= 10.0 && bv < 90.0 &&
                      s[i] != "y" && av >= -50;
    const std::uint8_t want = !keep ? filtered : (t[i] < 5000 ? late : accepted);
    ++counts[want == accepted ? 0 : want == late ? 1 : 2];
    ASSERT_EQ(int{got[i]}, int{want})
        << "row " << i << " a=" << av << " b=" << bv << " s=" << s[i] << " t=" << t[i];
  }
  // The data exercises every outcome.
  EXPECT_GT(counts[0], 0u);
  EXPECT_GT(counts[1], 0u);
  EXPECT_GT(counts[2], 0u);
}

TYPED_TEST(ClassifyTest, EventTimesOutOfRangeAreBadBeforeAnythingElse) {
  // Event times outside [min_event_time, max_event_time] are bad records, whatever the filter
  // and the emitted watermark say; the ends of the range themselves are fine.
  const std::int64_t lo = kernels::min_event_time, hi = kernels::max_event_time;
  const std::vector<std::int64_t> t = {
      INT64_MIN, INT64_MIN + 1, INT64_MIN + 2, lo - 1,   lo, lo + 1, -1, 0, 1, hi - 1,
      hi,        hi + 1,        INT64_MAX - 1, INT64_MAX};
  const std::size_t n = t.size();
  auto expect_bad = [&](std::int64_t v) { return v < lo || v > hi; };
  std::vector<std::uint64_t> keep(n);  // a predicate column: 1 passes, 0 fails
  for (std::size_t i = 0; i < n; ++i) keep[i] = i % 2;
  kernels::classify_input in;
  in.num_rows = n;
  in.d_event_time = this->times(n, t);
  in.window = {60'000, 60'000};
  in.dedup_keys.count = 1;
  in.dedup_keys.columns[0] = this->fixed_column(keep);
  // No filter, nothing emitted: only the range decides.
  auto got = this->classify(in);
  for (std::size_t i = 0; i < n; ++i) {
    EXPECT_EQ(int{got[i]}, int{expect_bad(t[i]) ? bad : accepted}) << "t " << t[i];
  }
  // A filter that drops odd rows and a watermark that makes every in-range row late: bad first.
  in.num_predicates = 1;
  in.predicates[0] = {this->fixed_column(keep), compare_op::eq, value_kind::u64, 1, nullptr, 0};
  in.emitted_watermark = INT64_MAX;
  got = this->classify(in);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint8_t want = expect_bad(t[i]) ? bad : keep[i] ? late : filtered;
    EXPECT_EQ(int{got[i]}, int{want}) << "t " << t[i];
  }
}

TYPED_TEST(ClassifyTest, LateOnlyOnceEveryWindowOfTheRowWasEmitted) {
  std::mt19937_64 rng(4);
  std::vector<std::int64_t> t = {-10'001, -10'000, -9'999, -2'001, -2'000, -1'999, -1,     0,
                                 1,       1'999,   2'000,  7'999,  8'000,  9'999,  10'000, 10'001};
  while (t.size() < 2000) t.push_back(static_cast<std::int64_t>(rng() % 60'001) - 30'000);
  const std::size_t n = t.size();
  const std::int64_t* d_t = this->times(n, t);
  const std::pair<std::int64_t, std::int64_t> shapes[] = {{10'000, 2'000}, {2'000, 2'000}};
  for (const auto& [size, slide] : shapes) {
    for (std::int64_t emitted :
         {INT64_MIN, std::int64_t{-20'000}, std::int64_t{-8'000}, std::int64_t{0}, std::int64_t{1},
          std::int64_t{9'999}, std::int64_t{10'000}, std::int64_t{12'000}}) {
      kernels::classify_input in;
      in.num_rows = n;
      in.d_event_time = d_t;
      in.window = {size, slide};
      in.emitted_watermark = emitted;
      const auto got = this->classify(in);
      for (std::size_t i = 0; i < n; ++i) {
        // Brute force: late iff no window containing t ends after the emitted watermark.
        bool open = false;
        for (std::int64_t s = -100'000; s <= 100'000; s += slide) {
          if (s <= t[i] && t[i] < s + size && s + size > emitted) open = true;
        }
        ASSERT_EQ(int{got[i]}, int{open ? accepted : late})
            << "size " << size << " slide " << slide << " emitted " << emitted << " t " << t[i];
      }
    }
  }
}

// One output of several: rows the shared pass did not accept keep their status; accepted ones
// are checked against the output's own filter and lateness (filter before late).
TYPED_TEST(ClassifyTest, APriorStatusIsKeptAndOnlyAcceptedRowsAreRefined) {
  std::mt19937_64 rng(11);
  const std::size_t n = 4000;
  std::vector<std::int64_t> t(n);
  std::vector<std::uint64_t> v(n);
  std::vector<std::uint8_t> prior(n);
  const std::uint8_t duplicate = kernels::status_duplicate;
  const std::uint8_t priors[] = {accepted, accepted, accepted, duplicate, filtered, bad, late};
  for (std::size_t i = 0; i < n; ++i) {
    t[i] = static_cast<std::int64_t>(rng() % 40'000);
    v[i] = rng() % 10;
    prior[i] = priors[rng() % std::size(priors)];
  }
  const std::int64_t* d_t = this->times(n, t);
  auto d_prior = this->upload(prior);
  kernels::classify_input in;
  in.num_rows = n;
  in.d_event_time = d_t;
  in.window = {10'000, 10'000};
  in.emitted_watermark = 20'000;  // windows ending at or before 20 s were emitted
  in.d_prior_status = d_prior.template as<std::uint8_t>();
  kernels::predicate& p = in.predicates[in.num_predicates++];
  p.column = this->fixed_column(v);
  p.op = compare_op::lt;
  p.kind = value_kind::u64;
  p.value = 7;
  const auto got = this->classify(in);
  std::size_t refined = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint8_t want = prior[i];
    if (prior[i] == accepted) {
      ++refined;
      want = !(v[i] < 7) ? filtered : (t[i] / 10'000 + 1) * 10'000 <= 20'000 ? late : accepted;
    }
    ASSERT_EQ(int{got[i]}, int{want}) << "row " << i << " prior " << int{prior[i]};
  }
  EXPECT_GT(refined, n / 4);
}

// A partition that moved from an instance whose frontier was ahead holds its rows to that
// frontier (per row); rows without one, or with one behind the table's, to the table's.
TYPED_TEST(ClassifyTest, ARowFrontierAheadOfTheTablesMakesItsRowsLate) {
  std::mt19937_64 rng(5);
  const std::size_t n = 3000;
  std::vector<std::int64_t> t(n);
  std::vector<std::uint64_t> frontier_words(n);
  std::vector<std::int64_t> frontier(n);
  const std::int64_t candidates[] = {INT64_MIN, -20'000, -4'000, 0, 6'000, 20'000};
  for (std::size_t i = 0; i < n; ++i) {
    t[i] = static_cast<std::int64_t>(rng() % 40'001) - 20'000;
    frontier[i] = candidates[rng() % std::size(candidates)];
    frontier_words[i] = static_cast<std::uint64_t>(frontier[i]);
  }
  const std::int64_t* d_t = this->times(n, t);
  const auto* d_frontier =
      reinterpret_cast<const std::int64_t*>(this->fixed_column(frontier_words).d_values);
  const std::pair<std::int64_t, std::int64_t> shapes[] = {{10'000, 2'000}, {2'000, 2'000}};
  for (const auto& [size, slide] : shapes) {
    for (std::int64_t emitted : {INT64_MIN, std::int64_t{-8'000}, std::int64_t{2'000}}) {
      kernels::classify_input in;
      in.num_rows = n;
      in.d_event_time = d_t;
      in.window = {size, slide};
      in.emitted_watermark = emitted;
      in.d_row_frontier = d_frontier;
      const auto got = this->classify(in);
      for (std::size_t i = 0; i < n; ++i) {
        const std::int64_t held_to = std::max(emitted, frontier[i]);
        bool open = false;
        for (std::int64_t s = -100'000; s <= 100'000; s += slide) {
          if (s <= t[i] && t[i] < s + size && s + size > held_to) open = true;
        }
        ASSERT_EQ(int{got[i]}, int{open ? accepted : late})
            << "size " << size << " emitted " << emitted << " frontier " << frontier[i] << " t "
            << t[i];
      }
    }
  }
}

TYPED_TEST(ClassifyTest, OneFixedDedupColumnIsComparedExactly) {
  std::mt19937_64 rng(5);
  std::vector<std::uint64_t> values = {0, 1, 2, ~0ull, 1ull << 63, word(std::int64_t{-1}) - 1};
  while (values.size() < 4000) values.push_back(rng() % 3 ? rng() : rng() % 16);
  const std::size_t n = values.size();
  std::vector<bool> valid(n);
  for (std::size_t i = 0; i < n; ++i) valid[i] = i < 6 || rng() % 10 != 0;
  valid[n - 1] = false;
  kernels::classify_input in;
  in.num_rows = n;
  in.d_event_time = this->times(n);
  in.dedup_keys.count = 1;
  in.dedup_keys.columns[0] = this->fixed_column(values, valid);
  std::vector<hash128> keys;
  const auto status = this->classify(in, &keys);
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::optional<std::uint64_t>> owner;
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_EQ(int{status[i]}, int{accepted});
    const hash128 want = valid[i] ? hash128{values[i], 0} : hash128{0, 1};
    ASSERT_TRUE(keys[i] == want) << "row " << i << " value " << values[i] << " valid " << valid[i]
                                 << ": key {" << keys[i].hi << ", " << keys[i].lo << "}";
    // Two different values (or a value and null) never share a key.
    const std::optional<std::uint64_t> v =
        valid[i] ? std::optional<std::uint64_t>(values[i]) : std::nullopt;
    const auto [it, inserted] = owner.insert({{keys[i].hi, keys[i].lo}, v});
    ASSERT_TRUE(inserted || it->second == v) << "row " << i;
  }
}

TYPED_TEST(ClassifyTest, OtherDedupKeysAreFingerprintsOfTheWholeTuple) {
  // Tuples over (string, string, u64) that must all get distinct keys, and repeats that must get
  // the same key as their first occurrence.
  struct tuple {
    std::optional<std::string> a, b;
    std::optional<std::uint64_t> c;
    auto operator<=>(const tuple&) const = default;
  };
  std::vector<tuple> distinct = {
      {"ab", "c", 1},
      {"a", "bc", 1},
      {"abc", "", 1},
      {"", "abc", 1},
      {std::nullopt, "x", 1},
      {"x", std::nullopt, 1},
      {"", "x", 1},
      {"x", "", 1},
      {std::nullopt, "", 1},
      {"", std::nullopt, 1},
      {"", "", 1},
      {"", "", 0},
      {"", "", std::nullopt},
      {std::nullopt, std::nullopt, std::nullopt},
      {std::string("\0", 1), "", 1},
      {"", std::string("\0", 1), 1},
      {"a", "b", 2},
      {"\xC3\xA9", "b", 2},
      {"\xC3",
       "\xA9"
       "b",
       2},
      {"b", "a", 2},
  };
  std::mt19937_64 rng(6);
  while (distinct.size() < 3000) {
    std::string a(rng() % 12, ' '), b(rng() % 12, ' ');
    for (auto& ch : a) ch = static_cast<char>(rng());
    for (auto& ch : b) ch = static_cast<char>(rng());
    distinct.push_back({a, b, rng() % 4});
  }
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  std::vector<tuple> rows = distinct;
  for (int r = 0; r < 2000; ++r) rows.push_back(distinct[rng() % distinct.size()]);
  std::shuffle(rows.begin(), rows.end(), rng);
  const std::size_t n = rows.size();
  std::vector<std::string> a(n), b(n);
  std::vector<std::uint64_t> c(n);
  std::vector<bool> av(n), bv(n), cv(n);
  for (std::size_t i = 0; i < n; ++i) {
    av[i] = rows[i].a.has_value();
    bv[i] = rows[i].b.has_value();
    cv[i] = rows[i].c.has_value();
    a[i] = rows[i].a.value_or("");
    b[i] = rows[i].b.value_or("");
    c[i] = rows[i].c.value_or(0);
  }
  kernels::classify_input in;
  in.num_rows = n;
  in.d_event_time = this->times(n);
  in.dedup_keys.count = 3;
  in.dedup_keys.columns[0] = this->string_column(a, av);
  in.dedup_keys.columns[1] = this->string_column(b, bv);
  in.dedup_keys.columns[2] = this->fixed_column(c, cv);
  std::vector<hash128> keys;
  this->classify(in, &keys);
  std::map<tuple, std::pair<std::uint64_t, std::uint64_t>> key_of;
  std::set<std::pair<std::uint64_t, std::uint64_t>> used;
  for (std::size_t i = 0; i < n; ++i) {
    const auto k = std::make_pair(keys[i].hi, keys[i].lo);
    const auto [it, inserted] = key_of.insert({rows[i], k});
    if (inserted) {
      ASSERT_TRUE(used.insert(k).second) << "row " << i << ": two tuples share a key";
    } else {
      ASSERT_EQ(it->second, k) << "row " << i << ": one tuple, two keys";
    }
  }
  EXPECT_EQ(key_of.size(), distinct.size());

  // One string column: by fingerprint too, null distinct from "".
  const std::vector<std::string> s = {"", "", "a", std::string("a\0", 2), "a"};
  kernels::classify_input one;
  one.num_rows = s.size();
  one.d_event_time = this->times(s.size());
  one.dedup_keys.count = 1;
  one.dedup_keys.columns[0] = this->string_column(s, {false, true, true, true, true});
  this->classify(one, &keys);
  EXPECT_FALSE(keys[0] == keys[1]) << "null and \"\" share a key";
  EXPECT_FALSE(keys[2] == keys[3]) << "\"a\" and \"a\\0\" share a key";
  EXPECT_TRUE(keys[2] == keys[4]);
  EXPECT_FALSE(keys[0] == (hash128{0, 1})) << "a null string is fingerprinted, not exact";
}

TYPED_TEST(ClassifyTest, CountStatusMatchesAHistogram) {
  std::mt19937_64 rng(7);
  for (std::size_t n : {0u, 1u, 7u, 100'003u}) {
    std::vector<std::uint8_t> status(n);
    std::uint64_t want[kernels::status_count] = {};
    for (auto& s : status) {
      s = static_cast<std::uint8_t>(rng() % 100 < 70 ? 0 : rng() % kernels::status_count);
      ++want[s];
    }
    const auto got = this->count(status);
    for (int s = 0; s < kernels::status_count; ++s) {
      EXPECT_EQ(got[static_cast<std::size_t>(s)], want[s]) << "n " << n << " status " << s;
    }
  }
  // Whatever the bytes hold, every row is counted exactly once: in = sum of the counts.
  std::vector<std::uint8_t> garbage(10'000);
  for (auto& s : garbage) s = static_cast<std::uint8_t>(rng());
  const auto got = this->count(garbage);
  std::uint64_t total = 0;
  for (auto c : got) total += c;
  EXPECT_EQ(total, garbage.size());
}

TYPED_TEST(ClassifyTest, EmptyBatchWritesNothing) {
  kernels::classify_input in;
  in.num_rows = 0;
  in.d_event_time = this->times(1);
  auto status = this->upload(std::vector<std::uint8_t>{0xEE});
  this->be().classify(in, status.template as<std::uint8_t>(), nullptr, this->stream());
  EXPECT_EQ(this->template download<std::uint8_t>(status, 1), std::vector<std::uint8_t>{0xEE});
  EXPECT_EQ(this->count({}), std::vector<std::uint64_t>(kernels::status_count, 0));
}

TYPED_TEST(ClassifyTest, SelectRowsListsTheRowsOfAStatusInRowOrder) {
  // The forwarded rows of a batch: a compaction of the status mask. Checked against a plain loop
  // on random masks of several densities and sizes (including empty, none and all selected).
  std::mt19937_64 rng(3);
  for (const std::size_t n :
       {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{4096}, std::size_t{100'003}}) {
    for (const unsigned density : {0u, 1u, 50u, 99u, 100u}) {
      std::vector<std::uint8_t> status(n);
      for (auto& s : status) {
        s = rng() % 100 < density
                ? accepted
                : static_cast<std::uint8_t>(1 + rng() % (kernels::status_count - 1));
      }
      std::vector<std::uint32_t> expected;
      for (std::size_t row = 0; row < n; ++row) {
        if (status[row] == accepted) expected.push_back(static_cast<std::uint32_t>(row));
      }
      auto d_status = this->upload(status);
      kernels::device_buffer d_rows(this->be(),
                                    std::max<std::size_t>(n, 1) * sizeof(std::uint32_t));
      const std::size_t count =
          this->be().select_rows(d_status.template as<std::uint8_t>(), n, accepted,
                                 d_rows.template as<std::uint32_t>(), this->stream());
      ASSERT_EQ(count, expected.size()) << "n " << n << ", density " << density;
      EXPECT_EQ(this->template download<std::uint32_t>(d_rows, count), expected)
          << "n " << n << ", density " << density;
      // Any other status selects its own rows.
      const std::size_t late_rows =
          this->be().select_rows(d_status.template as<std::uint8_t>(), n, late,
                                 d_rows.template as<std::uint32_t>(), this->stream());
      EXPECT_EQ(late_rows,
                static_cast<std::size_t>(std::count(status.begin(), status.end(), late)));
    }
  }
}

}  // namespace
}  // namespace trove::test
