// The c-ares resolver against a real dnsmasq on loopback (started here on a
// free port, killed with the test), a port where nothing listens, and a UDP
// socket that never answers. Measured dnsmasq 2.90 behaviour, pinned here:
//   - a name in --addn-hosts: NOERROR with the A record, TTL = --local-ttl
//     (0 without it);
//   - the other type of such a name: NOERROR-empty when dnsmasq is
//     authoritative for the domain (--local=/domain/, as the lab runs it),
//     REFUSED without --local and without upstream servers (--no-resolv);
//   - an unknown name: NXDOMAIN inside a --local domain, REFUSED outside it
//     (no upstream to ask).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "lib/dns/resolver.h"

namespace ringwatch::dns {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// What a test allows beyond a deadline: generous, so a loaded machine (ASan on
// two shared cores) does not turn a kept deadline into a failure.
constexpr auto kSlack = 2000ms;

// A loopback socket bound to a kernel-chosen port; closed with the object.
class BoundSocket {
 public:
  explicit BoundSocket(int type, std::uint16_t port = 0) {
    fd_ = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = -1;
      return;
    }
    socklen_t length = sizeof address;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
  }
  ~BoundSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  BoundSocket(const BoundSocket&) = delete;
  BoundSocket& operator=(const BoundSocket&) = delete;
  bool ok() const { return fd_ >= 0; }
  std::uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

// A UDP and TCP port on 127.0.0.1 that were both free a moment ago.
std::uint16_t free_dns_port() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    BoundSocket udp(SOCK_DGRAM);
    if (!udp.ok()) continue;
    BoundSocket tcp(SOCK_STREAM, udp.port());
    if (tcp.ok()) return udp.port();
  }
  throw std::runtime_error("no free UDP+TCP port on 127.0.0.1");
}

spec::DnsServer server_at(std::uint16_t port) {
  return {"test-dns", net::Endpoint{"127.0.0.1", port}};
}

Clock::time_point in(std::chrono::milliseconds timeout) {
  return Clock::now() + timeout;
}

std::vector<std::string> addresses(const TypeResult& result) {
  std::vector<std::string> list;
  for (const Answer& answer : result.answers) list.push_back(answer.address.to_string());
  return list;
}

// dnsmasq in the foreground serving a hosts file, on 127.0.0.1 and a free
// port; SIGKILLed and reaped in the destructor, and killed by the kernel if
// the test binary dies (PR_SET_PDEATHSIG). Construct on the main thread.
class Dnsmasq {
 public:
  // `local_domain`: make dnsmasq authoritative for it (--local=/domain/).
  explicit Dnsmasq(const std::string& hosts, const std::string& local_domain) {
    char dir_template[] = "/tmp/ringwatch-dns-test-XXXXXX";
    if (::mkdtemp(dir_template) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = dir_template;
    std::ofstream(dir_ / "hosts") << hosts;
    for (int attempt = 0; attempt < 5 && pid_ <= 0; ++attempt) start(local_domain);
    if (pid_ <= 0) throw std::runtime_error("dnsmasq did not start; see " + dir_.string());
  }
  ~Dnsmasq() {
    stop();
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  Dnsmasq(const Dnsmasq&) = delete;
  Dnsmasq& operator=(const Dnsmasq&) = delete;

  std::uint16_t port() const { return port_; }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = 0;
  }
  void pause() { ::kill(pid_, SIGSTOP); }
  void resume() { ::kill(pid_, SIGCONT); }

 private:
  void start(const std::string& local_domain) {
    port_ = free_dns_port();
    const passwd* user = ::getpwuid(::geteuid());
    std::vector<std::string> args = {"/usr/sbin/dnsmasq",
                                     "--keep-in-foreground",
                                     "--conf-file=/dev/null",
                                     "--no-resolv",
                                     "--no-hosts",
                                     "--listen-address=127.0.0.1",
                                     "--bind-interfaces",
                                     "--port=" + std::to_string(port_),
                                     "--addn-hosts=" + (dir_ / "hosts").string(),
                                     "--pid-file=",
                                     "--log-facility=" + (dir_ / "dnsmasq.log").string(),
                                     "--user=" + std::string(user ? user->pw_name : "nobody")};
    if (!local_domain.empty()) {
      args.push_back("--local=/" + local_domain + "/");
      args.push_back("--local-ttl=7");
    }
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    pid_ = pid;
    // Ready when it answers anything; gone if it exited (port taken: retry).
    AresResolver resolver;
    const auto until = Clock::now() + 5s;
    while (Clock::now() < until) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = 0;
        return;
      }
      const Lookup probe = resolver.resolve("ready.test", server_at(port_), in(200ms));
      if (is_reply(probe.a.outcome)) return;
      std::this_thread::sleep_for(20ms);
    }
    stop();
  }

  fs::path dir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = 0;
};

