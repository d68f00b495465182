# Two commands for users: `make run` and `make test`. Each sets itself up: a .venv in the
# repository root with pinned dependencies, ROS 2 from PyPI wheels unless a system ROS 2 is
# sourced (then the venv sees it through --system-site-packages). A second run skips what is
# already installed (stamp files keyed on the requirement files).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
# A sourced ROS 2 (ROS_DISTRO set and rclpy importable by $(PYTHON)) is used as is.
SYSTEM_ROS := $(shell [ -n "$$ROS_DISTRO" ] && $(PYTHON) -c "import rclpy" >/dev/null 2>&1 && echo yes)
STAMP_DIR := $(VENV)/.stamps
CORE_STAMP := $(STAMP_DIR)/core-$(shell cat requirements.txt constraints.txt requirements-dev.txt setup.py | sha1sum | cut -c1-12)
# tensorrt-stubs, fetched (pip download --no-deps) and patched for mypy once; keyed on the script,
# which names the versions (test/backends/test_trt_typecheck.py).
TRT_STUBS_SCRIPT := scripts/trt_stubs/fetch_and_patch.py
TRT_STUBS_STAMP := $(STAMP_DIR)/trt-stubs-$(shell sha1sum < $(TRT_STUBS_SCRIPT) | cut -c1-12)
ROS_STAMP := $(STAMP_DIR)/ros-$(if $(SYSTEM_ROS),system-$(ROS_DISTRO),$(shell sha1sum < requirements-ros.txt | cut -c1-12))

.PHONY: run test venv synth-data default-model default-model-card chaos soak clean help

help:
	@echo "make run    segmenter_node on the shipped model, fed by the bundled bag over ROS 2 -> out/"
	@echo "make test   run the test suite"

$(PY):
	$(PYTHON) -m venv $(if $(SYSTEM_ROS),--system-site-packages) $(VENV)

$(CORE_STAMP): | $(PY)
	$(PIP) install -q -r requirements.txt -r requirements-dev.txt -c constraints.txt
	$(PIP) install -q --no-deps --no-build-isolation -e .
	@mkdir -p $(STAMP_DIR) && rm -f $(STAMP_DIR)/core-* && touch $@

$(ROS_STAMP): | $(PY)
ifeq ($(SYSTEM_ROS),yes)
	@echo "using the sourced ROS 2 $(ROS_DISTRO)"
else
	$(PIP) install -q -r requirements-ros.txt
endif
	@mkdir -p $(STAMP_DIR) && rm -f $(STAMP_DIR)/ros-* && touch $@

venv: $(CORE_STAMP) $(ROS_STAMP)

$(TRT_STUBS_STAMP): $(TRT_STUBS_SCRIPT) | $(CORE_STAMP)
	$(PY) $(TRT_STUBS_SCRIPT) --dest $(VENV)/trt-stubs
	@mkdir -p $(STAMP_DIR) && rm -f $(STAMP_DIR)/trt-stubs-* && touch $@

# The node's main job on a real ROS graph: segmenter_node + the bundled bag replayed over DDS.
run: venv
	$(PY) -m crop_weed_seg.tools.replay_demo --bag test/fixtures/sample_bag --out out

test: venv $(TRT_STUBS_STAMP)
	$(PY) -m pytest -q test

# Reproduce the shipped default model (models/default/README.md records every command and the
# machine). Needs the real datasets beside the checkout (../shared/datasets, see
# datasets/*.yaml) and about 70 minutes of a 2-core CPU; writes runs/default_real/model.
synth-data: venv
	$(VENV)/bin/crop-weed-seg synth --out data/synth/train --count 800 --seed 1 --preset train
	$(VENV)/bin/crop-weed-seg synth --out data/synth/heldout --count 300 --seed 3 --preset heldout

DEFAULT_RUN := runs/default_real
default-model: synth-data
	$(VENV)/bin/crop-weed-seg train --data datasets/peanut.yaml:train@2 \
	    --data datasets/ews.yaml:train --data data/synth/train --val-data datasets/peanut.yaml:val \
	    --test-data datasets/peanut.yaml:test --init models/synthetic --out $(DEFAULT_RUN) \
	    --name default --max-minutes 60 --crop 256 --batch-size 8 --lr 2e-3 --loss ce+lovasz \
	    --workers 1 --seed 4
	$(MAKE) default-model-card MODEL=$(DEFAULT_RUN)/model

# Scores recorded in a model card: real test and validation sets, baselines, robustness.
MODEL ?= models/default
default-model-card: venv
	$(VENV)/bin/crop-weed-seg eval --model $(MODEL) --data datasets/ews.yaml:validation --quiet --add-to-card ews_val
	$(VENV)/bin/crop-weed-seg eval --model $(MODEL) --data data/synth/heldout --quiet --add-to-card synthetic_heldout
	$(VENV)/bin/crop-weed-seg eval --model exg-otsu --data datasets/peanut.yaml:test --quiet --add-to-card test_exg_otsu --card $(MODEL)
	$(VENV)/bin/crop-weed-seg eval --model exg-otsu --data datasets/ews.yaml:validation --quiet --add-to-card ews_val_exg_otsu --card $(MODEL)
	$(VENV)/bin/crop-weed-seg eval --model classical --data datasets/ews.yaml:validation --quiet --add-to-card ews_val_classical --card $(MODEL)
	$(VENV)/bin/crop-weed-seg eval --model classical --data data/synth/heldout --quiet --add-to-card synthetic_heldout_classical --card $(MODEL)
	$(VENV)/bin/crop-weed-seg eval --model $(MODEL) --data datasets/peanut.yaml:test --quiet --robustness --add-to-card peanut_test

# Reliability probes (docs/RELIABILITY.md): the chaos suite with its slow variants, and the
# one-hour soak at 30 Hz 640x480 through both nodes.
chaos: venv
	CHAOS_SLOW=1 $(PY) -m pytest -q -s test/ros/test_chaos.py

soak: venv
	$(PY) scripts/soak.py --minutes 60 --out out/soak

clean:
	rm -rf out build install log .pytest_cache
