#include "server/task_queue.h"

#include <atomic>
#include <chrono>
#include <thread>

#include "gtest/gtest.h"

namespace nightshift::server {
namespace {

bool WaitUntil(const std::function<bool()>& pred) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// Jobs that block (like event streams) must each get a thread, even when a burst of them
// arrives while other workers are idle.
TEST(ElasticTaskQueue, BurstOfBlockingJobsAllStartWhileWorkersIdle) {
  ElasticTaskQueue queue(256, /*idle_ms=*/60'000);
  // Make 8 workers and let them go idle.
  std::atomic<int> quick{0};
  for (int i = 0; i < 8; ++i) queue.enqueue([&] { ++quick; });
  ASSERT_TRUE(WaitUntil([&] { return quick == 8; }));

  std::atomic<int> started{0};
  std::atomic<bool> release{false};
  for (int i = 0; i < 100; ++i) {
    queue.enqueue([&] {
      ++started;
      while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    });
  }
  EXPECT_TRUE(WaitUntil([&] { return started == 100; })) << started << " of 100 started";
  EXPECT_LE(queue.live_threads(), 108u);
  release = true;
  queue.shutdown();
  EXPECT_EQ(queue.live_threads(), 0u);
}

TEST(ElasticTaskQueue, StartsEmptyAndIdleWorkersExit) {
  ElasticTaskQueue queue(4, /*idle_ms=*/20);
  EXPECT_EQ(queue.live_threads(), 0u);
  std::atomic<int> ran{0};
  for (int i = 0; i < 10; ++i) queue.enqueue([&] { ++ran; });
  ASSERT_TRUE(WaitUntil([&] { return ran == 10; }));
  EXPECT_LE(queue.live_threads(), 4u);
  EXPECT_TRUE(WaitUntil([&] { return queue.live_threads() == 0; }));
}

}  // namespace
}  // namespace nightshift::server
