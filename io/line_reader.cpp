#include "io/line_reader.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

#if defined(TROVE_WITH_ZLIB)
#include <zlib.h>
#endif

namespace trove::io {

const char* to_string(compression kind) noexcept {
  switch (kind) {
    case compression::none:
      return "none";
    case compression::zstd:
      return "zstd";
    case compression::gzip:
      return "gzip";
  }
  return "unknown";
}

bool line_reader::gzip_supported() noexcept {
#if defined(TROVE_WITH_ZLIB)
  return true;
#else
  return false;
#endif
}

// ---- byte sources -----------------------------------------------------------------------------

/// A stream of (decompressed) bytes. read() returns 0 only at the end.
class line_reader::byte_source {
 public:
  virtual ~byte_source() = default;
  virtual std::size_t read(char* dst, std::size_t bytes) = 0;
  [[nodiscard]] virtual compression kind() const noexcept = 0;
  /// Whether the last read() returned 0 because no data arrived in time (not the end).
  [[nodiscard]] virtual bool idle() const noexcept { return false; }
  /// Moves to an absolute byte offset where that is cheap (a regular uncompressed file); false
  /// when the caller has to read up to it.
  virtual bool seek(std::uint64_t /*offset*/) { return false; }
};

namespace {

// Compressed bytes handed to a decompressor per read(2).
constexpr std::size_t k_compressed_chunk = std::size_t{1} << 20;

/// A file descriptor, with the first bytes read ahead to recognize a compression format.
class fd_source final : public line_reader::byte_source {
 public:
  fd_source(const std::string& path, const std::atomic<bool>* cancel)
      : path_(path), cancel_(cancel) {
    if (path == "-") {
      fd_ = STDIN_FILENO;
      owns_fd_ = false;
    } else {
      fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd_ < 0) {
        throw std::runtime_error(
            fmt::format("cannot open input '{}': {}", path, std::strerror(errno)));
      }
      // Read-ahead hint only; failure changes nothing.
      (void)::posix_fadvise(fd_, 0, 0, POSIX_FADV_SEQUENTIAL);
    }
    struct stat st {};
    regular_ = ::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode);
    while (peek_size_ < sizeof peek_) {
      const std::size_t got = raw_read(peek_ + peek_size_, sizeof peek_ - peek_size_);
      if (got == 0) break;
      peek_size_ += got;
    }
  }
  ~fd_source() override {
    if (owns_fd_ && fd_ >= 0) ::close(fd_);
  }

  /// The first (up to 4) bytes of the input, still to be returned by read().
  [[nodiscard]] std::string_view peek() const noexcept { return {peek_, peek_size_}; }

  std::size_t read(char* dst, std::size_t bytes) override {
    if (peek_pos_ < peek_size_) {
      const std::size_t count = std::min(bytes, peek_size_ - peek_pos_);
      std::memcpy(dst, peek_ + peek_pos_, count);
      peek_pos_ += count;
      return count;
    }
    return raw_read(dst, bytes);
  }
  [[nodiscard]] compression kind() const noexcept override { return compression::none; }
  [[nodiscard]] bool idle() const noexcept override { return idle_; }
  bool seek(std::uint64_t offset) override {
    if (!regular_) return false;
    struct stat st {};
    if (::fstat(fd_, &st) != 0 || static_cast<std::uint64_t>(st.st_size) < offset) return false;
    if (::lseek(fd_, static_cast<off_t>(offset), SEEK_SET) < 0) return false;
    peek_pos_ = peek_size_;  // the peeked bytes lie before the offset (or are read again)
    if (offset < peek_size_) {
      peek_pos_ = static_cast<std::size_t>(offset);
      ::lseek(fd_, static_cast<off_t>(peek_size_), SEEK_SET);
    }
    return true;
  }
  /// Uncompressed pipes only: a read that waited 100 ms for nothing returns 0 with idle() set.
  void report_idle() noexcept { report_idle_ = true; }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  std::size_t raw_read(char* dst, std::size_t bytes) {
    while (cancel_ != nullptr && !regular_) {  // wait for data in slices, watching for a stop
      pollfd ready{fd_, POLLIN, 0};
      const int polled = ::poll(&ready, 1, 100);
      if (polled > 0) break;
      if (polled < 0 && errno != EINTR) {
        throw std::runtime_error(fmt::format("cannot poll '{}': {}", path_, std::strerror(errno)));
      }
      if (cancel_->load(std::memory_order_relaxed)) return 0;  // stopping: the input ends here
      if (report_idle_) {
        idle_ = true;  // let the caller flush a lingering batch, then read again
        return 0;
      }
    }
    idle_ = false;
    for (;;) {
      const ssize_t got = ::read(fd_, dst, bytes);
      if (got >= 0) return static_cast<std::size_t>(got);
      if (errno == EINTR) continue;
      throw std::runtime_error(fmt::format("cannot read '{}': {}", path_, std::strerror(errno)));
    }
  }

