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
// pool job (keep_awake_arm), lies ahead, and sleep otherwise. While they spin they also take the
// pool's jobs themselves (keep_awake_set_work).
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
// CPU time the spinning threads have used so far, in microseconds, less the time they spent on
// work they took (keep_awake_set_work): the part of the process's CPU time that did no work
// (benchmarks subtract it).
int64_t keep_awake_cpu_us();
// CPU time the spinning threads spent on work they took, in microseconds, and how many pieces.
int64_t keep_awake_work_us();
int64_t keep_awake_work_count();
// True when the spinners are spinning now: in effect, started, none asleep, inside the window.
bool keep_awake_spinning();
// True once a spinner has started that runs pool work (keep_awake_set_work). A spinner does only
// when it may raise itself back to the normal policy while it runs a share (CAP_SYS_NICE, or an
// RLIMIT_NICE of 20): at SCHED_IDLE a share would wait for a free CPU, which a machine busy with
// other processes never has.
bool keep_awake_takes_work();

// Work the spinners take while they spin. A job handed to threads sleeping on a condition variable
// waits for their wake-up: on a virtual machine ≈ 40 µs at the median and over 1 ms at the 99th
// percentile (an inter-processor interrupt goes through the hypervisor), even when the target CPU
// is busy spinning. A spinner polling for the job sees it within a microsecond. claim() returns a
// token >= 0 for a piece of work or -1 when there is none (it is called in the spin loop, so it
// must cost a few loads when there is nothing); run(token) does the piece. While it does, the
// spinner runs at the normal policy and may run on any of the pool's CPUs, so a piece it holds
// competes for CPU time as the pool's own workers do and is not stuck behind a thread that took
// its CPU.
void keep_awake_set_work(int (*claim)(), void (*run)(int token));

}  // namespace vimdense_scan
