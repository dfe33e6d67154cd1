// Work splitting shared by the CPU kernels that do not use the selective scan's persistent pool
// (RoIAlign, the fused optimiser steps): short-lived threads, as many as
// vimdense_scan_set_num_threads allows.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "vimdense/native.h"

namespace vimdense_parallel {

// Threads worth starting for `items` independent work items.
inline int worker_count(int64_t items) {
    int n = vimdense_scan_get_num_threads();
    if (n < 1) n = 1;
    return static_cast<int>(std::min<int64_t>(n, std::max<int64_t>(items, 1)));
}

// Runs fn(i) for every i in [0, items) on short-lived threads (the calling thread works too).
inline void parallel_for(int64_t items, const std::function<void(int64_t)>& fn) {
    const int workers = worker_count(items);
    if (workers <= 1) {
        for (int64_t i = 0; i < items; ++i) fn(i);
        return;
    }
    std::atomic<int64_t> next{0};
    auto job = [&] {
        for (;;) {
            const int64_t i = next.fetch_add(1, std::memory_order_relaxed);
            if (i >= items) break;
            fn(i);
        }
    };
    std::vector<std::thread> threads;
    threads.reserve(static_cast<size_t>(workers - 1));
    for (int w = 1; w < workers; ++w) threads.emplace_back(job);
    job();
    for (auto& t : threads) t.join();
}

}  // namespace vimdense_parallel
