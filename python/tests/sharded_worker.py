"""One rank of a sharded test job (test_sharded.py starts WORLD_SIZE of them, with RANK, WORLD_SIZE and
HTSR_TEST_STORE, a file for the gloo process group's rendezvous, or under torchrun). argv[1] is a JSON job:

    layout       "fsdp2", "fsdp1", "tp" or "2d" (a dp x tp mesh: TP over tp, FSDP2 over dp)
    model        "small" or "big" (sharded_models.py)
    mode         the Checkpointer's mode
    dir, run     where the files go
    steps        checkpoints at step 0, then after each of these many optimizer steps (small model only)
    memory       measure the peak RSS around the spectra checkpoint (clear_refs, VmHWM)
    die          {"rank": r, "at": "layer" | "collectives_done", "index": i}: that rank exits there (os._exit)
    fail         {"r": [layer, ...]}: rank r fails to compute its part of these layers (a MemoryError)
    budget       the Checkpointer's full_weights_budget
    timeout      the process group's timeout in seconds

Each rank writes result-<rank>.json into dir: what it measured, or the exception the checkpoint raised.
"""

from __future__ import annotations

import ctypes
import datetime
import gc
import json
import os
import sys
import traceback

import torch
import torch.distributed as dist

import htsr
import htsr._sharded
import sharded_models


