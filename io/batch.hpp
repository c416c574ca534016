#pragma once
/// @file batch.hpp
/// @brief Columnar host batches (struct of arrays, Arrow-like) that decoders write straight into.
///
/// Layout per column:
///   - fixed-width types (i64, u64, f64, timestamp_ms, boolean): 8 bytes per row, so every
///     fixed-width column is one contiguous array a kernel can read without conversion
///     (boolean is stored as a u64 0/1);
///   - string: `size()+1` u32 offsets into a byte buffer;
///   - every column: a validity bitmap (bit set = value present; LSB-first like Arrow).
/// Each row also carries its source position (partition, offset) so offsets can be committed
/// exactly. The memory comes from a host_allocator (pinned memory on the CUDA backend), sized once:
/// a batch never reallocates, it reports "full" instead.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "io/record_list.hpp"

namespace trove::io {

/// @brief Type of a schema field.
enum class field_type : std::uint8_t { i64, u64, f64, timestamp_ms, boolean, string };

/// @brief Name of a field type as written in a config ("i64", "timestamp_ms", ...).
const char* to_string(field_type type) noexcept;
/// @brief Parses a field type name; returns false when unknown.
bool parse_field_type(std::string_view name, field_type& out) noexcept;

/// @brief One named, typed field of the input schema.
struct field {
  std::string name;
  field_type type = field_type::i64;
  bool required = true;  ///< a missing required field makes the record bad; optional → null
};

/// @brief The ordered fields a pipeline reads; column i of a batch holds field i.
struct schema {
  std::vector<field> fields;
  /// @brief Index of the field with this name, or -1.
  [[nodiscard]] int index_of(std::string_view name) const noexcept;
};

/// @brief Where host batch memory comes from (the runtime passes pinned memory on CUDA).
class host_allocator {
 public:
  virtual ~host_allocator() = default;
  virtual void* allocate(std::size_t bytes) = 0;
  virtual void deallocate(void* ptr, std::size_t bytes) noexcept = 0;
};

/// @brief 64-byte aligned memory from the C++ heap.
host_allocator& default_host_allocator();

/// @brief Where a record came from: (partition, offset) for Kafka; (0, line/record number) for files.
struct source_position {
  std::int32_t partition = 0;
  std::int64_t offset = 0;
};

/// @brief A fixed-capacity columnar batch of decoded records.
class host_batch {
 public:
  /// @param max_rows rows the batch can hold
  /// @param max_string_bytes bytes each string column can hold
  host_batch(const schema& schema, std::size_t max_rows, std::size_t max_string_bytes,
             host_allocator& allocator = default_host_allocator());
  host_batch(const host_batch&) = delete;
  host_batch& operator=(const host_batch&) = delete;
  ~host_batch();

  [[nodiscard]] const io::schema& schema() const noexcept { return schema_; }
  [[nodiscard]] std::size_t size() const noexcept { return rows_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return max_rows_; }
  [[nodiscard]] bool full() const noexcept { return rows_ == max_rows_; }
  [[nodiscard]] std::size_t string_capacity() const noexcept { return max_string_bytes_; }
  /// @brief Drops every row (keeps the memory).
  void clear() noexcept;

  // ---- column access (column index = schema field index) ----
  /// @brief 8-byte values of a fixed-width column (reinterpret as int64/uint64/double).
  [[nodiscard]] std::uint64_t* fixed(std::size_t column) noexcept;
  [[nodiscard]] const std::uint64_t* fixed(std::size_t column) const noexcept;
  /// @brief Offsets (size()+1 entries) of a string column.
  [[nodiscard]] const std::uint32_t* offsets(std::size_t column) const noexcept;
  /// @brief Bytes of a string column.
  [[nodiscard]] const char* chars(std::size_t column) const noexcept;
  /// @brief Validity bitmap (bit row set = present).
  [[nodiscard]] const std::uint8_t* validity(std::size_t column) const noexcept;
  /// @brief Whether row's value in column is present.
  [[nodiscard]] bool is_valid(std::size_t column, std::size_t row) const noexcept;
  /// @brief The string value of a row (empty when null).
  [[nodiscard]] std::string_view string_at(std::size_t column, std::size_t row) const noexcept;
  [[nodiscard]] const source_position* positions() const noexcept { return positions_; }

  // ---- row building (used by decoders and generators) ----
  // A row is built with set_*() on the row index size() and published by commit_row();
  // abort_row() discards a half-built row (a bad record) and leaves the batch unchanged.
  void set_i64(std::size_t column, std::int64_t value) noexcept;
  void set_u64(std::size_t column, std::uint64_t value) noexcept;
  void set_f64(std::size_t column, double value) noexcept;
  void set_bool(std::size_t column, bool value) noexcept;
  /// @brief Appends the current row's string bytes to the column; false when the column's bytes
  /// are full. A second call for the same row replaces the first value (no concatenation).
  [[nodiscard]] bool set_string(std::size_t column, std::string_view value) noexcept;
  void set_null(std::size_t column) noexcept;
  void commit_row(source_position position) noexcept;
  void abort_row() noexcept;

  // ---- records as received (forwarding outputs) ----
  // The raw bytes never go to the device: they live in ordinary heap memory beside the columns.
  /// @brief Keep each committed row's record text (set_record() after commit_row()).
  void keep_records(bool on) noexcept { keep_records_ = on; }
  [[nodiscard]] bool keeps_records() const noexcept { return keep_records_; }
  /// @brief The text of the row just committed (the last one), as the source received it, and
  /// its message key (Kafka; empty: none).
  void set_record(std::string_view text, std::string_view key = {});
  /// @brief Whether every row has its record text (a source that reads records; the synthetic
  /// generator writes columns only).
  [[nodiscard]] bool has_records() const noexcept {
    return keep_records_ && rows_ > 0 && records_.size() == rows_;
  }
  /// @brief A row's record text (has_records() must hold).
  [[nodiscard]] std::string_view record(std::size_t row) const noexcept { return records_[row]; }
  /// @brief A row's message key (empty: none).
  [[nodiscard]] std::string_view record_key(std::size_t row) const noexcept { return keys_[row]; }
  /// @brief The line before the records that a reader needs to read them (a CSV header); set by
  /// the source, kept across clear().
  void set_record_header(std::string_view header) { record_header_ = header; }
  [[nodiscard]] const std::string& record_header() const noexcept { return record_header_; }

 private:
  struct column_storage {
    std::uint64_t* values = nullptr;   // fixed-width
    std::uint32_t* offsets = nullptr;  // string
    char* chars = nullptr;             // string
    std::uint8_t* validity = nullptr;
    std::uint32_t pending_end = 0;     // string bytes used including the row being built
  };
  io::schema schema_;
  host_allocator& allocator_;
  std::size_t max_rows_;
  std::size_t max_string_bytes_;
  std::size_t rows_ = 0;
  std::vector<column_storage> columns_;
  source_position* positions_ = nullptr;
  bool keep_records_ = false;
  record_list records_;
  record_list keys_;
  std::string record_header_;
  void* block_ = nullptr;
  std::size_t block_bytes_ = 0;
};

}  // namespace trove::io
