// The status page in a real browser (Debian's chromium, headless, over the
// DevTools pipe): a daemon probes a lab; the page's matrix shows the p2/b3
// link ejected and the diagnosis once the incident's fault is injected, and
// clears after heal, by its own refresh (the page is never reloaded). The
// screenshots are kept under the build directory (RINGWATCH_ARTIFACT_DIR).
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/daemon/daemon_test_support.h"
#include "tests/daemon/headless_chromium.h"
#include "tests/daemon/running_daemon.h"
#include "tests/support/scoped_lab.h"

namespace ringwatch::daemon {
namespace {

using ringwatch::testing::eventually;
using ringwatch::testing::HeadlessChromium;
using ringwatch::testing::http_request;
using ringwatch::testing::RunningDaemon;

const std::filesystem::path kArtifacts = RINGWATCH_ARTIFACT_DIR;

constexpr const char* kCellState =
    "(() => { const c = document.querySelector('td.cell[data-proxy=\"p2\"][data-backend=\"b3\"]');"
    " return c ? c.dataset.state : ''; })()";
constexpr const char* kDiagnosis =
    "(() => { const d = document.getElementById('diagnosis'); return d ? d.textContent : ''; })()";

TEST(StatusPageBrowserTest, MatrixAndDiagnosisFollowTheIncidentAndItsHeal) {
  if (!std::filesystem::exists(HeadlessChromium::kBinary)) {
    GTEST_SKIP() << "no " << HeadlessChromium::kBinary << ": run tools/install-deps.sh";
  }
  ringwatch::testing::ScopedLab lab;
  RunningDaemon daemon({lab::spec_path(lab.dir()).string()}, std::chrono::seconds(1));
  const auto port = daemon.port();
  ASSERT_TRUE(
      eventually([&] { return http_request(port, "GET", "/v1/clusters/lab").status == 200; }));

  HeadlessChromium browser;
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  const auto page = browser.open(base + "/clusters/lab", 1280, 800);
  std::string state, diagnosis;
  const auto observe = [&] {
    state = browser.evaluate(page, kCellState);
    diagnosis = browser.evaluate(page, kDiagnosis);
  };
  EXPECT_TRUE(eventually([&] {
    observe();
    return state == "ok";
  })) << "cell state \""
      << state << "\"\n"
      << browser.log();
  EXPECT_EQ(diagnosis.find("p2 is missing b3"), std::string::npos) << diagnosis;

  lab.inject({lab::FaultKind::eject, "p2", "b3", "", ""});
  EXPECT_TRUE(eventually(
      [&] {
        observe();
        return (state == "ejected" || state == "missing") &&
               diagnosis.find("p2 is missing b3") != std::string::npos;
      },
      std::chrono::seconds(30)))
      << "cell state \"" << state << "\", diagnosis \"" << diagnosis << "\"";
  // The evidence of the cell, as a person hovering over it sees it.
  const auto title = browser.evaluate(
      page, "document.querySelector('td.cell[data-proxy=\"p2\"][data-backend=\"b3\"]').title");
  EXPECT_NE(title.find("proxy stats: ejected"), std::string::npos) << title;
  EXPECT_NE(title.find("ring_divergence"), std::string::npos) << title;
  // A click shows the evidence below the matrix.
  const auto detail = browser.evaluate(
      page,
      "(() => { document.querySelector('td.cell[data-proxy=\"p2\"][data-backend=\"b3\"]')"
      ".click(); return document.getElementById('cell-detail').textContent; })()");
  EXPECT_NE(detail.find("p2 \u2192 b3"), std::string::npos) << detail;
  EXPECT_NE(detail.find("proxy p2 routes 0 of"), std::string::npos) << detail;
  browser.screenshot(page, kArtifacts / "status-page-incident.png");

  const auto phone = browser.open(base + "/clusters/lab", 390, 844, true);
  EXPECT_TRUE(eventually([&] { return !browser.evaluate(phone, kCellState).empty(); }));
  // Nothing wider than the phone's screen but the matrix's own scroller.
  EXPECT_EQ(browser.evaluate(phone, "String(document.documentElement.scrollWidth <= 390)"), "true");
  browser.screenshot(phone, kArtifacts / "status-page-phone.png", true);

  const auto fleet = browser.open(base + "/", 1280, 800);
  EXPECT_TRUE(eventually([&] {
    return browser
               .evaluate(fleet,
                         "(() => { const r = document.querySelector('tr[data-cluster=\"lab\"]');"
                         " return r ? r.textContent : ''; })()")
               .find("CRITICAL") != std::string::npos;
  }));
  browser.screenshot(fleet, kArtifacts / "status-page-fleet.png");

  lab.heal();
  EXPECT_TRUE(eventually(
      [&] {
        observe();
        return state == "ok" && diagnosis.find("p2 is missing b3") == std::string::npos;
      },
      std::chrono::seconds(30)))
      << "cell state \"" << state << "\", diagnosis \"" << diagnosis << "\"";
}

}  // namespace
}  // namespace ringwatch::daemon
