#include "lib/mc/client.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "lib/util/deadlines.h"
#include "tests/support/fake_peer.h"
#include "tests/support/memcached_process.h"

namespace ringwatch::mc {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::FakePeer;
using testing::MemcachedProcess;
using testing::PeerReply;

constexpr util::Deadlines kDeadlines{std::chrono::milliseconds(250),
                                     std::chrono::milliseconds(500)};

std::chrono::milliseconds since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

// Values of varied length that exercise every byte, including \0 and "\r\n".
std::string value_for(std::size_t i) {
  std::string value;
  const std::size_t length = (i * 37) % 1500;
  value.reserve(length + 2);
  for (std::size_t j = 0; j < length; ++j) value.push_back(static_cast<char>((i + j * 7) & 0xff));
  if (i % 5 == 0) value += "\r\n";
  return value;
}

std::vector<Item> make_items(std::size_t count, const std::string& prefix) {
  std::vector<Item> items;
  items.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    items.push_back({prefix + std::to_string(i), value_for(i)});
  }
  return items;
}

std::vector<std::string> keys_of(const std::vector<Item>& items) {
  std::vector<std::string> keys;
  keys.reserve(items.size());
  for (const Item& item : items) keys.push_back(item.key);
  return keys;
}

std::string value_of(const Stats& stats, const std::string& key) {
  for (const auto& [name, value] : stats) {
    if (name == key) return value;
  }
  return {};
}

class McClientTest : public ::testing::Test {
 protected:
  MemcachedProcess server_;
};

TEST_F(McClientTest, SetManyIsVisibleThroughAnotherClientImmediately) {
  const auto items = make_items(1000, "ringwatch:test:setmany:");
  Client writer(server_.endpoint(), kDeadlines);
  Client reader(server_.endpoint(), kDeadlines);

  auto stored = writer.set_many(items, 60s);
  ASSERT_TRUE(stored.ok()) << stored.error().message;
  auto read = reader.get_many(keys_of(items));
  ASSERT_TRUE(read.ok()) << read.error().message;

  const Values& values = read.value();
  ASSERT_EQ(values.size(), items.size());
  for (const Item& item : items) {
    auto found = values.find(item.key);
    ASSERT_NE(found, values.end()) << item.key;
    ASSERT_EQ(found->second, item.value) << item.key;  // byte for byte
  }
}

TEST_F(McClientTest, RepeatedSetManyAndGetManyReuseTheConnection) {
  Client writer(server_.endpoint(), kDeadlines);
  Client reader(server_.endpoint(), kDeadlines);
  for (int round = 0; round < 5; ++round) {
    const auto items = make_items(300, "ringwatch:test:round" + std::to_string(round) + ":");
    ASSERT_TRUE(writer.set_many(items, 60s).ok());
    auto read = reader.get_many(keys_of(items));
    ASSERT_TRUE(read.ok()) << read.error().message;
    EXPECT_EQ(read.value().size(), items.size());
  }
  // One connection per client plus the process' readiness probe.
  auto stats = reader.stats();
  ASSERT_TRUE(stats.ok()) << stats.error().message;
  EXPECT_LE(std::stoi(value_of(stats.value(), "total_connections")), 4);
}

TEST_F(McClientTest, MissesAreAbsent) {
  Client client(server_.endpoint(), kDeadlines);
  ASSERT_TRUE(client.set_many({{"present:1", "one"}, {"present:2", ""}}, 60s).ok());

  auto read = client.get_many({"present:1", "absent:1", "present:2", "absent:2"});
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_EQ(read.value(), (Values{{"present:1", "one"}, {"present:2", ""}}));

  auto none = client.get_many({"absent:3", "absent:4"});
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_TRUE(none.value().empty());
}

TEST_F(McClientTest, EmptyRequestsSucceed) {
  Client client(server_.endpoint(), kDeadlines);
  EXPECT_TRUE(client.set_many({}, 60s).ok());
  auto read = client.get_many({});
  ASSERT_TRUE(read.ok());
  EXPECT_TRUE(read.value().empty());
}

