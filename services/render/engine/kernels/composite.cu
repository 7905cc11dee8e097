// Direct volume rendering of the contract (rays.py): front-to-back compositing of premultiplied
// colour, LUT lookup with linear interpolation, optional headlight gradient shading, early ray
// termination at VX_ERT_ALPHA. One thread per pixel. Values and the six gradient samples of
// shading come from the exact float sampler. Empty space is skipped twice, both exactly: a sample
// in a block of 2^VX_BLOCK_SHIFT voxels a side whose value range the LUT maps to alpha 0 (`occupied`,
// computed per request by the backend, apron included) is not sampled at all, and a sample whose
// LUT alpha is 0 adds nothing and gets no gradient.
#include "sampling.cuh"

// Lighting, as 16 doubles: the gradient matrix (9, row-major: index-space gradient -> world normal),
// the light (3, unit, world, towards the viewer), ambient, diffuse, specular, shininess.
#define VX_LIGHTING_DOUBLES 16

__device__ __forceinline__ void vx_lut(const float* __restrict__ table, int size, float lo, float scale,
                                       float x, float rgba[4]) {
    const float last = (float)(size - 1);
    const float t = fminf(fmaxf((x - lo) * scale, 0.0f), last);
    const int i = (int)t;
    const int j = min(i + 1, size - 1);
    const float f = t - i;
    for (int c = 0; c < 4; ++c) {
        const float a = __ldg(table + 4 * i + c), b = __ldg(table + 4 * j + c);
        rgba[c] = fmaf(f, b - a, a);
    }
}

// The block of the voxel a trilinear sample at p starts from (vx_axis's i0).
__device__ __forceinline__ int vx_block(double p, int n) {
    return min((int)vx_clamp(p, n), max(n - 2, 0)) >> VX_BLOCK_SHIFT;
}

template <typename T, bool SHADE>
__global__ void composite_rays(const T* __restrict__ vol, int nz, int ny, int nx, const double* __restrict__ grid, int width,
                               int height, int nsamples, const unsigned char* __restrict__ occupied,
                               const float* __restrict__ table, int size, float lo, float scale,
                               const double* __restrict__ lighting, float* __restrict__ out) {
    const int nby = ((ny - 1) >> VX_BLOCK_SHIFT) + 1, nbx = ((nx - 1) >> VX_BLOCK_SHIFT) + 1;
    const int u = blockIdx.x * blockDim.x + threadIdx.x;
    const int v = blockIdx.y * blockDim.y + threadIdx.y;
    if (u >= width || v >= height) return;
    double c[3], d[3];
    vx_ray_start(grid, v, u, c, d);
    int k0, k1;
    vx_ray_range(c, d, nz, ny, nx, nsamples, k0, k1);
    const double* m = lighting;
    const double* light = lighting + 9;
    const float ambient = (float)lighting[12], diffuse = (float)lighting[13];
    const float specular = (float)lighting[14], shininess = (float)lighting[15];
    // Accumulated in double like the reference: in float, the opacity after a few opaque samples
    // can round across VX_ERT_ALPHA (two samples of alpha 0.9f give 0.99f, >= 0.99, in float and
    // 0.98999999523, < 0.99, in double), and where a ray stops is part of the picture.
    double cr = 0.0, cg = 0.0, cb = 0.0, ca = 0.0;
    for (int k = k0; k <= k1; ++k) {
        const double z = c[0] + k * d[0], y = c[1] + k * d[1], x = c[2] + k * d[2];
        if (!vx_inside(z, y, x, nz, ny, nx)) continue;
        if (!__ldg(occupied + ((long long)vx_block(z, nz) * nby + vx_block(y, ny)) * nbx + vx_block(x, nx))) continue;
        float rgba[4];
        const float value = vx_trilinear(vol, nz, ny, nx, z, y, x);
        vx_lut(table, size, lo, scale, value, rgba);
        if (rgba[3] <= 0.0f) continue;
        float r = rgba[0], gg = rgba[1], b = rgba[2];
        if (SHADE) {
            // The sampler clamps p +- e_a to the volume, as the contract says (no inside test).
            const float gz = 0.5f * (vx_trilinear(vol, nz, ny, nx, z + 1.0, y, x) - vx_trilinear(vol, nz, ny, nx, z - 1.0, y, x));
            const float gy = 0.5f * (vx_trilinear(vol, nz, ny, nx, z, y + 1.0, x) - vx_trilinear(vol, nz, ny, nx, z, y - 1.0, x));
            const float gx = 0.5f * (vx_trilinear(vol, nz, ny, nx, z, y, x + 1.0) - vx_trilinear(vol, nz, ny, nx, z, y, x - 1.0));
            const double n0 = m[0] * gz + m[1] * gy + m[2] * gx;
            const double n1 = m[3] * gz + m[4] * gy + m[5] * gx;
            const double n2 = m[6] * gz + m[7] * gy + m[8] * gx;
            const double norm = sqrt(n0 * n0 + n1 * n1 + n2 * n2);
            if (norm < 1e-6) {
                const float mul = ambient + diffuse;
                r *= mul; gg *= mul; b *= mul;
            } else {
                const float facing = (float)(fabs(n0 * light[0] + n1 * light[1] + n2 * light[2]) / norm);
                const float mul = ambient + diffuse * facing;
                const float spec = specular * powf(facing, shininess);
                r = fminf(fmaf(r, mul, spec), 1.0f);
                gg = fminf(fmaf(gg, mul, spec), 1.0f);
                b = fminf(fmaf(b, mul, spec), 1.0f);
            }
        }
        const double w = (1.0 - ca) * rgba[3];
        cr += w * r;
        cg += w * gg;
        cb += w * b;
        ca += w;
        if (ca >= VX_ERT_ALPHA) break;
    }
    float4* o = reinterpret_cast<float4*>(out) + (long long)v * width + u;
    *o = make_float4((float)cr, (float)cg, (float)cb, (float)ca);
}

#define VX_COMPOSITE(T, SHADE)                                                                      \
    template __global__ void composite_rays<T, SHADE>(const T*, int, int, int, const double*, int, int, int, \
                                                      const unsigned char*, const float*, int, float, float,   \
                                                      const double*, float*);
VX_COMPOSITE(short, false)
VX_COMPOSITE(short, true)
VX_COMPOSITE(float, false)
VX_COMPOSITE(float, true)
