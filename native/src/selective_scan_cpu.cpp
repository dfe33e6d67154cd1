// CPU selective scan: argument checks, worker threads, layout preparation and the reductions
// across rows; the per-row work is in selective_scan_cpu_kernel.h, instantiated per instruction
// set and chosen at run time.
//
// Threads: a small pool of std::threads owned by this library (not OpenMP, so it never competes
// with the OpenMP runtime libtorch brings into the same process); the calling thread works too.
// Work items are rows (batch, channel) or blocks of them, handed out through an atomic counter.
// Between jobs, the pool's CPUs are kept out of idle for a short window (cpu_keep_awake.h), by
// threads that also take the workers' shares of the next job.
#include <sched.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

#include <algorithm>
#include <chrono>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#include "flush_denormals.h"
#include "cpu_keep_awake.h"
#include "selective_scan_cpu_internal.h"
#include "vimdense/selective_scan.h"

namespace {

struct ScalarV {
    static constexpr int W = 1;
    using T = float;
    static T zero() { return 0.0f; }
    static T set1(float x) { return x; }
    static T load(const float* p) { return *p; }
    static void store(float* p, T v) { *p = v; }
    static T add(T a, T b) { return a + b; }
    static T sub(T a, T b) { return a - b; }
    static T mul(T a, T b) { return a * b; }
    static T div(T a, T b) { return a / b; }
    static T fmadd(T a, T b, T c) { return a * b + c; }
    static T max(T a, T b) { return a > b ? a : b; }
    static T neg_abs(T a) { return -std::fabs(a); }
    static T reverse(T v) { return v; }
    static float reduce(T v) { return v; }
    static T reduce_many(const T* v) { return v[0]; }
    static T exp2(T x) { return std::exp2(x); }
    static T exp2_shifted(T y) { return std::exp2(y - 1.0f); }
    static void transpose(T*) {}
};

}  // namespace

// The scalar instantiation (one lane) has no partial 16-step blocks, but GCC cannot see that the
// block loops always write lane 0 of their per-step sums before reducing them.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "selective_scan_cpu_kernel.h"
#pragma GCC diagnostic pop
#include "selective_scan_cpu_conv_kernel.h"

namespace vimdense_scan {
Kernels kernels_scalar() {
    return Kernels{"scalar", &kernel::transpose_to_steps<ScalarV>, &kernel::forward_rows<ScalarV>, &kernel::backward_rows<ScalarV>,
                   &kernel::conv_forward_row<ScalarV>, &kernel::conv_backward_row<ScalarV>, nullptr, 0};
}
}  // namespace vimdense_scan

namespace {

using namespace vimdense_scan;

// --- Instruction set -----------------------------------------------------------------------------

int best_isa_level() {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")) return 0;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
#endif
    return 2;
}

std::atomic<int> g_forced_level{0};

Kernels current_kernels() {
    static const int best = best_isa_level();
    int level = std::max(best, g_forced_level.load());
    if (level == 0) return kernels_avx512();
    if (level == 1) return kernels_avx2();
    return kernels_scalar();
}

// --- Thread pool ---------------------------------------------------------------------------------

int default_threads() {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    unsigned n = std::thread::hardware_concurrency();
    return n > 0 ? static_cast<int>(n) : 1;
}

class Pool {
public:
    void set_threads(int n) { wanted_.store(n <= 0 ? default_threads() : n); }
    int threads() const { return wanted_.load(); }

    // Runs job(worker) on `count` workers (the caller is worker 0) and waits for all of them.
    // Workers 1.. are claimed first by the keep-awake spinners (cpu_keep_awake.h), which poll for
    // them on awake CPUs; a worker slot no spinner took within kSpinnerClaimNs goes to the pool's
    // sleeping threads, woken through the condition variable.
    void run(int count, const std::function<void(int)>& job) {
        std::lock_guard<std::mutex> call(call_mutex_);
        keep_awake_arm(count);
        ensure_workers(count - 1);
        const bool spinners = keep_awake_spinning() && keep_awake_takes_work();
        {
            std::lock_guard<std::mutex> lk(m_);
            job_ = &job;
            pending_ = count - 1;
            ++generation_;
        }
        running_.store(count - 1, std::memory_order_release);
        slots_.store(pack(generation_, count, 1), std::memory_order_release);
        if (spinners) {
            const auto give_up = std::chrono::steady_clock::now() + std::chrono::nanoseconds(kSpinnerClaimNs);
            while (!all_claimed() && std::chrono::steady_clock::now() < give_up) {
            }
        }
        if (!all_claimed()) start_cv_.notify_all();
        job(0);
        // The workers' last items end within about an item's time of the caller's: waiting for
        // that by spinning saves the wake-up of a sleeping caller (~50 µs on a virtual machine,
        // 1% of a Vim-Ti scan call). Bounded, for workers that were never scheduled.
        const auto spin_until = std::chrono::steady_clock::now() + std::chrono::milliseconds(2);
        for (int i = 0; running_.load(std::memory_order_acquire) != 0; ++i) {
#if defined(__x86_64__) || defined(__i386__)
            _mm_pause();
#endif
            if ((i & 255) == 0 && std::chrono::steady_clock::now() > spin_until) break;
        }
        {
            std::unique_lock<std::mutex> lk(m_);
            done_cv_.wait(lk, [&] { return pending_ == 0; });
            job_ = nullptr;
        }
        // The window runs from the end of a job too: a job longer than the window must not leave the
        // next one to sleeping threads.
        keep_awake_arm(count);
    }

