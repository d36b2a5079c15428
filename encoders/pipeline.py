"""Moved to :mod:`idbench.pipeline` (``core/pipeline.py``); this name stays for existing imports."""

from idbench.pipeline import (DETECTION_VERSION, DetectedImage, EmbeddingTable, array_item,  # noqa: F401
                              detect_file, detect_files, detect_item, detect_stream, embed_detected, embed_files,
                              encoder_fingerprint, failure, file_item, lazy_item, merge_payloads, select_faces,
                              table_to_payload)
