// The resolver against a DNS server that does not play by the protocol
// (issue 12, point 8): every lookup ends by its deadline and says what the
// server did, and only a reply with usable records is an answer.
#include <gtest/gtest.h>

#include <chrono>

#include "lib/dns/answer.h"
#include "lib/dns/resolver.h"
#include "tests/support/fake_dns.h"

namespace ringwatch::dns {
namespace {

using namespace std::chrono_literals;
using testing::DnsQuestion;
using testing::DnsRecord;
using testing::DnsTransport;
using testing::FakeDns;

constexpr auto kBudget = 1000ms;
// A hang detector, not a speed test.
constexpr auto kHangBound = kBudget + 2s;

Lookup lookup(const FakeDns& fake) {
  AresResolver resolver;
  return resolver.resolve("b1.test", spec::DnsServer{"fake", fake.endpoint()},
                          Clock::now() + kBudget);
}

std::vector<DnsRecord> a_records(std::size_t count) {
  std::vector<DnsRecord> records;
  for (std::size_t i = 0; i < count; ++i) {
    records.push_back(
        {kTypeA, testing::address_rdata("127.10.0." + std::to_string(i % 250)), 60, std::nullopt});
  }
  return records;
}

// Answers A questions with `records` (AAAA with none), over either transport.
FakeDns::Script answering(std::vector<DnsRecord> records) {
  return [records](const DnsQuestion& question,
                   DnsTransport transport) -> std::optional<std::string> {
    const std::string reply =
        testing::dns_reply(question, question.type == kTypeA ? records : std::vector<DnsRecord>{});
    return transport == DnsTransport::tcp ? testing::with_length(reply) : reply;
  };
}

// Point 8: ares_parse_a_reply drops such a record, and the audit read the
// reply as "no address": CRITICAL dns_no_answer instead of undecided.
TEST(HostileDnsTest, AnARecordWithAWrongRdlengthIsAMalformedReply) {
  FakeDns fake;
  fake.answer(answering({{kTypeA, std::string("\x7f\x0a\x00", 3), 60, std::nullopt}}));
  Lookup result = lookup(fake);
  EXPECT_EQ(result.a.outcome, Outcome::other);
  EXPECT_EQ(result.a.message, "malformed reply: an A record with rdlength 3 (expected 4)");
  EXPECT_TRUE(result.a.answers.empty());
  EXPECT_EQ(result.aaaa.outcome, Outcome::noerror);

  // One good record beside it does not make the reply usable.
  std::vector<DnsRecord> mixed = a_records(1);
  mixed.push_back({kTypeA, std::string(5, '\x01'), 60, std::nullopt});
  fake.answer(answering(mixed));
  result = lookup(fake);
  EXPECT_EQ(result.a.outcome, Outcome::other);
  EXPECT_EQ(result.a.message, "malformed reply: an A record with rdlength 5 (expected 4)");

  // An rdlength running past the end of the message.
  fake.answer(answering({{kTypeA, testing::address_rdata("127.10.0.1"), 60, 40}}));
  result = lookup(fake);
  EXPECT_EQ(result.a.outcome, Outcome::other);
  EXPECT_EQ(result.a.message, "malformed reply: the answer section ends early");
}

// Point 8: a 64 KB answer cut short over TCP came back as c-ares' catch-all
// ECONNREFUSED, reported as "connection refused (nothing listens there)".
TEST(HostileDnsTest, A64KbAnswerCutShortOverTcpSaysSo) {
  FakeDns fake;
  fake.close_tcp_after_reply(true);
  fake.answer(
      [](const DnsQuestion& question, DnsTransport transport) -> std::optional<std::string> {
        if (transport == DnsTransport::udp) return testing::dns_reply(question, {}, 0, true);
        return testing::with_length(testing::dns_reply(question, a_records(4090))).substr(0, 30000);
      });
  const auto start = Clock::now();
  const Lookup result = lookup(fake);
  EXPECT_LT(Clock::now() - start, kHangBound);
  EXPECT_GE(fake.tcp_connections(), 1u);
  for (const TypeResult* r : {&result.a, &result.aaaa}) {
    EXPECT_EQ(r->outcome, Outcome::other);
    EXPECT_EQ(r->message.find(fake.endpoint().to_string() +
                              " closed the TCP connection in the middle of an answer (after "),
              0u)
        << r->message;
  }
}

TEST(HostileDnsTest, A64KbAnswerReadWholeIsAnAnswer) {
  FakeDns fake;
  fake.answer(answering(a_records(4090)));  // 65,463 bytes in one datagram
  Lookup result = lookup(fake);
  EXPECT_EQ(result.a.outcome, Outcome::noerror);
  EXPECT_EQ(result.a.answers.size(), 64u);  // the resolver keeps at most 64

  fake.answer(
      [](const DnsQuestion& question, DnsTransport transport) -> std::optional<std::string> {
        if (transport == DnsTransport::udp) return testing::dns_reply(question, {}, 0, true);
        return testing::with_length(testing::dns_reply(question, a_records(4090)));
      });
  result = lookup(fake);
  EXPECT_EQ(result.a.outcome, Outcome::noerror);
  EXPECT_EQ(result.a.answers.size(), 64u);
}

TEST(HostileDnsTest, GarbageSilenceAndHalfAnswersEndByTheDeadline) {
  const std::vector<FakeDns::Script> scripts = {
      // Garbage with the query's id.
      [](const DnsQuestion& question, DnsTransport) -> std::optional<std::string> {
        return question.query.substr(0, 2) + std::string(40, '\xff');
      },
      // Nothing at all.
      [](const DnsQuestion&, DnsTransport) -> std::optional<std::string> { return std::nullopt; },
      // Truncated, then a TCP answer that stops half-way and never ends.
      [](const DnsQuestion& question, DnsTransport transport) -> std::optional<std::string> {
        if (transport == DnsTransport::udp) return testing::dns_reply(question, {}, 0, true);
        return testing::with_length(testing::dns_reply(question, a_records(100))).substr(0, 500);
      },
      // A header claiming 65535 answers and holding none.
      [](const DnsQuestion& question, DnsTransport) -> std::optional<std::string> {
        std::string reply = testing::dns_reply(question, {});
        reply[6] = reply[7] = '\xff';
        return reply;
      },
  };
  for (std::size_t i = 0; i < scripts.size(); ++i) {
    FakeDns fake;
    fake.answer(scripts[i]);
    const auto start = Clock::now();
    const Lookup result = lookup(fake);
    EXPECT_LT(Clock::now() - start, kHangBound) << i;
    EXPECT_FALSE(is_reply(result.a.outcome)) << i << ": " << result.a.message;
    EXPECT_TRUE(result.a.answers.empty()) << i;
  }
}

TEST(DnsAnswerTest, FindsBrokenAddressRecordsOfTheAskedTypeOnly) {
  DnsQuestion question;
  question.query = std::string("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", 12) +
                   std::string(
                       "\x02"
                       "b1\x04test\x00\x00\x01\x00\x01",
                       13);
  const auto reply = [&](std::vector<DnsRecord> records) {
    return testing::dns_reply(question, records);
  };
  EXPECT_EQ(answer_problem(reply(a_records(3)), kTypeA), std::nullopt);
  EXPECT_EQ(answer_problem(reply({}), kTypeA), std::nullopt);
  const DnsRecord short_a{kTypeA, "\x01\x02", 60, std::nullopt};
  EXPECT_EQ(answer_problem(reply({short_a}), kTypeA), "an A record with rdlength 2 (expected 4)");
  EXPECT_EQ(answer_problem(reply({short_a}), kTypeAaaa), std::nullopt);  // not the asked type
  const DnsRecord long_aaaa{kTypeAaaa, std::string(17, '\0'), 60, std::nullopt};
  EXPECT_EQ(answer_problem(reply({long_aaaa}), kTypeAaaa),
            "an AAAA record with rdlength 17 (expected 16)");
  EXPECT_EQ(answer_problem(reply(a_records(2)).substr(0, 40), kTypeA),
            "the answer section ends early");
  EXPECT_EQ(answer_problem("\x12\x34", kTypeA), "the reply is shorter than a DNS header");
}

}  // namespace
}  // namespace ringwatch::dns
