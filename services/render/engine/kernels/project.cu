// Projections of the contract (rays.py): the max, min or mean of a ray's inside samples, NaN for a
// ray with none; MPR is nsamples == 1. One thread per pixel. Values come from the exact float
// sampler (global memory): MPR and MIP values are diagnostic numbers.
#include "sampling.cuh"

#define VX_MAX 0
#define VX_MIN 1
#define VX_MEAN 2

template <typename T>
__global__ void project_rays(const T* __restrict__ vol, int nz, int ny, int nx, const double* __restrict__ grid, int width,
                             int height, int nsamples, int mode, float* __restrict__ out) {
    const int u = blockIdx.x * blockDim.x + threadIdx.x;
    const int v = blockIdx.y * blockDim.y + threadIdx.y;
    if (u >= width || v >= height) return;
    double c[3], d[3];
    vx_ray_start(grid, v, u, c, d);
    int k0, k1;
    vx_ray_range(c, d, nz, ny, nx, nsamples, k0, k1);
    float acc = mode == VX_MAX ? -__int_as_float(0x7f800000) : (mode == VX_MIN ? __int_as_float(0x7f800000) : 0.0f);
    double total = 0.0;  // the mean sums in double, like the host backends
    int count = 0;
    for (int k = k0; k <= k1; ++k) {
        const double z = c[0] + k * d[0], y = c[1] + k * d[1], x = c[2] + k * d[2];
        if (!vx_inside(z, y, x, nz, ny, nx)) continue;
        const float s = vx_trilinear(vol, nz, ny, nx, z, y, x);
        if (mode == VX_MAX) acc = fmaxf(acc, s);
        else if (mode == VX_MIN) acc = fminf(acc, s);
        else total += s;
        ++count;
    }
    float result = VX_NAN;
    if (count > 0) result = mode == VX_MEAN ? (float)(total / count) : acc;
    out[(long long)v * width + u] = result;
}

template __global__ void project_rays<short>(const short*, int, int, int, const double*, int, int, int, int, float*);
template __global__ void project_rays<float>(const float*, int, int, int, const double*, int, int, int, int, float*);
