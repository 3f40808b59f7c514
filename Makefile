# sslight — the two commands a new user needs:
#   make demo   run the main job on the embedded default (real data, a local folder as the bucket)
#   make test   run the whole default test suite
# Both install what they need first (Debian packages when apt is available and we are root).

SHELL := /bin/bash
GO ?= go
BIN := bin/sslight
# The libjpeg-turbo fast path is used when its header is present (cgo build tag).
TAGS ?= $(shell test -f /usr/include/turbojpeg.h && $(GO) env CGO_ENABLED | grep -q 1 && echo turbojpeg)
APT_PACKAGES := libturbojpeg0-dev python3-numpy dataset-fashion-mnist
FMNIST_DIR ?= /usr/share/datasets/fashion-mnist
DEMO_PER_CLASS ?= 100
DEMO_CONFIG ?= configs/dino_fmnist_sslight.yaml

STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(shell $(GO) env GOPATH)/bin/staticcheck

.PHONY: all deps build test test-short test-nocgo vet lint fuzz bench demo clean

all: build

# deps installs the Debian packages the tests and the demo use. Without root
# or apt it only says what is missing: the pure-Go paths still work.
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "note: missing Debian packages:$$missing (install them with apt-get; tests that need them skip)"; \
	  fi; \
	fi

build:
	$(GO) build -tags '$(TAGS)' -o $(BIN) ./cmd/sslight

vet:
	$(GO) vet -tags '$(TAGS)' ./...

# lint: staticcheck at a pinned version (installed through the module proxy).
lint:
	@test -x $(STATICCHECK) && $(STATICCHECK) -version | grep -q '($(STATICCHECK_VERSION:v%=%))' || \
	  $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(STATICCHECK) -tags '$(TAGS)' ./...

# test: the default suite (about 7 minutes on 2 cores with a cold build cache).
test: deps vet lint
	$(GO) test -tags '$(TAGS)' -timeout 30m ./...
	CGO_ENABLED=0 $(GO) test -timeout 10m ./augment/...
	$(GO) test -race -timeout 20m ./augment/... ./transforms/...

test-short: deps
	$(GO) test -tags '$(TAGS)' -short ./...

bench: deps build
	$(GO) test -tags '$(TAGS)' -run '^$$' -bench . -benchtime 3s ./augment/... ./sinks/...

# demo: export Fashion-MNIST (real data) as an ImageNet-layout folder of PNGs
# in a local folder that plays the bucket, then prepare multi-crop shards.
demo: deps build
	@test -f $(FMNIST_DIR)/train-images-idx3-ubyte.gz || { echo "Fashion-MNIST not found in $(FMNIST_DIR): install the Debian package dataset-fashion-mnist, or run 'make demo FMNIST_DIR=<folder with the IDX files>'"; exit 1; }
	$(BIN) dataset export-idx --images $(FMNIST_DIR)/train-images-idx3-ubyte.gz --labels $(FMNIST_DIR)/train-labels-idx1-ubyte.gz \
	  --per-class $(DEMO_PER_CLASS) --out runs/bucket/fashion-mnist/train
	$(BIN) prepare --config $(DEMO_CONFIG) --format imagenet --source runs/bucket/fashion-mnist/train \
	  --out runs/demo/shards --epochs 2 --seed 0

clean:
	rm -rf bin runs