TEST_F(McClientTest, SingleKeySetAndGet) {
  Client client(server_.endpoint(), kDeadlines);
  ASSERT_TRUE(client.set("single", std::string("a\0b\r\nc", 6), 60s).ok());
  auto hit = client.get("single");
  ASSERT_TRUE(hit.ok()) << hit.error().message;
  EXPECT_EQ(hit.value(), std::string("a\0b\r\nc", 6));

  auto miss = client.get("never-set");
  ASSERT_TRUE(miss.ok()) << miss.error().message;
  EXPECT_FALSE(miss.value().has_value());
}

TEST_F(McClientTest, LargeBatchesOfLongKeys) {
  std::vector<Item> items;
  for (int i = 0; i < 5000; ++i) {
    std::string key = "ringwatch:canary:round-000042:proxy-07:backend-15:key-" + std::to_string(i);
    key.resize(60, 'x');
    items.push_back({key, "v" + std::to_string(i)});
  }
  Client writer(server_.endpoint(), kDeadlines);
  Client reader(server_.endpoint(), kDeadlines);
  ASSERT_TRUE(writer.set_many(items, 60s).ok());

  auto keys = keys_of(items);
  keys.push_back("ringwatch:absent");
  auto read = reader.get_many(keys);
  ASSERT_TRUE(read.ok()) << read.error().message;
  ASSERT_EQ(read.value().size(), items.size());
  for (const Item& item : items) ASSERT_EQ(read.value().at(item.key), item.value);
}

TEST_F(McClientTest, RejectedItemDoesNotStopTheBatch) {
  // memcached answers "SERVER_ERROR object too large for cache" for this one
  // item; set_many does not report per-item failures, a later read shows them.
  Client client(server_.endpoint(), kDeadlines);
  auto stored = client.set_many(
      {{"small:1", "1"}, {"huge", std::string(2 << 20, 'x')}, {"small:2", "2"}}, 60s);
  ASSERT_TRUE(stored.ok()) << stored.error().message;
  auto read = client.get_many({"small:1", "huge", "small:2"});
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_EQ(read.value(), (Values{{"small:1", "1"}, {"small:2", "2"}}));
}

TEST_F(McClientTest, TtlIsApplied) {
  Client client(server_.endpoint(), kDeadlines);
  ASSERT_TRUE(client.set("short-lived", "x", 1s).ok());
  ASSERT_TRUE(client.get("short-lived").value().has_value());
  std::this_thread::sleep_for(2100ms);
  auto expired = client.get("short-lived");
  ASSERT_TRUE(expired.ok());
  EXPECT_FALSE(expired.value().has_value());
}

TEST_F(McClientTest, InvalidKeysAreRejectedBeforeSending) {
  Client client(server_.endpoint(), kDeadlines);
  for (const std::string& key :
       {std::string(), std::string("has space"), std::string("new\nline"), std::string(251, 'k')}) {
    auto stored = client.set_many({{"fine", "1"}, {key, "2"}}, 60s);
    ASSERT_FALSE(stored.ok()) << key;
    EXPECT_EQ(stored.error().kind, ErrorKind::other);
    EXPECT_TRUE(
        stored.error().message.starts_with(server_.endpoint().to_string() + ": invalid key #1: "))
        << stored.error().message;
    EXPECT_FALSE(client.get_many({key}).ok());
  }
  // Nothing of the rejected batch was sent, and the client still works.
  auto read = client.get_many({"fine"});
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_TRUE(read.value().empty());
  EXPECT_TRUE(client.set("fine", "1", 60s).ok());
  EXPECT_EQ(client.get("fine").value(), "1");
}

TEST_F(McClientTest, StatsHasPidAndConnections) {
  Client client(server_.endpoint(), kDeadlines);
  auto stats = client.stats();
  ASSERT_TRUE(stats.ok()) << stats.error().message;
  ASSERT_FALSE(stats.value().empty());
  EXPECT_EQ(stats.value().front().first, "pid");  // in the server's order
  EXPECT_EQ(value_of(stats.value(), "pid"), std::to_string(server_.pid()));
  EXPECT_FALSE(value_of(stats.value(), "curr_connections").empty());
  EXPECT_FALSE(value_of(stats.value(), "version").empty());
}

