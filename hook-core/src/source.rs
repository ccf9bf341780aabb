//! [`ParamSource`]: what a framework hook supplies (names, shapes in PyTorch layout, raw bytes); everything else is
//! the core's.

use htsr_writer::TensorSnapshot;

use crate::error::HookError;

/// Which parameters a checkpoint holds, asked per parameter with its name and its shape in PyTorch layout.
pub type Select<'a> = &'a dyn Fn(&str, &[usize]) -> bool;

/// A model's parameters as a framework presents them to the hook.
///
/// Names are the framework's own (they become the tensor names of the checkpoint); shapes and bytes are in
/// PyTorch's layout (`[out, in]` for dense layers, `[out, in/groups, k...]` for convolutions), because that is the
/// layout htsr-engine (and WeightWatcher) read a matrix or a kernel in. Values keep their own dtype.
pub trait ParamSource {
    /// Names and shapes (PyTorch layout) of the float parameters `select` keeps, without copying any value. Used
    /// once per hook to balance spectra between ranks.
    fn shapes(&self, select: Select<'_>) -> Vec<(String, Vec<usize>)>;

    /// Copies the float parameters `select` keeps to CPU bytes, each in its own dtype, reusing `buffers` (the
    /// writer's spent buffers) where possible. A parameter whose dtype safetensors cannot hold goes to
    /// [`Snapshot::unsupported`].
    fn snapshot(&self, select: Select<'_>, buffers: &mut BufferPool)
        -> Result<Snapshot, HookError>;
}

/// What [`ParamSource::snapshot`] copied.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The copied tensors, in any order (the hook sorts them by name).
    pub tensors: Vec<TensorSnapshot>,
    /// Parameters that were selected but have no safetensors dtype (quantized, 8-bit floats, ...).
    pub unsupported: Vec<Unsupported>,
}

/// A selected parameter whose dtype safetensors cannot hold: it is left out of the weights and listed as skipped
/// in a spectra file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// The parameter's name.
    pub name: String,
    /// Its shape in PyTorch layout.
    pub shape: Vec<usize>,
    /// The framework's name for its dtype.
    pub dtype: String,
}

/// Byte buffers of an earlier snapshot, handed out in the same order, so that the next snapshot of the same model
/// copies into pages that are already mapped (fresh pages cost a page fault each).
#[derive(Debug, Default)]
pub struct BufferPool {
    buffers: Vec<Vec<u8>>,
}

impl BufferPool {
    /// A pool handing out `buffers` in order.
    pub fn new(mut buffers: Vec<Vec<u8>>) -> Self {
        buffers.reverse();
        Self { buffers }
    }

    /// A copy of `bytes`, in the next recycled buffer when there is one.
    pub fn copy_of(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut buffer = self.buffers.pop().unwrap_or_default();
        buffer.clear();
        buffer.extend_from_slice(bytes);
        buffer
    }
}

/// Raw tensors already in PyTorch layout are a source too: what a caller holding its own arrays (or a test) hands
/// the hook.
impl ParamSource for [TensorSnapshot] {
    fn shapes(&self, select: Select<'_>) -> Vec<(String, Vec<usize>)> {
        self.iter()
            .filter(|t| select(&t.name, &t.shape))
            .map(|t| (t.name.clone(), t.shape.clone()))
            .collect()
    }

    fn snapshot(
        &self,
        select: Select<'_>,
        buffers: &mut BufferPool,
    ) -> Result<Snapshot, HookError> {
        let tensors = self
            .iter()
            .filter(|t| select(&t.name, &t.shape))
            .map(|t| TensorSnapshot {
                name: t.name.clone(),
                dtype: t.dtype,
                shape: t.shape.clone(),
                data: buffers.copy_of(&t.data),
            })
            .collect();
        Ok(Snapshot {
            tensors,
            unsupported: Vec::new(),
        })
    }
}
