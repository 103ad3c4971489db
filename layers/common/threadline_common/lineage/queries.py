"""Every openCypher text threadline sends to the lineage graph.

The same text runs on Amazon Neptune and on the twin's embedded graph
(ladybug), so it keeps to what both accept:

- one label per node; every node is MERGEd on its `~id` (`ids.py`), Neptune's
  only unique key and the embedded graph's primary key, and every query that
  starts from a known node finds it by its `~id`;
- writes are `UNWIND $rows AS row` batches whose rows hold only strings,
  integers and nulls (no map-valued properties, no `SET n += map`);
- numbers that may be unknown (exit codes, object sizes) are written by their
  own query with only the rows that know them: the embedded graph types a
  parameter field that is null in every row as STRING and then refuses to
  store it in an INT64 property;
- times are ISO-8601 strings in one format (`times.py`); no `type(r)` (the relationship type is
  returned as a literal); every variable-length path has an upper bound of
  at most 30 (the embedded graph's limit);
- no type-conversion functions (`toInteger` and friends do not exist in the
  embedded graph), `ORDER BY` only at the end of a query, and short variable
  names (the embedded graph reserves words such as `primary`).

Writes are idempotent: nodes are MERGEd on their `~id` and relationships between
nodes found by theirs, so writing the same event twice, or two writers writing it
at once, creates nothing new. Nothing is ever deleted.
"""

# --- writes -----------------------------------------------------------------
# A node write MERGEs one node on its `~id` (`ids.py`), gives it its natural key ON CREATE and
# sets its properties; relationships are written by queries of their own, between nodes found
# by their `~id`. The pipeline (the OpenLineage job namespace) is a property of the Run, not
# a node that every run links to: one vertex with an edge from every run would be what
# every concurrent writer touches, and what the embedded graph scans on each new run.

MERGE_RUN_STARTED = """
UNWIND $rows AS row
MERGE (r:Run {`~id`: row.run_node})
ON CREATE SET r.run_id = row.run_id, r.pipeline = row.pipeline, r.status = 'RUNNING'
SET r.execution_arn = coalesce(row.execution_arn, r.execution_arn),
    r.started_at = coalesce(r.started_at, row.started_at)
"""

# The Run of a job whose Batch event came in: created RUNNING if new, otherwise left as it is.
MERGE_RUN_SEEN = """
UNWIND $rows AS row
MERGE (r:Run {`~id`: row.run_node})
ON CREATE SET r.run_id = row.run_id, r.pipeline = row.pipeline, r.status = 'RUNNING'
"""

MERGE_RUN_FINISHED = """
UNWIND $rows AS row
MERGE (r:Run {`~id`: row.run_node})
ON CREATE SET r.run_id = row.run_id, r.pipeline = row.pipeline
SET r.status = row.status,
    r.execution_arn = coalesce(row.execution_arn, r.execution_arn),
    r.ended_at = row.ended_at,
    r.error = row.error,
    r.cause = row.cause
"""

MERGE_DATASETS = """
UNWIND $rows AS row
MERGE (d:Dataset {`~id`: row.dataset_node})
ON CREATE SET d.dataset_id = row.dataset_id
SET d.uri = row.uri,
    d.kind = row.kind,
    d.version = coalesce(row.version, d.version),
    d.etag = coalesce(row.etag, d.etag)
"""

SET_DATASET_SIZES = """
UNWIND $rows AS row
MATCH (d:Dataset {`~id`: row.dataset_node})
SET d.size = row.size
"""

SET_DATASET_ROW_COUNTS = """
UNWIND $rows AS row
MATCH (d:Dataset {`~id`: row.dataset_node})
SET d.row_count = row.row_count
"""

SET_DATASET_SCHEMAS = """
UNWIND $rows AS row
MATCH (d:Dataset {`~id`: row.dataset_node})
SET d.schema = row.schema,
    d.schema_hash = row.schema_hash
"""

LINK_DATASET_PART_OF = """
UNWIND $rows AS row
MATCH (a:Dataset {`~id`: row.src})
MATCH (b:Dataset {`~id`: row.dst})
MERGE (a)-[:PART_OF]->(b)
"""

LINK_RUN_CONSUMED = """
UNWIND $rows AS row
MATCH (r:Run {`~id`: row.run_node})
MATCH (d:Dataset {`~id`: row.dataset_node})
MERGE (r)-[:CONSUMED]->(d)
"""

