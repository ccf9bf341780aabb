//! [`VarMapSource`]: a candle-nn [`VarMap`]'s variables as the hook core reads them, by their VarMap names.

use candle_core::{CpuStorage, DType, Storage, Tensor};
use candle_nn::VarMap;
use htsr_hook_core::{BufferPool, HookError, ParamSource, Select, Snapshot, Unsupported};
use htsr_writer::{Dtype, TensorSnapshot};
use zerocopy::IntoBytes;

// safetensors files are little-endian, and the snapshot copies the host's bytes as they are.
#[cfg(not(target_endian = "little"))]
compile_error!("htsr-candle-hook writes host bytes as safetensors' little-endian data");

/// A candle-nn [`VarMap`] seen as a [`ParamSource`].
///
/// - Names: the VarMap's own keys, i.e. the full `VarBuilder` paths (`vb.pp("fc1")` gives `fc1.weight`), sorted.
/// - Layout: candle-nn stores what PyTorch stores (`Linear` weights `[out, in]`, convolution kernels
///   `[out, in/groups, k...]`), so nothing is transposed.
/// - Values: copied in their own dtype (f32, f64, f16, bf16): one memcpy from a contiguous CPU tensor, else (a
///   CUDA or Metal tensor, a strided view) through candle's own copy to a host vector. Integer and 8-bit float
///   variables are reported as unsupported.
#[derive(Clone, Copy)]
pub struct VarMapSource<'a>(pub &'a VarMap);

impl std::fmt::Debug for VarMapSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("VarMapSource").finish_non_exhaustive()
    }
}

/// The safetensors dtype of a Candle float dtype, or None for the dtypes the hooks do not keep.
fn dtype_of(dtype: DType) -> Option<Dtype> {
    Some(match dtype {
        DType::F32 => Dtype::F32,
        DType::F64 => Dtype::F64,
        DType::F16 => Dtype::F16,
        DType::BF16 => Dtype::BF16,
        _ => return None,
    })
}

/// The bytes of `t` (any device, any layout) in its own dtype, copied into the next recycled buffer.
fn copy_bytes(t: &Tensor, buffers: &mut BufferPool) -> candle_core::Result<Vec<u8>> {
    {
        let (storage, layout) = t.storage_and_layout();
        if let (Storage::Cpu(cpu), Some((start, end))) = (&*storage, layout.contiguous_offsets()) {
            let bytes: &[u8] = match cpu {
                CpuStorage::F32(v) => v[start..end].as_bytes(),
                CpuStorage::F64(v) => v[start..end].as_bytes(),
                CpuStorage::F16(v) => v[start..end].as_bytes(),
                CpuStorage::BF16(v) => v[start..end].as_bytes(),
                _ => candle_core::bail!("unexpected storage dtype {:?}", t.dtype()),
            };
            return Ok(buffers.copy_of(bytes));
        }
    }
    let flat = t.flatten_all()?;
    Ok(match t.dtype() {
        DType::F32 => buffers.copy_of(flat.to_vec1::<f32>()?.as_bytes()),
        DType::F64 => buffers.copy_of(flat.to_vec1::<f64>()?.as_bytes()),
        DType::F16 => buffers.copy_of(flat.to_vec1::<half::f16>()?.as_bytes()),
        DType::BF16 => buffers.copy_of(flat.to_vec1::<half::bf16>()?.as_bytes()),
        other => candle_core::bail!("unexpected dtype {other:?}"),
    })
}

impl ParamSource for VarMapSource<'_> {
    fn shapes(&self, select: Select<'_>) -> Vec<(String, Vec<usize>)> {
        let vars = self.0.data().lock().unwrap_or_else(|e| e.into_inner());
        let mut shapes: Vec<(String, Vec<usize>)> = vars
            .iter()
            .filter(|(name, var)| select(name, var.dims()))
            .map(|(name, var)| (name.clone(), var.dims().to_vec()))
            .collect();
        shapes.sort();
        shapes
    }

    fn snapshot(
        &self,
        select: Select<'_>,
        buffers: &mut BufferPool,
    ) -> Result<Snapshot, HookError> {
        let vars = self.0.data().lock().unwrap_or_else(|e| e.into_inner());
        // Sorted, so that each tensor gets the buffer it had at the previous checkpoint.
        let mut selected: Vec<(&String, &Tensor)> = vars
            .iter()
            .map(|(name, var)| (name, var.as_tensor()))
            .filter(|(name, t)| select(name, t.dims()))
            .collect();
        selected.sort_by(|a, b| a.0.cmp(b.0));
        let mut snapshot = Snapshot::default();
        for (name, t) in selected {
            let Some(dtype) = dtype_of(t.dtype()) else {
                snapshot.unsupported.push(Unsupported {
                    name: name.clone(),
                    shape: t.dims().to_vec(),
                    dtype: t.dtype().as_str().to_string(),
                });
                continue;
            };
            let data = copy_bytes(t, buffers).map_err(|e| HookError::Snapshot {
                name: name.clone(),
                message: e.to_string(),
            })?;
            snapshot.tensors.push(TensorSnapshot {
                name: name.clone(),
                dtype,
                shape: t.dims().to_vec(),
                data,
            });
        }
        Ok(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn f32s(bytes: &[u8]) -> Vec<f32> {
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    }

    #[test]
    fn views_are_copied_in_their_logical_order() {
        let t = Tensor::arange(0f32, 12., &Device::Cpu)
            .unwrap()
            .reshape((3, 4))
            .unwrap();
        let mut pool = BufferPool::default();
        // Contiguous at an offset: the fast path must start at the view's first element.
        let row = t.narrow(0, 1, 1).unwrap();
        assert_eq!(
            f32s(&copy_bytes(&row, &mut pool).unwrap()),
            [4., 5., 6., 7.]
        );
        // Strided: the fallback through candle's own copy.
        let cols = t.t().unwrap();
        assert!(!cols.is_contiguous());
        assert_eq!(
            f32s(&copy_bytes(&cols, &mut pool).unwrap()),
            [0., 4., 8., 1., 5., 9., 2., 6., 10., 3., 7., 11.]
        );
        // Half precision through both paths.
        let h = t.to_dtype(DType::F16).unwrap().t().unwrap();
        let slow = copy_bytes(&h, &mut pool).unwrap();
        let fast = copy_bytes(&h.contiguous().unwrap(), &mut pool).unwrap();
        assert_eq!((slow.len(), &slow), (24, &fast));
    }
}
