-- 001_initial.sql - the first schema. Applied once, in one transaction, when
-- PRAGMA user_version < 1. Never edit a migration that has shipped: add
-- 002_*.sql instead.

-- Versions of the published configuration. config_version is the version
-- of the committed configuration; last_version is the highest version ever
-- sent to a proxy (it can be ahead after a refused change: versions only grow).
CREATE TABLE meta (
    k TEXT PRIMARY KEY,
    v INTEGER NOT NULL
) STRICT;
INSERT INTO meta (k, v) VALUES ('config_version', 0), ('last_version', 0);

CREATE TABLE certificates (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL CHECK (version >= 1),
    not_before INTEGER NOT NULL,
    not_after INTEGER NOT NULL,
    is_ca INTEGER NOT NULL,
    has_key INTEGER NOT NULL,
    meta TEXT NOT NULL,          -- JSON: subject, issuer, serial, sans, key_algorithm, ...
    cert_pem TEXT NOT NULL,
    chain_pem TEXT NOT NULL,
    key_ct BLOB,                 -- certstore ciphertext (AAD = id); NULL for a CA-only certificate
    sha256 TEXT NOT NULL,        -- content hash sent to proxies
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE target_groups (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    protocol TEXT NOT NULL CHECK (protocol IN ('tcp', 'tls')),
    ca_certificate_id TEXT REFERENCES certificates (id) ON DELETE RESTRICT,
    doc TEXT NOT NULL,           -- JSON of everything but targets
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE targets (
    id TEXT PRIMARY KEY,
    target_group_id TEXT NOT NULL REFERENCES target_groups (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    host TEXT NOT NULL,
    port INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    weight INTEGER NOT NULL CHECK (weight BETWEEN 0 AND 1000),
    UNIQUE (target_group_id, host, port)
) STRICT;
CREATE INDEX targets_tg ON targets (target_group_id, position);

CREATE TABLE listeners (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    bind TEXT NOT NULL,
    port INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    protocol TEXT NOT NULL CHECK (protocol IN ('tcp', 'tls')),
    default_target_group_id TEXT NOT NULL REFERENCES target_groups (id) ON DELETE RESTRICT,
    doc TEXT NOT NULL,           -- JSON of the whole listener
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (bind, port)
) STRICT;
CREATE INDEX listeners_tg ON listeners (default_target_group_id);

-- Relations kept only so that SQLite enforces the references.
CREATE TABLE listener_certificates (
    listener_id TEXT NOT NULL REFERENCES listeners (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    certificate_id TEXT NOT NULL REFERENCES certificates (id) ON DELETE RESTRICT,
    PRIMARY KEY (listener_id, position)
) STRICT;
CREATE INDEX listener_certificates_cert ON listener_certificates (certificate_id);

CREATE TABLE listener_routes (
    listener_id TEXT NOT NULL REFERENCES listeners (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    server_name TEXT NOT NULL,
    target_group_id TEXT NOT NULL REFERENCES target_groups (id) ON DELETE RESTRICT,
    PRIMARY KEY (listener_id, position),
    UNIQUE (listener_id, server_name)
) STRICT;
CREATE INDEX listener_routes_tg ON listener_routes (target_group_id);
