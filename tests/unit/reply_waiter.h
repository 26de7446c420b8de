// Call(): runs a FileSystem operation and waits for its reply, which may
// come inline or on another thread (fuse/file_system.h's Reply<T>).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>

namespace floatmount::fuse {

template <typename T>
struct Got {
  int err = -1;
  T value{};
};

template <typename T, typename F>
Got<T> Call(F&& issue, std::chrono::seconds timeout = std::chrono::seconds(30)) {
  auto p = std::make_shared<std::promise<Got<T>>>();
  auto f = p->get_future();
  issue([p](int err, T value) { p->set_value(Got<T>{err, std::move(value)}); });
  EXPECT_EQ(f.wait_for(timeout), std::future_status::ready);
  return f.get();
}

}  // namespace floatmount::fuse
