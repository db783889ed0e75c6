"""The job's one vocabulary: column names, split names and the schemas of what it writes.

Every stage names columns through these constants, so renaming one is one edit, and the output
contract (README, "Outputs") is readable in one place.
"""

from __future__ import annotations

# Columns of binaryFile's scan that the job uses.
PATH = (
    "path"  # Hadoop's Path.toString(): not percent-encoded, e.g. s3://b/Training/Apple Red 1/0.jpg
)
CONTENT = "content"
LENGTH = "length"
MODIFICATION_TIME = "modificationTime"

# Every output row is keyed by these three.
LABEL = "label"  # the parent folder's name, exactly as written
SPLIT = "split"  # the grandparent folder's name when it is a known split, else null
KEY_COLUMNS = (PATH, LABEL, SPLIT)

# The dataset's own split folders (Fruits-360: Training/ and Test/).
TRAIN_SPLIT = "Training"
TEST_SPLIT = "Test"
SPLIT_NAMES = (TRAIN_SPLIT, TEST_SPLIT)

# The featurize UDF's struct and its fields.
RESULT = "result"
PACKED_FEATURES = "packed_features"
ERROR_KIND = "error_kind"
ERROR_MESSAGE = "error_message"
RESULT_FIELDS = f"{PACKED_FEATURES} binary, {ERROR_KIND} string, {ERROR_MESSAGE} string"

# inventory/: the identity of every scanned file, what an incremental run compares.
INVENTORY_SCHEMA = f"{PATH} string, {LENGTH} long, {MODIFICATION_TIME} timestamp"
FILE_IDENTITY = (PATH, LENGTH, MODIFICATION_TIME)

FEATURES = "features"
PCA_FEATURES = "pca_features"

_KEYS = f"{PATH} string, {LABEL} string, {SPLIT} string"
STAGED_SCHEMA = f"{_KEYS}, {RESULT} struct<{RESULT_FIELDS}>"
FEATURES_SCHEMA = f"{_KEYS}, {FEATURES} array<float>"
ERRORS_SCHEMA = f"{_KEYS}, {ERROR_KIND} string, {ERROR_MESSAGE} string"
PCA_SCHEMA = f"{_KEYS}, {PCA_FEATURES} array<float>"