TEST_F(McClientTest, StatsConnsShowsThePeerAddress) {
  Client client(server_.endpoint(), kDeadlines);
  auto conns = client.stats("conns");
  ASSERT_TRUE(conns.ok()) << conns.error().message;

  // "<fd>:addr tcp:127.0.0.1:<port>" and "<fd>:state <state>" per connection.
  std::map<std::string, std::string> addr_by_fd, state_by_fd;
  for (const auto& [name, value] : conns.value()) {
    const auto colon = name.find(':');
    ASSERT_NE(colon, std::string::npos) << name;
    const std::string fd = name.substr(0, colon), field = name.substr(colon + 1);
    if (field == "addr") addr_by_fd[fd] = value;
    if (field == "state") state_by_fd[fd] = value;
  }
  int clients = 0;
  for (const auto& [fd, addr] : addr_by_fd) {
    if (state_by_fd[fd] == "conn_listening") continue;
    EXPECT_TRUE(addr.starts_with("tcp:127.0.0.1:")) << addr;
    ++clients;
  }
  EXPECT_EQ(clients, 1);  // this client's own connection
}

TEST_F(McClientTest, UnknownStatsGroupIsAServerError) {
  Client client(server_.endpoint(), kDeadlines);
  auto stats = client.stats("no-such-group");
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.error().kind, ErrorKind::server_error) << stats.error().message;
  EXPECT_TRUE(stats.error().message.starts_with(server_.endpoint().to_string() + ": "));
  EXPECT_TRUE(client.stats().ok());
  EXPECT_FALSE(client.stats("two words").ok());
}

TEST_F(McClientTest, MovedClientKeepsWorking) {
  Client first(server_.endpoint(), kDeadlines);
  ASSERT_TRUE(first.set("moved", "yes", 60s).ok());
  Client second(std::move(first));
  EXPECT_EQ(second.endpoint(), server_.endpoint());
  EXPECT_EQ(second.get("moved").value(), "yes");

  Client third(net::Endpoint{"127.0.0.1", 1}, kDeadlines);
  third = std::move(second);
  EXPECT_EQ(third.get("moved").value(), "yes");
  EXPECT_EQ(third.endpoint(), server_.endpoint());
}

TEST_F(McClientTest, ClientsOnSeparateThreadsAreIndependent) {
  constexpr int kThreads = 4;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Client client(server_.endpoint(), kDeadlines);
      const auto items = make_items(200, "thread" + std::to_string(t) + ":");
      for (int round = 0; round < 5; ++round) {
        if (!client.set_many(items, 60s).ok()) ++failures;
        auto read = client.get_many(keys_of(items));
        if (!read.ok() || read.value().size() != items.size()) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(McClientErrorTest, RefusedConnectionIsReportedEveryTime) {
  const net::Endpoint endpoint{"127.0.0.1", testing::free_port("127.0.0.1")};
  Client client(endpoint, kDeadlines);
  const std::string expected = endpoint.to_string() + ": connect refused";

  // Repeated calls keep reporting the cause, not a state left by the
  // previous failure.
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto start = Clock::now();
    auto read = client.get_many({"a", "b", "c"});
    ASSERT_FALSE(read.ok());
    EXPECT_EQ(read.error().kind, ErrorKind::connect_refused);
    EXPECT_EQ(read.error().message, expected);
    EXPECT_LT(since(start), kDeadlines.connect + 250ms);

    auto stored = client.set_many({{"a", "1"}, {"b", "2"}}, 60s);
    ASSERT_FALSE(stored.ok());
    EXPECT_EQ(stored.error().kind, ErrorKind::connect_refused);
    EXPECT_EQ(stored.error().message, expected);

    auto stats = client.stats();
    ASSERT_FALSE(stats.ok());
    EXPECT_EQ(stats.error().kind, ErrorKind::connect_refused);
    EXPECT_EQ(stats.error().message, expected);

    auto single = client.get("a");
    ASSERT_FALSE(single.ok());
    EXPECT_EQ(single.error().message, expected);
  }
}

TEST(McClientErrorTest, ConnectTimesOutWhenTheListenQueueIsFull) {
  // A listener that never accepts, its queue filled: the kernel drops further
  // SYNs, so connecting hangs until the connect deadline.
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), length), 0);
  ASSERT_EQ(::listen(listener, 0), 0);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length), 0);
  std::vector<int> fillers;
  for (int i = 0; i < 4; ++i) {
    fillers.push_back(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    (void)::connect(fillers.back(), reinterpret_cast<sockaddr*>(&address), length);
  }
  std::this_thread::sleep_for(50ms);

  const net::Endpoint endpoint{"127.0.0.1", ntohs(address.sin_port)};
  Client client(endpoint, kDeadlines);
  const auto start = Clock::now();
  auto read = client.get_many({"a"});
  const auto elapsed = since(start);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().kind, ErrorKind::timeout);
  EXPECT_EQ(read.error().message, endpoint.to_string() + ": connect timed out after 250 ms");
  EXPECT_GE(elapsed, kDeadlines.connect - 10ms);
  EXPECT_LT(elapsed, kDeadlines.connect * 3);

  for (const int fd : fillers) ::close(fd);
  ::close(listener);
}

