#!/usr/bin/env bash
# Build, publish and run `sslight prepare` as a Dataflow flex template.
#
#   infra/dataflow/launch.sh build     build and push the worker and launcher images
#                                      (infra/Dockerfile), then write the template spec
#                                      (gcloud dataflow flex-template build)
#   infra/dataflow/launch.sh run       start a job from the template
#                                      (gcloud dataflow flex-template run)
#   infra/dataflow/launch.sh dry-run   offline: translate the job locally with Beam's
#                                      --dry_run and submit nothing
#
# Settings come from the environment; see usage below. Nothing here has been
# run against a real project from this repository (see infra/README.md).
set -euo pipefail

usage() {
  cat <<'EOF'
usage: infra/dataflow/launch.sh build|run|dry-run

build    needs PROJECT, REGION, REPOSITORY, BUCKET
run      needs PROJECT, REGION, BUCKET, SOURCE, OUT
dry-run  needs SOURCE (a local folder); OUT defaults to a temporary folder

PROJECT     Google Cloud project id
REGION      Dataflow region, e.g. europe-west4
REPOSITORY  Artifact Registry path for the images, e.g. europe-west4-docker.pkg.dev/PROJECT/sslight
BUCKET      gs://bucket[/prefix] for the template spec, staging and temp files
SOURCE      data root (gs://bucket/prefix; a local folder for dry-run)
OUT         output prefix for shards and manifest (gs://bucket/prefix)

optional: TAG (image tag; default: the git commit, or "dev"), TEMPLATE (spec
location; default $BUCKET/templates/sslight-prepare.json), CONFIG (default
dino_cnn_sslight), FORMAT, EPOCHS, SEED, LIMIT, JOB_NAME, MAX_WORKERS,
WORKER_MACHINE_TYPE, SERVICE_ACCOUNT_EMAIL, TAGS (dry-run's build tags),
SSLIGHT_BIN (dry-run: an sslight binary to use instead of building one)
EOF
}

# require NAME... checks that every named variable is set and lists all the
# missing ones at once, each with what it is for.
require() {
  local missing=0 name
  for name in "$@"; do
    if [[ -z "${!name:-}" ]]; then
      echo "launch.sh: $name is not set: $(describe "$name")" >&2
      missing=1
    fi
  done
  if ((missing)); then
    echo "launch.sh: see 'infra/dataflow/launch.sh help'" >&2
    exit 2
  fi
}

describe() {
  case "$1" in
    PROJECT) echo "the Google Cloud project id" ;;
    REGION) echo "the Dataflow region, e.g. europe-west4" ;;
    REPOSITORY) echo "the Artifact Registry path for the images, e.g. europe-west4-docker.pkg.dev/PROJECT/sslight" ;;
    BUCKET) echo "gs://bucket[/prefix] for the template spec, staging and temp files" ;;
    SOURCE) echo "the data root to prepare (gs://bucket/prefix)" ;;
    OUT) echo "the output prefix for shards and manifest (gs://bucket/prefix)" ;;
    *) echo "required" ;;
  esac
}

cmd="${1:-}"
case "$cmd" in
  build | run | dry-run) ;;
  help | -h | --help)
    usage
    exit 0
    ;;
  *)
    usage >&2
    exit 2
    ;;
esac

# Paths below are relative to the repository root.
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

if [[ -z "${TAG:-}" ]]; then
  TAG="$(git rev-parse --short=12 HEAD 2>/dev/null || echo dev)"
fi
CONFIG="${CONFIG:-dino_cnn_sslight}"

