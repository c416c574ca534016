#pragma once
/// @file dead_letter.hpp
/// @brief The dead-letter sink: where bad records go, with the reason and source position.
///
/// Each bad record becomes one JSON line:
///   {"reason":"...","source":"<file path or topic>","partition":0,"offset":17,
///    "record":"<raw record>","record_bytes":1234[,"truncated":true]}
/// - "record" is the raw record as a JSON string. Valid UTF-8 is kept as is; every byte that is
///   not part of valid UTF-8 is written as \u00XX, the byte's Latin-1 reading (so 0xFF becomes
///   \u00ff), which keeps every dead-letter line valid JSON. A reader that needs the original
///   bytes of such a record maps code points U+0080..U+00FF that came from escapes back to bytes;
///   for binary input the source itself is the authority.
/// - The stored record is cut to max_record_bytes (default 64 KiB, at a UTF-8 character
///   boundary), so a 10 MB garbage line yields a small dead letter; "truncated":true marks a cut
///   and "record_bytes" always gives the original length in bytes.
/// - The file is opened for appending (earlier dead letters survive a restart). Without a path
///   records are counted and discarded.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>

#include "io/batch.hpp"  // source_position

namespace trove::io {

/// @brief Default cap on the raw record bytes stored in one dead letter (64 KiB).
inline constexpr std::size_t default_dead_letter_record_bytes = std::size_t{64} << 10;

/// @brief Writes bad records as JSON lines to a file, or counts and discards them.
///
/// Thread-safe: decoders on several threads may share one writer (a mutex serializes writes;
/// bad records are rare, so it is not contended).
class dead_letter_writer {
 public:
  /// @param path file to append to; empty to discard (records are still counted)
  /// @param max_record_bytes raw record bytes kept per dead letter
  /// @throws std::runtime_error when the file cannot be opened (the message names the path)
  explicit dead_letter_writer(std::string path = {},
                              std::size_t max_record_bytes = default_dead_letter_record_bytes);
  ~dead_letter_writer();
  dead_letter_writer(const dead_letter_writer&) = delete;
  dead_letter_writer& operator=(const dead_letter_writer&) = delete;

  /// @brief Records one bad record.
  /// @param reason why it is bad (a decoder's decode_result::reason)
  /// @param source the file path or topic it came from
  /// @throws std::runtime_error when the file cannot be written (e.g. disk full)
  /// @param original_bytes the record's true length when `record` is already a cut prefix (an
  ///        overlong line the reader did not keep whole); 0 = record.size()
  void write(std::string_view reason, std::string_view source, source_position position,
             std::string_view record, std::size_t original_bytes = 0);

  /// @brief Flushes buffered lines to the operating system (before a checkpoint is declared).
  /// @throws std::runtime_error when the file cannot be written
  void flush();

  /// @brief Flushes and returns the file's length in bytes (0 when discarding): the position a
  /// checkpoint records.
  /// @throws std::runtime_error when the file cannot be written
  [[nodiscard]] std::uint64_t length();

  /// @brief Flushes and makes the file durable (fsync).
  /// @throws std::runtime_error when that fails
  void sync();

  /// @brief Recovery: cuts the file back to `length` (a checkpoint's), so the dead letters of
  /// records after the checkpoint are written once more and only once.
  /// @throws std::runtime_error when the file is shorter or cannot be truncated
  void truncate_to(std::uint64_t length);

  /// @brief Whether lines go to a file (false: discarded).
  [[nodiscard]] bool enabled() const noexcept { return file_ != nullptr; }
  /// @brief The file path given at construction (empty when discarding).
  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  /// @brief Bad records handed to write(), written or discarded.
  [[nodiscard]] std::uint64_t records() const noexcept { return records_.load(); }
  /// @brief Records whose raw text was cut to max_record_bytes.
  [[nodiscard]] std::uint64_t truncated_records() const noexcept { return truncated_.load(); }
  /// @brief Bytes written to the file (0 when discarding).
  [[nodiscard]] std::uint64_t bytes_written() const noexcept { return bytes_.load(); }

 private:
  std::string path_;
  std::size_t max_record_bytes_;
  std::FILE* file_ = nullptr;
  std::mutex mutex_;
  std::string line_;  // reused line buffer, guarded by mutex_
  std::atomic<std::uint64_t> records_{0};
  std::atomic<std::uint64_t> truncated_{0};
  std::atomic<std::uint64_t> bytes_{0};
};

}  // namespace trove::io