    // A worker slot of the current job, or -1 when every slot is taken.
    int claim() {
        uint64_t s = slots_.load(std::memory_order_acquire);
        for (;;) {
            const int next = static_cast<int>(s & 0xffff), count = static_cast<int>((s >> 16) & 0xffff);
            if (next >= count) return -1;
            if (slots_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) return next;
        }
    }

    // Runs a claimed slot: the job cannot end (run() cannot return) before this slot is done.
    void run_slot(int worker) {
        const std::function<void(int)>* job;
        {
            std::lock_guard<std::mutex> lk(m_);
            job = job_;
        }
        (*job)(worker);
        running_.fetch_sub(1, std::memory_order_acq_rel);
        {
            std::lock_guard<std::mutex> lk(m_);
            --pending_;
        }
        done_cv_.notify_all();
    }

private:
    // Long enough for an awake spinner to see the job (its loop polls every ~0.1 µs), short next to
    // a wake-up.
    static constexpr int64_t kSpinnerClaimNs = 3000;

    static uint64_t pack(uint64_t generation, int count, int next) {
        return (generation << 32) | (static_cast<uint64_t>(count) << 16) | static_cast<uint64_t>(next);
    }
    bool all_claimed() const {
        const uint64_t s = slots_.load(std::memory_order_acquire);
        return (s & 0xffff) >= ((s >> 16) & 0xffff);
    }

    void ensure_workers(int n) {
        while (static_cast<int>(workers_.size()) < n) {
            uint64_t start_generation;
            {
                std::lock_guard<std::mutex> lk(m_);
                start_generation = generation_;
            }
            // The worker must only react to generations after its creation: it is handed the
            // current one rather than reading it when it first runs (which may be after run()
            // already advanced it).
            workers_.emplace_back([this, start_generation] { loop(start_generation); });
            // Never joined: the pool lives until the process ends (a static destructor joining
            // threads at exit can deadlock inside a managed host).
            workers_.back().detach();
        }
    }

    void loop(uint64_t seen) {
        for (;;) {
            {
                std::unique_lock<std::mutex> lk(m_);
                start_cv_.wait(lk, [&] { return generation_ != seen; });
                seen = generation_;
            }
            const int worker = claim();
            if (worker >= 0) run_slot(worker);
        }
    }

    std::atomic<int> wanted_{default_threads()};
    std::atomic<int> running_{0};   // workers still in the current job (the caller spins on it)
    std::atomic<uint64_t> slots_{0};   // generation (32 bits) | worker count (16) | next unclaimed worker (16)
    std::mutex call_mutex_;
    std::mutex m_;
    std::condition_variable start_cv_, done_cv_;
    std::vector<std::thread> workers_;
    const std::function<void(int)>* job_ = nullptr;
    int pending_ = 0;
    uint64_t generation_ = 0;
};

Pool& pool() {
    static Pool* p = [] {
        auto* created = new Pool();  // intentionally leaked, see ensure_workers
        keep_awake_set_work([] { return pool().claim(); }, [](int worker) { pool().run_slot(worker); });
        return created;
    }();
    return *p;
}

using vimdense_cpu::FlushDenormals;

// Pieces of work that must all be done before the first row of a job starts (the scan's B/C
// transposes): the workers share them as they share rows, then each waits for the last piece.
// With the pool's CPUs kept awake a worker starts within microseconds of the caller, and when the
// caller did them alone it started its rows that much later, which came back at the end of the
// job as an idle worker (≈ 0.1 ms of a 3.5 ms Vim-Ti scan call).
struct Preparation {
    int64_t pieces = 0;
    std::function<void(int64_t)> run;
};

// A count of finished work that other workers wait on (pieces of a preparation, segments of a
// block). A waiter spins for a while, then sleeps: the work may be held by a keep-awake thread
// (SCHED_IDLE) that another thread has just put off its CPU, and a waiter spinning on the only
// other CPU would keep the scheduler from moving it there.
class ProgressCounter {
public:
    void add(int64_t n) {
        value_.fetch_add(n);
        if (sleepers_.load() > 0) {
            std::lock_guard<std::mutex> lk(m_);
            cv_.notify_all();
        }
    }
    // (Sequentially consistent: a waiter that counted itself among the sleepers after add() read
    // none sees the new value in its predicate.)
    void wait_until(int64_t target) {
        const auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinUs);
        for (int i = 0; value_.load(std::memory_order_acquire) < target; ++i) {
#if defined(__x86_64__) || defined(__i386__)
            _mm_pause();
#endif
            if ((i & 63) == 0 && std::chrono::steady_clock::now() > spin_until) {
                std::unique_lock<std::mutex> lk(m_);
                sleepers_.fetch_add(1);
                cv_.wait(lk, [&] { return value_.load() >= target; });
                sleepers_.fetch_sub(1);
                return;
            }
        }
    }

private:
    // A few pieces' time (a 256-step block of Vim's B and C takes ≈ 5 µs).
    static constexpr int kSpinUs = 50;
    std::atomic<int64_t> value_{0};
    std::atomic<int> sleepers_{0};
    std::mutex m_;
    std::condition_variable cv_;
};

