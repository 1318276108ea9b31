# The README's two commands: `make demo` and `make test`. Everything else is set-up they call.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages the test suite uses: a real PostgreSQL server for the store tests,
# headless Chromium for the report and dashboard checks, an offline English thesaurus
# for synonym edits, espeak-ng for spoken test clips.
APT_PACKAGES := postgresql chromium mythes-en-us wordnet-base espeak-ng

.PHONY: demo test lint bench sysdeps clean venv

$(STAMP): pyproject.toml requirements/constraints.txt
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements/constraints.txt -e ".[all,dev]"
	touch $(STAMP)

venv: $(STAMP)

# Installs the Debian packages above when they are missing (needs root, as in CI).
sysdeps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = "0" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else \
		echo "note: missing Debian packages:$$missing (the tests that need them skip); install them as root"; \
	fi

demo: $(STAMP)
	$(BIN)/perturbkit demo --out demo-output

test: $(STAMP) sysdeps
	$(BIN)/ruff check src tests benchmarks examples tools
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples tools
	$(BIN)/ruff format --check src tests benchmarks examples tools

bench: $(STAMP)
	$(BIN)/python benchmarks/engine_overhead.py
	$(BIN)/python benchmarks/bounds.py
	$(BIN)/python benchmarks/optim.py
	$(BIN)/python benchmarks/modalities/image.py
	$(BIN)/python benchmarks/modalities/text.py
	$(BIN)/python benchmarks/modalities/audio.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache
