#include "host/checkpoint/ownership.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace trove::host {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void fail(const fs::path& where, const std::string& what) {
  throw std::runtime_error(
      fmt::format("checkpoint.dir '{}': {}: {}", where.string(), what, std::strerror(errno)));
}

void sync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0 || ::fsync(fd) != 0) {
    if (fd >= 0) ::close(fd);
    fail(dir, "cannot fsync the directory");
  }
  ::close(fd);
}

void make_dirs(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) {
    errno = ec ? ec.value() : ENOTDIR;
    fail(dir, "cannot create the directory");
  }
}

/// Claim files are named by their epoch, zero-padded so that names sort like numbers.
std::string epoch_name(std::uint64_t epoch) {
  return fmt::format("{:020}", epoch);
}

std::string read_small(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return {};
  char buffer[512];
  const ssize_t n = ::read(fd, buffer, sizeof buffer);
  ::close(fd);
  return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string();
}

}  // namespace

partition_ownership::partition_ownership(fs::path dir, const std::string& instance_id)
    : dir_(std::move(dir)) {
  make_dirs(dir_ / "members");
  make_dirs(dir_ / "owners");
  // The lock lives as long as the process: a killed instance frees its slot at once, so its
  // restart (or a new pod) takes the same chain and continues it.
  auto try_slot = [&](const std::string& name) {
    const fs::path member = dir_ / "members" / name;
    make_dirs(member);
    const fs::path lock = member / "lock";
    const int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) fail(lock, "cannot open the member lock");
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      return false;
    }
    lock_fd_ = fd;
    member_ = name;
    return true;
  };
  if (!instance_id.empty()) {
    if (instance_id.find('/') != std::string::npos || instance_id == "." || instance_id == "..") {
      throw std::runtime_error("source.instance_id '" + instance_id +
                               "' cannot name a directory of checkpoint.dir (no '/')");
    }
    if (!try_slot(instance_id)) {
      throw std::runtime_error(fmt::format(
          "checkpoint.dir '{}': another running trove holds source.instance_id '{}' (every "
          "instance of a group needs its own instance_id)",
          dir_.string(), instance_id));
    }
    return;
  }
  for (int slot = 0;; ++slot) {
    if (try_slot("m" + std::to_string(slot))) return;
    if (slot > 100'000) fail(dir_ / "members", "no free member slot");
  }
}

partition_ownership::~partition_ownership() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

fs::path partition_ownership::member_dir(const std::string& member) const {
  // "": the chain a trove from before shared directories wrote at the top of checkpoint.dir.
  return member.empty() ? dir_ : dir_ / "members" / member;
}

fs::path partition_ownership::partition_dir(const std::string& topic,
                                            std::int32_t partition) const {
  return dir_ / "owners" / topic / std::to_string(partition);
}

std::vector<partition_claim> partition_ownership::claims(const std::string& topic,
                                                         std::int32_t partition) const {
  std::vector<partition_claim> out;
  const fs::path pdir = partition_dir(topic, partition);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(pdir, ec)) {
    const std::string name = entry.path().filename().string();
    std::uint64_t epoch = 0;
    const auto [end, err] = std::from_chars(name.data(), name.data() + name.size(), epoch);
    if (err != std::errc() || end != name.data() + name.size() || name.size() != 20) continue;
    out.push_back({epoch, read_small(entry.path())});
  }
  std::sort(out.begin(), out.end(),
            [](const partition_claim& a, const partition_claim& b) { return a.epoch > b.epoch; });
  return out;
}

std::uint64_t partition_ownership::claim(const std::string& topic, std::int32_t partition) {
  const fs::path pdir = partition_dir(topic, partition);
  make_dirs(pdir);
  const auto existing = claims(topic, partition);
  std::uint64_t epoch = existing.empty() ? 1 : existing.front().epoch + 1;
  while (true) {
    const fs::path path = pdir / epoch_name(epoch);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
      if (errno == EEXIST) {  // another instance claimed it first: the next one
        ++epoch;
        continue;
      }
      fail(path, "cannot claim the partition");
    }
    const ssize_t n = ::write(fd, member_.data(), member_.size());
    if (n != static_cast<ssize_t>(member_.size()) || ::fsync(fd) != 0) {
      ::close(fd);
      fail(path, "cannot write the claim");
    }
    ::close(fd);
    sync_dir(pdir);
    return epoch;
  }
}

bool partition_ownership::claimed(const std::string& topic, std::int32_t partition,
                                  std::uint64_t epoch) const {
  std::error_code ec;
  return fs::exists(partition_dir(topic, partition) / epoch_name(epoch), ec);
}

void partition_ownership::check_owner(const std::string& topic, std::int32_t partition,
                                      std::uint64_t epoch) const {
  const auto all = claims(topic, partition);
  if (all.empty() || all.front().epoch <= epoch) return;
  throw fenced_error(fmt::format(
      "partition {}[{}] now belongs to member '{}' (epoch {}; this instance, '{}', holds epoch "
      "{}): it lost the partition — paused or cut off past the session timeout — and stops "
      "instead of overwriting the new owner's state (restart it to rejoin the group)",
      topic, partition, all.front().member, all.front().epoch, member_, epoch));
}

void partition_ownership::release_older(const std::string& topic, std::int32_t partition,
                                        std::uint64_t epoch) {
  bool removed = false;
  for (const auto& c : claims(topic, partition)) {
    if (c.epoch >= epoch) continue;
    std::error_code ec;
    removed |= fs::remove(partition_dir(topic, partition) / epoch_name(c.epoch), ec);
  }
  if (removed) sync_dir(partition_dir(topic, partition));
}

}  // namespace trove::host
