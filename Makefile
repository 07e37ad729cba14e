# gridmap: `make demo` runs the Jiashan demo, `make test` runs the tests. Both set up what they need.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | md5sum | cut -c1-8)
ASSETS := maps/assets/node_modules/.installed-$(shell cat maps/assets/package-lock.json 2>/dev/null | md5sum | cut -c1-8)
PYTEST_ARGS ?=

.PHONY: install system assets db demo demo-province serve test lint bench clean

# OS packages the demo and tests use (PostgreSQL/PostGIS are installed by `gridmap db up` itself).
system:
	@missing=""; \
	$(PY) -c "import venv, ensurepip" 2>/dev/null || missing="$$missing python3-venv"; \
	command -v npm >/dev/null || missing="$$missing nodejs npm"; \
	command -v ogrinfo >/dev/null || missing="$$missing gdal-bin"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing="$$missing fonts-wqy-microhei"; \
	if [ -n "$$missing" ]; then \
	  if ! command -v apt-get >/dev/null; then echo "please install:$$missing"; exit 1; fi; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo"; \
	  echo "installing OS packages:$$missing"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml
	$(MAKE) system
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

$(ASSETS): maps/assets/package.json
	@if [ -f maps/assets/package-lock.json ]; then npm ci --silent --ignore-scripts --no-audit --no-fund --prefix maps/assets; \
	 else npm install --silent --ignore-scripts --no-audit --no-fund --prefix maps/assets; fi
	rm -f maps/assets/node_modules/.installed-*
	touch $(ASSETS)

install: $(STAMP) $(ASSETS)

assets: $(ASSETS)

db: install
	$(BIN)/gridmap db up

demo: db
	$(BIN)/gridmap demo

# The province demo (issue #20): its own database (gridmap_province), Jiashan plus 9 synthetic
# Zhejiang counties, a key for the province centre and one per county; COUNTIES=N for more.
COUNTIES ?= 10
demo-province: db
	$(BIN)/gridmap demo-province --counties $(COUNTIES)

serve: db
	$(BIN)/gridmap serve

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy gis api boundaries maps demo

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy gis api boundaries maps demo
	$(BIN)/gridmap db up
	@# Two pytest processes (one database each) on the two cores; then, alone, the tests that
	@# restart the cluster every other test shares.
	$(BIN)/pytest -n 2 -m "not exclusive" $(PYTEST_ARGS)
	$(BIN)/pytest -m exclusive $(PYTEST_ARGS)

bench: db
	@command -v wrk >/dev/null || { SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq wrk >/dev/null; }
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	-$(BIN)/gridmap db down
	rm -rf var
