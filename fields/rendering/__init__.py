"""Novel-view synthesis on the fields core: cameras and rays, sampling (occupancy grid, proposal
sampler, scene contraction), volume rendering, radiance-field models, datasets (Blender,
nerfstudio) and an embedded analytic scene.

Imports only :mod:`neurosim.backend` and :mod:`fields`.
"""

from fields.rendering.cameras import Cameras, Rays, image_rays, pixel_rays, project
from fields.rendering.radiance import MODELS, RadianceField, radiance_field
from fields.rendering.render import composite_dense, composite_packed, weights_dense, weights_packed
from fields.rendering.renderer import render_image, render_occupancy, render_proposal
from fields.rendering.sampling import (
    OccupancyGrid,
    ProposalSampler,
    contract,
    interlevel_loss,
    march,
    sample_pdf,
)

__all__ = [
    "MODELS",
    "Cameras",
    "OccupancyGrid",
    "ProposalSampler",
    "RadianceField",
    "Rays",
    "composite_dense",
    "composite_packed",
    "contract",
    "image_rays",
    "interlevel_loss",
    "march",
    "pixel_rays",
    "project",
    "radiance_field",
    "render_image",
    "render_occupancy",
    "render_proposal",
    "sample_pdf",
    "weights_dense",
    "weights_packed",
]
