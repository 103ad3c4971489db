.PHONY: demo test bench deploy

demo:
	@scripts/setup
	@.venv/bin/threadline demo

# The tests' bytecode: outside the source folders (a job folder's content names its image).
TEST_BYTECODE := $(CURDIR)/.cache/pycache

test:
	@scripts/setup --with-sam --bytecode $(TEST_BYTECODE)
	@.venv/bin/ruff check .
	@.venv/bin/mypy
	@PYTHONDONTWRITEBYTECODE= PYTHONPYCACHEPREFIX=$(TEST_BYTECODE) .venv/bin/python -m pytest -n 2

# make deploy ENV=dev|prod [DRY_RUN=1] [BUILDER=local|codebuild|auto]: see README, "Deploy to AWS".
deploy:
	@test -n "$(ENV)" || { echo "usage: make deploy ENV=dev|prod [DRY_RUN=1] [BUILDER=local|codebuild|auto]" >&2; exit 2; }
	@scripts/setup --with-sam
	@.venv/bin/threadline deploy --env $(ENV) --builder $(or $(BUILDER),auto) $(if $(DRY_RUN),--dry-run)

bench:
	@scripts/setup
	@.venv/bin/pip install --quiet -r bench/requirements.txt
	@.venv/bin/python bench/bench_preprocess.py
	@.venv/bin/python bench/bench_preprocess_bounds.py
	@.venv/bin/python bench/bench_analysis.py
	@.venv/bin/python bench/bench_lineage.py
	@.venv/bin/python bench/bench_burst.py
