-- API tokens (python -m api tokens create): only the SHA-256 of each token is stored, so a
-- leaked database does not leak usable tokens. Revoked tokens stay for the audit trail.

CREATE TABLE api_tokens (
    token_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_sha256 bytea NOT NULL UNIQUE CHECK (octet_length(token_sha256) = 32),
    role         text NOT NULL CHECK (role IN ('operator', 'crew', 'admin')),
    districts    text[] NOT NULL DEFAULT '{}',
    label        text CHECK (length(label) <= 200),
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    -- A crew token without a district could read nothing; refuse it at the source.
    CHECK (role <> 'crew' OR cardinality(districts) > 0)
);
