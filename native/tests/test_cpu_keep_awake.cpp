// The keep-awake threads of the CPU kernels' pool (src/cpu_keep_awake.h), observed through /proc:
// after a multi-threaded scan there is one SCHED_IDLE thread per CPU the pool uses; while jobs keep
// coming the pool's CPUs do not go idle; after the window, or switched off, the threads use no CPU;
// the CPU time the library reports for them matches the kernel's accounting of those threads. Every
// check holds on a machine busy with other work too (the threads then get no CPU, and the CPUs are
// not idle anyway).
#include <dirent.h>
#include <sched.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "scan_test_common.h"
#include "vimdense/selective_scan.h"

using namespace scan_test;

namespace {

// CPU time (utime + stime, /proc's clock ticks) of each thread of this process whose scheduling
// policy is SCHED_IDLE.
std::vector<double> idle_policy_thread_cpu_seconds() {
    std::vector<double> found;
    DIR* dir = opendir("/proc/self/task");
    if (!dir) return found;
    const double tick = double(sysconf(_SC_CLK_TCK));
    while (dirent* e = readdir(dir)) {
        const int tid = std::atoi(e->d_name);
        if (tid <= 0 || sched_getscheduler(tid) != SCHED_IDLE) continue;
        std::ifstream f("/proc/self/task/" + std::to_string(tid) + "/stat");
        std::string line;
        std::getline(f, line);
        // Fields after the parenthesised name: utime and stime are the 14th and 15th.
        std::istringstream rest(line.substr(line.rfind(')') + 2));
        std::vector<std::string> fields;
        for (std::string w; rest >> w;) fields.push_back(w);
        if (fields.size() < 13) continue;
        found.push_back((std::stod(fields[11]) + std::stod(fields[12])) / tick);
    }
    closedir(dir);
    return found;
}

// Idle + iowait time of the first n CPUs in `set` so far, from /proc/stat (clock ticks).
double idle_seconds(const cpu_set_t& set, int n) {
    std::ifstream f("/proc/stat");
    const double tick = 1.0 / double(sysconf(_SC_CLK_TCK));
    double total = 0;
    int counted = 0;
    for (std::string line; std::getline(f, line) && counted < n;) {
        if (line.compare(0, 3, "cpu") != 0 || line.size() < 4 || !std::isdigit(static_cast<unsigned char>(line[3]))) continue;
        std::istringstream in(line.substr(3));
        int cpu;
        double user, nice, system, idle, iowait;
        in >> cpu >> user >> nice >> system >> idle >> iowait;
        if (!CPU_ISSET(cpu, &set)) continue;
        total += (idle + iowait) * tick;
        ++counted;
    }
    return total;
}

// A forward scan with enough channel blocks for every worker.
void run_scan(const Problem& p) {
    std::vector<float> out(p.u.size());
    const int rc = vimdense_selective_scan_fwd_cpu(p.u.data(), p.delta.data(), p.A.data(), p.B.data(), p.C.data(),
                                                   nullptr, p.z.data(), nullptr, 1, 0, p.batch, p.dim, p.length,
                                                   p.dstate, out.data(), nullptr, nullptr);
    if (rc != 0) std::printf("  scan returned %d\n", rc);
}

}  // namespace

int main() {
    Checker chk;
    cpu_set_t set;
    sched_getaffinity(0, sizeof set, &set);
    const int cpus = CPU_COUNT(&set);
    const int threads = 2;
    const int spinners = cpus < threads ? cpus : threads;
    vimdense_scan_set_num_threads(threads);
    const Problem p = random_problem(1, 64, 500, 16, false, true, false, true, 5);
    const double window = double(vimdense_cpu_keep_awake_window_us()) * 1e-6;

    chk.expect(vimdense_cpu_keep_awake(1) == 1, "mode on -> in effect", 0, 0);
    run_scan(p);
    // The first job starts the threads; each lowers its own policy once it runs, which on a busy
    // machine may take a while.
    auto tasks = idle_policy_thread_cpu_seconds();
    for (int wait = 0; wait < 200 && int(tasks.size()) < spinners; ++wait) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        tasks = idle_policy_thread_cpu_seconds();
    }
    chk.expect(int(tasks.size()) == spinners, "SCHED_IDLE threads after a 2-thread scan", double(tasks.size()), spinners);

    // Armed (a scan every 5 ms, this thread sleeping in between), the pool's CPUs do not go idle:
    // either the spinners run or, on a busy machine, other work does. Checked through the kernel's
    // idle time of those CPUs, not the spinners' own figures.
    const double tick = 1.0 / double(sysconf(_SC_CLK_TCK));
    const double armed_span = 0.3;
    const double idle_before = idle_seconds(set, spinners);
    const auto armed_start = std::chrono::steady_clock::now();
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - armed_start).count() < armed_span) {
        run_scan(p);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    const double armed_idle = idle_seconds(set, spinners) - idle_before;
    std::printf("  pool CPUs idle while armed: %.3f s of %.3f s\n", armed_idle, spinners * armed_span);
    chk.le("pool CPUs' idle time while armed (s)", armed_idle, 0.1 * spinners * armed_span + 2 * tick);

    // Past the window they stop: no CPU time after it (a busy machine gives them none either way).
    std::this_thread::sleep_for(std::chrono::duration<double>(2 * window));
    const int64_t cpu_past = vimdense_cpu_keep_awake_cpu_us();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    chk.le("spinners' CPU time in 200 ms after the window (s)", double(vimdense_cpu_keep_awake_cpu_us() - cpu_past) * 1e-6,
           0.005);

    // The library's figure for their CPU time against the kernel's: /proc gives user and system time
    // in whole clock ticks (10 ms), each rounded down, so it may lag by up to two ticks per thread,
    // never lead.
    tasks = idle_policy_thread_cpu_seconds();
    double proc_seconds = 0;
    for (double t : tasks) proc_seconds += t;
    const double lib_seconds = double(vimdense_cpu_keep_awake_cpu_us()) * 1e-6;
    std::printf("  spinner CPU: library %.4f s, /proc %.4f s\n", lib_seconds, proc_seconds);
    chk.le("/proc's spinner CPU time - the library's (s)", proc_seconds - lib_seconds, 0.002);
    chk.le("the library's spinner CPU time - /proc's (s)", lib_seconds - proc_seconds, 2 * tick * spinners + 0.002);

    // Switched off, scans no longer start them.
    chk.expect(vimdense_cpu_keep_awake(0) == 0, "mode off -> not in effect", 0, 0);
    const int64_t cpu_off = vimdense_cpu_keep_awake_cpu_us();
    for (int i = 0; i < 20; ++i) {
        run_scan(p);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    chk.le("mode off: spinners' CPU time over 20 scans (s)", double(vimdense_cpu_keep_awake_cpu_us() - cpu_off) * 1e-6,
           0.005);
    vimdense_cpu_keep_awake(-1);

    std::printf("%s: %d failure(s)\n", chk.failures ? "FAILED" : "PASSED", chk.failures);
    return chk.failures ? 1 : 0;
}
