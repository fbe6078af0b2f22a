"""Train the example iris classifier and save it for the `iris` model.

Fits a scikit-learn LogisticRegression on the iris data that ships with
scikit-learn (no download) and writes `models/iris/model.joblib` beside this
script. The classifier takes 4 float features per row and predicts the class
index 0, 1 or 2 (setosa, versicolor, virginica) as int64. Training is
deterministic: the same scikit-learn version on the same platform writes
the same file.

The file is not rewritten when it is newer than this script, unless
`--force` is given. Usage: python examples/train_iris.py [--output PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "models" / "iris" / "model.joblib"


def train_iris(output: Path) -> None:
    """Fit the classifier and write it to `output` with joblib.

    The file is written under a temporary name and then renamed, so a server
    that loads `output` meanwhile never reads a partial file.
    """
    import joblib
    import numpy as np
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    # Fitting on an array, not a DataFrame, keeps the model free of feature
    # names, so numpy inputs predict without a warning.
    classifier = LogisticRegression(max_iter=1000)
    classifier.fit(features.astype(np.float32), labels.astype(np.int64))

    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    try:
        joblib.dump(classifier, partial)
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)


def is_up_to_date(output: Path) -> bool:
    """Return True when `output` exists and is newer than this script."""
    try:
        return output.stat().st_mtime >= Path(__file__).stat().st_mtime
    except FileNotFoundError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="model file to write (default: models/iris/model.joblib beside "
        "this script)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="train even when the model file is newer than this script",
    )
    args = parser.parse_args(argv)

    if not args.force and is_up_to_date(args.output):
        print(f"{args.output} is up to date")
        return 0
    train_iris(args.output)
    print(f"Wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
