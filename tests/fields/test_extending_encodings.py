"""The worked example of ``docs/extending_encodings.md`` works as written: its code block alone
registers an encoding that the generic contract test accepts, that builds from a spec, sizes to
a budget as a named model and trains in ``fields_image``."""

from __future__ import annotations

import importlib.util
import math
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch

from experiments.runner import run_experiment
from fields.encodings import ENCODINGS, build_encoding, model_names
from fields.models import build_field, sized_model
from neurosim.backend import InputError

DOC = Path(__file__).resolve().parents[2] / "docs" / "extending_encodings.md"
CONTRACT = Path(__file__).resolve().parent / "test_encoding_contract.py"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def _contract() -> ModuleType:
    spec = importlib.util.spec_from_file_location("encoding_contract_for_docs", CONTRACT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def registered() -> Iterator[dict[str, object]]:
    """Run the doc's first code block (the registration) and undo it afterwards."""
    assert "frequency" not in ENCODINGS
    namespace: dict[str, object] = {"__name__": "docs_extending_encodings"}
    try:
        exec(compile(_blocks()[0], "<docs/extending_encodings.md>", "exec"), namespace)
        yield namespace
    finally:
        ENCODINGS.pop("frequency", None)


def test_the_example_is_one_registration_that_passes_the_contract(
    registered: dict[str, object],
) -> None:
    assert "frequency" in ENCODINGS and "pe_mlp" in model_names()
    contract = _contract()
    spec = contract.EncodingSpec(ENCODINGS["frequency"], "")
    for d in spec.in_dims:
        for dtype in (torch.float32, torch.float64):
            contract.test_shapes_dtypes_and_gradients(spec, d, dtype)
    contract.test_bad_input_is_a_clear_error(spec)
    contract.test_compiles_in_one_graph_forward_and_backward(spec)
    contract.test_state_dict_round_trip_and_seeded_build(spec)
    # the maths, by hand: x = 0.25 -> sin(pi/4), sin(pi/2), sin(pi), cos(pi/4), ...
    enc = build_encoding({"type": "frequency", "octaves": 3}, 1)
    got = enc(torch.tensor([[0.25]], dtype=torch.float64))
    h = math.sqrt(0.5)
    want = torch.tensor([[h, 1.0, 0.0, h, 0.0, -1.0]], dtype=torch.float64)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)  # float32 scales
    with pytest.raises(InputError, match="unknown option"):
        build_encoding({"type": "frequency", "octave": 3}, 2)


def test_the_example_builds_sizes_and_trains(registered: dict[str, object], tmp_path: Path) -> None:
    namespace: dict[str, object] = {}
    exec(
        compile(_blocks()[1], "<docs/extending_encodings.md>", "exec"), namespace
    )  # the doc's usage block
    field = namespace["field"]
    assert isinstance(field, torch.nn.Module)
    assert field(torch.rand(5, 2)).shape == (5, 3)
    spec = sized_model("pe_mlp", 20000, 2, 3)
    assert spec == namespace["spec"]
    total = sum(p.numel() for p in build_field(2, 3, **spec).parameters())
    assert 0.95 * 20000 <= total <= 20000
    result = run_experiment(
        "fields_image", ["model=pe_mlp", "budget=3000", "steps=4"], tmp_path, "tiny"
    )
    assert math.isfinite(result.metrics["psnr"]) and result.metrics["params"] <= 3000
