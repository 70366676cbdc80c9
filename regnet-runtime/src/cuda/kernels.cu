// The CUDA backend's kernels, fp32, activations NHWC (as on the CPU), BatchNorm folded.
//
// Every shape is a template argument: the runtime (cuda/source.rs) writes one `extern "C"`
// wrapper per layer shape of a network, so loop bounds are constants, edge checks that cannot
// fire compile away, and each layer's kernel knows its sizes. Only the batch is a run-time value.
// No header is included: NVRTC compiles this alone, without a CUDA toolkit.

#define THREADS 256

// ReLU as PyTorch computes it: NaN stays NaN (fmaxf returns the operand that is not NaN, which
// would turn a NaN input or weight into finite logits).
__device__ __forceinline__ float relu(float x) { return x < 0.0f ? 0.0f : x; }

// A grid-stride loop over `total` elements: the grid is sized for the batch at hand, but a
// capped grid stays correct.
#define FOR_EACH_ELEMENT(i, total)                                                          \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (total);       \
         i += (long long)gridDim.x * blockDim.x)

// Element i of an NHWC batch of H×H maps of C channels: its image, row, column and channel.
struct Nhwc {
    long long n;
    int y, x, c;
};

template <int C, int H>
__device__ __forceinline__ Nhwc nhwc(long long i) {
    const long long pixel = i / C;
    return {pixel / (H * H), (int)((pixel / H) % H), (int)(pixel % H), (int)(i % C)};
}

// The stem: 3×3, stride 2, zero padding 1, from the caller's NCHW RGB images to C channels NHWC,
// bias and ReLU. Weights [ci][ky][kx][C] (consecutive threads read consecutive channels).
template <int C, int H_IN, int H_OUT>
__device__ void stem(const float* __restrict__ input, const float* __restrict__ weight,
                     const float* __restrict__ bias, float* __restrict__ output, int batch) {
    __shared__ float w[27 * C];
    for (int i = threadIdx.x; i < 27 * C; i += blockDim.x) w[i] = weight[i];
    __syncthreads();
    const long long total = (long long)batch * H_OUT * H_OUT * C;
    FOR_EACH_ELEMENT(i, total) {
        const auto [n, oy, ox, c] = nhwc<C, H_OUT>(i);
        float acc = bias[c];
#pragma unroll
        for (int ci = 0; ci < 3; ++ci) {
            const float* plane = input + (n * 3 + ci) * H_IN * H_IN;
#pragma unroll
            for (int ky = 0; ky < 3; ++ky) {
                const int iy = 2 * oy - 1 + ky;
                if (iy < 0 || iy >= H_IN) continue;
#pragma unroll
                for (int kx = 0; kx < 3; ++kx) {
                    const int ix = 2 * ox - 1 + kx;
                    if (ix < 0 || ix >= H_IN) continue;
                    acc = fmaf(plane[iy * H_IN + ix], w[((ci * 3 + ky) * 3 + kx) * C + c], acc);
                }
            }
        }
        output[i] = relu(acc);
    }
}

// The grouped 3×3 convolution (groups of GW channels), stride STRIDE, zero padding 1, bias and
// ReLU, NHWC to NHWC. Weights [ci][ky][kx][C] (PyTorch's [C][ci][ky][kx] transposed): a warp's
// consecutive output channels read consecutive weights, and their group's inputs as broadcasts.
template <int C, int GW, int H_IN, int H_OUT, int STRIDE>
__device__ void grouped(const float* __restrict__ input, const float* __restrict__ weight,
                        const float* __restrict__ bias, float* __restrict__ output, int batch) {
    const long long total = (long long)batch * H_OUT * H_OUT * C;
    FOR_EACH_ELEMENT(i, total) {
        const auto [n, oy, ox, c] = nhwc<C, H_OUT>(i);
        const int first = c - c % GW;
        float acc = bias[c];
#pragma unroll
        for (int ky = 0; ky < 3; ++ky) {
            const int iy = oy * STRIDE - 1 + ky;
            if (iy < 0 || iy >= H_IN) continue;
#pragma unroll
            for (int kx = 0; kx < 3; ++kx) {
                const int ix = ox * STRIDE - 1 + kx;
                if (ix < 0 || ix >= H_IN) continue;
                const float* x = input + ((n * H_IN + iy) * H_IN + ix) * C + first;
                const float* w = weight + (ky * 3 + kx) * C + c;
#pragma unroll 4
                for (int ci = 0; ci < GW; ++ci) acc = fmaf(x[ci], w[ci * 9 * C], acc);
            }
        }
        output[i] = relu(acc);
    }
}

