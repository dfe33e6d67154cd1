// Internal part of the CUDA-on-CPU emulation (included by its cuda_runtime.h, never on its own):
// error state, device memory, and the executor that runs kernels.
//
// Execution: the blocks of a grid run one after another on the launching OS thread; the threads of a
// block run as fibers (one stack each, switched cooperatively), each until it finishes or waits at a
// barrier. Cooperative switching makes a run deterministic and cheap on a small CPU (a warp shuffle
// costs a few context switches, not OS thread wake-ups), and a data race that a missing barrier
// leaves open shows up in every run instead of once in a while: thread i runs to its next barrier
// before thread i + 1 starts, so a thread reading what a later thread writes reads it too early.
// Odd-numbered blocks run their threads in descending order, so a read of what an earlier thread
// writes is caught as well. What a GPU would hang on or leave undefined (a deadlocked barrier, a
// __syncthreads at different places, a shuffle with lanes missing or disagreeing masks) stops the
// kernel with a message and a sticky error, as do invalid memory accesses (guard pages).
#pragma once
#ifndef VIMDENSE_CUDA_EMULATION_RUNTIME
#error "include <cuda_runtime.h> from native/tests/cuda_emulation, not this file"
#endif

#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#if defined(__x86_64__) && defined(__ELF__) && !defined(VIMDENSE_CUDA_EMULATION_UCONTEXT)
#define VIMDENSE_CUDA_EMULATION_ASM_SWITCH 1
#else
#include <ucontext.h>
#endif

namespace vimdense_cuda_emulation {

constexpr unsigned kMaxThreadsPerBlock = 1024;
constexpr unsigned kWarp = 32;

// --- Error state --------------------------------------------------------------------------------------

inline cudaError_t& last_error() {
    static thread_local cudaError_t error = cudaSuccess;
    return error;
}
inline std::atomic<cudaError_t>& sticky_error() {
    static std::atomic<cudaError_t> error{cudaSuccess};
    return error;
}
// A failed call is remembered as the thread's last error, as the real runtime does.
inline cudaError_t record(cudaError_t err) {
    if (err != cudaSuccess) last_error() = err;
    return err;
}

inline const char* error_name(cudaError_t err) {
    switch (err) {
        case cudaSuccess: return "cudaSuccess";
        case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
        case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
        case cudaErrorInitializationError: return "cudaErrorInitializationError";
        case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
        case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
        case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
        case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
        case cudaErrorNoDevice: return "cudaErrorNoDevice";
        case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
        case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
        case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
        case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
        case cudaErrorLaunchTimeout: return "cudaErrorLaunchTimeout";
        case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
        case cudaErrorNotSupported: return "cudaErrorNotSupported";
    }
    return "cudaErrorUnknown";
}

inline const char* error_string(cudaError_t err) {
    switch (err) {
        case cudaSuccess: return "no error";
        case cudaErrorInvalidValue: return "invalid argument";
        case cudaErrorMemoryAllocation: return "out of memory";
        case cudaErrorInitializationError: return "initialization error";
        case cudaErrorInvalidConfiguration: return "invalid configuration argument";
        case cudaErrorInvalidDevicePointer: return "invalid device pointer";
        case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
        case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
        case cudaErrorNoDevice: return "no CUDA-capable device is detected";
        case cudaErrorInvalidDevice: return "invalid device ordinal";
        case cudaErrorInvalidResourceHandle: return "invalid resource handle";
        case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
        case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
        case cudaErrorLaunchTimeout: return "the launch timed out and was terminated";
        case cudaErrorLaunchFailure: return "unspecified launch failure";
        case cudaErrorNotSupported: return "operation not supported";
    }
    return "unknown error";
}

inline size_t page_size() {
    static const size_t size = size_t(sysconf(_SC_PAGESIZE));
    return size;
}

// --- Device memory ------------------------------------------------------------------------------------
// Each cudaMalloc block is its own mapping, placed so that it ends (16-byte aligned, not 256 as
// cudaMalloc's) right before an inaccessible page: a read or write past the end faults and is
// reported as an illegal address. The at most 15 bytes between the end and the guard page hold a
// canary checked after every kernel, which catches writes there. New memory is filled with 0xFF
// bytes (NaN floats, -1 integers) because real device memory starts with garbage, and freed blocks
// are unmapped, so a use after cudaFree faults too. Only the launching thread's kernels touch it;
// the registry itself is locked for use from several OS threads.
class DeviceMemory {
public:
    static DeviceMemory& instance() {
        static DeviceMemory memory;
        return memory;
    }

