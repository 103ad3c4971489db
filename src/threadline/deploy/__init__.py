"""`threadline deploy`: from a clone to a working stack, job images included.

`deployer.py` runs the steps. Each AWS service has its own small client
(`cloudformation.py`, `ecr.py`, `s3.py`, `codebuild.py`) and each local tool its
own seam (`sam.py`, `engine.py`); every call and command goes through
`journal.py`, which prints it and, in a dry run, answers it without making it.
`bootstrap.py` derives the first deploy's template from template.yaml,
`images.py` names the images, `context.py` hashes and zips their sources,
`locks.py` writes the images' hash-pinned requirement locks.
"""
