//! Speaker embeddings: the [`SpeakerEncoder`] interface and the shipped GE2E d-vector network.
//!
//! The network is Resemblyzer's pretrained GE2E encoder (Apache-2.0, see `model/PROVENANCE.md`):
//! a 3-layer LSTM over 40 mel bins (hidden 256), a 256→256 linear layer, ReLU and L2 norm. It
//! is run with candle on the CPU. The LSTM is written out here rather than taken from candle-nn
//! so that the input projection of every time step is one matrix product per layer, and only
//! the recurrent product runs step by step, batched over all partials of a request.

use std::collections::HashMap;

use candle_core::{D, DType, Device, Tensor};

use crate::mel::{MelFrame, N_MELS};

/// Length of an embedding.
pub const EMBEDDING_DIM: usize = 256;
/// Mel frames in one partial utterance the network was trained on (1.6 s).
pub const PARTIAL_FRAMES: usize = 160;

/// A unit-length speaker embedding.
pub type Embedding = Vec<f32>;

/// The weights shipped with the project, embedded in the binary so that a fresh machine and
/// the desktop bundle need no download.
pub static SHIPPED_MODEL: &[u8] = include_bytes!("../model/ge2e.safetensors");

/// Why a model could not be loaded or run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("speaker model file {0} cannot be read: {1}")]
    Unreadable(String, String),
    #[error("speaker model is not a valid safetensors file: {0}")]
    Corrupt(String),
    #[error("speaker model is missing tensor {0}")]
    MissingTensor(String),
    #[error("speaker model tensor {name} has shape {found:?}, expected {expected:?}")]
    WrongShape {
        name: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("speaker model failed: {0}")]
    Run(String),
}

impl From<candle_core::Error> for ModelError {
    fn from(err: candle_core::Error) -> Self {
        ModelError::Run(err.to_string())
    }
}

/// Turns runs of mel frames into speaker embeddings. A stronger model implements this and is
/// dropped in without touching segmentation or clustering.
pub trait SpeakerEncoder: Send + Sync {
    /// Embeds each partial (a run of mel frames, at most [`PARTIAL_FRAMES`] long); the answers
    /// are unit length and in the order given.
    fn embed_partials(&self, partials: &[&[MelFrame]]) -> Result<Vec<Embedding>, ModelError>;
}

/// One LSTM layer's weights, laid out for `x · W` products.
struct LstmLayer {
    /// `[input, 4·hidden]` (PyTorch's `weight_ih` transposed).
    w_input: Tensor,
    /// `[hidden, 4·hidden]`.
    w_hidden: Tensor,
    /// `bias_ih + bias_hh`, `[4·hidden]`.
    bias: Tensor,
}

/// The GE2E d-vector encoder.
pub struct Ge2eEncoder {
    layers: Vec<LstmLayer>,
    /// `[256, 256]` transposed.
    w_linear: Tensor,
    b_linear: Tensor,
}

const HIDDEN: usize = 256;
/// Most partials run through the network together.
const MAX_BATCH: usize = 16;
const LAYERS: usize = 3;

impl Ge2eEncoder {
    /// The model shipped with the project.
    pub fn shipped() -> Result<Ge2eEncoder, ModelError> {
        Ge2eEncoder::from_bytes(SHIPPED_MODEL)
    }

    /// Loads a GE2E model from a safetensors file the user provides.
    pub fn from_file(path: &std::path::Path) -> Result<Ge2eEncoder, ModelError> {
        let bytes = std::fs::read(path).map_err(|e| {
            let name = path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            ModelError::Unreadable(name, e.to_string())
        })?;
        Ge2eEncoder::from_bytes(&bytes)
    }

    /// Loads a GE2E model from the bytes of a safetensors file, checking every tensor's shape.
    pub fn from_bytes(bytes: &[u8]) -> Result<Ge2eEncoder, ModelError> {
        let tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
            .map_err(|e| ModelError::Corrupt(e.to_string()))?;
        let mut layers = Vec::with_capacity(LAYERS);
        for layer in 0..LAYERS {
            let input = if layer == 0 { N_MELS } else { HIDDEN };
            let w_ih = take(
                &tensors,
                &format!("lstm.weight_ih_l{layer}"),
                &[4 * HIDDEN, input],
            )?;
            let w_hh = take(
                &tensors,
                &format!("lstm.weight_hh_l{layer}"),
                &[4 * HIDDEN, HIDDEN],
            )?;
            let b_ih = take(&tensors, &format!("lstm.bias_ih_l{layer}"), &[4 * HIDDEN])?;
            let b_hh = take(&tensors, &format!("lstm.bias_hh_l{layer}"), &[4 * HIDDEN])?;
            layers.push(LstmLayer {
                w_input: w_ih.t()?.contiguous()?,
                w_hidden: w_hh.t()?.contiguous()?,
                bias: (b_ih + b_hh)?,
            });
        }
        let w_linear = take(&tensors, "linear.weight", &[EMBEDDING_DIM, HIDDEN])?;
        let b_linear = take(&tensors, "linear.bias", &[EMBEDDING_DIM])?;
        Ok(Ge2eEncoder {
            layers,
            w_linear: w_linear.t()?.contiguous()?,
            b_linear,
        })
    }

