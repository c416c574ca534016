#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "io/line_reader.hpp"

namespace trove::io {
namespace {

namespace fs = std::filesystem;

struct expected_line {
  std::string text;
  std::size_t length;
  bool operator==(const expected_line&) const = default;
};

std::ostream& operator<<(std::ostream& os, const expected_line& line) {
  return os << "{\"" << line.text.substr(0, 40) << "\", " << line.length << "}";
}

/// The rules of line_reader.hpp, applied the slow and obvious way.
std::vector<expected_line> reference_lines(const std::string& content, std::size_t max_line) {
  std::vector<expected_line> lines;
  std::size_t begin = 0;
  while (begin < content.size()) {
    std::size_t end = content.find('\n', begin);
    const bool last = end == std::string::npos;
    if (last) end = content.size();
    std::string text = content.substr(begin, end - begin);
    if (!text.empty() && text.back() == '\r') text.pop_back();
    const std::size_t length = text.size();
    text.resize(std::min(length, max_line));
    lines.push_back({std::move(text), length});
    begin = end + 1;
  }
  return lines;
}

std::vector<expected_line> read_all(line_reader& reader) {
  std::vector<expected_line> lines;
  line current;
  while (reader.next(current)) {
    EXPECT_EQ(current.number, lines.size() + 1);
    EXPECT_EQ(current.overlong(), current.length > current.text.size());
    lines.push_back({std::string(current.text), current.length});
  }
  EXPECT_FALSE(reader.next(current));  // stays at the end
  return lines;
}

std::string zstd_compress(std::string_view data, int level = 3) {
  std::string out(ZSTD_compressBound(data.size()), '\0');
  const std::size_t size = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), level);
  if (ZSTD_isError(size) != 0) throw std::runtime_error(ZSTD_getErrorName(size));
  out.resize(size);
  return out;
}

class LineReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    dir_ = fs::temp_directory_path() /
           ("trove_io_line_reader_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write_file(const char* name, std::string_view content) {
    const std::string file = (dir_ / name).string();
    std::ofstream out(file, std::ios::binary);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    return file;
  }

  std::vector<expected_line> read_content(std::string_view content,
                                          line_reader_options options = {}) {
    line_reader reader(write_file("input.txt", content), options);
    return read_all(reader);
  }

  fs::path dir_;
};

TEST_F(LineReaderTest, SplitsLinesWithCrLfEmptyLinesAndNoFinalNewline) {
  line_reader reader(write_file("a.txt", "a\nbb\r\n\n\r\nccc"));
  EXPECT_EQ(reader.input_compression(), compression::none);
  line current;
  ASSERT_TRUE(reader.next(current));
  EXPECT_EQ(current.text, "a");
  EXPECT_EQ(current.number, 1U);
  EXPECT_EQ(current.length, 1U);
  EXPECT_FALSE(current.overlong());
  ASSERT_TRUE(reader.next(current));
  EXPECT_EQ(current.text, "bb");
  EXPECT_EQ(current.number, 2U);
  ASSERT_TRUE(reader.next(current));
  EXPECT_EQ(current.text, "");
  EXPECT_EQ(current.number, 3U);
  ASSERT_TRUE(reader.next(current));
  EXPECT_EQ(current.text, "");
  EXPECT_EQ(current.number, 4U);
  ASSERT_TRUE(reader.next(current));
  EXPECT_EQ(current.text, "ccc");
  EXPECT_EQ(current.number, 5U);
  EXPECT_FALSE(reader.next(current));
  EXPECT_EQ(reader.bytes_read(), 12U);
}

TEST_F(LineReaderTest, FinalNewlineAddsNoEmptyLine) {
  EXPECT_EQ(read_content("x\ny\n"), (std::vector<expected_line>{{"x", 1}, {"y", 1}}));
  EXPECT_EQ(read_content("x\r\n"), (std::vector<expected_line>{{"x", 1}}));
}

TEST_F(LineReaderTest, EdgeInputs) {
  EXPECT_TRUE(read_content("").empty());
  EXPECT_EQ(read_content("\n"), (std::vector<expected_line>{{"", 0}}));
  EXPECT_EQ(read_content("\n\n"), (std::vector<expected_line>{{"", 0}, {"", 0}}));
  EXPECT_EQ(read_content("\r\n"), (std::vector<expected_line>{{"", 0}}));
  EXPECT_EQ(read_content("abc"), (std::vector<expected_line>{{"abc", 3}}));
  // A lone '\r' is an ordinary character; only "\r\n" (or a final "\r") loses it.
  EXPECT_EQ(read_content("a\rb\nc\r"), (std::vector<expected_line>{{"a\rb", 3}, {"c", 1}}));
  EXPECT_EQ(read_content(std::string("nul\0byte\n", 9)),
            (std::vector<expected_line>{{std::string("nul\0byte", 8), 8}}));
}