TEST(McClientErrorTest, HostMustBeAnAddressLiteral) {
  Client client(net::Endpoint{"localhost", 11211}, kDeadlines);
  auto read = client.get_many({"a"});
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().kind, ErrorKind::other);
  EXPECT_EQ(read.error().message,
            "localhost:11211: host is not an IP address literal (names are never resolved)");
}

TEST(McClientErrorTest, ServerThatWentAwayIsReportedAsRefused) {
  MemcachedProcess server;
  Client client(server.endpoint(), kDeadlines);
  ASSERT_TRUE(client.set("k", "v", 60s).ok());
  server.stop();

  // The kept connection is found closed, the retry on a new one is refused.
  const std::string expected = server.endpoint().to_string() + ": connect refused";
  auto read = client.get_many({"k"});
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().kind, ErrorKind::connect_refused);
  EXPECT_EQ(read.error().message, expected);
  auto stored = client.set_many({{"k", "v"}}, 60s);
  ASSERT_FALSE(stored.ok());
  EXPECT_EQ(stored.error().message, expected);
}

TEST(McClientErrorTest, RestartedServerIsReconnectedToWithoutAnError) {
  auto server = std::make_unique<MemcachedProcess>();
  const net::Endpoint endpoint = server->endpoint();
  Client client(endpoint, kDeadlines);
  ASSERT_TRUE(client.set("k", "v", 60s).ok());
  server.reset();
  MemcachedProcess::Options options;
  options.port = endpoint.port;
  server = std::make_unique<MemcachedProcess>(options);

  auto read = client.get_many({"k"});
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_TRUE(read.value().empty());  // a new, empty memcached
  EXPECT_TRUE(client.set("k", "v", 60s).ok());
  server.reset();
  MemcachedProcess again(options);
  EXPECT_TRUE(client.stats().ok());
}

TEST(McClientErrorTest, NonMemcachedReplyIsAProtocolError) {
  FakePeer peer;
  peer.on("get", PeerReply::send("HTTP/1.1 400 Bad Request\r\n\r\n"));
  Client client(peer.endpoint(), kDeadlines);
  auto read = client.get_many({"a", "b"});
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().kind, ErrorKind::protocol);
  EXPECT_EQ(
      read.error().message,
      peer.endpoint().to_string() + ": reply is not memcached protocol: HTTP/1.1 400 Bad Request");
}

TEST(McClientErrorTest, ServerErrorRepliesAreServerErrors) {
  // What twemproxy answers when the backend for a key is unreachable.
  FakePeer peer;
  peer.on("get", PeerReply::send("SERVER_ERROR Connection refused\r\n"));
  peer.on("set", PeerReply::send("SERVER_ERROR Connection refused\r\n"));
  Client client(peer.endpoint(), kDeadlines);
  const std::string expected = peer.endpoint().to_string() + ": server error: Connection refused";

  auto read = client.get_many({"a"});
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().kind, ErrorKind::server_error);
  EXPECT_EQ(read.error().message, expected);

  // A failed set does not stop the batch: the count says how many failed.
  auto stored = client.set_many({{"a", "1"}, {"b", "2"}, {"c", "3"}}, 60s);
  ASSERT_FALSE(stored.ok());
  EXPECT_EQ(stored.error().kind, ErrorKind::server_error);
  EXPECT_TRUE(stored.error().message.starts_with(expected + " (")) << stored.error().message;
  EXPECT_TRUE(stored.error().message.ends_with(" of 3 sets)")) << stored.error().message;
}

