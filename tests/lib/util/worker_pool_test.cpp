#include "lib/util/worker_pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace ringwatch {
namespace {

// Waits until `parties` callers have arrived, or gives up after a deadline
// (so a pool that runs fewer tasks at once than promised fails, not hangs).
class Rendezvous {
 public:
  explicit Rendezvous(std::size_t parties) : parties_(parties) {}
  bool arrive_and_wait() {
    std::unique_lock lock(mutex_);
    if (++arrived_ == parties_) all_here_.notify_all();
    return all_here_.wait_for(lock, std::chrono::seconds(10),
                              [this] { return arrived_ >= parties_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable all_here_;
  std::size_t parties_, arrived_ = 0;
};

TEST(WorkerPool, RunsEveryIndexExactlyOnce) {
  WorkerPool pool(4);
  for (std::size_t count : {1u, 3u, 4u, 5u, 100u}) {
    std::vector<std::atomic<int>> runs(count);
    pool.run_all(count, [&](std::size_t i) { runs[i]++; });
    for (std::size_t i = 0; i < count; ++i) EXPECT_EQ(runs[i].load(), 1) << count << " " << i;
  }
}

TEST(WorkerPool, RunsAsManyTasksAtOnceAsItHasThreadsPlusTheCaller) {
  // Four threads and the caller: five tasks that each wait for the other four
  // finish only if all five run at the same time.
  WorkerPool pool(4);
  Rendezvous rendezvous(5);
  std::atomic<int> met{0};
  pool.run_all(5, [&](std::size_t) { met += rendezvous.arrive_and_wait() ? 1 : 0; });
  EXPECT_EQ(met.load(), 5);
}

TEST(WorkerPool, APhaseWithFewerTasksThanThreadsStillRunsThemConcurrently) {
  WorkerPool pool(8);
  for (int phase = 0; phase < 20; ++phase) {
    Rendezvous rendezvous(3);
    std::atomic<int> met{0};
    pool.run_all(3, [&](std::size_t) { met += rendezvous.arrive_and_wait() ? 1 : 0; });
    ASSERT_EQ(met.load(), 3) << "phase " << phase;
  }
}

TEST(WorkerPool, ASingleTaskRunsOnTheCallingThread) {
  WorkerPool pool(2);
  std::thread::id ran_on;
  pool.run_all(1, [&](std::size_t) { ran_on = std::this_thread::get_id(); });
  EXPECT_EQ(ran_on, std::this_thread::get_id());
}

}  // namespace
}  // namespace ringwatch
