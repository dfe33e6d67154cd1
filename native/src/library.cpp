#include "vimdense/native.h"

extern "C" int32_t vimdense_abi_version(void) { return VIMDENSE_ABI_VERSION; }

extern "C" int32_t vimdense_has_cuda(void) {
#ifdef VIMDENSE_WITH_CUDA
    return 1;
#else
    return 0;
#endif
}