    cudaError_t allocate(void** ptr, size_t bytes) {
        *ptr = nullptr;
        if (bytes == 0) return cudaSuccess;   // as cudaMalloc: success and a null pointer
        const size_t page = page_size();
        const size_t padded = (bytes + kAlign - 1) / kAlign * kAlign;
        if (padded < bytes || padded > (size_t(1) << 46)) return cudaErrorMemoryAllocation;
        const size_t data_pages = (padded + page - 1) / page;
        const size_t mapping_bytes = (data_pages + 1) * page;
        void* mapping = mmap(nullptr, mapping_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mapping == MAP_FAILED) return cudaErrorMemoryAllocation;
        char* guard = static_cast<char*>(mapping) + data_pages * page;
        if (mprotect(guard, page, PROT_NONE) != 0) {
            munmap(mapping, mapping_bytes);
            return cudaErrorMemoryAllocation;
        }
        char* user = guard - padded;
        std::memset(user, kPoison, bytes);
        std::memset(user + bytes, kCanary, padded - bytes);
        std::lock_guard<std::mutex> lock(mutex_);
        blocks_[uintptr_t(user)] = Block{mapping, mapping_bytes, user, bytes, padded};
        *ptr = user;
        return cudaSuccess;
    }

    cudaError_t release(void* ptr) {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = blocks_.find(uintptr_t(ptr));
        if (it == blocks_.end()) return cudaErrorInvalidValue;   // not the start of a live block
        munmap(it->second.mapping, it->second.mapping_bytes);
        blocks_.erase(it);
        return cudaSuccess;
    }

    void release_all() {
        std::lock_guard<std::mutex> lock(mutex_);
        for (auto& entry : blocks_) munmap(entry.second.mapping, entry.second.mapping_bytes);
        blocks_.clear();
    }

    // [p, p + bytes) lies inside one live block.
    bool contains(const void* p, size_t bytes) const {
        std::lock_guard<std::mutex> lock(mutex_);
        const Block* block = find(uintptr_t(p));
        return block && uintptr_t(p) + bytes <= uintptr_t(block->user) + block->bytes;
    }

    // [p, p + bytes) touches some live block (or its slack): host memory must not.
    bool overlaps(const void* p, size_t bytes) const {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = blocks_.lower_bound(uintptr_t(p) + bytes);
        if (it == blocks_.begin()) return false;
        --it;
        return uintptr_t(it->second.user) + it->second.padded > uintptr_t(p);
    }

    // Where an address lies relative to the blocks, for fault messages.
    std::string describe(const void* address) const {
        std::lock_guard<std::mutex> lock(mutex_);
        const uintptr_t a = uintptr_t(address);
        for (const auto& entry : blocks_) {
            const Block& b = entry.second;
            const uintptr_t start = uintptr_t(b.user), end = start + b.bytes;
            if (a >= uintptr_t(b.mapping) && a < uintptr_t(b.mapping) + b.mapping_bytes) {
                char text[160];
                if (a >= end)
                    std::snprintf(text, sizeof text, "%zu byte(s) past the end of the %zu-byte cudaMalloc block at %p",
                                  size_t(a - end), b.bytes, static_cast<void*>(b.user));
                else if (a < start)
                    std::snprintf(text, sizeof text, "%zu byte(s) before the %zu-byte cudaMalloc block at %p",
                                  size_t(start - a), b.bytes, static_cast<void*>(b.user));
                else
                    std::snprintf(text, sizeof text, "inside the %zu-byte cudaMalloc block at %p", b.bytes,
                                  static_cast<void*>(b.user));
                return text;
            }
        }
        return "not in any live cudaMalloc block (a host pointer, a freed block, or far out of range)";
    }

