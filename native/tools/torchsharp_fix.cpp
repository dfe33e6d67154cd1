// vimdense-torchsharp-fix: makes TorchSharp 0.107's libLibTorchSharp.so load where the system
// libstdc++ predates GCC 13 (no GLIBCXX_3.4.32, e.g. Debian 12 / Ubuntu 22.04).
//
// The library requires GLIBCXX_3.4.32 for a single symbol, std::ios_base_library_init(), that it
// never calls. glibc's loader checks every version requirement whether or not a symbol uses it, so:
//   1. the requirement is marked VER_FLG_WEAK (a missing weak version is not fatal),
//   2. the symbol's version is cleared (patchelf), and
//   3. our compat library, which defines the symbol as a no-op, is added as a dependency (patchelf),
// so that eager binding (LD_BIND_NOW) finds a definition too. Every step checks before it writes,
// so running the tool again changes nothing. Where the system already has the version, the tool
// does nothing unless --force is given (used by the tests).
//
//   vimdense-torchsharp-fix status LIB
//   vimdense-torchsharp-fix apply  LIB [--force] [--compat NAME]
#include "elf_file.h"

#include <dlfcn.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace {

constexpr const char* kSymbol = "_ZSt21ios_base_library_initv";
constexpr const char* kVersion = "GLIBCXX_3.4.32";
constexpr const char* kDefaultCompat = "libvimdense_glibcxx_compat.so";
constexpr uint16_t kVerFlagWeak = 0x2;  // VER_FLG_WEAK

bool system_libstdcxx_has_version() {
    // This program links the system libstdc++, so asking the loader answers for the whole system.
    return dlvsym(RTLD_DEFAULT, kSymbol, kVersion) != nullptr;
}

struct Status {
    bool needed_compat = false;
    bool symbol_present = false;
    bool symbol_versioned = false;
    bool requirement_present = false;
    bool requirement_weak = false;
};

Status inspect(const std::string& path, const std::string& compat) {
    vimdense::ElfFile elf(path);
    Status s;
    for (const auto& n : elf.needed())
        if (n == compat) s.needed_compat = true;
    if (auto idx = elf.symbol_version_index(kSymbol)) {
        s.symbol_present = true;
        s.symbol_versioned = *idx >= 2;
    }
    for (const auto& r : elf.version_requirements())
        if (r.version == kVersion) {
            s.requirement_present = true;
            s.requirement_weak = (r.flags & kVerFlagWeak) != 0;
        }
    return s;
}

void run_patchelf(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    std::string prog = "patchelf";
    argv.push_back(prog.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid;
    if (posix_spawnp(&pid, "patchelf", nullptr, nullptr, argv.data(), environ) != 0)
        throw std::runtime_error("patchelf is not installed (apt-get install patchelf); it is needed to fix libLibTorchSharp.so");
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::string cmd = "patchelf";
        for (const auto& a : args) cmd += " " + a;
        throw std::runtime_error("command failed: " + cmd);
    }
}

void print_status(const std::string& path, const Status& s, const std::string& compat) {
    std::cout << "file=" << path << "\n"
              << "system_has_" << kVersion << "=" << (system_libstdcxx_has_version() ? "yes" : "no") << "\n"
              << "needs_" << compat << "=" << (s.needed_compat ? "yes" : "no") << "\n"
              << "symbol_versioned=" << (s.symbol_present ? (s.symbol_versioned ? "yes" : "no") : "absent") << "\n"
              << "requirement_weak=" << (s.requirement_present ? (s.requirement_weak ? "yes" : "no") : "absent") << "\n";
}

int apply(const std::string& path, const std::string& compat, bool force) {
    if (!force && system_libstdcxx_has_version()) {
        std::cout << "vimdense-torchsharp-fix: system libstdc++ provides " << kVersion << "; " << path << " left as is\n";
        return 0;
    }
    Status s = inspect(path, compat);
    bool add_needed = !s.needed_compat;
    bool clear_version = s.symbol_present && s.symbol_versioned;
    bool weaken = s.requirement_present && !s.requirement_weak;
    if (!add_needed && !clear_version && !weaken) {
        std::cout << "vimdense-torchsharp-fix: " << path << " already fixed\n";
        return 0;
    }
    namespace fs = std::filesystem;
    fs::path lib(path);
    if (!fs::exists(lib.parent_path() / compat))
        throw std::runtime_error(path + ": the compat library " + compat + " must sit beside it (RUNPATH $ORIGIN) before patching");

    // Work on a copy and rename it into place, so an interrupted run never leaves a half-patched file.
    std::string tmp = path + ".fixing." + std::to_string(getpid());
    fs::copy_file(lib, tmp, fs::copy_options::overwrite_existing);
    try {
        if (add_needed) run_patchelf({"--add-needed", compat, tmp});
        if (clear_version) run_patchelf({"--clear-symbol-version", kSymbol, tmp});
        vimdense::ElfFile elf(tmp);
        for (const auto& r : elf.version_requirements())
            if (r.version == kVersion && !(r.flags & kVerFlagWeak))
                elf.set_requirement_flags(r, static_cast<uint16_t>(r.flags | kVerFlagWeak));
        elf.save();
        fs::rename(tmp, lib);
    } catch (...) {
        std::error_code ec;
        fs::remove(tmp, ec);
        throw;
    }
    std::cout << "vimdense-torchsharp-fix: patched " << path << " (" << (add_needed ? "added " + compat + "; " : "")
              << (clear_version ? "cleared symbol version; " : "") << (weaken ? "weakened " + std::string(kVersion) : "")
              << ")\n";
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.size() < 2 || (args[0] != "status" && args[0] != "apply")) {
        std::cerr << "usage: vimdense-torchsharp-fix status|apply LIB [--force] [--compat NAME]\n";
        return 2;
    }
    std::string compat = kDefaultCompat;
    bool force = false;
    for (size_t i = 2; i < args.size(); ++i) {
        if (args[i] == "--force") force = true;
        else if (args[i] == "--compat" && i + 1 < args.size()) compat = args[++i];
        else {
            std::cerr << "vimdense-torchsharp-fix: unknown argument '" << args[i] << "'\n";
            return 2;
        }
    }
    try {
        if (args[0] == "status") {
            print_status(args[1], inspect(args[1], compat), compat);
            return 0;
        }
        return apply(args[1], compat, force);
    } catch (const std::exception& e) {
        std::cerr << "vimdense-torchsharp-fix: error: " << e.what() << "\n";
        return 1;
    }
}
