// Runs an entry point on the device that owns its buffers. C# passes raw pointers of tensors on any
// cuda:N, but the calling thread's current device is whatever the last CUDA call on it left (torch's
// device guards restore the previous device after each op, and this library's own static CUDA
// runtime has its own notion of it), so a kernel for cuda:1 could otherwise launch on device 0.
#pragma once
#include <cuda_runtime.h>

namespace vimdense_cuda {

class DeviceGuard {
public:
    // `p`: a device pointer of the call; a pointer the runtime does not know as device (or managed)
    // memory makes ok() false.
    explicit DeviceGuard(const void* p) {
        cudaPointerAttributes attr{};
        cudaError_t err = cudaPointerGetAttributes(&attr, p);
        if (err == cudaSuccess && attr.type != cudaMemoryTypeDevice && attr.type != cudaMemoryTypeManaged)
            err = cudaErrorInvalidValue;
        if (err == cudaSuccess) err = cudaGetDevice(&previous_);
        if (err == cudaSuccess && previous_ != attr.device) {
            err = cudaSetDevice(attr.device);
            switched_ = err == cudaSuccess;
        }
        ok_ = err == cudaSuccess;
        if (!ok_) cudaGetLastError();  // reported through ok(): keep it from the next launch check
    }
    ~DeviceGuard() {
        if (switched_) cudaSetDevice(previous_);
    }
    DeviceGuard(const DeviceGuard&) = delete;
    DeviceGuard& operator=(const DeviceGuard&) = delete;
    bool ok() const { return ok_; }

private:
    int previous_ = 0;
    bool switched_ = false;
    bool ok_ = false;
};

}  // namespace vimdense_cuda
