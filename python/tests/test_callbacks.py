"""The Hugging Face and Lightning callbacks in real (short) training runs of small local models, with the real daemon
storing every checkpoint they write."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import need, watched_export


def test_hugging_face_trainer(htsr: Any, torch: Any, htsr_watch: Path, tmp_path: Path) -> None:
    from safetensors import safe_open

    transformers = need("transformers")
    datasets_free = torch.utils.data.Dataset
    hf = need("htsr.hf")

    class Tokens(datasets_free):
        """Random token sequences with a label that depends on the first token: something to learn."""

        def __init__(self) -> None:
            g = torch.Generator().manual_seed(0)
            self.ids = torch.randint(0, 96, (64, 12), generator=g)

        def __len__(self) -> int:
            return len(self.ids)

        def __getitem__(self, i: int) -> dict[str, Any]:
            return {"input_ids": self.ids[i], "labels": int(self.ids[i, 0] % 2)}

    config = transformers.BertConfig(
        vocab_size=96, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=32,
    )
    model = transformers.BertForSequenceClassification(config)
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "trainer"), per_device_train_batch_size=8, num_train_epochs=2,
        logging_steps=4, learning_rate=1e-3, lr_scheduler_type="linear", save_strategy="no", report_to=[],
        use_cpu=True, disable_tqdm=True, seed=0,
    )
    callback = hf.HtsrCallback(tmp_path / "htsr", run="bert", every=3)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=Tokens(), callbacks=[callback])
    trainer.train()
    # 64 samples / batch 8 = 8 steps per epoch, 16 in all: every 3 steps, and the end of each epoch (8, 16).
    due = [3, 6, 8, 9, 12, 15, 16]
    run_dir = tmp_path / "htsr" / "bert"
    assert sorted(p.name for p in run_dir.iterdir()) == [f"step-{s:09d}.safetensors" for s in due]
    with safe_open(str(run_dir / "step-000000012.safetensors"), "pt") as f:
        meta = f.metadata()
        tensors = set(f.keys())
    # Step 12 is a logging step: its metadata has the loss Trainer logged for it, and the lr the step used.
    logged = {h["step"]: h for h in trainer.state.log_history if "loss" in h}
    assert float(meta["htsr.loss"]) == logged[12]["loss"]
    assert float(meta["htsr.lr"]) == logged[12]["learning_rate"]
    assert meta["htsr.epoch"] == "1" and meta["htsr.batch_size"] == "8" and meta["htsr.step"] == "12"
    with safe_open(str(run_dir / "step-000000009.safetensors"), "pt") as f:
        assert "htsr.loss" not in f.metadata()
    assert "bert.encoder.layer.0.attention.self.query.weight" in tensors
    export = watched_export(htsr_watch, tmp_path / "htsr")
    assert sorted(set(export.step)) == due
    per_step = export.groupby("step").name.count()
    assert (per_step == len(tensors)).all(), per_step
    assert not export.duplicated(["step", "name"]).any()


def test_lightning_trainer(htsr: Any, torch: Any, htsr_watch: Path, tmp_path: Path) -> None:
    L = need("lightning")
    lightning_cb = need("htsr.lightning")

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(20, 48), torch.nn.ReLU(), torch.nn.Linear(48, 4))

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            x, y = batch
            return torch.nn.functional.cross_entropy(self.net(x), y)

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    g = torch.Generator().manual_seed(0)
    x = torch.randn(80, 20, generator=g)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, (x[:, 0] > 0).long()), batch_size=16)
    callback = lightning_cb.HtsrCallback(tmp_path, run="pl", every=4)
    trainer = L.Trainer(
        max_epochs=3, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[callback],
    )
    trainer.fit(Module(), data)
    # 5 steps per epoch, 15 in all: every 4 steps and at each epoch's end (5, 10, 15).
    due = [4, 5, 8, 10, 12, 15]
    run_dir = tmp_path / "pl"
    assert sorted(p.name for p in run_dir.iterdir()) == [f"step-{s:09d}.safetensors" for s in due]
    from safetensors import safe_open

    with safe_open(str(run_dir / "step-000000008.safetensors"), "pt") as f:
        meta = f.metadata()
        assert sorted(f.keys()) == ["net.0.weight", "net.2.weight"]
    assert meta["htsr.epoch"] == "1" and float(meta["htsr.lr"]) == 0.1 and float(meta["htsr.loss"]) > 0
    export = watched_export(htsr_watch, tmp_path)
    assert sorted(set(export.step)) == due
    assert (export.groupby("step").name.count() == 2).all()
    assert callback.checkpointer is not None and callback.checkpointer.stats["written"] == len(due)
