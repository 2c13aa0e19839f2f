# Kiln's two commands: `make run` and `make test`. Both install what they need first, and
# skip whatever is already there.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := run

CARGO_LEPTOS_VERSION := 0.3.5
# Debian's binaryen (108) breaks wasm-bindgen's reference-typed table; 116 does not.
WASM_OPT_VERSION := 0.116.1
# wasm-bindgen-cli must match the wasm-bindgen crate in Cargo.lock to the patch.
WASM_BINDGEN_VERSION := $(shell awk '/^name = "wasm-bindgen"$$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

# Tools installed by `cargo install` come before any older copy elsewhere on the PATH.
export PATH := $(or $(CARGO_HOME),$(HOME)/.cargo)/bin:$(PATH)

KILN := target/release/kiln
SITE_ROOT := target/site

.PHONY: run test tools browser-tools build check-format lint rust-tests end2end clean

## run: build Kiln and serve it on 127.0.0.1:3000 with the data in ./data and a demo project
run: tools build
	$(KILN) serve --site-root $(SITE_ROOT) --demo-project

## test: formatting, clippy (server and browser builds), Rust tests, Playwright in Chromium
test: tools browser-tools check-format lint rust-tests end2end

tools:
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	@if [ "$$(cargo leptos --version 2>/dev/null | awk '{print $$2}')" != "$(CARGO_LEPTOS_VERSION)" ]; then \
		cargo install cargo-leptos --locked --version $(CARGO_LEPTOS_VERSION); fi
	@if [ "$$(wasm-bindgen --version 2>/dev/null | awk '{print $$2}')" != "$(WASM_BINDGEN_VERSION)" ]; then \
		cargo install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION); fi
	@if ! wasm-opt --version 2>/dev/null | grep -q 'version 116'; then \
		cargo install wasm-opt --locked --version $(WASM_OPT_VERSION); fi

browser-tools:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }
	@cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error

# cargo-leptos regenerates the browser bundle on every call; make skips it when no source
# changed since the last build, so a second `make run` starts at once. cargo-leptos builds
# only `kiln`; `fake-bitbake`, which the demo project runs, is a package of its own built
# beside it.
SOURCES := Cargo.toml Cargo.lock $(shell find app frontend server migration style public -type f -not -path '*/target/*')
BUILT := target/site/.built

build: $(BUILT)

$(BUILT): $(SOURCES)
	cargo leptos build --release
	cargo build --release -p fake-bitbake
	@touch $@

check-format:
	cargo fmt --all -- --check

lint:
	cargo clippy -p app -p server -p migration -p fake-bitbake --features app/ssr --all-targets -- -D warnings
	cargo clippy -p app -p frontend --features app/hydrate --target wasm32-unknown-unknown -- -D warnings

# The API tests run the `fake-bitbake` program, which `cargo test` builds only as a test
# harness: build the program itself first.
rust-tests:
	cargo test -p app --features ssr
	cargo build -p fake-bitbake
	cargo test -p server -p migration -p fake-bitbake

# Playwright starts `kiln serve` on a free port with a fresh data directory.
end2end: build
	@port=$$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"); \
	data=$$(mktemp -d); trap 'rm -rf "$$data"' EXIT; \
	cd end2end && KILN_E2E_PORT=$$port KILN_E2E_DATA_DIR=$$data/data \
		KILN_E2E_BINARY=../$(KILN) KILN_E2E_SITE_ROOT=../$(SITE_ROOT) npx playwright test

clean:
	cargo clean
	rm -rf end2end/node_modules end2end/test-results
