// conv.cpp: 2-D convolution on the CPU: conv2d, its two gradients, and conv_transpose2d.
//
// Everything is im2col + one GEMM (engine/gemm.h) + a cheap copy:
//   im2col unrolls a chunk of m images (m,C,H,W) into col (K, m*L), K = C*kh*kw, L = Ho*Wo:
//   col[(c,ki,kj)][(n,oh,ow)] = x[n][c][oh*sh - ph + ki*dh][ow*sw - pw + kj*dw] (0 in the padding).
//   A masked convolution (g.taps < kh*kw) has only the first g.taps taps t = ki*kw + kj in
//   raster order: K = C*taps, col rows (c, t), and the dead taps cost nothing anywhere.
//   conv2d                 out (O, m*L)  = W (O,K) @ col (K, m*L), then reordered to (m,O,Ho,Wo)
//   conv2d_backward_weight gW (O,K)     += G (O, m*L) @ col^T      (G: gout reordered to (O, m*L))
//   conv2d_backward_input  gcol (K, m*L) = W^T (K,O) @ G, then col2im sums gcol back into (m,C,H,W)
//   conv_transpose2d       is conv2d_backward_input with x in the role of gout, plus the bias.
// With our GEMM, col is never written out: col[k][j] = P[tap[k] + pos[j]] for P the chunk's images
// in a zero-bordered copy, so the GEMM's packing reads its panels of col straight from P through
// the two offset tables (gemm_indexed_b), and G is read from gout the same way. That is the same
// values in the same panels, so the same bits as im2col; it saves writing and re-reading col,
// K*L values per image (9 per input value for a 3x3 kernel). GENVAE_CONV=im2col (or
// set_conv_lowering) keeps the buffers, as does a chunk too large for 32-bit offsets.
// The batch goes through in chunks of m images whose col buffer would fit a memory budget; the
// buffers are allocated once per call. The GEMMs run outside any parallel region and thread themselves;
// im2col, col2im and the reorders are split across OpenMP threads. Each element is written by
// exactly one thread in a fixed order, and the GEMM's results do not depend on the thread count
// or the batch (engine/gemm.h), so neither do the convolutions'.
#include <algorithm>
#include <climits>
#include <cstring>
#include <vector>

#include "engine/cpu/conv_kernels.h"
#include "engine/cpu/gemm_kernel.h"
#include "engine/cpu/isa_call.h"
#include "engine/cpu/loops.h"
#include "engine/gemm.h"
#include "engine/runtime.h"

