#include <gtest/gtest.h>

#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "io/batch.hpp"
#include "io/synthetic.hpp"

namespace trove::io {
namespace {

/// One generated event as read back from a batch or a JSON line.
struct row {
  std::uint64_t event_id = 0;
  std::uint64_t user_id = 0;
  std::string type;
  std::int64_t ts = 0;
  double amount = 0;
  std::int64_t offset = -1;  // source position; -1 for JSON lines (they carry none)

  bool operator==(const row&) const = default;
};

double as_double(std::uint64_t bits) {
  double value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

/// Appends the rows of a W1 batch.
void read_batch(const host_batch& batch, std::vector<row>& out) {
  for (std::size_t row_idx = 0; row_idx < batch.size(); ++row_idx) {
    for (std::size_t column_idx = 0; column_idx < 5; ++column_idx) {
      ASSERT_TRUE(batch.is_valid(column_idx, row_idx)) << column_idx << " " << row_idx;
    }
    ASSERT_EQ(batch.positions()[row_idx].partition, 0);
    out.push_back({batch.fixed(0)[row_idx], batch.fixed(1)[row_idx],
                   std::string(batch.string_at(2, row_idx)),
                   static_cast<std::int64_t>(batch.fixed(3)[row_idx]),
                   as_double(batch.fixed(4)[row_idx]), batch.positions()[row_idx].offset});
  }
}

/// Generates a whole (bounded) run through fill() with batches of the given sizes (cycled).
std::vector<row> generate_all(const synthetic_options& options, std::vector<std::size_t> sizes,
                              std::size_t string_bytes = 1 << 20) {
  synthetic_generator generator(options);
  std::vector<row> rows;
  const std::size_t capacity = *std::max_element(sizes.begin(), sizes.end());
  host_batch batch(synthetic_generator::w1_schema(), capacity, string_bytes);
  std::size_t call = 0;
  while (!generator.done()) {
    batch.clear();
    const std::size_t wanted = sizes[call++ % sizes.size()];
    const std::size_t added = generator.fill(batch, wanted);
    EXPECT_EQ(added, batch.size());
    EXPECT_GT(added, 0u);
    if (added == 0) break;
    read_batch(batch, rows);
  }
  EXPECT_EQ(generator.fill(batch, 10), 0u);  // a finished run adds nothing
  return rows;
}

/// Parses JSON lines with simdjson.
std::vector<row> parse_json_lines(const std::string& text) {
  std::vector<row> rows;
  simdjson::dom::parser parser;
  std::size_t begin = 0;
  while (begin < text.size()) {
    const std::size_t end = text.find('\n', begin);
    EXPECT_NE(end, std::string::npos) << "every line ends with a newline";
    if (end == std::string::npos) break;
    const std::string_view line(text.data() + begin, end - begin);
    simdjson::dom::element doc;
    EXPECT_EQ(parser.parse(line).get(doc), simdjson::SUCCESS) << line;
    simdjson::dom::object object;
    EXPECT_EQ(doc.get(object), simdjson::SUCCESS) << line;
    EXPECT_EQ(object.size(), 5u) << line;
    row r;
    std::string_view type;
    EXPECT_EQ(object["event_id"].get(r.event_id), simdjson::SUCCESS) << line;
    EXPECT_EQ(object["user_id"].get(r.user_id), simdjson::SUCCESS) << line;
    EXPECT_EQ(object["type"].get(type), simdjson::SUCCESS) << line;
    EXPECT_EQ(object["ts"].get(r.ts), simdjson::SUCCESS) << line;
    EXPECT_EQ(object["amount"].get(r.amount), simdjson::SUCCESS) << line;
    r.type = type;
    rows.push_back(r);
    begin = end + 1;
  }
  return rows;
}

synthetic_options small_run(std::uint64_t events) {
  synthetic_options options;
  options.events = events;
  options.keys = 5'000;
  options.disorder_ms = 3'000;
  options.duplicate_ratio = 0.1;
  options.types = 6;
  return options;
}

/// H(n, s) = sum_{k=1..n} k^-s.
double harmonic(std::uint64_t n, double s) {
  double sum = 0;
  for (std::uint64_t k = n; k >= 1; --k) sum += std::pow(static_cast<double>(k), -s);
  return sum;
}

TEST(IoSynthetic, W1SchemaOrderAndTypes) {
  const schema w1 = synthetic_generator::w1_schema();
  ASSERT_EQ(w1.fields.size(), 5u);
  const char* names[] = {"event_id", "user_id", "type", "ts", "amount"};
  const field_type types[] = {field_type::u64, field_type::u64, field_type::string,
                              field_type::timestamp_ms, field_type::f64};
  for (std::size_t field_idx = 0; field_idx < 5; ++field_idx) {
    EXPECT_EQ(w1.fields[field_idx].name, names[field_idx]);
    EXPECT_EQ(w1.fields[field_idx].type, types[field_idx]);
    EXPECT_TRUE(w1.fields[field_idx].required);
  }
  EXPECT_EQ(synthetic_generator::type_name(0), "click");
  EXPECT_EQ(synthetic_generator::type_name(1), "view");
  EXPECT_EQ(synthetic_generator::type_name(2), "purchase");
  EXPECT_EQ(synthetic_generator::type_name(3), "add_to_cart");
  EXPECT_EQ(synthetic_generator::type_name(4), "type_4");
  EXPECT_EQ(synthetic_generator::type_name(12345), "type_12345");
}

TEST(IoSynthetic, DeterministicAcrossBatchSplits) {
  const synthetic_options options = small_run(30'000);
  const std::vector<row> reference = generate_all(options, {30'000});
  ASSERT_EQ(reference.size(), 30'000u);
  for (std::size_t row_idx = 0; row_idx < reference.size(); ++row_idx) {
    ASSERT_EQ(reference[row_idx].offset, static_cast<std::int64_t>(row_idx));
  }
  EXPECT_EQ(generate_all(options, {1}), reference);
  EXPECT_EQ(generate_all(options, {7}), reference);
  EXPECT_EQ(generate_all(options, {4096}), reference);
  EXPECT_EQ(generate_all(options, {1, 1000, 3, 29'999}), reference);
  std::mt19937_64 split_rng(5);
  std::vector<std::size_t> random_sizes(50);
  for (std::size_t& size : random_sizes) size = 1 + split_rng() % 2'000;
  EXPECT_EQ(generate_all(options, random_sizes), reference);
  // String bytes (not rows) ending a batch early must not change the sequence either.
  EXPECT_EQ(generate_all(options, {1'000}, 64), reference);
}

TEST(IoSynthetic, SeedChangesEventsAndSameSeedRepeats) {
  synthetic_options options = small_run(2'000);
  const std::vector<row> first = generate_all(options, {500});
  EXPECT_EQ(generate_all(options, {500}), first);
  options.seed = 43;
  const std::vector<row> other = generate_all(options, {500});
  ASSERT_EQ(other.size(), first.size());
  std::size_t same_users = 0;
  for (std::size_t row_idx = 0; row_idx < first.size(); ++row_idx) {
    same_users += first[row_idx].user_id == other[row_idx].user_id;
  }
  EXPECT_LT(same_users, first.size() / 2);
}

TEST(IoSynthetic, JsonLinesParseAndEqualBatchValues) {
  synthetic_options options = small_run(20'000);
  options.types = 5'000;  // beyond the precomputed names too
  const std::vector<row> reference = generate_all(options, {2'048});

  synthetic_generator generator(options);
  std::string text;
  std::size_t lines = 0;
  while (!generator.done()) lines += generator.write_json(777, text);
  EXPECT_EQ(lines, reference.size());
  EXPECT_EQ(generator.write_json(10, text), 0u);
  const std::vector<row> parsed = parse_json_lines(text);
  ASSERT_EQ(parsed.size(), reference.size());
  std::size_t big_types = 0;
  for (std::size_t row_idx = 0; row_idx < parsed.size(); ++row_idx) {
    row expected = reference[row_idx];
    expected.offset = -1;
    ASSERT_EQ(parsed[row_idx], expected) << "row " << row_idx;
    big_types +=
        expected.type.rfind("type_", 0) == 0 && std::stoul(expected.type.substr(5)) >= 4'096;
  }
  EXPECT_GT(big_types, 0u);
  // The first line, spelled out: keys in W1 order, amount always with two decimals.
  const std::string first = text.substr(0, text.find('\n'));
  EXPECT_EQ(first.rfind(R"({"event_id":0,"user_id":)", 0), 0u) << first;
  EXPECT_NE(first.find(R"(,"ts":)"), std::string::npos);
  const std::size_t amount = first.find(R"(,"amount":)");
  ASSERT_NE(amount, std::string::npos);
  EXPECT_EQ(first[first.size() - 4], '.') << first;
}

TEST(IoSynthetic, MixedJsonAndFillContinueOneSequence) {
  const synthetic_options options = small_run(10'000);
  const std::vector<row> reference = generate_all(options, {10'000});
  synthetic_generator generator(options);
  host_batch batch(synthetic_generator::w1_schema(), 1'000, 1 << 16);
  std::vector<row> rows;
  bool json_turn = false;
  while (!generator.done()) {
    if (json_turn) {
      std::string text;
      generator.write_json(333, text);
      for (row r : parse_json_lines(text)) {
        r.offset = static_cast<std::int64_t>(rows.size());
        rows.push_back(r);
      }
    } else {
      batch.clear();
      generator.fill(batch, 1'000);
      read_batch(batch, rows);
    }
    json_turn = !json_turn;
  }
  EXPECT_EQ(rows, reference);
}

TEST(IoSynthetic, SkipThenContinueEqualsTail) {
  const synthetic_options options = small_run(12'000);
  const std::vector<row> reference = generate_all(options, {12'000});
  synthetic_generator generator(options);
  generator.skip(5'000);
  EXPECT_EQ(generator.produced(), 5'000u);
  host_batch batch(synthetic_generator::w1_schema(), 12'000, 1 << 20);
  EXPECT_EQ(generator.fill(batch, 12'000), 7'000u);
  std::vector<row> tail;
  read_batch(batch, tail);
  EXPECT_TRUE(std::equal(tail.begin(), tail.end(), reference.begin() + 5'000, reference.end()));
  generator.skip(10);  // past the end: nothing
  EXPECT_EQ(generator.produced(), 12'000u);
}

TEST(IoSynthetic, DuplicateRatioWithinOnePercent) {
  constexpr std::uint64_t events = 200'000;
  for (double ratio : {0.0, 0.05, 0.3, 0.75}) {
    synthetic_options options = small_run(events);
    options.duplicate_ratio = ratio;
    const std::vector<row> rows = generate_all(options, {8'192});
    ASSERT_EQ(rows.size(), events);
    std::unordered_map<std::uint64_t, std::size_t> first_seen;  // event_id -> row
    std::vector<std::uint64_t> original_rank(events, 0);        // originals before a row
    std::uint64_t originals = 0;
    std::size_t repeated = 0;
    for (std::size_t row_idx = 0; row_idx < rows.size(); ++row_idx) {
      const row& r = rows[row_idx];
      const auto [it, inserted] = first_seen.emplace(r.event_id, row_idx);
      if (inserted) {
        // An original: its event_id is its own offset.
        ASSERT_EQ(r.event_id, row_idx) << "ratio " << ratio;
        original_rank[row_idx] = originals++;
        continue;
      }
      ++repeated;
      // A re-send repeats every field of one of the last 4096 originals.
      const row& original = rows[it->second];
      ASSERT_LT(r.event_id, row_idx);
      ASSERT_EQ(r.user_id, original.user_id);
      ASSERT_EQ(r.type, original.type);
      ASSERT_EQ(r.ts, original.ts);
      ASSERT_EQ(r.amount, original.amount);
      ASSERT_LE(originals - original_rank[it->second], 4'096u);
    }
    const double observed = static_cast<double>(repeated) / static_cast<double>(events);
    EXPECT_NEAR(observed, ratio, 0.01) << "requested " << ratio;
  }
}

TEST(IoSynthetic, AllDuplicatesRepeatTheFirstEvent) {
  synthetic_options options = small_run(1'000);
  options.duplicate_ratio = 1.0;
  const std::vector<row> rows = generate_all(options, {100});
  for (const row& r : rows) {
    row expected = rows[0];
    expected.offset = r.offset;
    ASSERT_EQ(r, expected);
  }
}

TEST(IoSynthetic, ZipfTopUserMatchesTheory) {
  synthetic_options options;
  options.events = 200'000;
  options.keys = 1'000;
  options.zipf = 1.1;
  options.duplicate_ratio = 0;
  std::vector<std::uint64_t> counts(options.keys, 0);
  for (const row& r : generate_all(options, {10'000})) {
    ASSERT_LT(r.user_id, options.keys);
    ++counts[r.user_id];
  }
  const double h = harmonic(1'000, 1.1);
  const double top = static_cast<double>(counts[0]) / static_cast<double>(options.events);
  EXPECT_NEAR(top / (1 / h), 1.0, 0.10) << "top user frequency " << top;
  EXPECT_EQ(std::max_element(counts.begin(), counts.end()) - counts.begin(), 0);
}

TEST(IoSynthetic, ZipfSamplerBothMethodsMatchTheory) {
  using method = detail::zipf_sampler::method;
  constexpr std::uint64_t n = 1'000;
  constexpr int samples = 400'000;
  for (double s : {0.7, 1.0, 1.1, 2.0}) {
    for (method how : {method::alias, method::rejection_inversion}) {
      const detail::zipf_sampler sampler(n, s, how);
      EXPECT_EQ(sampler.uses_alias_table(), how == method::alias);
      std::vector<std::uint64_t> counts(n, 0);
      detail::random_stream rng{static_cast<std::uint64_t>(s * 1000)};
      for (int sample_idx = 0; sample_idx < samples; ++sample_idx) {
        const std::uint64_t rank = sampler.sample(rng);
        ASSERT_LT(rank, n);
        ++counts[rank];
      }
      const double h = harmonic(n, s);
      for (std::uint64_t rank : {0, 1, 2, 9}) {
        const double expected = std::pow(static_cast<double>(rank + 1), -s) / h;
        const double observed = static_cast<double>(counts[rank]) / samples;
        EXPECT_NEAR(observed / expected, 1.0, 0.10)
            << "s=" << s << " rank=" << rank << " alias=" << (how == method::alias);
      }
    }
  }
  // Automatic choice: a table for moderate key counts, none for huge ones.
  EXPECT_TRUE(detail::zipf_sampler(100'000, 1.1).uses_alias_table());
  const detail::zipf_sampler huge(1'000'000'000'000ull, 1.1);
  EXPECT_FALSE(huge.uses_alias_table());
  detail::random_stream rng{1};
  for (int sample_idx = 0; sample_idx < 10'000; ++sample_idx) {
    ASSERT_LT(huge.sample(rng), huge.size());
  }
}

TEST(IoSynthetic, UniformUsersWhenZipfIsZero) {
  synthetic_options options;
  options.events = 200'000;
  options.keys = 100;
  options.zipf = 0;
  options.duplicate_ratio = 0;
  std::vector<double> counts(options.keys, 0);
  for (const row& r : generate_all(options, {10'000})) {
    ASSERT_LT(r.user_id, options.keys);
    ++counts[r.user_id];
  }
  const double expected = static_cast<double>(options.events) / options.keys;
  double chi_square = 0;
  for (double count : counts) chi_square += (count - expected) * (count - expected) / expected;
  // 99 degrees of freedom: mean 99, standard deviation 14; Zipf(1.1) would give ~10^5.
  EXPECT_LT(chi_square, 99 + 6 * 14) << chi_square;
}

TEST(IoSynthetic, TypesAndAmountsInRange) {
  synthetic_options options = small_run(50'000);
  std::unordered_map<std::string, std::size_t> types;
  for (const row& r : generate_all(options, {5'000})) {
    ++types[r.type];
    ASSERT_GE(r.amount, 0.01);
    ASSERT_LE(r.amount, 500.0);
    ASSERT_EQ(std::round(r.amount * 100) / 100, r.amount);  // whole cents
  }
  ASSERT_EQ(types.size(), 6u);
  for (const char* name : {"click", "view", "purchase", "add_to_cart", "type_4", "type_5"}) {
    EXPECT_NEAR(static_cast<double>(types[name]) / 50'000, 1.0 / 6, 0.01) << name;
  }
}

TEST(IoSynthetic, DisorderStaysWithinBounds) {
  synthetic_options options = small_run(100'000);
  options.disorder_ms = 2'500;
  options.span_ms = 60'000;
  const synthetic_generator generator(options);
  std::int64_t min_jitter = options.disorder_ms;
  std::int64_t max_jitter = 0;
  for (const row& r : generate_all(options, {4'096})) {
    if (r.event_id != static_cast<std::uint64_t>(r.offset)) continue;  // re-send: older ts
    const std::int64_t base = generator.base_time_ms(static_cast<std::uint64_t>(r.offset));
    ASSERT_LE(r.ts, base);
    ASSERT_GE(r.ts, base - options.disorder_ms);
    min_jitter = std::min(min_jitter, base - r.ts);
    max_jitter = std::max(max_jitter, base - r.ts);
  }
  EXPECT_EQ(min_jitter, 0);  // the whole range is used
  EXPECT_EQ(max_jitter, options.disorder_ms);
}

TEST(IoSynthetic, EventTimeBaseIsMonotoneOverTheSpan) {
  synthetic_options options = small_run(100'000);
  options.disorder_ms = 0;
  options.duplicate_ratio = 0;
  options.span_ms = 600'000;
  const synthetic_generator generator(options);
  EXPECT_EQ(generator.base_time_ms(0), options.start_time_ms);
  EXPECT_EQ(generator.base_time_ms(50'000), options.start_time_ms + 300'000);
  EXPECT_EQ(generator.base_time_ms(99'999), options.start_time_ms + 599'994);
  const std::vector<row> rows = generate_all(options, {3'000});
  for (std::size_t row_idx = 0; row_idx < rows.size(); ++row_idx) {
    ASSERT_EQ(rows[row_idx].ts, generator.base_time_ms(row_idx));  // no disorder: ts = base
    if (row_idx > 0) {
      ASSERT_GE(rows[row_idx].ts, rows[row_idx - 1].ts);
    }
  }
  // A span far longer than 2^64 / events still advances linearly (no overflow).
  options.events = 10'000'000'000ull;
  options.span_ms = 4'000'000'000'000'000;
  const synthetic_generator long_run(options);
  EXPECT_EQ(long_run.base_time_ms(5'000'000'000ull), options.start_time_ms + 2'000'000'000'000'000);
}

TEST(IoSynthetic, UnboundedRunsKeepGoing) {
  synthetic_options options;
  options.events = 0;
  options.keys = 1'000;
  synthetic_generator generator(options);
  host_batch batch(synthetic_generator::w1_schema(), 10'000, 1 << 20);
  std::int64_t last_offset = -1;
  for (int round = 0; round < 30; ++round) {
    batch.clear();
    ASSERT_EQ(generator.fill(batch, 10'000), 10'000u);
    EXPECT_FALSE(generator.done());
    EXPECT_EQ(batch.positions()[0].offset, last_offset + 1);
    last_offset = batch.positions()[batch.size() - 1].offset;
  }
  EXPECT_EQ(generator.produced(), 300'000u);
  // Without a rate, event time advances 1 ms per 1000 events.
  EXPECT_EQ(generator.base_time_ms(0), options.start_time_ms);
  EXPECT_EQ(generator.base_time_ms(299'999), options.start_time_ms + 299);
  EXPECT_EQ(generator.scheduled_ns(12'345), 0);
  std::string text;
  EXPECT_EQ(generator.write_json(5, text), 5u);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 5);

  // With a rate, event time follows the offered time.
  options.rate = 250'000;
  const synthetic_generator paced(options);
  EXPECT_EQ(paced.scheduled_ns(0), 0);
  EXPECT_EQ(paced.scheduled_ns(1), 4'000);
  EXPECT_EQ(paced.scheduled_ns(1'000'000), 4'000'000'000);
  EXPECT_EQ(paced.base_time_ms(250'000), options.start_time_ms + 1'000);
  EXPECT_EQ(paced.base_time_ms(250'001), options.start_time_ms + 1'000);
  EXPECT_EQ(paced.base_time_ms(500'000), options.start_time_ms + 2'000);
}

TEST(IoSynthetic, BoundedRunEndsWithAShortBatch) {
  synthetic_options options = small_run(2'500);
  options.rate = 1'000;
  synthetic_generator generator(options);
  host_batch batch(synthetic_generator::w1_schema(), 1'000, 1 << 16);
  EXPECT_EQ(generator.fill(batch, 1'000), 1'000u);
  EXPECT_EQ(generator.fill(batch, 1'000), 0u);  // the batch is full
  batch.clear();
  EXPECT_EQ(generator.fill(batch, 1'000), 1'000u);
  batch.clear();
  EXPECT_EQ(generator.fill(batch, 1'000), 500u);
  EXPECT_TRUE(generator.done());
  EXPECT_EQ(generator.produced(), 2'500u);
  EXPECT_EQ(generator.scheduled_ns(2'499), 2'499'000'000);  // rate paces a bounded run too
  // The event time of a bounded run follows span, not rate.
  EXPECT_EQ(generator.base_time_ms(1'250), options.start_time_ms + options.span_ms / 2);
}

TEST(IoSynthetic, MapsColumnsByFieldName) {
  const synthetic_options options = small_run(3'000);
  const std::vector<row> reference = generate_all(options, {3'000});
  const schema custom{{{"amount", field_type::f64, true},
                       {"country", field_type::string, false},
                       {"ts", field_type::i64, true},
                       {"user_id", field_type::i64, true},
                       {"score", field_type::f64, false}}};
  synthetic_generator generator(options);
  host_batch batch(custom, 3'000, 1 << 10);
  ASSERT_EQ(generator.fill(batch, 3'000), 3'000u);
  for (std::size_t row_idx = 0; row_idx < batch.size(); ++row_idx) {
    const row& expected = reference[row_idx];
    ASSERT_EQ(as_double(batch.fixed(0)[row_idx]), expected.amount);
    ASSERT_FALSE(batch.is_valid(1, row_idx));
    ASSERT_EQ(static_cast<std::int64_t>(batch.fixed(2)[row_idx]), expected.ts);
    ASSERT_EQ(batch.fixed(3)[row_idx], expected.user_id);
    ASSERT_FALSE(batch.is_valid(4, row_idx));
    ASSERT_EQ(batch.positions()[row_idx].offset, static_cast<std::int64_t>(row_idx));
  }
  const schema wrong{{{"type", field_type::i64, true}}};
  host_batch wrong_batch(wrong, 10, 100);
  try {
    synthetic_generator(options).fill(wrong_batch, 10);
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("'type'"), std::string::npos) << error.what();
  }
}

TEST(IoSynthetic, TooFewStringBytesForOneEventThrows) {
  synthetic_options options = small_run(10);
  options.types = 4;
  synthetic_generator generator(options);
  host_batch batch(synthetic_generator::w1_schema(), 10, 2);
  EXPECT_THROW(generator.fill(batch, 10), std::length_error);
  EXPECT_EQ(generator.produced(), 0u);
}

TEST(IoSynthetic, InvalidOptionsAreRejected) {
  auto with = [](auto change) {
    synthetic_options options;
    change(options);
    return options;
  };
  EXPECT_THROW(synthetic_generator(with([](auto& o) { o.keys = 0; })), std::invalid_argument);
  EXPECT_THROW(synthetic_generator(with([](auto& o) { o.zipf = -1; })), std::invalid_argument);
  EXPECT_THROW(synthetic_generator(with([](auto& o) { o.zipf = NAN; })), std::invalid_argument);
  EXPECT_THROW(synthetic_generator(with([](auto& o) { o.rate = -1; })), std::invalid_argument);
  EXPECT_THROW(synthetic_generator(with([](auto& o) { o.duplicate_ratio = 1.5; })),
               std::invalid_argument);
  EXPECT_THROW(synthetic_generator(with([](auto& o) { o.disorder_ms = -1; })),
               std::invalid_argument);
  EXPECT_THROW(synthetic_generator(with([](auto& o) { o.types = 0; })), std::invalid_argument);
  EXPECT_THROW(synthetic_generator(with([](auto& o) { o.span_ms = 0; })), std::invalid_argument);
  EXPECT_NO_THROW(synthetic_generator(with([](auto& o) {
    o.keys = 1;
    o.duplicate_ratio = 1;
    o.zipf = 0;
  })));
}

}  // namespace
}  // namespace trove::io
