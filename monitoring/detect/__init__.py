"""Detect: change per sensor and method, each with a score, a mask, dates and (where the method has one) a p-value."""

from monitoring.detect.optical import detect_burn_scars, detect_optical_change, detect_soil_exposure
from monitoring.detect.result import Detection
from monitoring.detect.sar import builtup_mask, detect_sar_change

__all__ = [
    "Detection",
    "builtup_mask",
    "detect_burn_scars",
    "detect_optical_change",
    "detect_sar_change",
    "detect_soil_exposure",
]
