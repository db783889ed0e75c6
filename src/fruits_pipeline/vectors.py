"""Arrow ``list<float>`` columns <-> NumPy ``(n, d)`` matrices, with no Python per row or float.

Used by the ``mapInArrow`` steps (unpacking features, reducing, projecting): they receive and
return Arrow record batches, so a whole batch of vectors moves as one buffer.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from fruits_pipeline.schema import KEY_COLUMNS


def to_matrix(column: pa.Array, width: int) -> np.ndarray:
    """``list<float>`` with ``width`` values per row (no nulls) -> float64 ``(rows, width)``.

    Raises:
        ValueError: a row is null or does not hold exactly ``width`` values.
    """
    if column.null_count:
        raise ValueError("vector column holds nulls")
    values = column.flatten().to_numpy(zero_copy_only=False)
    if values.size != len(column) * width:
        raise ValueError(f"vectors must have {width} values each")
    return values.astype(np.float64).reshape(len(column), width)


def to_list_array(matrix: np.ndarray) -> pa.ListArray:
    """``(rows, width)`` matrix -> ``list<float>`` (float32 values), one list per row."""
    rows, width = matrix.shape
    starts = pa.array(np.arange(rows + 1, dtype=np.int32) * width)
    values = pa.array(np.ascontiguousarray(matrix, dtype=np.float32).ravel())
    return pa.ListArray.from_arrays(starts, values)


def keyed_vectors(batch: pa.RecordBatch, name: str, matrix: np.ndarray) -> pa.RecordBatch:
    """``batch``'s ``path``, ``label`` and ``split`` columns, then ``matrix`` as ``name``."""
    return pa.RecordBatch.from_arrays(
        [batch.column(key) for key in KEY_COLUMNS] + [to_list_array(matrix)],
        names=[*KEY_COLUMNS, name],
    )