// Runs fn(row, worker) for every row in [0, rows) on the pool, after the preparation if given.
void parallel_rows(int64_t rows, int workers, const std::function<void(int64_t, int)>& fn,
                   const Preparation* preparation = nullptr) {
    const int64_t pieces = preparation ? preparation->pieces : 0;
    if (workers <= 1 || rows <= 1) {
        FlushDenormals ftz;
        for (int64_t i = 0; i < pieces; ++i) preparation->run(i);
        for (int64_t r = 0; r < rows; ++r) fn(r, 0);
        return;
    }
    std::atomic<int64_t> next_piece{0}, next{0};
    ProgressCounter prepared;
    std::function<void(int)> job = [&](int worker) {
        FlushDenormals ftz;
        for (;;) {
            const int64_t i = next_piece.fetch_add(1, std::memory_order_relaxed);
            if (i >= pieces) break;
            preparation->run(i);
            prepared.add(1);
        }
        prepared.wait_until(pieces);
        for (;;) {
            int64_t r = next.fetch_add(1, std::memory_order_relaxed);
            if (r >= rows) break;
            fn(r, worker);
        }
    };
    pool().run(workers, job);
}

// --- Buffers -------------------------------------------------------------------------------------

struct AlignedBuffer {
    float* data = nullptr;
    explicit AlignedBuffer(int64_t floats) {
        size_t bytes = (static_cast<size_t>(floats) * sizeof(float) + 63) / 64 * 64;
        data = static_cast<float*>(std::aligned_alloc(64, bytes > 0 ? bytes : 64));
        if (!data) throw std::bad_alloc();
    }
    ~AlignedBuffer() { std::free(data); }
    AlignedBuffer(const AlignedBuffer&) = delete;
    AlignedBuffer& operator=(const AlignedBuffer&) = delete;
};

int32_t check_shape(int64_t batch, int64_t dim, int64_t length, int64_t dstate) {
    if (batch < 1 || dim < 1 || length < 1 || dstate < 1) return VIMDENSE_SCAN_ERR_BAD_SHAPE;
    // Element counts must fit comfortably in int64 arithmetic on padded sizes.
    const int64_t limit = int64_t(1) << 40;
    if (batch > limit / dim || batch * dim > limit / length || dstate > (int64_t(1) << 20) ||
        batch * length > limit / padded_state(dstate))
        return VIMDENSE_SCAN_ERR_BAD_SHAPE;
    return VIMDENSE_SCAN_OK;
}

// Fixed groups of backward work items whose dB/dC sums are kept apart (see the backward).
constexpr int64_t kGradientGroups = 8;

int workers_for(int64_t rows) {
    return static_cast<int>(std::min<int64_t>(pool().threads(), rows));
}

// Runs fn(b, l0, l1) on the pool for every block [l0, l1) of up to 256 steps of every batch element:
// work over (batch, length) layouts where each block writes lines of its own.
constexpr int64_t kStepBlock = 256;

int64_t step_blocks(int64_t length) { return (length + kStepBlock - 1) / kStepBlock; }

