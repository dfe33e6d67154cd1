// GCC 13's <iostream> makes every translation unit reference std::ios_base_library_init() (symbol
// _ZSt21ios_base_library_initv, version GLIBCXX_3.4.32) so that the linker pulls in the stream
// initialiser; nothing ever calls it. TorchSharp 0.107's libLibTorchSharp.so was built that way.
// On systems whose libstdc++ predates GCC 13, the fix tool clears that symbol's version and adds
// this library as a dependency, so even an eager (LD_BIND_NOW) resolution finds a definition.
namespace std {
__attribute__((visibility("default"))) void ios_base_library_init() {}
}  // namespace std
