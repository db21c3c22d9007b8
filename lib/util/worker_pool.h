#pragma once
// A fixed set of threads that runs "one task per endpoint" phases: run_all(n, f)
// calls f(0..n-1) concurrently (at most size() at a time) and returns when all
// have finished. Threads are created once, so a probe round does not pay for
// thread creation per phase; the calling thread runs tasks as well, and only
// as many workers are woken as the phase has tasks for.
//
// Thread-safety: run_all may be called from one thread at a time.

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ringwatch {

class WorkerPool {
 public:
  explicit WorkerPool(std::size_t threads);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  std::size_t size() const { return threads_.size(); }
  // f must not throw; exceptions terminate (tasks return results by value).
  void run_all(std::size_t count, const std::function<void(std::size_t)>& task);

 private:
  void work();

  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(std::size_t)>* task_ = nullptr;
  std::size_t next_ = 0, count_ = 0, finished_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace ringwatch
