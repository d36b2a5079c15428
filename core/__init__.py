"""idbench: benchmark and analysis toolkit for face identity encoders.

The package root holds the face pipeline shared by every part (image reading,
detection, landmarks, alignment, weight resolution, caching). It imports
nothing heavy: ``import idbench.analysis`` must stay free of torch and OpenCV.
"""

__version__ = "0.1.0"