    // The canaries after every block's end; "" when all are intact.
    std::string damaged_canaries() const {
        std::lock_guard<std::mutex> lock(mutex_);
        for (const auto& entry : blocks_) {
            const Block& b = entry.second;
            size_t damaged_end = 0;   // one past the last damaged byte, counted from the block's end
            for (size_t i = b.bytes; i < b.padded; ++i)
                if (static_cast<unsigned char>(b.user[i]) != kCanary) damaged_end = i - b.bytes + 1;
            if (damaged_end > 0) {
                char text[160];
                std::snprintf(text, sizeof text, "wrote into the %zu byte(s) after the end of the %zu-byte cudaMalloc block at %p",
                              damaged_end, b.bytes, static_cast<void*>(b.user));
                return text;
            }
        }
        return "";
    }

private:
    struct Block {
        void* mapping;
        size_t mapping_bytes;
        char* user;
        size_t bytes, padded;
    };
    static constexpr size_t kAlign = 16;   // enough for every CUDA vector type
    static constexpr unsigned char kPoison = 0xFF;
    static constexpr unsigned char kCanary = 0xFD;

    const Block* find(uintptr_t p) const {
        auto it = blocks_.upper_bound(p);
        if (it == blocks_.begin()) return nullptr;
        --it;
        const Block& b = it->second;
        return p < uintptr_t(b.user) + b.bytes ? &b : nullptr;
    }

    mutable std::mutex mutex_;
    std::map<uintptr_t, Block> blocks_;
};

// --- Fibers -------------------------------------------------------------------------------------------
// On x86-64 ELF a 20-instruction switch (callee-saved registers, the SSE and x87 control words, the
// stack pointer): swapcontext also saves the signal mask with a system call, ~0.25 µs a switch, which
// made the selective-scan backward (10 shuffles per state and step) take minutes. Elsewhere, or with
// -DVIMDENSE_CUDA_EMULATION_UCONTEXT, ucontext. The switch sits in a COMDAT section so that every
// object including this header may carry it and the linker keeps one.

#ifdef VIMDENSE_CUDA_EMULATION_ASM_SWITCH
extern "C" void vimdense_cuda_emulation_switch(void** save_sp, void* load_sp);
__asm__(
    ".pushsection .text.vimdense_cuda_emulation_switch,\"axG\",@progbits,vimdense_cuda_emulation_switch,comdat\n"
    ".globl vimdense_cuda_emulation_switch\n"
    ".hidden vimdense_cuda_emulation_switch\n"
    ".type vimdense_cuda_emulation_switch,@function\n"
    ".p2align 4\n"
    "vimdense_cuda_emulation_switch:\n"
    "  pushq %rbp\n"
    "  pushq %rbx\n"
    "  pushq %r12\n"
    "  pushq %r13\n"
    "  pushq %r14\n"
    "  pushq %r15\n"
    "  subq $8, %rsp\n"
    "  stmxcsr (%rsp)\n"
    "  fnstcw 4(%rsp)\n"
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    "  ldmxcsr (%rsp)\n"
    "  fldcw 4(%rsp)\n"
    "  addq $8, %rsp\n"
    "  popq %r15\n"
    "  popq %r14\n"
    "  popq %r13\n"
    "  popq %r12\n"
    "  popq %rbx\n"
    "  popq %rbp\n"
    "  ret\n"
    ".size vimdense_cuda_emulation_switch,.-vimdense_cuda_emulation_switch\n"
    ".popsection\n");

struct Context {
    void* sp = nullptr;
};
inline void switch_context(Context& from, Context& to) { vimdense_cuda_emulation_switch(&from.sp, to.sp); }
// A context whose first switch "returns" into entry() at the top of the stack, aligned as after a
// call (entry never returns; its fake return address is 0).
inline void start_context(Context& context, char* stack_base, size_t stack_bytes, void (*entry)()) {
    uintptr_t top = (uintptr_t(stack_base) + stack_bytes) & ~uintptr_t(15);
    uint64_t* slot = reinterpret_cast<uint64_t*>(top);
    *--slot = 0;                        // entry's return address (never used)
    *--slot = reinterpret_cast<uint64_t>(entry);   // where the switch's ret goes
    for (int i = 0; i < 6; ++i) *--slot = 0;   // rbp rbx r12 r13 r14 r15
    uint32_t control[2];
    __asm__ volatile("stmxcsr %0" : "=m"(control[0]));
    __asm__ volatile("fnstcw %0" : "=m"(control[1]));
    --slot;
    std::memcpy(slot, control, sizeof control);
    context.sp = slot;
}
#else
struct Context {
    ucontext_t uc;
};
inline void switch_context(Context& from, Context& to) { swapcontext(&from.uc, &to.uc); }
inline void start_context(Context& context, char* stack_base, size_t stack_bytes, void (*entry)()) {
    getcontext(&context.uc);
    context.uc.uc_stack.ss_sp = stack_base;
    context.uc.uc_stack.ss_size = stack_bytes;
    context.uc.uc_link = nullptr;
    makecontext(&context.uc, entry, 0);
}
#endif

// Where a launch is written in the source (the translated copy keeps the .cu's file and line).
struct LaunchSite {
    const char* kernel;
    const char* file;
    int line;
};

[[noreturn]] inline void fiber_entry();
inline bool known_stream(cudaStream_t stream);   // cuda_runtime.h

// --- Executor -----------------------------------------------------------------------------------------
// One per launching OS thread. Fibers and their stacks are made once and reused by later blocks and
// launches; a fiber that was stopped mid-kernel (a failure) is restarted from the top.
class Executor {
public:
    static Executor& current() {
        static thread_local Executor executor;
        return executor;
    }

