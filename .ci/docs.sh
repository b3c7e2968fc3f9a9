#!/usr/bin/env bash
# Build the documentation site into site/ (offline: nothing is loaded from a CDN when it is viewed).
#   1. KaTeX, the math renderer, from the npm registry (pinned; only its dist/ files) into docs/assets/katex/
#   2. the lab gallery: `deeprelax lab all --out docs/gallery` (generated here, never committed)
#   3. mkdocs build --strict
# Usage: .ci/docs.sh [PYTHON]   (PYTHON: an environment with deeprelax[docs] installed; default .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-.venv/bin/python}
KATEX=0.16.22

if [ ! -f docs/assets/katex/katex.min.js ]; then
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "katex@$KATEX" >/dev/null)
    tar -xzf "$tmp/katex-$KATEX.tgz" -C "$tmp"
    mkdir -p docs/assets/katex/contrib docs/assets/katex/fonts
    cp "$tmp/package/dist/katex.min.js" "$tmp/package/dist/katex.min.css" docs/assets/katex/
    cp "$tmp/package/dist/contrib/auto-render.min.js" docs/assets/katex/contrib/
    cp "$tmp/package/dist/fonts/"*.woff2 docs/assets/katex/fonts/
    rm -rf "$tmp"
fi

rm -rf docs/gallery
OMP_NUM_THREADS=1 MPLBACKEND=Agg "$PY" -m deeprelax lab all --out docs/gallery >/dev/null
"$PY" -m mkdocs build --strict --quiet --site-dir site
echo "site built: site/index.html"