  std::string path_;
  const std::atomic<bool>* cancel_ = nullptr;
  bool regular_ = false;
  bool report_idle_ = false;
  bool idle_ = false;
  int fd_ = -1;
  bool owns_fd_ = true;
  char peek_[4] = {};
  std::size_t peek_size_ = 0;
  std::size_t peek_pos_ = 0;
};

class zstd_source final : public line_reader::byte_source {
 public:
  explicit zstd_source(std::unique_ptr<fd_source> raw)
      : raw_(std::move(raw)), input_(k_compressed_chunk), stream_(ZSTD_createDStream()) {
    if (stream_ == nullptr) throw std::bad_alloc();
  }
  ~zstd_source() override { ZSTD_freeDStream(stream_); }

  std::size_t read(char* dst, std::size_t bytes) override {
    ZSTD_outBuffer out{dst, bytes, 0};
    while (out.pos < out.size) {
      if (in_.pos == in_.size && !raw_eof_) {
        // Hand back what is decoded rather than block on a pipe for more input.
        if (out.pos > 0) break;
        const std::size_t got = raw_->read(input_.data(), input_.size());
        if (got == 0) {
          raw_eof_ = true;
        } else {
          in_ = {input_.data(), got, 0};
        }
      }
      const std::size_t in_before = in_.pos;
      const std::size_t out_before = out.pos;
      const std::size_t hint = ZSTD_decompressStream(stream_, &out, &in_);
      if (ZSTD_isError(hint) != 0) {
        throw std::runtime_error(
            fmt::format("'{}': corrupt zstd stream: {}", raw_->path(), ZSTD_getErrorName(hint)));
      }
      if (in_.pos != in_before || out.pos != out_before) {
        // 0 means a frame just ended; another frame may follow (concatenated .zst files).
        // Only a call that did something says whether a frame is open: between frames an idle
        // call asks for the next frame's header.
        frame_open_ = hint != 0;
      } else if (raw_eof_) {
        // At the end of the input the decoder has flushed everything it buffered; a frame still
        // open means the stream was cut short.
        if (frame_open_) {
          throw std::runtime_error(
              fmt::format("'{}': truncated zstd stream (ends inside a frame)", raw_->path()));
        }
        break;
      }
    }
    return out.pos;
  }
  [[nodiscard]] compression kind() const noexcept override { return compression::zstd; }

 private:
  std::unique_ptr<fd_source> raw_;
  std::vector<char> input_;
  ZSTD_inBuffer in_{nullptr, 0, 0};
  ZSTD_DStream* stream_;
  bool raw_eof_ = false;
  bool frame_open_ = false;
};

#if defined(TROVE_WITH_ZLIB)
class gzip_source final : public line_reader::byte_source {
 public:
  explicit gzip_source(std::unique_ptr<fd_source> raw)
      : raw_(std::move(raw)), input_(k_compressed_chunk) {
    // 15 + 16: a gzip wrapper with the largest window.
    if (inflateInit2(&stream_, 15 + 16) != Z_OK) throw std::bad_alloc();
  }
  ~gzip_source() override { inflateEnd(&stream_); }