    // A started fiber's context must not move (a ucontext_t points into itself): room for the
    // largest block up front, so the vector never reallocates.
    Executor() { fibers_.reserve(kMaxThreadsPerBlock); }
    Executor(const Executor&) = delete;
    Executor& operator=(const Executor&) = delete;
    ~Executor() {
        for (Fiber& f : fibers_) munmap(f.stack, f.stack_bytes);
    }

    // Checks the configuration as the hardware does, then runs every block. The return value is
    // what cudaGetLastError reports right after the launch.
    cudaError_t run(const LaunchSite& site, dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
                    void (*body)(void*), void* body_state) {
        if (sticky_error() != cudaSuccess) return sticky_error();
        const uint64_t threads = uint64_t(block.x) * block.y * block.z;
        if (grid.x == 0 || grid.y == 0 || grid.z == 0 || block.x == 0 || block.y == 0 || block.z == 0 ||
            grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535 || block.x > 1024 || block.y > 1024 ||
            block.z > 64 || threads > kMaxThreadsPerBlock)
            return record(cudaErrorInvalidConfiguration);
        if (shared_bytes > 0) {
            std::fprintf(stderr,
                         "vimdense CUDA emulation: kernel %s (%s:%d) asks for %zu bytes of dynamic shared memory, "
                         "which the emulation does not provide\n",
                         site.kernel, site.file, site.line, shared_bytes);
            return record(cudaErrorNotSupported);
        }
        if (!known_stream(stream)) return record(cudaErrorInvalidResourceHandle);
        if (running_) {
            std::fprintf(stderr, "vimdense CUDA emulation: kernel %s (%s:%d) launched from device code\n",
                         site.kernel, site.file, site.line);
            return record(cudaErrorNotSupported);
        }

        install_fault_handler();
        running_executor() = this;
        site_ = site;
        body_ = body;
        body_state_ = body_state;
        thread_count_ = unsigned(threads);
        prepare_fibers(thread_count_);
        failure_.clear();
        failure_code_ = cudaSuccess;
        gridDim = grid;
        blockDim = block;
        running_ = true;
        if (sigsetjmp(fault_jump_, 1) != 0) {
            // Back from the fault handler: the fiber that faulted (and its block) is abandoned.
            failed_block_ = blockIdx;
            failure_code_ = cudaErrorIllegalAddress;
            failure_ = std::string(strsignal(fault_signal_)) + " at address " + pointer_text(fault_address_) +
                       ": " + DeviceMemory::instance().describe(fault_address_);
            if (current_ < fibers_.size() && fibers_[current_].stack_fault(fault_address_))
                failure_ = "stack overflow (a fiber has " + std::to_string(kStackBytes / 1024) + " KiB)";
        } else {
            for (block_z_ = 0; block_z_ < grid.z && failure_.empty(); ++block_z_)
                for (block_y_ = 0; block_y_ < grid.y && failure_.empty(); ++block_y_)
                    for (block_x_ = 0; block_x_ < grid.x && failure_.empty(); ++block_x_) run_block();
        }
        running_ = false;
        running_executor() = nullptr;
        if (failure_.empty()) {
            const std::string damage = DeviceMemory::instance().damaged_canaries();
            if (!damage.empty()) {
                failure_code_ = cudaErrorIllegalAddress;
                failure_ = "after the kernel: it " + damage;
                current_ = kNoFiber;
            }
        }
        if (failure_.empty()) return cudaSuccess;
        // A failed block's fibers stopped mid-kernel: start them afresh next time.
        for (Fiber& f : fibers_) f.fresh = true;
        report_failure();
        sticky_error() = failure_code_;
        return failure_code_;
    }