const char* kHosts =
    "127.10.0.11 b1.lab.ringwatch.test\n"
    "127.10.0.12 b2.lab.ringwatch.test\n"
    "127.10.0.13 b3.lab.ringwatch.test\n"
    "fd10::11 v6.lab.ringwatch.test\n";

class ResolverDnsmasqTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { dns_ = new Dnsmasq(kHosts, "lab.ringwatch.test"); }
  static void TearDownTestSuite() {
    delete dns_;
    dns_ = nullptr;
  }
  static Dnsmasq* dns_;
  AresResolver resolver;
};
Dnsmasq* ResolverDnsmasqTest::dns_ = nullptr;

TEST_F(ResolverDnsmasqTest, AnAnswerCarriesItsAddressAndTtl) {
  const Lookup lookup =
      resolver.resolve("b1.lab.ringwatch.test", server_at(dns_->port()), in(1000ms));
  EXPECT_EQ(lookup.name, "b1.lab.ringwatch.test");
  EXPECT_EQ(lookup.server, "127.0.0.1:" + std::to_string(dns_->port()));
  EXPECT_EQ(lookup.a.outcome, Outcome::noerror);
  ASSERT_EQ(lookup.a.answers.size(), 1u);
  EXPECT_EQ(lookup.a.answers[0].address.to_string(), "127.10.0.11");
  EXPECT_EQ(lookup.a.answers[0].ttl_s, 7u);
  // Authoritative for the domain: no AAAA record is an empty NOERROR.
  EXPECT_EQ(lookup.aaaa.outcome, Outcome::noerror);
  EXPECT_TRUE(lookup.aaaa.answers.empty());
  EXPECT_GT(lookup.elapsed, Clock::duration::zero());
  EXPECT_EQ(lookup.answers().size(), 1u);
}

TEST_F(ResolverDnsmasqTest, AnAaaaAnswerIsAnIpv6Address) {
  const Lookup lookup =
      resolver.resolve("v6.lab.ringwatch.test", server_at(dns_->port()), in(1000ms));
  EXPECT_EQ(lookup.a.outcome, Outcome::noerror);
  EXPECT_TRUE(lookup.a.answers.empty());
  EXPECT_EQ(lookup.aaaa.outcome, Outcome::noerror);
  ASSERT_EQ(lookup.aaaa.answers.size(), 1u);
  EXPECT_TRUE(lookup.aaaa.answers[0].address.v6);
  EXPECT_EQ(lookup.aaaa.answers[0].address.to_string(), "fd10::11");
  EXPECT_EQ(lookup.aaaa.answers[0].ttl_s, 7u);
}

TEST_F(ResolverDnsmasqTest, AnUnknownNameInItsDomainIsNxdomain) {
  const Lookup lookup =
      resolver.resolve("b9.lab.ringwatch.test", server_at(dns_->port()), in(1000ms));
  EXPECT_EQ(lookup.a.outcome, Outcome::nxdomain);
  EXPECT_EQ(lookup.aaaa.outcome, Outcome::nxdomain);
  EXPECT_TRUE(lookup.answers().empty());
}

TEST_F(ResolverDnsmasqTest, ANameOutsideItsDomainIsRefusedWithoutUpstream) {
  const Lookup lookup = resolver.resolve("b1.elsewhere.test", server_at(dns_->port()), in(1000ms));
  EXPECT_EQ(lookup.a.outcome, Outcome::refused);
  EXPECT_EQ(lookup.aaaa.outcome, Outcome::refused);
}