TEST_F(LineReaderTest, OverlongTenMegabyteLine) {
  std::string content = "before\n";
  std::string big(10 * 1024 * 1024, 'x');
  for (std::size_t pos = 0; pos < big.size(); pos += 4096) big[pos] = 'y';
  content += big;
  content += "\r\nafter\n";
  line_reader reader(write_file("big.txt", content));  // default max_line_bytes: 1 MiB
  line current;
  ASSERT_TRUE(reader.next(current));
  EXPECT_EQ(current.text, "before");
  ASSERT_TRUE(reader.next(current));
  EXPECT_TRUE(current.overlong());
  EXPECT_EQ(current.length, big.size());
  EXPECT_EQ(current.text.size(), std::size_t{1} << 20);
  EXPECT_EQ(current.text, std::string_view(big).substr(0, std::size_t{1} << 20));
  EXPECT_EQ(current.number, 2U);
  ASSERT_TRUE(reader.next(current));
  EXPECT_EQ(current.text, "after");
  EXPECT_EQ(current.number, 3U);
  EXPECT_FALSE(reader.next(current));
}

TEST_F(LineReaderTest, OverlongLineAtEndWithoutNewline) {
  line_reader_options options;
  options.chunk_bytes = 4;
  options.max_line_bytes = 5;
  EXPECT_EQ(read_content("ok\n0123456789abcdef", options),
            (std::vector<expected_line>{{"ok", 2}, {"01234", 16}}));
  EXPECT_EQ(read_content("0123456789abcdef\r", options),
            (std::vector<expected_line>{{"01234", 16}}));
  // Exactly max_line_bytes plus "\r\n" is not overlong.
  EXPECT_EQ(read_content("01234\r\n012345\r\n", options),
            (std::vector<expected_line>{{"01234", 5}, {"01234", 6}}));
}

TEST_F(LineReaderTest, MatchesReferenceForEveryChunking) {
  // Random content rich in '\r', '\n' and long runs, split with tiny chunks so that "\r\n" and
  // overlong lines straddle every possible boundary.
  for (unsigned seed = 1; seed <= 6; ++seed) {
    std::mt19937_64 rng(seed);
    std::string content;
    const std::size_t size = 200 + rng() % 3000;
    while (content.size() < size) {
      switch (rng() % 6) {
        case 0:
          content += '\n';
          break;
        case 1:
          content += "\r\n";
          break;
        case 2:
          content += '\r';
          break;
        case 3:
          content.append(rng() % 60, static_cast<char>('a' + rng() % 26));
          break;
        default:
          content += static_cast<char>('A' + rng() % 26);
      }
    }
    for (const std::size_t chunk : {1, 2, 3, 5, 8, 64, 4096}) {
      for (const std::size_t max_line : {1, 2, 7, 16, 100, 100000}) {
        line_reader_options options;
        options.chunk_bytes = chunk;
        options.max_line_bytes = max_line;
        ASSERT_EQ(read_content(content, options), reference_lines(content, max_line))
            << "seed " << seed << " chunk " << chunk << " max_line " << max_line;
      }
    }
  }
}

TEST_F(LineReaderTest, ZstdFile) {
  std::string content;
  for (int line_idx = 0; line_idx < 100000; ++line_idx) {
    content += "{\"user_id\":" + std::to_string(line_idx) + ",\"type\":\"click\"}";
    content += line_idx % 3 == 0 ? "\r\n" : "\n";
  }
  content += "last line without newline";
  line_reader reader(write_file("events.jsonl.zst", zstd_compress(content)));
  EXPECT_EQ(reader.input_compression(), compression::zstd);
  EXPECT_EQ(read_all(reader), reference_lines(content, std::size_t{1} << 20));
  EXPECT_EQ(reader.bytes_read(), content.size());
}

TEST_F(LineReaderTest, ZstdConcatenatedFramesAndSmallChunks) {
  const std::string first = "alpha\nbeta\r\ngam";  // a line continues into the next frame
  const std::string second = "ma\n\ndelta";
  const std::string compressed = zstd_compress(first) + zstd_compress(second, 19);
  const std::string content = first + second;
  for (const std::size_t chunk : {1, 3, 1024}) {
    line_reader_options options;
    options.chunk_bytes = chunk;
    options.max_line_bytes = 4;
    line_reader reader(write_file("frames.zst", compressed), options);
    EXPECT_EQ(read_all(reader), reference_lines(content, 4)) << chunk;
  }
}

TEST_F(LineReaderTest, ZstdDetectedByMagicNotName) {
  line_reader reader(write_file("no_extension", zstd_compress("x\ny\n")));
  EXPECT_EQ(reader.input_compression(), compression::zstd);
  EXPECT_EQ(read_all(reader), (std::vector<expected_line>{{"x", 1}, {"y", 1}}));
}

