// net::send_and_await_close, the batch behind twemproxy's freshness barrier:
// every endpoint gets its own outcome, in order, whatever the others do;
// hostile peers end in their deadline or the cap; no more than
// kMaxConcurrentConnections are open at a time.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "lib/net/tcp.h"
#include "tests/support/fake_peer.h"
#include "tests/support/memcached_process.h"

namespace ringwatch::net {
namespace {

using namespace std::chrono_literals;
using testing::FakePeer;
using testing::PeerCommand;
using testing::PeerReply;

constexpr util::Deadlines kDeadlines{250ms, 300ms};

TEST(SendAndAwaitCloseTest, PeersThatCloseOnQuitAreNoErrorsPastTheConcurrencyBound) {
  FakePeer peer;  // a well-behaved memcached: `quit` closes
  const std::vector<Endpoint> endpoints(kMaxConcurrentConnections + 6, peer.endpoint());
  const auto outcomes = send_and_await_close(endpoints, "quit\r\n", kDeadlines);
  ASSERT_EQ(outcomes.size(), endpoints.size());
  for (const auto& outcome : outcomes) EXPECT_FALSE(outcome) << outcome->message;
  EXPECT_EQ(peer.connections(), endpoints.size());
}

TEST(SendAndAwaitCloseTest, RealMemcachedClosesOnQuit) {
  testing::MemcachedProcess memcached;
  const auto outcomes =
      send_and_await_close({memcached.endpoint(), memcached.endpoint()}, "quit\r\n", kDeadlines);
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_FALSE(outcomes[0]);
  EXPECT_FALSE(outcomes[1]);
}

TEST(SendAndAwaitCloseTest, EveryEndpointGetsItsOwnOutcomeInOrder) {
  FakePeer closing;
  FakePeer silent;
  silent.on("quit", PeerReply::never());
  const Endpoint refused{"127.0.0.1", testing::free_port()};
  const auto outcomes =
      send_and_await_close({closing.endpoint(), refused, {"localhost", 11211}, silent.endpoint()},
                           "quit\r\n", kDeadlines);
  ASSERT_EQ(outcomes.size(), 4u);
  EXPECT_FALSE(outcomes[0]);
  ASSERT_TRUE(outcomes[1]);
  EXPECT_EQ(outcomes[1]->kind, TcpErrorKind::refused);
  EXPECT_EQ(outcomes[1]->message, refused.to_string() + ": connect refused");
  ASSERT_TRUE(outcomes[2]);
  EXPECT_EQ(outcomes[2]->kind, TcpErrorKind::invalid);
  ASSERT_TRUE(outcomes[3]);
  EXPECT_EQ(outcomes[3]->kind, TcpErrorKind::timeout);
  EXPECT_EQ(outcomes[3]->message, silent.endpoint().to_string() + ": no close within 300 ms");
}

TEST(SendAndAwaitCloseTest, WhatAPeerSaysBeforeClosingIsReadAndDropped) {
  FakePeer talkative;
  talkative.on("quit", PeerReply::close_after(std::string(10'000, 'x')));
  const auto outcomes = send_and_await_close({talkative.endpoint()}, "quit\r\n", kDeadlines);
  EXPECT_FALSE(outcomes.at(0));
}

TEST(SendAndAwaitCloseTest, AnEndlessReplyStopsAtTheCap) {
  FakePeer endless;
  endless.on("quit", PeerReply::endless("", std::string(4096, 'x')));
  // An io deadline the cap always beats, however loaded the machine.
  const auto outcomes =
      send_and_await_close({endless.endpoint()}, "quit\r\n", {250ms, 30s}, 64 * 1024);
  ASSERT_TRUE(outcomes.at(0));
  EXPECT_EQ(outcomes[0]->kind, TcpErrorKind::too_large);
  EXPECT_EQ(outcomes[0]->message,
            endless.endpoint().to_string() + ": reply larger than 65536 bytes");
}

// Peers that never close hold every slot until the io deadline: the
// connection past the bound can only start once one of the first ones ended.
TEST(SendAndAwaitCloseTest, NoMoreThanTheBoundAreOpenAtOnce) {
  using Clock = std::chrono::steady_clock;
  std::mutex mutex;
  std::vector<Clock::time_point> arrivals;
  FakePeer silent;
  silent.on("quit", [&](const PeerCommand&) {
    std::lock_guard lock(mutex);
    arrivals.push_back(Clock::now());
    return PeerReply::never();
  });
  const std::vector<Endpoint> endpoints(kMaxConcurrentConnections + 1, silent.endpoint());
  const auto started = Clock::now();
  const auto outcomes = send_and_await_close(endpoints, "quit\r\n", kDeadlines);
  for (const auto& outcome : outcomes) {
    ASSERT_TRUE(outcome);
    EXPECT_EQ(outcome->kind, TcpErrorKind::timeout) << outcome->message;
  }
  std::lock_guard lock(mutex);
  ASSERT_EQ(arrivals.size(), endpoints.size());
  std::sort(arrivals.begin(), arrivals.end());
  EXPECT_GE(arrivals.back() - started, kDeadlines.io);
}

}  // namespace
}  // namespace ringwatch::net
