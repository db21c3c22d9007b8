#pragma once
// A real Prometheus (Debian's prometheus) for tests: a temporary directory
// with the given configuration (and any files beside it), its own storage,
// on 127.0.0.1 and a free port; query() asks its HTTP API. The destructor
// kills it and removes the directory.
//
// Not thread-safe; one owner. Construct it on the test's main thread.

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "tests/daemon/daemon_test_support.h"
#include "tests/support/child_process.h"
#include "tests/support/memcached_process.h"  // free_port

namespace ringwatch::testing {

class PrometheusProcess {
 public:
  static constexpr const char* kBinary = "/usr/bin/prometheus";

  // `files`: name -> content, written beside prometheus.yml (`config`).
  explicit PrometheusProcess(const std::string& config,
                             const std::map<std::string, std::string>& files = {}) {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "ringwatch-prom-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    std::ofstream(dir_ / "prometheus.yml") << config;
    for (const auto& [name, content] : files) std::ofstream(dir_ / name) << content;
    port_ = free_port();
    process_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{kBinary, "--config.file=" + (dir_ / "prometheus.yml").string(),
                                 "--storage.tsdb.path=" + (dir_ / "data").string(),
                                 "--web.listen-address=127.0.0.1:" + std::to_string(port_)});
  }
  ~PrometheusProcess() {
    process_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  PrometheusProcess(const PrometheusProcess&) = delete;
  PrometheusProcess& operator=(const PrometheusProcess&) = delete;

  std::uint16_t port() const { return port_; }
  std::string output() const { return process_->output(); }

  struct Answer {
    bool ok = false;         // "status": "success"
    std::size_t series = 0;  // results (vector or matrix)
    std::string body;
  };
  // An instant query through GET /api/v1/query.
  Answer query(const std::string& promql) const {
    Answer answer;
    const auto response = http_request(port_, "GET", "/api/v1/query?query=" + escape(promql));
    answer.body =
        response.header("transfer-encoding") == "chunked" ? dechunk(response.body) : response.body;
    rapidjson::Document document;
    document.Parse(answer.body.c_str());
    if (document.HasParseError() || !document.IsObject()) return answer;
    answer.ok = document.HasMember("status") && document["status"] == "success";
    if (answer.ok && document["data"]["result"].IsArray()) {
      answer.series = document["data"]["result"].Size();
    }
    return answer;
  }

  // A chunked body (Prometheus chunks its larger answers) as one.
  static std::string dechunk(const std::string& body) {
    std::string out;
    std::size_t at = 0;
    while (at < body.size()) {
      const auto line_end = body.find("\r\n", at);
      if (line_end == std::string::npos) break;
      const auto size = std::stoul(body.substr(at, line_end - at), nullptr, 16);
      if (size == 0) break;
      out += body.substr(line_end + 2, size);
      at = line_end + 2 + size + 2;
    }
    return out;
  }

  static std::string escape(const std::string& text) {
    std::string out;
    for (const unsigned char c : text) {
      if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
        out += static_cast<char>(c);
      } else {
        char buffer[4];
        std::snprintf(buffer, sizeof buffer, "%%%02X", c);
        out += buffer;
      }
    }
    return out;
  }

 private:
  std::filesystem::path dir_;
  std::uint16_t port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace ringwatch::testing