// Per image and channel, the mean over HW pixels (squeeze-excitation's squeeze, the head's
// pool): [batch][HW][C] → [batch][C].
template <int C, int HW>
__device__ void pool(const float* __restrict__ input, float* __restrict__ pooled, int batch) {
    const long long total = (long long)batch * C;
    FOR_EACH_ELEMENT(i, total) {
        const int c = (int)(i % C);
        const long long n = i / C;
        const float* x = input + n * HW * C + c;
        float sum = 0.0f;
        for (int p = 0; p < HW; ++p) sum += x[p * C];
        pooled[i] = sum * (1.0f / HW);
    }
}

// Squeeze-excitation's two small layers for one image per block: hidden = ReLU(W1·mean + b1)
// (W1 [S][C], one warp per hidden unit), gate = sigmoid(W2ᵀ·hidden + b2) (W2 stored [S][C], one
// thread per channel). The gate scales the next 1×1 convolution's input (see pointwise).
template <int C, int S>
__device__ void excite(const float* __restrict__ mean, const float* __restrict__ w1,
                       const float* __restrict__ b1, const float* __restrict__ w2,
                       const float* __restrict__ b2, float* __restrict__ gate) {
    __shared__ float hidden[S];
    const float* m = mean + (long long)blockIdx.x * C;
    const int lane = threadIdx.x % 32;
    for (int j = threadIdx.x / 32; j < S; j += blockDim.x / 32) {
        float sum = 0.0f;
        for (int c = lane; c < C; c += 32) sum = fmaf(w1[j * C + c], m[c], sum);
#pragma unroll
        for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_down_sync(0xffffffffu, sum, offset);
        if (lane == 0) hidden[j] = relu(sum + b1[j]);
    }
    __syncthreads();
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float sum = b2[c];
        for (int j = 0; j < S; ++j) sum = fmaf(w2[j * C + c], hidden[j], sum);
        gate[(long long)blockIdx.x * C + c] = 1.0f / (1.0f + expf(-sum));
    }
}

// NHWC → NCHW, for the stem's and the stages' outputs kept as features.
template <int C, int HW>
__device__ void to_nchw(const float* __restrict__ input, float* __restrict__ output, int batch) {
    const long long total = (long long)batch * C * HW;
    FOR_EACH_ELEMENT(i, total) {
        const int p = (int)(i % HW);
        const int c = (int)((i / HW) % C);
        const long long n = i / ((long long)HW * C);
        output[i] = input[(n * HW + p) * C + c];
    }
}

// The epilogue and input scaling of a 1×1 convolution: run-time flags (uniform branches), so
// one instance per shape serves every layer of that shape.
#define GATE 1
#define RESIDUAL 2
#define RELU 4

// The 1×1 convolution as a tiled GEMM: out[m][n] = act(Σ_k a(m,k)·w[k][n] + bias[n] (+ res[m][n])).
// Row m is output pixel (img, oy, ox) of an out_size² map and reads input pixel
// (img, oy·stride, ox·stride) of the in_size² input (the strided shortcut projection). With
// GATE, input channel k of image img is scaled by gate[img][k] (squeeze-excitation applied by
// its consumer). The head's classifier is the case in_size = out_size = 1.
//
// K and N are template arguments (the reduction's trip count and the output width); the
// spatial sizes only place rows, once per block, so they are run-time arguments and one
// instance serves every resolution (this keeps the instances of the whole spec zoo few enough
// to compile in CI).
//
// A block computes BM×BN outputs (BM = 16·TM, BN = 16·TN) with 256 threads; tiles of A and W
// pass through shared memory BK input channels at a time. TF32 selects tensor cores
// (mma.m16n8k8 with TF32 inputs, fp32 accumulation) for BM = 128, BN = 64.
template <int K, int N, int TM, int TN, bool TF32>
struct Pointwise {
    static constexpr int BM = 16 * TM;
    static constexpr int BN = 16 * TN;
    static constexpr int BK = 16;

