#!/usr/bin/env bash
# Train from a config, as the reference was launched:
#   bash train.sh configs/AudioClassification_cnn.yaml [extra `spokenword fit` arguments ...]
# Creates .venv with `make install` when it is missing. Data: --data.root, else $SPOKENWORD_DATA,
# else ../shared/data when it holds FSDD, else ./data (`spokenword download` fetches it).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ $# -lt 1 ]; then
  echo "usage: bash train.sh CONFIG.yaml [spokenword fit arguments ...]" >&2
  exit 2
fi
if [ ! -x "$here/.venv/bin/spokenword" ]; then
  make -C "$here" install
fi
if [ -z "${SPOKENWORD_DATA:-}" ] && [ -d "$here/../shared/data/fsdd/recordings" ]; then
  export SPOKENWORD_DATA="$here/../shared/data"
fi
exec "$here/.venv/bin/spokenword" fit --config "$@"