MERGE_STEP_ATTEMPTS = """
UNWIND $rows AS row
MERGE (a:StepAttempt {`~id`: row.attempt_node})
ON CREATE SET a.attempt_id = row.attempt_id
SET a.step = row.step,
    a.job_key = row.job_key,
    a.seq = row.seq,
    a.job_id = row.job_id,
    a.job_name = row.job_name,
    a.queue = row.queue,
    a.capacity = row.capacity,
    a.job_definition = row.job_definition,
    a.attempt = row.attempt,
    a.status = row.status,
    a.status_reason = row.status_reason,
    a.node_count = row.node_count,
    a.image = row.image,
    a.parameters_json = row.parameters_json,
    a.log_stream = row.log_stream,
    a.started_at = row.started_at,
    a.ended_at = row.ended_at,
    a.cache_key = row.cache_key
"""

# A job's attempts from Batch's own "Job State Change" event, which may come before or after
# `run_finished`. What only the run knows (the attempt's place in the run, its cache key,
# the key the state machine filed the job under) is kept when `run_finished` wrote it first,
# and replaced when it comes later (MERGE_STEP_ATTEMPTS sets everything). The rest is the
# same job description either way.
MERGE_JOB_ATTEMPTS = """
UNWIND $rows AS row
MERGE (a:StepAttempt {`~id`: row.attempt_node})
ON CREATE SET a.attempt_id = row.attempt_id
SET a.step = coalesce(a.step, row.step),
    a.job_key = coalesce(a.job_key, row.job_key),
    a.seq = coalesce(a.seq, row.seq),
    a.job_id = row.job_id,
    a.job_name = row.job_name,
    a.queue = row.queue,
    a.capacity = row.capacity,
    a.job_definition = row.job_definition,
    a.attempt = row.attempt,
    a.status = row.status,
    a.status_reason = row.status_reason,
    a.node_count = row.node_count,
    a.image = row.image,
    a.parameters_json = row.parameters_json,
    a.log_stream = row.log_stream,
    a.started_at = row.started_at,
    a.ended_at = row.ended_at,
    a.cache_key = coalesce(a.cache_key, row.cache_key)
"""

LINK_ATTEMPT_PART_OF = """
UNWIND $rows AS row
MATCH (a:StepAttempt {`~id`: row.attempt_node})
MATCH (r:Run {`~id`: row.run_node})
MERGE (a)-[:PART_OF]->(r)
"""

SET_ATTEMPT_EXIT_CODES = """
UNWIND $rows AS row
MATCH (a:StepAttempt {`~id`: row.attempt_node})
SET a.exit_code = row.exit_code
"""

LINK_ATTEMPT_CONSUMED = """
UNWIND $rows AS row
MATCH (a:StepAttempt {`~id`: row.attempt_node})
MATCH (d:Dataset {`~id`: row.dataset_node})
MERGE (a)-[:CONSUMED]->(d)
"""

LINK_ATTEMPT_PRODUCED = """
UNWIND $rows AS row
MATCH (a:StepAttempt {`~id`: row.attempt_node})
MATCH (d:Dataset {`~id`: row.dataset_node})
MERGE (a)-[:PRODUCED]->(d)
"""

LINK_RETRY_OF = """
UNWIND $rows AS row
MATCH (a:StepAttempt {`~id`: row.src})
MATCH (b:StepAttempt {`~id`: row.dst})
MERGE (a)-[:RETRY_OF]->(b)
"""

LINK_FALLBACK_OF = """
UNWIND $rows AS row
MATCH (a:StepAttempt {`~id`: row.src})
MATCH (b:StepAttempt {`~id`: row.dst})
MERGE (a)-[:FALLBACK_OF]->(b)
"""

LINK_FOLLOWED_BY = """
UNWIND $rows AS row
MATCH (a:StepAttempt {`~id`: row.src})
MATCH (b:StepAttempt {`~id`: row.dst})
MERGE (a)-[:FOLLOWED_BY]->(b)
"""

# A step a resumed run did not run: its stand-in attempt points at the attempt whose outputs it reused.
LINK_REUSED = """
UNWIND $rows AS row
MATCH (a:StepAttempt {`~id`: row.src})
MATCH (b:StepAttempt {`~id`: row.dst})
MERGE (a)-[:REUSED]->(b)
"""

# --- reads ------------------------------------------------------------------

RUN = """
MATCH (r:Run {`~id`: $run_node})
RETURN r.run_id AS run_id, r.pipeline AS pipeline, r.execution_arn AS execution_arn,
       r.status AS status, r.started_at AS started_at, r.ended_at AS ended_at,
       r.error AS error, r.cause AS cause
"""

RUN_ATTEMPTS = """
MATCH (a:StepAttempt)-[:PART_OF]->(r:Run {`~id`: $run_node})
OPTIONAL MATCH (a)-[:REUSED]->(b:StepAttempt)-[:PART_OF]->(o:Run)
RETURN a.attempt_id AS attempt_id, a.seq AS seq, a.step AS step, a.job_key AS job_key,
       a.job_id AS job_id, a.job_name AS job_name, a.queue AS queue, a.capacity AS capacity,
       a.job_definition AS job_definition, a.attempt AS attempt, a.status AS status,
       a.status_reason AS status_reason, a.exit_code AS exit_code, a.node_count AS node_count,
       a.image AS image, a.parameters_json AS parameters_json, a.log_stream AS log_stream,
       a.started_at AS started_at, a.ended_at AS ended_at, a.cache_key AS cache_key,
       b.attempt_id AS reused_attempt, o.run_id AS reused_run
ORDER BY a.seq
"""

