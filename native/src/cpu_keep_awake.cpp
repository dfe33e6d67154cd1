// See cpu_keep_awake.h for why the pool's CPUs are kept out of idle between jobs.
#include "cpu_keep_awake.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

namespace vimdense_scan {
namespace {

// Long enough to bridge the torch ops between two scan calls of a Vim forward (≈ 1-10 ms) and
// the steps of a training iteration; short enough that an idle process stops spinning at once.
constexpr int64_t kWindowNs = 20'000'000;

int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// CPU time of the calling thread.
int64_t thread_cpu_ns() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

std::vector<int> allowed_cpus() {
    std::vector<int> cpus;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        for (int c = 0; c < CPU_SETSIZE; ++c)
            if (CPU_ISSET(c, &set)) cpus.push_back(c);
    return cpus;
}

// The CPUs listed in a sysfs cpu list such as "0-3,8,10-11"; empty if the file cannot be read.
std::vector<int> read_cpu_list(const std::string& path) {
    std::vector<int> cpus;
    FILE* f = std::fopen(path.c_str(), "r");
    if (!f) return cpus;
    char buf[512];
    const bool ok = std::fgets(buf, sizeof buf, f) != nullptr;
    std::fclose(f);
    if (!ok) return cpus;
    for (char* p = buf; *p && *p != '\n';) {
        char* end;
        const long a = std::strtol(p, &end, 10);
        if (end == p) break;
        long b = a;
        p = end;
        if (*p == '-') {
            b = std::strtol(p + 1, &end, 10);
            p = end;
        }
        for (long c = a; c <= b; ++c) cpus.push_back(static_cast<int>(c));
        if (*p == ',') ++p;
    }
    return cpus;
}

// True when two of the given CPUs share a core (or the topology cannot be read: then spinning
// could take execution units from a sibling, and auto mode stays off).
bool has_smt_siblings(const std::vector<int>& cpus) {
    for (int c : cpus) {
        const auto siblings = read_cpu_list("/sys/devices/system/cpu/cpu" + std::to_string(c) + "/topology/thread_siblings_list");
        if (siblings.empty()) return true;
        for (int s : siblings)
            if (s != c && std::find(cpus.begin(), cpus.end(), s) != cpus.end()) return true;
    }
    return false;
}

int32_t initial_mode() {
    const char* v = std::getenv("VIMDENSE_KEEP_AWAKE");
    if (!v) return kKeepAwakeAuto;
    if (std::strcmp(v, "0") == 0 || std::strcmp(v, "off") == 0) return kKeepAwakeOff;
    if (std::strcmp(v, "1") == 0 || std::strcmp(v, "on") == 0) return kKeepAwakeOn;
    return kKeepAwakeAuto;
}

class KeepAwake {
public:
    KeepAwake() : mode_(initial_mode()) {}

    int32_t set_mode(int32_t mode) {
        mode_.store(mode == kKeepAwakeOff || mode == kKeepAwakeOn ? mode : kKeepAwakeAuto);
        if (!active()) deadline_.store(0);   // spinners go back to sleep at their next check
        return active() ? 1 : 0;
    }

    bool active() {
        const int32_t mode = mode_.load();
        if (mode == kKeepAwakeOff) return false;
        if (mode == kKeepAwakeOn) return true;
        static const bool smt = has_smt_siblings(allowed_cpus());
        return !smt;
    }

    void arm(int threads) {
        if (threads <= 1 || !active()) return;
        ensure_spinners(threads);
        deadline_.store(now_ns() + kWindowNs);
        if (sleeping_.load() > 0) {
            std::lock_guard<std::mutex> lk(m_);
            cv_.notify_all();
        }
    }

