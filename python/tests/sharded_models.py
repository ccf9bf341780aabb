"""The models of the sharded tests (test_sharded.py), built the same way by the test (unsharded) and by each rank
of sharded_worker.py (before sharding): a fixed seed, and every layer kind and route of htsr._sharded."""

from __future__ import annotations

from typing import Any


def small(torch: Any) -> Any:
    """Every route: a dim-0 split of a tall Linear, a Conv2D (output channels) and a Conv1d sums Gram matrices; of
    a wide Linear, a wide Conv2D and a bf16 Linear it gathers; an uneven split (37 rows); a rank-5 layer; a layer
    too small for a spectrum."""
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tall = nn.Linear(64, 150)
            self.wide = nn.Linear(150, 48)
            self.uneven = nn.Linear(16, 37)
            self.conv = nn.Conv2d(8, 24, 3)
            self.conv_wide = nn.Conv2d(24, 8, 3)
            self.conv1 = nn.Conv1d(12, 20, 5)
            self.bf16 = nn.Linear(64, 40).to(torch.bfloat16)
            self.low_rank = nn.Linear(48, 80, bias=False)
            self.tiny = nn.Linear(4, 3)

        def forward(self, x: dict[str, Any]) -> Any:
            outs = [
                self.tall(x["tall"]),
                self.wide(x["wide"]),
                self.uneven(x["uneven"]),
                self.conv(x["conv"]),
                self.conv_wide(x["conv_wide"]),
                self.conv1(x["conv1"]),
                self.bf16(x["bf16"]).float(),
                self.low_rank(x["low_rank"]),
                self.tiny(x["tiny"]),
            ]
            return sum((o.float() ** 2).mean() for o in outs)

    torch.manual_seed(1)
    net = Net()
    with torch.no_grad():
        net.low_rank.weight.copy_(torch.randn(80, 5) @ torch.randn(5, 48))
    return net


def small_inputs(torch: Any, seed: int) -> dict[str, Any]:
    g = torch.Generator().manual_seed(seed)
    r = lambda *shape: torch.randn(*shape, generator=g)  # noqa: E731
    return {
        "tall": r(4, 64),
        "wide": r(4, 150),
        "uneven": r(4, 16),
        "conv": r(2, 8, 6, 6),
        "conv_wide": r(2, 24, 6, 6),
        "conv1": r(2, 12, 9),
        "bf16": r(4, 64).to(torch.bfloat16),
        "low_rank": r(4, 48),
        "tiny": r(4, 4),
    }


#: The layers of `small` that get a spectrum (weights of two or more dimensions, `tiny` is skipped).
SMALL_LAYERS = sorted(
    f"{n}.weight" for n in ("tall", "wide", "uneven", "conv", "conv_wide", "conv1", "bf16", "low_rank", "tiny")
)

#: Layer shape of the memory test: 2048 x 512 float32 (4 MiB), a 512 x 512 float64 Gram matrix (2 MiB).
BIG_ROWS, BIG_COLS, BIG_LAYERS = 2048, 512, 24


def big(torch: Any) -> Any:
    """BIG_LAYERS Linear layers of BIG_ROWS x BIG_COLS float32 (96 MiB in all), alternately tall (the Gram matrices
    are summed) and wide (the layer is gathered to its owner)."""
    nn = torch.nn
    torch.manual_seed(2)
    net = nn.Module()
    for i in range(BIG_LAYERS):
        shape = (BIG_COLS, BIG_ROWS) if i % 2 else (BIG_ROWS, BIG_COLS)
        setattr(net, f"l{i:02d}", nn.Linear(shape[1], shape[0], bias=False))
    return net