RUN_ATTEMPT_LINKS = """
MATCH (a:StepAttempt)-[:PART_OF]->(:Run {`~id`: $run_node})
MATCH (a)-[:RETRY_OF]->(b:StepAttempt)
RETURN a.attempt_id AS src, 'RETRY_OF' AS rel, b.attempt_id AS dst
UNION ALL
MATCH (a:StepAttempt)-[:PART_OF]->(:Run {`~id`: $run_node})
MATCH (a)-[:FALLBACK_OF]->(b:StepAttempt)
RETURN a.attempt_id AS src, 'FALLBACK_OF' AS rel, b.attempt_id AS dst
UNION ALL
MATCH (a:StepAttempt)-[:PART_OF]->(:Run {`~id`: $run_node})
MATCH (a)-[:FOLLOWED_BY]->(b:StepAttempt)
RETURN a.attempt_id AS src, 'FOLLOWED_BY' AS rel, b.attempt_id AS dst
"""

RUN_DATASETS = """
MATCH (r:Run {`~id`: $run_node})-[:CONSUMED]->(d:Dataset)
RETURN r.run_id AS node, 'CONSUMED' AS rel, d.dataset_id AS dataset_id, d.uri AS uri,
       d.kind AS kind, d.version AS version, d.etag AS etag, d.size AS size,
       d.row_count AS row_count, d.schema_hash AS schema_hash
UNION ALL
MATCH (a:StepAttempt)-[:PART_OF]->(:Run {`~id`: $run_node})
MATCH (a)-[:CONSUMED]->(d:Dataset)
RETURN a.attempt_id AS node, 'CONSUMED' AS rel, d.dataset_id AS dataset_id, d.uri AS uri,
       d.kind AS kind, d.version AS version, d.etag AS etag, d.size AS size,
       d.row_count AS row_count, d.schema_hash AS schema_hash
UNION ALL
MATCH (a:StepAttempt)-[:PART_OF]->(:Run {`~id`: $run_node})
MATCH (a)-[:PRODUCED]->(d:Dataset)
RETURN a.attempt_id AS node, 'PRODUCED' AS rel, d.dataset_id AS dataset_id, d.uri AS uri,
       d.kind AS kind, d.version AS version, d.etag AS etag, d.size AS size,
       d.row_count AS row_count, d.schema_hash AS schema_hash
UNION ALL
MATCH (a:StepAttempt)-[:PART_OF]->(:Run {`~id`: $run_node})
MATCH (a)-[:PRODUCED]->(:Dataset)<-[:PART_OF]-(d:Dataset)
RETURN a.attempt_id AS node, 'CONTAINS' AS rel, d.dataset_id AS dataset_id, d.uri AS uri,
       d.kind AS kind, d.version AS version, d.etag AS etag, d.size AS size,
       d.row_count AS row_count, d.schema_hash AS schema_hash
"""

# Earlier attempts behind one attempt (its retries and the jobs it fell back from).
ATTEMPT_HISTORY = """
MATCH (a:StepAttempt {`~id`: $attempt_node})-[:RETRY_OF|FALLBACK_OF*1..20]->(b:StepAttempt)
RETURN DISTINCT b.attempt_id AS attempt_id, b.seq AS seq, b.status AS status,
       b.status_reason AS status_reason, b.capacity AS capacity
ORDER BY seq
"""

# Runs that read one object (any version): "which runs used this file?"
RUNS_FOR_INPUT = """
MATCH (r:Run)-[:CONSUMED]->(d:Dataset {uri: $uri})
RETURN r.run_id AS run_id, r.status AS status, r.started_at AS started_at,
       d.version AS version
ORDER BY started_at
"""

# --- lineage traversal (one dataset and one hop per query; the reader walks level by level) ---
# Each query starts from one node found by its `~id` and goes one or two hops: the embedded graph
# plans longer patterns, and `UNWIND` over many start nodes, as joins against scans of whole
# tables, and Neptune answers each of these from its indexes.

_DATASET_COLUMNS = """d.dataset_id AS dataset_id, d.uri AS uri, d.kind AS kind, d.version AS version,
       d.etag AS etag, d.size AS size, d.row_count AS row_count, d.schema_hash AS schema_hash"""

