// The keep-awake threads of the CPU kernels' pool (src/cpu_keep_awake.h), observed from outside
// through /proc: after a multi-threaded scan there is one SCHED_IDLE thread per CPU the pool uses,
// runnable during the window and asleep after it; switched off, a scan leaves them asleep; the CPU
// time the library reports for them matches the kernel's accounting of those threads.
#include <dirent.h>
#include <sched.h>
#include <unistd.h>

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

struct TaskInfo {
    int tid;
    char state;                 // R, S, ... as in /proc/self/task/TID/stat
    double cpu_seconds;         // utime + stime
};

// Threads of this process whose scheduling policy is SCHED_IDLE.
std::vector<TaskInfo> idle_policy_threads() {
    std::vector<TaskInfo> found;
    DIR* dir = opendir("/proc/self/task");
    if (!dir) return found;
    const double tick = double(sysconf(_SC_CLK_TCK));
    while (dirent* e = readdir(dir)) {
        const int tid = std::atoi(e->d_name);
        if (tid <= 0 || sched_getscheduler(tid) != SCHED_IDLE) continue;
        std::ifstream f("/proc/self/task/" + std::to_string(tid) + "/stat");
        std::string line;
        std::getline(f, line);
        // Fields after the parenthesised name: state is the 3rd, utime and stime the 14th and 15th.
        std::istringstream rest(line.substr(line.rfind(')') + 2));
        std::vector<std::string> fields;
        for (std::string w; rest >> w;) fields.push_back(w);
        if (fields.size() < 13) continue;
        found.push_back({tid, fields[0][0], (std::stod(fields[11]) + std::stod(fields[12])) / tick});
    }
    closedir(dir);
    return found;
}

int count_in_state(const std::vector<TaskInfo>& tasks, char state) {
    int n = 0;
    for (const auto& t : tasks) n += t.state == state;
    return n;
}

// A forward scan with enough channel blocks for every worker.
double run_scan(const Problem& p) {
    std::vector<float> out(p.u.size());
    const auto t0 = std::chrono::steady_clock::now();
    const int rc = vimdense_selective_scan_fwd_cpu(p.u.data(), p.delta.data(), p.A.data(), p.B.data(), p.C.data(),
                                                   nullptr, p.z.data(), nullptr, 1, 0, p.batch, p.dim, p.length,
                                                   p.dstate, out.data(), nullptr, nullptr);
    if (rc != 0) std::printf("  scan returned %d\n", rc);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
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
    const auto after_call = std::chrono::steady_clock::now();
    auto tasks = idle_policy_threads();
    const double checked_after = std::chrono::duration<double>(std::chrono::steady_clock::now() - after_call).count();
    chk.expect(int(tasks.size()) == spinners, "SCHED_IDLE threads after a 2-thread scan", double(tasks.size()), spinners);
    // Within the window they spin (runnable); a check that came late on a loaded machine says nothing.
    if (checked_after < window / 2)
        chk.expect(count_in_state(tasks, 'R') == spinners, "runnable within the window", count_in_state(tasks, 'R'),
                   spinners);

    std::this_thread::sleep_for(std::chrono::duration<double>(10 * window));
    tasks = idle_policy_threads();
    chk.expect(count_in_state(tasks, 'S') == spinners, "asleep 10 windows after the last job", count_in_state(tasks, 'S'),
               spinners);

    // The library's figure for their CPU time against the kernel's: /proc gives user and system time
    // in whole clock ticks (10 ms), each rounded down, so it may lag by up to two ticks per thread,
    // never lead.
    double proc_seconds = 0;
    for (const auto& t : tasks) proc_seconds += t.cpu_seconds;
    const double lib_seconds = double(vimdense_cpu_keep_awake_cpu_us()) * 1e-6;
    const double tick = 1.0 / double(sysconf(_SC_CLK_TCK));
    std::printf("  spinner CPU: library %.4f s, /proc %.4f s\n", lib_seconds, proc_seconds);
    chk.le("/proc's spinner CPU time - the library's (s)", proc_seconds - lib_seconds, 0.002);
    chk.le("the library's spinner CPU time - /proc's (s)", lib_seconds - proc_seconds, 2 * tick * spinners + 0.002);

    chk.expect(vimdense_cpu_keep_awake(0) == 0, "mode off -> not in effect", 0, 0);
    run_scan(p);
    tasks = idle_policy_threads();
    chk.expect(count_in_state(tasks, 'S') == spinners, "mode off: still asleep right after a scan",
               count_in_state(tasks, 'S'), spinners);
    vimdense_cpu_keep_awake(-1);

    std::printf("%s: %d failure(s)\n", chk.failures ? "FAILED" : "PASSED", chk.failures);
    return chk.failures ? 1 : 0;
}
