// The keep-awake threads of the CPU kernels' pool (src/cpu_keep_awake.h), observed through /proc:
// after a multi-threaded scan there is one SCHED_IDLE thread per CPU the pool uses; while jobs keep
// coming the pool's CPUs do not go idle, and the threads take workers' shares of the jobs, with
// results bit for bit those of one thread; after the window, or switched off, the threads use no
// CPU; the CPU time the library reports for them (spinning, and work) matches the kernel's
// accounting of those threads; a share one of them holds is not stranded when another thread takes
// its CPU. Every check holds on a machine busy with other work too (the threads then get no CPU,
// and the CPUs are not idle anyway). The threads take shares only where they may raise themselves
// back to the normal policy while they run one; run as root, the program also runs itself without
// that permission (--unprivileged) and checks that the threads then take none.
#include <pthread.h>
#include <dirent.h>
#include <grp.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstring>
#include <ctime>
#include <chrono>
#include <cstdio>
#include <atomic>
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

// Time the first n CPUs in `set` spent neither idle nor running this process so far: other processes
// (and the hypervisor's steal), from /proc/stat's ticks and this process's CPU clock.
double others_seconds(const cpu_set_t& set, int n) {
    std::ifstream f("/proc/stat");
    const double tick = 1.0 / double(sysconf(_SC_CLK_TCK));
    double busy = 0;
    int counted = 0;
    for (std::string line; std::getline(f, line) && counted < n;) {
        if (line.compare(0, 3, "cpu") != 0 || line.size() < 4 || !std::isdigit(static_cast<unsigned char>(line[3]))) continue;
        std::istringstream in(line.substr(3));
        int cpu;
        in >> cpu;
        if (!CPU_ISSET(cpu, &set)) continue;
        // user nice system idle iowait irq softirq steal
        double field[8] = {};
        for (double& v : field) in >> v;
        busy += (field[0] + field[1] + field[2] + field[5] + field[6] + field[7]) * tick;
        ++counted;
    }
    timespec own{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &own);
    return busy - (double(own.tv_sec) + double(own.tv_nsec) * 1e-9);
}

// A forward scan with enough channel blocks for every worker, into out.
void run_scan_into(const Problem& p, std::vector<float>& out) {
    out.resize(p.u.size());
    const int rc = vimdense_selective_scan_fwd_cpu(p.u.data(), p.delta.data(), p.A.data(), p.B.data(), p.C.data(),
                                                   nullptr, p.z.data(), nullptr, 1, 0, p.batch, p.dim, p.length,
                                                   p.dstate, out.data(), nullptr, nullptr);
    if (rc != 0) std::printf("  scan returned %d\n", rc);
}

std::vector<float> run_scan(const Problem& p) {
    std::vector<float> out;
    run_scan_into(p, out);
    return out;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// A share of a job held by a spinner (SCHED_IDLE) must not wait for its CPU to be free: another
// thread of normal priority takes that CPU for `hog` seconds while the share runs. The calling
// thread is pinned to the first pool CPU, so the spinner of the second takes the share, and the
// competing thread is pinned to that second CPU. Returns the scan's wall time; the spinner must
// finish its share elsewhere (on the first CPU once the caller waits) long before the hog ends.
double scan_with_hogged_spinner(const cpu_set_t& pool, const Problem& big, double hog, int64_t* spinner_shares) {
    int first = -1, second = -1;
    for (int c = 0; c < CPU_SETSIZE && second < 0; ++c)
        if (CPU_ISSET(c, &pool)) (first < 0 ? first : second) = c;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    pthread_setaffinity_np(pthread_self(), sizeof one, &one);
    std::atomic<bool> go{false}, scanned{false};
    std::thread hogger([&] {
        cpu_set_t other;
        CPU_ZERO(&other);
        CPU_SET(second, &other);
        pthread_setaffinity_np(pthread_self(), sizeof other, &other);
        while (!go.load()) std::this_thread::sleep_for(std::chrono::microseconds(200));
        // Let the scan start and the spinner take its share, then keep its CPU busy.
        std::this_thread::sleep_for(std::chrono::milliseconds(3));
        // Until the scan is done, at most `hog` seconds: a share stuck on this CPU ends only when the hog does.
        const auto start = std::chrono::steady_clock::now();
        while (seconds_since(start) < hog && !scanned.load()) {
        }
    });
    std::vector<float> out;
    run_scan_into(big, out);   // arms the spinners for the timed scan (and faults in its output)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));   // and lets them wake up
    const int64_t shares_before = vimdense_cpu_keep_awake_work_count();
    go.store(true);
    const auto start = std::chrono::steady_clock::now();
    run_scan_into(big, out);
    const double took = seconds_since(start);
    scanned.store(true);
    hogger.join();
    // Read after the hog: a spinner counts its share after finishing it, and may then wait for its CPU.
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    *spinner_shares = vimdense_cpu_keep_awake_work_count() - shares_before;
    pthread_setaffinity_np(pthread_self(), sizeof pool, &pool);
    return took;
}

}  // namespace

