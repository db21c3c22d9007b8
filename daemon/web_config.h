#pragma once
// ringwatchd's --web-config FILE: TLS and basic authentication for its HTTP
// server, in exporter-toolkit's YAML format (the file Prometheus, Alertmanager
// and the exporters read), plus one field of ringwatch's own:
//
//   tls_server_config:
//     cert_file: server.crt            # PEM; relative paths are relative to the file
//     key_file: server.key
//     client_auth_type: RequireAndVerifyClientCert   # or NoClientCert (default),
//                                      # VerifyClientCertIfGiven
//     client_ca_file: ca.crt           # required when client certificates are verified
//     min_version: TLS12               # or TLS13 (default TLS12)
//   basic_auth_users:
//     alice: $2y$10$...                # bcrypt hashes only ($2a$, $2b$, $2y$)
//   healthz_without_auth: true         # ringwatch's own: GET /healthz and /-/healthy
//                                      # answer without basic auth (default false)
//
// A field not listed here is an error (so a typo does not silently disable
// authentication). Errors name the file and the field:
//   web.yml: tls_server_config.key_file: missing required field
//   web.yml: basic_auth_users.alice: expected a bcrypt hash ($2a$, $2b$ or $2y$)
// Certificates and keys are loaded by the HTTP server at start
// (HttpServer::TlsOptions), whose errors the daemon prefixes the same way.
//
// BasicAuth checks "Authorization: Basic ..." against the hashes with
// libxcrypt's crypt_r; a password that matched once is remembered by its
// SHA-256 so that later requests do not pay bcrypt's cost again. bcrypt runs
// on BasicAuth's own thread, never on the caller's (the daemon's io thread,
// which must not stall on a stream of wrong passwords), behind a bounded
// queue: when kMaxPendingChecks wait, the next request is answered busy.
//
// Thread-safety: load_web_config is pure; BasicAuth::check is thread-safe.

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

#include "daemon/http_server.h"

namespace ringwatch::daemon {

class WebConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct WebConfig {
  std::optional<TlsOptions> tls{};
  std::map<std::string, std::string> basic_auth_users{};  // user -> bcrypt hash
  bool healthz_without_auth = false;
};

// Throws WebConfigError "<file>: <field>: <expectation>".
WebConfig load_web_config(const std::string& path);
WebConfig parse_web_config(std::string_view yaml, const std::string& source_name);

class BasicAuth {
 public:
  enum class Verdict { allowed, denied, busy };
  static constexpr std::size_t kMaxPendingChecks = 32;

  BasicAuth(std::map<std::string, std::string> users, bool healthz_without_auth);
  ~BasicAuth();  // pending checks are answered busy
  BasicAuth(const BasicAuth&) = delete;
  BasicAuth& operator=(const BasicAuth&) = delete;

  // Whether the request may go on: allowed with no users configured, on an
  // exempt path, or with a valid Authorization header. `done` is called at
  // once unless a password must go through bcrypt; then later, from
  // BasicAuth's thread.
  void check(const HttpRequest& request, std::function<void(Verdict)> done);
  // The 401 answer, with WWW-Authenticate; and the busy answer (503).
  static HttpResponse challenge();
  static HttpResponse busy();

 private:
  struct Pending {
    std::string user, password;
    std::function<void(Verdict)> done;
  };
  void verify_loop();

  const std::map<std::string, std::string> users_;
  const bool healthz_without_auth_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Pending> pending_;
  bool stopping_ = false;
  std::map<std::string, std::string> verified_;  // user -> SHA-256 of the password
  std::thread verifier_;
};

}  // namespace ringwatch::daemon
