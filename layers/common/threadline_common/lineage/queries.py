"""Every openCypher text threadline sends to the lineage graph.

The same text runs on Amazon Neptune and on the twin's embedded graph
(ladybug), so it keeps to what both accept:

- one label per node; every node is MERGEd on its `~id` (`ids.py`), Neptune's
  only unique key and the embedded graph's primary key, and every query that
  starts from a known node finds it by its `~id`;
- writes are `UNWIND $rows AS row` batches whose rows hold only strings,
  integers, booleans and nulls (no map-valued properties, no `SET n += map`),
  and a batch of events sends its writes chained into one request (`chain.py`),
  so a write reads only `$rows` and its own variables, and returns nothing;
- a value that may be unknown (an exit code, an object's size) is written as
  `coalesce(row.x, n.x)`, so a row that does not know it keeps what is there
  (the embedded graph's stand-in sends a field that is null in every row as a
  literal null: ladybug would type it STRING and refuse it for INT64);
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
# sets its properties; relationships are written between nodes found by their `~id`, by queries
# of their own, or by the node write after `WITH <node>, row` when the other end was written
# before it (an attempt's run): one round trip fewer per batch. The pipeline (the OpenLineage
# job namespace) is a property of the Run, not a node that every run links to: one vertex with
# an edge from every run would be what every concurrent writer touches, and what the embedded
# graph scans on each new run.

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
    d.etag = coalesce(row.etag, d.etag),
    d.size = coalesce(row.size, d.size),
    d.row_count = coalesce(row.row_count, d.row_count),
    d.schema = coalesce(row.schema, d.schema),
    d.schema_hash = coalesce(row.schema_hash, d.schema_hash)
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
    a.cache_key = row.cache_key,
    a.exit_code = coalesce(row.exit_code, a.exit_code)
WITH a, row
MATCH (r:Run {`~id`: row.run_node})
MERGE (a)-[:PART_OF]->(r)
"""

# A job's attempts from Batch's own "Job State Change" event, which may come before or after
# `run_finished`. What only the run knows (the attempt's place in the run, its cache key,
# the key the state machine filed the job under) is kept when `run_finished` wrote it first,
# and replaced when it comes later (MERGE_STEP_ATTEMPTS sets everything). The rest is the
# same job description either way.
# A node of a multi-node job may end (its own event) before its parent's attempt is
# recorded: the attempt's node is MERGEd by its id alone, for the node's containers to
# link to; the attempt's own writes fill it in (and link it to its run) when they come.
MERGE_ATTEMPT_ID = """
UNWIND $rows AS row
MERGE (a:StepAttempt {`~id`: row.attempt_node})
ON CREATE SET a.attempt_id = row.attempt_id
"""

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
    a.cache_key = coalesce(a.cache_key, row.cache_key),
    a.exit_code = coalesce(row.exit_code, a.exit_code)
WITH a, row
MATCH (r:Run {`~id`: row.run_node})
MERGE (a)-[:PART_OF]->(r)
"""

# One container of one node's task in a multi-container attempt (`batch.ContainerRecord`). A row
# that does not know its exit code or whether it is essential keeps the stored value.
MERGE_CONTAINERS = """
UNWIND $rows AS row
MERGE (c:Container {`~id`: row.container_node})
ON CREATE SET c.container_id = row.container_id
SET c.node_index = row.node_index,
    c.name = row.name,
    c.reason = row.reason,
    c.log_stream = row.log_stream,
    c.image = row.image,
    c.exit_code = coalesce(row.exit_code, c.exit_code),
    c.essential = coalesce(row.essential, c.essential)
"""

LINK_ATTEMPT_RAN_CONTAINER = """
UNWIND $rows AS row
MATCH (a:StepAttempt {`~id`: row.attempt_node})
MATCH (c:Container {`~id`: row.container_node})
MERGE (a)-[:RAN_CONTAINER]->(c)
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

# A finished run's cost (USD floats), written after the run's own writes by the lineage
# function (threadline_common.run_cost_record); unknown savings keep what is stored.
SET_RUN_COST = """
UNWIND $rows AS row
MATCH (r:Run {`~id`: row.run_node})
SET r.cost_usd = row.cost_usd, r.cost_unpriced = row.cost_unpriced,
    r.spot_savings_usd = coalesce(row.spot_savings_usd, r.spot_savings_usd)
"""

