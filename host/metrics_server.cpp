#include "host/metrics_server.hpp"

#include <fmt/format.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace trove::host {

bool parse_listen_address(const std::string& text, listen_address& out, std::string& why) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string::npos) {
    why = "no port: expected host:port, like 0.0.0.0:9464 or :9464";
    return false;
  }
  std::string host = text.substr(0, colon);
  const std::string port = text.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) > 65535) {
    why = "port '" + port + "' is not a number from 0 to 65535";
    return false;
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  out.host = host.empty() ? "0.0.0.0" : host;
  out.port = std::stoi(port);
  return true;
}

struct metrics_server::impl {
  httplib::Server server;
};

metrics_server::metrics_server(const std::string& listen, const metrics_registry& registry)
    : impl_(std::make_unique<impl>()) {
  listen_address address;
  std::string why;
  if (!parse_listen_address(listen, address, why)) {
    throw std::runtime_error("metrics.listen '" + listen + "': " + why);
  }
  auto& server = impl_->server;
  // Scrapes and probes are rare and tiny; two workers keep the endpoint off the pipeline's cores.
  server.new_task_queue = [] { return new httplib::ThreadPool(2); };
  // httplib's default sets SO_REUSEPORT, which lets a second process bind the same port and
  // silently take half the scrapes (two sidecars in one pod); SO_REUSEADDR only allows a quick
  // restart over a socket in TIME_WAIT.
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  server.set_read_timeout(std::chrono::seconds(5));
  server.set_write_timeout(std::chrono::seconds(5));
  server.Get("/metrics", [&registry](const httplib::Request&, httplib::Response& res) {
    res.set_content(registry.render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  server.Get("/readyz", [&registry](const httplib::Request&, httplib::Response& res) {
    const readiness r = registry.ready();
    res.status = r.ready ? 200 : 503;
    res.set_content(r.reason + "\n", "text/plain");
  });
  errno = 0;
  if (address.port == 0) {
    port_ = server.bind_to_any_port(address.host);
  } else if (server.bind_to_port(address.host, address.port)) {
    port_ = address.port;
  } else {
    port_ = -1;
  }
  if (port_ < 0) {
    const int error = errno;
    throw std::runtime_error(fmt::format(
        "metrics.listen: cannot listen on {}{}{}; choose a free port or address (or remove "
        "metrics.listen to run without the endpoint)",
        listen, error ? ": " : "", error ? std::strerror(error) : ""));
  }
  thread_ = std::thread([this] { impl_->server.listen_after_bind(); });
  // stop() only takes effect once the server loop runs: wait for it, so that a run that ends
  // at once still joins the thread.
  for (int waited_ms = 0; !impl_->server.is_running() && waited_ms < 5000; ++waited_ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  spdlog::info("metrics: serving /metrics, /healthz, /readyz on {}:{}", address.host, port_);
}

metrics_server::~metrics_server() {
  stop();
}

void metrics_server::stop() noexcept {
  if (!thread_.joinable()) return;
  impl_->server.stop();
  thread_.join();
}

probe_result probe(const std::string& address, const std::string& path,
                   std::chrono::milliseconds timeout) {
  probe_result result;
  listen_address where;
  if (!parse_listen_address(address, where, result.error)) return result;
  if (where.host == "0.0.0.0") where.host = "127.0.0.1";
  if (where.host == "::") where.host = "::1";
  httplib::Client client(where.host, where.port);
  client.set_connection_timeout(timeout);
  client.set_read_timeout(timeout);
  client.set_write_timeout(timeout);
  if (auto res = client.Get(path)) {
    result.status = res->status;
    result.body = res->body;
  } else {
    result.error = httplib::to_string(res.error());
  }
  return result;
}

int run_healthcheck(const std::string& address, const std::string& path,
                    std::chrono::milliseconds timeout) {
  const probe_result r = probe(address, path, timeout);
  if (r.status == 200) {
    fmt::print("{} {}: 200 {}", address, path, r.body);
    return 0;
  }
  if (r.status == 0) {
    fmt::print(stderr,
               "trove healthcheck: {} {}: no response ({}); is trove running with "
               "metrics.listen set to this address?\n",
               address, path, r.error);
  } else {
    fmt::print(stderr, "trove healthcheck: {} {}: HTTP {} {}", address, path, r.status, r.body);
  }
  return 1;
}

}  // namespace trove::host