namespace gv {

namespace {

// ---- geometry ----------------------------------------------------------------------------------
using Geom = ConvGeom;  // engine/backend.h: the image (C,H,W), kernel (kh,kw), positions (Ho,Wo)

// ---- the GEMM ---------------------------------------------------------------------------------
// C (M,N) = op(A) @ op(B) (+ C when accumulate); A is stored (M,K) or, transposed, (K,M); B alike.
template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const T* A, const T* B, T* C,
          bool accumulate) {
  gv::gemm<T>(trans_a, trans_b, M, N, K, T(1), A, trans_a ? M : K, B, trans_b ? K : N,
              T(accumulate ? 1 : 0), C, N);
}

// ---- the loops around the GEMMs -----------------------------------------------------------------
// f(begin, end) over [0, n) rows of `cost` elements each, split across the OpenMP threads.
template <class F>
void prep_loop(int64_t n, int64_t cost, F&& f) {
  cpu::parallel_for(n, cost, f);
}

// ---- im2col / col2im --------------------------------------------------------------------------
// The padded plane: one image channel copied into a zero-bordered (Hp, Wp) buffer that covers
// every input position any kernel tap reads, so that col row (ki, kj) is a plain gather
// col[l] = padded[ki*dh*Wp + kj*dw + tab[l]] with tab[l] = oh*sh*Wp + ow*sw: no bounds checks, and
// a loop the AVX-512 and AVX2 paths turn into vector gathers.
struct Padded {
  int64_t Hp, Wp;
};
Padded padded_geometry(const Geom& g) {
  const Conv2dParams& p = g.p;
  Padded pd;
  pd.Hp = std::max<int64_t>((g.Ho - 1) * p.stride_h + (g.kh - 1) * p.dil_h + 1, p.pad_h + g.H);
  pd.Wp = std::max<int64_t>((g.Wo - 1) * p.stride_w + (g.kw - 1) * p.dil_w + 1, p.pad_w + g.W);
  GV_CHECK(pd.Hp * pd.Wp < (int64_t(1) << 31), ShapeError, "conv2d: a padded plane of {}x{} is too large", pd.Hp,
           pd.Wp);
  return pd;
}
// im2col's gather table: (Ho*Wo) offsets of the tap (0, 0) in the padded plane
std::vector<int32_t> gather_table(const Geom& g, const Padded& pd) {
  std::vector<int32_t> tab(size_t(g.L()));
  for (int64_t oh = 0; oh < g.Ho; ++oh)
    for (int64_t ow = 0; ow < g.Wo; ++ow)
      tab[size_t(oh * g.Wo + ow)] = int32_t(oh * g.p.stride_h * pd.Wp + ow * g.p.stride_w);
  return tab;
}

// plane (H, W) -> buf (Hp, Wp): the values at (pad_h, pad_w), `border` around them.
template <class T>
void fill_padded(const T* plane, const Geom& g, const Padded& pd, T border, T* buf) {
  const int64_t ph = g.p.pad_h, pw = g.p.pad_w;
  std::fill(buf, buf + pd.Hp * pd.Wp, border);
  for (int64_t h = 0; h < g.H && h + ph < pd.Hp; ++h) {
    const int64_t w1 = std::min(g.W, pd.Wp - pw);
    std::copy(plane + h * g.W, plane + h * g.W + w1, buf + (h + ph) * pd.Wp + pw);
  }
}

// x (m,C,H,W) -> col (K, m*L). Row k of image n lands at col + (k*m + n)*L. Each (image, channel)
// is padded once and serves its g.taps rows; one thread writes each row.
template <class T>
void im2col(const T* x, int64_t m, const Geom& g, T* col) {
  const int64_t L = g.L(), taps = g.taps;
  const Padded pd = padded_geometry(g);
  const std::vector<int32_t> table = gather_table(g, pd);
  const int32_t* tab = table.data();
  const cpu::GemmKernel<T>& kn = cpu::active_kernel<T>();
  prep_loop(m * g.C, taps * L, [&](int64_t b, int64_t e) {
    std::vector<T> buf(size_t(pd.Hp * pd.Wp));
    for (int64_t r = b; r < e; ++r) {
      const int64_t c = r / m, n = r % m;  // (c, n) order: consecutive planes write adjacent runs of col
      fill_padded(x + (n * g.C + c) * g.HW(), g, pd, T(0), buf.data());
      for (int64_t t = 0; t < taps; ++t) {
        const int64_t ki = t / g.kw, kj = t % g.kw;
        const T* src = buf.data() + ki * g.p.dil_h * pd.Wp + kj * g.p.dil_w;
        T* dst = col + ((c * taps + t) * m + n) * L;
        if (g.p.stride_w == 1)  // each output row reads a contiguous run: copies, not a gather
          kn.copy_rows(src, g.p.stride_h * pd.Wp, g.Ho, g.Wo, dst);
        else  // (a phase-split plane turned stride 2 into copies too, but was no faster: performance.md)
          kn.gather(src, tab, L, dst);
      }
    }
  });
}

// col (K, m*L) -> img (m,C,H,W): each plane starts at init[c] (or 0) and sums its col entries,
// tap by tap in (ki, kj) order and position by position, in a padded buffer (the sums that land in
// the padding are dropped). One thread owns each plane: no races, a fixed order.
// The buffer's columns are split by phase w % stride_w (stride 2: the even columns, then the odd),
// so that one output row of one tap is a contiguous run of buffer entries: the adds vectorize,
// where a strided scatter stayed scalar (docs/performance.md). Each entry still receives its
// terms in tap order, so the sums are the same bits as the scatter's.
template <class T>
void col2im(const T* col, int64_t m, const Geom& g, const T* init, T* img) {
  const int64_t L = g.L(), sh = g.p.stride_h, sw = g.p.stride_w;
  const Padded pd = padded_geometry(g);
  const int64_t Wq = (pd.Wp + sw - 1) / sw, phase_size = pd.Hp * Wq;  // columns per phase
  prep_loop(m * g.C, g.taps * L, [&](int64_t b, int64_t e) {
    std::vector<T> buf(size_t(sw * phase_size));
    for (int64_t r = b; r < e; ++r) {
      // planes in (c, n) order: consecutive planes read adjacent runs of each col row (col's rows
      // are (c, ki, kj), its columns (n, l)), so the reads stream instead of jumping m*L apart
      const int64_t c = r / m, n = r % m;
      const T start = init ? init[c] : T(0);
      std::fill(buf.begin(), buf.end(), start);
      for (int64_t t = 0; t < g.taps; ++t) {
        const int64_t ki = t / g.kw, kj = t % g.kw;
        const int64_t c0 = kj * g.p.dil_w;  // the tap's column offset in the padded plane
        T* base = buf.data() + (c0 % sw) * phase_size + c0 / sw + ki * g.p.dil_h * Wq;
        const T* src = col + ((c * g.taps + t) * m + n) * L;
        for (int64_t oh = 0; oh < g.Ho; ++oh) {
          T* d = base + oh * sh * Wq;
          const T* s = src + oh * g.Wo;
          for (int64_t ow = 0; ow < g.Wo; ++ow) d[ow] += s[ow];
        }
      }
      T* plane = img + (n * g.C + c) * g.HW();
      for (int64_t h = 0; h < g.H; ++h) {
        const T* row = buf.data() + (h + g.p.pad_h) * Wq;
        for (int64_t w0 = 0; w0 < std::min(sw, g.W); ++w0) {  // the columns of one phase at a time
          const int64_t wp = w0 + g.p.pad_w;
          const T* src = row + (wp % sw) * phase_size + wp / sw;
          for (int64_t w = w0, q = 0; w < g.W; w += sw, ++q) plane[h * g.W + w] = src[q];
        }
      }
    }
  });
}

// ---- reorders between (m,O,L) images and (O, m*L) GEMM operands --------------------------------
// y (O, m*L) -> out (m,O,L), adding bias[o] when given.
template <class T>
void unpack_rows(const T* y, int64_t m, int64_t O, int64_t L, const T* bias, T* out) {
  prep_loop(m * O, L, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t n = r / O, o = r % O;
      const T* s = y + (o * m + n) * L;
      T* d = out + r * L;
      const T add = bias ? bias[o] : T(0);
      for (int64_t l = 0; l < L; ++l) d[l] = s[l] + add;
    }
  });
}