_ATTEMPT_COLUMNS = """a.attempt_id AS attempt_id, a.step AS step, a.attempt AS attempt, a.status AS status,
       a.status_reason AS status_reason, a.exit_code AS exit_code, a.capacity AS capacity,
       a.job_definition AS job_definition, a.image AS image, a.parameters_json AS parameters_json,
       a.node_count AS node_count, a.started_at AS started_at, a.ended_at AS ended_at,
       a.cache_key AS cache_key, r.run_id AS run_id"""

# Datasets by URI: every version of the object, or else the recorded prefixes that hold it.
DATASETS_BY_URI = f"""
MATCH (d:Dataset {{uri: $uri}})
RETURN {_DATASET_COLUMNS}
"""

DATASET_BY_ID = f"""
MATCH (d:Dataset {{`~id`: $dataset_node}})
RETURN {_DATASET_COLUMNS}
"""

# The recorded prefixes among the ones a URI could be inside (`$nodes`: the ids of each parent prefix).
PREFIXES_HOLDING_URI = f"""
UNWIND $nodes AS node
MATCH (d:Dataset {{`~id`: node}})
WHERE d.kind = 'prefix'
RETURN {_DATASET_COLUMNS}
"""

# Upstream, one level: the attempts that produced a dataset, and what those attempts read.
PRODUCERS_OF = f"""
MATCH (x:Dataset {{`~id`: $dataset_node}})<-[:PRODUCED]-(a:StepAttempt)-[:PART_OF]->(r:Run)
OPTIONAL MATCH (a)-[:CONSUMED]->(d:Dataset)
RETURN {_ATTEMPT_COLUMNS}, {_DATASET_COLUMNS}
"""

# Downstream, one level: the attempts that read a dataset, and what they wrote.
CONSUMERS_OF = f"""
MATCH (x:Dataset {{`~id`: $dataset_node}})<-[:CONSUMED]-(a:StepAttempt)-[:PART_OF]->(r:Run)
OPTIONAL MATCH (a)-[:PRODUCED]->(d:Dataset)
RETURN {_ATTEMPT_COLUMNS}, {_DATASET_COLUMNS}
"""

# The prefixes a dataset lies in (upstream: their producers produced it too) ...
PREFIXES_OF = """
MATCH (x:Dataset {`~id`: $dataset_node})-[:PART_OF]->(p:Dataset)
RETURN p.dataset_id AS dataset_id
"""

# ... and the objects in a prefix (downstream: their readers read from it too).
OBJECTS_IN = """
MATCH (x:Dataset {`~id`: $dataset_node})<-[:PART_OF]-(o:Dataset)
RETURN o.dataset_id AS dataset_id
"""

# Runs that read a dataset directly (a run whose first step never ran still consumed its input).
RUNS_CONSUMING = """
MATCH (r:Run)-[:CONSUMED]->(x:Dataset {`~id`: $dataset_node})
RETURN r.run_id AS run_id, r.status AS status, r.started_at AS started_at,
       r.ended_at AS ended_at, r.error AS error
"""

# --- failures --------------------------------------------------------------------------

# Failed attempts since a moment (ISO-8601 strings compare in time order), grouped by reason.
FAILED_ATTEMPTS_SINCE = """
MATCH (a:StepAttempt)-[:PART_OF]->(r:Run)
WHERE a.status = 'FAILED' AND coalesce(a.ended_at, a.started_at, r.ended_at, r.started_at) >= $since
RETURN a.step AS step, a.status_reason AS reason, a.exit_code AS exit_code, count(*) AS attempts,
       count(DISTINCT r.run_id) AS runs, collect(DISTINCT r.run_id) AS run_ids,
       max(coalesce(a.ended_at, a.started_at, r.ended_at, r.started_at)) AS last_at
ORDER BY attempts DESC, step
"""

# Failed runs since a moment, one row per failed attempt (the last one says at which step).
FAILED_RUNS_SINCE = """
MATCH (r:Run)
WHERE r.status = 'FAILED' AND coalesce(r.ended_at, r.started_at) >= $since
OPTIONAL MATCH (a:StepAttempt)-[:PART_OF]->(r)
WHERE a.status = 'FAILED'
RETURN r.run_id AS run_id, r.started_at AS started_at, r.ended_at AS ended_at, r.error AS error,
       r.cause AS cause, a.seq AS seq, a.step AS step, a.status_reason AS reason, a.exit_code AS exit_code
"""

# --- resume ----------------------------------------------------------------------------

# Earlier successful attempts with this cache key, newest first, with what they wrote.
REUSABLE_ATTEMPTS = """
MATCH (a:StepAttempt)-[:PART_OF]->(r:Run)
WHERE a.cache_key = $cache_key AND a.status = 'SUCCEEDED'
RETURN a.attempt_id AS attempt_id, a.step AS step, r.run_id AS run_id, a.node_count AS node_count,
       a.parameters_json AS parameters_json, a.ended_at AS ended_at
ORDER BY ended_at DESC
LIMIT 5
"""