// memcached under SIGSTOP: the kernel still completes TCP handshakes from the
// listen backlog, but nothing is ever read or answered.
class StalledServerTest : public ::testing::Test {
 protected:
  static constexpr std::chrono::milliseconds kBound = kDeadlines.connect + kDeadlines.io * 3;

  void expect_timeout(const Error& error, Clock::time_point start) {
    EXPECT_EQ(error.kind, ErrorKind::timeout) << error.message;
    EXPECT_EQ(error.message, server_.endpoint().to_string() + ": no reply within 500 ms");
    EXPECT_LT(since(start), kBound);
  }

  MemcachedProcess server_;
};

TEST_F(StalledServerTest, GetManyTimesOut) {
  Client client(server_.endpoint(), kDeadlines);
  ASSERT_TRUE(client.set_many(make_items(1000, "k"), 60s).ok());
  server_.pause();
  const auto start = Clock::now();
  auto read = client.get_many(keys_of(make_items(1000, "k")));
  ASSERT_FALSE(read.ok());
  expect_timeout(read.error(), start);
}

TEST_F(StalledServerTest, GetManyOfManyLongKeysTimesOutOnce) {
  // 6 MB of keys, more than the kernel buffers for a peer that does not read:
  // the whole call, however many gets it takes, has one io deadline.
  std::vector<std::string> keys;
  for (int i = 0; i < 100000; ++i)
    keys.push_back(std::string(54, 'k') + std::to_string(100000 + i));
  server_.pause();
  Client client(server_.endpoint(), kDeadlines);  // connects while stalled
  const auto start = Clock::now();
  auto read = client.get_many(keys);
  ASSERT_FALSE(read.ok());
  expect_timeout(read.error(), start);
}

TEST_F(StalledServerTest, SetManyTimesOut) {
  Client client(server_.endpoint(), kDeadlines);
  ASSERT_TRUE(client.stats().ok());  // connected before the stall
  server_.pause();
  const auto start = Clock::now();
  auto stored = client.set_many(make_items(1000, "k"), 60s);
  ASSERT_FALSE(stored.ok());
  expect_timeout(stored.error(), start);
}

TEST_F(StalledServerTest, SetManyLargerThanTheSocketBuffersTimesOutOnce) {
  std::vector<Item> items;
  for (int i = 0; i < 20000; ++i)
    items.push_back({"k" + std::to_string(i), std::string(1000, 'v')});
  server_.pause();
  Client client(server_.endpoint(), kDeadlines);
  const auto start = Clock::now();
  auto stored = client.set_many(items, 60s);
  ASSERT_FALSE(stored.ok());
  expect_timeout(stored.error(), start);
}

TEST_F(StalledServerTest, StatsTimesOut) {
  server_.pause();
  Client client(server_.endpoint(), kDeadlines);
  const auto start = Clock::now();
  auto stats = client.stats("conns");
  ASSERT_FALSE(stats.ok());
  expect_timeout(stats.error(), start);
}

TEST_F(StalledServerTest, ClientWorksAgainAfterResume) {
  Client client(server_.endpoint(), kDeadlines);
  ASSERT_TRUE(client.set("before", "1", 60s).ok());
  server_.pause();
  auto during = client.get("before");
  ASSERT_FALSE(during.ok());
  EXPECT_EQ(during.error().kind, ErrorKind::timeout);
  server_.resume();

  auto after = client.get("before");
  ASSERT_TRUE(after.ok()) << after.error().message;
  EXPECT_EQ(after.value(), "1");
  EXPECT_TRUE(client.set_many(make_items(100, "after:"), 60s).ok());
  auto stats = client.stats();
  ASSERT_TRUE(stats.ok()) << stats.error().message;
}

TEST_F(StalledServerTest, DestroyingAClientDoesNotWaitForTheServer) {
  auto client = std::make_unique<Client>(server_.endpoint(), kDeadlines);
  ASSERT_TRUE(client->set("k", "v", 60s).ok());
  server_.pause();
  const auto start = Clock::now();
  client.reset();
  EXPECT_LT(since(start), kDeadlines.io / 2);  // would be a full io wait if it drained
}

}  // namespace
}  // namespace ringwatch::mc