// gout (m,O,L) -> G (O, m*L).
template <class T>
void pack_rows(const T* gout, int64_t m, int64_t O, int64_t L, T* G) {
  prep_loop(m * O, L, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t o = r / m, n = r % m;
      std::memcpy(G + r * L, gout + (n * O + o) * L, sizeof(T) * L);
    }
  });
}

// ---- the packed lowering: im2col's matrix read in place ------------------------------------------
// For a chunk of m images: P (m, C, Hp, Wp), the images with their zero border (x itself when
// the geometry needs none), and the offsets tap[k] for k = (c, ki, kj) and pos[j] for j = (n, l),
// so that col[k][j] = P[tap[k] + pos[j]] (k over the live taps only, for a masked convolution).
struct Lowered {
  Padded pd;
  bool copy;  // whether P is a bordered copy, or x itself
  std::vector<int32_t> tap, pos;
};
// nb: the largest chunk. pos covers nb images; a smaller chunk uses its prefix.
Lowered lower(const Geom& g, int64_t nb) {
  Lowered lw;
  lw.pd = padded_geometry(g);
  const int64_t Hp = lw.pd.Hp, Wp = lw.pd.Wp, plane = Hp * Wp, L = g.L();
  lw.copy = !(g.p.pad_h == 0 && g.p.pad_w == 0 && Hp == g.H && Wp == g.W);
  lw.tap.resize(size_t(g.K()));
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t t = 0; t < g.taps; ++t)
      lw.tap[size_t(c * g.taps + t)] = int32_t(c * plane + t / g.kw * g.p.dil_h * Wp + t % g.kw * g.p.dil_w);
  const std::vector<int32_t> tab = gather_table(g, lw.pd);
  lw.pos.resize(size_t(nb * L));
  for (int64_t n = 0; n < nb; ++n)
    for (int64_t l = 0; l < L; ++l) lw.pos[size_t(n * L + l)] = int32_t(n * g.C * plane + tab[size_t(l)]);
  return lw;
}
// Whether a chunk of nb images fits 32-bit offsets (P's elements, and gout's for the input gradient).
bool packed_fits(const Geom& g, int64_t nb, int64_t O) {
  if (conv_lowering() != ConvLowering::packed || gemm_backend() != GemmBackend::own) return false;
  const Padded pd = padded_geometry(g);
  return nb * g.C * pd.Hp * pd.Wp < (int64_t(1) << 31) && nb * O * g.L() < (int64_t(1) << 31);
}
// The chunk's P: x's m images copied into their borders (one plane per thread at a time), or x.
template <class T>
const T* chunk_images(const T* x, int64_t m, const Geom& g, const Lowered& lw, T* buf) {
  if (!lw.copy) return x;
  const int64_t plane = lw.pd.Hp * lw.pd.Wp;
  prep_loop(m * g.C, plane, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) fill_padded(x + r * g.HW(), g, lw.pd, T(0), buf + r * plane);
  });
  return buf;
}

