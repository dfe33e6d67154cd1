#include "elf_file.h"

#include <elf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace vimdense {

namespace {
[[noreturn]] void fail(const std::string& path, const std::string& what) {
    throw std::runtime_error(path + ": " + what);
}
}  // namespace

template <typename T>
T ElfFile::read(uint64_t offset) const {
    if (offset + sizeof(T) > bytes_.size() || offset + sizeof(T) < offset)
        fail(path_, "truncated: a table points past the end of the file (offset " + std::to_string(offset) + ")");
    T value;
    std::memcpy(&value, bytes_.data() + offset, sizeof(T));
    return value;
}

ElfFile::ElfFile(std::string path) : path_(std::move(path)) {
    std::ifstream in(path_, std::ios::binary);
    if (!in) fail(path_, "cannot open for reading");
    bytes_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (bytes_.size() < sizeof(Elf64_Ehdr) || std::memcmp(bytes_.data(), ELFMAG, SELFMAG) != 0)
        fail(path_, "not an ELF file");
    auto eh = read<Elf64_Ehdr>(0);
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB)
        fail(path_, "expected a 64-bit little-endian ELF file");
    if (eh.e_shentsize != sizeof(Elf64_Shdr)) fail(path_, "unexpected section header size");
    for (uint16_t i = 0; i < eh.e_shnum; ++i) {
        auto sh = read<Elf64_Shdr>(eh.e_shoff + uint64_t(i) * sizeof(Elf64_Shdr));
        sections_.push_back({sh.sh_type, sh.sh_offset, sh.sh_size, sh.sh_entsize, sh.sh_link});
    }
}

const ElfFile::Section* ElfFile::find_section(uint32_t type) const {
    for (const auto& s : sections_)
        if (s.type == type) return &s;
    return nullptr;
}

std::string ElfFile::string_at(const Section& strtab, uint64_t offset) const {
    if (offset >= strtab.size) fail(path_, "string offset outside its string table");
    const char* begin = reinterpret_cast<const char*>(bytes_.data() + strtab.offset + offset);
    size_t max = strtab.size - offset;
    return std::string(begin, strnlen(begin, max));
}

std::vector<std::string> ElfFile::needed() const {
    std::vector<std::string> result;
    const Section* dyn = find_section(SHT_DYNAMIC);
    if (!dyn) return result;
    if (dyn->link >= sections_.size()) fail(path_, ".dynamic links to a missing string table");
    const Section& strtab = sections_[dyn->link];
    for (uint64_t off = dyn->offset; off + sizeof(Elf64_Dyn) <= dyn->offset + dyn->size; off += sizeof(Elf64_Dyn)) {
        auto d = read<Elf64_Dyn>(off);
        if (d.d_tag == DT_NULL) break;
        if (d.d_tag == DT_NEEDED) result.push_back(string_at(strtab, d.d_un.d_val));
    }
    return result;
}

std::vector<VersionRequirement> ElfFile::version_requirements() const {
    std::vector<VersionRequirement> result;
    const Section* vr = find_section(SHT_GNU_verneed);
    if (!vr) return result;
    if (vr->link >= sections_.size()) fail(path_, ".gnu.version_r links to a missing string table");
    const Section& strtab = sections_[vr->link];
    uint64_t need_off = vr->offset;
    for (int guard = 0; guard < 4096; ++guard) {
        auto vn = read<Elf64_Verneed>(need_off);
        std::string lib = string_at(strtab, vn.vn_file);
        uint64_t aux_off = need_off + vn.vn_aux;
        for (uint16_t j = 0; j < vn.vn_cnt; ++j) {
            auto va = read<Elf64_Vernaux>(aux_off);
            result.push_back({lib, string_at(strtab, va.vna_name), va.vna_flags, va.vna_other,
                              aux_off + offsetof(Elf64_Vernaux, vna_flags)});
            if (va.vna_next == 0) break;
            aux_off += va.vna_next;
        }
        if (vn.vn_next == 0) return result;
        need_off += vn.vn_next;
    }
    fail(path_, ".gnu.version_r has a cycle");
}

std::optional<uint16_t> ElfFile::symbol_version_index(const std::string& symbol) const {
    const Section* dynsym = find_section(SHT_DYNSYM);
    const Section* versym = find_section(SHT_GNU_versym);
    if (!dynsym || !versym) return std::nullopt;
    if (dynsym->link >= sections_.size()) fail(path_, ".dynsym links to a missing string table");
    const Section& strtab = sections_[dynsym->link];
    uint64_t count = dynsym->size / sizeof(Elf64_Sym);
    for (uint64_t i = 0; i < count; ++i) {
        auto sym = read<Elf64_Sym>(dynsym->offset + i * sizeof(Elf64_Sym));
        if (string_at(strtab, sym.st_name) == symbol)
            return static_cast<uint16_t>(read<uint16_t>(versym->offset + i * 2) & 0x7fff);
    }
    return std::nullopt;
}

void ElfFile::set_requirement_flags(const VersionRequirement& req, uint16_t flags) {
    if (req.flags_offset + 2 > bytes_.size()) fail(path_, "version requirement outside the file");
    std::memcpy(bytes_.data() + req.flags_offset, &flags, sizeof(flags));
}

void ElfFile::save() const {
    struct stat st {};
    if (stat(path_.c_str(), &st) != 0) fail(path_, "cannot stat");
    std::string tmp = path_ + ".tmp." + std::to_string(getpid());
    FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) fail(tmp, "cannot open for writing");
    bool ok = std::fwrite(bytes_.data(), 1, bytes_.size(), f) == bytes_.size();
    ok = ok && std::fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (std::fclose(f) == 0) && ok;
    if (!ok || chmod(tmp.c_str(), st.st_mode & 07777) != 0 || std::rename(tmp.c_str(), path_.c_str()) != 0) {
        std::remove(tmp.c_str());
        fail(path_, "could not write the patched file");
    }
}

}  // namespace vimdense