// Block `item` of batch·step_blocks(length): batch element b, steps [l0, l1).
struct StepBlock {
    int64_t b, l0, l1;
};
StepBlock step_block(int64_t item, int64_t length) {
    const int64_t blocks = step_blocks(length), l0 = item % blocks * kStepBlock;
    return StepBlock{item / blocks, l0, std::min(l0 + kStepBlock, length)};
}

void parallel_step_blocks(int64_t batch, int64_t length, const std::function<void(int64_t, int64_t, int64_t)>& fn) {
    const int64_t items = batch * step_blocks(length);
    parallel_rows(items, workers_for(items), [&](int64_t item, int) {
        const StepBlock s = step_block(item, length);
        fn(s.b, s.l0, s.l1);
    });
}

// Runs fn(b, d0, nrows, scratch) on the pool for every block of up to `block` consecutive channels
// d0..d0+nrows-1 of every batch element, with `scratch_floats` of the running worker's own scratch.
void parallel_channel_blocks(int64_t batch, int64_t dim, int64_t block, int64_t scratch_floats,
                             const std::function<void(int64_t, int64_t, int64_t, float*)>& fn,
                             const Preparation* preparation = nullptr) {
    const int64_t blocks_per_batch = (dim + block - 1) / block;
    const int64_t items = batch * blocks_per_batch;
    const int workers = workers_for(items);
    const int64_t per = (scratch_floats + 15) / 16 * 16;
    AlignedBuffer scratch(per * workers);
    parallel_rows(items, workers, [&](int64_t item, int w) {
        const int64_t d0 = item % blocks_per_batch * block;
        fn(item / blocks_per_batch, d0, std::min(block, dim - d0), scratch.data + per * w);
    }, preparation);
}

// A grow-only buffer per calling thread for Prepared: a fresh allocation of B and C's size per call
// came from the kernel as new pages every time (page faults and zeroing were 4% of a Vim-Ti-sized
// forward). Requests above kMaxKeptFloats get a buffer of their own, so one huge call does not
// pin its memory for the life of the thread.
class ThreadScratch {
public:
    static constexpr int64_t kMaxKeptFloats = int64_t(8) << 20;   // 32 MiB
    ~ThreadScratch() { std::free(data_); }
    float* get(int64_t floats, std::unique_ptr<AlignedBuffer>& own) {
        if (floats > kMaxKeptFloats) {
            own = std::make_unique<AlignedBuffer>(floats);
            return own->data;
        }
        if (floats > capacity_) {
            std::free(data_);
            data_ = nullptr;
            capacity_ = 0;
            AlignedBuffer fresh(floats);
            std::swap(data_, fresh.data);
            capacity_ = floats;
        }
        return data_;
    }
private:
    float* data_ = nullptr;
    int64_t capacity_ = 0;
};
thread_local ThreadScratch t_prepared_scratch;

// Pads A (and A·log2 e) to npad lanes, and transposes B and C to (batch, length, npad) in scan
// order (time reversed for a reverse scan) as the preparation of the kernel's pool job.
struct Prepared {
    float *A, *A2, *Bt, *Ct;
    Prepared(StepTransposeFn to_steps, const float* a, const float* b, const float* c, int64_t batch, int64_t dim,
             int64_t L, int64_t n, int64_t np, bool reverse)
        : to_steps_(to_steps), b_(b), c_(c), batch_(batch), L_(L), n_(n), np_(np), reverse_(reverse) {
        const int64_t pad = 16;   // keeps every part on a 64-byte line
        const int64_t asize = (dim * np + pad - 1) / pad * pad, bsize = batch * L * np;
        A = t_prepared_scratch.get(2 * asize + 2 * bsize, own_);
        A2 = A + asize;
        Bt = A2 + asize;
        Ct = Bt + bsize;
        for (int64_t d = 0; d < dim; ++d)
            for (int64_t i = 0; i < np; ++i) {
                float v = i < n ? a[d * n + i] : 0.0f;
                A[d * np + i] = v;
                A2[d * np + i] = v * kernel::kLog2e;
            }
    }
    // Transposing B and C to Bt and Ct, in blocks of steps, as the preparation of a pool job.
    Preparation transposes() {
        return Preparation{batch_ * step_blocks(L_), [this](int64_t piece) {
            const StepBlock s = step_block(piece, L_);
            transpose_steps(s.b, s.l0, s.l1);
        }};
    }

private:
    void transpose_steps(int64_t bb, int64_t l0, int64_t l1) {
        to_steps_(b_ + bb * n_ * L_, n_, L_, np_, reverse_, l0, l1, Bt + bb * L_ * np_);
        to_steps_(c_ + bb * n_ * L_, n_, L_, np_, reverse_, l0, l1, Ct + bb * L_ * np_);
    }
    StepTransposeFn to_steps_;
    const float *b_, *c_;
    int64_t batch_, L_, n_, np_;
    bool reverse_;
    std::unique_ptr<AlignedBuffer> own_;   // set when the parts are too large for t_prepared_scratch
};

