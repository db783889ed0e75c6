"""Reference: the featurization as the classic course notebooks write it, kept for comparison.

Deliberately *not* how fruits-pipeline works; each habit below is one the benchmark measures:

- ``repartition(20)`` after reading, which shuffles every image's bytes (each of the 20 tasks
  then builds the model again for every Spark action below);
- ``model.predict`` inside the pandas UDF (a fresh ``tf.data`` pipeline per call);
- the features are never persisted, so every Spark action re-runs the model on every image:
  the scaler's fit, each PCA fit (Spark's PCA makes two passes), and the final write;
- PCA fitted twice: once at full rank to read the variance curve, once again at the chosen k.

Usage: ``python benchmarks/classic_notebook.py --input DIR --output DIR --weights FILE
[--partitions 20]``.
Prints one JSON line with the timings.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Workers must run this interpreter: when Python starts the JVM, PySpark 3.5 reads the workers'
# Python from PYSPARK_PYTHON only (the spark.pyspark.python conf below is for spark-submit).
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--variance", type=float, default=0.95)
    parser.add_argument(
        "--partitions",
        type=int,
        default=20,
        help="the notebook's repartition(20); a smoke run on a few images passes fewer",
    )
    args = parser.parse_args()

    from pyspark.ml.feature import PCA, StandardScaler
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql.functions import pandas_udf

    spark = (
        SparkSession.builder.master("local[*]")
        .appName("classic-notebook")
        .config("spark.pyspark.python", sys.executable)
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.log.level", "ERROR")
        .getOrCreate()
    )
    started = time.perf_counter()
    from keras.applications import MobileNetV2
    from keras.applications.mobilenet_v2 import preprocess_input
    from PIL import Image

    images = (
        spark.read.format("binaryFile")
        .option("pathGlobFilter", "*.jpg")
        .option("recursiveFileLookup", "true")
        .load(args.input)
        .withColumn("label", F.element_at(F.split("path", "/"), -2))
        .repartition(args.partitions)
    )
    model = MobileNetV2(weights=None, include_top=False, pooling="avg", input_shape=(224, 224, 3))
    model.load_weights(args.weights)
    broadcast_weights = spark.sparkContext.broadcast(model.get_weights())

    def model_fn():
        model = MobileNetV2(
            weights=None, include_top=False, pooling="avg", input_shape=(224, 224, 3)
        )
        model.set_weights(broadcast_weights.value)
        return model

    def preprocess(content: bytes) -> np.ndarray:
        image = Image.open(io.BytesIO(content)).convert("RGB").resize([224, 224])
        return preprocess_input(np.asarray(image, dtype=np.float32))

    def featurize_series(model, content_series: pd.Series) -> pd.Series:
        batch = np.stack(content_series.map(preprocess))
        predictions = model.predict(batch, verbose=0)
        return pd.Series([p.flatten() for p in predictions])

    @pandas_udf("array<float>")
    def featurize_udf(content_series_iter: Iterator[pd.Series]) -> Iterator[pd.Series]:
        model = model_fn()
        for content_series in content_series_iter:
            yield featurize_series(model, content_series)

    features = images.select("path", "label", featurize_udf("content").alias("features"))
    vectors = features.withColumn("vector", array_to_vector("features"))
    timings = {}
    mark = time.perf_counter()
    scaler = StandardScaler(inputCol="vector", outputCol="scaled", withMean=True, withStd=True)
    scaled = scaler.fit(vectors).transform(vectors)
    timings["scaler_fit_s"] = time.perf_counter() - mark
    mark = time.perf_counter()
    full = PCA(k=1280, inputCol="scaled", outputCol="pca").fit(scaled)
    cumulative = np.cumsum(full.explainedVariance.toArray())
    k = int(np.argmax(cumulative >= args.variance)) + 1
    timings["pca_full_fit_s"] = time.perf_counter() - mark
    mark = time.perf_counter()
    pca = PCA(k=k, inputCol="scaled", outputCol="pca").fit(scaled)
    timings["pca_k_fit_s"] = time.perf_counter() - mark
    mark = time.perf_counter()
    pca.transform(scaled).select("path", "label", "pca").write.mode("overwrite").parquet(
        args.output
    )
    timings["write_s"] = time.perf_counter() - mark
    total = time.perf_counter() - started
    count = spark.read.parquet(args.output).count()
    print(json.dumps({"images": count, "k": k, "seconds": total, **timings}))


if __name__ == "__main__":
    main()
