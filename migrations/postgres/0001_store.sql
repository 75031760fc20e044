-- The evaluation store. Kept in step with migrations/sqlite: the same
-- tables, columns and constraints, in each dialect. Times are Unix
-- milliseconds, set by the server, so both dialects read them alike.

-- A study groups the evaluations of one search (as in Optuna); data of
-- different studies is never mixed unless a caller pools them.
CREATE TABLE studies (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL
);
INSERT INTO studies (name, description, created_at)
VALUES ('default', 'Evaluations recorded without a study name.',
        (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT);

-- An architecture as sent (the search space's normalised encoding of the
-- cell as sent) and the canonical key of the network it computes.
CREATE TABLE architectures (
    id            BIGSERIAL PRIMARY KEY,
    search_space  TEXT NOT NULL,
    encoding      TEXT NOT NULL,
    canonical_key TEXT NOT NULL,
    CONSTRAINT architectures_unique UNIQUE (search_space, encoding)
);
CREATE INDEX architectures_canonical ON architectures (search_space, canonical_key);

-- Zero-cost proxies per architecture and dataset. The first value reported
-- is kept; proxies are deterministic up to the batch a worker used.
CREATE TABLE proxy_values (
    architecture_id BIGINT NOT NULL REFERENCES architectures (id),
    dataset         TEXT NOT NULL,
    proxy           TEXT NOT NULL,
    value           DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (architecture_id, dataset, proxy)
);

-- One measured objective of one architecture in one study. The client's
-- idempotency key makes a retried report a no-op; the payload hash tells a
-- retry from a different evaluation reusing the key.
CREATE TABLE evaluations (
    id              BIGSERIAL PRIMARY KEY,
    study_id        BIGINT NOT NULL REFERENCES studies (id),
    architecture_id BIGINT NOT NULL REFERENCES architectures (id),
    objective       TEXT NOT NULL,
    value           DOUBLE PRECISION NOT NULL,
    budget          DOUBLE PRECISION,
    worker          TEXT NOT NULL DEFAULT '',
    recorded_at     BIGINT NOT NULL,
    idempotency_key TEXT NOT NULL,
    payload_sha256  TEXT NOT NULL,
    excluded        BOOLEAN NOT NULL DEFAULT FALSE,
    CONSTRAINT evaluations_idempotency_key UNIQUE (idempotency_key)
);
CREATE INDEX evaluations_study_objective ON evaluations (study_id, objective, recorded_at);
CREATE INDEX evaluations_study_worker ON evaluations (study_id, worker);

-- Trained models, filled by retraining (a later migration may extend it).
CREATE TABLE models (
    id                   BIGSERIAL PRIMARY KEY,
    study_id             BIGINT NOT NULL REFERENCES studies (id),
    objective            TEXT NOT NULL,
    version              TEXT NOT NULL,
    status               TEXT NOT NULL CHECK (status IN ('candidate', 'active', 'retired', 'pinned')),
    manifest             TEXT NOT NULL,
    model_text           TEXT NOT NULL,
    training_data_sha256 TEXT NOT NULL,
    created_at           BIGINT NOT NULL,
    CONSTRAINT models_version_unique UNIQUE (study_id, objective, version)
);
