"""NIR files read and written by another simulator: neurosim -> NIR -> snnTorch's own importer
(``snntorch.import_nir.import_from_nir``, through nirtorch), and snnTorch's own exporter
(``snntorch.export_nir.export_to_nir``) -> NIR -> neurosim, each run on the same spike input
with the spikes compared.

NIR's LIF resets to zero at once when ``v > v_threshold``; both libraries map that to their
immediate reset-to-zero LIF (neurosim ``reset="zero"``, snnTorch ``reset_mechanism="zero",
reset_delay=False``), and both discretise with ``dt = 1e-4`` by default. (Norse 1.1 was not
installed: it pulls torchvision and, unpinned, another torch; see docs/interop.md.)"""

from __future__ import annotations

from pathlib import Path

import nir
import snntorch
import torch
from snntorch.export_nir import export_to_nir
from snntorch.import_nir import import_from_nir
from torch import nn

from neurosim.interop import export_nir, import_nir
from neurosim.neurons import LIF, SpikingSequential


def _spike_input(steps: int = 40, batch: int = 4, features: int = 12) -> torch.Tensor:
    g = torch.Generator().manual_seed(21)
    return (torch.rand(steps, batch, features, generator=g) < 0.3).float()


def _linear(n_in: int, n_out: int, seed: int) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(n_out, n_in, generator=g) * 0.6)
        layer.bias.copy_(torch.rand(n_out, generator=g) * 0.2)
    return layer


def test_neurosim_to_nir_to_snntorch_importer(tmp_path: Path) -> None:
    ours = SpikingSequential(
        _linear(12, 16, 0),
        LIF(16, beta=0.85, threshold=0.7, reset="zero"),
        _linear(16, 5, 1),
        LIF(5, beta=0.9, threshold=0.5, reset="zero"),
    )
    path = tmp_path / "ours.nir"
    nir.write(path, export_nir(ours, (12,)))
    theirs = import_from_nir(nir.read(path))  # snnTorch Leaky(init_hidden=True) modules
    assert sum(isinstance(m, snntorch.Leaky) for m in theirs.modules()) == 2
    x = _spike_input()
    want, _ = ours(x)
    state, outs = None, []
    with torch.no_grad():
        for t in range(x.shape[0]):
            out, state = theirs(x[t], state)
            outs.append(out)
    got = torch.stack(outs)
    assert float(want.mean()) > 0.05  # the output layer fires
    assert torch.equal(got, want)


def test_snntorch_exporter_to_nir_to_neurosim(tmp_path: Path) -> None:
    def leaky(n: int, beta: float, threshold: float, output: bool = False) -> nn.Module:
        return snntorch.Leaky(
            beta=torch.full((n,), beta), threshold=torch.full((n,), threshold),
            reset_mechanism="zero", reset_delay=False, init_hidden=True, output=output,
        )  # fmt: skip

    theirs = nn.Sequential(
        _linear(12, 16, 2), leaky(16, 0.8, 0.7), _linear(16, 5, 3), leaky(5, 0.9, 0.5, True)
    )
    path = tmp_path / "theirs.nir"
    nir.write(path, export_to_nir(theirs, torch.zeros(1, 12), ignore_dims=[0]))
    ours = import_nir(path)
    assert [type(m).__name__ for m in ours.layers] == ["Linear", "LIF", "Linear", "LIF"]
    x = _spike_input()
    outs = []
    with torch.no_grad():
        for t in range(x.shape[0]):
            spk, _ = theirs(x[t])
            outs.append(spk)
    want = torch.stack(outs)
    got, _ = ours(x)
    assert float(want.mean()) > 0.05
    assert torch.equal(got, want)
