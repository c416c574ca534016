/// @file checkpoint_seed_writer.cpp
/// @brief Writes the seed corpus of fuzz_checkpoint (tests/fuzz/corpus/checkpoint/): real
/// manifest, dedup segment and group segment files from encode_manifest / encode_segment /
/// encode_groups of a realistic checkpoint_state (a few partitions, Kafka positions, 2 group
/// segment refs, an aggregation snapshot of 3 groups with stride 80, 2 dedup segment refs), empty
/// ones, and the same payloads behind the target's wrap marker. Built uninstrumented in the fuzz
/// project:
///   build-fuzz/checkpoint_seed_writer tests/fuzz/corpus/checkpoint

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "checkpoint_envelope.hpp"
#include "host/checkpoint/store.hpp"

namespace {

using namespace trove::host;

/// @brief A checkpoint as a Kafka → aggregation run would cut it.
checkpoint_state realistic_state() {
  checkpoint_state s;
  s.id = 7;
  s.created_ms = 1'767'225'600'000;
  s.compat = {{"group_by", "[user_id, type]"}, {"window.size", "1m"}, {"dedup.ttl", "10m"}};
  s.counters = {.accepted = 120'000,
                .duplicate = 350,
                .late = 12,
                .filtered = 800,
                .bad = 3,
                .rows_out = 4'200,
                .windows_emitted = 14,
                .batches = 30};
  s.watermark = 1'767'225'540'000;
  s.max_event_time = 1'767'225'599'000;
  s.partitions = {{0, 1'767'225'599'000, 1'767'225'540'000},
                  {1, 1'767'225'598'500, 1'767'225'580'000},
                  {2, 1'767'225'597'000, 1'767'225'540'000}};
  s.emitted_watermark = 1'767'225'540'000;
  s.source.file_offset = 0;
  s.source.kafka = {{"events", 0, 40'001, 3}, {"events", 1, 39'870, 1}, {"events", 2, 40'129, 2}};
  s.sink_length = 512'000;
  s.dead_letter_length = 310;
  s.agg.rows = 3;
  s.agg.stride = 80;
  s.agg.slots.resize(s.agg.rows * s.agg.stride);
  for (std::size_t i = 0; i < s.agg.slots.size(); ++i) {
    s.agg.slots[i] = static_cast<unsigned char>((i * 37 + 11) & 0xFF);
  }
  s.agg.records = {0x1001, 0x2, 0x1002, 0x1, 0x1003, 0x2, 0x3};
  s.agg.record_offsets = {0, 2, 4};
  s.segments = {{5, 2, 1'767'225'500'000, 0x0123456789ABCDEFULL},
                {7, 3, 1'767'225'599'000, 0xFEDCBA9876543210ULL}};
  s.window_size_ms = 60'000;
  s.open_groups = 3;
  s.group_segments = {{4, 5, 0x1111222233334444ULL}, {7, 3, 0x5555666677778888ULL}};
  return s;
}

std::vector<dedup_record> realistic_entries() {
  return {{1'767'225'590'000, 0x9E3779B97F4A7C15ULL, 0xBF58476D1CE4E5B9ULL, 0, 0},
          {1'767'225'595'000, 0x94D049BB133111EBULL, 0x2545F4914F6CDD1DULL, 1, 0},
          {1'767'225'599'000, 0x632BE59BD9B4E019ULL, 0x85EBCA77C2B2AE63ULL, 2, 0}};
}

void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "checkpoint_seed_writer: cannot write %s\n", path.c_str());
    std::exit(1);
  }
  std::printf("%s (%zu bytes)\n", path.c_str(), bytes.size());
}

/// @brief The file, and its payload behind the wrap marker.
void write_pair(const std::filesystem::path& dir, const std::string& name,
                const std::string& file) {
  write_file(dir / (name + ".bin"), file);
  std::string wrapped(1, static_cast<char>(trove::fuzz::wrap_marker));
  wrapped.append(trove::fuzz::envelope_payload(file));
  write_file(dir / ("wrapped_" + name + ".bin"), wrapped);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);
  const checkpoint_state state = realistic_state();
  write_pair(dir, "manifest", encode_manifest(state));
  write_pair(dir, "manifest_empty", encode_manifest(checkpoint_state{}));
  write_pair(dir, "segment", encode_segment(realistic_entries()));
  write_pair(dir, "segment_empty", encode_segment(std::vector<dedup_record>{}));
  write_pair(dir, "groups", encode_groups(state.agg));  // the manifest's groups, as a segment
  write_pair(dir, "groups_empty", encode_groups(trove::kernels::agg_snapshot{}));
  return 0;
}
