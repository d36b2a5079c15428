# idbench: `make run` (main job on the embedded sample) and `make test` (the test suite).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.idbench-installed
OUT    ?= runs/sample

.PHONY: run test test-quick install clean-venv results docs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade "pip>=24"

# The tested install: exact pins here, ranges in pyproject.toml (the base package is numpy + scipy
# only; the [bench] extra carries the command line's dependencies, [test] the suite's).
# Install order matters: torch from the pinned wheels first, then the project with its extras,
# then facenet-pytorch without its (torch<2.3) pins, then one single OpenCV
# distribution (insightface pulls opencv-python, mediapipe opencv-contrib-python;
# both write the same cv2 package, so we keep exactly one: the contrib build).
$(STAMP): $(BIN)/python pyproject.toml Makefile
	$(BIN)/pip install -q "torch==2.14.1" "torchvision==0.29.1"
	$(BIN)/pip install -q -e ".[bench,test]" "mediapipe==0.10.21" "onnx2torch==1.5.15"
	$(BIN)/pip install -q --no-deps "facenet-pytorch==2.6.0" "face_recognition==1.3.0"
	-$(BIN)/pip uninstall -y -q opencv-python opencv-python-headless opencv-contrib-python-headless
	$(BIN)/pip install -q --force-reinstall --no-deps "opencv-contrib-python==4.11.0.86"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/bench run --dataset sample --encoders dlib,dlib.resnet_v1_torch --swappers blend --out $(OUT)

# docs/results.md "Results measured here": regenerated from the runs (long; SECTIONS=all adds LFW, BlendFace, speed)
SECTIONS ?= shared
results: $(STAMP)
	$(BIN)/python -m idbench.bench.results --sections $(SECTIONS) --write docs/results.md

# the generated parts of docs/ (metric tables from the catalogue, registry tables from the specs);
# tests/test_docs_generated.py fails when they are stale
docs: $(STAMP)
	$(BIN)/python -m idbench.bench.docs --write

test: $(STAMP)
	$(BIN)/python -m pytest -q

# development loop: the unit tier only (tests/conftest.py marks each module unit or e2e), no slow tests
test-quick: $(STAMP)
	$(BIN)/python -m pytest -q -m "unit and not slow"

clean-venv:
	rm -rf $(VENV)