    /// Runs a batch of partials that all have `frames` frames.
    fn embed_batch(&self, partials: &[&[MelFrame]], frames: usize) -> Result<Tensor, ModelError> {
        let batch = partials.len();
        let mut flat = Vec::with_capacity(batch * frames * N_MELS);
        for partial in partials {
            for frame in partial.iter() {
                flat.extend_from_slice(frame);
            }
        }
        // [batch, time, features]
        let mut sequence = Tensor::from_vec(flat, (batch, frames, N_MELS), &Device::Cpu)?;
        let mut last_hidden = None;
        for layer in &self.layers {
            let (output, hidden) = run_layer(layer, &sequence, batch, frames)?;
            sequence = output;
            last_hidden = Some(hidden);
        }
        let hidden = last_hidden.expect("the model has layers");
        let projected = hidden
            .matmul(&self.w_linear)?
            .broadcast_add(&self.b_linear)?
            .relu()?;
        let norm = projected.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?;
        // A silent input can give an all-zero vector: keep it zero rather than divide by zero.
        Ok(projected.broadcast_div(&norm.clamp(1e-12, f32::MAX)?)?)
    }
}

impl SpeakerEncoder for Ge2eEncoder {
    fn embed_partials(&self, partials: &[&[MelFrame]]) -> Result<Vec<Embedding>, ModelError> {
        // Partials of equal length share one batch; answers go back in the caller's order.
        let mut by_length: HashMap<usize, Vec<usize>> = HashMap::new();
        for (index, partial) in partials.iter().enumerate() {
            if partial.is_empty() || partial.len() > PARTIAL_FRAMES {
                return Err(ModelError::Run(format!(
                    "a partial must hold 1..={PARTIAL_FRAMES} frames, not {}",
                    partial.len()
                )));
            }
            by_length.entry(partial.len()).or_default().push(index);
        }
        let mut out = vec![Vec::new(); partials.len()];
        for (frames, indices) in by_length {
            // Batches are capped so that a long stretch does not hold every step's gates at
            // once (16 partials of 160 frames: about 10 MB per layer).
            for batch in indices.chunks(MAX_BATCH) {
                let group: Vec<&[MelFrame]> = batch.iter().map(|&i| partials[i]).collect();
                let embeddings = self.embed_batch(&group, frames)?.to_vec2::<f32>()?;
                for (&index, embedding) in batch.iter().zip(embeddings) {
                    out[index] = embedding;
                }
            }
        }
        Ok(out)
    }
}

/// One LSTM layer over `[batch, time, input]`: returns every step's hidden state
/// `[batch, time, hidden]` and the last one `[batch, hidden]`. Gates in PyTorch's order:
/// input, forget, cell, output. The matrix products run in candle; the gate arithmetic is a
/// plain loop over a few thousand floats per step, cheaper than a dozen small tensor ops.
fn run_layer(
    layer: &LstmLayer,
    sequence: &Tensor,
    batch: usize,
    frames: usize,
) -> Result<(Tensor, Tensor), ModelError> {
    let features = sequence.dim(2)?;
    let projected: Vec<f32> = sequence
        .reshape((batch * frames, features))?
        .matmul(&layer.w_input)?
        .broadcast_add(&layer.bias)?
        .flatten_all()?
        .to_vec1()?;
    let gates_per_row = 4 * HIDDEN;
    let mut hidden = vec![0f32; batch * HIDDEN];
    let mut cell = vec![0f32; batch * HIDDEN];
    let mut outputs = vec![0f32; batch * frames * HIDDEN];
    for t in 0..frames {
        let recurrent: Vec<f32> = Tensor::from_slice(&hidden, (batch, HIDDEN), &Device::Cpu)?
            .matmul(&layer.w_hidden)?
            .flatten_all()?
            .to_vec1()?;
        for b in 0..batch {
            let row = (b * frames + t) * gates_per_row;
            let gates = |gate: usize, j: usize| {
                projected[row + gate * HIDDEN + j]
                    + recurrent[b * gates_per_row + gate * HIDDEN + j]
            };
            for j in 0..HIDDEN {
                let input = sigmoid(gates(0, j));
                let forget = sigmoid(gates(1, j));
                let candidate = gates(2, j).tanh();
                let output = sigmoid(gates(3, j));
                let c = forget * cell[b * HIDDEN + j] + input * candidate;
                cell[b * HIDDEN + j] = c;
                let h = output * c.tanh();
                hidden[b * HIDDEN + j] = h;
                outputs[(b * frames + t) * HIDDEN + j] = h;
            }
        }
    }
    Ok((
        Tensor::from_vec(outputs, (batch, frames, HIDDEN), &Device::Cpu)?,
        Tensor::from_vec(hidden, (batch, HIDDEN), &Device::Cpu)?,
    ))
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

fn take(
    tensors: &HashMap<String, Tensor>,
    name: &str,
    shape: &[usize],
) -> Result<Tensor, ModelError> {
    let tensor = tensors
        .get(name)
        .ok_or_else(|| ModelError::MissingTensor(name.to_owned()))?;
    if tensor.dims() != shape {
        return Err(ModelError::WrongShape {
            name: name.to_owned(),
            found: tensor.dims().to_vec(),
            expected: shape.to_vec(),
        });
    }
    Ok(tensor.to_dtype(DType::F32)?)
}

/// Cosine similarity of two unit-length embeddings.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Scales `v` to unit length (a zero vector stays zero).
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}
