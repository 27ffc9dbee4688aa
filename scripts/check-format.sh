#!/usr/bin/env bash
# Fails when a C++ file in the tree differs from what clang-format (.clang-format) makes of it.
#   scripts/check-format.sh          check (CI)
#   scripts/check-format.sh --fix    reformat in place
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cpp' '*.h')
if [ "${1:-}" = --fix ]; then
    clang-format -i "${files[@]}"
else
    clang-format --dry-run -Werror "${files[@]}"
    echo "${#files[@]} files formatted as .clang-format says"
fi