    // CPU time the spinners have used so far (their threads' clocks; they never exit), less the
    // time they spent on work they took.
    int64_t cpu_us() {
        std::lock_guard<std::mutex> lk(start_m_);
        int64_t total = 0;
        for (clockid_t c : clocks_) {
            timespec ts{};
            if (clock_gettime(c, &ts) == 0) total += int64_t(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
        }
        return total - work_ns_.load() / 1000;
    }

    int64_t work_us() { return work_ns_.load() / 1000; }
    int64_t work_count() { return work_count_.load(); }

    bool spinning() { return started_.load() > 0 && sleeping_.load() == 0 && active() && now_ns() < deadline_.load(); }

    bool takes_work() { return working_spinners_.load() > 0; }

    void set_work(int (*claim)(), void (*run)(int)) {
        run_.store(run);
        claim_.store(claim, std::memory_order_release);
    }

private:
    void ensure_spinners(int threads) {
        if (started_.load(std::memory_order_acquire) >= threads) return;
        std::lock_guard<std::mutex> lk(start_m_);
        const std::vector<int> cpus = allowed_cpus();
        cpu_set_t pool_cpus;
        CPU_ZERO(&pool_cpus);
        for (int c : cpus) CPU_SET(c, &pool_cpus);
        const int wanted = std::min<int>(threads, static_cast<int>(cpus.size()));
        for (int i = started_.load(); i < wanted; ++i) {
            // Lives until the process ends.
            std::thread([this, cpu = cpus[i], pool_cpus] { spin(cpu, pool_cpus); }).detach();
        }
        started_.store(std::max(wanted, started_.load()), std::memory_order_release);
    }

    void spin(int cpu, cpu_set_t pool_cpus) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        pthread_setaffinity_np(pthread_self(), sizeof one, &one);
        sched_param param{};
        // Lowering a thread to SCHED_IDLE needs no privilege. If it fails anyway, spinning at
        // normal priority would steal the CPU: give up instead.
        if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &param) != 0) return;
        // A share of a job run at SCHED_IDLE holds up the whole job whenever other processes keep every
        // CPU busy (then the share gets ≈ 0.3% of a CPU: a 16 ms share took 4 s in the CTest beside
        // builds), so a spinner runs its shares at the normal policy. Going back from SCHED_IDLE needs
        // CAP_SYS_NICE or an RLIMIT_NICE of 20; without either, this thread only keeps its CPU awake.
        const bool may_work = pthread_setschedparam(pthread_self(), SCHED_OTHER, &param) == 0 &&
                              pthread_setschedparam(pthread_self(), SCHED_IDLE, &param) == 0;
        if (may_work) working_spinners_.fetch_add(1);
        clockid_t clock;
        if (pthread_getcpuclockid(pthread_self(), &clock) == 0) {
            std::lock_guard<std::mutex> lk(start_m_);
            clocks_.push_back(clock);
        }
        for (;;) {
            // No pause instruction in this loop: a hypervisor takes a vCPU that runs pause in a
            // loop for one spinning on a lock (pause-loop exiting) and deschedules it, which is the
            // very idling this avoids (measured: Vim-Ti's forward ≈ 5% slower with pause than without).
            while (now_ns() < deadline_.load(std::memory_order_relaxed)) {
                int (*claim)() = may_work ? claim_.load(std::memory_order_acquire) : nullptr;
                if (!claim) continue;
                const int token = claim();
                if (token < 0) continue;
                pthread_setschedparam(pthread_self(), SCHED_OTHER, &param);
                pthread_setaffinity_np(pthread_self(), sizeof pool_cpus, &pool_cpus);
                const int64_t t0 = thread_cpu_ns();
                run_.load()(token);
                work_ns_.fetch_add(thread_cpu_ns() - t0);
                work_count_.fetch_add(1);
                pthread_setaffinity_np(pthread_self(), sizeof one, &one);
                pthread_setschedparam(pthread_self(), SCHED_IDLE, &param);
            }
            std::unique_lock<std::mutex> lk(m_);
            sleeping_.fetch_add(1);
            cv_.wait(lk, [&] { return now_ns() < deadline_.load(); });
            sleeping_.fetch_sub(1);
        }
    }

    std::vector<clockid_t> clocks_;   // guarded by start_m_
    std::atomic<int32_t> mode_;
    std::atomic<int (*)()> claim_{nullptr};
    std::atomic<void (*)(int)> run_{nullptr};
    std::atomic<int64_t> work_ns_{0};
    std::atomic<int64_t> work_count_{0};
    std::atomic<int64_t> deadline_{0};
    std::atomic<int> sleeping_{0};
    std::atomic<int> started_{0};
    std::atomic<int> working_spinners_{0};   // spinners allowed to run shares (see spin())
    std::mutex m_, start_m_;
    std::condition_variable cv_;
};

KeepAwake& keep_awake() {
    static KeepAwake* k = new KeepAwake();   // leaked on purpose: its threads outlive static destruction
    return *k;
}

}  // namespace

void keep_awake_arm(int threads) { keep_awake().arm(threads); }
int32_t keep_awake_set_mode(int32_t mode) { return keep_awake().set_mode(mode); }
int32_t keep_awake_active() { return keep_awake().active() ? 1 : 0; }
int64_t keep_awake_window_us() { return kWindowNs / 1000; }
int64_t keep_awake_cpu_us() { return keep_awake().cpu_us(); }
int64_t keep_awake_work_us() { return keep_awake().work_us(); }
int64_t keep_awake_work_count() { return keep_awake().work_count(); }
bool keep_awake_spinning() { return keep_awake().spinning(); }
bool keep_awake_takes_work() { return keep_awake().takes_work(); }
void keep_awake_set_work(int (*claim)(), void (*run)(int)) { keep_awake().set_work(claim, run); }

}  // namespace vimdense_scan
