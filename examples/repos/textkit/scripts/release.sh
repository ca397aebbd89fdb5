#!/usr/bin/env bash
# Build and upload a release of textkit.
set -euo pipefail
version=$(python -c "import textkit; print(textkit.__version__)")
rm -rf dist
python -m build
twine upload "dist/textkit-${version}"*
echo "released ${version}"