TEST_F(LineReaderTest, ZstdOverlongLine) {
  std::string content = "a\n" + std::string(5000000, 'z') + "\nb";
  line_reader_options options;
  options.chunk_bytes = 65536;
  options.max_line_bytes = 1000;
  line_reader reader(write_file("long.zst", zstd_compress(content)), options);
  EXPECT_EQ(read_all(reader),
            (std::vector<expected_line>{{"a", 1}, {std::string(1000, 'z'), 5000000}, {"b", 1}}));
}

TEST_F(LineReaderTest, TruncatedZstdThrows) {
  std::string content;
  for (int line_idx = 0; line_idx < 20000; ++line_idx) content += std::to_string(line_idx) + "\n";
  std::string compressed = zstd_compress(content);
  compressed.resize(compressed.size() / 2);
  line_reader reader(write_file("cut.zst", compressed));
  line current;
  try {
    while (reader.next(current)) {
    }
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("truncated zstd"), std::string::npos) << error.what();
  }
}

TEST_F(LineReaderTest, CorruptZstdThrows) {
  line_reader reader(write_file("bad.zst", std::string("\x28\xB5\x2F\xFD", 4) + "garbage!"));
  line current;
  EXPECT_THROW(
      {
        while (reader.next(current)) {
        }
      },
      std::runtime_error);
}

// gzip -c of "first\nsecond\r\nthird" followed by gzip -c of "\nfourth\n" (two members).
const unsigned char k_two_member_gzip[] = {
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0x4b, 0xcb, 0x2c, 0x2a,
    0x2e, 0xe1, 0x2a, 0x4e, 0x4d, 0xce, 0xcf, 0x4b, 0xe1, 0xe5, 0x2a, 0xc9, 0xc8, 0x2c,
    0x4a, 0x01, 0x00, 0xc8, 0x71, 0xe8, 0x97, 0x13, 0x00, 0x00, 0x00, 0x1f, 0x8b, 0x08,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xe3, 0x4a, 0xcb, 0x2f, 0x2d, 0x2a, 0xc9,
    0xe0, 0x02, 0x00, 0x64, 0xc8, 0x2b, 0x0b, 0x08, 0x00, 0x00, 0x00};
constexpr std::size_t k_first_member_bytes = 39;

TEST_F(LineReaderTest, GzipFile) {
  const std::string compressed(reinterpret_cast<const char*>(k_two_member_gzip),
                               sizeof k_two_member_gzip);
  const std::string file = write_file("events.gz", compressed);
  if (!line_reader::gzip_supported()) {
    // Without zlib a gzip input is refused with a clear error rather than read as text.
    try {
      line_reader reader(file);
      FAIL() << "expected an exception";
    } catch (const std::runtime_error& error) {
      EXPECT_NE(std::string(error.what()).find("gzip"), std::string::npos) << error.what();
    }
    GTEST_SKIP() << "built without zlib (TROVE_WITH_ZLIB)";
  }
  for (const std::size_t chunk : {1, 4096}) {
    line_reader_options options;
    options.chunk_bytes = chunk;
    line_reader reader(file, options);
    EXPECT_EQ(reader.input_compression(), compression::gzip);
    EXPECT_EQ(read_all(reader), (std::vector<expected_line>{
                                    {"first", 5}, {"second", 6}, {"third", 5}, {"fourth", 6}}));
  }
  // A member cut short is an error, not a short file.
  line_reader cut(write_file("cut.gz", compressed.substr(0, k_first_member_bytes - 6)));
  line current;
  EXPECT_THROW(
      {
        while (cut.next(current)) {
        }
      },
      std::runtime_error);
}

TEST_F(LineReaderTest, ReadsStdinForDash) {
  const std::string file = write_file("stdin.txt", "one\ntwo\r\n");
  const int saved = ::dup(STDIN_FILENO);
  ASSERT_GE(saved, 0);
  const int fd = ::open(file.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_GE(::dup2(fd, STDIN_FILENO), 0);
  ::close(fd);
  std::vector<expected_line> lines;
  {
    line_reader reader("-");
    EXPECT_EQ(reader.path(), "-");
    lines = read_all(reader);
  }
  ::dup2(saved, STDIN_FILENO);
  ::close(saved);
  EXPECT_EQ(lines, (std::vector<expected_line>{{"one", 3}, {"two", 3}}));
}

TEST_F(LineReaderTest, MissingFileThrowsNamingThePath) {
  const std::string file = (dir_ / "missing.txt").string();
  try {
    line_reader reader(file);
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find(file), std::string::npos) << error.what();
  }
}

TEST_F(LineReaderTest, RejectsZeroSizes) {
  const std::string file = write_file("x.txt", "x");
  line_reader_options options;
  options.max_line_bytes = 0;
  EXPECT_THROW(line_reader(file, options), std::invalid_argument);
}

}  // namespace
}  // namespace trove::io