TEST_F(ResolverDnsmasqTest, ManyNamesAtOnceComeBackInOrder) {
  const std::vector<std::string> names = {"b3.lab.ringwatch.test", "b9.lab.ringwatch.test",
                                          "b1.lab.ringwatch.test", "b2.lab.ringwatch.test"};
  const std::vector<Lookup> lookups =
      resolver.resolve_all(names, server_at(dns_->port()), in(1000ms));
  ASSERT_EQ(lookups.size(), 4u);
  for (std::size_t i = 0; i < names.size(); ++i) EXPECT_EQ(lookups[i].name, names[i]);
  EXPECT_EQ(addresses(lookups[0].a), std::vector<std::string>{"127.10.0.13"});
  EXPECT_EQ(lookups[1].a.outcome, Outcome::nxdomain);
  EXPECT_EQ(addresses(lookups[2].a), std::vector<std::string>{"127.10.0.11"});
  EXPECT_EQ(addresses(lookups[3].a), std::vector<std::string>{"127.10.0.12"});
  EXPECT_TRUE(resolver.resolve_all({}, server_at(dns_->port()), in(1000ms)).empty());
}

TEST_F(ResolverDnsmasqTest, AStoppedServerTimesOutAtTheDeadline) {
  dns_->pause();
  const auto before = Clock::now();
  const Lookup lookup =
      resolver.resolve("b1.lab.ringwatch.test", server_at(dns_->port()), in(300ms));
  const auto took = Clock::now() - before;
  dns_->resume();
  EXPECT_EQ(lookup.a.outcome, Outcome::timeout);
  EXPECT_EQ(lookup.aaaa.outcome, Outcome::timeout);
  EXPECT_EQ(lookup.a.message,
            "no reply from 127.0.0.1:" + std::to_string(dns_->port()) + " within 300 ms");
  EXPECT_GE(took, 290ms);
  EXPECT_LT(took, 300ms + kSlack);  // the deadline, with a generous margin
}

TEST(ResolverDnsmasqNoLocalTest, RefusesUnknownNamesAndTheMissingType) {
  Dnsmasq dns(kHosts, "");
  AresResolver resolver;
  const Lookup known = resolver.resolve("b1.lab.ringwatch.test", server_at(dns.port()), in(1000ms));
  EXPECT_EQ(addresses(known.a), std::vector<std::string>{"127.10.0.11"});
  EXPECT_EQ(known.a.answers.at(0).ttl_s, 0u);
  EXPECT_EQ(known.aaaa.outcome, Outcome::refused);
  const Lookup unknown =
      resolver.resolve("b9.lab.ringwatch.test", server_at(dns.port()), in(1000ms));
  EXPECT_EQ(unknown.a.outcome, Outcome::refused);
  EXPECT_EQ(unknown.aaaa.outcome, Outcome::refused);
}

TEST(ResolverNoServerTest, APortWhereNothingListensIsConnectionRefusedAtOnce) {
  // A port free a moment ago; another if something took it meanwhile (then
  // the lookup times out instead). Refused, not timed out, is "at once".
  std::uint16_t port = 0;
  AresResolver resolver;
  Lookup lookup;
  for (int attempt = 0; attempt < 3; ++attempt) {
    {
      BoundSocket probe(SOCK_DGRAM);
      port = probe.port();
    }  // closed: nothing listens there now
    lookup = resolver.resolve("b1.lab.ringwatch.test", server_at(port), in(1000ms));
    if (lookup.a.outcome != Outcome::timeout) break;
  }
  EXPECT_EQ(lookup.a.outcome, Outcome::connection_refused);
  EXPECT_EQ(lookup.aaaa.outcome, Outcome::connection_refused);
  EXPECT_EQ(lookup.a.message,
            "connection refused by 127.0.0.1:" + std::to_string(port) + " (nothing listens there)");
}

