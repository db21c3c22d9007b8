// mc::get_many_each: many clients' multi-gets, pipelined from one thread
// where a kept connection takes them as one command, through the pool
// otherwise. Each result is what get_many would have returned; a peer that
// stalls, closes or talks garbage costs only its own result. The bounds on
// time are hang detectors, not speed tests.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "lib/mc/client.h"
#include "lib/util/worker_pool.h"
#include "tests/support/fake_peer.h"
#include "tests/support/memcached_process.h"

namespace ringwatch::mc {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::FakePeer;
using testing::PeerCommand;
using testing::PeerReply;

constexpr util::Deadlines kDeadlines{250ms, 500ms};
constexpr auto kHangBound = kDeadlines.connect + kDeadlines.io + 2s;

std::vector<GetRequest> requests_for(std::vector<std::unique_ptr<Client>>& clients,
                                     const std::vector<std::vector<std::string>>& keys) {
  std::vector<GetRequest> requests;
  for (std::size_t i = 0; i < clients.size(); ++i) requests.push_back({clients[i].get(), &keys[i]});
  return requests;
}

// "a" answered with `value` (the fake's own store is bypassed by scripts).
PeerReply value_of_a(const std::string& value) {
  return PeerReply::send("VALUE a 0 " + std::to_string(value.size()) + "\r\n" + value +
                         "\r\nEND\r\n");
}

TEST(GetManyEachTest, EveryResultIsWhatGetManyReturnsFirstThroughThePoolThenPipelined) {
  std::vector<std::unique_ptr<testing::MemcachedProcess>> servers;
  std::vector<std::unique_ptr<Client>> readers;
  std::vector<std::vector<std::string>> keys;
  for (int s = 0; s < 3; ++s) {
    servers.push_back(std::make_unique<testing::MemcachedProcess>());
    Client writer(servers.back()->endpoint(), kDeadlines);
    std::vector<Item> items;
    for (int k = 0; k < 20; ++k)
      items.push_back({"s" + std::to_string(s) + "k" + std::to_string(k),
                       std::string(k * 50, static_cast<char>('a' + s))});
    ASSERT_TRUE(writer.set_many(items, 60s).ok());
    keys.push_back({});
    for (const Item& item : items) keys.back().push_back(item.key);
    keys.back().push_back("absent-" + std::to_string(s));
    readers.push_back(std::make_unique<Client>(servers.back()->endpoint(), kDeadlines));
  }
  WorkerPool pool(4);
  // The first call has no kept connections (the pool connects), the second
  // pipelines on them.
  for (int call = 0; call < 2; ++call) {
    const auto results = get_many_each(requests_for(readers, keys), pool);
    ASSERT_EQ(results.size(), 3u);
    for (std::size_t s = 0; s < 3; ++s) {
      ASSERT_TRUE(results[s].ok()) << results[s].error().message;
      const Values& values = results[s].value();
      EXPECT_EQ(values.size(), 20u) << "call " << call;
      for (int k = 0; k < 20; ++k) {
        const auto found = values.find("s" + std::to_string(s) + "k" + std::to_string(k));
        ASSERT_NE(found, values.end());
        EXPECT_EQ(found->second, std::string(k * 50, static_cast<char>('a' + s)));
      }
    }
  }
}

TEST(GetManyEachTest, AStalledPeerCostsTheOthersNothingButTheWait) {
  FakePeer stalling, first, second;
  for (FakePeer* peer : {&stalling, &first, &second}) peer->on("get", value_of_a("x"));
  std::vector<std::unique_ptr<Client>> clients;
  for (FakePeer* peer : {&stalling, &first, &second}) {
    clients.push_back(std::make_unique<Client>(peer->endpoint(), kDeadlines));
  }
  const std::vector<std::vector<std::string>> keys(3, {"a"});
  WorkerPool pool(2);
  for (const auto& result : get_many_each(requests_for(clients, keys), pool)) {
    ASSERT_TRUE(result.ok());  // connections kept: the next call pipelines
  }
  stalling.on("get", PeerReply::never());
  // The stalled peer is read first: the others' replies wait past their
  // deadline, already arrived, and are still read.
  const auto start = Clock::now();
  const auto results = get_many_each(requests_for(clients, keys), pool);
  EXPECT_LT(Clock::now() - start, kHangBound);
  ASSERT_FALSE(results[0].ok());
  EXPECT_EQ(results[0].error().kind, ErrorKind::timeout);
  EXPECT_EQ(results[0].error().message,
            stalling.endpoint().to_string() + ": no reply within 500 ms");
  for (std::size_t i : {1u, 2u}) {
    ASSERT_TRUE(results[i].ok()) << results[i].error().message;
    EXPECT_EQ(results[i].value().at("a"), "x");
  }
}

TEST(GetManyEachTest, AKeptConnectionThePeerClosedIsRetriedOnANewOne) {
  FakePeer restarting;
  std::atomic<int> gets{0};
  restarting.on("get", [&](const PeerCommand&) {
    // The second get finds the peer "restarted": closed without a reply.
    return ++gets == 2 ? PeerReply::close_after("") : value_of_a("y");
  });
  std::vector<std::unique_ptr<Client>> clients;
  clients.push_back(std::make_unique<Client>(restarting.endpoint(), kDeadlines));
  const std::vector<std::vector<std::string>> keys(1, {"a"});
  WorkerPool pool(1);
  ASSERT_TRUE(get_many_each(requests_for(clients, keys), pool).at(0).ok());
  const auto results = get_many_each(requests_for(clients, keys), pool);
  ASSERT_TRUE(results.at(0).ok()) << results[0].error().message;
  EXPECT_EQ(results[0].value().at("a"), "y");
  EXPECT_EQ(gets.load(), 3);
  EXPECT_EQ(restarting.connections(), 2u);
}

TEST(GetManyEachTest, GarbageFromOnePeerIsItsOwnProtocolError) {
  FakePeer garbling, fine;
  garbling.on("get", value_of_a("z"));
  fine.on("get", value_of_a("w"));
  std::vector<std::unique_ptr<Client>> clients;
  clients.push_back(std::make_unique<Client>(garbling.endpoint(), kDeadlines));
  clients.push_back(std::make_unique<Client>(fine.endpoint(), kDeadlines));
  const std::vector<std::vector<std::string>> keys(2, {"a"});
  WorkerPool pool(2);
  for (const auto& result : get_many_each(requests_for(clients, keys), pool)) {
    ASSERT_TRUE(result.ok());
  }
  garbling.on("get", PeerReply::send("HELLO THERE\r\n"));
  const auto results = get_many_each(requests_for(clients, keys), pool);
  ASSERT_FALSE(results[0].ok());
  EXPECT_EQ(results[0].error().kind, ErrorKind::protocol) << results[0].error().message;
  ASSERT_TRUE(results[1].ok()) << results[1].error().message;
  EXPECT_EQ(results[1].value().at("a"), "w");
}

// Peers that never answer hold the window until the io deadline: the get
// past kMaxPipelinedGets only goes out once the first one has ended.
TEST(GetManyEachTest, NoMoreThanTheWindowIsAskedAtOnce) {
  FakePeer peer;
  peer.on("get", value_of_a("v"));
  std::vector<std::unique_ptr<Client>> clients;
  for (std::size_t i = 0; i <= kMaxPipelinedGets; ++i) {
    clients.push_back(std::make_unique<Client>(peer.endpoint(), kDeadlines));
  }
  const std::vector<std::vector<std::string>> keys(clients.size(), {"a"});
  WorkerPool pool(4);
  for (const auto& result : get_many_each(requests_for(clients, keys), pool)) {
    ASSERT_TRUE(result.ok());  // connections kept: the next call pipelines
  }
  std::mutex mutex;
  std::vector<Clock::time_point> arrivals;
  peer.on("get", [&](const PeerCommand&) {
    std::lock_guard lock(mutex);
    arrivals.push_back(Clock::now());
    return PeerReply::never();
  });
  const auto start = Clock::now();
  const auto results = get_many_each(requests_for(clients, keys), pool);
  EXPECT_LT(Clock::now() - start, kHangBound + kDeadlines.io);
  for (const auto& result : results) {
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().kind, ErrorKind::timeout) << result.error().message;
  }
  std::lock_guard lock(mutex);
  ASSERT_EQ(arrivals.size(), clients.size());
  std::sort(arrivals.begin(), arrivals.end());
  EXPECT_GE(arrivals.back() - start, kDeadlines.io);
}

