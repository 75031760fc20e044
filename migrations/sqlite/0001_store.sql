-- The evaluation store, SQLite dialect. Kept in step with
-- migrations/postgres: the same tables, columns and constraints.
-- Times are Unix milliseconds, set by the server.

CREATE TABLE studies (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL
);
INSERT INTO studies (name, description, created_at)
VALUES ('default', 'Evaluations recorded without a study name.',
        CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));

CREATE TABLE architectures (
    id            INTEGER PRIMARY KEY,
    search_space  TEXT NOT NULL,
    encoding      TEXT NOT NULL,
    canonical_key TEXT NOT NULL,
    CONSTRAINT architectures_unique UNIQUE (search_space, encoding)
);
CREATE INDEX architectures_canonical ON architectures (search_space, canonical_key);

CREATE TABLE proxy_values (
    architecture_id INTEGER NOT NULL REFERENCES architectures (id),
    dataset         TEXT NOT NULL,
    proxy           TEXT NOT NULL,
    value           REAL NOT NULL,
    PRIMARY KEY (architecture_id, dataset, proxy)
);

CREATE TABLE evaluations (
    id              INTEGER PRIMARY KEY,
    study_id        INTEGER NOT NULL REFERENCES studies (id),
    architecture_id INTEGER NOT NULL REFERENCES architectures (id),
    objective       TEXT NOT NULL,
    value           REAL NOT NULL,
    budget          REAL,
    worker          TEXT NOT NULL DEFAULT '',
    recorded_at     BIGINT NOT NULL,
    idempotency_key TEXT NOT NULL,
    payload_sha256  TEXT NOT NULL,
    excluded        INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT evaluations_idempotency_key UNIQUE (idempotency_key)
);
CREATE INDEX evaluations_study_objective ON evaluations (study_id, objective, recorded_at);
CREATE INDEX evaluations_study_worker ON evaluations (study_id, worker);

CREATE TABLE models (
    id                   INTEGER PRIMARY KEY,
    study_id             INTEGER NOT NULL REFERENCES studies (id),
    objective            TEXT NOT NULL,
    version              TEXT NOT NULL,
    status               TEXT NOT NULL CHECK (status IN ('candidate', 'active', 'retired', 'pinned')),
    manifest             TEXT NOT NULL,
    model_text           TEXT NOT NULL,
    training_data_sha256 TEXT NOT NULL,
    created_at           BIGINT NOT NULL,
    CONSTRAINT models_version_unique UNIQUE (study_id, objective, version)
);
