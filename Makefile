# Two commands: `make demo` and `make test`.  Everything installs into .venv here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PLUGINS := plugins/stylegan plugins/pggan plugins/biggan plugins/attention_center plugins/attention_gradcam plugins/studio
# plugins whose tests need packages of their own: installed with their [test] extra
PLUGINS_WITH_TEST_EXTRA := plugins/studio
EXAMPLE_PLUGIN := docs/example_plugin
STAMP := $(VENV)/.installed
DEMO_OUT ?= runs/demo

.PHONY: install test test-all demo lint clean

install: $(STAMP)

$(STAMP): pyproject.toml $(addsuffix /pyproject.toml,$(PLUGINS)) $(EXAMPLE_PLUGIN)/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "ganenc needs Python 3.11 or newer (set PYTHON=...)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=23.1"
	$(BIN)/python -m pip install --quiet -e ".[test]" \
		$(foreach p,$(PLUGINS),-e "$(p)$(if $(filter $(p),$(PLUGINS_WITH_TEST_EXTRA)),[test])") \
		-e $(EXAMPLE_PLUGIN)
	touch $(STAMP)

test: install
	$(BIN)/ruff check .
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(BIN)/python -m pytest -n 2 -q

test-all: install
	$(BIN)/python -m pytest -n 2 -q -m ""

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

demo: install
	rm -rf $(DEMO_OUT)
	$(BIN)/ganenc list
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(BIN)/ganenc train --gan stylegan2 --attention gradcam \
		--checkpoint random --resolution 64 -O channel_max=64 --encoder-option max_channels=64 \
		--feature-weights random --iterations 40 --batch-size 4 --val-samples 16 \
		--image-every 20 --checkpoint-every 20 --out $(DEMO_OUT)/train
	@echo
	@echo "Demo finished. Results in $(DEMO_OUT)/train:"
	@echo "  images/step-*.png   target | reconstruction | AT1 and AT2 crops (Grad-CAM boxes)"
	@echo "  val.png, val.json   held-out reconstructions vs. decoding the average latent"
	@echo "  metrics.jsonl, config.json, versions.json, checkpoints/, encoder.pt"
	@echo "This is a RANDOM 64 px StyleGAN2 with RANDOM VGG16 features: it shows the pipeline runs, not quality."

clean:
	rm -rf $(VENV) build *.egg-info plugins/*/*.egg-info $(EXAMPLE_PLUGIN)/*.egg-info
