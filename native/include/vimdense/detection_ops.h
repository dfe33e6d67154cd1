// Detection kernels (RoIAlign, NMS): C ABI shared by the CPU and CUDA implementations, called from
// C# (Vim.Detection/Ops/DetectionNative.cs).
//
// RoIAlign (torchvision roi_align / Detectron2 ROIAlignV2 when aligned != 0):
//   input  (batch, channels, height, width), rois (num_rois, 5) rows (batch_index, x1, y1, x2, y2)
//   in input-image coordinates, output (num_rois, channels, pooled_h, pooled_w).
//   For each roi: start = x1 * spatial_scale - offset (offset 0.5 when aligned, else 0), likewise
//   end; without alignment the roi size is raised to at least 1. The roi is split into
//   pooled_h x pooled_w bins; each bin averages grid_h x grid_w bilinear samples at the sub-cell
//   centres, grid = sampling_ratio if > 0, else ceil(roi size / pooled size) (adaptive).
//   A sample with y < -1 or y > height (x likewise) contributes 0; otherwise coordinates below 0
//   are clamped to 0 and those at or past the last pixel read the last pixel. The average divides
//   by max(grid_h * grid_w, 1), so an empty grid gives 0. An roi whose batch index is outside
//   [0, batch) yields zeros (the C# wrapper rejects such rois before calling).
// The backward scatters grad_output along the same bilinear weights into grad_input, which it
// zero-fills first (no gradient for the rois).
//
// NMS: boxes (n, 4) xyxy, visited in the priority order `order` (n indices, highest score first;
//   null = the boxes are already in priority order). A box is kept unless an already kept box
//   overlaps it with IoU > iou_threshold; IoU = inter / (area_a + area_b - inter) with
//   area = (x2 - x1) * (y2 - y1). keep (host memory, room for n) receives the kept boxes' original
//   indices in priority order and *num_keep their count.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VIMDENSE_DET_OK 0
#define VIMDENSE_DET_ERR_NULL_POINTER (-1)   // a required pointer is null
#define VIMDENSE_DET_ERR_BAD_SHAPE (-2)      // a size is negative or out of range
#define VIMDENSE_DET_ERR_ALLOC (-3)          // memory could not be allocated
#define VIMDENSE_DET_ERR_NO_CUDA (-4)        // library built without CUDA kernels
#define VIMDENSE_DET_ERR_CUDA (-5)           // a CUDA runtime call or launch failed
#define VIMDENSE_DET_ERR_BAD_ARGUMENT (-6)   // e.g. a non-positive spatial scale, an order index out of range

// Human-readable message for an error code (static string).
const char* vimdense_det_error_string(int32_t code);

// --- RoIAlign, CPU (float32 and float64). Worker threads: as many as vimdense_scan_set_num_threads
// allows; results do not depend on the count (each output/grad element is summed by one thread). ---
int32_t vimdense_roi_align_fwd_cpu_f32(const float* input, const float* rois, int64_t batch, int64_t channels,
                                       int64_t height, int64_t width, int64_t num_rois, int64_t pooled_h,
                                       int64_t pooled_w, double spatial_scale, int32_t sampling_ratio,
                                       int32_t aligned, float* output);
int32_t vimdense_roi_align_fwd_cpu_f64(const double* input, const double* rois, int64_t batch, int64_t channels,
                                       int64_t height, int64_t width, int64_t num_rois, int64_t pooled_h,
                                       int64_t pooled_w, double spatial_scale, int32_t sampling_ratio,
                                       int32_t aligned, double* output);
int32_t vimdense_roi_align_bwd_cpu_f32(const float* grad_output, const float* rois, int64_t batch, int64_t channels,
                                       int64_t height, int64_t width, int64_t num_rois, int64_t pooled_h,
                                       int64_t pooled_w, double spatial_scale, int32_t sampling_ratio,
                                       int32_t aligned, float* grad_input);
int32_t vimdense_roi_align_bwd_cpu_f64(const double* grad_output, const double* rois, int64_t batch,
                                       int64_t channels, int64_t height, int64_t width, int64_t num_rois,
                                       int64_t pooled_h, int64_t pooled_w, double spatial_scale,
                                       int32_t sampling_ratio, int32_t aligned, double* grad_input);

// --- RoIAlign, CUDA (float32, device pointers, launched on `stream`, a cudaStream_t; null = the legacy
// default stream; asynchronous). The backward accumulates with atomics, so its sums may differ from
// the CPU's in the last bits. Both return VIMDENSE_DET_ERR_NO_CUDA without CUDA.
int32_t vimdense_roi_align_fwd_cuda_f32(const float* input, const float* rois, int64_t batch, int64_t channels,
                                        int64_t height, int64_t width, int64_t num_rois, int64_t pooled_h,
                                        int64_t pooled_w, double spatial_scale, int32_t sampling_ratio,
                                        int32_t aligned, float* output, void* stream);
int32_t vimdense_roi_align_bwd_cuda_f32(const float* grad_output, const float* rois, int64_t batch,
                                        int64_t channels, int64_t height, int64_t width, int64_t num_rois,
                                        int64_t pooled_h, int64_t pooled_w, double spatial_scale,
                                        int32_t sampling_ratio, int32_t aligned, float* grad_input, void* stream);

// --- NMS ---
// CPU: boxes, order host pointers.
int32_t vimdense_nms_cpu_f32(const float* boxes, const int64_t* order, int64_t n, double iou_threshold,
                             int64_t* keep, int64_t* num_keep);
// CUDA: boxes and order are device pointers; keep and num_keep host pointers. Computes the (n x ceil(n/64))
// suppression bitmask on the device (n * ceil(n/64) * 8 bytes of device memory) and reduces it on the
// host; synchronises `stream` before returning.
int32_t vimdense_nms_cuda_f32(const float* boxes, const int64_t* order, int64_t n, double iou_threshold,
                              int64_t* keep, int64_t* num_keep, void* stream);

#ifdef __cplusplus
}
#endif