// ---- the three kernels ------------------------------------------------------------------------
constexpr int64_t kColBudgetBytes = int64_t(32) << 20;  // col buffer size that sets the chunk

// Images per chunk: as many as fit the budget, at least 1.
template <class T>
int64_t chunk_size(int64_t N, const Geom& g) {
  int64_t per_image = std::max<int64_t>(1, g.K() * g.L() * (int64_t)sizeof(T));
  return std::clamp<int64_t>(kColBudgetBytes / per_image, 1, std::max<int64_t>(N, 1));
}

// A scratch buffer of n elements of T (uninitialized, 64-byte aligned).
template <class T>
Tensor scratch(int64_t n) {
  return Tensor::empty({std::max<int64_t>(n, 0)}, dtype_of<T>::value);
}
// The buffer the chunk needs: P's bordered copy when packed (none when x is read directly), else col.
template <class T>
Tensor col_buffer(bool packed, const Lowered& lw, const Geom& g, int64_t nb) {
  return scratch<T>(packed ? (lw.copy ? nb * g.C * lw.pd.Hp * lw.pd.Wp : 0) : g.K() * nb * g.L());
}

// x (N,C,H,W), w (O,K), bias (O) or null -> out (N,O,Ho,Wo)
template <class T>
void conv_forward(const T* x, const T* w, const T* bias, T* out, int64_t N, int64_t O,
                  const Geom& g) {
  const int64_t K = g.K(), L = g.L(), nb = chunk_size<T>(N, g);
  const bool packed = packed_fits(g, nb, O);
  const Lowered lw = packed ? lower(g, nb) : Lowered{};
  Tensor col = col_buffer<T>(packed, lw, g, nb);
  Tensor y = scratch<T>(nb > 1 ? O * nb * L : 0);
  for (int64_t n0 = 0; n0 < N; n0 += nb) {
    const int64_t m = std::min(nb, N - n0);
    T* dst = out + n0 * O * L;
    T* prod = m == 1 ? dst : y.data<T>();  // m == 1: (O, L) is already the image's layout
    if (packed) {
      const T* P = chunk_images(x + n0 * g.C * g.HW(), m, g, lw, col.data<T>());
      gv::gemm_indexed_b<T>(O, m * L, K, T(1), w, K, 1, {P, lw.tap.data(), lw.pos.data()}, T(0), prod, m * L);
    } else {
      im2col(x + n0 * g.C * g.HW(), m, g, col.data<T>());
      gemm(false, false, O, m * L, K, w, col.data<T>(), prod, false);
    }
    if (m > 1 || bias) unpack_rows(prod, m, O, L, bias, dst);
  }
}