// More keys than one get command takes, an invalid key and no keys at all
// are not pipelined: get_many's own answers, kept connection or not.
TEST(GetManyEachTest, WhatOneCommandCannotCarryIsGetManysAnswer) {
  testing::MemcachedProcess server;
  Client writer(server.endpoint(), kDeadlines);
  std::vector<Item> items;
  for (int k = 0; k < 1500; ++k) items.push_back({std::string(40, 'k') + std::to_string(k), "v"});
  ASSERT_TRUE(writer.set_many(items, 60s).ok());
  std::vector<std::vector<std::string>> keys(3);
  for (const Item& item : items) keys[0].push_back(item.key);  // ~66 KB of keys
  keys[1] = {"bad key"};
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 3; ++i)
    clients.push_back(std::make_unique<Client>(server.endpoint(), kDeadlines));
  WorkerPool pool(2);
  for (int call = 0; call < 2; ++call) {
    const auto results = get_many_each(requests_for(clients, keys), pool);
    ASSERT_TRUE(results[0].ok()) << results[0].error().message;
    EXPECT_EQ(results[0].value().size(), items.size());
    ASSERT_FALSE(results[1].ok());
    EXPECT_EQ(results[1].error().message, clients[1]->get_many(keys[1]).error().message);
    ASSERT_TRUE(results[2].ok());
    EXPECT_TRUE(results[2].value().empty());
  }
}

}  // namespace
}  // namespace ringwatch::mc