SET_ATTEMPT_COSTS = """
UNWIND $rows AS row
MATCH (a:StepAttempt {`~id`: row.attempt_node})
SET a.cost_usd = row.cost_usd
"""

# --- reads ------------------------------------------------------------------

RUN = """
MATCH (r:Run {`~id`: $run_node})
RETURN r.run_id AS run_id, r.pipeline AS pipeline, r.execution_arn AS execution_arn,
       r.status AS status, r.started_at AS started_at, r.ended_at AS ended_at,
       r.error AS error, r.cause AS cause, r.cost_usd AS cost_usd,
       r.spot_savings_usd AS spot_savings_usd, r.cost_unpriced AS cost_unpriced
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

# The containers of the run's multi-container attempts, by attempt, node and name.
RUN_CONTAINERS = """
MATCH (a:StepAttempt)-[:PART_OF]->(:Run {`~id`: $run_node})
MATCH (a)-[:RAN_CONTAINER]->(c:Container)
RETURN a.attempt_id AS attempt_id, c.node_index AS node_index, c.name AS name, c.essential AS essential,
       c.exit_code AS exit_code, c.reason AS reason, c.log_stream AS log_stream, c.image AS image
ORDER BY attempt_id, node_index, name
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

# --- lineage traversal (one level per query; the reader walks level by level) ---
# Each query takes a level's datasets as `$nodes` (their `~id`s), finds each by its `~id` alone, then
# goes one or two hops from it in an OPTIONAL MATCH. The embedded graph plans that shape as primary-key
# lookups that restrict the hops' scans to those nodes; a longer pattern straight after the UNWIND, or a
# MATCH in place of the OPTIONAL MATCH, it plans as joins against scans of whole tables. Neptune answers
# either from its indexes. A dataset the hop finds nothing from comes back once, nulls on the far side.

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

# Upstream, one level: the attempts that produced each dataset (`via`), and what those attempts read.
PRODUCERS_OF = f"""
UNWIND $nodes AS node
MATCH (x:Dataset {{`~id`: node}})
OPTIONAL MATCH (x)<-[:PRODUCED]-(a:StepAttempt)-[:PART_OF]->(r:Run)
OPTIONAL MATCH (a)-[:CONSUMED]->(d:Dataset)
RETURN x.dataset_id AS via, {_ATTEMPT_COLUMNS}, {_DATASET_COLUMNS}
"""

# Downstream, one level: the attempts that read each dataset (`via`), and what they wrote.
CONSUMERS_OF = f"""
UNWIND $nodes AS node
MATCH (x:Dataset {{`~id`: node}})
OPTIONAL MATCH (x)<-[:CONSUMED]-(a:StepAttempt)-[:PART_OF]->(r:Run)
OPTIONAL MATCH (a)-[:PRODUCED]->(d:Dataset)
RETURN x.dataset_id AS via, {_ATTEMPT_COLUMNS}, {_DATASET_COLUMNS}
"""

# The prefixes each dataset lies in (upstream: their producers produced it too) ...
PREFIXES_OF = """
UNWIND $nodes AS node
MATCH (x:Dataset {`~id`: node})
OPTIONAL MATCH (x)-[:PART_OF]->(p:Dataset)
RETURN x.dataset_id AS via, p.dataset_id AS dataset_id
"""

# ... and the objects in each prefix (downstream: their readers read from it too).
OBJECTS_IN = """
UNWIND $nodes AS node
MATCH (x:Dataset {`~id`: node})
OPTIONAL MATCH (x)<-[:PART_OF]-(o:Dataset)
RETURN x.dataset_id AS via, o.dataset_id AS dataset_id
"""

# Runs that read the datasets directly (a run whose first step never ran still consumed its input).
RUNS_CONSUMING = """
UNWIND $nodes AS node
MATCH (x:Dataset {`~id`: node})
OPTIONAL MATCH (r:Run)-[:CONSUMED]->(x)
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
