# Two commands for users: `make run` and `make test`. Each sets itself up: a .venv in the
# repository root with pinned dependencies (`make run` the runtime only, `make test` also the
# training and test tools), ROS 2 from PyPI wheels unless a system ROS 2 is sourced (then the
# venv sees it through --system-site-packages and keeps the system's numpy and OpenCV). A second
# run skips what is already installed (a stamp file per role, keyed on its requirement files).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
# A sourced ROS 2 (ROS_DISTRO set and rclpy importable by $(PYTHON)) is used as is.
SYSTEM_ROS := $(shell [ -n "$$ROS_DISTRO" ] && $(PYTHON) -c "import rclpy" >/dev/null 2>&1 && echo yes)
STAMP_DIR := $(VENV)/.stamps
# Requirements by role (setup.py says the same without pins): requirements.txt is the runtime
# (`make run`), requirements-train.txt training and export, requirements-dev.txt the test tools
# (`make test` installs all three), requirements-ros.txt the ROS 2 wheels (not with a system
# ROS 2); constraints.txt pins the transitive dependencies of all of them.
#
# With a system ROS 2 its numpy and OpenCV stay: pip gets copies of the files without their pins
# and with numpy constrained to the system's version (scripts/venv_requirements.py), so pip
# either finds them satisfied or fails; it never installs a second numpy or OpenCV into the venv.
SYSTEM_FILTER := scripts/venv_requirements.py
ifeq ($(SYSTEM_ROS),yes)
SYSTEM_KEY := system-ros-$(ROS_DISTRO) $(shell $(PYTHON) $(SYSTEM_FILTER) --describe) $(shell sha1sum < $(SYSTEM_FILTER))
REQ_DIR := $(VENV)/.system-ros-requirements
pip_install = $(PYTHON) $(SYSTEM_FILTER) --out $(REQ_DIR) $(1) constraints.txt && \
	$(PIP) install -q -r $(REQ_DIR)/$(1) -c $(REQ_DIR)/constraints.txt
else
pip_install = $(PIP) install -q -r $(1) -c constraints.txt
endif
# One stamp per role, named after a hash of the files it installs (and of the system's numpy /
# OpenCV with a system ROS 2): a changed file reinstalls that role only.
key = $(shell (cat $(1); echo "$(SYSTEM_KEY)") | sha1sum | cut -c1-12)
stamp = @mkdir -p $(STAMP_DIR) && rm -f $(STAMP_DIR)/$(1)-* && touch $@
RUNTIME_STAMP := $(STAMP_DIR)/runtime-$(call key,requirements.txt constraints.txt setup.py)
TRAIN_STAMP := $(STAMP_DIR)/train-$(call key,requirements-train.txt constraints.txt)
DEV_STAMP := $(STAMP_DIR)/dev-$(call key,requirements-dev.txt constraints.txt)
ROS_STAMP := $(STAMP_DIR)/ros-$(if $(SYSTEM_ROS),system-$(ROS_DISTRO),$(call key,requirements-ros.txt constraints.txt))
# tensorrt-stubs, fetched (pip download --no-deps) and patched for mypy once; keyed on the script,
# which names the versions (test/backends/test_trt_typecheck.py).
TRT_STUBS_SCRIPT := scripts/trt_stubs/fetch_and_patch.py
TRT_STUBS_STAMP := $(STAMP_DIR)/trt-stubs-$(shell sha1sum < $(TRT_STUBS_SCRIPT) | cut -c1-12)

.PHONY: run test venv venv-runtime venv-mode synth-data default-model default-model-card sim chaos soak clean help
# pip must never run twice at once in one venv.
.NOTPARALLEL:

help:
	@echo "make run    segmenter_node on the shipped model, fed by the bundled bag over ROS 2 -> out/"
	@echo "make test   run the test suite"
	@echo "make test-jazzy  the ROS tests again on the ROS 2 Jazzy wheels (.venv-jazzy; CI runs both)"
	@echo "make sim    the closed loop over ROS on simulated time, scored, next to simulate -> out/sim"

$(PY):
	$(PYTHON) -m venv $(if $(SYSTEM_ROS),--system-site-packages) $(VENV)