// Without the permission to leave SCHED_IDLE again (an ordinary user's RLIMIT_NICE of 0, no
// CAP_SYS_NICE), the keep-awake threads still start and spin but take no shares, and the results
// stay those of one thread. Run by main() as a child when it runs as root.
int unprivileged_checks() {
    Checker chk;
    const rlimit no_nice{0, 0};
    const bool dropped = setrlimit(RLIMIT_NICE, &no_nice) == 0 && setgroups(0, nullptr) == 0 &&
                         setresgid(65534, 65534, 65534) == 0 && setresuid(65534, 65534, 65534) == 0;
    chk.expect(dropped, "unprivileged: dropped to uid 65534 without capabilities", dropped, 1);
    if (!dropped) return 1;
    vimdense_scan_set_num_threads(1);
    const Problem p = random_problem(1, 64, 500, 16, false, true, false, true, 5);
    const std::vector<float> one_thread = run_scan(p);
    vimdense_scan_set_num_threads(2);
    chk.expect(vimdense_cpu_keep_awake(1) == 1, "unprivileged: mode on -> in effect", 0, 0);
    int differing = 0;
    for (int i = 0; i < 100; ++i) {
        differing += run_scan(p) != one_thread;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    auto tasks = idle_policy_thread_cpu_seconds();
    chk.expect(!tasks.empty(), "unprivileged: SCHED_IDLE threads started", double(tasks.size()), 1);
    chk.expect(vimdense_cpu_keep_awake_takes_work() == 0, "unprivileged: threads take no work",
               vimdense_cpu_keep_awake_takes_work(), 0);
    chk.expect(vimdense_cpu_keep_awake_work_count() == 0, "unprivileged: shares taken by them",
               double(vimdense_cpu_keep_awake_work_count()), 0);
    chk.expect(differing == 0, "unprivileged: scans differing from one thread's result", differing, 0);
    std::printf("%s (unprivileged): %d failure(s)\n", chk.failures ? "FAILED" : "PASSED", chk.failures);
    return chk.failures ? 1 : 0;
}

int main(int argc, char** argv) {
    if (argc > 1 && std::strcmp(argv[1], "--unprivileged") == 0) return unprivileged_checks();
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
    const bool takes_work = vimdense_cpu_keep_awake_takes_work() == 1;
    std::printf("  the threads %s shares (permission to leave SCHED_IDLE while working: %s)\n",
                takes_work ? "take" : "do not take", takes_work ? "yes" : "no");

    // Armed, the spinners take the workers' shares of the jobs themselves (unless other work keeps
    // them off their CPUs: then they get no CPU time at all), and the results are those of one
    // thread, bit for bit.
    vimdense_scan_set_num_threads(1);
    const std::vector<float> one_thread = run_scan(p);
    vimdense_scan_set_num_threads(threads);
    const int64_t shares_before = vimdense_cpu_keep_awake_work_count();
    const int64_t spin_before = vimdense_cpu_keep_awake_cpu_us();
    int differing = 0;
    // Rounds of 40 scans until a spinner has taken a share, at most 5: on a loaded machine the spinners get slivers of
    // CPU (a share or two in 40 scans with two builds beside them, none at times), on a quiet one they take many at once.
    const double others_before = others_seconds(set, spinners);
    const auto rounds_start = std::chrono::steady_clock::now();
    int rounds = 0;
    for (; rounds < 5 && (rounds == 0 || vimdense_cpu_keep_awake_work_count() == shares_before); ++rounds) {
        for (int i = 0; i < 40; ++i) {
            differing += run_scan(p) != one_thread;
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }
    const int64_t shares = vimdense_cpu_keep_awake_work_count() - shares_before;
    const double spun = double(vimdense_cpu_keep_awake_cpu_us() - spin_before) * 1e-6;
    std::printf("  shares taken by spinners in %d scans: %lld (they spun %.3f s)\n", 40 * rounds, (long long)shares, spun);
    const double others_share = (others_seconds(set, spinners) - others_before) / (spinners * seconds_since(rounds_start));
    std::printf("  other processes took %.0f%% of the pool's CPUs meanwhile\n", 100 * others_share);
    chk.expect(differing == 0, "scans differing from one thread's result", differing, 0);
    // On a quiet machine they spin through most of the 40 scans (tenths of a second) and see jobs being published. While
    // other processes keep the CPUs busy they run in slivers between them, mostly when no job is out (beside five
    // builds: 0.2 s of spinning in 200 scans, no share), so the check needs a machine mostly left to this program.
    if (!takes_work)
        chk.expect(shares == 0, "shares taken by threads that may not take work", double(shares), 0);
    else if (spinners > 1 && shares == 0 && others_share > 0.25)
        std::printf("  (no share taken while the machine was busy; not checked)\n");
    else if (spinners > 1)
        chk.expect(shares > 0, "spinners took shares", double(shares), 1);

    // Armed (a scan every 5 ms, this thread sleeping in between), the pool's CPUs do not go idle:
    // either the spinners run or, on a busy machine, other work does. Checked through the kernel's
    // idle time of those CPUs, not the spinners' own figures.
    const double tick = 1.0 / double(sysconf(_SC_CLK_TCK));
    const double armed_span = 0.3;
    const double idle_before = idle_seconds(set, spinners);
    const auto armed_start = std::chrono::steady_clock::now();
    while (seconds_since(armed_start) < armed_span) {
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

    // The library's figures for their CPU time (spinning, and work taken) against the kernel's: /proc
    // gives user and system time in whole clock ticks (10 ms), each rounded down, so it may lag by
    // up to two ticks per thread, never lead.
    tasks = idle_policy_thread_cpu_seconds();
    double proc_seconds = 0;
    for (double t : tasks) proc_seconds += t;
    const double lib_seconds = double(vimdense_cpu_keep_awake_cpu_us() + vimdense_cpu_keep_awake_work_us()) * 1e-6;
    std::printf("  spinner CPU: library %.4f s, /proc %.4f s\n", lib_seconds, proc_seconds);
    chk.le("/proc's spinner CPU time - the library's (s)", proc_seconds - lib_seconds, 0.002);
    chk.le("the library's spinner CPU time - /proc's (s)", lib_seconds - proc_seconds, 2 * tick * spinners + 0.002);

    // A share held by a spinner finishes elsewhere when another thread takes the spinner's CPU:
    // ≈ 2 · 16 ms of work here, against a hog of up to 4 s that stops when the scan is done (at
    // SCHED_IDLE, stuck on its CPU, the share would get ≈ 0.3% of it and end with the hog). The limit
    // is half the hog, not a duration the scan should take: a machine busy enough to slow the scan
    // tenfold (a CI run beside two builds took 1.7 s against a 1 s hog) still passes, a stuck share never.
    if (spinners > 1 && takes_work) {
        const Problem big = random_problem(1, 32, 1 << 18, 16, false, true, false, true, 7);
        // Whether the spinner took the share depends on timing (it must see the job within a few µs);
        // a few tries make sure the case is exercised.
        bool exercised = false;
        for (int attempt = 0; attempt < 8 && !exercised; ++attempt) {
            int64_t spinner_shares = 0;
            const double hog = 4.0;
            const double took = scan_with_hogged_spinner(set, big, hog, &spinner_shares);
            std::printf("  scan with the spinner's CPU taken: %.3f s (%lld share(s) run by a spinner)\n", took,
                        (long long)spinner_shares);
            if (spinner_shares == 0) continue;
            exercised = true;
            chk.le("scan with the spinner's CPU taken by another thread (s)", took, hog / 2);
        }
        if (!exercised) std::printf("  (no spinner took a share in 8 tries: the machine is busy; not checked)\n");
    }

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

    if (geteuid() == 0) {
        std::fflush(stdout);
        const pid_t child = fork();
        if (child == 0) {
            execl("/proc/self/exe", argv[0], "--unprivileged", static_cast<char*>(nullptr));
            _exit(127);
        }
        int status = 0;
        waitpid(child, &status, 0);
        const bool passed = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        chk.expect(passed, "the unprivileged run passed", passed, 1);
    } else {
        std::printf("  (not root: the run above was the unprivileged one)\n");
    }

    std::printf("%s: %d failure(s)\n", chk.failures ? "FAILED" : "PASSED", chk.failures);
    return chk.failures ? 1 : 0;
}
