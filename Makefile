.PHONY: demo test bench

demo:
	@scripts/setup
	@.venv/bin/threadline demo

test:
	@scripts/setup --with-sam
	@.venv/bin/ruff check .
	@.venv/bin/mypy
	@.venv/bin/python -m pytest -n 2

bench:
	@scripts/setup
	@.venv/bin/pip install --quiet -r bench/requirements.txt
	@.venv/bin/python bench/bench_preprocess.py
	@.venv/bin/python bench/bench_preprocess_bounds.py
	@.venv/bin/python bench/bench_analysis.py
	@.venv/bin/python bench/bench_lineage.py
	@.venv/bin/python bench/bench_burst.py
