// The incident (docs/architecture.md, "The problem, in one paragraph"),
// reproduced in the lab's netns mode (tools/lab/netns.h) and caught by
// `ringwatch probe`:
//
//   1. a healthy cluster: 3 proxies, each in its own namespace resolving
//      through its own resolver, 3 backends; ringwatch says OK;
//   2. a migration step adds b4; at p2's vantage point b4's name resolves to
//      its public address (on no interface: unreachable, as in a VPC whose
//      security group admits only private addresses) for its first seconds;
//   3. the next step restarts the proxies to take b4: p1 and p3 connect to
//      it, p2 resolved the public address, cannot connect and ejects it
//      (auto_eject_hosts), and hashes keys over a smaller ring;
//   4. ringwatch, while the wrong answer lasts: p2 missing b4 (canary:
//      ring_divergence; connections: proxy_missing_backend), p1 and p3
//      complete, dns CRITICAL dns_outside_range at p2's vantage point;
//   5. once DNS has propagated the cause is gone from DNS, the symptom stays
//      (p2 resolved once, at start): the canary still says p2 is missing b4,
//      dns is OK; this is why nothing alerted in the incident;
//   6. rolling the proxies again (the operators' fix) makes everything OK.
//
// ringwatch runs as the operator would: the built binary, in the lab's probe
// namespace (`ip netns exec rwpr-<id> ringwatch probe ... --format json`),
// and the test reads its JSON report. Needs CAP_NET_ADMIN; skips without.
// All traffic stays inside the lab's namespaces.

#include <sys/wait.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <rapidjson/document.h>

#include "lib/spec/cluster_spec.h"
#include "tools/lab/dns_query.h"
#include "tools/lab/lab.h"
#include "tools/lab/netns.h"

namespace ringwatch {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// How long b4's name resolves to its public address at p2's vantage point.
constexpr auto kPublicFor = 5s;

struct Finding {
  std::string check, code, severity, proxy, backend, vantage, summary;
  std::vector<std::string> missing_backends;  // canary ring_divergence evidence
  std::string answers;                        // dns evidence, flattened
};

struct ProbeRun {
  int exit_code = -1;
  std::string json;
  std::string status;
  std::map<std::string, std::string> checks;         // name -> status
  std::map<std::string, std::string> check_summary;  // name -> summary
  std::vector<Finding> findings;
  std::vector<std::string> diagnoses;  // summaries
  double duration_s = 0;

