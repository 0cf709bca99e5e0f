-- The AMS metadata schema, version 1.
--
-- Every record is the domain type as JSON (`record`), next to the columns
-- lookups and uniqueness need. `seq` is the creation sequence: the record's
-- listing cursor (newest first) and its identity within a kind.

CREATE TABLE projects (
    seq bigserial PRIMARY KEY,
    uuid uuid NOT NULL UNIQUE,
    name text NOT NULL UNIQUE,
    record jsonb NOT NULL
);

CREATE TABLE topics (
    seq bigserial PRIMARY KEY,
    project uuid NOT NULL REFERENCES projects (uuid) ON DELETE CASCADE,
    name text NOT NULL,
    record jsonb NOT NULL,
    UNIQUE (project, name)
);

CREATE TABLE subscriptions (
    seq bigserial PRIMARY KEY,
    project uuid NOT NULL REFERENCES projects (uuid) ON DELETE CASCADE,
    name text NOT NULL,
    topic text NOT NULL,
    record jsonb NOT NULL,
    UNIQUE (project, name)
);
CREATE INDEX subscriptions_by_topic ON subscriptions (project, topic);

CREATE TABLE schemas (
    seq bigserial PRIMARY KEY,
    project uuid NOT NULL REFERENCES projects (uuid) ON DELETE CASCADE,
    name text NOT NULL,
    uuid uuid NOT NULL,
    record jsonb NOT NULL,
    UNIQUE (project, name)
);
CREATE INDEX schemas_by_uuid ON schemas (project, uuid);

CREATE TABLE users (
    seq bigserial PRIMARY KEY,
    uuid uuid NOT NULL UNIQUE,
    name text NOT NULL UNIQUE,
    token text NOT NULL UNIQUE,
    record jsonb NOT NULL
);
-- Members of a project: `record->'projects' @> '[{"project": ...}]'`.
CREATE INDEX users_by_membership ON users USING gin ((record -> 'projects') jsonb_path_ops);

CREATE TABLE registrations (
    seq bigserial PRIMARY KEY,
    uuid uuid NOT NULL UNIQUE,
    record jsonb NOT NULL
);

-- Publish counts per (project, topic name, UTC day): usage history that
-- outlives the topic but not the project.
CREATE TABLE daily_counts (
    project uuid NOT NULL REFERENCES projects (uuid) ON DELETE CASCADE,
    topic text NOT NULL,
    day int NOT NULL,
    count bigint NOT NULL,
    PRIMARY KEY (project, topic, day)
);

CREATE TABLE leases (
    key text PRIMARY KEY,
    holder text NOT NULL,
    until_ms bigint NOT NULL
);

CREATE TABLE node_samples (
    host text PRIMARY KEY,
    cpu double precision NOT NULL,
    mem double precision NOT NULL
);
