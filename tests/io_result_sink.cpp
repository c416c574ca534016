/// @file io_result_sink.cpp
/// @brief The file result sink: started empty, or resumed from a checkpoint's length (cut back to
/// it, then appended), for JSON lines and CSV.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "io/result_batch.hpp"
#include "io/result_sink.hpp"

namespace trove::io {
namespace {

result_batch rows_of(std::uint64_t first, int n) {
  result_batch batch;
  batch.add_column("user_id", field_type::u64);
  batch.add_column("count", field_type::u64);  // (may move the first column)
  for (int i = 0; i < n; ++i) {
    batch.columns[0].append_u64(first + static_cast<std::uint64_t>(i));
    batch.columns[1].append_u64(7);
  }
  batch.rows = static_cast<std::size_t>(n);
  return batch;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string temp_path(const char* name) {
  return (std::filesystem::temp_directory_path() /
          (std::string(name) + "-" + std::to_string(::getpid())))
      .string();
}

// Bug (the outputs kill test): a CSV sink resumed from a checkpoint wrote its header again in the
// middle of the file.
TEST(IoResultSink, AResumedCsvFileKeepsOneHeader) {
  const std::string path = temp_path("trove-sink.csv");
  result_sink_options options;
  options.kind = sink_kind::file;
  options.csv = true;
  options.path = path;
  double encode = 0, write = 0;
  std::uint64_t cut = 0;
  {
    result_sink sink(options);
    sink.write(rows_of(1, 2), encode, write);
    sink.flush();
    cut = sink.length();
    sink.write(rows_of(100, 1), encode, write);  // after the cut: lost in the "crash"
    sink.flush();
  }
  ASSERT_EQ(slurp(path), "user_id,count\n1,7\n2,7\n100,7\n");
  options.resume_length = cut;
  {
    result_sink sink(options);
    sink.write(rows_of(3, 2), encode, write);
    sink.flush();
  }
  EXPECT_EQ(slurp(path), "user_id,count\n1,7\n2,7\n3,7\n4,7\n");
  std::remove(path.c_str());
}

TEST(IoResultSink, AFreshCsvFileStartsWithItsHeaderEvenWithoutRows) {
  const std::string path = temp_path("trove-empty.csv");
  result_sink_options options;
  options.kind = sink_kind::file;
  options.csv = true;
  options.path = path;
  double encode = 0, write = 0;
  {
    result_sink sink(options);
    sink.write(rows_of(1, 0), encode, write);
    sink.flush();
  }
  EXPECT_EQ(slurp(path), "user_id,count\n");
  std::remove(path.c_str());
}

}  // namespace
}  // namespace trove::io
