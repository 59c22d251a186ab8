# Every target installs into .venv first, so each is one command on a fresh clone.
VENV   := .venv
PY     := $(VENV)/bin/python
AIGC   := $(VENV)/bin/aigc
STAMP  := $(VENV)/.installed

.PHONY: install demo test bench docs figures lint clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,tensorboard,report,docs,hf,assistant,bench]'
	touch $(STAMP)

demo: $(STAMP)
	$(AIGC) train diffusion --data digits --kimg 80 --out runs/demo --overwrite
	$(AIGC) sample runs/demo --n 64 --seeds 0-63 --out runs/demo/grid.png
	$(AIGC) report runs/demo
	$(AIGC) train lm --minutes 1 --out runs/demo-lm --overwrite
	$(AIGC) sample runs/demo-lm --prompt "The " --max-tokens 300 --seed 0
	@echo "demo: the sample grid is runs/demo/grid.png; curves and snapshots in runs/demo/report.html;"
	@echo "      the text above is runs/demo-lm, a language model of the Python docs trained for a minute"

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) benchmarks/run.py --mnist-minutes 10 --gan-minutes 10 --ddp-minutes 2 --serve-requests 200 --compress-n 2000 --text-decoding --lm-recipes-tokens 8904704 --lm-minutes 10 --lm-serving --finetune-minutes 3 --t2i-minutes 10 --quality-minutes 10 --sentiment-minutes 5 --reuters-minutes 10 --assistant-minutes 10 --assistant-pretrain-minutes 10 --assistant-classifier-minutes 3 --recommender-minutes 10 --recommender-pretrain-minutes 10 --recommender-text-minutes 3

docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict
	@echo "docs: the site is in site/ (open site/index.html)"

figures: $(STAMP)
	$(PY) benchmarks/figures.py

lint: $(STAMP)
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) runs site
