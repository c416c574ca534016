#pragma once
/// @file line_reader.hpp
/// @brief Fast line splitting of files and stdin, with transparent zstd/gzip decompression.
///
/// Rules:
///   - Lines end at '\n'; a '\r' right before it is dropped too ("\r\n"). A lone '\r' is an
///     ordinary character. The last line needs no newline; a final newline does not start
///     an extra empty line. Empty lines are returned (as empty text): skipping them is the
///     caller's policy.
///   - Line numbers are 1-based and count every line, empty and overlong ones included.
///   - A line longer than max_line_bytes is returned as its first max_line_bytes bytes together
///     with its true length (line::overlong()); the rest is skipped chunk by chunk, never held in
///     memory whole.
///   - Compressed input is recognized by its magic bytes, whatever the file name: zstd
///     (frames may be concatenated) and, in builds with zlib (TROVE_WITH_ZLIB), gzip (members may
///     be concatenated). A compressed stream that ends mid-frame is an error, not a short read.
///   - I/O and decompression errors throw std::runtime_error naming the path.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace trove::io {

/// @brief How the input of a line_reader is compressed.
enum class compression : std::uint8_t { none, zstd, gzip };

/// @brief Name of a compression ("none", "zstd", "gzip").
const char* to_string(compression kind) noexcept;

/// @brief Tuning of a line_reader.
struct line_reader_options {
  /// Bytes requested per read; large reads amortize system calls and decompressor calls.
  std::size_t chunk_bytes = std::size_t{4} << 20;
  /// Longer lines are reported as overlong; match the decoders' max_record_bytes.
  std::size_t max_line_bytes = std::size_t{1} << 20;
  /// When set, reads from pipes and terminals (stdin) wait at most 100 ms at a time and end the
  /// input once *cancel is true, so a stopping pipeline never hangs on a quiet producer.
  const std::atomic<bool>* cancel = nullptr;
};

/// @brief One line, valid until the next call to line_reader::next().
struct line {
  std::string_view text;     ///< the line without its terminator (cut to max_line_bytes)
  std::uint64_t number = 0;  ///< 1-based line number
  std::size_t length = 0;    ///< true length in bytes (larger than text.size() when overlong)

  /// @brief Whether the line was longer than max_line_bytes (text holds its beginning only).
  [[nodiscard]] bool overlong() const noexcept { return length > text.size(); }
};

/// @brief Reads a file, or stdin for "-", line by line with large buffered reads.
///
/// Memory is bounded by chunk_bytes + max_line_bytes (+ a decompressor window), whatever the
/// input. The returned text points into the reader's buffer: no copy per line.
class line_reader {
 public:
  /// @param path file to read; "-" reads standard input
  /// @throws std::runtime_error when the file cannot be opened (the message names the path)
  explicit line_reader(std::string path, line_reader_options options = {});
  ~line_reader();
  line_reader(const line_reader&) = delete;
  line_reader& operator=(const line_reader&) = delete;

  /// @brief Reads the next line into out.
  /// @return false at the end of the input — or, reading an uncompressed pipe with
  ///         options.cancel set, when no byte arrived for 100 ms: then idle() is true and the
  ///         caller may flush what it holds and call next() again
  /// @throws std::runtime_error on a read or decompression error
  [[nodiscard]] bool next(line& out);

  /// @brief Whether the last next() returned false only because the input was quiet.
  [[nodiscard]] bool idle() const noexcept { return idle_; }

  /// @brief The compression detected on the input.
  [[nodiscard]] compression input_compression() const noexcept;
  /// @brief The path given at construction.
  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  /// @brief Where the next line starts: decompressed bytes consumed by the lines returned so far
  /// (their terminators included). A checkpoint records it with line_number().
  [[nodiscard]] std::uint64_t offset() const noexcept { return bytes_read_ - (end_ - begin_); }
  /// @brief Lines returned so far (the number of the last one).
  [[nodiscard]] std::uint64_t line_number() const noexcept { return line_number_; }
  /// @brief Resumes at a position offset() and line_number() reported earlier for the same input
  /// (a checkpoint's). Call before the first next(). A regular uncompressed file is seeked; other
  /// inputs are read up to the offset and the bytes dropped.
  /// @throws std::runtime_error when the input ends before `offset` (it changed since)
  void resume_at(std::uint64_t offset, std::uint64_t line_number);
  /// @brief Decompressed bytes read so far (newlines included).
  [[nodiscard]] std::uint64_t bytes_read() const noexcept { return bytes_read_; }
  /// @brief Whether this build can read gzip input (it was compiled with zlib).
  [[nodiscard]] static bool gzip_supported() noexcept;

  class byte_source;  ///< raw or decompressing reader (defined in line_reader.cpp)

 private:
  void fill();
  bool finish_overlong(line& out);

  std::string path_;
  line_reader_options options_;
  std::unique_ptr<byte_source> source_;
  std::unique_ptr<char[]> buffer_;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;  // first unconsumed byte
  std::size_t end_ = 0;    // one past the last byte read
  bool eof_ = false;
  bool idle_ = false;
  std::uint64_t line_number_ = 0;
  std::uint64_t bytes_read_ = 0;
  // Overlong line being skipped: its first max_line_bytes bytes, bytes seen so far, and whether
  // the last byte seen was '\r' (it belongs to the terminator if '\n' follows).
  bool skipping_ = false;
  std::string overlong_prefix_;
  std::size_t overlong_length_ = 0;
  bool overlong_last_cr_ = false;
};

}  // namespace trove::io
