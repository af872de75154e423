//! The two loops the speaker network spends its time in: a matrix product against weights kept
//! in PyTorch's `[out, in]` layout, and the LSTM cell's gate arithmetic.
//!
//! They are written by hand rather than run as tensor operations because the recurrent product
//! is small (a few rows against a 256×1024 matrix, 160 times per layer and window): a general
//! GEMM packs the whole matrix on every call and hands the work to a thread pool that spins,
//! and a libm `tanhf`/`expf` per gate costs more than the product itself. With the weights read
//! once per row block, a branch-free `exp` that vectorises, and AVX2/FMA where the CPU has them
//! (checked at run time, with a portable path for every other CPU), one core embeds a second of
//! speech in a few milliseconds.

/// Rows of `x` handled while one weight row is in L1: 16 rows of 256 floats are 16 KiB.
const ROW_BLOCK: usize = 16;

/// `out[r * out_stride + j] += x[r] · w[j]` for every row `r < rows` of `x` (`rows × k`,
/// row-major) and every row `j < n` of `w` (`n × k`, row-major: PyTorch's weight layout).
pub fn matmul_acc(
    x: &[f32],
    rows: usize,
    k: usize,
    w: &[f32],
    n: usize,
    out: &mut [f32],
    out_stride: usize,
) {
    assert!(
        x.len() >= rows * k,
        "x holds {} floats, not {rows}×{k}",
        x.len()
    );
    assert!(w.len() >= n * k, "w holds {} floats, not {n}×{k}", w.len());
    if rows == 0 || n == 0 {
        return;
    }
    assert!(
        out.len() >= (rows - 1) * out_stride + n,
        "out too short for {rows} rows of stride {out_stride}"
    );
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA (checked above) and every index is in the bounds
        // asserted above.
        unsafe { avx2::matmul_acc(x, rows, k, w, n, out, out_stride) };
        return;
    }
    portable_matmul_acc(x, rows, k, w, n, out, out_stride);
}

fn portable_matmul_acc(
    x: &[f32],
    rows: usize,
    k: usize,
    w: &[f32],
    n: usize,
    out: &mut [f32],
    out_stride: usize,
) {
    for block in (0..rows).step_by(ROW_BLOCK) {
        let block_end = (block + ROW_BLOCK).min(rows);
        for j in 0..n {
            let weights = &w[j * k..(j + 1) * k];
            for r in block..block_end {
                out[r * out_stride + j] += dot(&x[r * k..(r + 1) * k], weights);
            }
        }
    }
}

/// A dot product in eight independent lanes, a shape the compiler vectorises on any CPU.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (ca, cb) in a_chunks.zip(b_chunks) {
        for lane in 0..8 {
            lanes[lane] += ca[lane] * cb[lane];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// One LSTM step for one row: `gates` holds the pre-activations in PyTorch's order (input,
/// forget, cell, output; `4 × hidden`), `cell` and `hidden` are updated in place.
pub fn lstm_cell(gates: &[f32], cell: &mut [f32], hidden: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA (checked above); the body is safe code.
        unsafe { avx2::lstm_cell(gates, cell, hidden) };
        return;
    }
    lstm_cell_body(gates, cell, hidden);
}

/// The gate arithmetic, inlined into each CPU's variant so that it vectorises for it.
#[inline(always)]
fn lstm_cell_body(gates: &[f32], cell: &mut [f32], hidden: &mut [f32]) {
    let size = cell.len();
    assert_eq!(hidden.len(), size);
    assert_eq!(gates.len(), 4 * size);
    let (input, rest) = gates.split_at(size);
    let (forget, rest) = rest.split_at(size);
    let (candidate, output) = rest.split_at(size);
    for j in 0..size {
        let c = sigmoid(forget[j]) * cell[j] + sigmoid(input[j]) * tanh(candidate[j]);
        cell[j] = c;
        hidden[j] = sigmoid(output[j]) * tanh(c);
    }
}

