#!/usr/bin/env bash
# Regenerates the known-answer files from real CPython (2.7, 3.11, 3.13 under ~/.pyenv).
set -euo pipefail
cd "$(dirname "$0")"
for v in 2.7 3.11 3.13; do
  py=$(ls -d "$HOME"/.pyenv/versions/"$v".*/bin/python 2>/dev/null | head -n 1)
  PYTHONHASHSEED=0 "$py" gen_kat.py > "kat-$v.txt"
  echo "kat-$v.txt: $(wc -l < "kat-$v.txt") cases from $("$py" -V 2>&1)"
done
