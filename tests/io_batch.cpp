#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "io/batch.hpp"

namespace trove::io {
namespace {

schema mixed_schema() {
  return schema{{{"id", field_type::u64, true},
                 {"name", field_type::string, true},
                 {"delta", field_type::i64, false},
                 {"amount", field_type::f64, false},
                 {"ts", field_type::timestamp_ms, true},
                 {"flag", field_type::boolean, false},
                 {"tag", field_type::string, false}}};
}

/// Counts calls, so tests can check that a batch makes exactly one allocation.
class counting_allocator final : public host_allocator {
 public:
  void* allocate(std::size_t bytes) override {
    ++allocations;
    allocated_bytes = bytes;
    return default_host_allocator().allocate(bytes);
  }
  void deallocate(void* ptr, std::size_t bytes) noexcept override {
    ++deallocations;
    deallocated_bytes = bytes;
    default_host_allocator().deallocate(ptr, bytes);
  }
  int allocations = 0;
  int deallocations = 0;
  std::size_t allocated_bytes = 0;
  std::size_t deallocated_bytes = 0;
};

bool aligned64(const void* ptr) {
  return reinterpret_cast<std::uintptr_t>(ptr) % 64 == 0;
}

double as_double(std::uint64_t bits) {
  double value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

TEST(IoFieldType, NamesRoundTrip) {
  for (field_type type : {field_type::i64, field_type::u64, field_type::f64,
                          field_type::timestamp_ms, field_type::boolean, field_type::string}) {
    field_type parsed = field_type::i64;
    ASSERT_TRUE(parse_field_type(to_string(type), parsed)) << to_string(type);
    EXPECT_EQ(parsed, type);
  }
  EXPECT_STREQ(to_string(field_type::boolean), "bool");
  EXPECT_STREQ(to_string(field_type::timestamp_ms), "timestamp_ms");
}

TEST(IoFieldType, AcceptsBooleanAliasAndRejectsUnknown) {
  field_type parsed = field_type::i64;
  ASSERT_TRUE(parse_field_type("boolean", parsed));
  EXPECT_EQ(parsed, field_type::boolean);
  parsed = field_type::f64;
  EXPECT_FALSE(parse_field_type("int", parsed));
  EXPECT_FALSE(parse_field_type("", parsed));
  EXPECT_FALSE(parse_field_type("I64", parsed));
  EXPECT_EQ(parsed, field_type::f64);  // untouched on failure
}

TEST(IoSchema, IndexOf) {
  const schema s = mixed_schema();
  EXPECT_EQ(s.index_of("id"), 0);
  EXPECT_EQ(s.index_of("tag"), 6);
  EXPECT_EQ(s.index_of("missing"), -1);
  EXPECT_EQ(s.index_of(""), -1);
}

TEST(IoBatch, OneAllocationAllSubArraysAligned) {
  counting_allocator allocator;
  {
    host_batch batch(mixed_schema(), 1000, 4096, allocator);
    EXPECT_EQ(allocator.allocations, 1);
    EXPECT_EQ(batch.capacity(), 1000U);
    EXPECT_EQ(batch.string_capacity(), 4096U);
    EXPECT_EQ(batch.size(), 0U);
    EXPECT_FALSE(batch.full());
    EXPECT_TRUE(aligned64(batch.positions()));
    for (std::size_t column = 0; column < batch.schema().fields.size(); ++column) {
      EXPECT_TRUE(aligned64(batch.validity(column))) << column;
      if (batch.schema().fields[column].type == field_type::string) {
        EXPECT_TRUE(aligned64(batch.offsets(column))) << column;
        EXPECT_TRUE(aligned64(batch.chars(column))) << column;
        EXPECT_EQ(batch.offsets(column)[0], 0U);
        EXPECT_EQ(batch.fixed(column), nullptr);
      } else {
        EXPECT_TRUE(aligned64(batch.fixed(column))) << column;
        EXPECT_EQ(batch.offsets(column), nullptr);
      }
    }
  }
  EXPECT_EQ(allocator.deallocations, 1);
  EXPECT_EQ(allocator.deallocated_bytes, allocator.allocated_bytes);
}

TEST(IoBatch, KeptRecordsFollowTheirRowsAndClearWithTheBatch) {
  host_batch batch(mixed_schema(), 8, 256);
  EXPECT_FALSE(batch.has_records());  // records are kept only when asked for
  batch.keep_records(true);
  EXPECT_FALSE(batch.has_records());  // no rows yet
  std::vector<std::string> texts;
  std::vector<std::string> keys;
  std::mt19937_64 rng(2);
  for (int row = 0; row < 8; ++row) {
    batch.set_u64(0, static_cast<std::uint64_t>(row));
    if (row == 3) {  // a bad record: aborted, leaves no text behind
      batch.abort_row();
      continue;
    }
    batch.commit_row({row % 2, row});
    texts.push_back(std::string(rng() % 40, static_cast<char>('a' + row)));
    keys.push_back(row % 3 ? "k" + std::to_string(row) : "");
    batch.set_record(texts.back(), keys.back());
  }
  ASSERT_TRUE(batch.has_records());
  ASSERT_EQ(batch.size(), texts.size());
  for (std::size_t row = 0; row < batch.size(); ++row) {
    EXPECT_EQ(batch.record(row), texts[row]) << row;
    EXPECT_EQ(batch.record_key(row), keys[row]) << row;
  }
  batch.set_record_header("id,name");
  batch.clear();
  EXPECT_FALSE(batch.has_records());
  EXPECT_EQ(batch.record_header(), "id,name");  // a source's header outlives its batches
  batch.commit_row({0, 0});
  batch.set_record("again");
  EXPECT_EQ(batch.record(0), "again");
  EXPECT_EQ(batch.record_key(0), "");
}

TEST(IoBatch, RejectsBadSizes) {
  EXPECT_THROW(host_batch(mixed_schema(), 0, 16), std::invalid_argument);
  EXPECT_THROW(host_batch(mixed_schema(), 4, std::size_t{1} << 33), std::invalid_argument);
}

TEST(IoBatch, StoresEveryType) {
  host_batch batch(mixed_schema(), 4, 64);
  batch.set_u64(0, UINT64_MAX);
  ASSERT_TRUE(batch.set_string(1, "alice"));
  batch.set_i64(2, INT64_MIN);
  batch.set_f64(3, -2.5);
  batch.set_i64(4, 1704067200123);
  batch.set_bool(5, true);
  ASSERT_TRUE(batch.set_string(6, ""));
  batch.commit_row({3, 42});

  ASSERT_EQ(batch.size(), 1U);
  EXPECT_EQ(batch.fixed(0)[0], UINT64_MAX);
  EXPECT_EQ(batch.string_at(1, 0), "alice");
  EXPECT_EQ(static_cast<std::int64_t>(batch.fixed(2)[0]), INT64_MIN);
  EXPECT_EQ(as_double(batch.fixed(3)[0]), -2.5);
  EXPECT_EQ(static_cast<std::int64_t>(batch.fixed(4)[0]), 1704067200123);
  EXPECT_EQ(batch.fixed(5)[0], 1U);  // boolean is a u64 0/1
  EXPECT_EQ(batch.string_at(6, 0), "");
  EXPECT_TRUE(batch.is_valid(6, 0));  // empty string is not null
  for (std::size_t column = 0; column < 7; ++column) EXPECT_TRUE(batch.is_valid(column, 0));
  EXPECT_EQ(batch.positions()[0].partition, 3);
  EXPECT_EQ(batch.positions()[0].offset, 42);
}

TEST(IoBatch, NullsClearValidityAndGiveEmptyStrings) {
  host_batch batch(mixed_schema(), 4, 64);
  batch.set_u64(0, 1);
  ASSERT_TRUE(batch.set_string(1, "x"));
  batch.set_null(2);
  batch.set_null(3);
  batch.set_i64(4, 0);
  batch.set_null(5);
  batch.set_null(6);
  batch.commit_row({});
  EXPECT_FALSE(batch.is_valid(2, 0));
  EXPECT_FALSE(batch.is_valid(3, 0));
  EXPECT_FALSE(batch.is_valid(5, 0));
  EXPECT_FALSE(batch.is_valid(6, 0));
  EXPECT_EQ(batch.fixed(2)[0], 0U);  // defined value behind a null
  EXPECT_EQ(batch.string_at(6, 0), "");
  EXPECT_EQ(batch.offsets(6)[1], batch.offsets(6)[0]);
}

TEST(IoBatch, SetNullAfterSetStringDropsTheBytes) {
  const schema s{{{"s", field_type::string, false}}};
  host_batch batch(s, 4, 64);
  ASSERT_TRUE(batch.set_string(0, "abc"));
  batch.set_null(0);
  batch.commit_row({});
  ASSERT_TRUE(batch.set_string(0, "de"));
  batch.commit_row({});
  EXPECT_FALSE(batch.is_valid(0, 0));
  EXPECT_EQ(batch.string_at(0, 1), "de");
  EXPECT_EQ(batch.offsets(0)[2], 2U);
}

TEST(IoBatch, ValidityIsLsbFirstBitmap) {
  const schema s{{{"v", field_type::i64, false}}};
  host_batch batch(s, 20, 0);
  // Present on rows 0, 2, 3, 9, 10; null elsewhere.
  const std::vector<bool> present = {true,  false, true, true, false, false, false,
                                     false, false, true, true, false, false, false};
  for (const bool p : present) {
    if (p) {
      batch.set_i64(0, 7);
    } else {
      batch.set_null(0);
    }
    batch.commit_row({});
  }
  const std::uint8_t* bits = batch.validity(0);
  EXPECT_EQ(bits[0], 0b00001101);
  EXPECT_EQ(bits[1] & 0b00111111, 0b00000110);
}

TEST(IoBatch, StringOffsetsAccumulate) {
  const schema s{{{"s", field_type::string, true}}};
  host_batch batch(s, 8, 64);
  const std::vector<std::string> values = {"a", "", "bcd", "efgh"};
  for (const auto& value : values) {
    ASSERT_TRUE(batch.set_string(0, value));
    batch.commit_row({});
  }
  const std::uint32_t* offsets = batch.offsets(0);
  EXPECT_EQ(offsets[0], 0U);
  EXPECT_EQ(offsets[1], 1U);
  EXPECT_EQ(offsets[2], 1U);
  EXPECT_EQ(offsets[3], 4U);
  EXPECT_EQ(offsets[4], 8U);
  EXPECT_EQ(std::string(batch.chars(0), 8), "abcdefgh");
  for (std::size_t row = 0; row < values.size(); ++row) {
    EXPECT_EQ(batch.string_at(0, row), values[row]);
  }
}

TEST(IoBatch, SecondSetStringReplacesTheFirst) {
  const schema s{{{"s", field_type::string, true}}};
  host_batch batch(s, 8, 64);
  ASSERT_TRUE(batch.set_string(0, "first"));
  ASSERT_TRUE(batch.set_string(0, "2nd"));
  batch.commit_row({});
  EXPECT_EQ(batch.string_at(0, 0), "2nd");
  EXPECT_EQ(batch.offsets(0)[1], 3U);
}

TEST(IoBatch, AbortRowRollsBackStringBytes) {
  const schema s{{{"s", field_type::string, true}, {"n", field_type::i64, true}}};
  host_batch batch(s, 8, 64);
  ASSERT_TRUE(batch.set_string(0, "keep"));
  batch.set_i64(1, 1);
  batch.commit_row({0, 1});
  ASSERT_TRUE(batch.set_string(0, "discarded"));
  batch.set_i64(1, 2);
  batch.abort_row();
  EXPECT_EQ(batch.size(), 1U);
  ASSERT_TRUE(batch.set_string(0, "xy"));
  batch.set_i64(1, 3);
  batch.commit_row({0, 3});
  ASSERT_EQ(batch.size(), 2U);
  EXPECT_EQ(batch.string_at(0, 0), "keep");
  EXPECT_EQ(batch.string_at(0, 1), "xy");
  EXPECT_EQ(batch.offsets(0)[2], 6U);
  EXPECT_EQ(std::string(batch.chars(0), 6), "keepxy");
  EXPECT_EQ(batch.positions()[1].offset, 3);
}

TEST(IoBatch, StringBytesFullReportsFalse) {
  const schema s{{{"s", field_type::string, true}}};
  host_batch batch(s, 8, 10);
  ASSERT_TRUE(batch.set_string(0, "123456"));
  batch.commit_row({});
  EXPECT_FALSE(batch.set_string(0, "12345"));  // 6 + 5 > 10
  EXPECT_TRUE(batch.set_string(0, "1234"));    // exactly fills
  batch.commit_row({});
  EXPECT_EQ(batch.offsets(0)[2], 10U);
  EXPECT_FALSE(batch.set_string(0, "x"));
  EXPECT_TRUE(batch.set_string(0, ""));  // an empty string always fits
}

TEST(IoBatch, FullAndClear) {
  const schema s{{{"s", field_type::string, false}, {"n", field_type::u64, true}}};
  host_batch batch(s, 2, 16);
  for (int row = 0; row < 2; ++row) {
    ASSERT_TRUE(batch.set_string(0, "abcd"));
    batch.set_u64(1, static_cast<std::uint64_t>(row));
    batch.commit_row({});
  }
  EXPECT_TRUE(batch.full());
  batch.clear();
  EXPECT_EQ(batch.size(), 0U);
  EXPECT_FALSE(batch.full());
  EXPECT_EQ(batch.offsets(0)[0], 0U);
  // The bytes are reusable from the start after clear().
  batch.set_null(0);
  batch.set_u64(1, 9);
  batch.commit_row({});
  ASSERT_TRUE(batch.set_string(0, "0123456789abcdef"));
  batch.set_u64(1, 10);
  batch.commit_row({});
  EXPECT_FALSE(batch.is_valid(0, 0));
  EXPECT_EQ(batch.string_at(0, 0), "");
  EXPECT_EQ(batch.string_at(0, 1), "0123456789abcdef");
}

TEST(IoBatch, UntouchedStringColumnCommitsEmpty) {
  const schema s{{{"s", field_type::string, false}}};
  host_batch batch(s, 4, 16);
  ASSERT_TRUE(batch.set_string(0, "ab"));
  batch.commit_row({});
  batch.set_null(0);
  batch.commit_row({});
  EXPECT_EQ(batch.offsets(0)[2], 2U);
}

TEST(IoBatch, RandomRowsMatchReference) {
  // Randomized build/abort/commit sequences, reused through clear(), against a plain model.
  const schema s{{{"n", field_type::i64, false}, {"s", field_type::string, false}}};
  host_batch batch(s, 300, 1 << 14);
  for (unsigned seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    batch.clear();
    struct row_model {
      bool n_valid;
      std::int64_t n;
      bool s_valid;
      std::string s;
    };
    std::vector<row_model> model;
    while (!batch.full()) {
      row_model row{rng() % 3 != 0, static_cast<std::int64_t>(rng()), rng() % 4 != 0,
                    std::string(rng() % 40, static_cast<char>('a' + rng() % 26))};
      if (row.n_valid) {
        batch.set_i64(0, row.n);
      } else {
        batch.set_null(0);
      }
      bool fits = true;
      if (row.s_valid) {
        fits = batch.set_string(1, row.s);
      } else {
        batch.set_null(1);
      }
      if (!fits || rng() % 5 == 0) {
        batch.abort_row();
        if (!fits) break;
        continue;
      }
      batch.commit_row({0, static_cast<std::int64_t>(model.size())});
      model.push_back(row);
    }
    ASSERT_EQ(batch.size(), model.size());
    for (std::size_t row = 0; row < model.size(); ++row) {
      ASSERT_EQ(batch.is_valid(0, row), model[row].n_valid) << seed << " " << row;
      if (model[row].n_valid) {
        ASSERT_EQ(static_cast<std::int64_t>(batch.fixed(0)[row]), model[row].n);
      }
      ASSERT_EQ(batch.is_valid(1, row), model[row].s_valid);
      ASSERT_EQ(batch.string_at(1, row), model[row].s_valid ? model[row].s : std::string());
      ASSERT_EQ(batch.positions()[row].offset, static_cast<std::int64_t>(row));
    }
  }
}

}  // namespace
}  // namespace trove::io