    // Per row of the block's tile: the offset of its input pixel (-1 past the last row) and
    // its image.
    struct RowTable {
        long long offset[BM];
        int image[BM];
    };

    static __device__ __forceinline__ void place(RowTable& table, long long m0, long long rows,
                                                 int in_size, int out_size, int stride) {
        const int pixels = out_size * out_size;
        for (int r = threadIdx.x; r < BM; r += THREADS) {
            const long long m = m0 + r;
            const long long img = m / pixels;
            const int p = (int)(m % pixels);
            const int oy = p / out_size, ox = p % out_size;
            table.offset[r] =
                m < rows ? ((img * in_size + oy * stride) * in_size + ox * stride) * K : -1;
            table.image[r] = (int)img;
        }
    }

    // Loads the A tile (transposed to [k][m], so the inner loop reads rows as vectors) and the W
    // tile ([k][n]) of input channels k0..k0+BK, zero past the edges.
    static __device__ __forceinline__ void load(const float* __restrict__ input,
                                                const float* __restrict__ gate,
                                                const float* __restrict__ weight,
                                                const RowTable& table, int n0, int k0, int flags,
                                                float (*a)[BM + 4], float (*w)[BN + 8]) {
        for (int e = threadIdx.x; e < BM * BK; e += THREADS) {
            const int r = e / BK, k = e % BK;
            const long long offset = table.offset[r];
            float v = 0.0f;
            if (offset >= 0 && k0 + k < K) {
                v = input[offset + k0 + k];
                if (flags & GATE) v *= gate[(long long)table.image[r] * K + k0 + k];
            }
            a[k][r] = v;
        }
        for (int e = threadIdx.x; e < BK * BN; e += THREADS) {
            const int k = e / BN, c = e % BN;
            w[k][c] = (k0 + k < K && n0 + c < N) ? weight[(long long)(k0 + k) * N + n0 + c] : 0.0f;
        }
    }

    static __device__ __forceinline__ void finish(const float* __restrict__ bias,
                                                  const float* __restrict__ residual,
                                                  float* __restrict__ output, long long m, int n,
                                                  long long rows, int flags, float v) {
        if (m >= rows || n >= N) return;
        v += bias[n];
        if (flags & RESIDUAL) v += residual[m * N + n];
        if (flags & RELU) v = relu(v);
        output[m * N + n] = v;
    }

    static __device__ void run(const float* __restrict__ input, const float* __restrict__ gate,
                               const float* __restrict__ weight, const float* __restrict__ bias,
                               const float* __restrict__ residual, float* __restrict__ output,
                               int batch, int flags, int in_size, int out_size, int stride) {
        // Padding spreads the rows of a tile over the banks: W's fragment reads are conflict-free,
        // A's at most two-way (as are its transposed stores).
        __shared__ __align__(16) float a[BK][BM + 4];
        __shared__ __align__(16) float w[BK][BN + 8];
        __shared__ RowTable table;
        const long long rows = (long long)batch * out_size * out_size;
        // Row tiles on x (the batch can make millions), column tiles on y.
        const long long m0 = (long long)blockIdx.x * BM;
        const int n0 = blockIdx.y * BN;
        place(table, m0, rows, in_size, out_size, stride);
        __syncthreads();
        if constexpr (TF32) {
            run_tf32(input, gate, weight, bias, residual, output, rows, flags, table, m0, n0, a, w);
            return;
        }
        const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
        float acc[TM][TN];
#pragma unroll
        for (int i = 0; i < TM; ++i)
#pragma unroll
            for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;
        for (int k0 = 0; k0 < K; k0 += BK) {
            load(input, gate, weight, table, n0, k0, flags, a, w);
            __syncthreads();
#pragma unroll
            for (int k = 0; k < BK; ++k) {
                float av[TM], wv[TN];
#pragma unroll
                for (int i = 0; i < TM; ++i) av[i] = a[k][ty * TM + i];
#pragma unroll
                for (int j = 0; j < TN; ++j) wv[j] = w[k][tx * TN + j];
#pragma unroll
                for (int i = 0; i < TM; ++i)
#pragma unroll
                    for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(av[i], wv[j], acc[i][j]);
            }
            __syncthreads();
        }
#pragma unroll
        for (int i = 0; i < TM; ++i)
#pragma unroll
            for (int j = 0; j < TN; ++j)
                finish(bias, residual, output, m0 + ty * TM + i, n0 + tx * TN + j, rows, flags,
                       acc[i][j]);
    }