  std::size_t read(char* dst, std::size_t bytes) override {
    stream_.next_out = reinterpret_cast<Bytef*>(dst);
    // zlib counts in uInt; a shorter read is fine, the caller asks again.
    stream_.avail_out = static_cast<uInt>(std::min<std::size_t>(bytes, 1U << 30));
    const uInt requested = stream_.avail_out;
    while (stream_.avail_out > 0) {
      if (stream_.avail_in == 0 && !raw_eof_) {
        // Hand back what is decoded rather than block on a pipe for more input.
        if (stream_.avail_out < requested) break;
        const std::size_t got = raw_->read(input_.data(), input_.size());
        if (got == 0) {
          raw_eof_ = true;
        } else {
          stream_.next_in = reinterpret_cast<Bytef*>(input_.data());
          stream_.avail_in = static_cast<uInt>(got);
        }
      }
      if (!member_open_) {
        if (stream_.avail_in == 0) break;  // clean end after the last member
        // Concatenated members (e.g. `cat a.gz b.gz`) each start a fresh gzip stream.
        if (inflateReset(&stream_) != Z_OK) throw std::runtime_error("inflateReset failed");
        member_open_ = true;
      }
      const uInt before = stream_.avail_out;
      const int status = inflate(&stream_, Z_NO_FLUSH);
      if (status == Z_STREAM_END) {
        member_open_ = false;
      } else if (status != Z_OK && status != Z_BUF_ERROR) {
        throw std::runtime_error(fmt::format("'{}': corrupt gzip stream: {}", raw_->path(),
                                             stream_.msg != nullptr ? stream_.msg : "error"));
      } else if (raw_eof_ && stream_.avail_in == 0 && stream_.avail_out == before) {
        // No progress possible without more input, and there is none.
        throw std::runtime_error(
            fmt::format("'{}': truncated gzip stream (ends inside a member)", raw_->path()));
      }
    }
    return requested - stream_.avail_out;
  }
  [[nodiscard]] compression kind() const noexcept override { return compression::gzip; }

 private:
  std::unique_ptr<fd_source> raw_;
  std::vector<char> input_;
  z_stream stream_{};
  bool raw_eof_ = false;
  bool member_open_ = false;
};
#endif

std::unique_ptr<line_reader::byte_source> open_source(const std::string& path,
                                                      const std::atomic<bool>* cancel) {
  auto raw = std::make_unique<fd_source>(path, cancel);
  const std::string_view magic = raw->peek();
  if (magic.size() >= 4 && magic.substr(0, 4) == std::string_view("\x28\xB5\x2F\xFD", 4)) {
    return std::make_unique<zstd_source>(std::move(raw));
  }
  if (magic.size() >= 2 && magic.substr(0, 2) == std::string_view("\x1F\x8B", 2)) {
#if defined(TROVE_WITH_ZLIB)
    return std::make_unique<gzip_source>(std::move(raw));
#else
    throw std::runtime_error(
        fmt::format("'{}' is gzip-compressed, but this build has no zlib support", path));
#endif
  }
  raw->report_idle();
  return raw;
}

}  // namespace

// ---- line splitting ---------------------------------------------------------------------------

line_reader::line_reader(std::string path, line_reader_options options)
    : path_(std::move(path)), options_(options) {
  if (options_.chunk_bytes == 0 || options_.max_line_bytes == 0) {
    throw std::invalid_argument("line_reader: chunk_bytes and max_line_bytes must be positive");
  }
  source_ = open_source(path_, options_.cancel);
  // A partial line of up to max_line_bytes + 1 (a possible '\r') stays in the buffer while the
  // next chunk is read behind it.
  capacity_ = options_.chunk_bytes + options_.max_line_bytes + 1;
  buffer_ = std::make_unique_for_overwrite<char[]>(capacity_);
  overlong_prefix_.reserve(options_.max_line_bytes);
}

line_reader::~line_reader() = default;

