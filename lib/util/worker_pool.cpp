#include "lib/util/worker_pool.h"

#include <algorithm>

namespace ringwatch {

WorkerPool::WorkerPool(std::size_t threads) {
  if (threads == 0) threads = 1;
  threads_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& thread : threads_) thread.join();
}

void WorkerPool::run_all(std::size_t count, const std::function<void(std::size_t)>& task) {
  if (count == 0) return;
  std::unique_lock lock(mutex_);
  task_ = &task;
  next_ = 0;
  count_ = count;
  finished_ = 0;
  // The caller takes tasks too, so only count - 1 workers are needed: waking
  // every thread of a 32-thread pool for a phase of 12 tasks costs more CPU
  // (context switches) than the tasks' own I/O on a small round.
  const std::size_t helpers = std::min(count - 1, threads_.size());
  if (helpers == threads_.size()) {
    wake_.notify_all();
  } else {
    for (std::size_t i = 0; i < helpers; ++i) wake_.notify_one();
  }
  while (next_ < count_) {
    const std::size_t index = next_++;
    lock.unlock();
    task(index);
    lock.lock();
    ++finished_;
  }
  done_.wait(lock, [this] { return finished_ == count_; });
  task_ = nullptr;
  count_ = 0;
}

void WorkerPool::work() {
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [this] { return stopping_ || next_ < count_; });
    if (stopping_) return;
    const std::size_t index = next_++;
    const auto* task = task_;
    lock.unlock();
    (*task)(index);
    lock.lock();
    if (++finished_ == count_) done_.notify_all();
  }
}

}  // namespace ringwatch