TEST(ResolverNoServerTest, ASocketThatNeverAnswersTimesOutAtTheDeadline) {
  BoundSocket silent(SOCK_DGRAM);  // bound, never read
  ASSERT_TRUE(silent.ok());
  AresResolver resolver;
  const auto before = Clock::now();
  const std::vector<Lookup> lookups = resolver.resolve_all(
      {"b1.lab.ringwatch.test", "b2.lab.ringwatch.test"}, server_at(silent.port()), in(400ms));
  const auto took = Clock::now() - before;
  EXPECT_GE(took, 390ms);
  EXPECT_LT(took, 400ms + kSlack);
  for (const Lookup& lookup : lookups) {
    EXPECT_EQ(lookup.a.outcome, Outcome::timeout);
    EXPECT_EQ(lookup.aaaa.outcome, Outcome::timeout);
    EXPECT_GE(lookup.elapsed, 390ms);
  }
}

TEST(ResolverNoServerTest, ADeadlineAlreadyPassedTimesOutAtOnce) {
  BoundSocket silent(SOCK_DGRAM);
  AresResolver resolver;
  const auto before = Clock::now();
  const Lookup lookup =
      resolver.resolve("b1.lab.ringwatch.test", server_at(silent.port()), Clock::now() - 1ms);
  EXPECT_LT(Clock::now() - before, kSlack);
  EXPECT_EQ(lookup.a.outcome, Outcome::timeout);
  EXPECT_EQ(lookup.a.message,
            "no reply from 127.0.0.1:" + std::to_string(silent.port()) + " within 0 ms");
}

TEST(ResolverNoServerTest, TheSystemResolverReadsItsConfigurationAndIsBounded) {
  // A resolv.conf of our own naming a loopback server where nothing listens:
  // the system path is exercised and no query leaves the machine.
  const fs::path conf =
      fs::temp_directory_path() / ("ringwatch-resolv-" + std::to_string(::getpid()));
  { std::ofstream(conf) << "nameserver 127.0.0.1\n"; }
  AresResolver resolver(conf.string());
  const auto before = Clock::now();
  const Lookup lookup =
      resolver.resolve("b1.lab.ringwatch.test", {"system", std::nullopt}, in(500ms));
  fs::remove(conf);
  EXPECT_LT(Clock::now() - before, 500ms + kSlack);
  EXPECT_TRUE(lookup.server.starts_with("system resolver")) << lookup.server;
  EXPECT_NE(lookup.server.find("127.0.0.1"), std::string::npos) << lookup.server;
  EXPECT_FALSE(is_reply(lookup.a.outcome)) << lookup.a.message;
}

TEST(ResolverOutcomeTest, HaveStableNames) {
  EXPECT_STREQ(to_string(Outcome::noerror), "NOERROR");
  EXPECT_STREQ(to_string(Outcome::nxdomain), "NXDOMAIN");
  EXPECT_STREQ(to_string(Outcome::servfail), "SERVFAIL");
  EXPECT_STREQ(to_string(Outcome::refused), "REFUSED");
  EXPECT_STREQ(to_string(Outcome::timeout), "timeout");
  EXPECT_STREQ(to_string(Outcome::connection_refused), "connection refused");
  EXPECT_STREQ(to_string(Outcome::other), "error");
  EXPECT_TRUE(is_reply(Outcome::refused));
  EXPECT_FALSE(is_reply(Outcome::timeout));
  EXPECT_EQ(describe({"x", std::nullopt}), "system resolver");
  EXPECT_EQ(describe({"x", net::Endpoint{"::1", 53}}), "[::1]:53");
}

TEST(ResolverConcurrencyTest, SeveralThreadsResolveAtOnce) {
  Dnsmasq dns(kHosts, "lab.ringwatch.test");
  std::vector<std::thread> threads;
  std::vector<Lookup> results(8);
  for (std::size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] {
      AresResolver resolver;
      results[i] = resolver.resolve("b2.lab.ringwatch.test", server_at(dns.port()), in(1000ms));
    });
  }
  for (auto& thread : threads) thread.join();
  for (const Lookup& lookup : results) {
    EXPECT_EQ(addresses(lookup.a), std::vector<std::string>{"127.10.0.12"});
  }
}

}  // namespace
}  // namespace ringwatch::dns
