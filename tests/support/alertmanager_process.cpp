#include "tests/support/alertmanager_process.h"

#include <stdlib.h>

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <fstream>
#include <stdexcept>
#include <thread>

#include "lib/http/client.h"
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
  http::Client client({std::chrono::milliseconds(200), std::chrono::milliseconds(1000)});
  const http::Url ready = http::parse_url(url() + "/-/ready");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!process_->running()) return false;
    auto response = client.request("GET", ready);
    if (response.ok() && response.value().status == 200) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

std::vector<AlertmanagerAlert> AlertmanagerProcess::alerts(const std::string& query) const {
  ringwatch::http::Client client;
  auto response =
      client.request("GET", ringwatch::http::parse_url(url() + "/api/v2/alerts" + query));
  EXPECT_TRUE(response.ok()) << (response.ok() ? "" : response.error().message);
  if (!response.ok()) return {};
  EXPECT_EQ(response.value().status, 200) << response.value().body;
  rapidjson::Document document;
  document.Parse(response.value().body.c_str());
  EXPECT_TRUE(document.IsArray()) << response.value().body;
  std::vector<AlertmanagerAlert> result;
  if (!document.IsArray()) return result;
  for (const auto& item : document.GetArray()) {
    AlertmanagerAlert alert;
    for (const auto& m : item["labels"].GetObject()) {
      alert.labels[m.name.GetString()] = m.value.GetString();
    }
    for (const auto& m : item["annotations"].GetObject()) {
      alert.annotations[m.name.GetString()] = m.value.GetString();
    }
    alert.state = item["status"]["state"].GetString();
    alert.starts_at = item["startsAt"].GetString();
    alert.ends_at = item["endsAt"].GetString();
    result.push_back(std::move(alert));
  }
  return result;
}

}  // namespace ringwatch::testing
