# tollguard — build, run, test, benchmark.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X github.com/tollguard/tollguard/internal/cli.Version=$(VERSION)
PKGS     := ./...

.PHONY: all build run demo test test-unit test-deps lint bench fuzz deb clean

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o tollguard ./cmd/tollguard

## run: the demo on embedded defaults (guard + demo PBX + simulated phones)
run demo:
	$(GO) run ./cmd/tollguard demo

## test: what CI runs — installs the Debian test peers when missing, then
## formatting, vet and every test (unit, data, integration) with the race detector.
test: test-deps lint
	$(GO) test -race -count=1 -timeout 14m $(PKGS)

test-unit: lint
	$(GO) test -short -race -count=1 $(PKGS)

test-deps:
	./scripts/install-test-deps.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

## bench: Go benchmarks of the hot paths, the proxy latency run, the standard mix against none/Kamailio/tollguard; see BENCHMARKS.md
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 $(PKGS)
	$(GO) run ./internal/bench/cmd/tgbench
	$(GO) run ./internal/bench/cmd/tgmix

## fuzz: a short run of every fuzz target (the seed corpus runs in `make test`)
fuzz:
	@for p in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$p 2>/dev/null | grep '^Fuzz'); do \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 20s $$p || exit 1; done; done

## deb: the Debian package in dist/ (DEB_DIR overrides), built with dpkg-deb
deb:
	./scripts/build-deb.sh

clean:
	rm -rf tollguard data dist
