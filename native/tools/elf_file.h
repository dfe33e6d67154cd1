// Minimal reader/editor for the dynamic-linking tables of an x86-64 (ELF64, little-endian) shared
// object: DT_NEEDED entries, symbol versions (.gnu.version) and version requirements
// (.gnu.version_r). Only what the TorchSharp fix needs; it never moves or resizes sections.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vimdense {

struct VersionRequirement {
    std::string library;   // e.g. libstdc++.so.6
    std::string version;   // e.g. GLIBCXX_3.4.32
    uint16_t flags;        // VER_FLG_WEAK = 0x2
    uint16_t index;        // vna_other: the index symbols use in .gnu.version
    size_t flags_offset;   // file offset of vna_flags
};

class ElfFile {
public:
    // Throws std::runtime_error naming the file and what was malformed.
    explicit ElfFile(std::string path);

    const std::string& path() const { return path_; }
    std::vector<std::string> needed() const;
    std::vector<VersionRequirement> version_requirements() const;
    // The .gnu.version index of a dynamic symbol (0 local, 1 global/unversioned, >=2 versioned),
    // or nullopt when the symbol is absent.
    std::optional<uint16_t> symbol_version_index(const std::string& symbol) const;

    void set_requirement_flags(const VersionRequirement& req, uint16_t flags);
    // Writes through a temporary file in the same folder and renames it over the original.
    void save() const;

private:
    struct Section { uint32_t type; uint64_t offset, size, entsize; uint32_t link; };
    const Section* find_section(uint32_t type) const;
    std::string string_at(const Section& strtab, uint64_t offset) const;
    template <typename T> T read(uint64_t offset) const;

    std::string path_;
    std::vector<uint8_t> bytes_;
    std::vector<Section> sections_;
};

}  // namespace vimdense