// gout (N,O,Ho,Wo), w (O,K), init (C) or null -> gx (N,C,H,W) = col2im(W^T @ gout) + init
template <class T>
void conv_backward_input(const T* gout, const T* w, const T* init, T* gx, int64_t N, int64_t O,
                         const Geom& g) {
  const int64_t K = g.K(), L = g.L(), nb = chunk_size<T>(N, g);
  const bool packed = packed_fits(g, nb, O);
  Tensor gcol = scratch<T>(K * nb * L), G = scratch<T>(nb > 1 && !packed ? O * nb * L : 0);
  // G (O, m*L) read in place: G[o][(n, l)] = gout[o*L + n*O*L + l]
  std::vector<int32_t> orow, gpos;
  if (packed) {
    orow.resize(size_t(O));
    for (int64_t o = 0; o < O; ++o) orow[size_t(o)] = int32_t(o * L);
    gpos.resize(size_t(nb * L));
    for (int64_t j = 0; j < nb * L; ++j) gpos[size_t(j)] = int32_t(j / L * O * L + j % L);
  }
  for (int64_t n0 = 0; n0 < N; n0 += nb) {
    const int64_t m = std::min(nb, N - n0);
    const T* src = gout + n0 * O * L;
    if (packed) {
      gv::gemm_indexed_b<T>(K, m * L, O, T(1), w, 1, K, {src, orow.data(), gpos.data()}, T(0), gcol.data<T>(),
                            m * L);
    } else {
      if (m > 1) {
        pack_rows(src, m, O, L, G.data<T>());
        src = G.data<T>();
      }
      gemm(true, false, K, m * L, O, w, src, gcol.data<T>(), false);
    }
    col2im(gcol.data<T>(), m, g, init, gx + n0 * g.C * g.HW());
  }
}

// x (N,C,H,W), gout (N,O,Ho,Wo) -> gw (O,K) = sum over the batch of gout_n @ col_n^T
// (chunks accumulate into gw one after another, in batch order).
template <class T>
void conv_backward_weight(const T* x, const T* gout, T* gw, int64_t N, int64_t O, const Geom& g) {
  const int64_t K = g.K(), L = g.L(), nb = chunk_size<T>(N, g);
  const bool packed = packed_fits(g, nb, O);
  const Lowered lw = packed ? lower(g, nb) : Lowered{};
  Tensor col = col_buffer<T>(packed, lw, g, nb);
  Tensor G = scratch<T>(nb > 1 ? O * nb * L : 0);
  std::fill(gw, gw + O * K, T(0));
  for (int64_t n0 = 0; n0 < N; n0 += nb) {
    const int64_t m = std::min(nb, N - n0);
    const T* src = gout + n0 * O * L;
    if (m > 1) {
      pack_rows(src, m, O, L, G.data<T>());
      src = G.data<T>();
    }
    if (packed) {  // col^T (m*L, K): row (n, l) at pos, column k at tap
      const T* P = chunk_images(x + n0 * g.C * g.HW(), m, g, lw, col.data<T>());
      gv::gemm_indexed_b<T>(O, K, m * L, T(1), src, m * L, 1, {P, lw.pos.data(), lw.tap.data(), true}, T(1), gw, K);
    } else {
      im2col(x + n0 * g.C * g.HW(), m, g, col.data<T>());
      gemm(false, true, O, K, m * L, src, col.data<T>(), gw, true);
    }
  }
}

}  // namespace

namespace cpu {

void conv_forward(DType dt, const ConvGeom& g, int64_t N, int64_t O, const void* x, const void* w, const void* bias,
                  void* out) {
  dispatch_float(dt, "conv2d", [&]<class T>() {
    gv::conv_forward<T>(static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(bias),
                        static_cast<T*>(out), N, O, g);
  });
}
void conv_backward_input(DType dt, const ConvGeom& g, int64_t N, int64_t O, const void* gout, const void* w,
                         const void* init, void* gx) {
  dispatch_float(dt, "conv2d_backward_input", [&]<class T>() {
    gv::conv_backward_input<T>(static_cast<const T*>(gout), static_cast<const T*>(w), static_cast<const T*>(init),
                               static_cast<T*>(gx), N, O, g);
  });
}
void conv_backward_weight(DType dt, const ConvGeom& g, int64_t N, int64_t O, const void* x, const void* gout,
                          void* gw) {
  dispatch_float(dt, "conv2d_backward_weight", [&]<class T>() {
    gv::conv_backward_weight<T>(static_cast<const T*>(x), static_cast<const T*>(gout), static_cast<T*>(gw), N, O, g);
  });
}

}  // namespace cpu
}  // namespace gv