Problem make_problem(const float* u, const float* delta, const float* D, const float* z,
                     const float* bias, int32_t softplus, int32_t reverse, int64_t batch, int64_t dim,
                     int64_t L, int64_t n, const Prepared& prep) {
    Problem p{};
    p.u = u; p.delta = delta; p.z = z; p.D = D; p.bias = bias; p.softplus = softplus != 0;
    p.reverse = reverse != 0;
    p.batch = batch; p.dim = dim; p.length = L; p.dstate = n;
    p.npad = padded_state(n); p.nchunks = chunk_count(L);
    p.A = prep.A; p.A2 = prep.A2; p.Bt = prep.Bt; p.Ct = prep.Ct;
    return p;
}

// The channels-in-lanes forward as one pool job. Its work items are blocks of k.lanes channels
// of one batch element, all steps, except at the end of the job: there, the last blocks go in
// segments of chunks, each segment continuing from the states its predecessor left (a block's
// segments run one after another, on whichever worker takes them). With whole blocks only, the
// worker that took the last block ran it alone, on average half a block's time (≈ 0.12 ms of a
// 3.4 ms Vim-Ti scan call); with 2 segmented blocks per worker, taken segment by segment across
// the blocks, a worker never waits for a predecessor, and the job ends within about half a segment.
// A segment restarts the block's streams (≈ 2 µs more than a chunk in the middle of a block).
void forward_lanes_job(const Kernels& k, const Problem& p, const Preparation* preparation) {
    const int64_t lanes = k.lanes;
    const int64_t blocks_per_batch = (p.dim + lanes - 1) / lanes;
    const int64_t blocks = p.batch * blocks_per_batch;
    const int workers = workers_for(blocks);
    constexpr int64_t kTailSegments = 4;
    const int64_t split = workers > 1 && blocks >= 4 * workers && p.nchunks >= kTailSegments ? 2 * workers : 0;
    const int64_t segments = split > 0 ? kTailSegments : 1;
    const int64_t whole = blocks - split;
    const int64_t per = (lanes_scratch_floats(lanes) + 15) / 16 * 16;
    AlignedBuffer scratch(per * workers);
    // The tail blocks' states between segments, and how many segments of each are done.
    AlignedBuffer states(split * lanes * lanes);
    std::unique_ptr<ProgressCounter[]> segments_done(new ProgressCounter[size_t(split)]);
    parallel_rows(whole + split * segments, workers, [&](int64_t item, int w) {
        int64_t block = item, c0 = 0, c1 = p.nchunks;
        ProgressCounter* done = nullptr;
        float* block_states = nullptr;   // unused by a whole block
        if (item >= whole) {
            // Segment-major over the tail blocks: segment s of a block comes split items after s-1.
            const int64_t tail = (item - whole) % split, segment = (item - whole) / split;
            block = whole + tail;
            c0 = segment * p.nchunks / segments;
            c1 = (segment + 1) * p.nchunks / segments;
            done = &segments_done[size_t(tail)];
            block_states = states.data + tail * lanes * lanes;
            done->wait_until(segment);
        }
        const int64_t b = block / blocks_per_batch, d0 = block % blocks_per_batch * lanes;
        k.forward_lanes(p, b, d0, std::min(lanes, p.dim - d0), scratch.data + per * w, c0, c1, block_states);
        if (done) done->add(1);
    }, preparation);
}

}  // namespace