# A venv made without a system ROS 2 cannot see one sourced later, and the other way round.
venv-mode: | $(PY)
	@if grep -qiE '^include-system-site-packages *= *true' $(VENV)/pyvenv.cfg; then made=yes; else made=; fi; \
	if [ "$$made" != "$(SYSTEM_ROS)" ]; then \
	    echo "$(VENV) was made $${made:+with}$${made:-without} --system-site-packages, but a system ROS 2 is$(if $(SYSTEM_ROS),, not) sourced now: rm -rf $(VENV) and run make again" >&2; \
	    exit 1; fi

$(RUNTIME_STAMP): | $(PY) venv-mode
	$(call pip_install,requirements.txt)
	$(PIP) install -q --no-deps --no-build-isolation -e .
	$(call stamp,runtime)

$(ROS_STAMP): | $(RUNTIME_STAMP)
ifeq ($(SYSTEM_ROS),yes)
	@echo "using the sourced ROS 2 $(ROS_DISTRO)"
else
	$(PIP) install -q -r requirements-ros.txt -c constraints.txt
endif
	$(call stamp,ros)

$(TRAIN_STAMP): | $(RUNTIME_STAMP)
	$(call pip_install,requirements-train.txt)
	$(call stamp,train)

$(DEV_STAMP): | $(RUNTIME_STAMP)
	$(call pip_install,requirements-dev.txt)
	$(call stamp,dev)

# `make run`: the runtime and ROS 2 only (no torch, onnx or matplotlib).
venv-runtime: $(RUNTIME_STAMP) $(ROS_STAMP)

# Everything: `make test` covers training and export too.
venv: venv-runtime $(TRAIN_STAMP) $(DEV_STAMP)

$(TRT_STUBS_STAMP): $(TRT_STUBS_SCRIPT) | $(DEV_STAMP)
	$(PY) $(TRT_STUBS_SCRIPT) --dest $(VENV)/trt-stubs
	$(call stamp,trt-stubs)

# The node's main job on a real ROS graph: segmenter_node + the bundled bag replayed over DDS.
run: venv-runtime
	$(PY) -m crop_weed_seg.tools.replay_demo --bag test/fixtures/sample_bag --out out

test: venv $(TRT_STUBS_STAMP)
	$(PY) -m pytest -q test

# --- `make test-jazzy`: the tests that exercise ROS, on the ROS 2 Jazzy wheels (issue 15) -------
# A second venv, .venv-jazzy: the runtime (requirements.txt, the package in editable mode) and
# the Jazzy wheels with pytest (requirements-ros-jazzy.txt), one stamp per role as for .venv.
# JAZZY_TESTS: what talks rclpy / Fast DDS or starts a node (test/ros/ without its two pure-Python
# files, the bag player, the two node tests of the parameter table); the rest of the suite does
# not depend on the distribution and runs once, in `make test` (Kilted wheels).
# With a sourced system ROS 2 there is nothing to do: `make test` runs on that distribution.
JAZZY_VENV := .venv-jazzy
JAZZY_PY := $(JAZZY_VENV)/bin/python
JAZZY_PIP := $(JAZZY_PY) -m pip --disable-pip-version-check
JAZZY_STAMP_DIR := $(JAZZY_VENV)/.stamps
JAZZY_RUNTIME_STAMP := $(JAZZY_STAMP_DIR)/runtime-$(call key,requirements.txt constraints.txt setup.py)
JAZZY_ROS_STAMP := $(JAZZY_STAMP_DIR)/ros-$(call key,requirements-ros-jazzy.txt constraints.txt)
jazzy_stamp = @mkdir -p $(JAZZY_STAMP_DIR) && rm -f $(JAZZY_STAMP_DIR)/$(1)-* && touch $@
JAZZY_TESTS := test/ros --ignore=test/ros/test_humble_api.py --ignore=test/ros/test_node_stats.py \
	test/tools/test_bag_player.py test/tools/test_sim_loop.py test/scripts/test_gazebo_acceptance.py \
	test/parameters/test_launch_config.py::test_node_declares_exactly_the_table \
	test/parameters/test_launch_config.py::test_node_reads_the_params_file_in_a_namespace
