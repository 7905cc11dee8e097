// Device helpers shared by the render kernels: the inside test, per-ray clipping and the trilinear
// sampler of the contract in voxcast/render/engine/rays.py.
//
// Compiled by NVRTC at run time (cupy.RawModule) and by nvcc in the test suite, so no standard
// headers: only what both provide (built-in math).
#pragma once

#ifndef VX_INSIDE_TOL
#define VX_INSIDE_TOL 1e-3  // the host passes rays.INSIDE_TOL with -D; this default keeps nvcc happy
#endif
#ifndef VX_ERT_ALPHA
#define VX_ERT_ALPHA 0.99
#endif
#ifndef VX_BLOCK_SHIFT
#define VX_BLOCK_SHIFT 3  // the host passes its own with -D; blocks of 2**shift voxels per axis
#endif

#define VX_NAN __int_as_float(0x7fffffff)

// The view's ray grid in index space (slice, row, column), doubles like the host's, handed over as
// 12 doubles: origin, du, dv, dk (plain arrays rather than a struct: no layout to keep in step).
#define VX_GRID_DOUBLES 12

// Position of the first sample of ray (v, u): origin + v*dv + u*du.
__device__ __forceinline__ void vx_ray_start(const double* __restrict__ grid, int v, int u, double c[3],
                                             double d[3]) {
    for (int a = 0; a < 3; ++a) {
        c[a] = grid[a] + v * grid[6 + a] + u * grid[3 + a];
        d[a] = grid[9 + a];
    }
}

__device__ __forceinline__ bool vx_inside(double z, double y, double x, int nz, int ny, int nx) {
    const double t = VX_INSIDE_TOL;
    return z >= -t && z <= nz - 1 + t && y >= -t && y <= ny - 1 + t && x >= -t && x <= nx - 1 + t;
}

__device__ __forceinline__ void vx_clip_axis(double c, double d, int n, double& tmin, double& tmax) {
    const double lo = -VX_INSIDE_TOL, hi = n - 1 + VX_INSIDE_TOL;
    if (d == 0.0) {
        if (c < lo || c > hi) { tmin = 1.0; tmax = 0.0; }
        return;
    }
    double t1 = (lo - c) / d, t2 = (hi - c) / d;
    if (t1 > t2) { double s = t1; t1 = t2; t2 = s; }
    tmin = fmax(tmin, t1);
    tmax = fmin(tmax, t2);
}

// Samples [k0, k1] worth visiting (empty when k0 > k1), one sample of slack at each end so that
// rounding never drops a sample the inside test keeps; every visited sample is still tested.
__device__ __forceinline__ void vx_ray_range(const double c[3], const double d[3], int nz, int ny, int nx,
                                             int nsamples, int& k0, int& k1) {
    double tmin = 0.0, tmax = nsamples - 1.0;
    vx_clip_axis(c[0], d[0], nz, tmin, tmax);
    vx_clip_axis(c[1], d[1], ny, tmin, tmax);
    vx_clip_axis(c[2], d[2], nx, tmin, tmax);
    if (tmin > tmax) { k0 = 0; k1 = -1; return; }
    k0 = max(0, (int)ceil(tmin) - 1);
    k1 = min(nsamples - 1, (int)floor(tmax) + 1);
}

__device__ __forceinline__ double vx_clamp(double p, int n) {
    return fmin(fmax(p, 0.0), (double)(n - 1));
}

// Contract's per-axis set-up: i0, i1 and the fraction f at position p on an axis of n voxels.
__device__ __forceinline__ void vx_axis(double p, int n, int& i0, int& i1, float& f) {
    if (n == 1) { i0 = 0; i1 = 0; f = 0.0f; return; }
    p = vx_clamp(p, n);
    i0 = min((int)p, n - 2);
    i1 = i0 + 1;
    f = (float)(p - i0);
}

// a + f (b - a) as (1 - f) a + f b in two roundings: exact at both ends, so a sample on a voxel centre
// (f = 0 or 1 on every axis, the last voxel of an axis included) returns the stored value itself,
// as the float64 reference does; the one-FMA form rounds b - a and misses b by an ulp at f = 1.
__device__ __forceinline__ float vx_lerp(float a, float b, float f) {
    return fmaf(f, b, fmaf(-f, a, a));
}

// Exact trilinear interpolation from global memory, in float (the "float sampler").
template <typename T>
__device__ __forceinline__ float vx_trilinear(const T* __restrict__ vol, int nz, int ny, int nx,
                                              double z, double y, double x) {
    int z0, z1, y0, y1, x0, x1;
    float fz, fy, fx;
    vx_axis(z, nz, z0, z1, fz);
    vx_axis(y, ny, y0, y1, fy);
    vx_axis(x, nx, x0, x1, fx);
    const long long sz = (long long)ny * nx;
    const T* a = vol + z0 * sz;
    const T* b = vol + z1 * sz;
    const float c000 = (float)__ldg(a + (long long)y0 * nx + x0), c001 = (float)__ldg(a + (long long)y0 * nx + x1);
    const float c010 = (float)__ldg(a + (long long)y1 * nx + x0), c011 = (float)__ldg(a + (long long)y1 * nx + x1);
    const float c100 = (float)__ldg(b + (long long)y0 * nx + x0), c101 = (float)__ldg(b + (long long)y0 * nx + x1);
    const float c110 = (float)__ldg(b + (long long)y1 * nx + x0), c111 = (float)__ldg(b + (long long)y1 * nx + x1);
    const float c00 = vx_lerp(c000, c001, fx), c01 = vx_lerp(c010, c011, fx);
    const float c10 = vx_lerp(c100, c101, fx), c11 = vx_lerp(c110, c111, fx);
    return vx_lerp(vx_lerp(c00, c01, fy), vx_lerp(c10, c11, fy), fz);
}
