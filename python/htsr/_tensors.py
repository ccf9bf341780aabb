"""Tensors and arrays as the bytes the Rust engine reads, one layer at a time.

A CPU torch tensor or a C-contiguous numpy array is handed to Rust as a uint8 view of its own memory (no copy).
A tensor on another device is copied to the host (that layer only), a non-contiguous one made contiguous (that
layer only); bf16 and f16 stay in their own dtype and are decoded block by block inside the engine, so a whole
model is never converted at once. Sharded weights are refused: a shard is not a layer.
"""

from __future__ import annotations

import sys
from typing import Any, NamedTuple

import numpy as np

# torch dtype name -> safetensors dtype name (what the engine and the writer read).
_TORCH_DTYPES = {
    "float32": "F32",
    "float64": "F64",
    "float16": "F16",
    "bfloat16": "BF16",
    "float8_e4m3fn": "F8_E4M3",
    "float8_e5m2": "F8_E5M2",
    "int64": "I64",
    "int32": "I32",
    "int16": "I16",
    "int8": "I8",
    "uint8": "U8",
    "uint16": "U16",
    "uint32": "U32",
    "uint64": "U64",
    "bool": "BOOL",
}

# numpy dtype name -> safetensors dtype name ("bfloat16" is ml_dtypes' extension type).
_NUMPY_DTYPES = {
    "float32": "F32",
    "float64": "F64",
    "float16": "F16",
    "bfloat16": "BF16",
    "int64": "I64",
    "int32": "I32",
    "int16": "I16",
    "int8": "I8",
    "uint8": "U8",
    "uint16": "U16",
    "uint32": "U32",
    "uint64": "U64",
    "bool": "BOOL",
}


class ShardedWeightsError(ValueError):
    """The weights are a shard of a layer (FSDP, tensor or pipeline parallel) where htsr needs whole layers, or a
    sharded layout htsr cannot read.

    ``htsr.Checkpointer`` reads FSDP2, FSDP1 (``use_orig_params=True``) and DTensor models itself (every rank
    calls it). To analyze one, gather the full state dict first, e.g. on one rank with
    ``torch.distributed.checkpoint.state_dict.get_model_state_dict(model, options=StateDictOptions(full_state_dict=True))``.
    """


class TensorBytes(NamedTuple):
    """One tensor as the engine reads it: safetensors dtype name, shape, and its row-major bytes (uint8 view)."""

    dtype: str
    shape: tuple[int, ...]
    data: np.ndarray


def is_torch_tensor(value: Any) -> bool:
    """True for a ``torch.Tensor`` (checked without importing torch when the caller never did)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def is_torch_module(value: Any) -> bool:
    """True for a ``torch.nn.Module``."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.nn.Module)


def refuse_sharded_tensor(name: str, t: Any) -> None:
    """Raises ShardedWeightsError for a DTensor (FSDP2, tensor parallel), an FSDP flat parameter or a DeepSpeed
    ZeRO-3 partition."""
    refuse_zero3(name, t)
    kinds = {c.__name__ for c in type(t).__mro__}
    if "DTensor" in kinds:
        raise ShardedWeightsError(
            f"{name!r} is a DTensor (FSDP2 or tensor parallel): each rank holds a shard of the layer, and the "
            "spectrum of a shard is not the layer's. Gather a full state dict first (htsr.ShardedWeightsError's "
            "docstring shows how)."
        )
    if "FlatParameter" in kinds or getattr(t, "_is_flat_param", False):
        raise ShardedWeightsError(
            f"{name!r} is an FSDP flat parameter: several layers flattened and sharded over ranks. Gather a full "
            "state dict first (htsr.ShardedWeightsError's docstring shows how)."
        )


def refuse_zero3(name: str, t: Any) -> None:
    """Raises ShardedWeightsError for a DeepSpeed ZeRO-3 parameter. DeepSpeed marks its partitioned parameters
    with ``ds_id`` and leaves each an empty placeholder outside ``GatheredParameters``, which the two-dimension
    filter would drop without a word."""
    if hasattr(t, "ds_id"):
        shape = tuple(getattr(t, "ds_shape", ()))
        raise ShardedWeightsError(
            f"{name!r} is a DeepSpeed ZeRO-3 partitioned parameter (full shape {shape}): htsr does not read ZeRO-3 "
            "partitions. Use ZeRO stage 1 or 2 (parameters whole on every rank), or gather the weights with "
            "deepspeed.zero.GatheredParameters and pass the gathered state dict on rank 0."
        )


def refuse_sharded_module(model: Any) -> None:
    """Raises ShardedWeightsError when `model` or any submodule is wrapped by FSDP (1 or 2)."""
    for name, p in model.named_parameters():
        refuse_zero3(name, p)
    for name, module in model.named_modules():
        kinds = {c.__name__ for c in type(module).__mro__}
        if kinds & {"FullyShardedDataParallel", "FSDPModule"}:
            where = f"submodule {name!r}" if name else "the model"
            raise ShardedWeightsError(
                f"{where} is wrapped by FSDP ({type(module).__name__}): its parameters are shards. Gather a full "
                "state dict first (htsr.ShardedWeightsError's docstring shows how)."
            )


def unwrap(model: Any) -> Any:
    """The module inside DistributedDataParallel / DataParallel (replicated, so the inner module is whole)."""
    while type(model).__name__ in ("DistributedDataParallel", "DataParallel") and hasattr(model, "module"):
        model = model.module
    return model


def torch_dtype_name(t: Any) -> str | None:
    """The safetensors dtype name of a torch tensor, or None when safetensors has none (complex, quantized)."""
    return _TORCH_DTYPES.get(str(t.dtype).removeprefix("torch."))


def tensor_bytes(name: str, value: Any) -> TensorBytes:
    """`value` (a torch tensor, a numpy array or anything ``numpy.asarray`` takes) as the engine's bytes.

    Raises TypeError for a dtype safetensors cannot hold, ShardedWeightsError for a shard.
    """
    if is_torch_tensor(value):
        return _torch_bytes(name, value)
    return _numpy_bytes(name, np.asarray(value))


def _torch_bytes(name: str, t: Any) -> TensorBytes:
    import torch

    refuse_sharded_tensor(name, t)
    dtype = torch_dtype_name(t)
    if dtype is None:
        raise TypeError(f"{name!r}: torch dtype {t.dtype} has no safetensors equivalent")
    t = t.detach()
    if t.device.type != "cpu":
        t = t.to("cpu")
    t = t.contiguous()
    shape = tuple(int(d) for d in t.shape)
    # A uint8 view of the tensor's own memory: no copy, whatever its dtype (bf16 has no numpy type).
    data = t.reshape(-1).view(torch.uint8).numpy()
    return TensorBytes(dtype, shape, data)


def _numpy_bytes(name: str, a: np.ndarray) -> TensorBytes:
    dtype = _NUMPY_DTYPES.get(a.dtype.name)
    if dtype is None:
        raise TypeError(f"{name!r}: numpy dtype {a.dtype} has no safetensors equivalent")
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    if not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)
    return TensorBytes(dtype, tuple(int(d) for d in a.shape), a.reshape(-1).view(np.uint8))
