//! Element decoding: F32, F16, BF16 and F64 to f64, from little-endian bytes with no alignment assumption
//! (a foreign writer need not align tensor data).

use safetensors::Dtype;

/// The floating-point element types htsr reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementType {
    /// IEEE binary64.
    F64,
    /// IEEE binary32.
    F32,
    /// IEEE binary16 (half precision).
    F16,
    /// bfloat16: binary32's exponent range with an 8-bit significand.
    BF16,
}

impl ElementType {
    /// The element type of a safetensors dtype; None for the dtypes htsr does not decode (integers, bool, FP8, ...).
    pub fn from_dtype(dtype: Dtype) -> Option<Self> {
        match dtype {
            Dtype::F64 => Some(ElementType::F64),
            Dtype::F32 => Some(ElementType::F32),
            Dtype::F16 => Some(ElementType::F16),
            Dtype::BF16 => Some(ElementType::BF16),
            _ => None,
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            ElementType::F64 => 8,
            ElementType::F32 => 4,
            ElementType::F16 | ElementType::BF16 => 2,
        }
    }

    /// Decodes element `index` of `bytes`.
    #[inline(always)]
    pub fn get(self, bytes: &[u8], index: usize) -> f64 {
        match self {
            ElementType::F64 => {
                let o = index * 8;
                f64::from_le_bytes(bytes[o..o + 8].try_into().expect("8 bytes"))
            }
            ElementType::F32 => {
                let o = index * 4;
                f32::from_le_bytes(bytes[o..o + 4].try_into().expect("4 bytes")) as f64
            }
            ElementType::F16 => {
                let o = index * 2;
                half::f16::from_le_bytes([bytes[o], bytes[o + 1]]).to_f64()
            }
            ElementType::BF16 => {
                let o = index * 2;
                half::bf16::from_le_bytes([bytes[o], bytes[o + 1]]).to_f64()
            }
        }
    }
}

/// True for integer and boolean dtypes, which hold no weight matrix (step counters, masks, token ids).
pub fn is_integer_or_bool(dtype: Dtype) -> bool {
    matches!(
        dtype,
        Dtype::BOOL
            | Dtype::U8
            | Dtype::I8
            | Dtype::I16
            | Dtype::U16
            | Dtype::I32
            | Dtype::U32
            | Dtype::I64
            | Dtype::U64
    )
}

/// Decodes every element of `bytes` into `out` (cleared first).
pub fn decode_into(element: ElementType, bytes: &[u8], out: &mut Vec<f64>) {
    out.clear();
    let n = bytes.len() / element.size();
    out.reserve(n);
    match element {
        ElementType::F64 => out.extend(
            bytes
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))),
        ),
        ElementType::F32 => out.extend(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")) as f64),
        ),
        ElementType::F16 => out.extend(
            bytes
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f64()),
        ),
        ElementType::BF16 => out.extend(
            bytes
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f64()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_float_dtype_exactly() {
        let values = [1.5f64, -2.25, 0.0, 1024.0];
        let f64_bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let f32_bytes: Vec<u8> = values
            .iter()
            .flat_map(|v| (*v as f32).to_le_bytes())
            .collect();
        let f16_bytes: Vec<u8> = values
            .iter()
            .flat_map(|v| half::f16::from_f64(*v).to_le_bytes())
            .collect();
        let bf16_bytes: Vec<u8> = values
            .iter()
            .flat_map(|v| half::bf16::from_f64(*v).to_le_bytes())
            .collect();
        let mut out = Vec::new();
        for (ty, bytes) in [
            (ElementType::F64, &f64_bytes),
            (ElementType::F32, &f32_bytes),
            (ElementType::F16, &f16_bytes),
            (ElementType::BF16, &bf16_bytes),
        ] {
            decode_into(ty, bytes, &mut out);
            assert_eq!(out, values, "{ty:?}");
            for (i, v) in values.iter().enumerate() {
                assert_eq!(ty.get(bytes, i), *v, "{ty:?} element {i}");
            }
        }
    }

    #[test]
    fn unaligned_bytes_decode() {
        let mut bytes = vec![0u8];
        bytes.extend(3.25f32.to_le_bytes());
        assert_eq!(ElementType::F32.get(&bytes[1..], 0), 3.25);
    }
}
