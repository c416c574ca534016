#pragma once
/// @file metrics_server.hpp
/// @brief The run's HTTP endpoint (cpp-httplib) on `metrics.listen`: `/metrics` (Prometheus text
/// format), `/healthz` (200 while the process serves) and `/readyz` (200 when the run is ready,
/// 503 with the reason otherwise); and the client behind `trove healthcheck`.

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "host/metrics.hpp"

namespace trove::host {

/// @brief A `host:port` split for sockets: an empty host is every interface ("0.0.0.0"), brackets
/// around an IPv6 address are dropped.
struct listen_address {
  std::string host;
  int port = 0;
};

/// @brief Parses `metrics.listen` ("0.0.0.0:9464", ":9464", "[::1]:9464", "localhost:9464").
/// @return false (with `why`) when there is no port or the port is not 0..65535
bool parse_listen_address(const std::string& text, listen_address& out, std::string& why);

/// @brief Serves the registry's metrics and health over HTTP on a background thread.
class metrics_server {
 public:
  /// @brief Binds `listen` (the `metrics.listen` value) and starts serving.
  /// @throws std::runtime_error naming `metrics.listen` when the address cannot be bound
  metrics_server(const std::string& listen, const metrics_registry& registry);
  ~metrics_server();
  metrics_server(const metrics_server&) = delete;
  metrics_server& operator=(const metrics_server&) = delete;

  /// @brief Stops serving and joins the server thread (idempotent).
  void stop() noexcept;
  /// @brief The port bound (the one asked for, or the kernel's choice for port 0).
  [[nodiscard]] int port() const noexcept { return port_; }

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
  std::thread thread_;
  int port_ = 0;
};

/// @brief Result of one HTTP GET by probe().
struct probe_result {
  int status = 0;     ///< HTTP status; 0 when no response came
  std::string body;   ///< response body
  std::string error;  ///< why no response came (connection refused, timeout)
};

/// @brief GETs `path` from `address` (host:port; 0.0.0.0 or an empty host means this machine).
probe_result probe(const std::string& address, const std::string& path,
                   std::chrono::milliseconds timeout);

/// @brief `trove healthcheck`: exit code 0 when `path` answers 200, 1 otherwise (with why).
int run_healthcheck(const std::string& address, const std::string& path,
                    std::chrono::milliseconds timeout);

}  // namespace trove::host