    // --- Called from device code --------------------------------------------------------------------

    unsigned current_lane() { return running_fiber().linear % kWarp; }

    // __syncthreads. Threads that have exited count as arrived (PTX: barriers waiting only on exited
    // threads are resolved); threads waiting at different __syncthreads are an error (the CUDA
    // Programming Guide: a barrier in conditional code needs a block-uniform condition).
    void block_barrier(const char* file, int line) {
        Fiber& self = running_fiber();
        if (barrier_waiting_ == 0) {
            barrier_file_ = file;
            barrier_line_ = line;
        } else if (barrier_line_ != line || std::strcmp(barrier_file_, file) != 0) {
            fail_thread("__syncthreads at " + where(file, line) + " while other threads of the block wait at " +
                        where(barrier_file_, barrier_line_) + " (a barrier under a non-uniform condition)");
        }
        self.state = State::at_block_barrier;
        ++barrier_waiting_;
        release_block_barrier_if_complete();
        if (self.state != State::ready) yield(self);
    }

    // The exchange of a warp shuffle: every lane in `mask` offers `bits` and receives what lane
    // `source` offered. Lanes wait until all of `mask` has arrived at a shuffle with that mask.
    uint64_t warp_exchange(unsigned mask, uint64_t bits, unsigned source, const char* what) {
        Fiber& self = running_fiber();
        const unsigned lane = self.linear % kWarp, warp_index = self.linear / kWarp;
        const unsigned lanes_in_warp = std::min(kWarp, thread_count_ - warp_index * kWarp);
        const unsigned existing = lanes_in_warp == kWarp ? 0xffffffffu : (1u << lanes_in_warp) - 1;
        if (!(mask & (1u << lane)))
            fail_thread(std::string(what) + " with mask " + hex(mask) + " that leaves out the calling lane " +
                        std::to_string(lane));
        if (mask & ~existing)
            fail_thread(std::string(what) + " with mask " + hex(mask) + " naming lanes this warp does not have (" +
                        std::to_string(lanes_in_warp) + " lanes)");
        if (!(mask & (1u << source)))
            fail_thread(std::string(what) + " reads lane " + std::to_string(source) + ", which mask " + hex(mask) +
                        " leaves out (undefined on a GPU)");
        Warp& warp = warps_[warp_index];
        if (warp.arrived == 0) {
            warp.mask = mask;
        } else if (warp.mask != mask) {
            fail_thread(std::string(what) + " with mask " + hex(mask) + " while other lanes of warp " +
                        std::to_string(warp_index) + " wait in a shuffle with mask " + hex(warp.mask));
        }
        const unsigned exited = mask & warp.exited;
        if (exited)
            fail_thread(std::string(what) + " with mask " + hex(mask) + " naming lanes that have exited (" +
                        hex(exited) + "): it would wait for them forever");
        self.offered = bits;
        self.source_lane = source;
        self.state = State::at_warp_exchange;
        warp.arrived |= 1u << lane;
        if (warp.arrived == mask) {
            const unsigned base = warp_index * kWarp;
            for (unsigned l = 0; l < kWarp; ++l)
                if (mask & (1u << l)) {
                    Fiber& f = fibers_[base + l];
                    f.received = fibers_[base + f.source_lane].offered;
                    f.state = State::ready;
                }
            warp.arrived = 0;
        } else {
            yield(self);
        }
        return self.received;
    }

