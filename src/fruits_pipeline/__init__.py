"""fruits-pipeline: Fruits-360 images -> MobileNetV2 features -> StandardScaler + PCA -> Parquet."""

__version__ = "0.1.0"