extern "C" {

const char* vimdense_scan_error_string(int32_t code) {
    switch (code) {
        case VIMDENSE_SCAN_OK: return "ok";
        case VIMDENSE_SCAN_ERR_NULL_POINTER: return "a required pointer argument is null";
        case VIMDENSE_SCAN_ERR_BAD_SHAPE: return "batch, dim, length and dstate must be positive (and not absurdly large)";
        case VIMDENSE_SCAN_ERR_ALLOC: return "scratch memory could not be allocated";
        case VIMDENSE_SCAN_ERR_NO_CUDA: return "the native library was built without CUDA kernels";
        case VIMDENSE_SCAN_ERR_CUDA: return "a CUDA call or kernel launch failed";
        case VIMDENSE_SCAN_ERR_UNSUPPORTED: return "unsupported problem size for this backend";
        case VIMDENSE_SCAN_ERR_INTERNAL: return "internal error";
        default: return "unknown error code";
    }
}

int32_t vimdense_scan_chunk_length(void) { return static_cast<int32_t>(kChunk); }

int64_t vimdense_scan_checkpoint_floats(int64_t batch, int64_t dim, int64_t length, int64_t dstate) {
    if (check_shape(batch, dim, length, dstate) != VIMDENSE_SCAN_OK) return VIMDENSE_SCAN_ERR_BAD_SHAPE;
    return batch * dim * chunk_count(length) * padded_state(dstate);
}

int32_t vimdense_scan_set_num_threads(int32_t n) {
    pool().set_threads(n);
    return pool().threads();
}

int32_t vimdense_scan_get_num_threads(void) { return pool().threads(); }

int32_t vimdense_cpu_keep_awake(int32_t mode) { return keep_awake_set_mode(mode); }

int32_t vimdense_cpu_keep_awake_active(void) { return keep_awake_active(); }

int64_t vimdense_cpu_keep_awake_window_us(void) { return keep_awake_window_us(); }

int64_t vimdense_cpu_keep_awake_cpu_us(void) { return keep_awake_cpu_us(); }

int64_t vimdense_cpu_keep_awake_work_us(void) { return keep_awake_work_us(); }

int64_t vimdense_cpu_keep_awake_work_count(void) { return keep_awake_work_count(); }

int32_t vimdense_cpu_keep_awake_takes_work(void) { return keep_awake_takes_work() ? 1 : 0; }

const char* vimdense_scan_cpu_isa(void) { return current_kernels().name; }

const char* vimdense_scan_force_isa(int32_t level) {
    g_forced_level.store(std::min(std::max(level, 0), 2));
    return current_kernels().name;
}

int32_t vimdense_selective_scan_fwd_cpu(
    const float* u, const float* delta, const float* A, const float* B, const float* C,
    const float* D, const float* z, const float* delta_bias, int32_t delta_softplus, int32_t reverse,
    int64_t batch, int64_t dim, int64_t length, int64_t dstate,
    float* out, float* last_state, float* checkpoints) {
    if (!u || !delta || !A || !B || !C || !out) return VIMDENSE_SCAN_ERR_NULL_POINTER;
    int32_t rc = check_shape(batch, dim, length, dstate);
    if (rc != VIMDENSE_SCAN_OK) return rc;
    try {
        const Kernels k = current_kernels();
        Prepared prep(k.to_steps, A, B, C, batch, dim, length, dstate, padded_state(dstate), reverse != 0);
        Problem p = make_problem(u, delta, D, z, delta_bias, delta_softplus, reverse, batch, dim, length,
                                 dstate, prep);
        p.out = out;
        p.last_state = last_state;
        p.ckpt = checkpoints;
        const Preparation transposes = prep.transposes();
        if (k.forward_lanes && p.npad == k.lanes) {
            forward_lanes_job(k, p, &transposes);
        } else {
            // Work items: blocks of kRowBlock channels of one batch element, each row with its scratch.
            const int64_t per = (row_scratch_floats(p) + 15) / 16 * 16;
            parallel_channel_blocks(batch, dim, kRowBlock, per * kRowBlock,
                                    [&](int64_t bb, int64_t d0, int64_t nrows, float* scratch) {
                                        k.forward(p, bb, d0, nrows, scratch, per);
                                    }, &transposes);
        }
    } catch (const std::bad_alloc&) {
        return VIMDENSE_SCAN_ERR_ALLOC;
    } catch (...) {
        return VIMDENSE_SCAN_ERR_INTERNAL;
    }
    return VIMDENSE_SCAN_OK;
}

int32_t vimdense_selective_scan_bwd_cpu(
    const float* u, const float* delta, const float* A, const float* B, const float* C,
    const float* D, const float* z, const float* delta_bias, int32_t delta_softplus, int32_t reverse,
    int64_t batch, int64_t dim, int64_t length, int64_t dstate,
    const float* checkpoints, const float* dout,
    float* du, float* ddelta, float* dA, float* dB, float* dC,
    float* dD, float* dz, float* ddelta_bias) {
    if (!u || !delta || !A || !B || !C || !dout || !du || !ddelta || !dA || !dB || !dC)
        return VIMDENSE_SCAN_ERR_NULL_POINTER;
    int32_t rc = check_shape(batch, dim, length, dstate);
    if (rc != VIMDENSE_SCAN_OK) return rc;
    try {
        const Kernels k = current_kernels();
        const int64_t np = padded_state(dstate), L = length, n = dstate;
        Prepared prep(k.to_steps, A, B, C, batch, dim, L, n, np, reverse != 0);
        const Preparation transposes = prep.transposes();
        Problem p = make_problem(u, delta, D, z, delta_bias, delta_softplus, reverse, batch, dim, L, n, prep);
        const int64_t rows = batch * dim;
        const int64_t blocks_per_batch = (dim + kRowBlock - 1) / kRowBlock;
        const int64_t items = batch * blocks_per_batch;
        AlignedBuffer gA_part(rows * np);
        AlignedBuffer gD_part(rows), gbias_part(rows);
        p.ckpt_in = checkpoints;
        p.dout = dout;
        p.du = du;
        p.ddelta = ddelta;
        p.dz = z ? dz : nullptr;
        p.gA_part = gA_part.data;
        p.gD_part = (D && dD) ? gD_part.data : nullptr;
        p.gbias_part = (delta_bias && ddelta_bias) ? gbias_part.data : nullptr;
        // dB and dC sum over channels. A fixed split of the work items into `groups` ranges, each
        // accumulating into its own buffer in item order, and the buffers added in group order,
        // make them independent of which thread ran what and of the thread count (per-thread
        // buffers filled by whichever thread took an item varied in the last bits from call to
        // call, and a resumed training run must retrace the uninterrupted one bit for bit). A
        // group's buffer holds only the batch elements its items belong to; the first item of each
        // stores instead of adding, so no buffer needs zeroing.
        const int64_t groups = std::min<int64_t>(items, kGradientGroups);
        auto group_begin = [&](int64_t g) { return g * items / groups; };
        const int workers = workers_for(groups);
        const int64_t per = (row_scratch_floats(p) + 15) / 16 * 16;
        const int64_t gsize = batch * L * np;
        // The backward kernels take a block's rows one at a time: one row's scratch per worker.
        AlignedBuffer scratch(per * workers);
        AlignedBuffer gBC(2 * gsize * groups);
        parallel_rows(groups, workers, [&](int64_t g, int w) {
            float* gb = gBC.data + 2 * gsize * g;
            for (int64_t item = group_begin(g); item < group_begin(g + 1); ++item) {
                const int64_t bb = item / blocks_per_batch, d0 = item % blocks_per_batch * kRowBlock;
                const bool first_of_element = item == group_begin(g) || d0 == 0;
                k.backward(p, bb, d0, std::min(kRowBlock, dim - d0), scratch.data + per * w, gb, gb + gsize,
                           first_of_element);
            }
        }, &transposes);
        // Per batch element, add the buffers of the groups that hold it into the first of them and
        // transpose back to (batch, dstate, length) in time order, in blocks of steps on the pool.
        parallel_step_blocks(batch, L, [&](int64_t bb, int64_t l0, int64_t l1) {
            int64_t g0 = 0;
            while (group_begin(g0 + 1) <= bb * blocks_per_batch) ++g0;
            float* sb = gBC.data + 2 * gsize * g0 + (bb * L + l0) * np;
            float* sc = sb + gsize;
            const int64_t count = (l1 - l0) * np;
            for (int64_t g = g0 + 1; g < groups && group_begin(g) < (bb + 1) * blocks_per_batch; ++g) {
                const float* gb = sb + 2 * gsize * (g - g0);
                const float* gc = sc + 2 * gsize * (g - g0);
                for (int64_t j = 0; j < count; ++j) {
                    sb[j] += gb[j];
                    sc[j] += gc[j];
                }
            }
            for (int64_t i = 0; i < n; ++i)
                for (int64_t l = l0; l < l1; ++l) {
                    const int64_t t = reverse ? L - 1 - l : l;
                    dB[(bb * n + i) * L + t] = sb[(l - l0) * np + i];
                    dC[(bb * n + i) * L + t] = sc[(l - l0) * np + i];
                }
        });
        // Per-channel parameters: sum the per-row partials over the batch.
        for (int64_t d = 0; d < dim; ++d) {
            for (int64_t i = 0; i < n; ++i) {
                float s = 0.0f;
                for (int64_t bb = 0; bb < batch; ++bb) s += gA_part.data[(bb * dim + d) * np + i];
                dA[d * n + i] = s;
            }
            if (p.gD_part) {
                float s = 0.0f;
                for (int64_t bb = 0; bb < batch; ++bb) s += gD_part.data[bb * dim + d];
                dD[d] = s;
            }
            if (p.gbias_part) {
                float s = 0.0f;
                for (int64_t bb = 0; bb < batch; ++bb) s += gbias_part.data[bb * dim + d];
                ddelta_bias[d] = s;
            }
        }
    } catch (const std::bad_alloc&) {
        return VIMDENSE_SCAN_ERR_ALLOC;
    } catch (...) {
        return VIMDENSE_SCAN_ERR_INTERNAL;
    }
    return VIMDENSE_SCAN_OK;
}

int32_t vimdense_conv1d_silu_fwd_cpu(
    const float* x, int64_t x_batch_stride, const float* weight, const float* bias, int32_t reverse,
    int64_t batch, int64_t dim, int64_t length, int64_t width, float* out) {
    if (!x || !weight || !out) return VIMDENSE_SCAN_ERR_NULL_POINTER;
    if (check_shape(batch, dim, length, 1) != VIMDENSE_SCAN_OK || width < 1 || width > kMaxConvWidth ||
        x_batch_stride < dim * length)
        return VIMDENSE_SCAN_ERR_BAD_SHAPE;
    try {
        const Kernels k = current_kernels();
        ConvProblem p{};
        p.x = x; p.x_batch_stride = x_batch_stride; p.weight = weight; p.bias = bias; p.reverse = reverse != 0;
        p.batch = batch; p.dim = dim; p.length = length; p.width = width; p.out = out;
        const int64_t rows = batch * dim;
        parallel_rows(rows, workers_for(rows), [&](int64_t r, int) { k.conv_forward(p, r / dim, r % dim, nullptr); });
    } catch (const std::bad_alloc&) {
        return VIMDENSE_SCAN_ERR_ALLOC;
    } catch (...) {
        return VIMDENSE_SCAN_ERR_INTERNAL;
    }
    return VIMDENSE_SCAN_OK;
}

int32_t vimdense_conv1d_silu_bwd_cpu(
    const float* x, int64_t x_batch_stride, const float* weight, const float* bias, int32_t reverse,
    int64_t batch, int64_t dim, int64_t length, int64_t width, const float* dout,
    float* dx, float* dweight, float* dbias) {
    if (!x || !weight || !dout || !dx || !dweight) return VIMDENSE_SCAN_ERR_NULL_POINTER;
    if (check_shape(batch, dim, length, 1) != VIMDENSE_SCAN_OK || width < 1 || width > kMaxConvWidth ||
        x_batch_stride < dim * length)
        return VIMDENSE_SCAN_ERR_BAD_SHAPE;
    try {
        const Kernels k = current_kernels();
        const int64_t rows = batch * dim;
        AlignedBuffer gw_part(rows * width), gb_part(rows);
        ConvProblem p{};
        p.x = x; p.x_batch_stride = x_batch_stride; p.weight = weight; p.bias = bias; p.reverse = reverse != 0;
        p.batch = batch; p.dim = dim; p.length = length; p.width = width;
        p.dout = dout; p.dx = dx; p.gweight_part = gw_part.data;
        p.gbias_part = (bias && dbias) ? gb_part.data : nullptr;
        const int workers = workers_for(rows);
        const int64_t per = (length + 63) / 64 * 64 + 64;
        AlignedBuffer scratch(per * workers);
        parallel_rows(rows, workers, [&](int64_t r, int w) {
            k.conv_backward(p, r / dim, r % dim, scratch.data + per * w);
        });
        for (int64_t d = 0; d < dim; ++d) {
            for (int64_t j = 0; j < width; ++j) {
                float s = 0.0f;
                for (int64_t bb = 0; bb < batch; ++bb) s += gw_part.data[(bb * dim + d) * width + j];
                dweight[d * width + j] = s;
            }
            if (p.gbias_part) {
                float s = 0.0f;
                for (int64_t bb = 0; bb < batch; ++bb) s += gb_part.data[bb * dim + d];
                dbias[d] = s;
            }
        }
    } catch (const std::bad_alloc&) {
        return VIMDENSE_SCAN_ERR_ALLOC;
    } catch (...) {
        return VIMDENSE_SCAN_ERR_INTERNAL;
    }
    return VIMDENSE_SCAN_OK;
}

#ifndef VIMDENSE_WITH_CUDA
// Without CUDA the entry points exist (so every build exports the same ABI) and say so.
int32_t vimdense_selective_scan_fwd_cuda(
    const float*, const float*, const float*, const float*, const float*, const float*,
    const float*, const float*, int32_t, int32_t, int64_t, int64_t, int64_t, int64_t, float*, float*,
    float*, void*) {
    return VIMDENSE_SCAN_ERR_NO_CUDA;
}

int32_t vimdense_selective_scan_bwd_cuda(
    const float*, const float*, const float*, const float*, const float*, const float*,
    const float*, const float*, int32_t, int32_t, int64_t, int64_t, int64_t, int64_t, const float*,
    const float*, float*, float*, float*, float*, float*, float*, float*, float*, void*) {
    return VIMDENSE_SCAN_ERR_NO_CUDA;
}
#endif

}  // extern "C"
