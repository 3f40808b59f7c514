#!/usr/bin/env bash
# Entry point of the Dataflow flex-template launcher image (FLEX_TEMPLATE_GO_BINARY).
#
# Google's Go launcher runs one binary with the template's parameters and the
# job's options as --name=value flags; sslight wants its sub-command first,
# hence this wrapper. The flags set here come first, so any the launcher
# passes (--runner, --project, ...) win: Go's flag package keeps the last value.
set -euo pipefail

bin="${SSLIGHT_BIN:-/usr/local/bin/sslight}"
args=(
  prepare
  --runner=dataflow
  # Beam cannot build a worker inside the launcher (no Go toolchain there);
  # this binary is linux/amd64 and links the same libraries as the worker image.
  --worker_binary="$bin"
  # A progress bar in launcher logs is noise.
  --quiet
)
if [[ -n "${SSLIGHT_SDK_CONTAINER_IMAGE:-}" ]]; then
  args+=(--sdk_container_image="$SSLIGHT_SDK_CONTAINER_IMAGE")
fi
exec "$bin" "${args[@]}" "$@"
