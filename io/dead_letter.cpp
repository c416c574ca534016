#include "io/dead_letter.hpp"
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <iterator>
#include <stdexcept>
#include <utility>

#include "io/encoder.hpp"  // append_json_string

namespace trove::io {

namespace {

// A stdio buffer this large turns a burst of dead letters into few write(2) calls.
constexpr std::size_t k_file_buffer_bytes = std::size_t{1} << 20;

// Largest cut <= limit that does not split a UTF-8 sequence. Only the bytes just before the cut
// are inspected: a sequence is at most 4 bytes long.
std::size_t utf8_cut(std::string_view text, std::size_t limit) noexcept {
  if (limit >= text.size()) return text.size();
  std::size_t cut = limit;
  for (std::size_t back = 0; back < 3 && cut > 0; ++back) {
    // text[cut] is the first byte left out; if it is a continuation byte, the character it
    // belongs to straddles the cut and moves out entirely.
    if ((static_cast<unsigned char>(text[cut]) & 0xC0) != 0x80) break;
    --cut;
  }
  // Not a continuation after 3 steps back means garbage bytes, not a split character: keep the
  // full limit (the escaper writes invalid bytes as \u00XX anyway).
  if ((static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) return limit;
  return cut;
}

}  // namespace

dead_letter_writer::dead_letter_writer(std::string path, std::size_t max_record_bytes)
    : path_(std::move(path)), max_record_bytes_(max_record_bytes) {
  if (path_.empty()) return;
  file_ = std::fopen(path_.c_str(), "ab");
  if (file_ == nullptr) {
    throw std::runtime_error(
        fmt::format("cannot open dead-letter file '{}': {}", path_, std::strerror(errno)));
  }
  std::setvbuf(file_, nullptr, _IOFBF, k_file_buffer_bytes);
}

dead_letter_writer::~dead_letter_writer() {
  if (file_ != nullptr) std::fclose(file_);
}

void dead_letter_writer::write(std::string_view reason, std::string_view source,
                               source_position position, std::string_view record,
                               std::size_t original_bytes) {
  const std::size_t total = std::max(original_bytes, record.size());
  const std::size_t kept = utf8_cut(record, max_record_bytes_);
  const bool truncated = kept < total;
  records_.fetch_add(1, std::memory_order_relaxed);
  if (truncated) truncated_.fetch_add(1, std::memory_order_relaxed);
  if (file_ == nullptr) return;

  std::lock_guard<std::mutex> lock(mutex_);
  line_.clear();
  line_.append("{\"reason\":");
  append_json_string(line_, reason);
  line_.append(",\"source\":");
  append_json_string(line_, source);
  fmt::format_to(std::back_inserter(line_),
                 ",\"partition\":{},\"offset\":{},\"record\":", position.partition,
                 position.offset);
  append_json_string(line_, record.substr(0, kept));
  fmt::format_to(std::back_inserter(line_), ",\"record_bytes\":{}", total);
  if (truncated) line_.append(",\"truncated\":true");
  line_.append("}\n");
  if (std::fwrite(line_.data(), 1, line_.size(), file_) != line_.size()) {
    throw std::runtime_error(
        fmt::format("cannot write dead-letter file '{}': {}", path_, std::strerror(errno)));
  }
  bytes_.fetch_add(line_.size(), std::memory_order_relaxed);
}

void dead_letter_writer::flush() {
  if (file_ == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (std::fflush(file_) != 0) {
    throw std::runtime_error(
        fmt::format("cannot flush dead-letter file '{}': {}", path_, std::strerror(errno)));
  }
}

std::uint64_t dead_letter_writer::length() {
  if (file_ == nullptr) return 0;
  std::lock_guard<std::mutex> lock(mutex_);
  if (std::fflush(file_) != 0) {
    throw std::runtime_error(
        fmt::format("cannot flush dead-letter file '{}': {}", path_, std::strerror(errno)));
  }
  struct stat st {};
  if (::fstat(::fileno(file_), &st) != 0) {
    throw std::runtime_error(
        fmt::format("cannot stat dead-letter file '{}': {}", path_, std::strerror(errno)));
  }
  return static_cast<std::uint64_t>(st.st_size);
}

void dead_letter_writer::sync() {
  if (file_ == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0) {
    throw std::runtime_error(
        fmt::format("cannot sync dead-letter file '{}': {}", path_, std::strerror(errno)));
  }
}

void dead_letter_writer::truncate_to(std::uint64_t length) {
  if (file_ == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  struct stat st {};
  if (std::fflush(file_) != 0 || ::fstat(::fileno(file_), &st) != 0) {
    throw std::runtime_error(
        fmt::format("cannot read dead-letter file '{}': {}", path_, std::strerror(errno)));
  }
  if (static_cast<std::uint64_t>(st.st_size) < length) {
    throw std::runtime_error(fmt::format(
        "dead-letter file '{}' holds {} bytes, fewer than the {} the checkpoint recorded: it was "
        "changed since; restore it, or start fresh with an empty checkpoint.dir",
        path_, st.st_size, length));
  }
  if (::ftruncate(::fileno(file_), static_cast<off_t>(length)) != 0) {
    throw std::runtime_error(
        fmt::format("cannot truncate dead-letter file '{}': {}", path_, std::strerror(errno)));
  }
}

}  // namespace trove::io
