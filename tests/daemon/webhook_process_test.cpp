// The ringwatchd program's webhook wiring, end to end: `--webhook URL` on the
// command line, a real HTTP receiver in the test, a real lab. The incident's
// alert arrives firing, and resolved after heal, as ringwatch.alerts/v1; the
// round log names the cause of a round that is not OK.

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "tests/daemon/daemon_test_support.h"
#include "tests/support/http_test_server.h"
#include "tests/support/scoped_lab.h"

namespace ringwatch::daemon {
namespace {

using ringwatch::testing::DaemonProcess;
using ringwatch::testing::eventually;

// The alerts of every webhook request so far with this status ("firing" or
// "resolved") and alertname.
int alerts_received(const ringwatch::testing::TestHttpServer& receiver, const std::string& status,
                    const std::string& alertname) {
  int count = 0;
  for (const auto& request : receiver.requests()) {
    rapidjson::Document body;
    body.Parse(request.body.c_str());
    if (body.HasParseError() || !body.IsObject() || !body.HasMember("alerts")) continue;
    EXPECT_STREQ(body["schema"].GetString(), "ringwatch.alerts/v1");
    for (const auto& alert : body["alerts"].GetArray()) {
      if (alert["status"].GetString() == status &&
          alert["labels"]["alertname"].GetString() == alertname)
        ++count;
    }
  }
  return count;
}

TEST(WebhookProcessTest, TheWebhookGetsTheIncidentFiringThenResolved) {
  ringwatch::testing::TestHttpServer receiver;
  ringwatch::testing::ScopedLab lab;
  const auto log = lab.sibling("ringwatchd.log");
  DaemonProcess daemon(
      {RINGWATCHD_BINARY, "--cluster", lab::spec_path(lab.dir()).string(), "--interval", "0.5",
       "--jitter", "0", "--listen", "127.0.0.1:0", "--webhook", receiver.url("/hook")},
      log.string());
  ASSERT_NE(daemon.wait_port(), 0) << daemon.output();
  ASSERT_TRUE(eventually([&] {
    return daemon.output().find("event=round cluster=lab status=OK") != std::string::npos;
  })) << daemon.output();
  EXPECT_EQ(receiver.requests().size(), 0u) << "a healthy lab alerts nobody";

  lab.inject({lab::FaultKind::eject, "p2", "b3", "", ""});
  EXPECT_TRUE(
      eventually([&] { return alerts_received(receiver, "firing", "RingwatchRingDivergence") > 0; },
                 std::chrono::seconds(30)))
      << daemon.output();
  for (const auto& request : receiver.requests()) {
    EXPECT_EQ(request.method, "POST");
    EXPECT_EQ(request.target, "/hook");
    EXPECT_EQ(request.content_type.rfind("application/json", 0), 0u) << request.content_type;
  }
  // The round log says why the round is not OK.
  EXPECT_NE(daemon.output().find("codes="), std::string::npos) << daemon.output();
  EXPECT_NE(daemon.output().find("ring_divergence"), std::string::npos) << daemon.output();

  lab.heal();
  EXPECT_TRUE(eventually(
      [&] { return alerts_received(receiver, "resolved", "RingwatchRingDivergence") > 0; },
      std::chrono::seconds(30)))
      << daemon.output();
}

}  // namespace
}  // namespace ringwatch::daemon