compression line_reader::input_compression() const noexcept {
  return source_->kind();
}

void line_reader::resume_at(std::uint64_t offset, std::uint64_t line_number) {
  if (offset == 0 && line_number == 0) return;
  if (source_->seek(offset)) {
    bytes_read_ = offset;
  } else {
    // Compressed input or a pipe: read up to the offset and drop the bytes.
    while (bytes_read_ < offset) {
      const std::size_t want =
          static_cast<std::size_t>(std::min<std::uint64_t>(capacity_, offset - bytes_read_));
      const std::size_t got = source_->read(buffer_.get(), want);
      if (got == 0 && source_->idle()) continue;
      if (got == 0) break;
      bytes_read_ += got;
    }
    if (bytes_read_ < offset) {
      throw std::runtime_error(fmt::format(
          "input '{}' ends at byte {}, before the checkpoint's position {} (line {}): the input "
          "changed since the checkpoint; restore it, or start fresh with an empty checkpoint.dir",
          path_, bytes_read_, offset, line_number));
    }
  }
  begin_ = end_ = 0;
  line_number_ = line_number;
}

void line_reader::fill() {
  const std::size_t got = source_->read(buffer_.get() + end_, capacity_ - end_);
  idle_ = got == 0 && source_->idle();
  if (got == 0 && !idle_) eof_ = true;
  end_ += got;
  bytes_read_ += got;
}

bool line_reader::finish_overlong(line& out) {
  std::size_t length = overlong_length_;
  if (overlong_last_cr_) --length;
  skipping_ = false;
  out.text = overlong_prefix_;
  out.length = length;
  out.number = ++line_number_;
  return true;
}

bool line_reader::next(line& out) {
  char* const data = buffer_.get();
  const std::size_t max_line = options_.max_line_bytes;
  for (;;) {
    if (skipping_) {
      if (begin_ == end_) {
        if (eof_) return finish_overlong(out);
        begin_ = end_ = 0;  // nothing of the overlong line needs keeping
        fill();
        if (idle_) return false;
        continue;
      }
      const auto* newline =
          static_cast<const char*>(std::memchr(data + begin_, '\n', end_ - begin_));
      if (newline == nullptr) {
        overlong_length_ += end_ - begin_;
        overlong_last_cr_ = data[end_ - 1] == '\r';
        begin_ = end_;
        continue;
      }
      const auto stop = static_cast<std::size_t>(newline - data);
      if (stop > begin_) overlong_last_cr_ = data[stop - 1] == '\r';
      overlong_length_ += stop - begin_;
      begin_ = stop + 1;
      return finish_overlong(out);
    }

    // Hot path: one memchr over the buffered bytes per line, no copy.
    const auto* newline = static_cast<const char*>(std::memchr(data + begin_, '\n', end_ - begin_));
    if (newline != nullptr || (eof_ && begin_ < end_)) {
      const std::size_t stop = newline != nullptr ? static_cast<std::size_t>(newline - data) : end_;
      std::size_t length = stop - begin_;
      if (length > 0 && data[begin_ + length - 1] == '\r') --length;
      out.text = std::string_view(data + begin_, std::min(length, max_line));
      out.length = length;
      out.number = ++line_number_;
      begin_ = newline != nullptr ? stop + 1 : end_;
      return true;
    }
    if (eof_) return false;

    const std::size_t pending = end_ - begin_;
    if (pending > max_line + 1) {
      // Longer than any line we return whole, even allowing for a '\r': keep the beginning,
      // count the rest without storing it.
      overlong_prefix_.assign(data + begin_, max_line);
      overlong_length_ = pending;
      overlong_last_cr_ = data[end_ - 1] == '\r';
      skipping_ = true;
      begin_ = end_;
      continue;
    }
    // Move the partial line to the front so the next chunk lands right behind it.
    if (begin_ > 0) {
      std::memmove(data, data + begin_, pending);
      begin_ = 0;
      end_ = pending;
    }
    fill();
    if (idle_) return false;
  }
}

}  // namespace trove::io
