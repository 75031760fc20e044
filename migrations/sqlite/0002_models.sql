-- Retraining: the quality gate's evidence on every model version, at most
-- one serving version per study and objective, the state of the last
-- training attempt, and which benchmark tables a study has imported.
-- Kept in step with migrations/postgres/0002_models.sql.

-- The serving model's Kendall tau on the same held-out rows, when there
-- was one; why the version was or was not promoted; when it started to
-- serve; the newest evaluation its training set included.
ALTER TABLE models ADD COLUMN baseline_kendall_tau REAL;
ALTER TABLE models ADD COLUMN decision TEXT NOT NULL DEFAULT '';
ALTER TABLE models ADD COLUMN activated_at BIGINT;
ALTER TABLE models ADD COLUMN max_evaluation_id BIGINT NOT NULL DEFAULT 0;

-- 'active' and 'pinned' both serve; the database, not the code, makes
-- sure there is at most one of them per study and objective.
CREATE UNIQUE INDEX models_one_serving ON models (study_id, objective)
    WHERE status IN ('active', 'pinned');

-- The last training attempt per study and objective, whatever its outcome,
-- so that `--retrain-after N` counts evaluations newer than what was last
-- looked at, and unchanged data is not trained again.
CREATE TABLE training_state (
    study_id             INTEGER NOT NULL REFERENCES studies (id),
    objective            TEXT NOT NULL,
    max_evaluation_id    BIGINT NOT NULL,
    training_data_sha256 TEXT NOT NULL,
    outcome              TEXT NOT NULL,
    message              TEXT NOT NULL,
    updated_at           BIGINT NOT NULL,
    PRIMARY KEY (study_id, objective)
);

-- Benchmark tables imported into a study, by a hash of their contents, so
-- that `serve --bench` imports and trains once.
CREATE TABLE bench_imports (
    study_id      INTEGER NOT NULL REFERENCES studies (id),
    tables_sha256 TEXT NOT NULL,
    rows          BIGINT NOT NULL,
    imported_at   BIGINT NOT NULL,
    PRIMARY KEY (study_id, tables_sha256)
);