  std::vector<Finding> find(const std::string& check, const std::string& code) const {
    std::vector<Finding> out;
    for (const auto& f : findings)
      if (f.check == check && f.code == code) out.push_back(f);
    return out;
  }
  std::string dump() const {
    std::string text = "status " + status + "\n";
    for (const auto& [name, st] : checks)
      text += "  check " + name + ": " + st + " (" + check_summary.at(name) + ")\n";
    for (const auto& f : findings)
      text += "  " + f.check + "/" + f.code + " " + f.severity + ": " + f.summary + "\n";
    for (const auto& d : diagnoses) text += "  diagnosis: " + d + "\n";
    return text;
  }
};

std::string string_of(const rapidjson::Value& object, const char* key) {
  if (!object.IsObject() || !object.HasMember(key)) return "";
  const auto& v = object[key];
  return v.IsString() ? std::string(v.GetString(), v.GetStringLength()) : "";
}

// `ip netns exec <probe_ns> ringwatch probe --cluster SPEC --format json`.
ProbeRun run_probe(const std::string& probe_ns, const fs::path& spec) {
  ProbeRun run;
  std::string command = "ip netns exec " + probe_ns + " " + RINGWATCH_BINARY + " probe --cluster " +
                        spec.string() + " --checks canary,connections,dns --format json 2>" +
                        (spec.parent_path() / "probe.stderr").string();
  auto started = Clock::now();
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return run;
  char buffer[8192];
  while (std::size_t got = std::fread(buffer, 1, sizeof buffer, pipe)) run.json.append(buffer, got);
  int status = ::pclose(pipe);
  run.duration_s = std::chrono::duration<double>(Clock::now() - started).count();
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  rapidjson::Document doc;
  doc.Parse(run.json.c_str(), run.json.size());
  if (doc.HasParseError() || !doc.IsObject()) return run;
  run.status = string_of(doc, "status");
  if (doc.HasMember("checks") && doc["checks"].IsArray())
    for (const auto& c : doc["checks"].GetArray()) {
      run.checks[string_of(c, "name")] = string_of(c, "status");
      run.check_summary[string_of(c, "name")] = string_of(c, "summary");
    }
  if (doc.HasMember("findings") && doc["findings"].IsArray())
    for (const auto& f : doc["findings"].GetArray()) {
      Finding finding;
      finding.check = string_of(f, "check");
      finding.code = string_of(f, "code");
      finding.severity = string_of(f, "severity");
      finding.summary = string_of(f, "summary");
      if (f.HasMember("subject")) {
        finding.proxy = string_of(f["subject"], "proxy");
        finding.backend = string_of(f["subject"], "backend");
        finding.vantage = string_of(f["subject"], "vantage");
      }
      if (f.HasMember("evidence") && f["evidence"].IsObject())
        for (const auto& e : f["evidence"].GetObject()) {
          std::string key(e.name.GetString(), e.name.GetStringLength());
          std::vector<std::string> values;
          if (e.value.IsString()) values.emplace_back(e.value.GetString());
          if (e.value.IsArray())
            for (const auto& item : e.value.GetArray())
              if (item.IsString()) values.emplace_back(item.GetString());
          if (key == "missing_backends") finding.missing_backends = values;
          for (const auto& value : values) finding.answers += key + "=" + value + " ";
        }
      run.findings.push_back(std::move(finding));
    }
  if (doc.HasMember("diagnoses") && doc["diagnoses"].IsArray())
    for (const auto& d : doc["diagnoses"].GetArray())
      run.diagnoses.push_back(string_of(d, "summary"));
  return run;
}

bool has_divergence(const ProbeRun& run, const std::string& proxy, const std::string& backend) {
  for (const auto& f : run.find("canary", "ring_divergence")) {
    if (f.proxy != proxy) continue;
    if (f.backend == backend) return true;
    for (const auto& b : f.missing_backends)
      if (b == backend) return true;
  }
  return false;
}

class IncidentLab {
 public:
  IncidentLab() {
    std::string pattern = (fs::temp_directory_path() / "ringwatch-incident-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    root_ = pattern;
    dir_ = root_ / "incident";
    lab::up({dir_, 3, 3, true});
  }
  ~IncidentLab() {
    try {
      lab::down(dir_);
      EXPECT_TRUE(lab::status(dir_).namespaces.empty());
    } catch (const std::exception& e) {
      ADD_FAILURE() << "lab down failed: " << e.what();
    }
    if (!::testing::Test::HasFailure()) {
      std::error_code ec;
      fs::remove_all(root_, ec);
    } else {
      std::cout << "lab directory kept for its logs: " << dir_ << "\n";
    }
  }
  IncidentLab(const IncidentLab&) = delete;
  IncidentLab& operator=(const IncidentLab&) = delete;
  const fs::path& dir() const { return dir_; }

 private:
  fs::path root_, dir_;
};

TEST(IncidentTest, ANewBackendsPublicAnswerAtOneVantagePointLeavesThatProxyMissingIt) {
  if (auto why = lab::netns_unavailable_reason())
    GTEST_SKIP() << "skipped: " << *why << " (the incident needs the lab's netns mode; run the "
                 << "tests as root, as CI does)";
  auto test_started = Clock::now();
  IncidentLab lab;
  const std::string probe_ns = lab::status(lab.dir()).probe_netns;
  const fs::path spec = lab::spec_path(lab.dir());

  // 1. Healthy.
  ProbeRun healthy = run_probe(probe_ns, spec);
  ASSERT_FALSE(healthy.status.empty()) << "no JSON report:\n" << healthy.json;
  std::cout << "healthy (" << healthy.duration_s << " s):\n" << healthy.dump();
  EXPECT_EQ(healthy.checks["canary"], "OK") << healthy.dump();
  EXPECT_EQ(healthy.checks["dns"], "OK") << healthy.dump();
  EXPECT_EQ(healthy.checks["connections"], "OK") << healthy.dump();

  // 2. and 3. The migration steps.
  auto added_at = Clock::now();
  ASSERT_EQ(lab::add_backend(lab.dir(), {"", "p2", kPublicFor}), "b4");
  lab::restart_proxies(lab.dir());
  std::cout << "b4 added and proxies rolled in "
            << std::chrono::duration<double>(Clock::now() - added_at).count() << " s\n";

  // 4. While the wrong answer lasts.
  ProbeRun during = run_probe(probe_ns, spec);
  auto during_done = Clock::now();
  std::cout << "during the public answer (" << during.duration_s << " s):\n" << during.dump();
  ASSERT_LT(during_done - added_at, kPublicFor)
      << "the round ended after the public answer did; nothing below is meaningful";
  EXPECT_EQ(during.status, "CRITICAL");
  EXPECT_EQ(during.exit_code, 2);
  EXPECT_TRUE(has_divergence(during, "p2", "b4")) << during.dump();
  EXPECT_FALSE(has_divergence(during, "p1", "b4")) << during.dump();
  EXPECT_FALSE(has_divergence(during, "p3", "b4")) << during.dump();
  for (const auto& f : during.find("canary", "ring_divergence"))
    EXPECT_EQ(f.proxy, "p2") << "only p2 diverges: " << f.summary;
  // DNS: b4's name outside 127.10.0.0/16 at p2's vantage point, and only there.
  auto outside = during.find("dns", "dns_outside_range");
  ASSERT_EQ(outside.size(), 1u) << during.dump();
  EXPECT_EQ(outside[0].severity, "critical");
  EXPECT_EQ(outside[0].backend, "b4");
  EXPECT_EQ(outside[0].vantage, "p2-resolver");
  EXPECT_NE(outside[0].summary.find("127.200.0.14"), std::string::npos) << outside[0].summary;
  EXPECT_EQ(during.checks["dns"], "CRITICAL");
  // Connections: p2 lacks b4 by its own stats...
  auto missing = during.find("connections", "proxy_missing_backend");
  ASSERT_FALSE(missing.empty()) << during.dump();
  for (const auto& f : missing) {
    EXPECT_EQ(f.proxy, "p2") << f.summary;
    EXPECT_NE(f.summary.find("b4"), std::string::npos) << f.summary;
  }
  // ...and from the backend's side too: b4 does not see p2 among its peers.
  bool b4_lacks_p2 = false;
  for (const auto& f : during.find("connections", "backend_missing_peer"))
    if (f.backend == "b4" && f.proxy == "p2") b4_lacks_p2 = true;
  EXPECT_TRUE(b4_lacks_p2) << during.dump();
  // One diagnosis ties the proxy, the backend and the DNS answer together.
  bool tied = false;
  for (const auto& d : during.diagnoses)
    if (d.find("p2") != std::string::npos && d.find("b4") != std::string::npos &&
        d.find("127.200.0.14") != std::string::npos)
      tied = true;
  EXPECT_TRUE(tied) << during.dump();

  // 5. After the name has propagated (the window starts when the lab writes
  // the answer, a little after add_backend was called): DNS is right, p2
  // still lacks b4.
  const spec::ClusterSpec with_b4 = spec::load_cluster_spec(spec.string());
  const spec::Backend* b4 = with_b4.find_backend("b4");
  ASSERT_NE(b4, nullptr);
  bool propagated = false;
  for (auto deadline = added_at + kPublicFor + 5s; !propagated && Clock::now() < deadline;) {
    lab::run_in_netns(probe_ns, [&] {
      auto reply = lab::query_a("127.10.1.2", 53, b4->dns_name.value(), 200ms);
      propagated = reply && reply->addresses == std::vector<std::string>{"127.10.0.14"};
    });
    if (!propagated) std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(propagated) << "p2's resolver still does not answer b4's private address";
  ProbeRun after = run_probe(probe_ns, spec);
  std::cout << "after the public answer (" << after.duration_s << " s):\n" << after.dump();
  EXPECT_EQ(after.checks["dns"], "OK") << after.dump();
  EXPECT_TRUE(after.find("dns", "dns_outside_range").empty());
  EXPECT_TRUE(has_divergence(after, "p2", "b4")) << after.dump();
  EXPECT_EQ(after.checks["canary"], "CRITICAL");

  // 6. The fix: every proxy resolves b4 again, now to its private address.
  lab::restart_proxies(lab.dir());
  ProbeRun fixed = run_probe(probe_ns, spec);
  std::cout << "after rolling the proxies again (" << fixed.duration_s << " s):\n" << fixed.dump();
  EXPECT_EQ(fixed.checks["canary"], "OK") << fixed.dump();
  EXPECT_EQ(fixed.checks["dns"], "OK") << fixed.dump();
  EXPECT_EQ(fixed.checks["connections"], "OK") << fixed.dump();
  std::cout << "incident test took "
            << std::chrono::duration<double>(Clock::now() - test_started).count() << " s\n";
}

}  // namespace
}  // namespace ringwatch