case "$cmd" in
  build)
    require PROJECT REGION REPOSITORY BUCKET
    BUCKET="${BUCKET%/}"
    TEMPLATE="${TEMPLATE:-$BUCKET/templates/sslight-prepare.json}"
    worker="$REPOSITORY/sslight-worker:$TAG"
    launcher="$REPOSITORY/sslight-flex:$TAG"
    # Dataflow workers are linux/amd64, and so is the binary in both images.
    docker build --platform=linux/amd64 -f infra/Dockerfile --target worker -t "$worker" .
    docker build --platform=linux/amd64 -f infra/Dockerfile --target flex-launcher \
      --build-arg "SDK_CONTAINER_IMAGE=$worker" -t "$launcher" .
    docker push "$worker"
    docker push "$launcher"
    gcloud dataflow flex-template build "$TEMPLATE" \
      --project="$PROJECT" \
      --image="$launcher" \
      --sdk-language=GO \
      --metadata-file=infra/dataflow/metadata.json
    echo "template: $TEMPLATE (launcher $launcher, workers $worker)"
    ;;

  run)
    require PROJECT REGION BUCKET SOURCE OUT
    BUCKET="${BUCKET%/}"
    TEMPLATE="${TEMPLATE:-$BUCKET/templates/sslight-prepare.json}"
    JOB_NAME="${JOB_NAME:-sslight-prepare-$(date -u +%Y%m%d-%H%M%S)}"
    # gcloud splits --parameters on commas unless told another delimiter
    # (gcloud topic escaping): '~' cannot occur in our values' regexes.
    params="^~^config=$CONFIG~source=$SOURCE~out=$OUT"
    [[ -n "${FORMAT:-}" ]] && params+="~format=$FORMAT"
    [[ -n "${EPOCHS:-}" ]] && params+="~epochs=$EPOCHS"
    [[ -n "${SEED:-}" ]] && params+="~seed=$SEED"
    [[ -n "${LIMIT:-}" ]] && params+="~limit=$LIMIT"
    extra=()
    [[ -n "${MAX_WORKERS:-}" ]] && extra+=(--max-workers="$MAX_WORKERS")
    [[ -n "${WORKER_MACHINE_TYPE:-}" ]] && extra+=(--worker-machine-type="$WORKER_MACHINE_TYPE")
    [[ -n "${SERVICE_ACCOUNT_EMAIL:-}" ]] && extra+=(--service-account-email="$SERVICE_ACCOUNT_EMAIL")
    gcloud dataflow flex-template run "$JOB_NAME" \
      --project="$PROJECT" \
      --region="$REGION" \
      --template-file-gcs-location="$TEMPLATE" \
      --staging-location="$BUCKET/staging" \
      --temp-location="$BUCKET/tmp" \
      --parameters="$params" \
      "${extra[@]}"
    ;;

  dry-run)
    require SOURCE
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    OUT="${OUT:-$tmp/out}"
    bin="${SSLIGHT_BIN:-}"
    if [[ -z "$bin" ]]; then
      bin="$tmp/sslight"
      go build -tags "${TAGS:-}" -o "$bin" ./cmd/sslight
    fi
    log="$tmp/dry-run.log"
    image="${REPOSITORY:-example.invalid/sslight}/sslight-worker:$TAG"
    # The listing is written to OUT before the job is translated, so OUT
    # must be writable from here: a local folder unless you have credentials.
    set +e
    SSLIGHT_LOG=info "$bin" prepare --config="$CONFIG" --source="$SOURCE" --out="$OUT" \
      ${FORMAT:+--format="$FORMAT"} ${LIMIT:+--limit="$LIMIT"} --quiet \
      --runner=dataflow --dry_run \
      --project="${PROJECT:-dry-run-project}" --region="${REGION:-europe-west4}" \
      --staging_location="${BUCKET:-gs://dry-run-bucket}/staging" \
      --temp_location="${BUCKET:-gs://dry-run-bucket}/tmp" \
      --worker_binary="$bin" --sdk_container_image="$image" >"$log" 2>&1
    rc=$?
    set -e
    # Beam translates the whole job, prints it and returns without running
    # it; prepare then finds no manifest and exits 1. The translation is
    # what a dry run checks, so success is Beam's own line.
    if grep -q 'Dry-run: not submitting job!' "$log"; then
      echo "dry-run: the job translated for Dataflow (workers: $image); nothing was submitted (sslight exit status $rc)"
      exit 0
    fi
    echo "dry-run: the job did not translate; sslight said:" >&2
    tail -n 20 "$log" >&2
    exit 1
    ;;
esac
