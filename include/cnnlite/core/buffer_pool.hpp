// Aligned, reference-counted storage blocks recycled through a size-keyed pool. A training
// step asks for the same buffer sizes every time, so after the first step every tensor
// allocation is a pool hit: no malloc, no page faults, no munmap in the hot loop.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace cnnlite {

/// Counters of the storage pool; tests use them to prove that a steady-state step is served
/// entirely from recycled buffers.
struct BufferPoolStats {
    std::uint64_t hits = 0;          ///< requests served from the pool
    std::uint64_t misses = 0;        ///< requests that went to the system allocator
    std::size_t cached_bytes = 0;    ///< bytes currently parked in the pool
};

namespace detail {

/// One allocation: a 64-byte header followed by 64-byte-aligned payload.
struct alignas(64) Block {
    std::atomic<int> refs{1};
    std::size_t capacity = 0;  // payload bytes

    void* payload() { return reinterpret_cast<unsigned char*>(this) + sizeof(Block); }
};
static_assert(sizeof(Block) == 64, "payload must start 64-byte aligned");

class BufferPool {
public:
    static BufferPool& instance() {
        // Leaked on purpose: tensors with static storage duration may release blocks after
        // main returns, so the pool must outlive every static.
        static BufferPool* pool = new BufferPool();
        return *pool;
    }

    Block* acquire(std::size_t bytes) {
        const std::size_t capacity = round_up(bytes);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            auto it = free_.find(capacity);
            if (it != free_.end() && !it->second.empty()) {
                Block* block = it->second.back();
                it->second.pop_back();
                cached_bytes_ -= capacity;
                ++hits_;
                block->refs.store(1, std::memory_order_relaxed);
                return block;
            }
            ++misses_;
        }
        void* memory = std::aligned_alloc(64, sizeof(Block) + capacity);
        if (!memory) throw std::bad_alloc();
        Block* block = new (memory) Block();
        block->capacity = capacity;
        return block;
    }

    void release(Block* block) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (cached_bytes_ + block->capacity <= max_cached_bytes_) {
                free_[block->capacity].push_back(block);
                cached_bytes_ += block->capacity;
                return;
            }
        }
        block->~Block();
        std::free(block);
    }

    /// Returns every parked block to the system.
    void trim() {
        std::lock_guard<std::mutex> lock(mutex_);
        for (auto& entry : free_) {
            for (Block* block : entry.second) {
                block->~Block();
                std::free(block);
            }
            entry.second.clear();
        }
        cached_bytes_ = 0;
    }

    void set_max_cached_bytes(std::size_t bytes) {
        std::lock_guard<std::mutex> lock(mutex_);
        max_cached_bytes_ = bytes;
    }

    BufferPoolStats stats() {
        std::lock_guard<std::mutex> lock(mutex_);
        return {hits_, misses_, cached_bytes_};
    }

private:
    // Small buffers round to 64 bytes, large ones to 4 KiB pages, so that sizes that differ
    // by a few elements (e.g. the last, shorter batch) still share blocks.
    static std::size_t round_up(std::size_t bytes) {
        const std::size_t unit = bytes > (64u << 10) ? 4096u : 64u;
        return (bytes + unit - 1) / unit * unit + (bytes == 0 ? unit : 0);
    }

    std::mutex mutex_;
    std::unordered_map<std::size_t, std::vector<Block*>> free_;
    std::size_t cached_bytes_ = 0;
    std::size_t max_cached_bytes_ = std::size_t(1) << 30;
    std::uint64_t hits_ = 0;
    std::uint64_t misses_ = 0;
};

}  // namespace detail

/// Statistics of the global storage pool.
inline BufferPoolStats buffer_pool_stats() { return detail::BufferPool::instance().stats(); }
/// Frees every cached (unused) block, e.g. after training and before a memory-hungry phase.
inline void trim_buffer_pool() { detail::BufferPool::instance().trim(); }
/// Caps the bytes the pool keeps parked (default 1 GiB); blocks beyond it are freed.
inline void set_buffer_pool_limit(std::size_t bytes) { detail::BufferPool::instance().set_max_cached_bytes(bytes); }

}  // namespace cnnlite
