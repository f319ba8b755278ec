# Two commands: `make demo` and `make test`.  Everything installs into .venv here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PLUGINS := plugins/stylegan plugins/pggan plugins/biggan plugins/attention_center plugins/attention_gradcam plugins/studio
# plugins whose tests need packages of their own: installed with their [test] extra
PLUGINS_WITH_TEST_EXTRA := plugins/studio
EXAMPLE_PLUGINS := docs/example_plugin docs/example_gan
STAMP := $(VENV)/.installed
DEMO_OUT ?= runs/demo
# what the demo writes in DEMO_OUT (a rerun replaces these, nothing else), and its mark there
DEMO_PARTS := train invert refined tones directions edits summary.png
DEMO_MARK := .ganenc-demo
EMOJI := core/emoji
DEMO_ENV := GANENC_OFFLINE=1 OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2}

.PHONY: install test test-all demo demo-folder lint clean

install: $(STAMP)

$(STAMP): pyproject.toml $(addsuffix /pyproject.toml,$(PLUGINS)) $(addsuffix /pyproject.toml,$(EXAMPLE_PLUGINS))
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "ganenc needs Python 3.11 or newer (set PYTHON=...)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=23.1"
	$(BIN)/python -m pip install --quiet -e ".[test]" \
		$(foreach p,$(PLUGINS),-e "$(p)$(if $(filter $(p),$(PLUGINS_WITH_TEST_EXTRA)),[test])") \
		$(addprefix -e ,$(EXAMPLE_PLUGINS))
	touch $(STAMP)

test: install
	$(BIN)/ruff check .
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(BIN)/python -m pytest -n 2 -q

test-all: install
	$(BIN)/python -m pytest -n 2 -q -m ""

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

# DEMO_OUT: new, empty or an earlier demo's (marked); an earlier demo's own outputs are replaced
demo-folder:
	@if [ -e "$(DEMO_OUT)" ] && [ ! -e "$(DEMO_OUT)/$(DEMO_MARK)" ] \
		&& { [ ! -d "$(DEMO_OUT)" ] || [ -n "$$(ls -A "$(DEMO_OUT)")" ]; }; then \
		echo "error: DEMO_OUT=$(DEMO_OUT) holds files 'make demo' did not write; choose a new or empty DEMO_OUT (nothing was deleted)" >&2; \
		exit 2; fi
	rm -rf $(addprefix $(DEMO_OUT)/,$(DEMO_PARTS))
	mkdir -p $(DEMO_OUT) && touch $(DEMO_OUT)/$(DEMO_MARK)

demo: install demo-folder
	$(BIN)/ganenc list
	@echo; echo "== the headline command: pre-train an encoder for the shipped emoji StyleGAN2 (short run)"
	$(DEMO_ENV) $(BIN)/ganenc train --gan stylegan2 --checkpoint stylegan2:emoji-64 --attention gradcam \
		--crop-option classifier=emoji-cnn --config examples/emoji-loss.yaml \
		--encoder-option start_channels=32 --encoder-option max_channels=256 \
		--iterations 60 --batch-size 8 --val-samples 16 --image-every 30 --checkpoint-every 30 \
		--no-progress --out $(DEMO_OUT)/train
	@echo; echo "== invert 16 held-out real emoji with the shipped pre-trained encoder, then hybrid refinement"
	$(DEMO_ENV) $(BIN)/ganenc invert --encoder encoder:stylegan2-emoji-64 --images $(EMOJI)/heldout --out $(DEMO_OUT)/invert
	$(DEMO_ENV) $(BIN)/ganenc invert --encoder encoder:stylegan2-emoji-64 --images $(EMOJI)/heldout \
		--refine optimize --steps 50 --out $(DEMO_OUT)/refined
	@echo; echo "== a label direction (has_skin_tone) from 60 labelled emoji, and edit strips along it"
	$(DEMO_ENV) $(BIN)/ganenc invert --encoder encoder:stylegan2-emoji-64 --images $(EMOJI)/skin-tones --out $(DEMO_OUT)/tones
	$(DEMO_ENV) $(BIN)/ganenc directions --latents $(DEMO_OUT)/tones --labels $(EMOJI)/skin-tones.csv \
		--attribute has_skin_tone --space w_plus --out $(DEMO_OUT)/directions
	$(DEMO_ENV) $(BIN)/ganenc edit --latents $(DEMO_OUT)/invert --direction $(DEMO_OUT)/directions/has_skin_tone.pt \
		--strengths=-2,0,2,4 --out $(DEMO_OUT)/edits
	$(DEMO_ENV) $(BIN)/python examples/demo_summary.py $(DEMO_OUT)

clean:
	rm -rf $(VENV) build *.egg-info plugins/*/*.egg-info $(addsuffix /*.egg-info,$(EXAMPLE_PLUGINS))