    static __device__ __forceinline__ unsigned tf32(float x) {
        unsigned r;
        asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
        return r;
    }

    // Eight warps as 4 (rows) × 2 (columns), each 32×32 outputs: 2×4 tiles of m16n8k8.
    // Fragment layouts as in the PTX ISA for mma.m16n8k8 with .tf32: g = lane / 4, t = lane % 4;
    // A: (g, t), (g + 8, t), (g, t + 4), (g + 8, t + 4); B: (t, g), (t + 4, g);
    // C: (g, 2t), (g, 2t + 1), (g + 8, 2t), (g + 8, 2t + 1).
    static __device__ void run_tf32(const float* __restrict__ input, const float* __restrict__ gate,
                                    const float* __restrict__ weight, const float* __restrict__ bias,
                                    const float* __restrict__ residual, float* __restrict__ output,
                                    long long rows, int flags, const RowTable& table,
                                    long long m0, int n0, float (*a)[BM + 4],
                                    float (*w)[BN + 8]) {
        static_assert(BM == 128 && BN == 64, "tensor-core tiles are 128×64");
        const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
        const int g = lane / 4, t = lane % 4;
        const int wm = (warp / 2) * 32, wn = (warp % 2) * 32;
        float acc[2][4][4];
#pragma unroll
        for (int i = 0; i < 2; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j)
#pragma unroll
                for (int r = 0; r < 4; ++r) acc[i][j][r] = 0.0f;
        for (int k0 = 0; k0 < K; k0 += BK) {
            load(input, gate, weight, table, n0, k0, flags, a, w);
            __syncthreads();
#pragma unroll
            for (int k = 0; k < BK; k += 8) {
                unsigned af[2][4], bf[4][2];
#pragma unroll
                for (int i = 0; i < 2; ++i) {
                    const int m = wm + i * 16 + g;
                    af[i][0] = tf32(a[k + t][m]);
                    af[i][1] = tf32(a[k + t][m + 8]);
                    af[i][2] = tf32(a[k + t + 4][m]);
                    af[i][3] = tf32(a[k + t + 4][m + 8]);
                }
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    const int n = wn + j * 8 + g;
                    bf[j][0] = tf32(w[k + t][n]);
                    bf[j][1] = tf32(w[k + t + 4][n]);
                }
#pragma unroll
                for (int i = 0; i < 2; ++i)
#pragma unroll
                    for (int j = 0; j < 4; ++j)
                        asm volatile(
                            "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
                            "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                            : "+f"(acc[i][j][0]), "+f"(acc[i][j][1]), "+f"(acc[i][j][2]),
                              "+f"(acc[i][j][3])
                            : "r"(af[i][0]), "r"(af[i][1]), "r"(af[i][2]), "r"(af[i][3]),
                              "r"(bf[j][0]), "r"(bf[j][1]));
            }
            __syncthreads();
        }
#pragma unroll
        for (int i = 0; i < 2; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j)
#pragma unroll
                for (int r = 0; r < 4; ++r) {
                    const long long m = m0 + wm + i * 16 + g + (r / 2) * 8;
                    const int n = n0 + wn + j * 8 + 2 * t + r % 2;
                    finish(bias, residual, output, m, n, rows, flags, acc[i][j][r]);
                }
    }
};
