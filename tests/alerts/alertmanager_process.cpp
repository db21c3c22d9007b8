#include "tests/alerts/alertmanager_process.h"

#include <stdlib.h>

#include <fstream>
#include <stdexcept>
#include <thread>

#include "alerts/http_client.h"
#include "tests/support/memcached_process.h"  // free_port

namespace ringwatch::testing {

namespace {
constexpr const char* kConfig = R"(# ringwatch test: every alert goes nowhere.
route:
  receiver: "null"
  group_wait: 1s
  group_interval: 1s
receivers:
  - name: "null"
)";
}  // namespace

AlertmanagerProcess::AlertmanagerProcess() {
  std::string pattern =
      (std::filesystem::temp_directory_path() / "ringwatch-alertmanager-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = pattern;
  std::ofstream(dir_ / "alertmanager.yml") << kConfig;
  std::filesystem::create_directories(dir_ / "data");
  std::string last_output;
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (try_start()) return;
    last_output = output();
    process_.reset();
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
  throw std::runtime_error("alertmanager did not become ready: " + last_output);
}

AlertmanagerProcess::~AlertmanagerProcess() {
  if (process_) process_->stop();
  process_.reset();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

bool AlertmanagerProcess::try_start() {
  port_ = free_port("127.0.0.1");
  process_ = std::make_unique<ChildProcess>(std::vector<std::string>{
      kBinary,
      "--config.file=" + (dir_ / "alertmanager.yml").string(),
      "--storage.path=" + (dir_ / "data").string(),
      "--web.listen-address=127.0.0.1:" + std::to_string(port_),
      "--cluster.listen-address=",
      "--log.level=warn",
  });
  alerts::HttpClient client({std::chrono::milliseconds(200), std::chrono::milliseconds(1000)});
  const alerts::HttpUrl ready = alerts::parse_http_url(url() + "/-/ready");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!process_->running()) return false;
    auto response = client.request("GET", ready);
    if (response.ok() && response.value().status == 200) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

}  // namespace ringwatch::testing