    // Stops the kernel: the message is printed with the launch site, block and thread, and the
    // launch's error becomes sticky. Never returns to the device code that called it.
    [[noreturn]] void fail_thread(const std::string& message) {
        Fiber& self = running_fiber();
        failure_ = message;
        failure_code_ = cudaErrorLaunchFailure;
        switch_context(self.context, scheduler_);
        std::abort();   // a failed fiber is never resumed
    }

    // The fiber body: run the kernel for the current thread, again for each later block.
    [[noreturn]] void fiber_loop() {
        for (;;) {
            body_(body_state_);
            Fiber& self = fibers_[current_];
            self.state = State::finished;
            ++finished_;
            Warp& warp = warps_[self.linear / kWarp];
            warp.exited |= 1u << (self.linear % kWarp);
            if (warp.arrived != 0 && (warp.mask & (1u << (self.linear % kWarp))))
                fail_thread("thread exited while lanes " + hex(warp.arrived) + " of its warp wait for it in a shuffle "
                            "with mask " + hex(warp.mask));
            release_block_barrier_if_complete();
            switch_context(self.context, scheduler_);
        }
    }

private:
    enum class State : uint8_t { ready, at_block_barrier, at_warp_exchange, finished };
    static constexpr size_t kStackBytes = 256 * 1024;
    static constexpr unsigned kNoFiber = ~0u;

    struct Fiber {
        char* stack = nullptr;       // the mapping: a guard page, then kStackBytes
        size_t stack_bytes = 0;
        Context context;
        bool fresh = true;
        State state = State::finished;
        uint3 index{0, 0, 0};
        unsigned linear = 0;
        uint64_t offered = 0, received = 0;
        unsigned source_lane = 0;
        bool stack_fault(const void* address) const {
            return uintptr_t(address) >= uintptr_t(stack) && uintptr_t(address) < uintptr_t(stack) + page_size();
        }
    };
    struct Warp {
        unsigned arrived = 0;   // lanes waiting in the current shuffle
        unsigned mask = 0;      // its mask
        unsigned exited = 0;    // lanes that have finished the kernel
    };

    // Device functions called outside a kernel have no thread to act for.
    Fiber& running_fiber() {
        if (!running_ || current_ >= thread_count_) {
            std::fprintf(stderr, "vimdense CUDA emulation: a device function was called outside a kernel\n");
            std::abort();
        }
        return fibers_[current_];
    }

    // Trivially initialised, so the fault handler may read it on any thread.
    static Executor*& running_executor() {
        static thread_local Executor* executor = nullptr;
        return executor;
    }

    static std::string where(const char* file, int line) { return std::string(file) + ":" + std::to_string(line); }
    static std::string hex(unsigned v) {
        char text[16];
        std::snprintf(text, sizeof text, "0x%08x", v);
        return text;
    }
    static std::string pointer_text(const void* p) {
        char text[32];
        std::snprintf(text, sizeof text, "%p", p);
        return text;
    }