def status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def shard(net: torch.nn.Module, layout: str, world: int) -> torch.nn.Module:
    from torch.distributed.device_mesh import init_device_mesh

    leaves = [m for m in net.children()]
    if layout == "fsdp2":
        from torch.distributed.fsdp import fully_shard

        for m in net.children():
            fully_shard(m)
        fully_shard(net)
        return net
    if layout == "fsdp1":
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
        from torch.distributed.fsdp.wrap import ModuleWrapPolicy

        policy = ModuleWrapPolicy({torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d})
        return FSDP(net, use_orig_params=True, device_id=torch.device("cpu"), auto_wrap_policy=policy)
    from torch.distributed.tensor import Replicate
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

    # Colwise splits dim 0 (out), Rowwise dim 1 (in): tall (150 x 64) and wide (48 x 150) are split along their
    # samples (Gram matrices summed), uneven (37 x 16, in 16) and bf16 (40 x 64, out 40) along their features
    # (gathered).
    plan = {
        "tall": ColwiseParallel(),
        "wide": RowwiseParallel(input_layouts=Replicate()),
        "uneven": RowwiseParallel(input_layouts=Replicate()),
        "bf16": ColwiseParallel(),
    }
    if layout == "tp":
        parallelize_module(net, init_device_mesh("cpu", (world,)), plan)
        return net
    if layout == "2d":
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh("cpu", (2, world // 2), mesh_dim_names=("dp", "tp"))
        parallelize_module(net, mesh["tp"], plan)
        for m in leaves:
            fully_shard(m, mesh=mesh["dp"])
        fully_shard(net, mesh=mesh["dp"])
        return net
    raise ValueError(layout)


def train_step(net: torch.nn.Module, opt: torch.optim.Optimizer, step: int) -> None:
    opt.zero_grad()
    net(sharded_models.small_inputs(torch, step)).backward()
    opt.step()


def hugging_face(job: dict, rank: int, world: int, net: torch.nn.Module) -> htsr.Checkpointer:
    """htsr.hf.HtsrCallback's hooks, called as Trainer calls them (every=2: steps 0 and 2), with the FSDP-wrapped
    module Trainer passes as `model`; returns its Checkpointer."""
    from types import SimpleNamespace

    import htsr.hf

    callback = htsr.hf.HtsrCallback(job["dir"], run=job["run"], every=2, mode=job["mode"])
    args = SimpleNamespace(
        process_index=rank, world_size=world, run_name=None, output_dir=job["dir"], train_batch_size=4,
        gradient_accumulation_steps=1,
    )
    state = SimpleNamespace(global_step=0, epoch=0.0)
    control = SimpleNamespace(should_log=False)
    callback.on_train_begin(args, state, control)
    callback.on_step_end(args, state, control, model=net)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    for step in range(1, job.get("steps", 0) + 1):
        callback.on_step_begin(args, state, control)
        train_step(net, opt, step)
        callback.on_optimizer_step(args, state, control, optimizer=opt)
        state.global_step = step
        callback.on_step_end(args, state, control, model=net)
    checkpointer = callback.checkpointer
    callback.on_train_end(args, state, control)
    return checkpointer


def main() -> None:
    job = json.loads(sys.argv[1])
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    timeout = datetime.timedelta(seconds=job.get("timeout", 60))
    if "HTSR_TEST_STORE" in os.environ:
        init = "file://" + os.environ["HTSR_TEST_STORE"]
        dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world, timeout=timeout)
    else:
        dist.init_process_group("gloo", timeout=timeout)
    result: dict = {"rank": rank}
    die = job.get("die")
    routes: dict = {}
    result["routes"] = routes

    def event(what: str, index: int, detail: str = "") -> None:
        if what == "layer":
            name, how = detail.split()
            routes[name] = how
            if os.environ.get("HTSR_TEST_TRACE"):
                print(rank, name, how, status("VmHWM") >> 20, status("VmRSS") >> 20, flush=True)
        if die and die["rank"] == rank and what == die["at"] and index == die.get("index", index):
            sys.stdout.flush()
            os._exit(3)

    htsr._sharded._event = event
    fail = job.get("fail", {}).get(str(rank), [])
    if fail:
        # This rank cannot compute its part of these layers (as if out of memory): its Gram matrix (summed
        # layers) or the bytes it sends (gathered layers).
        current = {"layer": ""}
        watch = htsr._sharded._event

        def event_and_note(what: str, index: int, detail: str = "") -> None:
            current["layer"] = detail.split()[0] if detail else ""
            watch(what, index, detail)

        def failing(real):
            def call(*args, **kwargs):
                if current["layer"] in fail:
                    raise MemoryError(f"injected failure on rank {rank}")
                return real(*args, **kwargs)

            return call

        htsr._sharded._event = event_and_note
        htsr._sharded.add_gram = failing(htsr._sharded.add_gram)
        htsr._sharded._part_bytes = failing(htsr._sharded._part_bytes)
    net = getattr(sharded_models, job.get("model", "small"))(torch)
    net = shard(net, job["layout"], world)
    ckpt = htsr.Checkpointer(
        job["dir"], run=job["run"], every=1, mode=job["mode"], full_weights_budget=job.get("budget")
    )
    try:
        if job.get("memory"):
            # The first checkpoint loads code and warms the allocator and gloo; the second is measured.
            result["peaks"] = []
            trim = ctypes.CDLL("libc.so.6").malloc_trim
            for step in (0, 1):
                gc.collect()
                trim(0)  # freed heap pages back to the system: what the checkpoint allocates is counted anew
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")
                before = status("VmRSS")
                ckpt.checkpoint(step, net)
                ckpt.flush()
                result["peaks"].append([before, status("VmHWM")])
            result["local_bytes"] = sum(
                p.to_local().numel() * p.element_size() for p in net.parameters()
            )
        elif job.get("via") == "hf":
            ckpt.finish()
            ckpt = hugging_face(job, rank, world, net)
        else:
            ckpt.checkpoint(0, net)
            steps = job.get("steps", 0)
            if steps:
                opt = torch.optim.SGD(net.parameters(), lr=0.05)
                for step in range(1, steps + 1):
                    train_step(net, opt, step)
                ckpt.checkpoint(steps, net)
        result["stats"] = ckpt.finish()
    except Exception as e:  # noqa: BLE001 - reported to the test
        result["error"] = type(e).__name__
        result["message"] = str(e)
        result["traceback"] = traceback.format_exc()
    with open(os.path.join(job["dir"], f"result-{rank}.json"), "w") as f:
        json.dump(result, f)
    if not die:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
