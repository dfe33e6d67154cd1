// C ABI of libvimdense_native.so, called from C# (Vim.Core/Native/NativeMethods.cs).
// Conventions: every function returns 0 on success or a negative error code; pointers are to
// contiguous fp32 buffers unless stated; shapes are passed explicitly.
#pragma once
#include <stdint.h>
#include "vimdense/selective_scan.h"
#include "vimdense/detection_ops.h"
#include "vimdense/optimizer_ops.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VIMDENSE_ABI_VERSION 2

// The ABI version compiled into the library; C# refuses to run against a different one.
int32_t vimdense_abi_version(void);
// 1 when the library was built with CUDA kernels.
int32_t vimdense_has_cuda(void);

#ifdef __cplusplus
}
#endif
