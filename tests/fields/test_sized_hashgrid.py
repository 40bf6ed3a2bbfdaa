"""Budget-sized hash grids keep their coarsest level dense (collision-free low frequencies)."""

from __future__ import annotations

import pytest

from fields.encodings.hashgrid import HashGrid
from fields.models import build_field, sized_model


@pytest.mark.parametrize(
    ("budget", "in_dim"), [(5000, 3), (30000, 3), (131072, 3), (8000, 2), (64000, 2)]
)
def test_coarsest_level_is_dense(budget: int, in_dim: int) -> None:
    spec = sized_model("hashgrid", budget, in_dim, 1)
    field = build_field(in_dim, 1, **spec)
    grids = [m for m in field.modules() if isinstance(m, HashGrid)]
    assert len(grids) == 1
    levels = grids[0].config.levels
    assert not levels[0].hashed, f"level 0 of {levels[0]} is hashed"
    # the base resolution is only lowered when the table is too small for 16^D vertices
    if 16**in_dim <= 2 ** spec["encoding"]["log2_hashmap_size"]:
        assert spec["encoding"]["base_resolution"] == 16
