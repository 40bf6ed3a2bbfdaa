"""The worked example of ``docs/extending_neurons.md`` runs: its code blocks, executed in a fresh
process, register a quadratic integrate-and-fire neuron with one ``register_neuron`` call; its
backends match a plain loop written here from the doc's equations (gradients included); and the
generic neuron and kernel contract tests pass with it registered."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "extending_neurons.md"

CHECK = textwrap.dedent(
    """
    import runpy, sys
    import pytest, torch
    from neurosim.backend import kernels
    from neurosim.neurons import neuron_spec
    from tests.reference_neurons import heaviside

    doc = runpy.run_path(sys.argv[1])

    # 1. the registration took: the neuron and its scan operation are registered
    spec = neuron_spec("qif")
    assert spec.module is doc["QIF"]
    assert {"torch", "loop", "compile"} <= set(kernels.backends("qif_scan"))

    # 2. every CPU backend against a plain loop of the doc's equations
    def independent(x, v0, beta, kappa, theta):
        v, spikes, mems = v0, [], []
        for t in range(x.shape[0]):
            h = beta * v + kappa * v * v + x[t]
            s = heaviside(h - theta, ("arctan", 2.0))
            v = h * (1 - s)
            spikes.append(s)
            mems.append(v)
        return torch.stack(spikes), torch.stack(mems)

    g = torch.Generator().manual_seed(5)
    args = [torch.randn(25, 4, 7, generator=g, dtype=torch.float64) * 0.6 + 0.45,
            torch.rand(4, 7, generator=g, dtype=torch.float64) * 0.5,
            torch.full((7,), 0.8, dtype=torch.float64),
            torch.rand(7, generator=g, dtype=torch.float64) * 0.3,
            torch.full((7,), 0.9, dtype=torch.float64)]

    def run(fn):
        leaves = [a.clone().requires_grad_(True) for a in args]
        s, v = fn(*leaves)
        w = torch.randn(s.shape, generator=torch.Generator().manual_seed(1), dtype=s.dtype)
        ((s * w).sum() + (v * w.flip(0)).sum()).backward()
        return [s.detach(), v.detach()] + [leaf.grad for leaf in leaves]

    want = run(independent)
    assert 0.05 < float(want[0].mean()) < 0.95
    for backend in ("torch", "loop"):
        got = run(lambda *a: kernels.call("qif_scan", *a, backend=backend))
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    print("QIF-MATCHES-INDEPENDENT-LOOP")

    # 3. the generic contract tests, with the new neuron registered in this process
    code = pytest.main(["-q", "-p", "no:cacheprovider", "-k", "qif and not compile",
                        "tests/spiking/test_neurons_contract.py",
                        "tests/backend/test_kernel_contract.py"])
    sys.exit(int(code))
    """
)


def test_doc_example_registers_a_neuron_that_passes_the_contracts(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 3, "the doc's worked example lost its code blocks"
    module = tmp_path / "qif_doc.py"
    module.write_text("\n\n".join(blocks))
    script = tmp_path / "check.py"
    script.write_text(CHECK)
    out = subprocess.run(
        [sys.executable, str(script), str(module)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    log = out.stdout[-4000:] + out.stderr[-4000:]
    assert out.returncode == 0, log
    assert "QIF-MATCHES-INDEPENDENT-LOOP" in out.stdout, log
    passed = re.search(r"(\d+) passed", out.stdout)
    assert passed is not None and int(passed.group(1)) >= 15, log
    assert " failed" not in out.stdout, log
