"""Former home of the face-parsing network; it is :mod:`idbench.parsing` (a face-region backend of
:mod:`idbench.regions`), re-exported here so old imports work."""

from idbench.parsing import PARSING_INNER, ParsingMask, _bisenet  # noqa: F401
