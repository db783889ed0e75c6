"""spark-submit entrypoint: ``spark-submit [--py-files fruits_pipeline.zip] main.py COMMAND ...``.

The same subcommands and options as the ``fruits-pipeline`` console script (``run ...``). On EMR
the package comes from the ``--py-files`` zip; from a checkout it comes from ``src/`` when the
package is not installed.
"""

import sys
from pathlib import Path

try:
    from fruits_pipeline.cli import main
except ModuleNotFoundError:  # run as src/fruits_pipeline/main.py from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from fruits_pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main())
