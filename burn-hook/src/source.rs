//! [`ModuleSource`]: a Burn [`Module`]'s float parameters as the hook core reads them, by Burn's own record paths
//! and in PyTorch layout.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{DType, Tensor};
use htsr_hook_core::{BufferPool, HookError, ParamSource, Select, Snapshot, Unsupported};
use htsr_writer::{Dtype, TensorSnapshot};

/// A Burn module seen as a [`ParamSource`].
///
/// - Names: the [`ModuleVisitor`] path joined by `.`, i.e. the paths Burn's records and `burn-store` use: field
///   names, `Vec`/array/tuple indices, enum variant names (`encoder.layers.0.weight`). `Option` adds nothing.
/// - Layout: a `Linear` weight, which Burn stores as `[d_input, d_output]`, is transposed to PyTorch's
///   `[d_output, d_input]` (the rule burn-store's PyTorch adapter uses: the innermost module type is
///   `Struct:Linear` and the parameter is `weight`). Convolution kernels are already in PyTorch's layout
///   (`[out, in/groups, k...]`), as are embeddings. Everything else is copied as it is.
/// - Values: the effective value ([`Param::val`], with any reparameterization such as LoRA applied), moved off
///   the autodiff graph and copied to the host in its own dtype (f32, f64, f16, bf16; `flex32` is stored as f32).
///   Quantized parameters have no safetensors dtype and are reported as unsupported.
#[derive(Debug, Clone, Copy)]
pub struct ModuleSource<'a, M>(pub &'a M);

impl<M: Module> ParamSource for ModuleSource<'_, M> {
    fn shapes(&self, select: Select<'_>) -> Vec<(String, Vec<usize>)> {
        let mut walker = Walker::new(select, Collect::Shapes(Vec::new()));
        self.0.visit(&mut walker);
        match walker.collect {
            Collect::Shapes(shapes) => shapes,
            Collect::Snapshot { .. } => unreachable!("a shape walk collects shapes"),
        }
    }

    fn snapshot(
        &self,
        select: Select<'_>,
        buffers: &mut BufferPool,
    ) -> Result<Snapshot, HookError> {
        let mut walker = Walker::new(
            select,
            Collect::Snapshot {
                buffers,
                snapshot: Snapshot::default(),
            },
        );
        self.0.visit(&mut walker);
        match walker.collect {
            Collect::Snapshot { snapshot, .. } => Ok(snapshot),
            Collect::Shapes(_) => unreachable!("a snapshot walk collects tensors"),
        }
    }
}

/// What a walk over the module collects.
enum Collect<'b> {
    /// Names and shapes only: no parameter is read (nor lazily initialized).
    Shapes(Vec<(String, Vec<usize>)>),
    /// The selected parameters' bytes.
    Snapshot {
        buffers: &'b mut BufferPool,
        snapshot: Snapshot,
    },
}

/// The kind of container a `ModuleVisitor::enter_module` call entered, as far as the layout rule cares.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Container {
    /// `Struct:Linear`: its `weight` is stored transposed.
    Linear,
    /// Any other user-defined module (`Struct:...`, `Enum:...`).
    Module,
    /// `Vec`, `Tuple`, `Array`: transparent to the rule (a `Vec<Linear>` entry is still a Linear).
    Collection,
}

struct Walker<'s, 'b> {
    path: Vec<String>,
    containers: Vec<Container>,
    select: Select<'s>,
    collect: Collect<'b>,
}

impl<'s, 'b> Walker<'s, 'b> {
    fn new(select: Select<'s>, collect: Collect<'b>) -> Self {
        Self {
            path: Vec::new(),
            containers: Vec::new(),
            select,
            collect,
        }
    }

    /// Whether the parameter being visited is a `Linear` weight, stored `[d_input, d_output]`.
    fn is_linear_weight(&self, dims: usize) -> bool {
        let module = self
            .containers
            .iter()
            .rev()
            .find(|c| **c != Container::Collection);
        dims == 2
            && module == Some(&Container::Linear)
            && self.path.last().map(String::as_str) == Some("weight")
    }
}

/// The safetensors dtype of a Burn float dtype, or None for quantized values.
fn dtype_of(dtype: DType) -> Option<Dtype> {
    Some(match dtype {
        // flex32 is stored as f32 (it only computes at reduced precision on some backends)
        DType::F32 | DType::Flex32 => Dtype::F32,
        DType::F64 => Dtype::F64,
        DType::F16 => Dtype::F16,
        DType::BF16 => Dtype::BF16,
        _ => return None,
    })
}

impl ModuleVisitor for Walker<'_, '_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.push(name.to_string());
        self.containers.push(match container_type {
            "Struct:Linear" => Container::Linear,
            c if c.starts_with("Struct:") || c.starts_with("Enum:") => Container::Module,
            _ => Container::Collection,
        });
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
        self.containers.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let name = self.path.join(".");
        let transpose = self.is_linear_weight(D);
        // The value's shape. Not `lazy_shape`: before initialization it is the shape the initializer draws, which
        // an init mapper may still transpose (a column-major Linear draws [d_output, d_input] and stores its
        // transpose). Reading the shape initializes a lazy parameter, as its first forward pass would; no value is
        // copied.
        let mut shape = (**param).shape().to_vec();
        if transpose {
            shape.reverse();
        }
        if !(self.select)(&name, &shape) {
            return;
        }
        let (buffers, snapshot) = match &mut self.collect {
            Collect::Shapes(shapes) => {
                shapes.push((name, shape));
                return;
            }
            Collect::Snapshot { buffers, snapshot } => (buffers, snapshot),
        };
        // `inner` leaves the autodiff graph: reading the value records nothing.
        let value = param.val().inner();
        let Some(dtype) = dtype_of(value.dtype()) else {
            snapshot.unsupported.push(Unsupported {
                name,
                shape,
                dtype: format!("{:?}", value.dtype()),
            });
            return;
        };
        let value = if transpose { value.transpose() } else { value };
        // Contiguous, row-major, host (little-endian) bytes in the tensor's own dtype.
        let data = value.into_data();
        debug_assert_eq!(data.shape().as_slice(), shape.as_slice(), "{name}");
        snapshot.tensors.push(TensorSnapshot {
            name,
            dtype,
            shape,
            data: buffers.copy_of(data.as_bytes()),
        });
    }
}