.PHONY: test-jazzy

$(JAZZY_PY):
	$(PYTHON) -m venv $(JAZZY_VENV)

$(JAZZY_RUNTIME_STAMP): | $(JAZZY_PY)
	$(JAZZY_PIP) install -q -r requirements.txt -c constraints.txt
	$(JAZZY_PIP) install -q --no-deps --no-build-isolation -e .
	$(call jazzy_stamp,runtime)

$(JAZZY_ROS_STAMP): | $(JAZZY_RUNTIME_STAMP)
	$(JAZZY_PIP) install -q -r requirements-ros-jazzy.txt -c constraints.txt
	$(call jazzy_stamp,ros)

ifeq ($(SYSTEM_ROS),yes)
test-jazzy:
	@echo "make test-jazzy: skipped: a system ROS 2 ($(ROS_DISTRO)) is sourced, and \`make test\` runs the ROS tests on it (test-jazzy is for machines without ROS: it uses the Jazzy wheels from PyPI)"
else
test-jazzy: $(JAZZY_ROS_STAMP)
	$(JAZZY_PY) -m pytest -q $(JAZZY_TESTS)
endif
# --- end of test-jazzy ---------------------------------------------------------------------------

# Reproduce the shipped default model (models/default/README.md records every command and the
# machine). Needs the real datasets beside the checkout (../shared/datasets, see
# datasets/*.yaml) and about 160 minutes of a 2-core CPU; writes runs/default_v4/model.
synth-data: venv
	$(VENV)/bin/crop-weed-seg synth --out data/synth/train --count 800 --seed 1 --preset train
	$(VENV)/bin/crop-weed-seg synth --out data/synth/heldout --count 300 --seed 3 --preset heldout

# Three stages (the card records them): stage 1 = version 2 (60 min from the synthetic-only
# model), stage 2 = version 3 (95 min more, EWS three times per epoch), stage 3 = version 4,
# the shipped one (no training step: BatchNorm statistics re-estimated, --precise-bn 200).
STAGE1_RUN := runs/default_real
STAGE2_RUN := runs/default_v3
DEFAULT_RUN := runs/default_v4
default-model: synth-data
	$(VENV)/bin/crop-weed-seg train --data datasets/peanut.yaml:train@2 \
	    --data datasets/ews.yaml:train --data data/synth/train --val-data datasets/peanut.yaml:val \
	    --test-data datasets/peanut.yaml:test --init models/synthetic --out $(STAGE1_RUN) \
	    --name default --max-minutes 60 --crop 256 --batch-size 8 --lr 2e-3 --loss ce+lovasz \
	    --workers 1 --seed 4
	$(VENV)/bin/crop-weed-seg train --data datasets/peanut.yaml:train@2 \
	    --data datasets/ews.yaml:train@3 --data data/synth/train --val-data datasets/peanut.yaml:val \
	    --test-data datasets/peanut.yaml:test --init $(STAGE1_RUN)/model --out $(STAGE2_RUN) \
	    --name default --max-minutes 95 --crop 256 --batch-size 8 --lr 1e-3 --loss ce+lovasz \
	    --workers 1 --seed 5
	$(VENV)/bin/crop-weed-seg train --data datasets/peanut.yaml:train@2 \
	    --data datasets/ews.yaml:train@3 --data data/synth/train --val-data datasets/peanut.yaml:val \
	    --test-data datasets/peanut.yaml:test --init $(STAGE2_RUN)/model --epochs 0 \
	    --precise-bn 200 --out $(DEFAULT_RUN) --name default --workers 0 --seed 5
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
# The closed loop over ROS with simulated time, scored, side by side with `simulate` (README,
# Simulation): field_sim -> segmenter_node -> spray_planner -> sim_scorer on config/sim_field.json.
sim: venv-runtime
	$(PY) -m crop_weed_seg.tools.sim_loop --field-file config/sim_field.json --out out/sim

chaos: venv
	CHAOS_SLOW=1 $(PY) -m pytest -q -s test/ros/test_chaos.py

soak: venv
	$(PY) scripts/soak.py --minutes 60 --out out/soak

clean:
	rm -rf out build install log .pytest_cache
