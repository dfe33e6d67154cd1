// Keeps the CPUs of the CPU kernels' thread pool out of idle for a short window after each of its
// jobs, so that the next job's workers (and libtorch's OpenMP threads in between) start at once.
//
// Why: a worker blocked on a condition variable sleeps, and its CPU goes idle. Waking it costs the
// futex call plus the idle CPU's exit; on a virtual machine the idle vCPU halts, the host gives
// the physical core to others, and the worker then started 0.2-0.4 ms after it was notified, on
// caches others had used (measured in Vim-Ti's forward at 1024²: 48 scan calls, each ≈ 4 ms).
// OpenMP runtimes spin their idle threads for the same reason, but a spinning worker of normal
// priority takes half of a 2-core machine from the other runtime's threads (see OpenMpWaitPolicy
// in Vim.Core). So the spinning is done by separate threads of the SCHED_IDLE policy, one pinned
// to each CPU the pool uses: the scheduler runs them only when nothing else wants that CPU, and
// a thread that wakes up preempts them at once. They spin while a deadline, moved forward by every
// pool job (keep_awake_arm), lies ahead, and sleep otherwise.
#pragma once
#include <cstdint>

namespace vimdense_scan {

// Modes: kKeepAwakeAuto (default; on unless two of the CPUs are SMT siblings, where a spinning
// thread would take execution units from its sibling's work), kKeepAwakeOff, kKeepAwakeOn. The
// environment variable VIMDENSE_KEEP_AWAKE=0|1|auto sets the initial mode.
constexpr int32_t kKeepAwakeAuto = -1;
constexpr int32_t kKeepAwakeOff = 0;
constexpr int32_t kKeepAwakeOn = 1;

// Called at the start of every multi-threaded pool job with the pool's thread count: moves the
// deadline to now + the window and wakes the spinners if they sleep (starting them the first time).
void keep_awake_arm(int threads);
// Sets the mode; returns 1 when keeping awake is now in effect, else 0.
int32_t keep_awake_set_mode(int32_t mode);
// 1 when keeping awake is in effect (mode on, or auto without SMT siblings), else 0.
int32_t keep_awake_active();
// The window after a job during which the CPUs are kept busy, in microseconds.
int64_t keep_awake_window_us();
// CPU time the spinning threads have used so far, in microseconds: the part of the process's CPU
// time that did no work (benchmarks subtract it).
int64_t keep_awake_cpu_us();

}  // namespace vimdense_scan
