.PHONY: demo test bench

demo:
	@scripts/setup
	@.venv/bin/threadline demo

test:
	@scripts/setup --with-sam
	@.venv/bin/python -m pytest -n 2

bench:
	@scripts/setup
	@.venv/bin/pip install --quiet -r bench/requirements.txt
	@.venv/bin/python -m bench
