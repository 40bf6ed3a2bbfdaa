"""Coordinate neural fields on the neurosim tensor backend (imports only ``neurosim.backend``)."""

from fields.decoders import MLP
from fields.encodings.fourier import FourierFeatures
from fields.encodings.hashgrid import HashGrid, HashGridConfig, hashgrid_encode

__all__ = ["MLP", "FourierFeatures", "HashGrid", "HashGridConfig", "hashgrid_encode"]

# NeuRBF, CAM, SIREN, composition and metrics (issue 4, part B)
from fields.cam import CAM, CAMDecoder
from fields.encodings.rbf import AdaptiveRBF, NeuRBFHybrid, rbf_features
from fields.metrics import count_parameters, psnr, ssim
from fields.models import Field, build_field, sized_model
from fields.siren import Siren

__all__ += [
    "CAM",
    "AdaptiveRBF",
    "CAMDecoder",
    "Field",
    "NeuRBFHybrid",
    "Siren",
    "build_field",
    "count_parameters",
    "psnr",
    "rbf_features",
    "sized_model",
    "ssim",
]
