// ringwatchd's --web-config (TLS, client certificates, basic auth) and its
// sinks over https://, against the real programs: certificates made by
// openssl, requests by curl and by ringwatch's own client, a real
// Alertmanager behind TLS and basic auth receiving the daemon's alerts.
#include "daemon/web_config.h"

#include <gtest/gtest.h>
#include <stdio.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>

#include "lib/http/client.h"
#include "tests/daemon/daemon_test_support.h"
#include "tests/daemon/running_daemon.h"
#include "tests/daemon/test_certificates.h"
#include "tests/support/child_process.h"
#include "tests/support/memcached_process.h"  // free_port
#include "tests/support/scoped_lab.h"

namespace ringwatch::daemon {
namespace {

using ringwatch::testing::DaemonProcess;
using ringwatch::testing::eventually;
using ringwatch::testing::http_request;
using ringwatch::testing::RunningDaemon;
using ringwatch::testing::ScopedLab;
using ringwatch::testing::TestCertificates;

std::string error_of(const std::string& yaml) {
  try {
    parse_web_config(yaml, "web.yml");
  } catch (const WebConfigError& error) {
    return error.what();
  }
  return "(accepted)";
}

const std::string kHash = "$2y$10$abcdefghijklmnopqrstuu5Bq.jVPxLJwRVOAzbjXyOrn5nqafEVj";

TEST(WebConfigTest, ErrorMessagesNameTheFileAndTheField) {
  EXPECT_EQ(error_of("tls_server_config: {cert_file: a.crt}"),
            "web.yml: tls_server_config.key_file: missing required field");
  EXPECT_EQ(error_of("tls_server_config: {cert_file: a, key_file: b, cipher_suites: []}"),
            "web.yml: tls_server_config.cipher_suites: unknown field (expected one of: cert_file, "
            "key_file, client_auth_type, client_ca_file, min_version)");
  EXPECT_EQ(error_of("tls_server_config: {cert_file: a, key_file: b, client_auth_type: Maybe}"),
            "web.yml: tls_server_config.client_auth_type: expected NoClientCert, "
            "VerifyClientCertIfGiven or RequireAndVerifyClientCert, got \"Maybe\"");
  EXPECT_EQ(error_of("tls_server_config: {cert_file: a, key_file: b, "
                     "client_auth_type: RequireAndVerifyClientCert}"),
            "web.yml: tls_server_config.client_ca_file: missing required field "
            "(client_auth_type verifies client certificates)");
  EXPECT_EQ(error_of("tls_server_config: {cert_file: a, key_file: b, min_version: TLS10}"),
            "web.yml: tls_server_config.min_version: expected TLS12 or TLS13, got \"TLS10\"");
  EXPECT_EQ(error_of("basic_auth_users: {alice: secret}"),
            "web.yml: basic_auth_users.alice: expected a bcrypt hash ($2a$, $2b$ or $2y$)");
  EXPECT_EQ(error_of("basic_auth_users: [alice]"),
            "web.yml: basic_auth_users: expected a mapping of user to hash");
  EXPECT_EQ(error_of("http_server_config: {http2: true}"),
            "web.yml: http_server_config: unknown field (expected one of: tls_server_config, "
            "basic_auth_users, healthz_without_auth)");
  EXPECT_EQ(error_of("healthz_without_auth: sometimes"),
            "web.yml: healthz_without_auth: expected true or false");
  EXPECT_EQ(error_of("tls_server_config: [\n"),
            "web.yml: line 2, column 1: end of sequence flow not found");
  EXPECT_EQ(error_of(""), "(accepted)");
  const auto config = parse_web_config(
      "tls_server_config:\n  cert_file: s.crt\n  key_file: /k/s.key\n  client_auth_type: "
      "VerifyClientCertIfGiven\n  client_ca_file: ca.crt\nbasic_auth_users:\n  alice: " +
          kHash + "\nhealthz_without_auth: true\n",
      "/etc/ringwatch/web.yml");
  ASSERT_TRUE(config.tls);
  EXPECT_EQ(config.tls->cert_file, "/etc/ringwatch/s.crt");  // relative to the file
  EXPECT_EQ(config.tls->key_file, "/k/s.key");
  EXPECT_EQ(config.tls->client_auth, ClientAuth::verify_if_given);
  EXPECT_EQ(config.basic_auth_users.at("alice"), kHash);
  EXPECT_TRUE(config.healthz_without_auth);
}

TEST(WebConfigTest, AnUnusableCertificateIsAStartupErrorNamingTheField) {
  TestCertificates certs;
  std::ofstream(certs.dir() / "web.yml")
      << "tls_server_config:\n  cert_file: server.crt\n  key_file: nope.key\n";
  ScopedLab lab;
  DaemonProcess daemon({RINGWATCHD_BINARY, "--cluster", lab::spec_path(lab.dir()).string(),
                        "--listen", "127.0.0.1:0", "--web-config", certs.file("web.yml")},
                       certs.file("ringwatchd.log"));
  const auto status = daemon.wait_exit(std::chrono::seconds(20));
  ASSERT_TRUE(status);
  EXPECT_EQ(WEXITSTATUS(*status), 3);
  EXPECT_EQ(daemon.output().rfind("ringwatchd: " + certs.file("web.yml") +
                                      ": tls_server_config.key_file: cannot load " +
                                      certs.file("nope.key") + ": ",
                                  0),
            0u)
      << daemon.output();
}

struct Curl {
  int exit_code = -1;
  int status = 0;  // 0: no HTTP answer
  std::string output;
};

// curl with `arguments`, printing the status code last.
Curl curl(const std::string& arguments) {
  const std::string command =
      "curl -s -S --max-time 10 -w '\\n%{http_code}' " + arguments + " 2>&1";
  Curl result;
  FILE* pipe = ::popen(command.c_str(), "r");
  char buffer[4096];
  while (pipe != nullptr && std::fgets(buffer, sizeof buffer, pipe) != nullptr)
    result.output += buffer;
  if (pipe != nullptr) result.exit_code = WEXITSTATUS(::pclose(pipe));
  const auto last = result.output.rfind('\n');
  result.status = std::atoi(result.output.c_str() + (last == std::string::npos ? 0 : last + 1));
  return result;
}

RunningDaemon daemon_with(const std::string& spec, const std::string& web_config) {
  auto options = RunningDaemon::quick_start({spec}, std::chrono::seconds(30));
  options.web_config_path = web_config;
  return RunningDaemon(RunningDaemon::WithOptions{}, options);
}

TEST(WebConfigTest, TlsAndBasicAuthWithCurlAndOurOwnClient) {
  TestCertificates certs;
  std::ofstream(certs.dir() / "web.yml")
      << "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
      << "basic_auth_users:\n  alice: " << TestCertificates::bcrypt("s3cret pass") << "\n"
      << "healthz_without_auth: true\n";
  ScopedLab lab;
  auto daemon = daemon_with(lab::spec_path(lab.dir()).string(), certs.file("web.yml"));
  const std::string base = "https://127.0.0.1:" + std::to_string(daemon.port());
  const std::string ca = " --cacert " + certs.file("ca.crt") + " ";

  EXPECT_EQ(curl(ca + base + "/healthz").status, 200);
  const auto anonymous = curl(ca + "-D - " + base + "/metrics");
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_NE(anonymous.output.find("WWW-Authenticate: Basic realm=\"ringwatchd\""),
            std::string::npos)
      << anonymous.output;
  EXPECT_EQ(curl(ca + "-u 'alice:wrong' " + base + "/metrics").status, 401);
  EXPECT_EQ(curl(ca + "-u 'bob:s3cret pass' " + base + "/metrics").status, 401);
  const auto good = curl(ca + "-u 'alice:s3cret pass' " + base + "/metrics");
  EXPECT_EQ(good.status, 200) << good.output;
  EXPECT_NE(good.output.find("ringwatch_build_info"), std::string::npos);
  // Again: the remembered password answers the same.
  EXPECT_EQ(curl(ca + "-u 'alice:s3cret pass' " + base + "/v1/clusters").status, 200);
  // A server certificate no trusted CA signed is refused by curl.
  EXPECT_EQ(curl("--cacert " + certs.file("other-ca.crt") + " " + base + "/healthz").status, 0);

  // Plain HTTP on the TLS port is told so.
  const auto plain = http_request(daemon.port(), "GET", "/healthz");
  EXPECT_EQ(plain.status, 400);
  EXPECT_EQ(plain.body, "this port speaks TLS: use https://\n");

  // ringwatch's own client: TLS verified against the CA, Authorization sent.
  http::Client client(http::kDefaultDeadlines, "ringwatch-test", {certs.file("ca.crt")});
  const auto url = http::parse_url(base + "/v1/clusters");
  auto answer = client.request("GET", url);
  ASSERT_TRUE(answer) << answer.error().message;
  EXPECT_EQ(answer.value().status, 401);
  answer =
      client.request("GET", url, {}, {}, {{"Authorization", "Basic YWxpY2U6czNjcmV0IHBhc3M="}});
  ASSERT_TRUE(answer) << answer.error().message;
  EXPECT_EQ(answer.value().status, 200);
  http::Client untrusting(http::kDefaultDeadlines, "ringwatch-test", {certs.file("other-ca.crt")});
  const auto refused = untrusting.request("GET", url);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind, http::ErrorKind::tls) << refused.error().message;
  EXPECT_EQ(refused.error().message.rfind("TLS handshake with 127.0.0.1:", 0), 0u)
      << refused.error().message;
  // The certificate names 127.0.0.1 and localhost, not 127.0.0.2.
  const auto wrong_name = client.request(
      "GET", http::parse_url("https://127.0.0.2:" + std::to_string(daemon.port()) + "/healthz"));
  EXPECT_FALSE(wrong_name && wrong_name.value().status == 200);
}

TEST(WebConfigTest, MutualTlsRefusesAClientWithoutACertificate) {
  TestCertificates certs;
  std::ofstream(certs.dir() / "web.yml")
      << "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
      << "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n";
  ScopedLab lab;
  auto daemon = daemon_with(lab::spec_path(lab.dir()).string(), certs.file("web.yml"));
  const std::string url = "https://127.0.0.1:" + std::to_string(daemon.port()) + "/healthz";
  const std::string ca = "--cacert " + certs.file("ca.crt") + " ";
  const auto with_cert = curl(ca + "--cert " + certs.file("client.crt") + " --key " +
                              certs.file("client.key") + " " + url);
  EXPECT_EQ(with_cert.status, 200) << with_cert.output;
  const auto without = curl(ca + url);
  EXPECT_EQ(without.status, 0) << without.output;
  EXPECT_NE(without.exit_code, 0);
  // A certificate from another CA is refused too.
  const auto foreign = curl(ca + "--cert " + certs.file("other-ca.crt") + " --key " +
                            certs.file("other-ca.key") + " " + url);
  EXPECT_EQ(foreign.status, 0) << foreign.output;
}

// The daemon's Alertmanager sink over https:// with basic auth from a file,
// against a real Alertmanager behind exporter-toolkit's TLS and basic auth.
TEST(WebConfigTest, AlertsReachAnAlertmanagerBehindTlsAndBasicAuth) {
  const std::filesystem::path binary = "/usr/bin/prometheus-alertmanager";
  if (!std::filesystem::exists(binary)) GTEST_SKIP() << "no " << binary;
  TestCertificates certs;
  const std::string password = "am-pass-7d1f";
  std::ofstream(certs.dir() / "am-web.yml")
      << "tls_server_config:\n  cert_file: " << certs.file("server.crt")
      << "\n  key_file: " << certs.file("server.key")
      << "\nbasic_auth_users:\n  ringwatch: " << TestCertificates::bcrypt(password) << "\n";
  std::ofstream(certs.dir() / "am.yml")
      << "route:\n  receiver: \"null\"\n  group_wait: 1s\n  group_interval: 1s\n"
      << "receivers:\n  - name: \"null\"\n";
  std::ofstream(certs.dir() / "am.password") << password << "\n";
  const auto am_port = ringwatch::testing::free_port();
  std::filesystem::create_directories(certs.dir() / "am-data");
  ringwatch::testing::ChildProcess alertmanager(
      {binary.string(), "--config.file=" + certs.file("am.yml"),
       "--web.config.file=" + certs.file("am-web.yml"), "--storage.path=" + certs.file("am-data"),
       "--web.listen-address=127.0.0.1:" + std::to_string(am_port),
       "--cluster.listen-address=", "--log.level=warn"});
  const std::string am = "https://127.0.0.1:" + std::to_string(am_port);
  const std::string am_curl = "--cacert " + certs.file("ca.crt") + " -u 'ringwatch:" + password +
                              "' " + am + "/api/v2/alerts";
  ASSERT_TRUE(eventually([&] { return curl(am_curl).status == 200; })) << alertmanager.output();
  EXPECT_EQ(curl("--cacert " + certs.file("ca.crt") + " " + am + "/api/v2/alerts").status, 401);

  ScopedLab lab;
  std::ofstream(certs.dir() / "fleet.json")
      << R"({"listen": "127.0.0.1:0", "clusters": [{"spec": ")"
      << lab::spec_path(lab.dir()).string()
      << R"(", "interval_seconds": 0.5}], "alerts": {"fire_after_rounds": 1, "alertmanager": {"url": ")"
      << am
      << R"(", "ca_file": "ca.crt", "basic_auth": {"username": "ringwatch", "password_file": "am.password"}}}})";
  DaemonProcess daemon({RINGWATCHD_BINARY, "--fleet", certs.file("fleet.json")},
                       certs.file("ringwatchd.log"));
  daemon.wait_port();
  lab.inject({lab::FaultKind::eject, "p2", "b3", "", ""});
  std::string alerts;
  EXPECT_TRUE(eventually(
      [&] {
        alerts = curl(am_curl).output;
        return alerts.find("RingwatchRingDivergence") != std::string::npos;
      },
      std::chrono::seconds(20)))
      << alerts << "\n"
      << daemon.output();
  EXPECT_EQ(daemon.output().find(password), std::string::npos) << "the password reached the log";
  EXPECT_EQ(daemon.output().find("outcome=failed"), std::string::npos) << daemon.output();
}

}  // namespace
}  // namespace ringwatch::daemon
