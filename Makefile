# roam: build, test and try out the daemon and its testbed.
# `make test` and `make demo` need root (network namespaces) and install
# missing Debian packages first (`make deps`).

SHELL := /bin/bash
GO ?= go

.DEFAULT_GOAL := build
.PHONY: build test demo bench lint deps clean

# command:package for every program the tests and the demo run.
DEPS := ip:iproute2 tc:iproute2 nft:nftables ping:iputils-ping iperf3:iperf3 \
	wg:wireguard-tools bird:bird2 tcpdump:tcpdump nsenter:util-linux \
	unshare:util-linux setsid:util-linux taskset:util-linux mount:mount sysctl:procps \
	pgrep:procps protoc:protobuf-compiler vtysh:frr conntrack:conntrack

ROAMLAB := $(CURDIR)/bin/roamlab

# One binary per main package under cmd/: bin/roamlab, bin/roamd, bin/roamctl.
# Static (no cgo), so the labs' nodes can run them under containerlab too.
build:
	@mkdir -p bin
	@for d in $(wildcard cmd/*); do \
		[ -d "$$d" ] || continue; \
		[ "$$($(GO) list -e -f '{{.Name}}' "./$$d")" = main ] || continue; \
		echo "CGO_ENABLED=0 $(GO) build -o bin/$${d#cmd/} ./$$d"; \
		CGO_ENABLED=0 $(GO) build -o "bin/$${d#cmd/}" "./$$d" || exit 1; \
	done
	@echo "CGO_ENABLED=0 $(GO) build -o bin/ github.com/osrg/gobgp/v3/cmd/gobgp github.com/osrg/gobgp/v3/cmd/gobgpd  # the stock CLI and daemon, for the labs"
	@CGO_ENABLED=0 $(GO) build -o bin/ github.com/osrg/gobgp/v3/cmd/gobgp github.com/osrg/gobgp/v3/cmd/gobgpd

# Prints go test's own output; the exit status is go test's. Under CI=true
# (CI runs as root) any skipped test fails the run: skips are only for non-root.
# Packages run one at a time (-p 1): their labs would compete for two cores.
test: deps build
	@echo "ROAMLAB_BIN=$(ROAMLAB) $(GO) test -p 1 -count=1 -timeout 25m -v ./..."
	@export ROAMLAB_BIN='$(ROAMLAB)'; \
	$(GO) test -p 1 -count=1 -timeout 25m -v ./... 2>&1 | tee bin/test.log; \
	status=$${PIPESTATUS[0]}; \
	if [ "$${CI:-}" = true ] && grep -qE '^[[:space:]]*--- SKIP: ' bin/test.log; then \
		echo "make test: CI=true and these tests were skipped (CI runs as root; nothing may skip):"; \
		grep -E '^[[:space:]]*--- SKIP: ' bin/test.log; \
		[ "$$status" -ne 0 ] || status=1; \
	fi; \
	exit "$$status"

demo: deps build
	ROAMLAB='$(ROAMLAB)' bash testbed/demo.sh
	ROAMLAB='$(ROAMLAB)' bash testbed/demo-quality.sh
	ROAMLAB='$(ROAMLAB)' bash testbed/demo-mobile.sh

bench: build
	ROAMLAB_BIN='$(ROAMLAB)' $(GO) test -run '^$$' -bench . -benchtime 1x ./...

lint:
	@unformatted="$$(gofmt -l .)"; \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files need 'gofmt -w':"; echo "$$unformatted"; exit 1; \
	fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

# Regenerates the Go code in api/roampb from api/*.proto: protoc from Debian's
# protobuf-compiler (`make deps`), protoc-gen-go at the version go.mod pins.
# api's TestGeneratedCodeIsCurrent fails when the committed code is stale.
.PHONY: proto
proto:
	@command -v protoc >/dev/null || { \
		echo "make proto: protoc not found: run 'make deps' (Debian package protobuf-compiler)"; \
		exit 1; }
	@plugin="$$($(GO) tool -n protoc-gen-go)" || exit 1; \
	include="$$(dirname "$$(dirname "$$(command -v protoc)")")/include"; \
	echo "protoc -I api -I $$include --go_out=api/roampb --go_opt=paths=source_relative api/*.proto"; \
	protoc -I api -I "$$include" --plugin=protoc-gen-go="$$plugin" \
		--go_out=api/roampb --go_opt=paths=source_relative api/*.proto

# Installs the Debian packages of DEPS that are missing (root only) and
# downloads the Go modules. The packages' services (frr, bird, ...) are for
# the labs' nodes only and must never run in the root namespace: while
# apt-get runs, a policy-rc.d that answers 101 ("do not run") stops
# invoke-rc.d and deb-systemd-invoke from starting them (a policy-rc.d already
# there is put back afterwards, whatever happens). A freshly installed frr is
# then disabled at boot, and any FRR daemon found in the root namespace is
# stopped; make deps fails if one keeps running.
deps:
	@command -v $(GO) >/dev/null || { \
		echo "make deps: '$(GO)' not found: install Go (https://go.dev/dl; 1.21 or newer fetches the version go.mod asks for)"; \
		exit 1; }
	@export PATH="$$PATH:/usr/local/sbin:/usr/sbin:/sbin"; \
	missing=""; \
	for dep in $(DEPS); do \
		cmd="$${dep%%:*}"; pkg="$${dep#*:}"; \
		command -v "$$cmd" >/dev/null 2>&1 && continue; \
		case " $$missing " in *" $$pkg "*) ;; *) missing="$$missing $$pkg" ;; esac; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" -ne 0 ]; then \
		echo "make deps: missing Debian packages:$$missing"; \
		echo "make deps: run as root (sudo make deps), or: sudo apt-get install$$missing"; \
		exit 1; \
	fi; \
	echo "make deps: installing$$missing"; \
	policy=/usr/sbin/policy-rc.d; saved=""; \
	if [ -e "$$policy" ] || [ -L "$$policy" ]; then \
		saved="$$(mktemp -u "$$policy.make-deps.XXXXXX")" && mv "$$policy" "$$saved" || exit 1; \
	fi; \
	trap 'rm -f "$$policy"; if [ -n "$$saved" ]; then mv "$$saved" "$$policy"; fi' EXIT; \
	trap 'exit 130' INT TERM HUP; \
	printf '#!/bin/sh\n# make deps: start no service while packages install\nexit 101\n' >"$$policy" && \
	chmod 755 "$$policy" || exit 1; \
	apt-get update && \
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing || exit 1; \
	case " $$missing " in *" frr "*) \
		if [ -d /run/systemd/system ]; then systemctl disable --quiet frr; \
		else update-rc.d frr disable >/dev/null 2>&1; fi; \
		frr_pids() { pgrep --ns $$$$ --nslist net -f '^/usr/lib/frr/'; }; \
		if frr_pids >/dev/null; then \
			echo "make deps: FRR started in the root namespace; stopping it:"; \
			pgrep -a --ns $$$$ --nslist net -f '^/usr/lib/frr/'; \
			if [ -d /run/systemd/system ]; then systemctl stop frr; \
			else /usr/lib/frr/frrinit.sh stop; fi; \
			sleep 1; \
			if frr_pids >/dev/null; then \
				echo "make deps: FRR daemons still run in the root namespace:"; \
				pgrep -a --ns $$$$ --nslist net -f '^/usr/lib/frr/'; \
				exit 1; \
			fi; \
		fi ;; \
	esac
	$(GO) mod download

# Destroys every deployed lab (when roamlab was built), then removes bin/.
clean:
	@if [ -x bin/roamlab ]; then bin/roamlab destroy --all || true; fi
	rm -rf bin
