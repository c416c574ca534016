#include "io/batch.hpp"

#include <cassert>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>

namespace trove::io {

namespace {

constexpr std::size_t k_alignment = 64;

constexpr std::size_t align_up(std::size_t bytes) noexcept {
  return (bytes + k_alignment - 1) / k_alignment * k_alignment;
}

// a * b, throwing instead of wrapping: sizes come from user configuration.
std::size_t checked_mul(std::size_t a, std::size_t b, const char* what) {
  if (b != 0 && a > std::numeric_limits<std::size_t>::max() / b) {
    throw std::invalid_argument(std::string("host_batch: ") + what + " size overflows");
  }
  return a * b;
}

class aligned_heap_allocator final : public host_allocator {
 public:
  void* allocate(std::size_t bytes) override {
    return ::operator new (bytes, std::align_val_t{k_alignment});
  }
  void deallocate(void* ptr, std::size_t /*bytes*/) noexcept override {
    ::operator delete (ptr, std::align_val_t{k_alignment});
  }
};

}  // namespace

host_allocator& default_host_allocator() {
  static aligned_heap_allocator allocator;
  return allocator;
}

const char* to_string(field_type type) noexcept {
  switch (type) {
    case field_type::i64:
      return "i64";
    case field_type::u64:
      return "u64";
    case field_type::f64:
      return "f64";
    case field_type::timestamp_ms:
      return "timestamp_ms";
    case field_type::boolean:
      return "bool";
    case field_type::string:
      return "string";
  }
  return "unknown";
}

bool parse_field_type(std::string_view name, field_type& out) noexcept {
  if (name == "i64") {
    out = field_type::i64;
  } else if (name == "u64") {
    out = field_type::u64;
  } else if (name == "f64") {
    out = field_type::f64;
  } else if (name == "timestamp_ms") {
    out = field_type::timestamp_ms;
  } else if (name == "bool" || name == "boolean") {
    out = field_type::boolean;
  } else if (name == "string") {
    out = field_type::string;
  } else {
    return false;
  }
  return true;
}

int schema::index_of(std::string_view name) const noexcept {
  for (std::size_t field_idx = 0; field_idx < fields.size(); ++field_idx) {
    if (fields[field_idx].name == name) return static_cast<int>(field_idx);
  }
  return -1;
}

host_batch::host_batch(const io::schema& schema, std::size_t max_rows, std::size_t max_string_bytes,
                       host_allocator& allocator)
    : schema_(schema),
      allocator_(allocator),
      max_rows_(max_rows),
      max_string_bytes_(max_string_bytes),
      columns_(schema.fields.size()) {
  if (max_rows == 0) throw std::invalid_argument("host_batch: max_rows must be at least 1");
  // String offsets are 32-bit (Arrow's layout), so one column cannot address more bytes.
  if (max_string_bytes > std::numeric_limits<std::uint32_t>::max()) {
    throw std::invalid_argument("host_batch: max_string_bytes must be below 4 GiB (got " +
                                std::to_string(max_string_bytes) + ")");
  }

  // First pass computes the offset of every sub-array inside one block, so a batch costs one
  // allocation (one pinned registration on CUDA) however many columns it has.
  const std::size_t validity_bytes = align_up((max_rows + 7) / 8);
  const std::size_t fixed_bytes = align_up(checked_mul(max_rows, sizeof(std::uint64_t), "column"));
  const std::size_t offsets_bytes =
      align_up(checked_mul(max_rows + 1, sizeof(std::uint32_t), "offsets"));
  const std::size_t chars_bytes = align_up(max_string_bytes);
  const std::size_t positions_bytes =
      align_up(checked_mul(max_rows, sizeof(source_position), "positions"));

  std::size_t total = positions_bytes;
  for (const field& f : schema_.fields) {
    total += validity_bytes;
    total += f.type == field_type::string ? offsets_bytes + chars_bytes : fixed_bytes;
  }
  block_bytes_ = total;
  block_ = allocator_.allocate(block_bytes_);
  if (block_ == nullptr) throw std::bad_alloc();

  auto* base = static_cast<char*>(block_);
  // Sub-array alignment relies on the block itself being 64-byte aligned (pinned memory is
  // page-aligned; the default allocator asks for 64).
  assert(reinterpret_cast<std::uintptr_t>(base) % k_alignment == 0);
  std::size_t cursor = 0;
  positions_ = reinterpret_cast<source_position*>(base + cursor);
  cursor += positions_bytes;
  for (std::size_t column_idx = 0; column_idx < columns_.size(); ++column_idx) {
    column_storage& column = columns_[column_idx];
    column.validity = reinterpret_cast<std::uint8_t*>(base + cursor);
    // Zeroed once so the bitmap never exposes allocator garbage, even in padding bits.
    std::memset(column.validity, 0, validity_bytes);
    cursor += validity_bytes;
    if (schema_.fields[column_idx].type == field_type::string) {
      column.offsets = reinterpret_cast<std::uint32_t*>(base + cursor);
      cursor += offsets_bytes;
      column.chars = base + cursor;
      cursor += chars_bytes;
      column.offsets[0] = 0;
    } else {
      column.values = reinterpret_cast<std::uint64_t*>(base + cursor);
      cursor += fixed_bytes;
    }
  }
  assert(cursor == block_bytes_);
}

host_batch::~host_batch() {
  allocator_.deallocate(block_, block_bytes_);
}

void host_batch::clear() noexcept {
  rows_ = 0;
  records_.clear();
  keys_.clear();
  for (column_storage& column : columns_) {
    column.pending_end = 0;
    if (column.offsets != nullptr) column.offsets[0] = 0;
  }
}

std::uint64_t* host_batch::fixed(std::size_t column) noexcept {
  return columns_[column].values;
}

const std::uint64_t* host_batch::fixed(std::size_t column) const noexcept {
  return columns_[column].values;
}

const std::uint32_t* host_batch::offsets(std::size_t column) const noexcept {
  return columns_[column].offsets;
}

const char* host_batch::chars(std::size_t column) const noexcept {
  return columns_[column].chars;
}

const std::uint8_t* host_batch::validity(std::size_t column) const noexcept {
  return columns_[column].validity;
}

bool host_batch::is_valid(std::size_t column, std::size_t row) const noexcept {
  return (columns_[column].validity[row >> 3] >> (row & 7)) & 1U;
}

std::string_view host_batch::string_at(std::size_t column, std::size_t row) const noexcept {
  const column_storage& storage = columns_[column];
  const std::uint32_t begin = storage.offsets[row];
  return {storage.chars + begin, storage.offsets[row + 1] - begin};
}

namespace {

inline void set_valid_bit(std::uint8_t* validity, std::size_t row) noexcept {
  validity[row >> 3] = static_cast<std::uint8_t>(validity[row >> 3] | (1U << (row & 7)));
}

inline void clear_valid_bit(std::uint8_t* validity, std::size_t row) noexcept {
  validity[row >> 3] = static_cast<std::uint8_t>(validity[row >> 3] & ~(1U << (row & 7)));
}

}  // namespace

void host_batch::set_i64(std::size_t column, std::int64_t value) noexcept {
  set_u64(column, static_cast<std::uint64_t>(value));
}

void host_batch::set_u64(std::size_t column, std::uint64_t value) noexcept {
  assert(rows_ < max_rows_);
  column_storage& storage = columns_[column];
  assert(storage.values != nullptr);
  storage.values[rows_] = value;
  set_valid_bit(storage.validity, rows_);
}

void host_batch::set_f64(std::size_t column, double value) noexcept {
  std::uint64_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  set_u64(column, bits);
}

void host_batch::set_bool(std::size_t column, bool value) noexcept {
  set_u64(column, value ? 1U : 0U);
}

bool host_batch::set_string(std::size_t column, std::string_view value) noexcept {
  assert(rows_ < max_rows_);
  column_storage& storage = columns_[column];
  assert(storage.offsets != nullptr);
  // The row's bytes always start at offsets[rows_]: setting a string twice for one row replaces
  // the first value instead of concatenating, so a decoder never leaves stray bytes behind.
  const std::uint32_t begin = storage.offsets[rows_];
  if (value.size() > max_string_bytes_ - begin) return false;
  if (!value.empty()) std::memcpy(storage.chars + begin, value.data(), value.size());
  storage.pending_end = begin + static_cast<std::uint32_t>(value.size());
  storage.offsets[rows_ + 1] = storage.pending_end;
  set_valid_bit(storage.validity, rows_);
  return true;
}

void host_batch::set_null(std::size_t column) noexcept {
  assert(rows_ < max_rows_);
  column_storage& storage = columns_[column];
  clear_valid_bit(storage.validity, rows_);
  if (storage.offsets != nullptr) {
    storage.pending_end = storage.offsets[rows_];
    storage.offsets[rows_ + 1] = storage.pending_end;
  } else {
    // A defined value behind a null keeps hashing and copies deterministic.
    storage.values[rows_] = 0;
  }
}

void host_batch::commit_row(source_position position) noexcept {
  assert(rows_ < max_rows_);
  for (column_storage& column : columns_) {
    // Written here as well as in set_string() so a string column the builder never touched
    // still has a well-formed (empty) offset range.
    if (column.offsets != nullptr) column.offsets[rows_ + 1] = column.pending_end;
  }
  positions_[rows_] = position;
  ++rows_;
}

void host_batch::set_record(std::string_view text, std::string_view key) {
  assert(keep_records_ && rows_ > 0);
  // A row without text (never expected) would shift every later one: pad to the row first.
  while (records_.size() + 1 < rows_) {
    records_.push_back({});
    keys_.push_back({});
  }
  records_.push_back(text);
  keys_.push_back(key);
}

void host_batch::abort_row() noexcept {
  for (column_storage& column : columns_) {
    if (column.offsets != nullptr) column.pending_end = column.offsets[rows_];
  }
}

}  // namespace trove::io