    void prepare_fibers(unsigned count) {
        while (fibers_.size() < count) {
            Fiber f;
            f.stack_bytes = kStackBytes + page_size();
            void* mapping = mmap(nullptr, f.stack_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (mapping == MAP_FAILED) {
                std::fprintf(stderr, "vimdense CUDA emulation: cannot map a fiber stack\n");
                std::abort();
            }
            f.stack = static_cast<char*>(mapping);
            mprotect(f.stack, page_size(), PROT_NONE);   // overflow faults instead of corrupting memory
            fibers_.push_back(f);
        }
        warps_.assign((count + kWarp - 1) / kWarp, Warp{});
    }

    void run_block() {
        blockIdx = uint3{block_x_, block_y_, block_z_};
        const dim3 block = blockDim;
        for (unsigned i = 0; i < thread_count_; ++i) {
            Fiber& f = fibers_[i];
            f.index = uint3{i % block.x, (i / block.x) % block.y, i / (block.x * block.y)};
            f.linear = i;
            f.state = State::ready;
            if (f.fresh) {
                start_context(f.context, f.stack + page_size(), kStackBytes, &fiber_entry);
                f.fresh = false;
            }
        }
        for (Warp& w : warps_) w = Warp{};
        finished_ = 0;
        barrier_waiting_ = 0;
        const uint64_t linear_block = (uint64_t(block_z_) * gridDim.y + block_y_) * gridDim.x + block_x_;
        const bool descending = linear_block % 2 == 1;
        while (finished_ < thread_count_) {
            bool progressed = false;
            for (unsigned k = 0; k < thread_count_; ++k) {
                const unsigned i = descending ? thread_count_ - 1 - k : k;
                Fiber& f = fibers_[i];
                if (f.state != State::ready) continue;
                current_ = i;
                threadIdx = f.index;
                switch_context(scheduler_, f.context);
                progressed = true;
                if (!failure_.empty()) {
                    failed_block_ = blockIdx;
                    return;
                }
            }
            if (!progressed) {
                describe_deadlock();
                failed_block_ = blockIdx;
                return;
            }
        }
    }

    // Back to the scheduler, which sets threadIdx again before it resumes this fiber.
    void yield(Fiber& self) { switch_context(self.context, scheduler_); }

    void release_block_barrier_if_complete() {
        if (barrier_waiting_ == 0 || barrier_waiting_ != thread_count_ - finished_) return;
        for (unsigned i = 0; i < thread_count_; ++i)
            if (fibers_[i].state == State::at_block_barrier) fibers_[i].state = State::ready;
        barrier_waiting_ = 0;
    }

    // No thread can run: say who waits where (on a GPU this block would hang).
    void describe_deadlock() {
        std::string text = "deadlock: no thread of the block can go on;";
        if (barrier_waiting_ > 0)
            text += " " + std::to_string(barrier_waiting_) + " of " + std::to_string(thread_count_ - finished_) +
                    " live threads wait at __syncthreads (" + where(barrier_file_, barrier_line_) + ");";
        for (size_t w = 0; w < warps_.size(); ++w)
            if (warps_[w].arrived != 0)
                text += " warp " + std::to_string(w) + ": lanes " + hex(warps_[w].arrived) +
                        " wait in a shuffle with mask " + hex(warps_[w].mask) + ";";
        failure_ = text;
        failure_code_ = cudaErrorLaunchFailure;
        current_ = kNoFiber;
    }

    void report_failure() const {
        std::string who = "block (" + std::to_string(failed_block_.x) + "," + std::to_string(failed_block_.y) + "," +
                          std::to_string(failed_block_.z) + ")";
        if (current_ < thread_count_) {
            const uint3& t = fibers_[current_].index;
            who += ", thread (" + std::to_string(t.x) + "," + std::to_string(t.y) + "," + std::to_string(t.z) + ")";
        }
        if (failure_.rfind("after the kernel", 0) == 0) who = "whole grid";
        std::fprintf(stderr, "vimdense CUDA emulation: kernel %s launched at %s:%d, %s: %s [%s]\n", site_.kernel,
                     site_.file, site_.line, who.c_str(), failure_.c_str(), error_name(failure_code_));
    }

    // SIGSEGV/SIGBUS/SIGFPE raised by device code jump back into run() (on the alternate stack, since
    // the fault may be a fiber's stack overflow); anywhere else the previous action applies.
    void install_fault_handler() {
        static std::once_flag once;
        std::call_once(once, [] {
            struct sigaction action{};
            action.sa_sigaction = &Executor::on_fault;
            action.sa_flags = SA_SIGINFO | SA_ONSTACK;
            sigemptyset(&action.sa_mask);
            for (int sig : {SIGSEGV, SIGBUS, SIGFPE}) sigaction(sig, &action, &previous_action(sig));
        });
        if (!alternate_stack_) {
            const size_t bytes = 64 * 1024;
            alternate_stack_ = static_cast<char*>(std::malloc(bytes));
            stack_t stack{};
            stack.ss_sp = alternate_stack_;
            stack.ss_size = bytes;
            sigaltstack(&stack, nullptr);
        }
    }

    static struct sigaction& previous_action(int sig) {
        static struct sigaction actions[3];
        return actions[sig == SIGSEGV ? 0 : sig == SIGBUS ? 1 : 2];
    }

    static void on_fault(int sig, siginfo_t* info, void* context) {
        Executor* self = running_executor();
        if (self && self->running_ && self->current_ < self->thread_count_) {
            self->fault_signal_ = sig;
            self->fault_address_ = info->si_addr;
            siglongjmp(self->fault_jump_, 1);
        }
        const struct sigaction& previous = previous_action(sig);
        if (previous.sa_flags & SA_SIGINFO) {
            previous.sa_sigaction(sig, info, context);
        } else if (previous.sa_handler != SIG_IGN && previous.sa_handler != SIG_DFL) {
            previous.sa_handler(sig);
        } else {
            signal(sig, SIG_DFL);   // returning re-executes the faulting instruction: the default action
        }
    }

    std::vector<Fiber> fibers_;
    std::vector<Warp> warps_;
    Context scheduler_;
    LaunchSite site_{"", "", 0};
    void (*body_)(void*) = nullptr;
    void* body_state_ = nullptr;
    unsigned thread_count_ = 0, finished_ = 0, current_ = kNoFiber;
    unsigned block_x_ = 0, block_y_ = 0, block_z_ = 0;
    uint3 failed_block_{0, 0, 0};
    unsigned barrier_waiting_ = 0;
    const char* barrier_file_ = "";
    int barrier_line_ = 0;
    bool running_ = false;
    std::string failure_;
    cudaError_t failure_code_ = cudaSuccess;
    sigjmp_buf fault_jump_;
    volatile int fault_signal_ = 0;
    void* volatile fault_address_ = nullptr;
    char* alternate_stack_ = nullptr;
};

[[noreturn]] inline void fiber_entry() { Executor::current().fiber_loop(); }

// --- Kernel launch --------------------------------------------------------------------------------------
// The translated form of `kernel<<<grid, block, shared, stream>>>(args...)` is
// `kernel_launch(kernel, "kernel", __FILE__, __LINE__, grid, block, shared, stream)(args...)`: the
// arguments are converted to the kernel's parameter types and copied once, as a launch copies them to
// the device, and each thread calls the kernel with its own copy of them.
template <class... Params>
class KernelLaunch {
public:
    KernelLaunch(void (*kernel)(Params...), LaunchSite site, dim3 grid, dim3 block, size_t shared_bytes,
                 cudaStream_t stream)
        : kernel_(kernel), site_(site), grid_(grid), block_(block), shared_bytes_(shared_bytes), stream_(stream) {}

    template <class... Args>
    void operator()(Args&&... args) const {
        static_assert(sizeof...(Args) == sizeof...(Params), "kernel launched with the wrong number of arguments");
        std::tuple<std::decay_t<Params>...> copies(static_cast<Params>(std::forward<Args>(args))...);
        auto body = [this, &copies] { std::apply(kernel_, copies); };
        using Body = decltype(body);
        const cudaError_t err = Executor::current().run(site_, grid_, block_, shared_bytes_, stream_,
                                                        [](void* state) { (*static_cast<Body*>(state))(); }, &body);
        record(err);
    }

private:
    void (*kernel_)(Params...);
    LaunchSite site_;
    dim3 grid_, block_;
    size_t shared_bytes_;
    cudaStream_t stream_;
};

template <class... Params>
inline KernelLaunch<Params...> kernel_launch(void (*kernel)(Params...), const char* name, const char* file, int line,
                                             dim3 grid, dim3 block, size_t shared_bytes = 0,
                                             cudaStream_t stream = nullptr) {
    return KernelLaunch<Params...>(kernel, LaunchSite{name, file, line}, grid, block, shared_bytes, stream);
}

}  // namespace vimdense_cuda_emulation