/// `e^x` to about 2e-7 relative error, with no branch and no call so that a loop of it
/// vectorises: `x = n·ln 2 + r` with `|r| ≤ ln 2 / 2`, a degree-6 polynomial for `e^r`, and
/// `2^n` built in the exponent bits.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in two so that `n · LN2_HI` is exact for the n that occur.
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding 1.5 · 2^23 rounds to an integer, which then sits in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * LOG2_E + ROUND;
    let n = shifted - ROUND;
    let exponent = shifted.to_bits() as i32 - ROUND.to_bits() as i32;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (1.0 / 2.0
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * f32::from_bits(((exponent + 127) << 23) as u32)
}

#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    2.0 * sigmoid(2.0 * x) - 1.0
}

#[cfg(target_arch = "x86_64")]
fn has_avx2_fma() -> bool {
    // The standard library caches the answer after the first query.
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{ROW_BLOCK, dot};

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn lstm_cell(gates: &[f32], cell: &mut [f32], hidden: &mut [f32]) {
        super::lstm_cell_body(gates, cell, hidden);
    }

    /// Columns of `out` (rows of `w`) one tile covers.
    const COLS: usize = 4;

    /// The same product as the portable path, in tiles of up to four rows of `x` against four
    /// rows of `w`: each step of eight floats loads every `w` row once and every `x` row once
    /// for up to sixteen fused multiply-adds.
    ///
    /// # Safety
    /// The caller checks the CPU's features and the slices' lengths (see `super::matmul_acc`).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn matmul_acc(
        x: &[f32],
        rows: usize,
        k: usize,
        w: &[f32],
        n: usize,
        out: &mut [f32],
        out_stride: usize,
    ) {
        for block in (0..rows).step_by(ROW_BLOCK) {
            let block_end = (block + ROW_BLOCK).min(rows);
            let mut j = 0;
            while j + COLS <= n {
                let mut r = block;
                while r < block_end {
                    let tile = Tile {
                        x,
                        k,
                        w,
                        row: r,
                        col: j,
                    };
                    // SAFETY: rows r..r+ROWS and columns j..j+COLS are inside the product.
                    r += unsafe {
                        match block_end - r {
                            1 => tile.multiply::<1>(out, out_stride),
                            2 => tile.multiply::<2>(out, out_stride),
                            3 => tile.multiply::<3>(out, out_stride),
                            _ => tile.multiply::<4>(out, out_stride),
                        }
                    };
                }
                j += COLS;
            }
            for j in j..n {
                for r in block..block_end {
                    out[r * out_stride + j] += dot(&x[r * k..(r + 1) * k], &w[j * k..(j + 1) * k]);
                }
            }
        }
    }

    /// `ROWS` rows of `x` from `row` against rows `col..col + COLS` of `w`.
    struct Tile<'a> {
        x: &'a [f32],
        k: usize,
        w: &'a [f32],
        row: usize,
        col: usize,
    }

    impl Tile<'_> {
        /// Adds the tile's products into `out`; returns the rows done.
        ///
        /// # Safety
        /// Rows `row..row + ROWS` of `x`, rows `col..col + COLS` of `w` and the matching cells
        /// of `out` exist.
        #[target_feature(enable = "avx2,fma")]
        unsafe fn multiply<const ROWS: usize>(self, out: &mut [f32], out_stride: usize) -> usize {
            let k = self.k;
            let k8 = k - k % 8;
            let mut acc = [[_mm256_setzero_ps(); COLS]; ROWS];
            // SAFETY: the caller guarantees the rows; every load reads c..c + 8 <= k8 <= k.
            unsafe {
                let x = self.x.as_ptr().add(self.row * k);
                let w = self.w.as_ptr().add(self.col * k);
                let mut c = 0;
                while c < k8 {
                    let mut weights = [_mm256_setzero_ps(); COLS];
                    for (col, weight) in weights.iter_mut().enumerate() {
                        *weight = _mm256_loadu_ps(w.add(col * k + c));
                    }
                    for (i, sums) in acc.iter_mut().enumerate() {
                        let v = _mm256_loadu_ps(x.add(i * k + c));
                        for (sum, weight) in sums.iter_mut().zip(&weights) {
                            *sum = _mm256_fmadd_ps(v, *weight, *sum);
                        }
                    }
                    c += 8;
                }
            }
            for (i, sums) in acc.iter().enumerate() {
                let x_row = &self.x[(self.row + i) * k..(self.row + i + 1) * k];
                for (col, sum) in sums.iter().enumerate() {
                    let w_row = &self.w[(self.col + col) * k..(self.col + col + 1) * k];
                    out[(self.row + i) * out_stride + self.col + col] +=
                        hsum(*sum) + tail(x_row, w_row, k8);
                }
            }
            ROWS
        }
    }

    /// The products past the last whole group of eight.
    fn tail(x_row: &[f32], w_row: &[f32], from: usize) -> f32 {
        x_row[from..]
            .iter()
            .zip(&w_row[from..])
            .map(|(a, b)| a * b)
            .sum()
    }

    #[target_feature(enable = "avx2,fma")]
    fn hsum(v: __m256) -> f32 {
        let sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
        let sum = _mm_add_ss(sum, _mm_shuffle_ps(sum, sum, 1));
        _mm_cvtss_f32(sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(x: &[f32], rows: usize, k: usize, w: &[f32], n: usize) -> Vec<f32> {
        let mut out = vec![0f32; rows * n];
        for r in 0..rows {
            for j in 0..n {
                out[r * n + j] = (0..k).map(|c| x[r * k + c] * w[j * k + c]).sum();
            }
        }
        out
    }

    /// Deterministic values in [-1, 1].
    fn values(count: usize, seed: u32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(2_654_435_761).max(1);
        (0..count)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn the_product_matches_a_plain_loop_for_every_shape_remainder() {
        // Rows past a group of four and a block of sixteen, an odd n, k with a tail past eight.
        for &(rows, k, n) in &[
            (1, 8, 2),
            (3, 40, 6),
            (7, 13, 5),
            (21, 256, 9),
            (16, 256, 1024),
            (4, 24, 7),
        ] {
            let x = values(rows * k, 1);
            let w = values(n * k, 2);
            let expected = naive(&x, rows, k, &w, n);
            for use_portable in [false, true] {
                let mut out = vec![0.5f32; rows * n];
                if use_portable {
                    portable_matmul_acc(&x, rows, k, &w, n, &mut out, n);
                } else {
                    matmul_acc(&x, rows, k, &w, n, &mut out, n);
                }
                for (got, want) in out.iter().zip(&expected) {
                    assert!(
                        (got - (want + 0.5)).abs() < 1e-4,
                        "{rows}×{k}·{n} portable={use_portable}: {got} vs {}",
                        want + 0.5
                    );
                }
            }
        }
    }

    #[test]
    fn the_product_writes_rows_at_the_given_stride_and_nowhere_else() {
        let (rows, k, n, stride) = (5, 16, 4, 10);
        let x = values(rows * k, 3);
        let w = values(n * k, 4);
        let expected = naive(&x, rows, k, &w, n);
        let mut out = vec![7.0f32; (rows - 1) * stride + n];
        matmul_acc(&x, rows, k, &w, n, &mut out, stride);
        for (index, value) in out.iter().enumerate() {
            let (r, j) = (index / stride, index % stride);
            if j < n {
                assert!((value - 7.0 - expected[r * n + j]).abs() < 1e-4);
            } else {
                assert_eq!(*value, 7.0, "index {index} is not part of the product");
            }
        }
    }

    #[test]
    fn the_activations_match_the_standard_library() {
        for i in -2000..=2000 {
            let x = i as f32 * 0.01;
            assert!((exp(x) - x.exp()).abs() <= 1e-6 * x.exp(), "exp({x})");
            assert!((tanh(x) - x.tanh()).abs() < 1e-6, "tanh({x})");
            let s = 1.0 / (1.0 + (-x).exp());
            assert!((sigmoid(x) - s).abs() < 1e-6, "sigmoid({x})");
        }
        // Far outside the range the network produces: saturated, never NaN or infinite.
        assert!((0.0..1e-30).contains(&sigmoid(-500.0)));
        assert_eq!(sigmoid(500.0), 1.0);
        assert_eq!(tanh(500.0), 1.0);
        assert_eq!(tanh(-500.0), -1.0);
    }
}
